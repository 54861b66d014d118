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
/// when missing (under `limits`, in the background, waited for at most [`FETCH_WAIT`]),
/// and, the first time this process uses a stored model,
/// re-hashed, so a corrupt folder is moved aside and fetched again instead of failing
/// every request. Runs no model itself: `inner` (a worker pool, or a [`LocalRunner`])
/// does.
pub struct FetchingRunner<R> {
    store: crate::ModelStore,
    limits: crate::fetch::FetchLimits,
    verified: std::sync::Mutex<std::collections::HashSet<ModelId>>,
    fetches: Fetches,
    inner: R,
}

impl<R: InferenceRunner> FetchingRunner<R> {
    pub fn new(store: crate::ModelStore, limits: crate::fetch::FetchLimits, inner: R) -> Self {
        FetchingRunner {
            store,
            limits,
            verified: Default::default(),
            fetches: Default::default(),
            inner,
        }
    }

    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Whether `e` proves the stored copy corrupt: a file whose hash or size is wrong, a
    /// manifest that is not the id's, or a file the manifest names that is gone.
    fn corrupt(e: &EngineError) -> bool {
        match e {
            EngineError::FileHashMismatch { .. }
            | EngineError::ManifestMismatch { .. }
            | EngineError::InvalidArtifact(_) => true,
            EngineError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }

    /// Brings `model` into the store from the mirror at `uri` if it is missing or corrupt;
    /// whether it may be run (stored, or not provably corrupt).
    fn ensure_stored(&self, model: &ModelId, uri: Option<&[u8]>) -> bool {
        if self.verified.lock().is_ok_and(|v| v.contains(model)) {
            return true;
        }
        if self.store.contains(model) {
            match self.store.verify(model, &mut |_| {}) {
                Ok(_) => {
                    if let Ok(mut v) = self.verified.lock() {
                        v.insert(*model);
                    }
                    return true;
                }
                // Only proof of corruption moves a copy aside: a transient error (no file
                // descriptors left, an import swapping the folder in) must not delete a
                // good model.
                Err(e) if !Self::corrupt(&e) => {
                    log::warn!(target: LOG_TARGET, "model {model:?}: cannot check the stored copy now ({e})");
                    return true;
                }
                Err(e) => {
                    log::error!(target: LOG_TARGET, "model {model:?}: the stored copy is corrupt ({e}); moving it aside and fetching it again");
                    if let Err(e) = self.store.quarantine(model) {
                        log::error!(target: LOG_TARGET, "model {model:?}: cannot move the corrupt copy aside: {e}");
                        return false;
                    }
                }
            }
        }
        let Some(uri) = uri.and_then(|u| std::str::from_utf8(u).ok()) else {
            return false;
        };
        let fetched = self.fetch_within_window(model, uri);
        if fetched {
            if let Ok(mut v) = self.verified.lock() {
                v.insert(*model);
            }
        }
        fetched
    }

    /// Fetches `model` in the background (one fetch per model at a time; a failed one is
    /// not retried for [`FETCH_BACKOFF`]) and waits for it at most [`FETCH_WAIT`]: a large
    /// model or a slow mirror must not hold the caller past the request's execution
    /// window (it then hands the request back, named, instead of missing its deadline);
    /// the fetch goes on and serves later requests. Whether the model is stored now.
    fn fetch_within_window(&self, model: &ModelId, uri: &str) -> bool {
        let (lock, done) = &*self.fetches;
        let Ok(mut fetches) = lock.lock() else {
            return false;
        };
        match fetches.get(model) {
            Some(FetchState::Failed(at)) if at.elapsed() < FETCH_BACKOFF => {
                log::info!(target: LOG_TARGET, "model {model:?}: its last fetch failed {:?} ago; not retrying yet", at.elapsed());
                return false;
            }
            Some(FetchState::InFlight) => {}
            _ => {
                fetches.insert(*model, FetchState::InFlight);
                let (store, limits, shared) =
                    (self.store.clone(), self.limits, self.fetches.clone());
                let (model, uri) = (*model, uri.to_string());
                log::info!(target: LOG_TARGET, "model {model:?} is not in the store; fetching it from {uri}");
                let started = std::thread::Builder::new()
                    .name("inferchain-model-fetch".into())
                    .spawn(move || {
                        let state = match crate::fetch::fetch_model_within(&store, &model, &uri, limits) {
                            Ok(_) => {
                                log::info!(target: LOG_TARGET, "model {model:?} fetched and verified");
                                FetchState::Done
                            }
                            Err(e) => {
                                log::warn!(target: LOG_TARGET, "model {model:?}: fetching from {uri} failed: {e}");
                                FetchState::Failed(std::time::Instant::now())
                            }
                        };
                        let (lock, done) = &*shared;
                        if let Ok(mut fetches) = lock.lock() {
                            fetches.insert(model, state);
                        }
                        done.notify_all();
                    });
                if started.is_err() {
                    fetches.insert(model, FetchState::Failed(std::time::Instant::now()));
                    return false;
                }
            }
        }
        let until = std::time::Instant::now() + FETCH_WAIT;
        loop {
            match fetches.get(model) {
                Some(FetchState::Done) => return true,
                Some(FetchState::Failed(_)) => return false,
                _ => {}
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                log::warn!(target: LOG_TARGET, "model {model:?}: still fetching after {FETCH_WAIT:?}; this request is handed back, the fetch goes on for later ones");
                return false;
            }
            fetches = match done.wait_timeout(fetches, left) {
                Ok((f, _)) => f,
                Err(_) => return false,
            };
        }
    }
}

/// How long a request waits for its model's fetch before it is handed back (the fetch
/// itself goes on, within its [`crate::fetch::FetchLimits`]).
pub const FETCH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long after a failed fetch of a model it is not tried again.
pub const FETCH_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

enum FetchState {
    InFlight,
    Done,
    Failed(std::time::Instant),
}

type Fetches = std::sync::Arc<(
    std::sync::Mutex<std::collections::HashMap<ModelId, FetchState>>,
    std::sync::Condvar,
)>;

impl<R: InferenceRunner> InferenceRunner for FetchingRunner<R> {
    fn run(
        &self,
        model: ModelId,
        input: &[u8],
        spec: &IoSpec,
        numerics: &NumericsProfile,
        uri: Option<&[u8]>,
    ) -> Result<Vec<u8>, InferenceError> {
        // A model this node does not have is named here; no worker is bothered.
        if !self.ensure_stored(&model, uri) {
            return Err(InferenceError::ModelUnavailable);
        }
        self.inner.run(model, input, spec, numerics, uri)
    }

    fn trace(
        &self,
        model: &TracedModel,
        input: &[u8],
        run: TraceRun,
        ask: TraceAsk,
    ) -> Result<TraceAnswer, InferenceError> {
        if !self.ensure_stored(&model.model, model.uri.as_deref()) {
            return Err(InferenceError::ModelUnavailable);
        }
        self.inner.trace(model, input, run, ask)
    }
}
