//! The node's side of the inference host function: `inferchain-engine` over the node's
//! model store, plugged into off-chain workers as an `InferenceExt` extension.

use inferchain_engine::{Engine, EngineError, ModelStore, DEFAULT_CACHE_BYTES};
use inferchain_primitives::{
    host::{InferenceError, InferenceRunner},
    io::IoSpec,
    ModelId,
};
use std::{path::PathBuf, sync::Arc};

/// Log target for everything the node's inference side says.
const LOG_TARGET: &str = "inferchain::inference";

struct EngineRunner(Engine);

impl InferenceRunner for EngineRunner {
    fn run(&self, model: ModelId, input: &[u8], spec: &IoSpec) -> Result<Vec<u8>, InferenceError> {
        self.0.run_encoded(&model, input, spec).map_err(|e| {
            log::warn!(target: LOG_TARGET, "model {model:?}: {e}");
            match e {
                EngineError::NotInStore(_)
                | EngineError::FileHashMismatch { .. }
                | EngineError::ManifestMismatch { .. } => InferenceError::ModelUnavailable,
                EngineError::InvalidInput(_) => InferenceError::InvalidInput,
                _ => InferenceError::Failed,
            }
        })
    }
}

/// The runner over the store at `store` (created if missing).
pub fn engine_runner(store: PathBuf) -> Result<Arc<dyn InferenceRunner>, EngineError> {
    let store = ModelStore::open(store)?;
    log::info!(target: LOG_TARGET, "model store: {}", store.root().display());
    Ok(Arc::new(EngineRunner(Engine::new(
        store,
        DEFAULT_CACHE_BYTES,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::Encode;
    use inferchain_primitives::io::{Payload, Tensor};

    #[test]
    fn the_host_function_runs_a_stored_model_only_with_the_extension() {
        let dir =
            std::env::temp_dir().join(format!("inferchain-node-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ModelStore::open(&dir).expect("store");
        let onnx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-mlp/model.onnx");
        let id = store.import(&onnx, None, &mut |_| {}).expect("import").id();
        let runner = engine_runner(dir.clone()).expect("runner");
        let spec = inferchain_runtime::dev_models::genesis_models()
            .into_iter()
            .find(|m| m.artifact_hash == id)
            .expect("tiny-mlp is a genesis model")
            .input;
        let input =
            Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &[0.1, 0.2, 0.3, 0.4])]).encode();

        // Block execution: no extension, no model run.
        let mut block = sp_io::TestExternalities::default();
        block.execute_with(|| {
            assert_eq!(
                inferchain_primitives::host::inference::run(id, &input, spec.clone()),
                Err(InferenceError::NotOffchain)
            );
        });
        // Off-chain worker: the extension runs the engine.
        let mut offchain = sp_io::TestExternalities::default();
        offchain.register_extension(inferchain_primitives::host::InferenceExt(runner));
        offchain.execute_with(|| {
            let out = inferchain_primitives::host::inference::run(id, &input, spec.clone())
                .expect("runs");
            let Payload::Tensors(ts) = Payload::decode_canonical(&out).expect("canonical") else {
                panic!("tensor output")
            };
            assert_eq!(ts[0].shape, vec![1, 3]);
            assert_eq!(
                inferchain_primitives::host::inference::run(
                    ModelId::repeat_byte(9),
                    &input,
                    spec.clone()
                ),
                Err(InferenceError::ModelUnavailable)
            );
            assert_eq!(
                inferchain_primitives::host::inference::run(id, &[0xff], spec.clone()),
                Err(InferenceError::InvalidInput)
            );
        });
        let _ = std::fs::remove_dir_all(dir);
    }
}
