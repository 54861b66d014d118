#!/usr/bin/env bash
# Sets up the machine, builds the node and the CLI if needed, puts the genesis models in
# the model store and runs a single-validator dev chain whose off-chain workers answer
# inference requests (Alice and Bob are its executors).
# Usage: scripts/dev.sh [extra inferchain-node flags]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"

bash scripts/setup.sh
echo "[dev] building inferchain-node and inferchain (release; the first build takes ~40 min on 2 cores, later ones minutes)"
cargo build --release --workspace --bins
source scripts/node.sh
import_genesis_models

echo "[dev] starting the dev chain: Alice authors and finalizes, state is temporary (--tmp)"
echo "[dev] RPC: ws://127.0.0.1:9944 (also HTTP); stop with Ctrl-C"
exec "$NODE_BIN" --dev --tmp --model-store "$STORE" "$@"
