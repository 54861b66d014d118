#!/usr/bin/env bash
# Language-model figures, one process per thread count, same weights (models/tiny-llm, or
# MODEL_DIR): engine vs candle-transformers' llama greedy tokens/s, and the verification
# speed-up (generate N tokens / verify them by one teacher-forced pass). Not part of CI.
#   bash scripts/bench-llm.sh [TOKENS] [RUNS]       (MODEL_DIR=… for another llama folder)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"
TOKENS="${1:-64}"
RUNS="${2:-5}"
MODEL_DIR="${MODEL_DIR:-$INFERCHAIN_ROOT/models/tiny-llm}"
echo "[bench-llm] building engine/examples/bench_llm.rs"
cargo build --release -q -p inferchain-engine --example bench_llm
for threads in 1 2; do
    RAYON_NUM_THREADS=$threads "$CARGO_TARGET_DIR/release/examples/bench_llm" "$MODEL_DIR" \
        --tokens "$TOKENS" --runs "$RUNS"
done
