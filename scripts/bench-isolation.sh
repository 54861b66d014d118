#!/usr/bin/env bash
# The cost of isolation: an executor's per-request host call (a traced run, what it posts)
# in process and through a warm inference worker process, interleaved in one run on the
# same inputs (tiny-mlp, and all-MiniLM-L6-v2 when scripts/setup.sh fetched it). Not CI.
#   bash scripts/bench-isolation.sh [RUNS]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"
RUNS="${1:-200}"
echo "[bench-isolation] building the worker and engine/examples/bench_isolation.rs"
cargo build --release -q -p inferchain-engine --bin inferchain-inference-worker --example bench_isolation
"$CARGO_TARGET_DIR/release/examples/bench_isolation" \
    "$CARGO_TARGET_DIR/release/inferchain-inference-worker" --runs "$RUNS"
