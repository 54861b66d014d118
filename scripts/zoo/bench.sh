#!/usr/bin/env bash
# The zoo's latency against onnxruntime (scripts/zoo/bench_zoo.py), in the zoo's venv.
#   bash scripts/zoo/bench.sh [ITERS]        (THREADS=n to override the thread count;
#                                             ZOO_ONLY=torch for the models named so)
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$INFERCHAIN_ROOT"
VENV="${INFERCHAIN_CACHE:-$HOME/.cache/inferchain}/zoo-venv"
[ -x "$VENV/bin/python" ] || { echo "run scripts/zoo/export.sh first (it makes $VENV)"; exit 1; }
cargo build --release --workspace --bin inferchain
STORE="$(mktemp -d)"
trap 'rm -rf "$STORE"' EXIT
"$VENV/bin/python" scripts/zoo/bench_zoo.py "$CARGO_TARGET_DIR/release/inferchain" "$STORE" \
    models/zoo "${THREADS:-$(nproc)}" "${1:-20}"
