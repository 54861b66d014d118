#!/usr/bin/env bash
# Agent-memory recall figures: native recall latency over 1,000 and 10,000 memories of
# 384 dimensions (pallet-memory's `recall_latency`), and the runtime's weights for
# `recall(n)` and `answer(n)` at those sizes from the generated weights.rs (wasm,
# `scripts/benchmark.sh pallet_memory`). Not part of CI.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$INFERCHAIN_ROOT"
SKIP_WASM_BUILD=1 cargo test --release -q -p pallet-memory recall_latency -- --ignored --nocapture 2>&1 \
    | grep '^recall over'
python3 - <<'PY'
import re
src = open("pallets/memory/src/weights.rs").read()
body = src.split("impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T>")[1].split("// For tests")[0]
def weight(name, n):
    f = re.search(r"fn %s\(\w+: u32, ?\) -> Weight \{(.*?)\n    \}" % name, body, re.S).group(1)
    base = int(re.search(r"from_parts\(([\d_]+),", f).group(1).replace("_", ""))
    slope = re.search(r"from_parts\(([\d_]+), \d+\)\.saturating_mul\(\w+\.into\(\)\)", f)
    slope = int(slope.group(1).replace("_", "")) if slope else 0
    reads = sum(int(r) for r in re.findall(r"reads\((\d+)_u64\)", f))
    per_read = re.findall(r"reads\(\(?(\d+)_u64\)?\.saturating_mul\(\w+\.into\(\)\)\)", f)
    per_read = sum(int(r) for r in per_read)
    return (base + slope * n) / 1e9, reads, per_read
READ_US = 8.0  # ParityDbWeight: one read
for n in (1_000, 10_000):
    for name in ("recall", "answer"):
        ms, reads, per = weight(name, n)
        total = ms + (reads + per * n) * READ_US / 1e3
        print(f"{name}({n}): {ms:.2f} ms of compute in wasm + {reads + per * n} reads = {total:.1f} ms of block weight ({total / 10:.1f}% of a block's second)")
PY
