# Sourced by the other scripts: one persistent cargo target dir outside the checkout,
# shared by developers, scripts and CI, so builds after the first are warm.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inferchain/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
INFERCHAIN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export INFERCHAIN_ROOT
NODE_BIN="$CARGO_TARGET_DIR/release/inferchain-node"
export NODE_BIN
mkdir -p "$CARGO_TARGET_DIR"
# The wasm builder looks for Cargo.lock upwards from the target dir; ours is outside the
# checkout, so point it at the workspace.
export WASM_BUILD_WORKSPACE_HINT="$INFERCHAIN_ROOT"
