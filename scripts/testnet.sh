#!/usr/bin/env bash
# A four-validator local testnet on loopback (Alice, Bob, Charlie, Dave).
# Usage: scripts/testnet.sh start|stop|status|add-eve|rotate-out NAME|upgrade [WASM]
#   start       builds the node if needed and starts the four validators in the background
#   stop        stops them (and Eve's node) with SIGTERM and keeps their databases
#   status      prints each node's best and finalized block, then the validator set
#   add-eve     starts a fifth node (Eve), registers her session keys and has the council
#               (Alice proposes, Bob seconds, anyone closes) add her as a validator
#   rotate-out NAME  has the council remove validator NAME (e.g. dave)
#   upgrade [WASM]   has two thirds of the council authorize the runtime WASM (default: the
#               next release's, spec version + 1, that the runtime's build.rs builds) and
#               applies it; a CLI built for the old runtime then refuses to sign
# A set change is enacted within two BABE epochs (20 slots: two session rotations); GRANDPA's set id moves.
# All four are executors; their off-chain workers read the genesis models from one store
# (scripts/node.sh). State lives in $TESTNET_DIR (default ~/.cache/inferchain/testnet); `rm -rf` it to reset.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"
source scripts/node.sh

TESTNET_DIR="${TESTNET_DIR:-$HOME/.cache/inferchain/testnet}"
NAMES=(alice bob charlie dave eve)
# p2p 30333.., RPC 9944.. (alice's RPC is the usual 9944)
p2p_port() { echo $((30333 + $1)); }
rpc_port() { echo $((9944 + $1)); }
node_key() { printf '%064x' $(($1 + 1)); }

rpc() {
    curl -s -H 'Content-Type: application/json' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":${3:-[]}}" \
        "http://127.0.0.1:$1"
}

start() {
    [ -x "$NODE_BIN" ] && [ -x "$CLI_BIN" ] || { bash scripts/setup.sh; cargo build --release --workspace --bins; }
    import_genesis_models
    mkdir -p "$TESTNET_DIR"
    local bootnodes=() i
    for i in 0 1 2 3; do
        local key peer
        key="$(node_key $i)"
        peer="$(echo "$key" | "$NODE_BIN" key inspect-node-key)"
        bootnodes+=("/ip4/127.0.0.1/tcp/$(p2p_port $i)/p2p/$peer")
    done
    for i in 0 1 2 3; do
        local name="${NAMES[$i]}" pidfile="$TESTNET_DIR/${NAMES[$i]}.pid"
        if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "[testnet] $name already running (pid $(cat "$pidfile"))"; continue
        fi
        local args=(--chain local "--$name" --validator --base-path "$TESTNET_DIR/$name"
            --node-key "$(node_key $i)" --port "$(p2p_port $i)" --rpc-port "$(rpc_port $i)"
            --no-prometheus --no-telemetry --no-mdns --model-store "$STORE")
        local j
        for j in 0 1 2 3; do [ "$j" -ne "$i" ] && args+=(--bootnodes "${bootnodes[$j]}"); done
        "$NODE_BIN" "${args[@]}" >>"$TESTNET_DIR/$name.log" 2>&1 &
        echo $! >"$pidfile"
        echo "[testnet] $name: pid $!, RPC http://127.0.0.1:$(rpc_port $i), log $TESTNET_DIR/$name.log"
    done
    echo "[testnet] stop with: scripts/testnet.sh stop"
}

# Passes a council motion the way a council does: Alice proposed it, Bob votes aye,
# Alice closes it. $1: the `inferchain … propose-*` output naming the motion.
pass_motion() {
    local motion
    motion="$(echo "$1" | sed -n 's/^motion \(0x[0-9a-f]*\).*/\1/p')"
    [ -n "$motion" ] || { echo "[testnet] no motion in: $1" >&2; exit 1; }
    "$CLI_BIN" council vote "$motion" --aye --suri //Bob
    "$CLI_BIN" council close "$motion" --suri //Alice
}

add_eve() {
    local i=4 name=eve pidfile="$TESTNET_DIR/eve.pid"
    local alice_peer
    alice_peer="$(node_key 0 | "$NODE_BIN" key inspect-node-key)"
    if ! { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
        "$NODE_BIN" --chain local --eve --validator --base-path "$TESTNET_DIR/eve" \
            --node-key "$(node_key $i)" --port "$(p2p_port $i)" --rpc-port "$(rpc_port $i)" \
            --no-prometheus --no-telemetry --no-mdns --model-store "$STORE" \
            --bootnodes "/ip4/127.0.0.1/tcp/$(p2p_port 0)/p2p/$alice_peer" \
            >>"$TESTNET_DIR/$name.log" 2>&1 &
        echo $! >"$pidfile"
        echo "[testnet] eve: pid $!, RPC http://127.0.0.1:$(rpc_port $i), log $TESTNET_DIR/$name.log"
    fi
    "$CLI_BIN" validator set-keys --suri //Eve
    pass_motion "$("$CLI_BIN" validator propose-add //Eve --suri //Alice)"
    echo "[testnet] Eve joins the set within two epochs (20 slots): scripts/testnet.sh status"
}

rotate_out() {
    [ -n "${1:-}" ] || { echo "usage: $0 rotate-out NAME" >&2; exit 2; }
    pass_motion "$("$CLI_BIN" validator propose-remove "//${1^}" --suri //Alice)"
    echo "[testnet] ${1^} leaves the set within two epochs (20 slots): scripts/testnet.sh status"
}

upgrade() {
    local wasm="${1:-$CARGO_TARGET_DIR/release/wbuild/inferchain-runtime/next_runtime_wasm.rs.compact.compressed.wasm}"
    [ -f "$wasm" ] || { echo "[testnet] no runtime at $wasm: build the workspace first (cargo build --release --workspace)" >&2; exit 1; }
    pass_motion "$("$CLI_BIN" upgrade propose "$wasm" --suri //Alice)"
    "$CLI_BIN" upgrade apply "$wasm" --suri //Charlie
}

stop() {
    local name
    for name in "${NAMES[@]}"; do
        local pidfile="$TESTNET_DIR/$name.pid"
        if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            kill -TERM "$(cat "$pidfile")" && echo "[testnet] stopped $name"
        fi
        rm -f "$pidfile"
    done
}

status() {
    local i
    for i in 0 1 2 3 4; do
        local best fin
        best="$(rpc "$(rpc_port $i)" chain_getHeader | sed -n 's/.*"number":"\(0x[0-9a-f]*\)".*/\1/p')"
        fin="$(rpc "$(rpc_port $i)" chain_getFinalizedHead | sed -n 's/.*"result":"\(0x[0-9a-f]*\)".*/\1/p')"
        if [ -z "$best" ]; then [ "$i" -lt 4 ] && echo "${NAMES[$i]}: down"; continue; fi
        fin="$(rpc "$(rpc_port $i)" chain_getHeader "[\"$fin\"]" | sed -n 's/.*"number":"\(0x[0-9a-f]*\)".*/\1/p')"
        echo "${NAMES[$i]}: best #$((best)) finalized #$((fin))"
    done
    "$CLI_BIN" validator list 2>/dev/null || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    add-eve) add_eve ;;
    rotate-out) rotate_out "${2:-}" ;;
    upgrade) upgrade "${2:-}" ;;
    *) echo "usage: $0 start|stop|status|add-eve|rotate-out NAME|upgrade [WASM]" >&2; exit 2 ;;
esac
