#!/usr/bin/env bash
# The whole test suite: setup, formatting, the node build and every crate's tests,
# in one cargo profile (release) so nothing compiles twice.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"

step() { printf '\n[test] %s (%s)\n' "$*" "$(date +%T)"; }

step "setup"
bash scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "determinism-matrix targets (aarch64 golden runner, wasm kernels)"
bash scripts/build-matrix-targets.sh

step "kernel tests on aarch64 under qemu-aarch64 (NEON against the scalar reference)"
cargo test --release --target aarch64-unknown-linux-gnu -p inferchain-kernels

step "cargo test --release (builds the node and the wasm runtime; unit, mock-runtime and real-node tests)"
cargo test --release --workspace --lib --bins --tests --features inferchain-node/test-faults

step "done"
