//! The engine's one error type. Every variant names what went wrong and, where the user
//! can do something about it, what to do next.

use inferchain_primitives::{io::IoError, ModelId};
use std::path::PathBuf;

/// Why the engine could not import, load or run a model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model {0:?} is not in the store; import it with `inferchain model import <path>`")]
    NotInStore(ModelId),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file hash {found} does not match the manifest's {expected}; the store copy is corrupt, re-import the model")]
    FileHashMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: manifest hashes to {found:?}, not to the model id {expected:?}")]
    ManifestMismatch {
        path: PathBuf,
        expected: ModelId,
        found: ModelId,
    },
    #[error("{path}: missing required file `{file}` for a {format} model")]
    MissingFile {
        path: PathBuf,
        file: &'static str,
        format: &'static str,
    },
    #[error("{path}: cannot tell the model format; pass --format onnx|bert")]
    UnknownFormat { path: PathBuf },
    #[error("fetching the model failed: {0}")]
    Fetch(String),
    #[error("invalid model artifact: {0}")]
    InvalidArtifact(String),
    #[error("tensor `{tensor}` in the model cannot be read: {reason}; re-export the model (onnx.checker.check_model names what is wrong)")]
    MalformedTensor { tensor: String, reason: String },
    #[error("tensor `{tensor}` is stored in `{file}`, which is not among the model's files: import the model's folder, or the .onnx file with `{file}` beside it")]
    MissingExternalData { tensor: String, file: String },
    #[error("the graph uses operator `{op}`, which the engine does not support")]
    UnsupportedOp { op: String },
    #[error(
        "the graph uses `{op}` version {version}, which the engine does not run exactly: {reason}"
    )]
    UnsupportedOperator {
        op: String,
        version: i64,
        reason: String,
    },
    #[error("the size of values after {op} node `{node}` depends on the data of input `{input}`, so no run at the declared maximum shapes bounds a request's cost; compute shapes from constants or from inputs' shapes (Shape), not from their values")]
    UnboundedShape {
        op: String,
        node: String,
        input: String,
    },
    #[error("one request costs at least {at_least:?}, over the most executors are required to provide ({limit:?}); bound the input spec tighter (`--dynamic-max`) or shrink the model")]
    CostOverLimit {
        at_least: inferchain_primitives::model::ModelCost,
        limit: inferchain_primitives::model::ModelCost,
    },
    #[error("a dry run at the declared maximum shapes needs {bytes} bytes of input; bound the model's dynamic dimensions (`inferchain model import --dynamic-max N`)")]
    DryRunTooLarge { bytes: u64 },
    #[error("the model imports opset {version} of domain `{domain}`: {reason}")]
    UnsupportedOpset {
        domain: String,
        version: i64,
        reason: String,
    },
    #[error("the model's dispute plan computes another output than the engine: its commitments must not be registered")]
    DisputePlanMismatch,
    #[error("the model's dispute plan as this engine builds it does not have the registered commitments: this node cannot post or play its traced results (upgrade the engine, or ask governance which engine built them)")]
    CommitmentsMismatch,
    #[error("the graph uses operator `{op}`, which is nondeterministic and cannot be run under consensus")]
    NondeterministicOp { op: String },
    #[error("element type {0} is not a canonical dtype (f32, f64, i64, i32, u8)")]
    UnsupportedDType(String),
    #[error("input does not fit the model's spec: {0:?}")]
    InvalidInput(IoError),
    #[error("the model produced an output that breaks its spec: {0:?}")]
    InvalidOutput(IoError),
    #[error("the model did not produce its declared output `{0}`")]
    MissingOutput(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("inference failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("the engine panicked while running the model: {0}")]
    Panicked(String),
    #[error(".npy: {0}")]
    Npy(String),
    #[error("the model is registered under numerics version {registered}; this engine implements version {implemented}, so its outputs could not be reproduced bit for bit. Run an engine of version {registered}, or have governance register the model under version {implemented}")]
    UnsupportedNumerics { registered: u32, implemented: u32 },
    #[error("the model is registered to compute in {dtype}; the engine's kernels compute in f32")]
    UnsupportedComputeDType { dtype: String },
    #[error("the engine cannot build this model's dispute plan ({0}); a model without dispute commitments cannot take requests")]
    NoDisputePlan(String),
    #[error("the model's architecture is not one the engine runs exactly: {0}")]
    UnsupportedArchitecture(String),
    #[error("the prompt is {prompt} tokens and {new} new tokens were asked for: {prompt} + {new} exceeds the model's {max} positions; shorten the prompt or ask for fewer tokens")]
    TooManyPositions {
        prompt: usize,
        new: usize,
        max: usize,
    },
    #[error("the prompt is empty (no tokens); give the model some text")]
    EmptyPrompt,
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, EngineError>;

impl EngineError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.into(),
            source,
        }
    }
}
