//! The engine behind the node's inference host function, in-process: [`LocalRunner`]
//! answers `run` and `trace` from an [`Engine`] and names every failure with the host's
//! [`InferenceError`]. An inference worker process ([`crate::worker`]) serves its requests
//! with one; the node uses one directly only when started without isolation.
//!
//! What it must not do: fetch (the node fetches, outside the worker, before it asks), or
//! let an engine error through unnamed.

use crate::{error::EngineError, Engine};
use inferchain_primitives::{
    host::{InferenceError, InferenceRunner, TraceAnswer, TraceAsk, TraceRun, TracedModel},
    io::IoSpec,
    model::NumericsProfile,
    ModelId,
};

/// Log target for the host side of inference.
pub const LOG_TARGET: &str = "inferchain::inference";

/// Runs models in this process, from `engine`'s store.
pub struct LocalRunner(pub Engine);

impl InferenceRunner for LocalRunner {
    fn run(
        &self,
        model: ModelId,
        input: &[u8],
        spec: &IoSpec,
        numerics: &NumericsProfile,
        _uri: Option<&[u8]>,
    ) -> Result<Vec<u8>, InferenceError> {
        self.0
            .run_encoded(&model, input, spec, numerics)
            .map_err(|e| host_error(&model, e))
    }

    fn trace(
        &self,
        model: &TracedModel,
        input: &[u8],
        run: TraceRun,
        ask: TraceAsk,
    ) -> Result<TraceAnswer, InferenceError> {
        let traced = (|| {
            crate::check_numerics(&model.numerics)?;
            inferchain_primitives::io::validate_encoded(input, &model.spec)
                .map_err(EngineError::InvalidInput)?;
            self.0
                .traced_run(&model.model, input, &model.commitments, run)
        })()
        .map_err(|e| match e {
            EngineError::CommitmentsMismatch
            | EngineError::DisputePlanMismatch
            | EngineError::UnsupportedOp { .. } => {
                log::warn!(target: LOG_TARGET, "model {:?}: {e}", model.model);
                InferenceError::NoDisputePlan
            }
            e => host_error(&model.model, e),
        })?;
        if traced.engine_mismatch() && ask == TraceAsk::Commit {
            log::error!(
                target: LOG_TARGET,
                "model {:?}: the dispute plan's output differs from the engine's for this input; \
                 the plan's (what the runtime referees) is posted. Report this: it is a defect of \
                 the plan compiler.",
                model.model
            );
        }
        Ok(traced.answer(ask))
    }
}

/// The host's name for an engine error (the engine's own message is logged).
pub fn host_error(model: &ModelId, e: EngineError) -> InferenceError {
    log::warn!(target: LOG_TARGET, "model {model:?}: {e}");
    match e {
        EngineError::NotInStore(_)
        | EngineError::FileHashMismatch { .. }
        | EngineError::ManifestMismatch { .. } => InferenceError::ModelUnavailable,
        EngineError::InvalidInput(_) => InferenceError::InvalidInput,
        EngineError::UnsupportedNumerics { .. } | EngineError::UnsupportedComputeDType { .. } => {
            InferenceError::UnsupportedNumerics
        }
        _ => InferenceError::Failed,
    }
}

/// Puts a model in the store before `inner` runs it: fetched from its registered mirror
/// when missing (under `limits`), and, the first time this process uses a stored model,
/// re-hashed, so a corrupt folder is moved aside and fetched again instead of failing
/// every request. Runs no model itself: `inner` (a worker pool, or a [`LocalRunner`])
/// does.
pub struct FetchingRunner<R> {
    store: crate::ModelStore,
    limits: crate::fetch::FetchLimits,
    verified: std::sync::Mutex<std::collections::HashSet<ModelId>>,
    inner: R,
}

impl<R: InferenceRunner> FetchingRunner<R> {
    pub fn new(store: crate::ModelStore, limits: crate::fetch::FetchLimits, inner: R) -> Self {
        FetchingRunner {
            store,
            limits,
            verified: Default::default(),
            inner,
        }
    }

    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Brings `model` into the store from the mirror at `uri` if it is missing or corrupt.
    fn ensure_stored(&self, model: &ModelId, uri: Option<&[u8]>) {
        if self.verified.lock().is_ok_and(|v| v.contains(model)) {
            return;
        }
        if self.store.contains(model) {
            match self.store.verify(model, &mut |_| {}) {
                Ok(_) => {
                    if let Ok(mut v) = self.verified.lock() {
                        v.insert(*model);
                    }
                    return;
                }
                Err(e) => {
                    log::error!(target: LOG_TARGET, "model {model:?}: the stored copy is corrupt ({e}); moving it aside and fetching it again");
                    if let Err(e) = self.store.quarantine(model) {
                        log::error!(target: LOG_TARGET, "model {model:?}: cannot move the corrupt copy aside: {e}");
                        return;
                    }
                }
            }
        }
        let Some(uri) = uri.and_then(|u| std::str::from_utf8(u).ok()) else {
            return;
        };
        log::info!(target: LOG_TARGET, "model {model:?} is not in the store; fetching it from {uri}");
        match crate::fetch::fetch_model_within(&self.store, model, uri, self.limits) {
            Ok(_) => {
                log::info!(target: LOG_TARGET, "model {model:?} fetched and verified");
                if let Ok(mut v) = self.verified.lock() {
                    v.insert(*model);
                }
            }
            Err(e) => {
                log::warn!(target: LOG_TARGET, "model {model:?}: fetching from {uri} failed: {e}")
            }
        }
    }
}

impl<R: InferenceRunner> InferenceRunner for FetchingRunner<R> {
    fn run(
        &self,
        model: ModelId,
        input: &[u8],
        spec: &IoSpec,
        numerics: &NumericsProfile,
        uri: Option<&[u8]>,
    ) -> Result<Vec<u8>, InferenceError> {
        self.ensure_stored(&model, uri);
        self.inner.run(model, input, spec, numerics, uri)
    }

    fn trace(
        &self,
        model: &TracedModel,
        input: &[u8],
        run: TraceRun,
        ask: TraceAsk,
    ) -> Result<TraceAnswer, InferenceError> {
        self.ensure_stored(&model.model, model.uri.as_deref());
        self.inner.trace(model, input, run, ask)
    }
}
