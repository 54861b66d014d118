//! What an ONNX graph costs to run: the import-time checks and the meter behind
//! `crate::cost` (a model's registered [`ModelCost`]).
//!
//! A cost measured by one dry run at the declared maximum shapes bounds every request only
//! if nothing else decides how big a value gets. [`check_shapes_bounded`] makes that so:
//! it refuses a graph in which a value computed from an input's *data* (rather than its
//! shape) decides the size of a later value — `ConstantOfShape`'s shape, `Expand`'s,
//! `Reshape`'s, `Tile`'s repeats, `Range`'s bounds, `Pad`'s pads, `Slice`'s bounds,
//! `Resize`'s scales or sizes, `OneHot`'s depth, a split's sizes, squeezed or reduced
//! axes, or which branch of an `If` runs. A hostile graph that turns an 8-byte input into
//! a 100 GB tensor is refused here, at import. Values derived from an input's shape
//! (`Shape`, `Size`) are bounded by the spec and allowed, as are weights and constants.
//!
//! [`CostMeter`] counts, node by node during a run, the floating-point operations (a
//! multiply-add as two: `MatMul`, `Gemm`, `Conv`, `ConvTranspose` by their products; any
//! other node one operation per element it reads or writes, whichever is more) and the
//! bytes of intermediate values alive at once (the plan frees each after its last
//! reader). Scratch space inside one operator is not counted.

use super::ops::Value;
use candle_core::Tensor;
use candle_onnx::onnx::{GraphProto, NodeProto};
use std::collections::HashSet;

use crate::error::{EngineError, Result};

/// The inputs of each operator whose *values* decide the size or rank of its outputs
/// (or, for `If`, which computation runs).
fn shape_inputs(op: &str) -> &'static [usize] {
    match op {
        "ConstantOfShape" | "If" => &[0],
        "Expand" | "Reshape" | "Tile" | "Pad" | "OneHot" | "Split" | "Squeeze" | "Unsqueeze"
        | "SplitToSequence" | "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" => &[1],
        "Range" => &[0, 1, 2],
        "Slice" => &[1, 2, 3, 4],
        "Resize" => &[1, 2, 3],
        _ => &[],
    }
}

/// Refuses a graph where a value computed from an input's data decides a value's size
/// (see the module doc). `weights` are the initializers' names.
pub fn check_shapes_bounded(graph: &GraphProto, weights: &HashSet<String>) -> Result<()> {
    let mut data: HashSet<String> = graph
        .input
        .iter()
        .filter(|i| !weights.contains(&i.name))
        .map(|i| i.name.clone())
        .collect();
    propagate(graph, &mut data)
}

fn propagate(graph: &GraphProto, data: &mut HashSet<String>) -> Result<()> {
    for node in &graph.node {
        for &i in shape_inputs(&node.op_type) {
            if let Some(name) = node.input.get(i).filter(|n| data.contains(*n)) {
                return Err(EngineError::UnboundedShape {
                    op: node.op_type.clone(),
                    node: node.name.clone(),
                    input: name.clone(),
                });
            }
        }
        // Branches see the outer values; what they compute stays theirs.
        for attr in &node.attribute {
            for g in attr.g.iter().chain(&attr.graphs) {
                let mut inner = data.clone();
                propagate(g, &mut inner)?;
            }
        }
        if reads_data(node, data) && !matches!(node.op_type.as_str(), "Shape" | "Size") {
            data.extend(node.output.iter().filter(|o| !o.is_empty()).cloned());
        }
    }
    Ok(())
}

/// Whether `node` reads a data-derived value, directly or from inside a branch.
fn reads_data(node: &NodeProto, data: &HashSet<String>) -> bool {
    if node.input.iter().any(|i| data.contains(i)) {
        return true;
    }
    node.attribute
        .iter()
        .flat_map(|a| a.g.iter().chain(&a.graphs))
        .any(|g| graph_reads_data(g, data))
}

fn graph_reads_data(graph: &GraphProto, data: &HashSet<String>) -> bool {
    graph.node.iter().any(|n| reads_data(n, data))
}

fn elems(value: &Value) -> u64 {
    match value {
        Value::Tensor(t) => t.elem_count() as u64,
        Value::Sequence(ts) => ts.iter().map(|t| t.elem_count() as u64).sum(),
    }
}

fn bytes(value: &Value) -> u64 {
    let of = |t: &Tensor| (t.elem_count() * t.dtype().size_in_bytes()) as u64;
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
    pub flops: u64,
    pub peak_live_bytes: u64,
}

impl CostMeter {
    pub fn new(weights: HashSet<String>) -> Self {
        CostMeter {
            weights,
            ..Default::default()
        }
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
            "MatMul" => tensor(0)
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
            "Conv" => tensor(1).map(|w| 2 * out * w.dims()[1..].iter().product::<usize>() as u64),
            // W is [C, M/group, k…]: each input element scatters M/group × k… products.
            "ConvTranspose" => tensor(0).zip(tensor(1)).map(|(x, w)| {
                2 * x.elem_count() as u64 * w.dims()[1..].iter().product::<usize>() as u64
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
        self.peak_live_bytes = self.peak_live_bytes.max(live);
    }
}
