#!/usr/bin/env bash
# The end-to-end demo. Starts a dev chain whose off-chain workers run real models, then:
#   1. asks the chain for a tiny-mlp inference (f32 [1, 4] -> softmax over 3 classes) and
#      follows it: included, result posted by the assigned executor's node, challenge
#      window over, block finalized by GRANDPA;
#   2. re-runs it on this CPU with `inferchain model run` and compares output hashes;
#   3. the same request for all-MiniLM-L6-v2 on a sentence (a 384-float embedding), with
#      live progress;
#   4. verifies that request's receipt: GRANDPA finality, storage proofs, hashes and a
#      local re-run (`inferchain verify --rerun`).
# Usage: scripts/demo.sh   (RPC port: $DEMO_RPC_PORT, default 9966)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"

bash scripts/setup.sh
echo "[demo] building inferchain-node and inferchain (release; minutes when warm)"
cargo build --release --workspace --bins
source scripts/node.sh
import_genesis_models

PORT="${DEMO_RPC_PORT:-9966}"
URL="ws://127.0.0.1:$PORT"
WORK="$(mktemp -d)"
start_dev_node "$PORT" "$WORK"
echo "[demo] dev node pid $NODE_PID, RPC $URL, log $WORK/node.log"

PY="$HOME/.cache/inferchain/venv/bin/python"
"$PY" -c "import numpy as np; np.save('$WORK/x.npy', np.array([[0.5, -1.0, 2.0, 0.25]], dtype=np.float32))"
SENTENCE="Verifiable inference: anyone can re-run this on their own CPU."

summary() { # $1: chain JSON
    "$PY" -c "import json; r=json.load(open('$1')); print(f\"[demo]   request {r['request']}: executor {r['executor']}, included in #{r['included_in']}, result in #{r['result']['posted_at']}, final in #{r['final_in']} (GRANDPA-finalized)\")"
}

compare() { # $1: chain JSON, $2: local JSON
    "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
chain, local = (json.load(open(p)) for p in sys.argv[1:])
on_chain, here = chain["result"]["output_hash"], local["output_hash"]
print(f"[demo]   on chain: {on_chain}\n[demo]   this CPU: {here}")
if on_chain != here:
    sys.exit("[demo] MISMATCH: the on-chain output differs from a local run")
print("[demo]   identical: the chain's result is what the registered model computes")
PYEOF
}

echo
echo "[demo] 1. tiny-mlp on x = [[0.5, -1.0, 2.0, 0.25]], paid by Charlie"
"$CLI_BIN" submit --model tiny-mlp --input "$WORK/x.npy" --url "$URL" --wait --json >"$WORK/tiny-chain.json"
summary "$WORK/tiny-chain.json"
"$CLI_BIN" result "$("$PY" -c "import json; print(json.load(open('$WORK/tiny-chain.json'))['request'])")" --url "$URL"
"$CLI_BIN" --store "$STORE" model run "$TINY_MLP" --input "$WORK/x.npy" --json >"$WORK/tiny-local.json"
compare "$WORK/tiny-chain.json" "$WORK/tiny-local.json"

echo
echo "[demo] 2. all-MiniLM-L6-v2 on \"$SENTENCE\""
"$CLI_BIN" submit --model "$MINILM" --text "$SENTENCE" --url "$URL" --wait

echo
echo "[demo] 3. the receipt of the MiniLM request, every claim checked: GRANDPA finality"
echo "[demo]    against the genesis authorities, storage proofs, hashes, and a re-run here"
GENESIS="$(curl -s -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"chain_getBlockHash","params":[0]}' \
    "http://127.0.0.1:$PORT" | sed -n 's/.*"result":"\(0x[0-9a-f]*\)".*/\1/p')"
"$CLI_BIN" --store "$STORE" verify 1 --url "$URL" --genesis "$GENESIS" --rerun

echo
echo "[demo] done: both requests went through the chain end to end (node log: $WORK/node.log)"
