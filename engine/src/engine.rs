//! [`Engine`]: runs a model from the store on a canonical payload.

use crate::{
    bert::BertEmbedder,
    cache::ModelCache,
    error::{EngineError, Result},
    llm::LlmModel,
    onnx::OnnxModel,
    store::{ModelStore, Progress, ONNX_FILE},
};
use codec::Encode;
use inferchain_primitives::{
    io::{DType, IoSpec, Payload},
    model::{Manifest, ModelCost, ModelFormat, NumericsProfile},
    ModelId,
};
use std::sync::{Arc, Mutex};

/// The default in-memory budget for loaded models.
pub const DEFAULT_CACHE_BYTES: usize = 2 << 30;

/// A model ready to run.
pub enum LoadedModel {
    Onnx(Box<OnnxModel>),
    Bert(Box<BertEmbedder>),
    Llm(Box<LlmModel>),
}

impl LoadedModel {
    /// Loads the model whose files are `files` (already checked against the manifest).
    pub fn load(mut files: crate::store::VerifiedFiles) -> Result<Self> {
        match files.manifest.format {
            ModelFormat::Onnx => {
                let bytes = files
                    .take(ONNX_FILE)
                    .ok_or_else(|| EngineError::InvalidArtifact(format!("{ONNX_FILE} missing")))?;
                let external = |name: &str| files.get(name);
                Ok(LoadedModel::Onnx(Box::new(OnnxModel::from_files(
                    &bytes, &external,
                )?)))
            }
            ModelFormat::BertEmbedding => {
                Ok(LoadedModel::Bert(Box::new(BertEmbedder::load(&mut files)?)))
            }
            ModelFormat::Llm => Ok(LoadedModel::Llm(Box::new(LlmModel::load(&mut files)?))),
        }
    }

    /// What the model's files declare it takes and returns.
    pub fn io_specs(&self) -> Result<(IoSpec, IoSpec)> {
        match self {
            LoadedModel::Onnx(m) => m.io_specs(),
            LoadedModel::Bert(m) => m.io_specs(),
            LoadedModel::Llm(m) => m.io_specs(),
        }
    }

    /// The I/O to register by default: what the files declare, except for an LLM,
    /// whose declared bounds are the model's limits and whose default caps are tighter.
    pub fn registration_specs(&self) -> Result<(IoSpec, IoSpec)> {
        match self {
            LoadedModel::Llm(m) => m.registration_specs(),
            other => other.io_specs(),
        }
    }

    /// What one request costs at most, for a model registered with `input` as its
    /// input spec (`crate::cost`); over `limit`, `EngineError::CostOverLimit` (an ONNX
    /// dry run stops as soon as it passes it).
    pub fn estimate_cost(&self, input: &IoSpec, limit: Option<ModelCost>) -> Result<ModelCost> {
        let cost = match (self, input) {
            (LoadedModel::Onnx(m), _) => return m.estimate_cost_within(input, limit),
            (LoadedModel::Bert(m), IoSpec::Text { max_bytes }) => m.cost(*max_bytes),
            (
                LoadedModel::Llm(m),
                IoSpec::Prompt {
                    max_bytes,
                    max_new_tokens,
                },
            ) => m.cost(*max_bytes, *max_new_tokens),
            _ => {
                return Err(EngineError::InvalidArtifact(
                    "the input spec is not of the model's kind".into(),
                ))
            }
        };
        match limit {
            Some(limit) if !cost.fits_within(&limit) => Err(EngineError::CostOverLimit {
                at_least: cost,
                limit,
            }),
            _ => Ok(cost),
        }
    }

    /// Bytes the model holds in memory (its weights).
    pub fn weight_bytes(&self) -> usize {
        match self {
            LoadedModel::Onnx(m) => m.weight_bytes(),
            LoadedModel::Bert(m) => m.weight_bytes(),
            LoadedModel::Llm(m) => m.weight_bytes(),
        }
    }

    /// Runs the model. The input must already fit its spec.
    pub fn run(&self, input: &Payload) -> Result<Payload> {
        match (self, input) {
            (LoadedModel::Onnx(m), Payload::Tensors(ts)) => Ok(Payload::Tensors(m.run(ts)?)),
            (LoadedModel::Bert(m), Payload::Text(text)) => {
                let text = std::str::from_utf8(text).map_err(|_| {
                    EngineError::InvalidInput(inferchain_primitives::io::IoError::InvalidUtf8)
                })?;
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.embed(text)));
                match outcome {
                    Ok(t) => Ok(Payload::Tensors(vec![t?])),
                    Err(p) => Err(EngineError::Panicked(crate::onnx::panic_message(p))),
                }
            }
            (
                LoadedModel::Llm(m),
                Payload::Prompt {
                    text,
                    max_new_tokens,
                },
            ) => {
                let text = std::str::from_utf8(text).map_err(|_| {
                    EngineError::InvalidInput(inferchain_primitives::io::IoError::InvalidUtf8)
                })?;
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    m.complete(text, *max_new_tokens as usize)
                }));
                match outcome {
                    Ok(g) => g,
                    Err(p) => Err(EngineError::Panicked(crate::onnx::panic_message(p))),
                }
            }
            _ => Err(EngineError::InvalidInput(
                inferchain_primitives::io::IoError::KindMismatch,
            )),
        }
    }
}

/// The outcome of one run: output and the hashes a receipt names.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub output: Payload,
    /// blake2-256 of the SCALE-encoded input payload.
    pub input_hash: [u8; 32],
    /// blake2-256 of the SCALE-encoded output payload.
    pub output_hash: [u8; 32],
}

/// Runs models from a [`ModelStore`], keeping recently used ones loaded.
///
/// Thread count is a process-wide setting of candle's (`RAYON_NUM_THREADS`, read once);
/// outputs do not depend on it (docs/DETERMINISM.md).
pub struct Engine {
    store: ModelStore,
    cache: Mutex<ModelCache<LoadedModel>>,
    traced: crate::traced_run::TracedRuns,
}

impl Engine {
    pub fn new(store: ModelStore, cache_bytes: usize) -> Self {
        Engine {
            store,
            cache: Mutex::new(ModelCache::new(cache_bytes)),
            traced: Default::default(),
        }
    }

    pub(crate) fn traced(&self) -> &crate::traced_run::TracedRuns {
        &self.traced
    }

    pub fn store(&self) -> &ModelStore {
        &self.store
    }

    /// The model `id`, from memory or loaded from the store (hashes checked first).
    pub fn load(
        &self,
        id: &ModelId,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Arc<LoadedModel>> {
        if let Some(model) = self.cache.lock().ok().and_then(|mut c| c.get(id)) {
            return Ok(model);
        }
        let files = self.store.read_verified(id, progress)?;
        let size = files.total_bytes() as usize;
        // Parsing a hostile file must end in an error, never unwind into the caller.
        let loaded =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| LoadedModel::load(files)))
                .map_err(|p| EngineError::Panicked(crate::onnx::panic_message(p)))?;
        let model = Arc::new(loaded?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(*id, size, model.clone());
        }
        Ok(model)
    }

    /// The manifest of a stored model.
    pub fn manifest(&self, id: &ModelId) -> Result<Manifest> {
        self.store.manifest(id)
    }

    /// Runs `id` on `input`, which must fit `spec` (the registered spec) when given, and
    /// always the spec the model's own files declare. The output is checked against the
    /// model's declared output spec.
    pub fn run(&self, id: &ModelId, input: &Payload, spec: Option<&IoSpec>) -> Result<RunOutcome> {
        let model = self.load(id, &mut |_| {})?;
        let (declared_in, declared_out) = model.io_specs()?;
        if let Some(spec) = spec {
            input.validate(spec).map_err(EngineError::InvalidInput)?;
        }
        input
            .validate(&declared_in)
            .or_else(|e| {
                if spec.is_some() {
                    relaxed(input, &declared_in, e)
                } else {
                    Err(e)
                }
            })
            .map_err(EngineError::InvalidInput)?;
        let output = model.run(input)?;
        output
            .validate(&declared_out)
            .map_err(EngineError::InvalidOutput)?;
        Ok(RunOutcome {
            input_hash: inferchain_primitives::blake2_256(&input.encode()),
            output_hash: inferchain_primitives::blake2_256(&output.encode()),
            output,
        })
    }

    /// Runs `id` on SCALE-encoded input bytes checked against `spec`, under the registered
    /// `numerics` (refused with a named error when this engine does not implement them);
    /// returns the encoded output. This is the shape the node's host function needs.
    pub fn run_encoded(
        &self,
        id: &ModelId,
        input: &[u8],
        spec: &IoSpec,
        numerics: &NumericsProfile,
    ) -> Result<Vec<u8>> {
        check_numerics(numerics)?;
        let payload = inferchain_primitives::io::validate_encoded(input, spec)
            .map_err(EngineError::InvalidInput)?;
        Ok(self.run(id, &payload, Some(spec))?.output.encode())
    }
}

/// Refuses a numerics profile this engine does not implement: another kernel version
/// (its outputs would differ in bits), or a compute dtype other than f32.
pub fn check_numerics(numerics: &NumericsProfile) -> Result<()> {
    if numerics.engine_version != crate::spec::NUMERICS_VERSION {
        return Err(EngineError::UnsupportedNumerics {
            registered: numerics.engine_version,
            implemented: crate::spec::NUMERICS_VERSION,
        });
    }
    if numerics.compute_dtype != DType::F32 {
        return Err(EngineError::UnsupportedComputeDType {
            dtype: format!("{:?}", numerics.compute_dtype),
        });
    }
    Ok(())
}

/// A registered text bound may be larger than the engine's default; the registered spec
/// is the authority on bounds, the declared one on kinds, dtypes and fixed sizes.
fn relaxed(
    input: &Payload,
    declared: &IoSpec,
    err: inferchain_primitives::io::IoError,
) -> std::result::Result<(), inferchain_primitives::io::IoError> {
    use inferchain_primitives::io::IoError;
    match (input, declared, &err) {
        (Payload::Text(_), IoSpec::Text { .. }, IoError::TextTooLong { .. }) => Ok(()),
        (Payload::Prompt { .. }, IoSpec::Prompt { .. }, IoError::TextTooLong { .. }) => Ok(()),
        (
            Payload::Prompt { max_new_tokens, .. },
            IoSpec::Prompt { .. },
            IoError::MaxNewTokens { .. },
        ) if *max_new_tokens > 0 => Ok(()),
        (_, _, IoError::Shape { .. }) => Ok(()),
        _ => Err(err),
    }
}
