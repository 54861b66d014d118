#!/usr/bin/env bash
# Builds what the determinism matrix (engine/tests/determinism.rs) runs besides the host
# binaries: `inferchain-golden` for aarch64 (run under qemu-aarch64; first build ~4 min on
# 2 cores, then incremental) and the kernels' wasm module (wasm32v1-none, seconds).
# scripts/test.sh runs it before the tests; needs scripts/setup.sh first.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"
echo "[matrix] aarch64 inferchain-golden (NEON column)"
cargo build --release --target aarch64-unknown-linux-gnu -p inferchain-engine --bin inferchain-golden
echo "[matrix] wasm32 scalar kernels (wasm column)"
# wasm32v1-none cannot unwind; only this module's build aborts on panic.
CARGO_PROFILE_RELEASE_PANIC=abort cargo build --release --target wasm32v1-none -p inferchain-kernels-wasm
