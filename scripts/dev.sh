#!/usr/bin/env bash
# Sets up the machine, builds the node if needed and runs a single-validator dev chain.
# Usage: scripts/dev.sh [extra inferchain-node flags]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"

bash scripts/setup.sh
echo "[dev] building inferchain-node (release; the first build takes ~35 min on 2 cores, later ones minutes)"
cargo build --release -p inferchain-node

echo "[dev] starting the dev chain: Alice authors and finalizes, state is temporary (--tmp)"
echo "[dev] RPC: ws://127.0.0.1:9944 (also HTTP); stop with Ctrl-C"
exec "$NODE_BIN" --dev --tmp "$@"
