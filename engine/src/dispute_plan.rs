//! A model's dispute plan: its computation written in the runtime referee's step language
//! (`inferchain_referee::Step`), with the weight tensors in the layout the steps read them
//! in. From it come the model's dispute commitments (plan and weights roots, which
//! governance records), the trace an executor commits to with a traced result, and the
//! one-step proofs of the bisection game.
//!
//! The trace is computed by the referee itself, step by step, so its bits are by
//! construction the ones the runtime recomputes; the plan's last step is the output
//! payload, and [`DisputePlan::run`] refuses to return a trace whose output differs from
//! the engine's own (`EngineError::DisputePlanMismatch`).
//!
//! Covered today: ONNX graphs of `Gemm` (alpha = beta = 1, `transA = 0`, a bias vector)
//! and `MatMul` by a 2-D weight (as `GemmBt` steps, the weight stored N × K, whose
//! outputs open chunk by chunk), `Relu` and `Softmax` over the last axis of a one-row tensor,
//! one f32 input and one output: the plans of `models/tiny-mlp` and `models/wide-mlp`.
//! Anything else is `EngineError::UnsupportedOp`, and so is a plan with a step the
//! referee can settle neither whole nor by chunk; the rest of the engine's operators come
//! next. The trace is computed without the referee's caps (`evaluate_uncapped`): a step
//! over them is settled by chunk in a dispute, but computed whole here.

use crate::{
    error::{EngineError, Result},
    LoadedModel,
};
use candle_onnx::onnx::{self, ModelProto};
use codec::Encode;
use inferchain_kernels::call::Call;
use inferchain_primitives::{
    dispute::{
        ElementOperand, ElementProof, ElementRead, ModelCommitments, Operand, PlanStep, Read,
        RefereePath, StepProof, StepReferee,
    },
    io::Payload,
    merkle::{self, Hash},
    tensor_tree::{chunk_root, tensor_leaf, ChunkRange},
    H256,
};
use inferchain_referee::{KernelReferee, Step};
use prost::Message;
use std::collections::HashMap;

/// A model's plan in the referee's language and its weights.
#[derive(Clone, Debug, PartialEq)]
pub struct DisputePlan {
    pub steps: Vec<PlanStep>,
    /// Weight tensors as the steps read them (f32, little-endian, row-major; a
    /// tokenizer's vocabulary as its bytes).
    pub weights: Vec<Vec<u8>>,
    /// The step and weight leaves, computed once (hashing a model's weights takes a
    /// while, and every element proof needs their paths).
    leaves: std::sync::OnceLock<(Vec<Hash>, Vec<Hash>)>,
}

impl Default for DisputePlan {
    fn default() -> Self {
        DisputePlan::new(Vec::new(), Vec::new())
    }
}

impl DisputePlan {
    pub fn new(steps: Vec<PlanStep>, weights: Vec<Vec<u8>>) -> Self {
        DisputePlan {
            steps,
            weights,
            leaves: std::sync::OnceLock::new(),
        }
    }
}

fn unsupported(what: impl Into<String>) -> EngineError {
    EngineError::UnsupportedOp { op: what.into() }
}

fn kernel(call: Call) -> Vec<u8> {
    Step::Kernel {
        template: call.encode(),
    }
    .encode()
}

/// A value of the graph while compiling: the step that produces it and its shape.
#[derive(Clone)]
struct Value {
    step: u32,
    dims: Vec<usize>,
}

impl Value {
    /// Its length in every run (f32 values).
    fn bytes(&self) -> usize {
        self.dims.iter().product::<usize>() * 4
    }

    /// How a later step reads it: its step and its length.
    fn read(&self) -> Read {
        Read::Step {
            index: self.step,
            bytes: self.bytes() as u32,
        }
    }
}

struct Compiler<'a> {
    initializers: HashMap<&'a str, &'a onnx::TensorProto>,
    values: HashMap<String, Value>,
    plan: DisputePlan,
    /// Weight index of each (initializer, transposed) already committed.
    weight_index: HashMap<(String, bool), u32>,
}

impl<'a> Compiler<'a> {
    fn push(&mut self, op: Vec<u8>, reads: Vec<Read>, output_bytes: usize) -> u32 {
        self.plan.steps.push(PlanStep {
            op,
            reads,
            output_bytes: output_bytes as u32,
        });
        (self.plan.steps.len() - 1) as u32
    }

    fn value(&self, name: &str) -> Result<Value> {
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| unsupported(format!("dispute plan: {name} is not a computed value")))
    }

    /// The initializer `name` as f32 values and dims.
    fn initializer(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let proto = self
            .initializers
            .get(name)
            .ok_or_else(|| unsupported(format!("dispute plan: {name} is not a weight")))?;
        let tensor = candle_onnx::eval::get_tensor(proto, name)
            .map_err(|e| EngineError::InvalidArtifact(format!("initializer {name}: {e}")))?;
        let dims = tensor.dims().to_vec();
        let values = tensor
            .flatten_all()
            .and_then(|t| t.to_dtype(candle_core::DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| EngineError::InvalidArtifact(format!("initializer {name}: {e}")))?;
        Ok((values, dims))
    }

    /// Commits the weight `name` (transposed, for a 2-D weight, when `transpose`).
    fn weight(&mut self, name: &str, transpose: bool) -> Result<(u32, Vec<usize>)> {
        let (values, dims) = self.initializer(name)?;
        let (values, dims) = match (transpose, dims.as_slice()) {
            (false, _) => (values, dims),
            (true, [r, c]) => {
                let mut t = vec![0f32; values.len()];
                for i in 0..*r {
                    for j in 0..*c {
                        t[j * r + i] = values[i * c + j];
                    }
                }
                (t, vec![*c, *r])
            }
            (true, _) => return Err(unsupported("dispute plan: a transposed non-2-D weight")),
        };
        let key = (name.to_string(), transpose);
        if let Some(&w) = self.weight_index.get(&key) {
            return Ok((w, dims));
        }
        let w = self.plan.weights.len() as u32;
        self.plan
            .weights
            .push(values.iter().flat_map(|v| v.to_le_bytes()).collect());
        self.weight_index.insert(key, w);
        Ok((w, dims))
    }

    fn matrix_product(
        &mut self,
        node: &onnx::NodeProto,
        a: &str,
        b: &str,
        trans_b: bool,
        bias: Option<&str>,
    ) -> Result<Value> {
        let a = self.value(a)?;
        let [m, k] = a.dims[..] else {
            return Err(unsupported(format!(
                "dispute plan: {} of a non-matrix",
                node.op_type
            )));
        };
        // The step reads B transposed (N × K), so that an element's column of B is one
        // contiguous row: ONNX's `transB` weight as stored, a plain one transposed.
        let (wb, bdims) = self.weight(b, !trans_b)?;
        let [n, kb] = bdims[..] else {
            return Err(unsupported("dispute plan: a non-2-D weight"));
        };
        if kb != k {
            return Err(EngineError::InvalidArtifact(format!(
                "{}: inner dimensions {k} and {kb}",
                node.name
            )));
        }
        let mut reads = vec![a.read(), Read::Weight(wb)];
        if let Some(c) = bias {
            let (wc, cdims) = self.weight(c, false)?;
            if cdims.iter().product::<usize>() != n || cdims.last() != Some(&n) {
                return Err(unsupported(
                    "dispute plan: a Gemm bias that is not a row of N",
                ));
            }
            reads.push(Read::Weight(wc));
        }
        let op = Step::GemmBt {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            bias: bias.is_some(),
        };
        let step = self.push(op.encode(), reads, m * n * 4);
        Ok(Value {
            step,
            dims: vec![m, n],
        })
    }

    fn node(&mut self, node: &onnx::NodeProto) -> Result<()> {
        let int = |name: &str, default: i64| {
            node.attribute
                .iter()
                .find(|a| a.name == name)
                .map_or(default, |a| a.i)
        };
        let float = |name: &str, default: f32| {
            node.attribute
                .iter()
                .find(|a| a.name == name)
                .map_or(default, |a| a.f)
        };
        let input = |i: usize| node.input.get(i).map(String::as_str).unwrap_or("");
        let out = match node.op_type.as_str() {
            "Gemm" => {
                if float("alpha", 1.0) != 1.0 || float("beta", 1.0) != 1.0 || int("transA", 0) != 0
                {
                    return Err(unsupported("dispute plan: Gemm with alpha, beta or transA"));
                }
                let bias = (!input(2).is_empty()).then(|| input(2));
                self.matrix_product(node, input(0), input(1), int("transB", 0) != 0, bias)?
            }
            "MatMul" => self.matrix_product(node, input(0), input(1), false, None)?,
            "Relu" => {
                let x = self.value(input(0))?;
                let step = self.push(Step::Relu.encode(), vec![x.read()], x.bytes());
                Value { step, dims: x.dims }
            }
            "Softmax" => {
                let x = self.value(input(0))?;
                let rank = x.dims.len() as i64;
                let axis = int("axis", -1);
                let last = axis == -1 || axis == rank - 1;
                let rows: usize = x.dims.iter().rev().skip(1).product();
                if rank == 0 || !last || rows != 1 {
                    return Err(unsupported("dispute plan: Softmax of more than one row"));
                }
                let call = Call::Softmax { x: Vec::new() };
                let step = self.push(kernel(call), vec![x.read()], x.bytes());
                Value { step, dims: x.dims }
            }
            other => return Err(unsupported(format!("dispute plan: {other}"))),
        };
        let name = node
            .output
            .first()
            .ok_or_else(|| EngineError::InvalidArtifact(format!("{} has no output", node.name)))?;
        self.values.insert(name.clone(), out);
        Ok(())
    }
}

/// The fixed dims of a graph value, or an error for a dynamic one.
fn fixed_dims(info: &onnx::ValueInfoProto) -> Result<Vec<usize>> {
    use onnx::{tensor_shape_proto::dimension::Value as Dim, type_proto::Value as Type};
    let Some(Type::TensorType(t)) = info.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(unsupported(format!(
            "dispute plan: {} is not a tensor",
            info.name
        )));
    };
    if t.elem_type != onnx::tensor_proto::DataType::Float as i32 {
        return Err(unsupported(format!(
            "dispute plan: {} is not f32",
            info.name
        )));
    }
    let shape = t
        .shape
        .as_ref()
        .ok_or_else(|| unsupported("dispute plan: no input shape"))?;
    shape
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Dim::DimValue(v)) if v > 0 => Ok(v as usize),
            _ => Err(unsupported("dispute plan: a dynamic input dimension")),
        })
        .collect()
}

/// Changes a step's output bytes without changing their length.
fn corrupt_bytes(out: &mut [u8]) {
    if let Some(first) = out.first_chunk_mut::<4>() {
        *first = (f32::from_le_bytes(*first) + 1.0).to_le_bytes();
    } else if let Some(b) = out.first_mut() {
        *b ^= 0xff;
    }
}

impl DisputePlan {
    /// The plan of a model's files (already checked against its manifest), whatever its
    /// format: what governance records the commitments of and executors trace.
    pub fn compile(files: &crate::store::VerifiedFiles) -> Result<DisputePlan> {
        match files.manifest.format {
            inferchain_primitives::model::ModelFormat::Onnx => {
                let bytes = files.get(crate::store::ONNX_FILE).ok_or_else(|| {
                    EngineError::InvalidArtifact(format!("{} missing", crate::store::ONNX_FILE))
                })?;
                DisputePlan::compile_onnx_with(bytes, &|name| files.get(name))
            }
            inferchain_primitives::model::ModelFormat::BertEmbedding => {
                DisputePlan::compile_bert(files)
            }
            inferchain_primitives::model::ModelFormat::Llm => DisputePlan::compile_llm(files),
        }
    }

    /// Compiles an ONNX model's graph (as stored: `bytes` of `model.onnx`) that is one file.
    pub fn compile_onnx(bytes: &[u8]) -> Result<DisputePlan> {
        Self::compile_onnx_with(bytes, &|_| None)
    }

    /// [`Self::compile_onnx`] for a model whose tensors may be stored in its other files.
    pub fn compile_onnx_with(
        bytes: &[u8],
        external: crate::onnx::tensor_data::ExternalFiles<'_>,
    ) -> Result<DisputePlan> {
        let mut proto = ModelProto::decode(bytes)
            .map_err(|e| EngineError::InvalidArtifact(format!("not an ONNX model: {e}")))?;
        crate::onnx::tensor_data::canonicalize(&mut proto, external)?;
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| EngineError::InvalidArtifact("the ONNX model has no graph".into()))?;
        let mut c = Compiler {
            initializers: graph
                .initializer
                .iter()
                .map(|i| (i.name.as_str(), i))
                .collect(),
            values: HashMap::new(),
            plan: DisputePlan::default(),
            weight_index: HashMap::new(),
        };
        let inputs: Vec<&onnx::ValueInfoProto> = graph
            .input
            .iter()
            .filter(|i| !c.initializers.contains_key(i.name.as_str()))
            .collect();
        for (index, info) in inputs.iter().enumerate() {
            let dims = fixed_dims(info)?;
            let bytes = dims.iter().product::<usize>() * 4;
            let step = c.push(
                Step::InputTensor {
                    index: index as u32,
                }
                .encode(),
                vec![Read::Input],
                bytes,
            );
            c.values.insert(info.name.clone(), Value { step, dims });
        }
        for node in &graph.node {
            c.node(node)?;
        }
        let [output] = &graph.output[..] else {
            return Err(unsupported("dispute plan: a graph with several outputs"));
        };
        let y = c.value(&output.name)?;
        let shape: Vec<u32> = y.dims.iter().map(|d| *d as u32).collect();
        let payload = Payload::Tensors(vec![inferchain_primitives::io::Tensor::from_f32(
            shape.clone(),
            &vec![0.0; y.dims.iter().product()],
        )])
        .encode()
        .len();
        c.push(Step::Output { shape }.encode(), vec![y.read()], payload);
        c.plan.check_refereeable()?;
        Ok(c.plan)
    }

    /// `UnsupportedOp` unless every step can be refereed, whole or chunk by chunk.
    pub(crate) fn check_refereeable(&self) -> Result<()> {
        match self
            .steps
            .iter()
            .position(|s| KernelReferee::path(&s.op, s.output_bytes) == RefereePath::Neither)
        {
            Some(i) => Err(unsupported(format!(
                "dispute plan step {i}: too large for the referee whole and by chunk"
            ))),
            None => Ok(()),
        }
    }

    fn leaves(&self) -> &(Vec<Hash>, Vec<Hash>) {
        self.leaves.get_or_init(|| {
            (
                self.steps
                    .iter()
                    .map(|s| merkle::leaf(&s.encode()))
                    .collect(),
                self.weights.iter().map(|w| tensor_leaf(w)).collect(),
            )
        })
    }

    pub(crate) fn step_leaves(&self) -> &[Hash] {
        &self.leaves().0
    }

    pub(crate) fn weight_leaves(&self) -> &[Hash] {
        &self.leaves().1
    }

    /// What governance records for the model (`set_model_commitments`).
    pub fn commitments(&self) -> ModelCommitments {
        ModelCommitments {
            plan_root: H256(merkle::root(self.step_leaves())),
            steps: self.steps.len() as u32,
            weights_root: H256(merkle::root(self.weight_leaves())),
            weights: self.weights.len() as u32,
        }
    }

    /// Runs the plan on a canonical input payload with the referee, returning every
    /// step's output bytes (the last is the output payload).
    pub fn trace(&self, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.trace_corrupting(input, None)
    }

    /// [`Self::trace`] with, for tests of the game (an executor started with a fault),
    /// step `corrupt`'s output changed (its first f32 raised by 1.0, or its first byte
    /// flipped; in a generation's plan every f32 raised, since one value rarely moves a
    /// greedy choice) and every later step computed from it: a wrong trace that is
    /// consistent everywhere but at that step.
    pub fn trace_corrupting(&self, input: &[u8], corrupt: Option<usize>) -> Result<Vec<Vec<u8>>> {
        self.trace_over(input, &[], corrupt)
    }

    /// Whether a step reads the posted output (`Read::Output`): a generation's plan, whose
    /// trace is over a claimed output ([`Self::trace_over`]).
    pub fn reads_output(&self) -> bool {
        self.steps.iter().any(|s| s.reads.contains(&Read::Output))
    }

    /// [`Self::trace_corrupting`] of a run whose posted output is `claimed` (what
    /// `Read::Output` operands are; empty for plans that do not read it).
    pub fn trace_over(
        &self,
        input: &[u8],
        claimed: &[u8],
        corrupt: Option<usize>,
    ) -> Result<Vec<Vec<u8>>> {
        let generation = self.reads_output();
        let mut outputs: Vec<Vec<u8>> = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.iter().enumerate() {
            let operands = step
                .reads
                .iter()
                .map(|r| match *r {
                    Read::Input => Ok(input),
                    Read::Output => Ok(claimed),
                    Read::Step { index: j, .. } if (j as usize) < i => {
                        Ok(outputs[j as usize].as_slice())
                    }
                    Read::Weight(w) => self
                        .weights
                        .get(w as usize)
                        .map(Vec::as_slice)
                        .ok_or_else(|| unsupported("dispute plan: a missing weight")),
                    Read::Step { .. } => Err(unsupported("dispute plan: a step reads a later one")),
                })
                .collect::<Result<Vec<&[u8]>>>()?;
            let mut out = match crate::plan_kernels::fast_step(&step.op, &operands) {
                Some(out) => out,
                None => inferchain_referee::evaluate_uncapped(&step.op, &operands)
                    .map_err(|e| unsupported(format!("dispute plan step {i}: {e:?}")))?,
            };
            if corrupt == Some(i) {
                if generation {
                    // One value rarely moves a greedy choice: raise them all.
                    out.chunks_exact_mut(4).for_each(corrupt_bytes);
                } else {
                    corrupt_bytes(&mut out);
                }
            }
            outputs.push(out);
        }
        Ok(outputs)
    }

    /// [`Self::trace`], checked against the engine's own output for the same input:
    /// the trace an executor commits to with its result.
    pub fn run(&self, model: &LoadedModel, input: &[u8]) -> Result<Vec<Vec<u8>>> {
        let trace = self.trace(input)?;
        self.check_against_engine(model, input, &trace)?;
        Ok(trace)
    }

    /// `DisputePlanMismatch` unless `trace` ends in the engine's own output for `input`.
    pub fn check_against_engine(
        &self,
        model: &LoadedModel,
        input: &[u8],
        trace: &[Vec<u8>],
    ) -> Result<()> {
        let payload = Payload::decode_canonical(input).map_err(EngineError::InvalidInput)?;
        let engine = model.run(&payload)?.encode();
        if trace.last() != Some(&engine) {
            return Err(EngineError::DisputePlanMismatch);
        }
        Ok(())
    }

    /// The element proof of chunk `chunk` of step `index`'s output, of a run whose step
    /// outputs are `outputs`: the ranges the referee names, each proven against its
    /// tensor's chunk root and that root against the trace or the weights root.
    pub fn element_proof(
        &self,
        input: &[u8],
        outputs: &[Vec<u8>],
        index: usize,
        chunk: u32,
    ) -> Option<ElementProof> {
        let step = self.steps.get(index)?.clone();
        let reads = KernelReferee::element_reads(&step.op, step.output_bytes, chunk).ok()?;
        let trace_leaves: Vec<Hash> = outputs.iter().map(|o| tensor_leaf(o)).collect();
        let weight_leaves = self.weight_leaves();
        let tensor = |data: &[u8], leaves: &[Hash], at: usize, r: &ElementRead| {
            Some(ElementOperand::Tensor {
                len: data.len() as u32,
                chunk_root: chunk_root(data),
                path: merkle::proof(leaves, at)?,
                range: ChunkRange::of(data, r.start, r.len)?,
            })
        };
        // A gather's further reads follow from the bytes of the first ones.
        let operand_bytes = |r: &ElementRead| -> Option<&[u8]> {
            match *step.reads.get(r.operand as usize)? {
                Read::Input => Some(input),
                // Whole-only steps read the posted output; no chunk does.
                Read::Output => None,
                Read::Step { index: j, .. } => outputs.get(j as usize).map(Vec::as_slice),
                Read::Weight(w) => self.weights.get(w as usize).map(Vec::as_slice),
            }
        };
        let direct = reads
            .iter()
            .map(|r| operand_bytes(r)?.get(r.start as usize..(r.start + r.len) as usize))
            .collect::<Option<Vec<&[u8]>>>()?;
        let more = KernelReferee::indirect_reads(&step.op, step.output_bytes, chunk, &direct)?;
        let operands = reads
            .iter()
            .chain(&more)
            .map(|r| match *step.reads.get(r.operand as usize)? {
                Read::Input => Some(ElementOperand::Input),
                Read::Output => None,
                Read::Step { index: j, .. } => {
                    tensor(outputs.get(j as usize)?, &trace_leaves, j as usize, r)
                }
                Read::Weight(w) => {
                    tensor(self.weights.get(w as usize)?, weight_leaves, w as usize, r)
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(ElementProof {
            step_path: merkle::proof(self.step_leaves(), index)?,
            step,
            operands,
        })
    }

    /// The proof of step `index` of a run whose step outputs are `outputs`.
    pub fn proof(&self, input: &[u8], outputs: &[Vec<u8>], index: usize) -> Option<StepProof> {
        self.proof_over(input, &[], outputs, index)
    }

    /// [`Self::proof`] of a run over the posted output `claimed`.
    pub fn proof_over(
        &self,
        input: &[u8],
        claimed: &[u8],
        outputs: &[Vec<u8>],
        index: usize,
    ) -> Option<StepProof> {
        let step = self.steps.get(index)?.clone();
        let trace_leaves: Vec<Hash> = outputs.iter().map(|o| tensor_leaf(o)).collect();
        let weight_leaves = self.weight_leaves();
        let operands = step
            .reads
            .iter()
            .map(|r| match *r {
                Read::Input => Some(Operand {
                    data: input.to_vec(),
                    path: Vec::new(),
                }),
                Read::Output => Some(Operand {
                    data: claimed.to_vec(),
                    path: Vec::new(),
                }),
                Read::Step { index: j, .. } => Some(Operand {
                    data: outputs.get(j as usize)?.clone(),
                    path: merkle::proof(&trace_leaves, j as usize)?,
                }),
                Read::Weight(w) => Some(Operand {
                    data: self.weights.get(w as usize)?.clone(),
                    path: merkle::proof(weight_leaves, w as usize)?,
                }),
            })
            .collect::<Option<Vec<_>>>()?;
        Some(StepProof {
            step,
            step_path: merkle::proof(self.step_leaves(), index)?,
            operands,
        })
    }
}
