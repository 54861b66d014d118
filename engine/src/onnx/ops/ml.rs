//! The `ai.onnx.ml` domain, which scikit-learn, XGBoost and LightGBM exports use:
//! `Scaler`, `Normalizer`, `LinearRegressor`, `LinearClassifier`, `ArrayFeatureExtractor`
//! here, the tree ensembles in `tree_ensemble.rs`.
//!
//! Defined to the bit like the rest of the engine: dot products are the kernels' matrix
//! product (one FMA chain per output from +0, then `+ intercept`), sums and norms the
//! kernels' `sum`, `sum_squares` and `max`, `SOFTMAX` the kernels' row softmax, `LOGISTIC`
//! their sigmoid. Labels are integers (`classlabels_ints` / `classlabels_int64s`): the
//! canonical I/O has no string tensors, so a string-labelled classifier is refused at
//! load, as is every form below that the engine does not compute as the spec defines
//! ([`refusal`]).

use super::{attrs, matmul, tree_ensemble, Inputs, Value};
use crate::numerics;
use candle_core::{bail, DType, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use inferchain_kernels::Unary;

/// The domain's name in a model.
pub const DOMAIN: &str = "ai.onnx.ml";

/// The `ai.onnx.ml` operators the engine runs.
pub const OPS: &[&str] = &[
    "ArrayFeatureExtractor",
    "Scaler",
    "Normalizer",
    "LinearRegressor",
    "LinearClassifier",
    "TreeEnsembleRegressor",
    "TreeEnsembleClassifier",
];

/// Why `node` (an `ai.onnx.ml` operator of [`OPS`]) would not run as the spec defines it,
/// if it would not: checked at load.
pub fn refusal(node: &NodeProto) -> Option<String> {
    let op = node.op_type.as_str();
    let post = attrs::string(node, "post_transform", "NONE");
    match op {
        "Normalizer" => {
            let norm = attrs::string(node, "norm", "MAX");
            (!matches!(norm.as_str(), "MAX" | "L1" | "L2"))
                .then(|| format!("norm `{norm}` is not MAX, L1 or L2"))
        }
        "LinearRegressor" | "TreeEnsembleRegressor" if post != "NONE" => Some(format!(
            "post_transform `{post}` on a regressor is not supported (only NONE)"
        )),
        "LinearClassifier" | "TreeEnsembleClassifier"
            if !matches!(post.as_str(), "NONE" | "SOFTMAX" | "LOGISTIC") =>
        {
            Some(format!(
                "post_transform `{post}` is not supported (NONE, SOFTMAX, LOGISTIC are)"
            ))
        }
        "LinearClassifier" | "TreeEnsembleClassifier"
            if attrs::has(node, "classlabels_strings") =>
        {
            Some(
                "string class labels: the canonical I/O has no string tensors; export \
                 integer labels (encode the classes as 0..n)"
                    .into(),
            )
        }
        "TreeEnsembleRegressor" | "TreeEnsembleClassifier" => tree_ensemble::refusal(node),
        _ => None,
    }
}

/// Runs `node`, an `ai.onnx.ml` operator.
/// `trees` are a tree ensemble's, parsed at load (`tree_ensemble::prepare`).
pub fn run(
    node: &NodeProto,
    inputs: &Inputs<'_>,
    trees: Option<&tree_ensemble::Ensemble>,
) -> Result<Vec<Value>> {
    if node.op_type == "ArrayFeatureExtractor" {
        let y = array_feature_extractor(inputs.required(0)?, inputs.required(1)?)?;
        return Ok(vec![Value::Tensor(y)]);
    }
    let input = inputs.required(0)?;
    let x = features(&node.op_type, input)?;
    let tensors = match node.op_type.as_str() {
        // Same shape out as in.
        "Scaler" => vec![scaler(node, &x)?.reshape(input.dims())?],
        "Normalizer" => vec![normalizer(node, &x)?.reshape(input.dims())?],
        "LinearRegressor" => vec![linear_regressor(node, &x)?],
        "LinearClassifier" => {
            let (labels, scores) = linear_classifier(node, &x)?;
            vec![labels, scores]
        }
        "TreeEnsembleRegressor" => vec![tree_ensemble::regressor(node, &x, trees)?],
        "TreeEnsembleClassifier" => {
            let (labels, scores) = tree_ensemble::classifier(node, &x, trees)?;
            vec![labels, scores]
        }
        other => bail!("ai.onnx.ml.{other} is not supported"),
    };
    Ok(tensors.into_iter().map(Value::Tensor).collect())
}

/// The input as f32 rows `[N, F]`: a 1-D input is one row; integers are converted (as
/// onnxruntime compares them, in f32). Doubles are refused: onnxruntime computes on them
/// in double, which an f32 engine would not match to the bit where it matters (a
/// threshold between two doubles that round to one float).
fn features(op: &str, x: &Tensor) -> Result<Tensor> {
    let x = match x.rank() {
        1 => x.unsqueeze(0)?,
        2 => x.clone(),
        r => bail!("ai.onnx.ml.{op}: input of rank {r}; expected [N, F] or [F]"),
    };
    match x.dtype() {
        DType::F32 => Ok(x),
        DType::I64 | DType::U8 | DType::U32 => x.to_dtype(DType::F32),
        DType::F64 => bail!(
            "ai.onnx.ml.{op}: double input; the engine computes this domain in f32 (export \
             with float inputs)"
        ),
        other => bail!("ai.onnx.ml.{op}: {other:?} input"),
    }
}

/// `ArrayFeatureExtractor(x, indices)`: the elements at `indices` along `x`'s last axis,
/// for every leading position; a 1-D `x` gives `[1, len(indices)]` (as onnxruntime does).
fn array_feature_extractor(x: &Tensor, indices: &Tensor) -> Result<Tensor> {
    let op = "ai.onnx.ml.ArrayFeatureExtractor";
    let last = match x.rank() {
        0 => bail!("{op}: a scalar input has no axis to select from"),
        r => r - 1,
    };
    let n = x.dim(last)?;
    let picked = indices
        .flatten_all()?
        .to_dtype(DType::I64)?
        .to_vec1::<i64>()?;
    if let Some(i) = picked.iter().find(|&&i| i < 0 || i as usize >= n) {
        bail!("{op}: index {i} outside 0..{n}")
    }
    let count = picked.len();
    let index = Tensor::from_vec(
        picked.into_iter().map(|i| i as u32).collect::<Vec<_>>(),
        count,
        x.device(),
    )?;
    let y = x.contiguous()?.index_select(&index, last)?;
    if x.rank() == 1 {
        y.reshape((1, count))
    } else {
        Ok(y)
    }
}

/// A per-feature list of `f` values, or one value for every feature.
fn per_feature(op: &str, name: &str, values: &[f32], f: usize) -> Result<Vec<f32>> {
    match values.len() {
        1 => Ok(vec![values[0]; f]),
        n if n == f => Ok(values.to_vec()),
        n => bail!("ai.onnx.ml.{op}: `{name}` has {n} values for {f} features"),
    }
}

/// `Scaler`: `(x - offset) * scale`, each operation rounded once.
fn scaler(node: &NodeProto, x: &Tensor) -> Result<Tensor> {
    let f = x.dim(1)?;
    let offset = per_feature(
        "Scaler",
        "offset",
        attrs::floats(node, "offset").unwrap_or(&[0.0]),
        f,
    )?;
    let scale = per_feature(
        "Scaler",
        "scale",
        attrs::floats(node, "scale").unwrap_or(&[1.0]),
        f,
    )?;
    let mut values = numerics::to_f32_vec("Scaler", x)?;
    for row in values.chunks_mut(f.max(1)) {
        for ((v, o), s) in row.iter_mut().zip(&offset).zip(&scale) {
            *v = (*v - o) * s;
        }
    }
    numerics::tensor(values, x.dims())
}

/// `Normalizer`: each row divided by its largest value (`MAX`), the sum of its absolute
/// values (`L1`) or its Euclidean norm (`L2`); a row whose divisor is 0 is left as it is
/// (as onnxruntime leaves it).
fn normalizer(node: &NodeProto, x: &Tensor) -> Result<Tensor> {
    let f = x.dim(1)?;
    let norm = attrs::string(node, "norm", "MAX");
    let isa = numerics::isa();
    let mut values = numerics::to_f32_vec("Normalizer", x)?;
    let mut abs = vec![0f32; f];
    for row in values.chunks_mut(f.max(1)) {
        let divisor = match norm.as_str() {
            "MAX" => inferchain_kernels::max(isa, row),
            "L1" => {
                for (a, v) in abs.iter_mut().zip(row.iter()) {
                    *a = v.abs();
                }
                inferchain_kernels::sum(isa, &abs)
            }
            "L2" => inferchain_kernels::lanes::sqrt(inferchain_kernels::sum_squares(isa, row)),
            other => bail!("ai.onnx.ml.Normalizer: norm `{other}`"),
        };
        if divisor != 0.0 {
            row.iter_mut().for_each(|v| *v /= divisor);
        }
    }
    numerics::tensor(values, x.dims())
}

/// `x · Wᵀ + b` for `coefficients` W `[rows, F]` (row-major) and `intercepts` b.
fn affine(op: &str, node: &NodeProto, x: &Tensor, rows: usize) -> Result<Tensor> {
    let f = x.dim(1)?;
    let w = attrs::floats(node, "coefficients").unwrap_or(&[]);
    if w.len() != rows * f {
        bail!(
            "ai.onnx.ml.{op}: {} coefficients for {rows} outputs of {f} features",
            w.len()
        )
    }
    let wt = Tensor::from_slice(w, (rows, f), x.device())?
        .t()?
        .contiguous()?;
    let y = matmul::matmul(x, matmul::RightOperand::Tensor(&wt), None)?;
    match attrs::floats(node, "intercepts") {
        None | Some([]) => Ok(y),
        Some(b) if b.len() == rows => y.broadcast_add(&Tensor::from_slice(b, rows, x.device())?),
        Some(b) => bail!("ai.onnx.ml.{op}: {} intercepts for {rows} outputs", b.len()),
    }
}

/// `LinearRegressor`: `targets` outputs per row.
fn linear_regressor(node: &NodeProto, x: &Tensor) -> Result<Tensor> {
    let targets = attrs::int(node, "targets", 1);
    if targets < 1 {
        bail!("ai.onnx.ml.LinearRegressor: targets = {targets}")
    }
    affine("LinearRegressor", node, x, targets as usize)
}

/// `LinearClassifier`: one score per class (one coefficient row per label), the label
/// of the first highest score, then the post-transform of the scores.
fn linear_classifier(node: &NodeProto, x: &Tensor) -> Result<(Tensor, Tensor)> {
    let labels = attrs::ints(node, "classlabels_ints")
        .unwrap_or(&[])
        .to_vec();
    let f = x.dim(1)?;
    let coefficients = attrs::floats(node, "coefficients").map_or(0, <[f32]>::len);
    let rows = coefficients.checked_div(f).unwrap_or(0);
    if labels.len() < 2 || rows != labels.len() {
        bail!(
            "ai.onnx.ml.LinearClassifier: {rows} coefficient rows for {} labels; the engine \
             runs one row per label (re-export binary models with both rows)",
            labels.len()
        )
    }
    let scores = affine("LinearClassifier", node, x, rows)?;
    classify("LinearClassifier", node, &labels, scores)
}

/// The label of each row's first highest score, and the post-transformed scores.
pub fn classify(
    op: &str,
    node: &NodeProto,
    labels: &[i64],
    scores: Tensor,
) -> Result<(Tensor, Tensor)> {
    let classes = labels.len();
    let mut values = numerics::to_f32_vec(op, &scores)?;
    let mut chosen = Vec::with_capacity(values.len() / classes.max(1));
    for row in values.chunks(classes.max(1)) {
        let mut best = 0;
        for (i, v) in row.iter().enumerate() {
            if *v > row[best] {
                best = i;
            }
        }
        chosen.push(labels[best]);
    }
    let isa = numerics::isa();
    match attrs::string(node, "post_transform", "NONE").as_str() {
        "NONE" => {}
        "LOGISTIC" => inferchain_kernels::unary_in_place(isa, Unary::Sigmoid, &mut values),
        "SOFTMAX" => {
            let mut out = vec![0f32; values.len()];
            for (y, x) in out.chunks_mut(classes).zip(values.chunks(classes)) {
                inferchain_kernels::softmax(isa, x, y);
            }
            values = out;
        }
        other => bail!("ai.onnx.ml.{op}: post_transform `{other}`"),
    }
    let n = chosen.len();
    Ok((
        Tensor::from_vec(chosen, n, scores.device())?,
        numerics::tensor(values, (n, classes))?,
    ))
}
