#!/usr/bin/env python3
"""Builds the benchmark graphs with the `onnx` helpers and seeded random weights.

- resnet-like.onnx: ResNet-18 layout (BatchNorm folded into the convolutions, as inference
  graphs ship; the stem max-pool unpadded, which candle-onnx requires), input f32 [N, 3, 224, 224], output logits f32 [N, 1000].
- mobilenet-like.onnx: MobileNetV2 layout (depthwise separable inverted residuals, ReLU6),
  input f32 [N, 3, 224, 224], output logits f32 [N, 1000].
- bert-base-like.onnx: BERT-base encoder (12 layers, hidden 768, 12 heads, FFN 3072,
  vocab 30522), input token ids i64 [N, 128], output last hidden state f32 [N, 128, 768].
- minilm.onnx: the same encoder graph with all-MiniLM-L6-v2's real weights plus mean pooling
  and L2 normalisation, input i64 [1, T], output f32 [1, 384]: onnxruntime's side of the
  MiniLM comparison (the engine runs the safetensors model through candle-transformers).

Also writes flops.json: multiply-adds x 2 per sample for each graph (per 128 tokens for
MiniLM). Usage: make_bench_models.py OUT_DIR [MINILM_DIR]
"""
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
rng = np.random.default_rng(20261124)


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.count, self.flops = [], [], 0, 0

    def name(self, prefix):
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, array, prefix="w"):
        n = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def model(self, inputs, outputs, name):
        g = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 8
        return m


def randn(*shape, scale=None):
    scale = scale if scale is not None else 1.0 / math.sqrt(np.prod(shape[1:]) or 1)
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def resnet_like():
    g = Graph()
    size = [224]

    def conv(x, cin, cout, k, stride, relu=True):
        pad = k // 2
        w = g.const(randn(cout, cin, k, k, scale=math.sqrt(2.0 / (cin * k * k))))
        b = g.const(np.zeros(cout, np.float32))
        y = g.op("Conv", [x, w, b], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)
        out = (size[0] + 2 * pad - k) // stride + 1
        g.flops += 2 * cout * cin * k * k * out * out
        size[0] = out
        return g.op("Relu", [y]) if relu else y

    x = conv("input", 3, 64, 7, 2)
    # Unpadded: candle-onnx's MaxPool has no padding (docs/BENCHMARKS.md).
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])
    size[0] = (size[0] - 3) // 2 + 1
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            s = stride if block == 0 else 1
            in_size = size[0]
            y = conv(x, cin, cout, 3, s)
            y = conv(y, cout, cout, 3, 1, relu=False)
            if s != 1 or cin != cout:
                size[0] = in_size
                shortcut = conv(x, cin, cout, 1, s, relu=False)
            else:
                shortcut = x
            x = g.op("Relu", [g.op("Add", [y, shortcut])])
            cin = cout
    x = g.op("ReduceMean", [x], axes=[2, 3], keepdims=0)
    w = g.const(randn(512, 1000))
    b = g.const(np.zeros(1000, np.float32))
    x = g.op("Add", [g.op("MatMul", [x, w]), b])
    g.flops += 2 * 512 * 1000
    g.nodes[-1].output[0] = "logits"
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])
    return g.model([inp], [out], "resnet-like"), g.flops


def encoder(g, ids, p, cfg, seq):
    """BERT encoder over i64 ids [N, seq]; p maps HF tensor names to arrays."""
    h, heads, layers = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    d, eps = h // heads, cfg["layer_norm_eps"]
    c = lambda name: g.const(p[name].astype(np.float32))
    eps_c = g.const(np.array(eps, np.float32))

    def layer_norm(x, w, b):
        mean = g.op("ReduceMean", [x], axes=[-1], keepdims=1)
        centred = g.op("Sub", [x, mean])
        var = g.op("ReduceMean", [g.op("Mul", [centred, centred])], axes=[-1], keepdims=1)
        normed = g.op("Div", [centred, g.op("Sqrt", [g.op("Add", [var, eps_c])])])
        return g.op("Add", [g.op("Mul", [normed, c(w)]), c(b)])

    def linear(x, pre):
        w = g.const(p[pre + ".weight"].T.copy().astype(np.float32))
        n_in, n_out = p[pre + ".weight"].shape[1], p[pre + ".weight"].shape[0]
        g.flops += 2 * seq * n_in * n_out
        return g.op("Add", [g.op("MatMul", [x, w]), c(pre + ".bias")])

    x = g.op("Gather", [c("embeddings.word_embeddings.weight"), ids], axis=0)
    pos = g.const(p["embeddings.position_embeddings.weight"][:seq].astype(np.float32))
    x = g.op("Add", [g.op("Add", [x, pos]), g.const(p["embeddings.token_type_embeddings.weight"][0].astype(np.float32))])
    x = layer_norm(x, "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias")
    split_shape = g.const(np.array([-1, seq, heads, d], np.int64))
    merge_shape = g.const(np.array([-1, seq, h], np.int64))
    scale = g.const(np.array(math.sqrt(d), np.float32))
    half, one, sqrt2 = (g.const(np.array(v, np.float32)) for v in (0.5, 1.0, math.sqrt(2.0)))
    for i in range(layers):
        pre = f"encoder.layer.{i}."
        heads_of = lambda t, perm: g.op("Transpose", [g.op("Reshape", [t, split_shape])], perm=perm)
        q = heads_of(linear(x, pre + "attention.self.query"), [0, 2, 1, 3])
        k = heads_of(linear(x, pre + "attention.self.key"), [0, 2, 3, 1])
        v = heads_of(linear(x, pre + "attention.self.value"), [0, 2, 1, 3])
        scores = g.op("Softmax", [g.op("Div", [g.op("MatMul", [q, k]), scale])], axis=-1)
        g.flops += 2 * 2 * seq * seq * h
        ctx = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [scores, v])], perm=[0, 2, 1, 3]), merge_shape])
        x = layer_norm(g.op("Add", [linear(ctx, pre + "attention.output.dense"), x]),
                       pre + "attention.output.LayerNorm.weight", pre + "attention.output.LayerNorm.bias")
        inter = linear(x, pre + "intermediate.dense")
        gelu = g.op("Mul", [g.op("Mul", [inter, half]), g.op("Add", [one, g.op("Erf", [g.op("Div", [inter, sqrt2])])])])
        x = layer_norm(g.op("Add", [linear(gelu, pre + "output.dense"), x]),
                       pre + "output.LayerNorm.weight", pre + "output.LayerNorm.bias")
    return x


def random_bert_params(cfg):
    h, ff, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    p = {
        "embeddings.word_embeddings.weight": randn(v, h, scale=0.02),
        "embeddings.position_embeddings.weight": randn(512, h, scale=0.02),
        "embeddings.token_type_embeddings.weight": randn(2, h, scale=0.02),
        "embeddings.LayerNorm.weight": np.ones(h, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(h, np.float32),
    }
    for i in range(cfg["num_hidden_layers"]):
        pre = f"encoder.layer.{i}."
        for name, (o, n) in {"attention.self.query": (h, h), "attention.self.key": (h, h),
                             "attention.self.value": (h, h), "attention.output.dense": (h, h),
                             "intermediate.dense": (ff, h), "output.dense": (h, ff)}.items():
            p[pre + name + ".weight"] = randn(o, n)
            p[pre + name + ".bias"] = np.zeros(o, np.float32)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            p[pre + ln + ".weight"] = np.ones(h, np.float32)
            p[pre + ln + ".bias"] = np.zeros(h, np.float32)
    return p


def bert_base_like(seq=128):
    cfg = dict(hidden_size=768, num_attention_heads=12, num_hidden_layers=12, intermediate_size=3072,
               vocab_size=30522, layer_norm_eps=1e-12)
    g = Graph()
    x = encoder(g, "input_ids", random_bert_params(cfg), cfg, seq)
    g.nodes[-1].output[0] = "last_hidden_state"
    inp = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", seq])
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["N", seq, 768])
    return g.model([inp], [out], "bert-base-like"), g.flops


def minilm(model_dir, seq=128):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference"))
    from minilm_numpy import load_safetensors

    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    g = Graph()
    x = encoder(g, "input_ids", load_safetensors(os.path.join(model_dir, "model.safetensors")), cfg, seq)
    pooled = g.op("ReduceMean", [x], axes=[1], keepdims=0)
    norm = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [pooled, pooled]), g.const(np.array([1], np.int64))], keepdims=1)])
    g.op("Div", [pooled, norm])
    g.nodes[-1].output[0] = "embedding"
    inp = helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, seq])
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, cfg["hidden_size"]])
    return g.model([inp], [out], "minilm"), g.flops


def mobilenet_like():
    """MobileNetV2 layout: inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1
    project), ReLU6 as Clip, input f32 [N, 3, 224, 224], output logits f32 [N, 1000]."""
    g = Graph()
    size = [224]
    lo, hi = g.const(np.float32(0.0), "min"), g.const(np.float32(6.0), "max")

    def conv(x, cin, cout, k, stride, group=1, relu6=True):
        pad = k // 2
        w = g.const(randn(cout, cin // group, k, k, scale=math.sqrt(2.0 / (cin // group * k * k))))
        b = g.const(np.zeros(cout, np.float32))
        y = g.op("Conv", [x, w, b], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group)
        out = (size[0] + 2 * pad - k) // stride + 1
        g.flops += 2 * cout * (cin // group) * k * k * out * out
        size[0] = out
        return g.op("Clip", [y, lo, hi]) if relu6 else y

    x = conv("input", 3, 32, 3, 2)
    cin = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = conv(x, cin, hidden, 1, 1) if t != 1 else x
            y = conv(y, hidden, hidden, 3, stride, group=hidden)
            y = conv(y, hidden, c, 1, 1, relu6=False)
            x = g.op("Add", [x, y]) if stride == 1 and cin == c else y
            cin = c
    x = conv(x, cin, 1280, 1, 1)
    x = g.op("ReduceMean", [x], axes=[2, 3], keepdims=0)
    w = g.const(randn(1280, 1000))
    b = g.const(np.zeros(1000, np.float32))
    x = g.op("Add", [g.op("MatMul", [x, w]), b])
    g.flops += 2 * 1280 * 1000
    g.nodes[-1].output[0] = "logits"
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])
    return g.model([inp], [out], "mobilenet-like"), g.flops


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    flops = {}
    builders = [("resnet-like", resnet_like), ("mobilenet-like", mobilenet_like), ("bert-base-like", bert_base_like)]
    if len(sys.argv) > 2:
        builders.append(("minilm", lambda: minilm(sys.argv[2])))
    for name, build in builders:
        path = os.path.join(out, f"{name}.onnx")
        model, f = build()
        flops[name] = f
        if not os.path.exists(path):
            onnx.checker.check_model(model)
            onnx.save(model, path)
        print(f"{name}: {os.path.getsize(path) / 1e6:.1f} MB, {f / 1e9:.2f} GFLOP per sample", file=sys.stderr)
    json.dump(flops, open(os.path.join(out, "flops.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
