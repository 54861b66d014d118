"""Writes models/tiny-cnn/model.onnx: a small image classifier (Conv, Relu, padded
MaxPool, strided Conv, Relu, GlobalAveragePool, Flatten, Gemm, Softmax) on a
[1, 3, 16, 16] input with seeded weights. The determinism matrix runs it, so the
engine's convolution and pooling paths are checked across threads and emulated CPUs; its
bytes are committed and this script documents (and can reproduce) how they were made.

    ~/.cache/inferchain/venv/bin/python scripts/make_tiny_cnn.py
"""
import pathlib
import random

import onnx
from onnx import TensorProto, helper

rng = random.Random(20261125)


def tensor(name, dims, scale):
    count = 1
    for d in dims:
        count *= d
    values = [round(rng.uniform(-scale, scale), 4) for _ in range(count)]
    return helper.make_tensor(name, TensorProto.FLOAT, dims, values)


graph = helper.make_graph(
    [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ],
    "tiny_cnn",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    [
        tensor("w1", [8, 3, 3, 3], 0.5),
        tensor("b1", [8], 0.1),
        tensor("w2", [16, 8, 3, 3], 0.3),
        tensor("b2", [16], 0.1),
        tensor("w3", [16, 4], 0.5),
        tensor("b3", [4], 0.1),
    ],
)
model = helper.make_model(graph, producer_name="inferchain", opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.checker.check_model(model)
out = pathlib.Path(__file__).resolve().parent.parent / "models" / "tiny-cnn" / "model.onnx"
out.write_bytes(model.SerializeToString())
print(f"wrote {out} ({out.stat().st_size} bytes)")
