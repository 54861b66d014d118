#!/usr/bin/env bash
# Builds a node with runtime benchmarks and regenerates the pallets' weights.rs files.
# Usage: scripts/benchmark.sh [pallet_models|pallet_inference ...]
# This is a separate build from the default node (benchmark features change most
# crates): about 20 minutes on 2 cores after a default build, into the same target dir.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"

bash scripts/setup.sh
# frame-benchmarking-cli depends on a test runtime (for `benchmark storage`, which we do
# not wire in) whose wasm build cannot find itself in our workspace hint: skip it.
export SKIP_FRAME_STORAGE_ACCESS_TEST_RUNTIME_WASM_BUILD=1
echo "[bench] building inferchain-node with --features runtime-benchmarks"
cargo build --release -p inferchain-node --features runtime-benchmarks

pallets=("$@")
[ "${#pallets[@]}" -gt 0 ] || pallets=(pallet_models pallet_inference pallet_memory
    pallet_validators pallet_protocol_params pallet_upgrades)
for pallet in "${pallets[@]}"; do
    # pallet_protocol_params lives in pallets/protocol-params
    crate_dir="${pallet#pallet_}"
    dir="pallets/${crate_dir//_/-}/src"
    echo "[bench] $pallet -> $dir/weights.rs"
    "$NODE_BIN" benchmark pallet \
        --runtime "$CARGO_TARGET_DIR/release/wbuild/inferchain-runtime/inferchain_runtime.compact.compressed.wasm" \
        --genesis-builder=runtime \
        --pallet "$pallet" --extrinsic '*' \
        --steps 20 --repeat 5 \
        --template scripts/weight-template.hbs \
        --output "$dir/weights.rs"
done
echo "[bench] done: review and commit the weights.rs files"
