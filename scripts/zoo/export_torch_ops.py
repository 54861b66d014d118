"""Exports the zoo's models for operators torch.onnx writes around a network rather than
inside it, in export_zoo.py's layout (OUT/<name>/model.onnx, input_0.npy,
expected_<k>.npy: onnxruntime's outputs on seeded inputs):

- torchvision-nms-detector: a small convolutional detector head (16 anchors per cell on
  a 4x4 grid: boxes as [x1, y1, x2, y2] offsets from each anchor, one score each), then
  torchvision.ops.nms at IoU 0.5 and the kept boxes and scores gathered: NonMaxSuppression
  and a data-dependent number of rows, input [1, 3, 32, 32];
- torch-antialias-downsample: convolutions around F.interpolate(scale 0.5, bilinear,
  antialias=True) and (bicubic, antialias=True), as Resize with antialias = 1 (opset 18),
  input [2, 3, 32, 32]. torch 2.5's TorchScript exporter cannot write antialiasing, so the
  network is exported with plain interpolation and its two Resize nodes are then marked
  `antialias = 1`; torch's own antialiased output checks onnxruntime's.

Run by scripts/zoo/export_torchvision.sh in the torch venv.
Usage: python export_torch_ops.py OUT
"""

from __future__ import annotations

import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
import torchvision
from export_torchvision import export, save

SEED = 0


class NmsDetector(torch.nn.Module):
    """Conv features -> per-anchor box offsets and scores -> NMS -> kept boxes, scores."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(),
        )
        self.boxes = torch.nn.Conv2d(32, 4 * 16, 1)
        self.scores = torch.nn.Conv2d(32, 16, 1)
        # Anchors: 16 per cell of the 4x4 grid, centred on the cell, 4 sizes x 4 ratios.
        cells = (torch.arange(4, dtype=torch.float32) + 0.5) * 8.0
        cy, cx = torch.meshgrid(cells, cells, indexing="ij")
        sizes = torch.tensor([6.0, 10.0, 14.0, 20.0])
        ratios = torch.tensor([0.5, 0.8, 1.25, 2.0])
        w = (sizes[:, None] * ratios.sqrt()[None, :]).reshape(-1)
        h = (sizes[:, None] / ratios.sqrt()[None, :]).reshape(-1)
        anchors = torch.stack(
            [
                cx[..., None] - w / 2,
                cy[..., None] - h / 2,
                cx[..., None] + w / 2,
                cy[..., None] + h / 2,
            ],
            dim=-1,
        )
        self.register_buffer("anchors", anchors.reshape(-1, 4))

    def forward(self, x):
        f = self.features(x)
        offsets = self.boxes(f).permute(0, 2, 3, 1).reshape(-1, 4)
        boxes = self.anchors + 4.0 * torch.tanh(offsets)
        scores = torch.sigmoid(self.scores(f).permute(0, 2, 3, 1).reshape(-1))
        keep = torchvision.ops.nms(boxes, scores, 0.5)
        return boxes[keep], scores[keep]


class AntialiasDownsample(torch.nn.Module):
    """Conv -> antialiased bilinear /2 -> conv -> antialiased bicubic /2 -> conv."""

    def __init__(self, antialias: bool = True) -> None:
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.c = torch.nn.Conv2d(8, 4, 1)
        self.antialias = antialias

    def forward(self, x):
        aa = self.antialias
        x = torch.relu(self.a(x))
        x = F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=aa)
        x = torch.relu(self.b(x))
        x = F.interpolate(x, scale_factor=0.5, mode="bicubic", antialias=aa)
        return self.c(x)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    rng = np.random.default_rng(SEED)
    cases = [
        (
            "torchvision-nms-detector",
            NmsDetector,
            (1, 3, 32, 32),
            ["boxes", "scores"],
            {"boxes": {0: "kept"}, "scores": {0: "kept"}},
            17,
        ),
        (
            "torch-antialias-downsample",
            AntialiasDownsample,
            (2, 3, 32, 32),
            ["features"],
            {"input": {0: "N"}, "features": {0: "N"}},
            18,
        ),
    ]
    for name, build, shape, outputs, dynamic, opset in cases:
        torch.manual_seed(SEED)
        model = build().eval()
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        with torch.no_grad():
            reference = [t.numpy() for t in _as_tuple(model(torch.from_numpy(x)))]
            if isinstance(model, AntialiasDownsample):
                model.antialias = False
            proto = export(model, torch.from_numpy(x), outputs, dynamic, opset)
        if isinstance(model, AntialiasDownsample):
            resizes = [n for n in proto.graph.node if n.op_type == "Resize"]
            assert len(resizes) == 2, [n.op_type for n in proto.graph.node]
            # What torch's antialiased kernels compute (PIL's filters): the window
            # cut at the edges and renormalized, and Keys' kernel with a = -0.5.
            for node in resizes:
                node.attribute.append(onnx.helper.make_attribute("antialias", 1))
                node.attribute.append(onnx.helper.make_attribute("exclude_outside", 1))
                mode = next(a.s for a in node.attribute if a.name == "mode")
                if mode == b"cubic":
                    for a in node.attribute:
                        if a.name == "cubic_coeff_a":
                            a.f = -0.5
        onnx.checker.check_model(proto)
        session = ort.InferenceSession(
            proto.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        got = session.run(None, {"input": x})
        for g, r in zip(got, reference):
            np.testing.assert_allclose(g, r, rtol=1e-3, atol=1e-4)
        save(os.path.join(out, name), proto, x, got)
    return 0


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


if __name__ == "__main__":
    sys.exit(main())
