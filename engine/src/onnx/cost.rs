//! What an ONNX graph costs to run: the import-time checks and the meter behind
//! `crate::cost` (a model's registered [`ModelCost`]).
//!
//! A cost measured by one dry run at the declared maximum shapes bounds every request only
//! if nothing else decides how big a value gets, and if sizes only grow with the inputs'.
//! [`check_shapes_bounded`] makes that so. Every value is in one of three states:
//!
//! - *constant*: weights, `Constant`s, and what is computed from them alone;
//! - *shape*: computed from inputs' shapes (`Shape`, `Size`) by operations that never
//!   shrink as those grow — selecting and joining (`Gather`, `Concat`, `Slice`, …),
//!   `Add`, `Max`, `Min`, `Mul` by a non-negative constant or another shape value,
//!   `Sub` or `Div` of a constant (a positive one for `Div`), rounding (`Floor`, `Ceil`,
//!   `Round`), reductions;
//! - *data*: an input's data, or anything else computed from a shape value (`Sub`
//!   *from* a constant, `Div` *by* a shape, comparisons, `Where`, …).
//!
//! A data value may not reach an input that decides a size or rank (`ConstantOfShape`'s
//! shape, `Expand`'s, `Reshape`'s, `Tile`'s repeats, `Pad`'s pads and axes, `Slice`'s
//! bounds, `Resize`'s scales or sizes, `OneHot`'s depth, `TopK`'s k, split sizes, squeezed or reduced
//! axes, a sequence position) and `Range`'s start and step and an `If`'s condition must be
//! constants: otherwise the graph is refused (`UnboundedShape`). A hostile graph that
//! turns an 8-byte input into a 100 GB tensor, or one that allocates most for the
//! *smallest* input, is refused here, at import.
//!
//! [`CostMeter`] counts, node by node during a run, the floating-point operations (a
//! multiply-add as two: `MatMul`, `Gemm`, `Conv`, `ConvTranspose` by their products; any
//! other node one operation per element it reads or writes, whichever is more) and the
//! bytes of intermediate values alive at once (the plan frees each after its last
//! reader). Scratch space inside one operator is not counted.

use super::ops::Value;
use candle_core::Tensor;
use candle_onnx::onnx::{GraphProto, NodeProto};
use std::collections::{HashMap, HashSet};

use crate::error::{EngineError, Result};

/// The inputs of each operator whose *values* decide the size or rank of its outputs.
pub(super) fn shape_inputs(op: &str) -> &'static [usize] {
    match op {
        "ConstantOfShape" => &[0],
        "Expand" | "Reshape" | "Tile" | "OneHot" | "Split" | "Squeeze" | "Unsqueeze"
        | "SplitToSequence" | "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin"
        | "SequenceAt" | "SequenceErase" | "TopK" => &[1],
        "NonMaxSuppression" => &[2],
        "SequenceInsert" => &[2],
        "Range" => &[0, 1, 2],
        "Pad" => &[1, 3],
        "Slice" => &[1, 2, 3, 4],
        "Resize" => &[1, 2, 3],
        _ => &[],
    }
}

/// The inputs that must be constants outright: `Range`'s start and step (a larger start
/// or step gives a *shorter* range) and an `If`'s condition (a branch chosen by size).
fn constant_inputs(op: &str) -> &'static [usize] {
    match op {
        "Range" => &[0, 2],
        "If" => &[0],
        _ => &[],
    }
}

/// Where a value comes from, ordered: a value computed from several takes the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    Constant,
    Shape,
    Data,
}

/// Operators whose output grows (or stays) as any shape-valued input grows, whatever
/// else they read.
const NON_SHRINKING: &[&str] = &[
    "Gather",
    "GatherElements",
    "Concat",
    "Slice",
    "Squeeze",
    "Unsqueeze",
    "Reshape",
    "Flatten",
    "Identity",
    "Cast",
    "Expand",
    "Tile",
    "Add",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "Floor",
    "Ceil",
    "Round",
    "ReduceMax",
    "ReduceMin",
    "ReduceSum",
    "Range",
    "ConstantOfShape",
    "Split",
];

struct Analysis<'a> {
    origin: HashMap<String, Origin>,
    /// Constants known at load, for the sign of a `Mul` or `Div` operand.
    values: &'a HashMap<String, Tensor>,
}

impl Analysis<'_> {
    fn of(&self, name: &str) -> Origin {
        if name.is_empty() {
            return Origin::Constant;
        }
        self.origin.get(name).copied().unwrap_or(Origin::Constant)
    }

    /// Whether constant `name`'s values are all at least (`strict`: above) zero.
    fn sign_ok(&self, name: &str, strict: bool) -> bool {
        let Some(t) = self.values.get(name) else {
            return false;
        };
        t.flatten_all()
            .and_then(|t| t.to_dtype(candle_core::DType::F64))
            .and_then(|t| t.to_vec1::<f64>())
            .is_ok_and(|v| v.iter().all(|x| if strict { *x > 0.0 } else { *x >= 0.0 }))
    }

    /// The origin of what `node` outputs, from what it reads (`inner`: the highest
    /// origin its branches read).
    fn output_origin(&self, node: &NodeProto, inner: Origin) -> Origin {
        let op = node.op_type.as_str();
        if matches!(op, "Shape" | "Size") {
            return Origin::Shape;
        }
        let inputs: Vec<Origin> = node.input.iter().map(|i| self.of(i)).collect();
        let highest = inputs
            .iter()
            .copied()
            .chain([inner])
            .max()
            .unwrap_or(Origin::Constant);
        if highest != Origin::Shape {
            return highest;
        }
        let input = |i: usize| node.input.get(i).map(String::as_str).unwrap_or("");
        let grows = match op {
            "Mul" => (0..node.input.len())
                .all(|i| inputs[i] == Origin::Shape || self.sign_ok(input(i), false)),
            "Sub" => inputs.get(1) == Some(&Origin::Constant),
            "Div" => inputs.get(1) == Some(&Origin::Constant) && self.sign_ok(input(1), true),
            other => NON_SHRINKING.contains(&other),
        };
        if grows {
            Origin::Shape
        } else {
            Origin::Data
        }
    }
}

/// Refuses a graph where an input's data, or a value that may shrink as inputs grow,
/// decides a value's size (see the module doc). `weights` are the initializers.
pub fn check_shapes_bounded(graph: &GraphProto, weights: &HashMap<String, Tensor>) -> Result<()> {
    let mut values = weights.clone();
    collect_constants(graph, &mut values);
    let mut analysis = Analysis {
        origin: graph
            .input
            .iter()
            .filter(|i| !weights.contains_key(&i.name))
            .map(|i| (i.name.clone(), Origin::Data))
            .collect(),
        values: &values,
    };
    propagate(graph, &mut analysis)
}

/// `Constant` nodes' values, by output name (subgraphs included).
fn collect_constants(graph: &GraphProto, into: &mut HashMap<String, Tensor>) {
    for node in &graph.node {
        if node.op_type == "Constant" {
            let value = node
                .attribute
                .iter()
                .find(|a| a.name == "value")
                .and_then(|a| a.t.as_ref());
            if let (Some(out), Some(t)) = (node.output.first(), value) {
                if let Ok(t) = candle_onnx::eval::get_tensor(t, out) {
                    into.insert(out.clone(), t);
                }
            }
        }
        for g in node
            .attribute
            .iter()
            .flat_map(|a| a.g.iter().chain(&a.graphs))
        {
            collect_constants(g, into);
        }
    }
}

fn refuse(node: &NodeProto, input: &str) -> EngineError {
    EngineError::UnboundedShape {
        op: node.op_type.clone(),
        node: node.name.clone(),
        input: input.to_string(),
    }
}

fn propagate(graph: &GraphProto, a: &mut Analysis<'_>) -> Result<()> {
    for node in &graph.node {
        let op = node.op_type.as_str();
        for &i in shape_inputs(op) {
            if let Some(name) = node.input.get(i).filter(|n| a.of(n) == Origin::Data) {
                return Err(refuse(node, name));
            }
        }
        for &i in constant_inputs(op) {
            if let Some(name) = node.input.get(i).filter(|n| a.of(n) != Origin::Constant) {
                return Err(refuse(node, name));
            }
        }
        // Branches see the outer values; what they compute stays theirs, and their
        // outputs take the highest origin they read.
        let mut inner = Origin::Constant;
        for g in node
            .attribute
            .iter()
            .flat_map(|at| at.g.iter().chain(&at.graphs))
        {
            let mut branch = Analysis {
                origin: a.origin.clone(),
                values: a.values,
            };
            propagate(g, &mut branch)?;
            inner = inner.max(highest_read(g, &branch));
        }
        let origin = a.output_origin(node, inner);
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            a.origin.insert(out.clone(), origin);
        }
    }
    Ok(())
}

/// The highest origin among the values a graph's outputs are.
fn highest_read(graph: &GraphProto, a: &Analysis<'_>) -> Origin {
    graph
        .output
        .iter()
        .map(|o| a.of(&o.name))
        .max()
        .unwrap_or(Origin::Constant)
}

fn elems(value: &Value) -> u64 {
    match value {
        Value::Tensor(t) => t.elem_count() as u64,
        Value::Sequence(ts) => ts.iter().map(|t| t.elem_count() as u64).sum(),
    }
}

/// The bytes a value's tensors hold.
pub(super) fn bytes(value: &Value) -> u64 {
    let of = |t: &Tensor| (t.elem_count() as u64).saturating_mul(t.dtype().size_in_bytes() as u64);
    match value {
        Value::Tensor(t) => of(t),
        Value::Sequence(ts) => ts.iter().map(of).sum(),
    }
}

/// Counts a run's operations and its peak of live intermediate bytes.
#[derive(Debug, Default)]
pub struct CostMeter {
    /// The weights' names: held by the model, not by the run.
    weights: HashSet<String>,
    /// Where a dry run stops: no point finishing one whose cost is already refused.
    limit: Option<(u64, u64)>,
    pub flops: u64,
    pub peak_live_bytes: u64,
    /// Scratch the last node held while it ran (so far only `Resize`'s binary64 passes),
    /// counted on top of the values alive after it.
    scratch_bytes: u64,
}

impl CostMeter {
    pub fn new(weights: HashSet<String>) -> Self {
        CostMeter {
            weights,
            ..Default::default()
        }
    }

    /// A meter that reports [`Self::exceeded`] once the operations pass `flops` or the
    /// live bytes pass `live_bytes`.
    pub fn with_limit(mut self, flops: u64, live_bytes: u64) -> Self {
        self.limit = Some((flops, live_bytes));
        self
    }

    /// Whether the run so far is past the meter's limit.
    pub fn exceeded(&self) -> bool {
        self.limit
            .is_some_and(|(f, b)| self.flops > f || self.peak_live_bytes > b)
    }

    /// Adds one node's operations, from its inputs and what it produced.
    pub fn node(&mut self, node: &NodeProto, inputs: &[Option<&Value>], produced: &[&Value]) {
        let tensor = |i: usize| match inputs.get(i).copied().flatten() {
            Some(Value::Tensor(t)) => Some(t),
            _ => None,
        };
        let out: u64 = produced.iter().map(|v| elems(v)).sum();
        let product = match node.op_type.as_str() {
            // Each output element is a K-long dot product; K is A's last dimension
            // (`Gemm`: A's elements over the output's rows, whichever way A is stored).
            "MatMul" | "MatMulInteger" | "QLinearMatMul" => tensor(0)
                .and_then(|a| a.dims().last().copied())
                .map(|k| 2 * out * k as u64),
            "Gemm" => tensor(0).zip(produced.first()).and_then(|(a, y)| match y {
                Value::Tensor(y) => {
                    let m = y.dims().first().copied().unwrap_or(1).max(1) as u64;
                    Some(2 * out * (a.elem_count() as u64 / m) + out)
                }
                Value::Sequence(_) => None,
            }),
            // W is [M, C/group, k…]: each output element reads C/group × k… products.
            "Conv" | "ConvInteger" => {
                tensor(1).map(|w| 2 * out * w.dims()[1..].iter().product::<usize>() as u64)
            }
            "QLinearConv" => {
                tensor(3).map(|w| 2 * out * w.dims()[1..].iter().product::<usize>() as u64)
            }
            // W is [C, M/group, k…]: each input element scatters M/group × k… products.
            "ConvTranspose" => tensor(0).zip(tensor(1)).map(|(x, w)| {
                2 * x.elem_count() as u64 * w.dims()[1..].iter().product::<usize>() as u64
            }),
            // Each output element reads one window.
            "MaxPool" | "AveragePool" => node
                .attribute
                .iter()
                .find(|a| a.name == "kernel_shape")
                .map(|a| out.saturating_mul(a.ints.iter().map(|&k| k.max(1) as u64).product())),
            // A window of `size` squares and sums, and a power (counted as 20) per element.
            "LRN" => node
                .attribute
                .iter()
                .find(|a| a.name == "size")
                .map(|a| out.saturating_mul(2 * a.i.clamp(1, 1 << 20) as u64 + 20)),
            // Coefficients are attributes: each row reads all of them, multiply and add.
            "LinearClassifier" | "LinearRegressor" => tensor(0).map(|x| {
                let rows = x.dims().first().copied().unwrap_or(1) as u64;
                let coefficients = node
                    .attribute
                    .iter()
                    .find(|a| a.name == "coefficients")
                    .map_or(0, |a| a.floats.len() as u64);
                rows.saturating_mul(coefficients).saturating_mul(2).max(out)
            }),
            // Reading the trees (every node and weight, once per run), then at most every
            // node and weight per row (a bound: a walk visits one path per tree).
            "TreeEnsembleRegressor" | "TreeEnsembleClassifier" => tensor(0).map(|x| {
                let rows = x.dims().first().copied().unwrap_or(1) as u64;
                let listed = |name: &str| {
                    node.attribute
                        .iter()
                        .find(|a| a.name == name)
                        .map_or(0, |a| a.ints.len() as u64)
                };
                let size =
                    listed("nodes_treeids") + listed("target_treeids") + listed("class_treeids");
                rows.saturating_add(1).saturating_mul(size.max(1)).max(out)
            }),
            // Per output element and axis, a multiply-add per neighbour (4 for cubic).
            // Antialiased, each axis's pass reads about `taps / scale` neighbours per
            // output, which is at most `3 · taps` per input element plus two per output
            // (the scale is at least half an element over the input's length).
            // Per axis pass (last axis first, as `ops::resize` runs them), each of that
            // pass's outputs reads the filter's taps; the passes' binary64 buffers are
            // scratch (`resize_passes`).
            "Resize" => tensor(0).zip(produced.first()).and_then(|(x, y)| match y {
                Value::Tensor(y) => {
                    let (ops, scratch) = resize_passes(node, x.dims(), y.dims());
                    self.scratch_bytes = scratch;
                    Some(ops)
                }
                Value::Sequence(_) => None,
            }),
            // Every letter's index tuple: a product per operand and an addition.
            "Einsum" => {
                let dims: Option<Vec<&[usize]>> = (0..inputs.len())
                    .map(|i| tensor(i).map(|t| t.dims()))
                    .collect();
                dims.and_then(|d| super::ops::einsum_multiply_adds(node, &d))
            }
            // Per batch and class, a sort and every candidate against every box kept.
            "NonMaxSuppression" => tensor(0).zip(tensor(1)).and_then(|(b, s)| {
                // Read as the operator reads it (any integer or float type, as i64).
                let keep = tensor(2)
                    .and_then(|t| {
                        t.flatten_all()
                            .and_then(|t| t.to_dtype(candle_core::DType::I64))
                            .and_then(|t| t.to_vec1::<i64>())
                            .ok()
                    })
                    .and_then(|v| v.first().copied());
                super::ops::non_max_suppression::operations(b.dims(), s.dims(), keep)
            }),
            // A sort of each row along the axis: n log n comparisons per row.
            "TopK" => tensor(0).map(|x| {
                let n = x.elem_count().max(1) as u64;
                n.saturating_mul(64 - n.leading_zeros() as u64)
            }),
            _ => None,
        };
        let read: u64 = inputs.iter().flatten().map(|v| elems(v)).sum();
        self.flops = self.flops.saturating_add(product.unwrap_or(read.max(out)));
    }

    /// Notes the bytes of the intermediate values alive now (weights excluded).
    pub fn live<'a>(&mut self, values: impl Iterator<Item = (&'a String, &'a Value)>) {
        let live: u64 = values
            .filter(|(name, _)| !self.weights.contains(*name))
            .map(|(_, v)| bytes(v))
            .sum();
        let scratch = std::mem::take(&mut self.scratch_bytes);
        self.peak_live_bytes = self.peak_live_bytes.max(live.saturating_add(scratch));
    }
}

/// `Resize`'s operations (two per tap of every pass's outputs) and the scratch of its
/// binary64 passes (the input widened, then each pass's output beside the one before),
/// from the input's and the output's shapes. Taps per output: 1 nearest, 2 linear, 4
/// cubic; antialiased, the filter stretched by `1 / scale`, which is at least
/// `out / in` along that axis (the output length is the scaled length rounded down, or
/// the given size).
fn resize_passes(node: &NodeProto, input: &[usize], output: &[usize]) -> (u64, u64) {
    let mode = node.attribute.iter().find(|a| a.name == "mode");
    let support: f64 = match mode {
        Some(a) if a.s == b"cubic" => 2.0,
        Some(a) if a.s == b"linear" => 1.0,
        _ => 0.5,
    };
    let antialias = node
        .attribute
        .iter()
        .any(|a| a.name == "antialias" && a.i != 0);
    let plain_nearest = support == 0.5
        && !node
            .attribute
            .iter()
            .any(|a| a.name == "coordinate_transformation_mode" && a.s == b"tf_crop_and_resize");
    if input.len() != output.len() {
        return (0, 0);
    }
    let rank = input.len();
    let mut ops = 0u64;
    let mut widest = 0u64;
    let mut before: u64 = input.iter().map(|&d| d as u64).product();
    for a in (0..rank).rev() {
        let elements: u64 = input[..a]
            .iter()
            .chain(&output[a..])
            .map(|&d| d as u64)
            .fold(1, u64::saturating_mul);
        let taps = if antialias && output[a] > 0 && output[a] < input[a] {
            let scale = output[a] as f64 / input[a] as f64;
            2.0 - 2.0 * ((-support / scale).floor() + 1.0)
        } else {
            2.0 * support
        };
        ops = ops.saturating_add(
            elements
                .saturating_mul(2)
                .saturating_mul(taps.max(1.0) as u64),
        );
        widest = widest.max(before.saturating_add(elements));
        before = elements;
    }
    let scratch = if plain_nearest {
        0
    } else {
        widest.saturating_mul(8)
    };
    (ops, scratch)
}
