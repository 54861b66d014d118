//! Values a graph computes from its weights and its inputs' *shapes* alone — `Constant`
//! nodes, torch.onnx's shape arithmetic (`Shape`, `Gather`, `Unsqueeze`, `Concat`, …),
//! weights dequantized by a QDQ graph — kept between runs instead of computed again.
//!
//! Every operator is a deterministic function of its inputs' values and shapes, so a
//! step none of whose inputs carries request data (only weights, such values, or — for
//! `Shape` and `Size` — the shape of a value whose shape the input shapes decide) gives
//! the same bits whenever the graph inputs have the same shapes. The plan marks those
//! steps at load ([`StaticSteps::of`]); a run that records nothing per step (not the
//! dispute trace, not the cost meter's dry run) keeps what they produced, keyed by the
//! inputs' shapes, and the next run with those shapes skips them. Traced and metered
//! runs always compute every step, so the trace's steps and the measured cost are
//! unchanged; tests hold plain and traced outputs equal.
//!
//! What a run keeps is bounded ([`MAX_KEPT_BYTES`], checked as each step finishes, each
//! value copied into storage of its own so that a view cannot pin a larger source): a
//! value over the budget is not kept and its step runs every time, so a hostile graph
//! cannot pin more than that in memory beyond its metered peak. Value names are unique
//! (the plan refuses a graph that defines one twice), so a name seen free of data stays
//! so.

use super::ops::Value;
use candle_onnx::onnx::{GraphProto, NodeProto};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The most bytes of values one plan keeps between runs.
pub const MAX_KEPT_BYTES: usize = 4 << 20;

/// Which steps of a plan compute values that depend on no request data.
pub struct StaticSteps {
    /// Per step: whether it is one of them.
    is_static: Vec<bool>,
    /// The graph inputs a request supplies (weights excluded), whose shapes key the kept
    /// values.
    inputs: Vec<String>,
    /// Values kept by the last plain run, for the input shapes it had.
    kept: Mutex<Option<Arc<Kept>>>,
}

/// What one plain run kept.
pub struct Kept {
    /// The request inputs' shapes it ran with, in [`StaticSteps::inputs`] order.
    shapes: Vec<Option<Vec<usize>>>,
    /// Per step it skipped next time: of the values that step produced, those a step
    /// that still runs reads, or the graph returns (`Plan::read_after_skipping`).
    pub values: HashMap<usize, Vec<(String, Value)>>,
}

impl StaticSteps {
    /// Marks the steps of `graph` (one per node, in order) whose outputs depend on weights
    /// and input shapes only; `weights` are the initializer names.
    pub fn of(graph: &GraphProto, weights: &HashSet<&str>) -> StaticSteps {
        let inputs: Vec<String> = graph
            .input
            .iter()
            .map(|i| i.name.clone())
            .filter(|n| !weights.contains(n.as_str()))
            .collect();
        // Values known not to carry request data, and values whose shape the inputs'
        // shapes decide (every value but what follows a data-dependent length).
        // A weight also listed as a graph input (older exporters list every initializer
        // so) may be given by the caller instead: it counts as data.
        let listed: HashSet<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
        let mut data_free: HashSet<&str> = weights
            .iter()
            .copied()
            .filter(|w| !listed.contains(w))
            .collect();
        let mut shape_known: HashSet<&str> = weights.iter().copied().collect();
        shape_known.extend(inputs.iter().map(String::as_str));
        let mut is_static = Vec::with_capacity(graph.node.len());
        for node in &graph.node {
            let reads: Vec<&str> = node
                .input
                .iter()
                .filter(|n| !n.is_empty())
                .map(String::as_str)
                .collect();
            let has_subgraph = node
                .attribute
                .iter()
                .any(|a| a.g.is_some() || !a.graphs.is_empty());
            let op = node.op_type.as_str();
            let static_step = !has_subgraph
                && node.domain.is_empty()
                && match op {
                    "Shape" | "Size" => reads.iter().all(|r| shape_known.contains(r)),
                    _ => reads.iter().all(|r| data_free.contains(r)),
                };
            // A length decided by data (or by a value that may carry data) makes every
            // shape downstream data-dependent.
            let shape_follows = !has_subgraph
                && op != "NonMaxSuppression"
                && reads.iter().all(|r| shape_known.contains(r))
                && decides_shape(node)
                    .iter()
                    .filter_map(|&i| node.input.get(i))
                    .filter(|n| !n.is_empty())
                    .all(|n| data_free.contains(n.as_str()));
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                if static_step {
                    data_free.insert(out);
                }
                if shape_follows || static_step {
                    shape_known.insert(out);
                }
            }
            is_static.push(static_step);
        }
        StaticSteps {
            is_static,
            inputs,
            kept: Mutex::new(None),
        }
    }

    /// Whether step `i` computes a value free of request data.
    pub fn is_static(&self, i: usize) -> bool {
        self.is_static.get(i).copied().unwrap_or(false)
    }

    /// The request inputs' shapes in `values`.
    pub fn shapes(&self, values: &HashMap<String, Value>) -> Vec<Option<Vec<usize>>> {
        self.inputs
            .iter()
            .map(|name| match values.get(name) {
                Some(Value::Tensor(t)) => Some(t.dims().to_vec()),
                _ => None,
            })
            .collect()
    }

    /// What the last plain run kept, if it ran with these input shapes.
    pub fn kept_for(&self, shapes: &[Option<Vec<usize>>]) -> Option<Arc<Kept>> {
        let kept = self.kept.lock().ok()?;
        kept.as_ref().filter(|k| k.shapes == shapes).cloned()
    }

    /// A static step's `produced` values copied into storage of their own (a view keeps
    /// its whole source alive), if they fit what is left of [`MAX_KEPT_BYTES`] after
    /// `used` (which grows by them); `None` leaves the step to run every time.
    pub fn take(
        &self,
        used: &mut usize,
        produced: &[(String, Value)],
    ) -> candle_core::Result<Option<Vec<(String, Value)>>> {
        let bytes: usize = produced
            .iter()
            .map(|(_, v)| super::cost::bytes(v) as usize)
            .sum();
        if used.saturating_add(bytes) > MAX_KEPT_BYTES {
            return Ok(None);
        }
        *used += bytes;
        let own = |t: &candle_core::Tensor| t.force_contiguous();
        produced
            .iter()
            .map(|(name, value)| {
                Ok((
                    name.clone(),
                    match value {
                        Value::Tensor(t) => Value::Tensor(own(t)?),
                        Value::Sequence(ts) => {
                            Value::Sequence(ts.iter().map(own).collect::<candle_core::Result<_>>()?)
                        }
                    },
                ))
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map(Some)
    }

    /// Keeps `produced` (per static step, what it produced, as [`Self::take`] gave it)
    /// for runs with `shapes`.
    pub fn keep(
        &self,
        shapes: Vec<Option<Vec<usize>>>,
        produced: Vec<(usize, Vec<(String, Value)>)>,
    ) {
        let values = produced.into_iter().collect();
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some(Arc::new(Kept { shapes, values }));
        }
    }
}

/// The inputs of `node` whose values decide its output's shape (as the cost check lists
/// them), besides the shapes of all its inputs.
fn decides_shape(node: &NodeProto) -> &'static [usize] {
    super::cost::shape_inputs(&node.op_type)
}
