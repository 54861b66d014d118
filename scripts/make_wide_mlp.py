"""Writes models/wide-mlp/model.onnx: Relu then one 64 -> 1024 Gemm (transB = 1), seeded
weights. Its Gemm reads 262 KiB of weights, over the dispute referee's 256 KiB operand
cap, so a dispute over that step is settled by the element-level walk (one 32-byte chunk
of its output recomputed on chain). The dev chain pre-registers it with its dispute
commitments, so its bytes are committed and this script only documents (and can
reproduce) how they were made.

    ~/.cache/inferchain/venv/bin/python scripts/make_wide_mlp.py
"""
import pathlib
import random

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = random.Random(20261126)
K, N = 64, 1024


def array(name, shape, scale):
    values = [round(rng.uniform(-scale, scale), 4) for _ in range(int(np.prod(shape)))]
    return numpy_helper.from_array(np.array(values, dtype=np.float32).reshape(shape), name)


graph = helper.make_graph(
    [
        helper.make_node("Relu", ["x"], ["xr"]),
        helper.make_node("Gemm", ["xr", "w", "b"], ["y"], transB=1),
    ],
    "wide_mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, K])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, N])],
    [array("w", [N, K], 0.25), array("b", [N], 0.5)],
)
model = helper.make_model(graph, producer_name="inferchain", opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.checker.check_model(model)
out = pathlib.Path(__file__).resolve().parent.parent / "models" / "wide-mlp" / "model.onnx"
out.parent.mkdir(parents=True, exist_ok=True)
onnx.save(model, out)
print(f"wrote {out} ({out.stat().st_size} bytes)")
