"""The zoo's speed against onnxruntime, same files, same inputs, same thread count.

For each model under models/zoo: the engine's median latency (`inferchain model bench`,
the real CLI over a fresh store, on the case's `input_0.npy`: the model alone, as
onnxruntime's `session.run` is timed) and onnxruntime's (in this process), and their
ratio. The two are measured in alternating rounds (ZOO_ROUNDS, default 3) and the ratio
reported is the median of the rounds' ratios, so that a shared machine's slow spell
weighs on both sides alike. Run by scripts/zoo/bench.sh; not part of CI.

Usage: python bench_zoo.py CLI STORE ZOO THREADS ITERS
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort


def main() -> int:
    cli_path, store, zoo, threads, iters = sys.argv[1:6]
    # ZOO_ONLY=torch: only the models whose name contains it.
    only = os.environ.get("ZOO_ONLY", "")
    threads, iters = int(threads), int(iters)

    def cli(*args):
        out = subprocess.run(
            [cli_path, "--store", store, "--threads", str(threads), *args],
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout)

    rounds = int(os.environ.get("ZOO_ROUNDS", "3"))
    print(f"{threads} threads; median of {iters} runs after 1 warm-up, {rounds} rounds")
    print(f"{'model':<40} {'rows':>4} {'engine ms':>10} {'ort ms':>8} {'engine/ort':>10}")
    for name in sorted(os.listdir(zoo)):
        folder = os.path.join(zoo, name)
        path = os.path.join(folder, "model.onnx")
        if not os.path.isfile(path) or only not in name:
            continue
        npy = os.path.join(folder, "input_0.npy")
        x = np.load(npy)
        # Stored for local runs only: a benchmark needs no registration spec (image
        # models' inputs are over the chain's size limit).
        model_id = cli("model", "import", folder, "--local-only", "--json")["model"]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        feeds = {session.get_inputs()[0].name: x}
        session.run(None, feeds)
        engines, orts = [], []
        for _ in range(rounds):
            engines.append(
                cli("model", "bench", model_id, "--input", npy, "--iters", str(iters), "--json")[
                    "median_ms"
                ]
            )
            times = []
            for _ in range(iters):
                t = time.perf_counter()
                session.run(None, feeds)
                times.append((time.perf_counter() - t) * 1e3)
            orts.append(statistics.median(times))
        engine, o = statistics.median(engines), statistics.median(orts)
        ratio = statistics.median(e / r for e, r in zip(engines, orts))
        print(f"{name:<40} {len(x):>4} {engine:>10.3f} {o:>8.3f} {ratio:>10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
