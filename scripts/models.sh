# Sourced by the scripts that run a node: the model store the node's off-chain workers
# read (the CLI's default store, so `inferchain model run` sees the same files) and the
# genesis models imported into it.
STORE="${INFERCHAIN_STORE:-${XDG_DATA_HOME:-$HOME/.local/share}/inferchain/models}"
CLI_BIN="$CARGO_TARGET_DIR/release/inferchain"
TINY_MLP=0x1c25ebdd7e0a463fc3886fbd891898d785e83a98e76765cb3bf91d179f0e7a86
MINILM=0x2e87af11f0fbdc561e4d274f0be88d8a1dea983d1975af9f68f42f45e9350740

import_genesis_models() {
    "$CLI_BIN" --store "$STORE" model import "$INFERCHAIN_ROOT/models/tiny-mlp/model.onnx" >/dev/null
    "$CLI_BIN" --store "$STORE" model import "$HOME/.cache/inferchain/models/all-MiniLM-L6-v2" >/dev/null
    echo "[models] tiny-mlp and all-MiniLM-L6-v2 are in $STORE"
}
