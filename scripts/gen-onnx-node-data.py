"""Writes the onnx package's per-operator backend tests ("node" cases) as test data.

The onnx wheel ships its model-level backend data (pytorch-converted, pytorch-operator,
simple) but not the ~1,900 per-operator cases; it ships the Python that makes them
(`onnx.backend.test.case.node`), each an operator at one opset with inputs and the
outputs the spec's reference computes. This script writes them in the wheel's own layout
(`node/<case>/model.onnx`, `test_data_set_N/{input,output}_K.pb`) so that
engine/tests/onnx_conformance.rs reads them like the other folders.

Seeded: the cases draw random inputs with numpy's global generator.

Usage: python gen-onnx-node-data.py OUTPUT_DIR
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings

import numpy as np
from onnx import TensorProto, numpy_helper


def serialize(value, value_info) -> bytes:
    kind = value_info.type
    if kind.HasField("map_type"):
        return numpy_helper.from_dict(value, value_info.name).SerializeToString()
    if kind.HasField("sequence_type"):
        return numpy_helper.from_list(value, value_info.name).SerializeToString()
    if kind.HasField("optional_type"):
        return numpy_helper.from_optional(value, value_info.name).SerializeToString()
    if isinstance(value, TensorProto):
        return value.SerializeToString()
    return numpy_helper.from_array(value, value_info.name).SerializeToString()


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    np.random.seed(0)
    warnings.simplefilter("ignore")
    import onnx.backend.test.case.node as node_cases

    cases = node_cases.collect_testcases(None)
    staging = out + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    written = skipped = 0
    for case in cases:
        if case.kind != "node" or case.model is None or not case.data_sets:
            skipped += 1
            continue
        case_dir = os.path.join(staging, "node", case.name)
        try:
            os.makedirs(case_dir)
            with open(os.path.join(case_dir, "model.onnx"), "wb") as f:
                f.write(case.model.SerializeToString())
            graph = case.model.graph
            for i, (inputs, outputs) in enumerate(case.data_sets):
                set_dir = os.path.join(case_dir, f"test_data_set_{i}")
                os.makedirs(set_dir)
                for j, value in enumerate(inputs):
                    with open(os.path.join(set_dir, f"input_{j}.pb"), "wb") as f:
                        f.write(serialize(value, graph.input[j]))
                for j, value in enumerate(outputs):
                    with open(os.path.join(set_dir, f"output_{j}.pb"), "wb") as f:
                        f.write(serialize(value, graph.output[j]))
            written += 1
        except Exception as e:  # a case the helpers cannot write is left out, and counted
            shutil.rmtree(case_dir, ignore_errors=True)
            skipped += 1
            print(f"skipped {case.name}: {e}", file=sys.stderr)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)
    print(f"wrote {written} node cases to {out} ({skipped} left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
