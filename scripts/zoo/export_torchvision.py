"""Exports torchvision architectures into the model zoo with torch.onnx (the TorchScript
exporter, opset 17), in the layout export_zoo.py writes: OUT/<name>/model.onnx,
input_0.npy and expected_<k>.npy (onnxruntime's outputs on seeded inputs).

The architectures are torchvision's own classes at small widths (seeded random weights,
batch-norm statistics randomized so that folding them into the convolutions matters, eval
mode), so the files stay small enough to commit:
- torchvision-shufflenet-v2: ShuffleNetV2 (depthwise convolutions, channel shuffle by
  Reshape/Transpose, Split, Concat, MaxPool), input [N, 3, 64, 64];
- torchvision-mobilenet-v2: MobileNetV2 at width 0.35 (inverted residuals, ReLU6 as
  Clip), input [N, 3, 64, 64];
- torchvision-mobilenet-v3-small: MobileNetV3-small at width 0.5 (hard-swish,
  squeeze-excitation with hard-sigmoid), input [N, 3, 64, 64].

Run by scripts/zoo/export_torchvision.sh in a venv of its own (torch is large).
Usage: python export_torchvision.py OUT
"""

from __future__ import annotations

import io
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision

SEED = 0
ROWS = 2


def architectures():
    tv = torchvision.models
    return {
        "torchvision-shufflenet-v2": lambda: tv.ShuffleNetV2(
            stages_repeats=[2, 2, 2],
            stages_out_channels=[16, 32, 64, 128, 256],
            num_classes=10,
        ),
        "torchvision-mobilenet-v2": lambda: tv.mobilenet_v2(width_mult=0.35, num_classes=10),
        "torchvision-mobilenet-v3-small": mobilenet_v3_small,
    }


def mobilenet_v3_small():
    """MobileNetV3-small at width 0.5 with the reduced tail and a 128-wide classifier."""
    from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf

    setting, _ = _mobilenet_v3_conf("mobilenet_v3_small", width_mult=0.5, reduced_tail=True)
    return MobileNetV3(setting, last_channel=128, num_classes=10)


def seeded(build):
    torch.manual_seed(SEED)
    model = build()
    generator = torch.Generator().manual_seed(SEED)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)
    return model.eval()


def export(model, x, outputs=("logits",), dynamic=None, opset=17) -> onnx.ModelProto:
    """torch.onnx's TorchScript exporter, input `input`, dynamic batch by default."""
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        (x,),
        buffer,
        input_names=["input"],
        output_names=list(outputs),
        dynamic_axes=dynamic or {"input": {0: "N"}, outputs[0]: {0: "N"}},
        opset_version=opset,
        do_constant_folding=True,
        dynamo=False,
    )
    return onnx.load_from_string(buffer.getvalue())


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    rng = np.random.default_rng(SEED)
    for name, build in architectures().items():
        model = seeded(build)
        x = rng.uniform(-1, 1, (ROWS, 3, 64, 64)).astype(np.float32)
        with torch.no_grad():
            proto = export(model, torch.from_numpy(x))
        onnx.checker.check_model(proto)
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        outputs = session.run(None, {"input": x})
        with torch.no_grad():
            reference = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(outputs[0], reference, rtol=1e-3, atol=1e-4)
        save(os.path.join(out, name), proto, x, outputs)
    return 0


def save(folder, proto, x, outputs) -> None:
    """Writes the zoo layout (model.onnx, input_0.npy, expected_<k>.npy) and a line."""
    os.makedirs(folder, exist_ok=True)
    onnx.save(proto, os.path.join(folder, "model.onnx"))
    np.save(os.path.join(folder, "input_0.npy"), x)
    for k, value in enumerate(outputs):
        np.save(os.path.join(folder, f"expected_{k}.npy"), np.asarray(value))
    ops = sorted({n.op_type for n in proto.graph.node})
    size = os.path.getsize(os.path.join(folder, "model.onnx")) / 1e3
    shapes = [tuple(np.asarray(v).shape) for v in outputs]
    print(f"{os.path.basename(folder)}: {size:.1f} kB; outputs {shapes}; {', '.join(ops)}")


if __name__ == "__main__":
    sys.exit(main())
