#!/usr/bin/env bash
# Throughput and latency of inference on the dev chain: starts a fresh dev node (its
# off-chain workers answer as Alice and Bob), queues tiny-mlp requests from eight
# accounts at once and prints requests per block and p50/p95 latencies
# (cli/examples/chain_throughput.rs). Usage: scripts/bench-chain.sh [REQUESTS] (default 240)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"

bash scripts/setup.sh
cargo build --release --workspace --bins --example chain_throughput
source scripts/models.sh
import_genesis_models

PORT="${BENCH_RPC_PORT:-9977}"
WORK="$(mktemp -d)"
"$NODE_BIN" --dev --tmp --model-store "$STORE" --rpc-port "$PORT" --port $((PORT + 1)) \
    --no-prometheus --no-telemetry --no-mdns >"$WORK/node.log" 2>&1 &
NODE_PID=$!
trap 'kill $NODE_PID 2>/dev/null || true; wait $NODE_PID 2>/dev/null || true' EXIT
for _ in $(seq 120); do
    curl -s -H 'Content-Type: application/json' \
        -d '{"jsonrpc":"2.0","id":1,"method":"chain_getFinalizedHead","params":[]}' \
        "http://127.0.0.1:$PORT" | grep -q result && break
    sleep 0.5
done
sleep 4 # the first block
echo "[bench-chain] node log: $WORK/node.log; machine: $(nproc) cores"
"$CARGO_TARGET_DIR/release/examples/chain_throughput" --url "ws://127.0.0.1:$PORT" --requests "${1:-240}"
