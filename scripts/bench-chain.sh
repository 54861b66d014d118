#!/usr/bin/env bash
# Throughput and latency of inference on the dev chain: starts a fresh dev node (its
# off-chain workers answer as Alice and Bob), queues tiny-mlp requests from eight
# accounts at once and prints requests per block and p50/p95 latencies
# (cli/examples/chain_throughput.rs). Usage: scripts/bench-chain.sh [REQUESTS] [BATCH]
# (default 1,024 requests in request_batch transactions of 128; BATCH 1 sends one
# request_inference each)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"

bash scripts/setup.sh
cargo build --release --workspace --bins --example chain_throughput
source scripts/node.sh
import_genesis_models

PORT="${BENCH_RPC_PORT:-9977}"
WORK="$(mktemp -d)"
start_dev_node "$PORT" "$WORK"
sleep 4 # the first block
echo "[bench-chain] node log: $WORK/node.log; machine: $(nproc) cores"
"$CARGO_TARGET_DIR/release/examples/chain_throughput" --url "ws://127.0.0.1:$PORT" --requests "${1:-1024}" --batch "${2:-128}"
