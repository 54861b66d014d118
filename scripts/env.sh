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
# The determinism matrix's aarch64 build links with Debian's cross toolchain
# (scripts/setup.sh installs it; scripts/build-matrix-targets.sh builds).
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER:-aarch64-linux-gnu-gcc}"
export CC_aarch64_unknown_linux_gnu="${CC_aarch64_unknown_linux_gnu:-aarch64-linux-gnu-gcc}"
export CXX_aarch64_unknown_linux_gnu="${CXX_aarch64_unknown_linux_gnu:-aarch64-linux-gnu-g++}"
# aarch64 test binaries (the kernels' NEON agreement tests) run under qemu-user.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER:-qemu-aarch64 -L /usr/aarch64-linux-gnu}"
