#!/usr/bin/env bash
# Re-exports the model zoo (models/zoo) with the exporters themselves, in a venv of its own
# (pinned in requirements.txt; not CI's critical path: CI reads the committed files).
#   bash scripts/zoo/export.sh            # writes models/zoo
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${INFERCHAIN_CACHE:-$HOME/.cache/inferchain}/zoo-venv"
if [ ! -x "$VENV/bin/python" ]; then
    echo "[zoo] creating $VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
echo "[zoo] exporting the zoo to $ROOT/models/zoo"
"$VENV/bin/python" "$HERE/export_zoo.py" "$ROOT/models/zoo"
echo "[zoo] done; run: cargo test --release -p inferchain-engine --test zoo"
