//! What governance registers about a model: the [`ModelSpec`].

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_core::ConstU32;
use sp_runtime::BoundedVec;

use crate::{compare::ComparisonRule, io::IoSpec, ModelId};

/// The longest model name.
pub const MAX_MODEL_NAME_LEN: u32 = 64;
/// The longest artifact URI.
pub const MAX_URI_LEN: u32 = 256;

/// How the model's artifact is laid out and run.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum ModelFormat {
    /// An ONNX graph, run by candle-onnx.
    Onnx,
    /// A Hugging Face BERT-family sentence-embedding model (config.json,
    /// model.safetensors, tokenizer.json): text in, mean-pooled L2-normalised embedding out.
    BertEmbedding,
    /// A Hugging Face llama-family causal language model (config.json, *.safetensors,
    /// tokenizer.json, generation_config.json): a prompt in, its greedy generation out.
    Llm,
}

/// How many threads the engine may use for a result to count.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum ThreadRule {
    /// Any number: the engine's kernels give the same bits whatever the thread count.
    Any,
    /// Exactly one thread.
    Single,
}

/// The numerics a result is defined under: the engine version whose kernels produce it,
/// the compute dtype and the thread rule. An executor running another profile may
/// produce other bits; the comparison rule says how far apart is still correct.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct NumericsProfile {
    /// `inferchain-engine`'s numerics version (bumped whenever a kernel's bits change).
    pub engine_version: u32,
    /// The dtype the model computes in.
    pub compute_dtype: crate::io::DType,
    pub threads: ThreadRule,
}

/// What one request of a model may cost an executor, at most: the model run at its
/// declared maximum shapes, as the engine estimates it at import (`inferchain model
/// import` prints it; the registry holds it in the spec). The chain refuses requests for
/// a model whose cost exceeds what every executor is required to provide, so an executor
/// never finds out at run time that a model is beyond it.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct ModelCost {
    /// Floating-point operations of one run (a multiply-add counts two).
    pub flops: u64,
    /// Bytes held at the run's peak: weights and live intermediate values.
    pub peak_memory_bytes: u64,
}

impl ModelCost {
    /// Whether this cost is within `limit` on every count.
    pub fn fits_within(&self, limit: &ModelCost) -> bool {
        self.flops <= limit.flops && self.peak_memory_bytes <= limit.peak_memory_bytes
    }
}

/// A model as registered on chain.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct ModelSpec<Balance> {
    /// Human-readable name, unique in spirit but not enforced (the id is the identity).
    pub name: BoundedVec<u8, ConstU32<MAX_MODEL_NAME_LEN>>,
    pub format: ModelFormat,
    /// blake2-256 of the model's canonical manifest; this is the model id.
    pub artifact_hash: ModelId,
    pub input: IoSpec,
    pub output: IoSpec,
    /// What one request costs the requester, paid to the executor on finalization.
    pub fee: Balance,
    /// The largest encoded input a request may carry.
    pub max_input_bytes: u32,
    /// The largest encoded output a result may carry.
    pub max_output_bytes: u32,
    /// How a re-executed output is compared with a posted one.
    pub comparison: ComparisonRule,
    pub numerics: NumericsProfile,
    /// Where executors may fetch the artifact if their store lacks it.
    pub artifact_uri: Option<BoundedVec<u8, ConstU32<MAX_URI_LEN>>>,
    /// What one request costs an executor at most.
    pub cost: ModelCost,
}

/// Where a model is in its life.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum ModelStatus {
    /// Takes new requests.
    Active,
    /// Finishes open requests, takes no new ones.
    Deprecated,
    /// Takes nothing.
    Retired,
}

/// Read access to the model registry, for pallets that take requests for models.
pub trait ModelRegistry<Balance> {
    /// The model's spec and status, if it is registered.
    fn model(id: &ModelId) -> Option<(ModelSpec<Balance>, ModelStatus)>;

    /// The model's dispute commitments, if governance recorded them.
    fn commitments(id: &ModelId) -> Option<crate::dispute::ModelCommitments>;

    /// Registers `spec` as Active, bypassing governance: for benchmarks only (which
    /// only need to know that it failed).
    #[cfg(feature = "runtime-benchmarks")]
    #[allow(clippy::result_unit_err)]
    fn register_for_benchmark(spec: ModelSpec<Balance>) -> Result<(), ()>;

    /// Records a model's dispute commitments, bypassing governance: for benchmarks only.
    #[cfg(feature = "runtime-benchmarks")]
    #[allow(clippy::result_unit_err)]
    fn commit_for_benchmark(
        id: &ModelId,
        commitments: crate::dispute::ModelCommitments,
    ) -> Result<(), ()>;
}

/// One file of a model artifact.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo, serde::Serialize, serde::Deserialize,
)]
pub struct ManifestFile {
    /// The file's path inside the artifact, `/`-separated (e.g. `1_Pooling/config.json`).
    pub name: alloc::vec::Vec<u8>,
    pub size: u64,
    pub blake2_256: [u8; 32],
}

/// The canonical manifest of a model: its format and every file it needs, sorted by name.
/// The model id is the blake2-256 of its SCALE encoding, so the id commits to every byte.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo, serde::Serialize, serde::Deserialize,
)]
pub struct Manifest {
    pub format: ModelFormat,
    pub files: alloc::vec::Vec<ManifestFile>,
}

impl Manifest {
    /// A manifest with `files` put in canonical (byte-wise name) order.
    pub fn new(format: ModelFormat, mut files: alloc::vec::Vec<ManifestFile>) -> Self {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Manifest { format, files }
    }

    /// The model id this manifest defines.
    pub fn id(&self) -> ModelId {
        ModelId::from(crate::blake2_256(&self.encode()))
    }
}
