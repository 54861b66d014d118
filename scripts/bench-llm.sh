#!/usr/bin/env bash
# Language-model figures, one process per model and thread count, same weights on both
# sides: engine vs candle-transformers' llama greedy tokens/s, and the verification
# speed-up (generate N tokens / verify them by one teacher-forced pass). Two models:
# models/tiny-llm (5.8 MB, cache-resident) and a folder with SmolLM-135M's architecture and
# seeded weights (538 MB, written once under ~/.cache/inferchain), whose weights are read
# from memory per generated token as a deployed model's are. Not part of CI.
#   bash scripts/bench-llm.sh [TOKENS] [RUNS]       (MODEL_DIR=… for one other llama folder)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"
TOKENS="${1:-64}"
RUNS="${2:-5}"
echo "[bench-llm] building engine/examples/bench_llm.rs"
cargo build --release -q -p inferchain-engine --example bench_llm
BIN="$CARGO_TARGET_DIR/release/examples/bench_llm"
if [ -n "${MODEL_DIR:-}" ]; then
    MODELS=("$MODEL_DIR")
else
    SHAPED="$HOME/.cache/inferchain/bench-models/smollm-135m-shape"
    if [ ! -f "$SHAPED/model.safetensors" ]; then
        echo "[bench-llm] writing SmolLM-135M-shaped weights to $SHAPED (538 MB)"
        "$BIN" --write-smollm-135m-shape "$SHAPED"
    fi
    MODELS=("$INFERCHAIN_ROOT/models/tiny-llm" "$SHAPED")
fi
for model in "${MODELS[@]}"; do
    for threads in 1 2; do
        RAYON_NUM_THREADS=$threads "$BIN" "$model" --tokens "$TOKENS" --runs "$RUNS"
    done
done
