"""Writes models/tiny-mlp/model.onnx: a 4 -> 8 -> 3 MLP (Gemm, Relu, Gemm, Softmax) with
seeded weights. The dev chain pre-registers it, so its bytes are committed and this
script only documents (and can reproduce) how they were made.

    ~/.cache/inferchain/venv/bin/python scripts/make_tiny_mlp.py
"""
import pathlib
import random

import onnx
from onnx import TensorProto, helper

rng = random.Random(20261124)


def weights(name, rows, cols):
    values = [round(rng.uniform(-1.0, 1.0), 4) for _ in range(rows * cols)]
    return helper.make_tensor(name, TensorProto.FLOAT, [rows, cols], values)


def bias(name, n):
    return helper.make_tensor(name, TensorProto.FLOAT, [n], [round(rng.uniform(-0.5, 0.5), 4) for _ in range(n)])


graph = helper.make_graph(
    [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ],
    "tiny_mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    [weights("w1", 4, 8), bias("b1", 8), weights("w2", 8, 3), bias("b2", 3)],
)
model = helper.make_model(graph, producer_name="inferchain", opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.checker.check_model(model)
out = pathlib.Path(__file__).resolve().parent.parent / "models" / "tiny-mlp" / "model.onnx"
out.write_bytes(model.SerializeToString())
print(f"wrote {out} ({out.stat().st_size} bytes)")
