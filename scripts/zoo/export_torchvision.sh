#!/usr/bin/env bash
# Exports the zoo's torchvision models (scripts/zoo/export_torchvision.py) with torch.onnx,
# in a venv of its own (torch from PyPI is a large download: ~3 GB with its CUDA
# libraries; not CI's critical path: CI reads the committed files).
#   bash scripts/zoo/export_torchvision.sh      # writes models/zoo/torchvision-*, torch-*
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${INFERCHAIN_CACHE:-$HOME/.cache/inferchain}/torch-venv"
if [ ! -x "$VENV/bin/python" ]; then
    echo "[zoo] creating $VENV"
    python3 -m venv "$VENV"
fi
echo "[zoo] installing torch and torchvision (first run: several minutes)"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements-torch.txt"
echo "[zoo] exporting the torchvision models to $ROOT/models/zoo"
"$VENV/bin/python" "$HERE/export_torchvision.py" "$ROOT/models/zoo"
echo "[zoo] exporting the NonMaxSuppression and antialiased Resize models"
"$VENV/bin/python" "$HERE/export_torch_ops.py" "$ROOT/models/zoo"
echo "[zoo] done; run: cargo test --release -p inferchain-engine --test zoo"
