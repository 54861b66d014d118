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

import lightgbm
import numpy as np
import onnx
import onnxruntime as ort
import xgboost
from onnxmltools import convert_lightgbm, convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
