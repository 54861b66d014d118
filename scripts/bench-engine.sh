#!/usr/bin/env bash
# Engine vs onnxruntime, same files, one run: builds the CLI, generates the benchmark
# graphs (seeded, cached outside the checkout), installs onnxruntime from PyPI into the
# project venv, and prints latency ratios and GFLOP/s. Not part of CI (minutes of CPU).
#   bash scripts/bench-engine.sh [ITERS]        (THREADS=n to override the thread count,
#                                               ROUNDS=n interleaved rounds, default 3)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"
CACHE="${INFERCHAIN_CACHE:-$HOME/.cache/inferchain}"
ITERS="${1:-5}"
THREADS="${THREADS:-$(nproc)}"
bash scripts/setup.sh
"$CACHE/venv/bin/python" -c 'import onnxruntime' 2>/dev/null ||
    "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check onnxruntime==1.23.2
echo "[bench] building the inferchain CLI and the FMA-peak tool"
cargo build --release --workspace --bin inferchain --examples
export PEAK_TOOL="$CARGO_TARGET_DIR/release/examples/peak"
echo "[bench] generating benchmark graphs in $CACHE/bench-models (first run: ~30 s, 570 MB)"
"$CACHE/venv/bin/python" scripts/make_bench_models.py "$CACHE/bench-models" "$CACHE/models/all-MiniLM-L6-v2"
STORE="$(mktemp -d)"
trap 'rm -rf "$STORE"' EXIT
"$CACHE/venv/bin/python" scripts/bench_engine.py "$CARGO_TARGET_DIR/release/inferchain" "$STORE" \
    "$CACHE/bench-models" "$CACHE/models/all-MiniLM-L6-v2" "$THREADS" "$ITERS"
echo "[bench] results also in $CACHE/bench-models/results.json"
