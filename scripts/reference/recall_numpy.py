"""Exact top-k recall of agent memories, written from docs/MEMORY.md's definition with
numpy (not from the Rust code): the independent reference `pallets/memory` tests against.

stdin (little-endian): u32 n, u32 d, u32 q, u32 k; n*d f32 memory embeddings (row per
memory); n u32 memory ids; q*d f32 queries. stdout: JSON, per query the k best
[id, score] pairs, best first.
"""
import json
import sys

import numpy as np


def fixed_point(x):
    """round(x * 2^14), ties away from zero, clamped to +-32767, NaN as 0."""
    y = x.astype(np.float64) * 16384.0
    q = np.trunc(y + np.copysign(0.5, y))
    q = np.clip(q, -32767, 32767)
    q[np.isnan(y)] = 0
    return q.astype(np.int64)


def main():
    raw = sys.stdin.buffer.read()
    n, d, nq, k = np.frombuffer(raw[:16], dtype="<u4")
    off = 16
    mem = np.frombuffer(raw[off:off + 4 * n * d], dtype="<f4").reshape(n, d)
    off += 4 * n * d
    ids = np.frombuffer(raw[off:off + 4 * n], dtype="<u4").astype(np.int64)
    off += 4 * n
    queries = np.frombuffer(raw[off:off + 4 * nq * d], dtype="<f4").reshape(nq, d)
    m = fixed_point(mem)
    out = []
    for query in queries:
        scores = m @ fixed_point(query)
        # Highest score first; equal scores: the lower id first.
        order = np.lexsort((ids, -scores))[:k]
        out.append([[int(ids[i]), int(scores[i])] for i in order])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
