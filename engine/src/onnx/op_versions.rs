//! The operator allow-list: which versions of which operators the engine runs exactly,
//! checked when a model loads (so `model import` refuses, and so does every executor).
//!
//! ONNX versions an operator by the opset it last changed in (its "since" versions); a
//! model's opset import for a domain picks, for each operator, the newest version at or
//! below it. The table below holds each supported operator's since-versions as the
//! `onnx` package 1.23.2 defines them (`onnx.defs.get_all_schemas_with_history()`), and
//! the first of them the engine implements as the spec defines it. A model is refused,
//! with a named error, when:
//!
//! - a node belongs to a domain other than the default one (`ai.onnx`): `ai.onnx.ml`,
//!   `com.microsoft` or a model-local function would otherwise run as a default-domain
//!   operator of the same name, or not at all;
//! - its default-domain opset is newer than the table knows ([`MAX_OPSET`]): a future
//!   version of an operator may mean something else;
//! - an operator does not exist at the model's opset, or its version there is older than
//!   the first exact one (`Reshape` 1 takes its shape as an attribute, `Cast` 1 its type as
//!   a string, `Tile` 1 other inputs, `Pad` 1 another attribute, `Resize` 10 no `roi`);
//! - a node uses an attribute or input form the engine would run differently from the
//!   spec (see [`attribute_refusal`]): legacy `axis` broadcasting, batch statistics in
//!   `BatchNormalization`, a training-mode `Dropout`, `Shape` with `start`/`end`, `Split`
//!   by `num_outputs`, `Squeeze` with no axes.
//!
//! An operator missing from the table is left to the engine's own check
//! (`super::ops::check_supported`), which names it as unsupported.

use candle_onnx::onnx::{type_proto, GraphProto, ModelProto, NodeProto, TensorProto};
use std::collections::HashMap;

use crate::error::{EngineError, Result};

/// The newest default-domain opset the table is written against (onnx 1.23.2).
pub const MAX_OPSET: i64 = 28;

/// The `ai.onnx.ml` domain's name in a model.
const ML_DOMAIN: &str = super::ops::ml::DOMAIN;

/// The newest `ai.onnx.ml` opset the table is written against (onnx 1.23.2).
pub const ML_MAX_OPSET: i64 = 5;

/// The `ai.onnx.ml` operators the engine runs, with their since-versions (onnx 1.23.2;
/// version 3 of the tree ensembles adds double-precision attributes, which are refused,
/// and 5 deprecates them for `TreeEnsemble` without changing their meaning).
const ML_TABLE: &[OpVersions] = &[
    op("ArrayFeatureExtractor", &[1]),
    op("LinearClassifier", &[1]),
    op("LinearRegressor", &[1]),
    op("Normalizer", &[1]),
    op("Scaler", &[1]),
    op("TreeEnsembleClassifier", &[1, 3, 5]),
    op("TreeEnsembleRegressor", &[1, 3, 5]),
];

/// Versions that remove an `ai.onnx.ml` operator.
const ML_DEPRECATED: &[(&str, i64)] =
    &[("TreeEnsembleClassifier", 5), ("TreeEnsembleRegressor", 5)];

/// The opset assumed for a model that names none for the default domain.
pub const DEFAULT_OPSET: i64 = 21;

/// One operator: its since-versions, and the first of them the engine runs exactly.
struct OpVersions {
    op: &'static str,
    since: &'static [i64],
    first_exact: i64,
}

const fn op(op: &'static str, since: &'static [i64]) -> OpVersions {
    OpVersions {
        op,
        since,
        first_exact: since[0],
    }
}

const fn from(op: &'static str, since: &'static [i64], first_exact: i64) -> OpVersions {
    OpVersions {
        op,
        since,
        first_exact,
    }
}

/// Every default-domain operator the engine runs (directly, through candle-onnx, or
/// rewritten by `crate::legalize`), with its since-versions.
const TABLE: &[OpVersions] = &[
    op("Abs", &[1, 6, 13]),
    op("Add", &[1, 6, 7, 13, 14]),
    op("And", &[1, 7]),
    op("ArgMax", &[1, 11, 12, 13]),
    op("ArgMin", &[1, 11, 12, 13]),
    op("AveragePool", &[1, 7, 10, 11, 19, 22]),
    op("BatchNormalization", &[1, 6, 7, 9, 14, 15]),
    from("Cast", &[1, 6, 9, 13, 19, 21, 23, 24, 25, 28], 6),
    op("Ceil", &[1, 6, 13]),
    op("Clip", &[1, 6, 11, 12, 13]),
    op("Concat", &[1, 4, 11, 13]),
    op("ConcatFromSequence", &[11]),
    op("Constant", &[1, 9, 11, 12, 13, 19, 21, 23, 24, 25]),
    op("ConstantOfShape", &[9, 20, 21, 23, 24, 25]),
    op("Conv", &[1, 11, 22]),
    op("ConvInteger", &[10]),
    op("ConvTranspose", &[1, 11, 22]),
    op("CumSum", &[11, 14]),
    op("DepthToSpace", &[1, 11, 13, 28]),
    op("DequantizeLinear", &[10, 13, 19, 21, 23, 24, 25, 28]),
    op("Div", &[1, 6, 7, 13, 14]),
    op("Dropout", &[1, 6, 7, 10, 12, 13, 22]),
    op("DynamicQuantizeLinear", &[11]),
    op("Einsum", &[12, 28]),
    op("Elu", &[1, 6, 22]),
    op("Equal", &[1, 7, 11, 13, 19]),
    op("Erf", &[9, 13]),
    op("Exp", &[1, 6, 13]),
    op("Expand", &[8, 13]),
    op("Flatten", &[1, 9, 11, 13, 21, 23, 24, 25]),
    op("Floor", &[1, 6, 13]),
    op("Gather", &[1, 11, 13]),
    op("GatherElements", &[11, 13]),
    op("Gelu", &[20]),
    op("Gemm", &[1, 6, 7, 9, 11, 13]),
    op("GlobalAveragePool", &[1, 22]),
    op("GlobalMaxPool", &[1, 22]),
    op("Greater", &[1, 7, 9, 13]),
    op("GreaterOrEqual", &[12, 16]),
    op("GroupNormalization", &[18, 21]),
    op("HardSigmoid", &[1, 6, 22]),
    op("HardSwish", &[14, 22]),
    op("Identity", &[1, 13, 14, 16, 19, 21, 23, 24, 25]),
    op("If", &[1, 11, 13, 16, 19, 21, 23, 24, 25]),
    op("InstanceNormalization", &[1, 6, 22]),
    op("LayerNormalization", &[17]),
    op("LeakyRelu", &[1, 6, 16]),
    op("Less", &[1, 7, 9, 13]),
    op("LessOrEqual", &[12, 16]),
    op("Log", &[1, 6, 13]),
    op("LogSoftmax", &[1, 11, 13]),
    op("LRN", &[1, 13]),
    op("MatMul", &[1, 9, 13]),
    op("MatMulInteger", &[10]),
    op("Max", &[1, 6, 8, 12, 13]),
    op("MaxPool", &[1, 8, 10, 11, 12, 22]),
    op("Mean", &[1, 6, 8, 13]),
    op("Min", &[1, 6, 8, 12, 13]),
    op("Mul", &[1, 6, 7, 13, 14]),
    op("Neg", &[1, 6, 13]),
    op("NonMaxSuppression", &[10, 11]),
    op("Not", &[1]),
    op("OneHot", &[9, 11, 28]),
    op("Or", &[1, 7]),
    from("Pad", &[1, 2, 11, 13, 18, 19, 21, 23, 24, 25], 2),
    op("Pow", &[1, 7, 12, 13, 15]),
    op("PRelu", &[1, 6, 7, 9, 16]),
    op("QLinearConv", &[10]),
    op("QLinearMatMul", &[10, 21]),
    op("QuantizeLinear", &[10, 13, 19, 21, 23, 24, 25, 28]),
    op("Range", &[11, 27]),
    op("Reciprocal", &[1, 6, 13]),
    op("ReduceMax", &[1, 11, 12, 13, 18, 20]),
    op("ReduceMean", &[1, 11, 13, 18]),
    op("ReduceMin", &[1, 11, 12, 13, 18, 20]),
    op("ReduceSum", &[1, 11, 13]),
    op("Relu", &[1, 6, 13, 14]),
    from("Reshape", &[1, 5, 13, 14, 19, 21, 23, 24, 25], 5),
    from("Resize", &[10, 11, 13, 18, 19], 11),
    op("Round", &[11, 22]),
    op("ScatterND", &[11, 13, 16, 18]),
    op("Selu", &[1, 6, 22]),
    op("SequenceAt", &[11]),
    op("SequenceConstruct", &[11]),
    op("SequenceEmpty", &[11]),
    op("SequenceErase", &[11]),
    op("SequenceInsert", &[11]),
    op("SequenceLength", &[11]),
    op("Shape", &[1, 13, 15, 19, 21, 23, 24, 25]),
    op("Shrink", &[9]),
    op("Sigmoid", &[1, 6, 13]),
    op("Sign", &[9, 13]),
    op("Size", &[1, 13, 19, 21, 23, 24, 25]),
    op("Slice", &[1, 10, 11, 13]),
    op("Softmax", &[1, 11, 13]),
    op("Softplus", &[1, 22]),
    op("Softsign", &[1, 22]),
    op("SpaceToDepth", &[1, 13, 28]),
    op("Split", &[1, 2, 11, 13, 18]),
    op("SplitToSequence", &[11, 24]),
    op("Sqrt", &[1, 6, 13]),
    op("Squeeze", &[1, 11, 13, 21, 23, 24, 25]),
    op("Sub", &[1, 6, 7, 13, 14]),
    op("Sum", &[1, 6, 8, 13]),
    op("Tanh", &[1, 6, 13]),
    op("ThresholdedRelu", &[10, 22]),
    from("Tile", &[1, 6, 13], 6),
    op("TopK", &[1, 10, 11, 24]),
    op("Transpose", &[1, 13, 21, 23, 24, 25]),
    op("Trilu", &[14]),
    op("Unsqueeze", &[1, 11, 13, 21, 23, 24, 25]),
    op("Where", &[9, 16]),
    op("Xor", &[1, 7]),
];

/// Operators that, before opset 7, broadcast by a `broadcast`/`axis` attribute pair.
const LEGACY_BROADCAST: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less",
];

/// The opset a model imports for the default domain.
pub fn default_opset(model: &ModelProto) -> i64 {
    default_opset_of(model)
}

/// The model's `ai.onnx.ml` opset, if it imports the domain.
pub fn ml_opset(model: &ModelProto) -> Option<i64> {
    model
        .opset_import
        .iter()
        .find(|o| o.domain == ML_DOMAIN)
        .map(|o| o.version)
}

fn default_opset_of(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(DEFAULT_OPSET)
}

/// Checks every node of `model` (subgraphs included) against the allow-list.
pub fn check(model: &ModelProto) -> Result<()> {
    // An exporter may list a domain twice at one version (skl2onnx does); two versions
    // would leave the operators' meaning open.
    for (domain, is) in [
        (
            "ai.onnx",
            (|d: &str| d.is_empty() || d == "ai.onnx") as fn(&str) -> bool,
        ),
        (ML_DOMAIN, |d: &str| d == ML_DOMAIN),
    ] {
        let mut versions: Vec<i64> = model
            .opset_import
            .iter()
            .filter(|o| is(&o.domain))
            .map(|o| o.version)
            .collect();
        versions.sort_unstable();
        versions.dedup();
        if versions.len() > 1 {
            return Err(EngineError::UnsupportedOpset {
                domain: domain.into(),
                version: versions[0],
                reason: format!("the model imports {domain} at versions {versions:?}"),
            });
        }
    }
    let ml_opset = ml_opset(model);
    if let Some(v) = ml_opset.filter(|v| !(1..=ML_MAX_OPSET).contains(v)) {
        return Err(EngineError::UnsupportedOpset {
            domain: ML_DOMAIN.into(),
            version: v,
            reason: format!("the engine knows {ML_DOMAIN} opsets 1 to {ML_MAX_OPSET}"),
        });
    }
    if let Some(function) = model.functions.first() {
        return Err(EngineError::UnsupportedOperator {
            op: format!("{}.{}", function.domain, function.name),
            version: 0,
            reason: "model-local functions are not supported".into(),
        });
    }
    let opset = default_opset(model);
    if !(1..=MAX_OPSET).contains(&opset) {
        return Err(EngineError::UnsupportedOpset {
            domain: "ai.onnx".into(),
            version: opset,
            reason: format!("the engine knows default-domain opsets 1 to {MAX_OPSET}"),
        });
    }
    match &model.graph {
        Some(graph) => check_graph(graph, (opset, ml_opset), &HashMap::new(), false),
        None => Ok(()),
    }
}

/// What a node's check may look at beyond the node.
struct Scope<'a> {
    /// Ranks the graph declares.
    ranks: HashMap<&'a str, usize>,
    /// Values known at load: initializers and `Constant` outputs, of this graph and the
    /// graphs around it.
    constants: HashMap<&'a str, &'a TensorProto>,
    /// Inside an `If` branch, which candle-onnx runs whole: the engine's own forms and
    /// `crate::legalize`'s rewrites do not reach it.
    in_branch: bool,
    /// The model's `ai.onnx.ml` opset, if it imports the domain.
    ml_opset: Option<i64>,
}

fn check_graph<'a>(
    graph: &'a GraphProto,
    opsets: (i64, Option<i64>),
    outer: &HashMap<&'a str, &'a TensorProto>,
    in_branch: bool,
) -> Result<()> {
    let (opset, ml_opset) = opsets;
    let mut constants = outer.clone();
    constants.extend(graph.initializer.iter().map(|t| (t.name.as_str(), t)));
    for node in graph.node.iter().filter(|n| n.op_type == "Constant") {
        if let (Some(out), Some(t)) = (
            node.output.first(),
            node.attribute
                .iter()
                .find(|a| a.name == "value")
                .and_then(|a| a.t.as_ref()),
        ) {
            constants.insert(out.as_str(), t);
        }
    }
    let scope = Scope {
        ranks: declared_ranks(graph),
        constants,
        in_branch,
        ml_opset,
    };
    for node in &graph.node {
        check_node(node, opset, &scope)?;
        for attr in &node.attribute {
            for g in attr.g.iter().chain(&attr.graphs) {
                check_graph(g, opsets, &scope.constants, true)?;
            }
        }
    }
    Ok(())
}

/// The integer or float values of a constant input, if the scope knows them.
fn constant_values(scope: &Scope<'_>, node: &NodeProto, index: usize) -> Option<Vec<f64>> {
    let name = node.input.get(index).filter(|n| !n.is_empty())?;
    let proto = scope.constants.get(name.as_str())?;
    let tensor = candle_onnx::eval::get_tensor(proto, name).ok()?;
    tensor
        .flatten_all()
        .and_then(|t| t.to_dtype(candle_core::DType::F64))
        .and_then(|t| t.to_vec1::<f64>())
        .ok()
}

/// The rank of every value whose shape the graph declares (inputs, outputs, value infos)
/// or fixes (initializers).
fn declared_ranks(graph: &GraphProto) -> HashMap<&str, usize> {
    let mut ranks = HashMap::new();
    for info in graph
        .input
        .iter()
        .chain(&graph.output)
        .chain(&graph.value_info)
    {
        if let Some(type_proto::Value::TensorType(t)) =
            info.r#type.as_ref().and_then(|t| t.value.as_ref())
        {
            if let Some(shape) = &t.shape {
                ranks.insert(info.name.as_str(), shape.dim.len());
            }
        }
    }
    for init in &graph.initializer {
        ranks.insert(init.name.as_str(), init.dims.len());
    }
    ranks
}

fn check_node(node: &NodeProto, opset: i64, scope: &Scope<'_>) -> Result<()> {
    let op = node.op_type.as_str();
    if node.domain == ML_DOMAIN {
        return check_ml_node(node, scope.ml_opset);
    }
    if !(node.domain.is_empty() || node.domain == "ai.onnx") {
        return Err(EngineError::UnsupportedOperator {
            op: format!("{}.{op}", node.domain),
            version: opset,
            reason: format!(
                "the engine runs only the default ONNX domain, not `{}`",
                node.domain
            ),
        });
    }
    let Some(entry) = TABLE.iter().find(|e| e.op == op) else {
        // Not ours to name here: `ops::check_supported` refuses it as unsupported.
        return Ok(());
    };
    let Some(version) = version_at(entry, opset) else {
        return Err(EngineError::UnsupportedOperator {
            op: op.into(),
            version: opset,
            reason: format!(
                "it does not exist in opset {opset}; it was introduced in opset {}",
                entry.since[0]
            ),
        });
    };
    if version < entry.first_exact {
        return Err(EngineError::UnsupportedOperator {
            op: op.into(),
            version,
            reason: format!(
                "the engine runs it exactly from version {}; re-export the model at opset {} or newer",
                entry.first_exact, entry.first_exact
            ),
        });
    }
    if let Some(reason) = attribute_refusal(node, version, scope) {
        return Err(EngineError::UnsupportedOperator {
            op: op.into(),
            version,
            reason,
        });
    }
    Ok(())
}

/// An `ai.onnx.ml` node: an operator of [`ML_TABLE`] at the model's ML opset, in a form
/// the engine computes as the spec defines it.
fn check_ml_node(node: &NodeProto, ml_opset: Option<i64>) -> Result<()> {
    let op = format!("{ML_DOMAIN}.{}", node.op_type);
    let refuse = |version: i64, reason: String| EngineError::UnsupportedOperator {
        op: op.clone(),
        version,
        reason,
    };
    let Some(opset) = ml_opset else {
        return Err(refuse(
            0,
            format!("the model uses {ML_DOMAIN} but does not import it"),
        ));
    };
    if node.op_type == "ZipMap" {
        return Err(refuse(
            opset,
            "it outputs a sequence of maps, which the canonical I/O cannot carry; export \
             the classifier's probabilities as a tensor (skl2onnx: options={'zipmap': False})"
                .into(),
        ));
    }
    let Some(entry) = ML_TABLE.iter().find(|e| e.op == node.op_type) else {
        let known: Vec<&str> = ML_TABLE.iter().map(|e| e.op).collect();
        return Err(refuse(
            opset,
            format!("of {ML_DOMAIN} the engine runs {}", known.join(", ")),
        ));
    };
    let Some(version) = version_at(entry, opset) else {
        return Err(refuse(
            opset,
            format!(
                "it does not exist in {ML_DOMAIN} opset {opset}; it was introduced in {}",
                entry.since[0]
            ),
        ));
    };
    if ML_DEPRECATED.contains(&(entry.op, version)) {
        return Err(refuse(
            version,
            format!("{ML_DOMAIN} opset {opset} removes it (deprecated for TreeEnsemble); export at opset 3"),
        ));
    }
    match super::ops::ml::refusal(node) {
        Some(reason) => Err(refuse(version, reason)),
        None => Ok(()),
    }
}

/// The operator's version in effect at `opset`: its newest since-version not above it.
fn version_at(entry: &OpVersions, opset: i64) -> Option<i64> {
    entry.since.iter().copied().filter(|&v| v <= opset).max()
}

fn int_attr(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn string_attr(node: &NodeProto, name: &str) -> Option<String> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

fn has_attr(node: &NodeProto, name: &str) -> bool {
    node.attribute.iter().any(|a| a.name == name)
}

fn has_input(node: &NodeProto, index: usize) -> bool {
    node.input.get(index).is_some_and(|n| !n.is_empty())
}

/// Why a node of a supported version still would not run as the spec defines it.
fn attribute_refusal(node: &NodeProto, version: i64, scope: &Scope<'_>) -> Option<String> {
    let op = node.op_type.as_str();
    let ranks = &scope.ranks;
    if scope.in_branch {
        if let Some(reason) = branch_refusal(node, scope) {
            return Some(format!("inside an If branch, {reason}"));
        }
    }
    if version < 7 && LEGACY_BROADCAST.contains(&op) {
        if let Some(axis) = int_attr(node, "axis") {
            // Before opset 7, B's dimensions line up with A's from `axis` on; that is
            // numpy broadcasting only when they are A's trailing dimensions.
            let rank = |i: usize| node.input.get(i).and_then(|n| ranks.get(n.as_str()));
            let numpy = matches!((rank(0), rank(1)), (Some(&a), Some(&b)) if a >= b && axis == (a - b) as i64);
            if !numpy {
                return Some(
                    "legacy broadcasting along `axis` (opset < 7) that is not numpy \
                     broadcasting, or whose operand ranks the graph does not declare"
                        .into(),
                );
            }
        }
    }
    match op {
        "BatchNormalization" if version < 7 && int_attr(node, "is_test") != Some(1) => {
            Some("without `is_test = 1` it normalizes by batch statistics".into())
        }
        "BatchNormalization" if version < 9 && int_attr(node, "spatial") == Some(0) => {
            Some("`spatial = 0` (per-element statistics) is not supported".into())
        }
        "BatchNormalization" if int_attr(node, "training_mode").unwrap_or(0) != 0 => {
            Some("training mode normalizes by batch statistics".into())
        }
        "Dropout" if version < 7 && int_attr(node, "is_test") != Some(1) => {
            Some("without `is_test = 1` it drops at random".into())
        }
        "Dropout" if has_input(node, 2) => {
            Some("a `training_mode` input could make it drop at random".into())
        }
        "Concat" if version < 4 && !has_attr(node, "axis") => {
            Some("version 1 without `axis` is not supported".into())
        }
        "Shape" if has_attr(node, "start") || has_attr(node, "end") => {
            Some("`start` and `end` are not supported".into())
        }
        "Split" if has_attr(node, "num_outputs") => Some(
            "`num_outputs` is not supported (uneven splits would come out wrong); \
             give the sizes as the `split` input"
                .into(),
        ),
        "ScatterND"
            if !matches!(
                string_attr(node, "reduction").as_deref(),
                None | Some("none") | Some("add")
            ) =>
        {
            Some("reductions other than `none` and `add` are not supported".into())
        }
        "Transpose" if !has_attr(node, "perm") => {
            Some("without `perm` (reversing every axis) is not supported".into())
        }
        "Flatten" if int_attr(node, "axis").is_some_and(|a| a < 0) => {
            Some("a negative `axis` is not supported".into())
        }
        // TensorProto.DataType: 6 INT32, 9 BOOL.
        "Cast" if matches!(int_attr(node, "to"), Some(6) | Some(9)) => Some(
            "casting to int32 (it would come out int64) or to bool (it would truncate, \
             not test for zero) is not supported"
                .into(),
        ),
        // TensorProto.DataType: 1 FLOAT, 2 UINT8, 7 INT64, 10 FLOAT16, 11 DOUBLE, 12 UINT32.
        "Cast" if !matches!(int_attr(node, "to"), Some(1 | 2 | 7 | 10 | 11 | 12)) => Some(format!(
            "casting to element type {} is not supported (float, double, float16, int64, \
             uint8 and uint32 are)",
            int_attr(node, "to").unwrap_or(0)
        )),
        "ArgMax" | "ArgMin" if int_attr(node, "select_last_index").unwrap_or(0) != 0 => {
            Some("`select_last_index = 1` is not supported".into())
        }
        "Dropout" | "MaxPool" if node.output.iter().skip(1).any(|o| !o.is_empty()) => {
            Some("only the first output is supported (not the mask or indices)".into())
        }
        "Resize" => resize_refusal(node, version),
        // TensorProto.DataType 1: FLOAT (0: unset, the scale's type).
        "QuantizeLinear" if int_attr(node, "precision").is_some_and(|p| p != 0 && p != 1) => {
            Some("a `precision` other than float32 is not supported".into())
        }
        "DequantizeLinear" if int_attr(node, "output_dtype").is_some_and(|t| t != 0 && t != 1) => {
            Some("an `output_dtype` other than float32 is not supported".into())
        }
        "Squeeze" if !has_input(node, 1) && !has_attr(node, "axes") => {
            Some("without axes it would keep a leading dimension of size 1".into())
        }
        _ => None,
    }
}

/// `Resize` forms the engine does not compute (`super::ops::resize` computes every
/// other): antialiasing with `nearest` (the reference refuses it too), and modes or
/// policies the spec does not name.
fn resize_refusal(node: &NodeProto, version: i64) -> Option<String> {
    let named = |attr: &str, default: &str, known: &[&str]| {
        let value = string_attr(node, attr).unwrap_or_else(|| default.into());
        (!known.contains(&value.as_str())).then(|| format!("{attr} `{value}` is not defined"))
    };
    if version >= 18
        && int_attr(node, "antialias").unwrap_or(0) != 0
        && string_attr(node, "mode").is_none_or(|m| m == "nearest")
    {
        return Some("`antialias = 1` is defined for linear and cubic modes only".into());
    }
    if version >= 13
        && string_attr(node, "coordinate_transformation_mode").as_deref()
            == Some("tf_half_pixel_for_nn")
    {
        return Some("`tf_half_pixel_for_nn` exists in opset 11 only".into());
    }
    named("mode", "nearest", &["nearest", "linear", "cubic"])
        .or_else(|| {
            named(
                "keep_aspect_ratio_policy",
                "stretch",
                &["stretch", "not_larger", "not_smaller"],
            )
        })
        .or_else(|| {
            named(
                "nearest_mode",
                "round_prefer_floor",
                &["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"],
            )
        })
        .or_else(|| {
            named(
                "coordinate_transformation_mode",
                "half_pixel",
                &[
                    "half_pixel",
                    "half_pixel_symmetric",
                    "pytorch_half_pixel",
                    "align_corners",
                    "asymmetric",
                    "tf_crop_and_resize",
                    "tf_half_pixel_for_nn",
                ],
            )
        })
}

/// Why a node inside an `If` branch (run by candle-onnx as it is) would come out wrong:
/// forms the engine computes itself or rewrites at the top level only.
fn branch_refusal(node: &NodeProto, scope: &Scope<'_>) -> Option<String> {
    let op = node.op_type.as_str();
    let legacy = match op {
        "Clip" => has_attr(node, "min") || has_attr(node, "max"),
        "Pad" => has_attr(node, "pads"),
        "Slice" => has_attr(node, "starts"),
        "Split" => has_attr(node, "split"),
        "Squeeze" => has_attr(node, "axes"),
        _ => false,
    };
    if legacy {
        return Some(format!("`{op}` in its attribute form is not supported"));
    }
    match op {
        "Trilu" | "Tile" => Some(format!("`{op}` is not supported")),
        "Unsqueeze" => {
            let one_axis = match node.attribute.iter().find(|a| a.name == "axes") {
                Some(a) => a.ints.len() == 1,
                None => constant_values(scope, node, 1).is_some_and(|v| v.len() == 1),
            };
            (!one_axis).then(|| "`Unsqueeze` takes exactly one constant axis".into())
        }
        "ReduceMax" | "ReduceMin" if has_input(node, 1) => {
            let listed = constant_values(scope, node, 1).is_some_and(|v| !v.is_empty());
            (!listed).then(|| format!("`{op}`'s axes must be a non-empty constant"))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_onnx::onnx::{AttributeProto, OperatorSetIdProto};

    /// A `Resize` in the one mode candle-onnx runs (nearest, floor, asymmetric).
    fn resize(inputs: &[&str]) -> NodeProto {
        let mut n = node("Resize", inputs, &[]);
        for (name, value) in [
            ("mode", "nearest"),
            ("nearest_mode", "floor"),
            ("coordinate_transformation_mode", "asymmetric"),
        ] {
            n.attribute.push(AttributeProto {
                name: name.into(),
                s: value.as_bytes().to_vec(),
                ..Default::default()
            });
        }
        n
    }

    fn model(opset: i64, node: NodeProto) -> ModelProto {
        ModelProto {
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: opset,
            }],
            graph: Some(GraphProto {
                node: vec![node],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node(op: &str, inputs: &[&str], attrs: &[(&str, i64)]) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec!["y".into()],
            attribute: attrs
                .iter()
                .map(|(name, i)| AttributeProto {
                    name: name.to_string(),
                    i: *i,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn refusal(m: &ModelProto) -> (String, i64, String) {
        match check(m) {
            Err(EngineError::UnsupportedOperator {
                op,
                version,
                reason,
            }) => (op, version, reason),
            other => panic!("expected UnsupportedOperator, got {other:?}"),
        }
    }

    #[test]
    fn the_table_is_sorted_and_each_first_exact_version_is_a_since_version() {
        for pair in TABLE.windows(2) {
            assert!(
                pair[0].op.to_lowercase() < pair[1].op.to_lowercase(),
                "{} / {}",
                pair[0].op,
                pair[1].op
            );
        }
        for e in TABLE {
            assert!(e.since.contains(&e.first_exact), "{}", e.op);
            assert!(e.since.windows(2).all(|w| w[0] < w[1]), "{}", e.op);
            assert!(*e.since.last().unwrap() <= MAX_OPSET, "{}", e.op);
        }
    }

    #[test]
    fn the_table_covers_every_operator_the_engine_runs() {
        for op in super::super::ops::OWN
            .iter()
            .chain(super::super::ops::DELEGATED)
            .chain(super::super::ops::quantize::OPS)
        {
            assert!(TABLE.iter().any(|e| e.op == *op), "{op} has no versions");
        }
    }

    #[test]
    fn the_version_in_effect_is_the_newest_since_version_at_or_below_the_opset() {
        let softmax = TABLE.iter().find(|e| e.op == "Softmax").unwrap();
        assert_eq!(version_at(softmax, 12), Some(11));
        assert_eq!(version_at(softmax, 13), Some(13));
        assert_eq!(version_at(softmax, 28), Some(13));
        let gelu = TABLE.iter().find(|e| e.op == "Gelu").unwrap();
        assert_eq!(version_at(gelu, 19), None);
    }

    #[test]
    fn plain_models_at_every_known_opset_pass() {
        for opset in 7..=MAX_OPSET {
            check(&model(opset, node("Relu", &["x"], &[]))).unwrap();
            check(&model(opset, node("MatMul", &["a", "b"], &[]))).unwrap();
        }
    }

    #[test]
    fn an_unknown_or_absurd_opset_is_refused() {
        for opset in [0, -3, MAX_OPSET + 1, i64::MAX] {
            match check(&model(opset, node("Relu", &["x"], &[]))) {
                Err(EngineError::UnsupportedOpset { version, .. }) => assert_eq!(version, opset),
                other => panic!("opset {opset}: {other:?}"),
            }
        }
    }

    #[test]
    fn another_domain_is_refused_even_with_a_default_domain_name() {
        let mut gelu = node("Gelu", &["x"], &[]);
        gelu.domain = "com.microsoft".into();
        let (op, _, reason) = refusal(&model(20, gelu));
        assert_eq!(op, "com.microsoft.Gelu");
        assert!(reason.contains("com.microsoft"));
        let mut scaler = node("Scaler", &["x"], &[]);
        scaler.domain = "ai.onnx.ml".into();
        assert_eq!(refusal(&model(17, scaler)).0, "ai.onnx.ml.Scaler");
    }

    #[test]
    fn an_operator_before_it_exists_or_before_its_exact_version_is_refused() {
        let (op, version, reason) = refusal(&model(19, node("Gelu", &["x"], &[])));
        assert_eq!((op.as_str(), version), ("Gelu", 19));
        assert!(reason.contains("introduced in opset 20"), "{reason}");
        let (op, version, _) = refusal(&model(10, resize(&["x", "s"])));
        assert_eq!((op.as_str(), version), ("Resize", 10));
        let (op, version, _) = refusal(&model(4, node("Reshape", &["x"], &[])));
        assert_eq!((op.as_str(), version), ("Reshape", 1));
        check(&model(11, resize(&["x", "r", "", "sizes"]))).unwrap();
    }

    #[test]
    fn forms_the_engine_would_run_differently_are_refused() {
        let cases = [
            (
                6,
                node("Add", &["a", "b"], &[("broadcast", 1), ("axis", 1)]),
            ),
            (6, node("BatchNormalization", &["x"], &[("is_test", 0)])),
            (
                7,
                node(
                    "BatchNormalization",
                    &["x"],
                    &[("spatial", 0), ("is_test", 1)],
                ),
            ),
            (
                15,
                node("BatchNormalization", &["x"], &[("training_mode", 1)]),
            ),
            (13, node("Dropout", &["x", "r", "t"], &[])),
            (15, node("Shape", &["x"], &[("start", 1)])),
            (18, node("Split", &["x"], &[("num_outputs", 3)])),
            (13, node("Squeeze", &["x"], &[])),
        ];
        for (opset, n) in cases {
            let op = n.op_type.clone();
            let (named, _, _) = refusal(&model(opset, n));
            assert_eq!(named, op);
        }
        // The same operators in their exact forms pass.
        for (opset, n) in [
            (6, node("Add", &["a", "b"], &[("broadcast", 1)])),
            (6, node("BatchNormalization", &["x"], &[("is_test", 1)])),
            (15, node("BatchNormalization", &["x"], &[])),
            (13, node("Dropout", &["x", "r"], &[])),
            (15, node("Shape", &["x"], &[])),
            (18, node("Split", &["x", "s"], &[])),
            (13, node("Squeeze", &["x", "axes"], &[])),
            (11, node("Squeeze", &["x"], &[("axes", 0)])),
        ] {
            check(&model(opset, n)).unwrap();
        }
    }

    #[test]
    fn legacy_axis_broadcasting_passes_only_where_it_is_numpy_broadcasting() {
        use candle_onnx::onnx::{
            tensor_shape_proto, type_proto, TensorShapeProto, TypeProto, ValueInfoProto,
        };
        let declared = |name: &str, rank: usize| ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: 1,
                    shape: Some(TensorShapeProto {
                        dim: vec![tensor_shape_proto::Dimension::default(); rank],
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let with_ranks = |axis: i64| {
            let mut m = model(
                6,
                node("Add", &["a", "b"], &[("broadcast", 1), ("axis", axis)]),
            );
            let graph = m.graph.as_mut().unwrap();
            graph.input = vec![declared("a", 3), declared("b", 2)];
            m
        };
        check(&with_ranks(1)).unwrap();
        assert_eq!(refusal(&with_ranks(0)).0, "Add");
    }

    fn string_node(op: &str, inputs: &[&str], name: &str, value: &str) -> NodeProto {
        let mut n = node(op, inputs, &[]);
        n.attribute.push(AttributeProto {
            name: name.into(),
            s: value.as_bytes().to_vec(),
            ..Default::default()
        });
        n
    }

    #[test]
    fn candle_forms_that_differ_from_the_spec_are_refused() {
        let refused = [
            (
                18,
                string_node("ScatterND", &["d", "i", "u"], "reduction", "mul"),
            ),
            (17, node("Transpose", &["x"], &[])),
            (17, node("Flatten", &["x"], &[("axis", -1)])),
            (17, node("Cast", &["x"], &[("to", 9)])),
            (17, node("Cast", &["x"], &[("to", 6)])),
            (6, node("Dropout", &["x"], &[("is_test", 0)])),
            (
                18,
                string_node(
                    "Resize",
                    &["x", "", "", "s"],
                    "keep_aspect_ratio_policy",
                    "fill",
                ),
            ),
        ];
        for (opset, n) in refused {
            let op = n.op_type.clone();
            assert_eq!(refusal(&model(opset, n)).0, op);
        }
        for (opset, n) in [
            (
                16,
                string_node("ScatterND", &["d", "i", "u"], "reduction", "add"),
            ),
            (17, node("Transpose", &["x"], &[("perm", 0)])),
            (17, node("Flatten", &["x"], &[("axis", 1)])),
            (17, node("Cast", &["x"], &[("to", 1)])),
            (13, resize(&["x", "", "", "sizes"])),
        ] {
            check(&model(opset, n)).unwrap();
        }
    }

    #[test]
    fn resize_refuses_only_nearest_antialiasing_and_modes_the_spec_does_not_name() {
        let with = |opset: i64, attrs: &[(&str, &str)], ints: &[(&str, i64)]| {
            let mut n = node("Resize", &["x", "", "s"], ints);
            for (name, value) in attrs {
                n.attribute.push(AttributeProto {
                    name: name.to_string(),
                    s: value.as_bytes().to_vec(),
                    r#type: 3,
                    ..Default::default()
                });
            }
            model(opset, n)
        };
        // Any scales, every mode and coordinate transformation the spec names.
        for mode in ["nearest", "linear", "cubic"] {
            for coordinates in ["half_pixel", "align_corners", "tf_crop_and_resize"] {
                let m = with(
                    13,
                    &[
                        ("mode", mode),
                        ("coordinate_transformation_mode", coordinates),
                    ],
                    &[],
                );
                check(&m).unwrap();
            }
        }
        check(&with(
            19,
            &[("coordinate_transformation_mode", "half_pixel_symmetric")],
            &[],
        ))
        .unwrap();
        for mode in ["linear", "cubic"] {
            check(&with(18, &[("mode", mode)], &[("antialias", 1)])).unwrap();
        }
        for refused in [
            with(13, &[("mode", "area")], &[]),
            with(13, &[("nearest_mode", "round_half_up")], &[]),
            with(13, &[("coordinate_transformation_mode", "corners")], &[]),
            with(18, &[("mode", "nearest")], &[("antialias", 1)]),
            with(18, &[], &[("antialias", 1)]),
            with(18, &[("keep_aspect_ratio_policy", "fill")], &[]),
        ] {
            assert_eq!(refusal(&refused).0, "Resize");
        }
    }

    #[test]
    fn duplicate_default_opsets_and_local_functions_are_refused() {
        let mut m = model(17, node("Relu", &["x"], &[]));
        m.opset_import.push(OperatorSetIdProto {
            domain: "ai.onnx".into(),
            version: 9,
        });
        assert!(matches!(
            check(&m),
            Err(EngineError::UnsupportedOpset { .. })
        ));
        // The same version twice, as skl2onnx writes it, is one opset.
        let mut m = model(17, node("Relu", &["x"], &[]));
        m.opset_import.push(OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        });
        check(&m).unwrap();
        let mut m = model(17, node("Relu", &["x"], &[]));
        m.functions.push(candle_onnx::onnx::FunctionProto {
            name: "Relu".into(),
            ..Default::default()
        });
        assert!(refusal(&m).2.contains("functions"));
    }

    #[test]
    fn forms_only_the_top_level_handles_are_refused_inside_branches() {
        let in_branch = |inner: NodeProto| {
            let mut branch = GraphProto::default();
            branch.node.push(inner);
            let mut if_node = node("If", &["c"], &[]);
            if_node.attribute.push(AttributeProto {
                name: "then_branch".into(),
                g: Some(branch),
                ..Default::default()
            });
            model(14, if_node)
        };
        for inner in [
            node("Clip", &["x"], &[("min", 0)]),
            node("Squeeze", &["x"], &[("axes", 0)]),
            node("Trilu", &["x"], &[]),
            node("Unsqueeze", &["x", "axes"], &[]),
            node("ReduceMax", &["x", "axes"], &[]),
        ] {
            let op = inner.op_type.clone();
            let (named, _, reason) = refusal(&in_branch(inner));
            assert_eq!(named, op);
            assert!(reason.starts_with("inside an If branch"), "{reason}");
        }
        // The same forms at the top level are the engine's to run.
        check(&model(11, node("Squeeze", &["x"], &[("axes", 0)]))).unwrap();
        check(&model(14, node("Trilu", &["x"], &[]))).unwrap();
        check(&in_branch(node("Relu", &["x"], &[]))).unwrap();
    }

    #[test]
    fn nodes_inside_subgraphs_are_checked_too() {
        let mut branch = GraphProto::default();
        branch.node.push(node("Shape", &["x"], &[("end", 2)]));
        let mut if_node = node("If", &["c"], &[]);
        if_node.attribute.push(AttributeProto {
            name: "then_branch".into(),
            g: Some(branch),
            ..Default::default()
        });
        assert_eq!(refusal(&model(17, if_node)).0, "Shape");
    }

    fn ml_model(ml: Option<i64>, n: NodeProto) -> ModelProto {
        let mut m = model(17, n);
        if let Some(version) = ml {
            m.opset_import.push(OperatorSetIdProto {
                domain: ML_DOMAIN.into(),
                version,
            });
        }
        m
    }

    fn ml_node(op: &str) -> NodeProto {
        let mut n = node(op, &["x"], &[]);
        n.domain = ML_DOMAIN.into();
        n
    }

    #[test]
    fn ml_operators_run_at_their_opsets_and_everything_else_there_is_refused() {
        check(&ml_model(Some(1), ml_node("Scaler"))).unwrap();
        check(&ml_model(Some(3), ml_node("TreeEnsembleRegressor"))).unwrap();
        for (ml, n, why) in [
            (None, ml_node("Scaler"), "does not import"),
            (Some(1), ml_node("SVMClassifier"), "the engine runs"),
            (Some(5), ml_node("TreeEnsembleRegressor"), "removes it"),
        ] {
            let (op, _, reason) = refusal(&ml_model(ml, n));
            assert!(op.starts_with("ai.onnx.ml."), "{op}");
            assert!(reason.contains(why), "{reason}");
        }
        assert!(matches!(
            check(&ml_model(Some(6), ml_node("Scaler"))),
            Err(EngineError::UnsupportedOpset { .. })
        ));
        // Forms the engine would not compute as the spec defines them.
        let mut probit = ml_node("LinearClassifier");
        probit.attribute.push(candle_onnx::onnx::AttributeProto {
            name: "post_transform".into(),
            s: b"PROBIT".to_vec(),
            ..Default::default()
        });
        assert!(refusal(&ml_model(Some(1), probit)).2.contains("PROBIT"));
        let mut doubles = ml_node("TreeEnsembleRegressor");
        doubles.attribute.push(candle_onnx::onnx::AttributeProto {
            name: "nodes_values_as_tensor".into(),
            ..Default::default()
        });
        assert!(refusal(&ml_model(Some(3), doubles)).2.contains("as_tensor"));
    }
}
