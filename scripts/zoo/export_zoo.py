"""Exports the model zoo with the exporters themselves.

Each model is trained with a fixed seed on a dataset scikit-learn ships and converted by
its ecosystem's exporter: scikit-learn estimators and pipelines by skl2onnx, XGBoost and
LightGBM by onnxmltools (integer labels, `zipmap` off: the canonical I/O has tensors
only). onnxruntime runs each on seeded inputs. Written per model under OUT/<name>/: `model.onnx`,
`input_0.npy` and `expected_<k>.npy` for the graph's outputs in order.
engine/tests/zoo.rs checks the engine against them (rtol 1e-4 for floats, exact for
labels). Run by scripts/zoo/export.sh in its own venv (pinned in requirements.txt).

Usage: python export_zoo.py OUT
"""

from __future__ import annotations

import os
import sys
import tempfile

import lightgbm
import numpy as np
import onnx
import onnxruntime as ort
import xgboost
from onnxmltools import convert_lightgbm, convert_xgboost
from onnx import TensorProto, helper, numpy_helper
from onnxmltools.convert.common.data_types import FloatTensorType
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from skl2onnx import to_onnx
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
)
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, Normalizer, StandardScaler
from sklearn.tree import DecisionTreeRegressor

SEED = 0
ROWS = 16


def datasets():
    iris_x, iris_y = load_iris(return_X_y=True)
    wine_x, wine_y = load_wine(return_X_y=True)
    diab_x, diab_y = load_diabetes(return_X_y=True)
    cancer_x, cancer_y = load_breast_cancer(return_X_y=True)
    return {
        "iris": (iris_x.astype(np.float32), iris_y),
        "wine": (wine_x.astype(np.float32), wine_y),
        "diabetes": (diab_x.astype(np.float32), diab_y),
        "cancer": (cancer_x.astype(np.float32), cancer_y),
    }


def models():
    return {
        # name: (dataset, estimator, classifier?)
        "sklearn-logistic-regression": (
            "iris",
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            True,
        ),
        "sklearn-random-forest": (
            "wine",
            RandomForestClassifier(n_estimators=20, max_depth=5, random_state=SEED),
            True,
        ),
        "sklearn-gradient-boosting-classifier": (
            "iris",
            GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=SEED),
            True,
        ),
        "sklearn-gradient-boosting-regressor": (
            "diabetes",
            GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=SEED),
            False,
        ),
        "sklearn-extra-trees-regressor": (
            "diabetes",
            ExtraTreesRegressor(n_estimators=10, max_depth=6, random_state=SEED),
            False,
        ),
        "sklearn-decision-tree": (
            "diabetes",
            DecisionTreeRegressor(max_depth=6, random_state=SEED),
            False,
        ),
        "sklearn-binary-logistic-regression": (
            "cancer",
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            True,
        ),
        "sklearn-binary-random-forest": (
            "cancer",
            RandomForestClassifier(n_estimators=10, max_depth=4, random_state=SEED),
            True,
        ),
        "sklearn-binary-gradient-boosting": (
            "cancer",
            GradientBoostingClassifier(n_estimators=15, max_depth=2, random_state=SEED),
            True,
        ),
        "sklearn-normalized-linear-regression": (
            "diabetes",
            make_pipeline(Normalizer(), LinearRegression()),
            False,
        ),
        "sklearn-minmax-ridge": (
            "diabetes",
            make_pipeline(MinMaxScaler(), Ridge(alpha=0.5)),
            False,
        ),
        "sklearn-mlp-classifier": (
            "wine",
            make_pipeline(
                StandardScaler(),
                MLPClassifier(hidden_layer_sizes=(16,), max_iter=500, random_state=SEED),
            ),
            True,
        ),
    }


def boosting_models():
    """XGBoost and LightGBM, through onnxmltools (which writes opsets up to 15)."""
    return {
        "lightgbm-classifier": (
            "iris",
            lightgbm.LGBMClassifier(n_estimators=10, random_state=SEED, verbose=-1),
            convert_lightgbm,
            {"zipmap": False},
        ),
        "lightgbm-regressor": (
            "diabetes",
            lightgbm.LGBMRegressor(n_estimators=20, random_state=SEED, verbose=-1),
            convert_lightgbm,
            {},
        ),
        "xgboost-classifier": (
            "wine",
            xgboost.XGBClassifier(n_estimators=10, max_depth=3, random_state=SEED),
            convert_xgboost,
            {},
        ),
        "xgboost-binary-classifier": (
            "cancer",
            xgboost.XGBClassifier(n_estimators=10, max_depth=3, random_state=SEED),
            convert_xgboost,
            {},
        ),
        "xgboost-regressor": (
            "diabetes",
            xgboost.XGBRegressor(n_estimators=20, max_depth=3, random_state=SEED),
            convert_xgboost,
            {},
        ),
    }


def digits_cnn(rng):
    """A small float CNN over sklearn's 8x8 digits (seeded weights): a 3x3 convolution,
    a depthwise 3x3 convolution, max pooling, a dense layer. The quantizer's input."""

    def weight(name, shape, scale):
        value = (rng.standard_normal(shape) * scale).astype(np.float32)
        return numpy_helper.from_array(value, name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "w3"], ["m"]),
        helper.make_node("Add", ["m", "b3"], ["logits"]),
    ]
    initializers = [
        weight("w1", (8, 1, 3, 3), 0.5),
        weight("b1", (8,), 0.1),
        weight("w2", (8, 1, 3, 3), 0.4),
        weight("b2", (8,), 0.1),
        weight("w3", (8 * 4 * 4, 10), 0.1),
        weight("b3", (10,), 0.1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializers,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
    )


def upsampling_net(rng):
    """A small float upsampling network over the 8x8 digits (seeded weights), with Resize
    in the forms PyTorch and TensorFlow export: bilinear (pytorch_half_pixel), nearest
    (asymmetric, floor), bicubic (align_corners) and half_pixel linear by sizes."""

    def const(name, values, dtype=np.float32):
        return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)

    def resize(inp, out, scales=None, sizes=None, **attrs):
        inputs = [inp, "", scales or "", sizes or ""]
        return helper.make_node("Resize", inputs, [out], **attrs)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        resize("c1", "u1", scales="s2", mode="linear",
               coordinate_transformation_mode="pytorch_half_pixel"),
        helper.make_node("Relu", ["u1"], ["r1"]),
        resize("r1", "u2", scales="s15", mode="nearest",
               coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        resize("u2", "u3", scales="s075", mode="cubic",
               coordinate_transformation_mode="align_corners"),
        resize("u3", "u4", sizes="size", mode="linear",
               coordinate_transformation_mode="half_pixel"),
        helper.make_node("Conv", ["u4", "w2", "b2"], ["y"]),
    ]
    initializers = [
        numpy_helper.from_array((rng.standard_normal((4, 1, 3, 3)) * 0.5).astype(np.float32), "w1"),
        numpy_helper.from_array((rng.standard_normal(4) * 0.1).astype(np.float32), "b1"),
        numpy_helper.from_array((rng.standard_normal((2, 4, 1, 1)) * 0.5).astype(np.float32), "w2"),
        numpy_helper.from_array((rng.standard_normal(2) * 0.1).astype(np.float32), "b2"),
        const("s2", [1, 1, 2, 2]),
        const("s15", [1, 1, 1.5, 1.5]),
        const("s075", [1, 1, 0.75, 0.75]),
        const("size", [1, 4, 10, 7], np.int64),
    ]
    graph = helper.make_graph(
        nodes,
        "upsampling_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 10, 7])],
        initializers,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8
    )


class Calibration(CalibrationDataReader):
    """Rows fed one at a time to the static quantizer's calibration."""

    def __init__(self, name, rows):
        self.rows = iter([{name: row[None]} for row in rows])

    def get_next(self):
        return next(self.rows, None)


def quantized_models(float_mlp, rng, tmp):
    """onnxruntime's quantizer on a float MLP (dynamic: DynamicQuantizeLinear and
    MatMulInteger) and on the digits CNN (dynamic: ConvInteger; static in operator form:
    QLinearConv, QLinearMatMul; static QDQ, per channel)."""
    digits = (load_digits().images / 16.0).astype(np.float32)[:, None, :, :]
    cnn = digits_cnn(rng)
    cnn_path = os.path.join(tmp, "digits_cnn.onnx")
    onnx.save(cnn, cnn_path)
    mlp_path = os.path.join(tmp, "mlp.onnx")
    onnx.save(float_mlp, mlp_path)
    made = {}

    load = onnx.load
    out = os.path.join(tmp, "mlp-dynamic.onnx")
    quantize_dynamic(mlp_path, out, weight_type=QuantType.QInt8)
    made["ort-dynamic-quantized-mlp"] = (load(out), "wine")
    out = os.path.join(tmp, "cnn-dynamic.onnx")
    # onnxruntime's ConvInteger takes uint8 weights only.
    quantize_dynamic(
        cnn_path, out, weight_type=QuantType.QUInt8, op_types_to_quantize=["Conv", "MatMul"]
    )
    made["ort-dynamic-quantized-cnn"] = (load(out), digits)
    for name, fmt, per_channel in [
        ("ort-static-qoperator-cnn", QuantFormat.QOperator, False),
        ("ort-static-qdq-per-channel-cnn", QuantFormat.QDQ, True),
    ]:
        out = os.path.join(tmp, f"{name}.onnx")
        quantize_static(
            cnn_path,
            out,
            Calibration("x", digits[:64]),
            quant_format=fmt,
            op_types_to_quantize=["Conv", "MatMul"],
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        made[name] = (load(out), digits)
    return made


def write(out, name, model, x, rng) -> None:
    """Checks `model`, runs onnxruntime on ROWS jittered rows of `x`, writes the case."""
    onnx.checker.check_model(model)
    # An exporter that declares an output of one row (onnxmltools' LightGBM classifier
    # labels) gets one row: the engine holds outputs to their declared shapes.
    count = ROWS
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value == 1:
            print(f"{name}: output `{output.name}` is declared with one row; one row")
            count = 1
    # Rows from the data, jittered so no two models see only training points.
    rows = x[rng.choice(len(x), count, replace=False)]
    rows = (rows * rng.uniform(0.95, 1.05, rows.shape)).astype(np.float32)
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    outputs = session.run(None, {session.get_inputs()[0].name: rows})
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    onnx.save(model, os.path.join(folder, "model.onnx"))
    np.save(os.path.join(folder, "input_0.npy"), rows)
    for k, value in enumerate(outputs):
        value = np.asarray(value)
        if value.dtype == np.float64:
            value = value.astype(np.float32)
        np.save(os.path.join(folder, f"expected_{k}.npy"), value)
    ops = sorted({f"{n.domain or 'ai.onnx'}.{n.op_type}" for n in model.graph.node})
    print(f"{name}: {', '.join(ops)}")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    data = datasets()
    rng = np.random.default_rng(SEED)
    for name, (dataset, estimator, classifier) in models().items():
        x, y = data[dataset]
        estimator.fit(x, y)
        options = {"zipmap": False} if classifier else None
        model = to_onnx(
            estimator,
            x[:1],
            options={id(estimator): options} if options else None,
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        write(out, name, model, x, rng)
    for name, (dataset, estimator, convert, options) in boosting_models().items():
        x, y = data[dataset]
        estimator.fit(x, y)
        model = convert(
            estimator,
            initial_types=[("X", FloatTensorType([None, x.shape[1]]))],
            target_opset=15,
            **options,
        )
        write(out, name, model, x, rng)
    float_mlp = onnx.load(os.path.join(out, "sklearn-mlp-classifier", "model.onnx"))
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, source) in quantized_models(float_mlp, rng, tmp).items():
            x = data[source][0] if isinstance(source, str) else source
            write(out, name, model, x, rng)
    # Resize in the exporters' forms (after the others: the seeded stream stays theirs).
    digits = (load_digits().images / 16.0).astype(np.float32)[:, None, :, :]
    write(out, "onnx-resize-upsampling-net", upsampling_net(rng), digits, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
