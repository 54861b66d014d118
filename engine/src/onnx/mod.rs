//! ONNX graphs: candle-onnx's operators, and the engine's own ([`ops`]) where candle-onnx
//! has none or gets one wrong, run node by node by a [`plan::Plan`].
//!
//! Operators candle-onnx lacks but that are exact compositions of ones it has are
//! rewritten at load ([`crate::legalize`]).
//!
//! Loading decodes the protobuf once, checks every operator (nested graphs included)
//! against the ones that cannot run under consensus, and turns the initializers (the
//! weights) into candle tensors once, so a run shares them instead of re-decoding the
//! protobuf each time.

use crate::{
    conversion,
    error::{EngineError, Result},
    spec::{self, DEFAULT_DYNAMIC_MAX},
};
use candle_core::Tensor as CTensor;
use candle_onnx::onnx::{self, type_proto, GraphProto, ModelProto};
use inferchain_primitives::{
    io::{Dim, IoSpec, Tensor, TensorSpec},
    merkle,
    model::ModelCost,
};
use ops::Value;
use plan::Plan;
use prost::Message;
use std::collections::{HashMap, HashSet};
use tensor_data::ExternalFiles;

/// A plan of at least this many steps, or inputs of at least this many values, runs on a
/// pool thread ([`crate::numerics::on_pool`]).
const POOL_STEPS: usize = 32;
const POOL_INPUT_VALUES: usize = 16 * 1024;

pub mod cost;
mod gelu_fusion;
mod layer_norm_fusion;
pub mod op_versions;
mod ops;
mod plan;
mod static_values;
pub mod tensor_data;

pub use static_values::MAX_KEPT_BYTES;

/// Operators whose output is random: they can never be part of a consensus result.
const NONDETERMINISTIC_OPS: [&str; 5] = [
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
];

/// A loaded ONNX model.
pub struct OnnxModel {
    /// How to run the graph (its initializers moved out into `weights`).
    plan: Plan,
    weights: HashMap<String, CTensor>,
    /// Graph inputs the caller supplies (initializers excluded), in declared order.
    inputs: Vec<onnx::ValueInfoProto>,
    outputs: Vec<onnx::ValueInfoProto>,
    weight_bytes: usize,
    /// Where an input's data decides a value's size, if anywhere (`cost::check_shapes_bounded`):
    /// the op, node and input, for [`EngineError::UnboundedShape`].
    unbounded_shape: Option<(String, String, String)>,
}

impl OnnxModel {
    /// Decodes and checks an ONNX model that is one file (no external data).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_files(bytes, &|_| None)
    }

    /// Decodes and checks an ONNX model whose tensors may be stored in the model's other
    /// files (`external`, already checked against the manifest).
    pub fn from_files(bytes: &[u8], external: ExternalFiles<'_>) -> Result<Self> {
        let mut proto = ModelProto::decode(bytes)
            .map_err(|e| EngineError::InvalidArtifact(format!("not an ONNX model: {e}")))?;
        // Before canonicalizing (which widens int8 to int64): the types quantizing nodes
        // quantize to.
        if let Some(graph) = proto.graph.as_mut() {
            ops::quantize::annotate(graph).map_err(|op| EngineError::UnsupportedOp { op })?;
        }
        tensor_data::canonicalize(&mut proto, external)?;
        let graph = proto
            .graph
            .as_mut()
            .ok_or_else(|| EngineError::InvalidArtifact("the ONNX model has no graph".into()))?;
        check_ops(graph)?;
        op_versions::check(&proto)?;
        let graph = proto
            .graph
            .as_mut()
            .ok_or_else(|| EngineError::InvalidArtifact("the ONNX model has no graph".into()))?;
        crate::legalize::legalize(graph);
        ops::check_supported(graph).map_err(|op| EngineError::UnsupportedOp { op })?;
        let mut weights = HashMap::new();
        let mut weight_bytes = 0usize;
        for init in std::mem::take(&mut graph.initializer) {
            let tensor = candle_onnx::eval::get_tensor(&init, &init.name)
                .map_err(|e| map_candle_error(e, "initializer"))?;
            weight_bytes += tensor.elem_count() * tensor.dtype().size_in_bytes();
            weights.insert(init.name.clone(), tensor);
        }
        let inputs = graph
            .input
            .iter()
            .filter(|i| !weights.contains_key(&i.name))
            .cloned()
            .collect();
        let outputs = graph.output.clone();
        let unbounded_shape = match proto
            .graph
            .as_ref()
            .map(|g| cost::check_shapes_bounded(g, &weights))
        {
            Some(Err(EngineError::UnboundedShape { op, node, input })) => Some((op, node, input)),
            Some(Err(other)) => return Err(other),
            _ => None,
        };
        let opset = op_versions::default_opset(&proto);
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| EngineError::InvalidArtifact("the ONNX model has no graph".into()))?;
        let plan = Plan::new(graph, &weights, opset).map_err(|e| map_candle_error(e, "load"))?;
        let weight_bytes = weight_bytes + plan.packed_bytes() + plan.tree_bytes();
        Ok(OnnxModel {
            plan,
            weights,
            inputs,
            outputs,
            weight_bytes,
            unbounded_shape,
        })
    }

    /// The cost of one run at the largest shapes `input` admits: a dry run on zeros,
    /// metered (`cost`). Refused where an input's data, not its shape, decides how big a
    /// value gets: no dry run bounds such a graph.
    pub fn estimate_cost(&self, input: &IoSpec) -> Result<ModelCost> {
        self.estimate_cost_within(input, None)
    }

    /// [`Self::estimate_cost`], stopping the dry run as soon as it passes `limit`
    /// ([`EngineError::CostOverLimit`]): a model costlier than the chain admits is refused
    /// without finishing a run that may take minutes.
    pub fn estimate_cost_within(
        &self,
        input: &IoSpec,
        limit: Option<ModelCost>,
    ) -> Result<ModelCost> {
        if let Some((op, node, input)) = &self.unbounded_shape {
            return Err(EngineError::UnboundedShape {
                op: op.clone(),
                node: node.clone(),
                input: input.clone(),
            });
        }
        let tensors = crate::cost::max_shape_inputs(input)?;
        if tensors.len() != self.inputs.len() {
            return Err(EngineError::InvalidInput(
                inferchain_primitives::io::IoError::TensorCount {
                    expected: self.inputs.len() as u32,
                    found: tensors.len() as u32,
                },
            ));
        }
        let input_bytes: u64 = tensors.iter().map(|t| t.data.len() as u64).sum();
        let mut named = HashMap::new();
        for (info, tensor) in self.inputs.iter().zip(&tensors) {
            named.insert(info.name.clone(), conversion::to_candle(tensor)?);
        }
        let weight_bytes = self.weight_bytes as u64;
        let mut meter = cost::CostMeter::new(self.weights.keys().cloned().collect());
        if let Some(limit) = limit {
            meter = meter.with_limit(
                limit.flops,
                limit.peak_memory_bytes.saturating_sub(weight_bytes),
            );
        }
        let outcome = self.run_values(named, None, Some(&mut meter));
        let cost = ModelCost {
            flops: meter.flops,
            peak_memory_bytes: weight_bytes.saturating_add(meter.peak_live_bytes.max(input_bytes)),
        };
        match (outcome, limit) {
            (_, Some(limit)) if !cost.fits_within(&limit) => Err(EngineError::CostOverLimit {
                at_least: cost,
                limit,
            }),
            (Err(e), _) => Err(e),
            (Ok(_), _) => Ok(cost),
        }
    }

    /// Bytes of weights held in memory.
    pub fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    /// Names of the inputs the caller supplies, in order.
    pub fn input_names(&self) -> Vec<String> {
        self.inputs.iter().map(|i| i.name.clone()).collect()
    }

    /// Names of the outputs, in order.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|o| o.name.clone()).collect()
    }

    /// The input and output specs the graph declares; dimensions without a fixed size
    /// become `Dynamic { max: DEFAULT_DYNAMIC_MAX }` for governance to tighten.
    pub fn io_specs(&self) -> Result<(IoSpec, IoSpec)> {
        Ok((specs_of(&self.inputs)?, specs_of(&self.outputs)?))
    }

    /// Runs the graph on candle tensors keyed by input name; returns every graph output.
    pub fn run_named(&self, inputs: HashMap<String, CTensor>) -> Result<HashMap<String, CTensor>> {
        self.run_named_traced(inputs, None)
    }

    /// [`Self::run_named`], pushing onto `trace` the leaf hash of every value each plan
    /// step produces, in plan order (the execution trace a dispute bisects;
    /// `inferchain_primitives::merkle`).
    pub fn run_named_traced(
        &self,
        inputs: HashMap<String, CTensor>,
        trace: Option<&mut Vec<merkle::Hash>>,
    ) -> Result<HashMap<String, CTensor>> {
        self.run_values(inputs, trace, None)
    }

    fn run_values(
        &self,
        inputs: HashMap<String, CTensor>,
        trace: Option<&mut Vec<merkle::Hash>>,
        meter: Option<&mut cost::CostMeter>,
    ) -> Result<HashMap<String, CTensor>> {
        // Moving the run onto a pool thread costs a wake-up (~10 µs): worth it where the
        // parallel loops inside are many or large, not for a tree ensemble on 16 rows.
        let input_values: usize = inputs.values().map(|t| t.elem_count()).sum();
        let on_pool = self.plan.step_count() >= POOL_STEPS || input_values >= POOL_INPUT_VALUES;
        // The plan reads the weights it holds; only the inputs are handed over.
        let values: HashMap<String, Value> = inputs
            .into_iter()
            .map(|(name, t)| (name, Value::Tensor(t)))
            .collect();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if on_pool {
                crate::numerics::on_pool(|| self.plan.run(values, trace, meter))
            } else {
                self.plan.run(values, trace, meter)
            }
        }));
        let outputs = match outcome {
            Ok(result) => result.map_err(|e| map_candle_error(e, "run"))?,
            Err(panic) => return Err(EngineError::Panicked(panic_message(panic))),
        };
        outputs
            .into_iter()
            .map(|(name, value)| match value {
                Value::Tensor(t) => Ok((name, t)),
                Value::Sequence(_) => Err(EngineError::UnsupportedDType(format!(
                    "output `{name}` is a sequence; model outputs must be tensors"
                ))),
            })
            .collect()
    }

    /// Runs the graph on canonical tensors given in input order; returns the outputs in
    /// output order.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.run_traced(inputs, None)
    }

    /// [`Self::run`] with the execution trace (see [`Self::run_named_traced`]).
    pub fn run_traced(
        &self,
        inputs: &[Tensor],
        trace: Option<&mut Vec<merkle::Hash>>,
    ) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(EngineError::InvalidInput(
                inferchain_primitives::io::IoError::TensorCount {
                    expected: self.inputs.len() as u32,
                    found: inputs.len() as u32,
                },
            ));
        }
        let mut named = HashMap::new();
        for (info, tensor) in self.inputs.iter().zip(inputs) {
            named.insert(info.name.clone(), conversion::to_candle(tensor)?);
        }
        let mut outputs = self.run_named_traced(named, trace)?;
        self.outputs
            .iter()
            .map(|o| {
                let t = outputs
                    .remove(&o.name)
                    .ok_or_else(|| EngineError::MissingOutput(o.name.clone()))?;
                conversion::from_candle(&t)
            })
            .collect()
    }
}

/// Rejects graphs that use a random operator, anywhere (subgraphs of `If` included).
fn check_ops(graph: &GraphProto) -> Result<()> {
    let mut seen = HashSet::new();
    collect_ops(graph, &mut seen);
    for op in NONDETERMINISTIC_OPS {
        if seen.contains(op) {
            return Err(EngineError::NondeterministicOp { op: op.to_string() });
        }
    }
    Ok(())
}

fn collect_ops(graph: &GraphProto, seen: &mut HashSet<String>) {
    for node in &graph.node {
        seen.insert(node.op_type.clone());
        for attr in &node.attribute {
            if let Some(g) = &attr.g {
                collect_ops(g, seen);
            }
            for g in &attr.graphs {
                collect_ops(g, seen);
            }
        }
    }
}

fn specs_of(values: &[onnx::ValueInfoProto]) -> Result<IoSpec> {
    let mut specs = Vec::new();
    for value in values {
        let tensor_type = match value.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(tt)) => tt,
            _ => {
                return Err(EngineError::InvalidArtifact(format!(
                    "`{}` is not a tensor",
                    value.name
                )))
            }
        };
        let dtype = onnx::tensor_proto::DataType::try_from(tensor_type.elem_type)
            .ok()
            .and_then(candle_onnx::eval::dtype)
            .ok_or_else(|| {
                EngineError::UnsupportedDType(format!("ONNX {}", tensor_type.elem_type))
            })?;
        let dtype = conversion::from_candle_dtype(dtype)?;
        let shape = tensor_type
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(onnx::tensor_shape_proto::dimension::Value::DimValue(v))
                            if v > 0 && v <= u32::MAX as i64 =>
                        {
                            Dim::Fixed(v as u32)
                        }
                        _ => Dim::Dynamic {
                            max: DEFAULT_DYNAMIC_MAX,
                        },
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        specs.push(spec::tensor_spec(&value.name, dtype, shape)?);
    }
    let specs: Vec<TensorSpec> = specs;
    Ok(IoSpec::Tensors(specs.try_into().map_err(|_| {
        EngineError::InvalidArtifact(format!(
            "more than {} inputs or outputs",
            inferchain_primitives::io::MAX_TENSORS
        ))
    })?))
}

/// Turns candle-onnx's "unsupported op_type X" into a named error; keeps others as they are.
fn map_candle_error(err: candle_core::Error, _stage: &str) -> EngineError {
    let text = err.to_string();
    if let Some(rest) = text.split("unsupported op_type ").nth(1) {
        let op = rest.split_whitespace().next().unwrap_or(rest).to_string();
        return EngineError::UnsupportedOp { op };
    }
    EngineError::Candle(err)
}

pub(crate) fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}
