# Sourced by the scripts that run a node: the model store the node's off-chain workers
# read (the CLI's default store, so `inferchain model run` sees the same files), the
# genesis models imported into it, and a dev node started in the background.
STORE="${INFERCHAIN_STORE:-${XDG_DATA_HOME:-$HOME/.local/share}/inferchain/models}"
CLI_BIN="$CARGO_TARGET_DIR/release/inferchain"
TINY_MLP=0x1c25ebdd7e0a463fc3886fbd891898d785e83a98e76765cb3bf91d179f0e7a86
MINILM=0x2e87af11f0fbdc561e4d274f0be88d8a1dea983d1975af9f68f42f45e9350740

import_genesis_models() {
    "$CLI_BIN" --store "$STORE" model import "$INFERCHAIN_ROOT/models/tiny-mlp/model.onnx" >/dev/null
    "$CLI_BIN" --store "$STORE" model import "$HOME/.cache/inferchain/models/all-MiniLM-L6-v2" >/dev/null
    echo "[models] tiny-mlp and all-MiniLM-L6-v2 are in $STORE"
}

# Starts a fresh dev node (--tmp) on RPC port $1 with its log under $2; sets NODE_PID,
# stops the node on exit and returns once its RPC answers.
start_dev_node() {
    local port="$1" work="$2"
    "$NODE_BIN" --dev --tmp --model-store "$STORE" --rpc-port "$port" --port $((port + 1)) \
        --no-prometheus --no-telemetry --no-mdns >"$work/node.log" 2>&1 &
    NODE_PID=$!
    trap 'kill $NODE_PID 2>/dev/null || true; wait $NODE_PID 2>/dev/null || true' EXIT
    local _
    for _ in $(seq 120); do
        curl -s -H 'Content-Type: application/json' \
            -d '{"jsonrpc":"2.0","id":1,"method":"chain_getFinalizedHead","params":[]}' \
            "http://127.0.0.1:$port" | grep -q result && return 0
        sleep 0.5
    done
    echo "[node] the dev node did not answer on port $port; see $work/node.log" >&2
    return 1
}
