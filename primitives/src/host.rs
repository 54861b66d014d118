//! The inference host function: how the runtime's off-chain worker asks the node to run a
//! model. The node implements it with `inferchain-engine` by registering an
//! [`InferenceExt`] extension for off-chain workers only; block import and authoring
//! never have that extension, so there the call returns [`InferenceError::NotOffchain`]
//! and block execution can never depend on a model's output.

use crate::{
    dispute::{ModelCommitments, Position, TraceCommitment},
    io::IoSpec,
    merkle::Hash,
    model::NumericsProfile,
    ModelId,
};
use alloc::vec::Vec;
use codec::{Decode, Encode};
#[cfg(feature = "std")]
use sp_externalities::ExternalitiesExt;
use sp_runtime_interface::{
    pass_by::{
        AllocateAndReturnByCodec, PassFatPointerAndDecode, PassFatPointerAndRead,
        PassPointerAndReadCopy,
    },
    runtime_interface,
};

/// Why the host could not run a model.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, scale_info::TypeInfo)]
pub enum InferenceError {
    /// Called outside an off-chain worker (block execution must never run a model).
    NotOffchain,
    /// The node's model store lacks the model (or its files fail their hashes).
    ModelUnavailable,
    /// The input does not fit the spec.
    InvalidInput,
    /// The engine failed to run the model.
    Failed,
    /// The model is registered under numerics (a kernel version, a compute dtype) the
    /// node's engine does not implement: its results could not be reproduced exactly.
    UnsupportedNumerics,
    /// The engine cannot build the model's dispute plan, or the plan it builds does not
    /// have the registered commitments: this node cannot post or play traced results.
    NoDisputePlan,
    /// The run went over the node's memory limit for one model run: the worker process
    /// running it was stopped (the node itself is untouched).
    OutOfMemory,
    /// The run went over the node's CPU-time limit for one model run.
    CpuTimeExceeded,
    /// The run did not finish within the node's wall-clock deadline for one model run.
    DeadlineExceeded,
    /// The worker process running the model died another way (a crash); the node and its
    /// other runs are untouched.
    WorkerCrashed,
}

impl InferenceError {
    /// This error as version 1 of the host functions names it (it had no limit errors).
    pub fn for_version_1(self) -> Self {
        if self.is_limit() {
            InferenceError::ModelUnavailable
        } else {
            self
        }
    }

    /// Whether the run was stopped by one of the node's limits on a single run (memory,
    /// CPU time, wall clock) or crashed its worker: the model or its input is too much
    /// for this node, not a passing failure.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            InferenceError::OutOfMemory
                | InferenceError::CpuTimeExceeded
                | InferenceError::DeadlineExceeded
                | InferenceError::WorkerCrashed
        )
    }
}

/// Which run of a model a [`TraceQuery`] is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Encode, Decode, scale_info::TypeInfo)]
pub enum TraceRun {
    /// The honest run (for a plan that reads the posted output, over this node's own
    /// output: what an executor posts).
    Honest,
    /// For tests only (a node started with an executor fault): the run with step `step`'s
    /// output corrupted and every later step computed from it, a wrong trace that is
    /// consistent everywhere but at that step.
    Corrupted { step: u32 },
    /// The honest run of a plan that reads the posted output (a generation's), over
    /// `claimed`, another party's posted output: a watcher's trace, which ends in the
    /// claim itself if it is right and in a witness of its fault otherwise.
    Against(alloc::vec::Vec<u8>),
}

/// What the off-chain worker asks of a traced run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, scale_info::TypeInfo)]
pub enum TraceAsk {
    /// The output, the trace commitment and the output's Merkle path.
    Commit,
    /// The hashes of the two children of the node at a position (a reveal).
    Children(Position),
    /// The encoded `StepProof` of a step.
    Proof(u32),
    /// The encoded plan step, its path and the chunk root of the step's output: the
    /// element-level walk's opening reveal.
    Output(u32),
    /// The hashes of the two children of a node of a step output's chunk tree.
    ChunkChildren(u32, Position),
    /// The encoded `ElementProof` of one chunk of a step's output.
    ElementProof { step: u32, chunk: u32 },
}

/// The answer to a [`TraceAsk`].
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, scale_info::TypeInfo)]
pub enum TraceAnswer {
    Commit {
        output: Vec<u8>,
        trace: TraceCommitment,
        output_path: Vec<Hash>,
    },
    Children(Hash, Hash),
    Proof(Vec<u8>),
    Output {
        step: Vec<u8>,
        step_path: Vec<Hash>,
        chunk_root: Hash,
    },
    /// The position or step is not in the trace.
    OutOfRange,
}

/// A model run as the game needs it: which model, on what, under which commitments.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, scale_info::TypeInfo)]
pub struct TracedModel {
    pub model: ModelId,
    pub spec: IoSpec,
    pub numerics: NumericsProfile,
    pub commitments: ModelCommitments,
    pub uri: Option<Vec<u8>>,
}

/// What the node plugs in to run models.
#[cfg(feature = "std")]
pub trait InferenceRunner: Send + Sync {
    /// Runs `model` on SCALE-encoded `input` checked against `spec` under the registered
    /// `numerics` (refusing a profile it does not implement); returns the SCALE-encoded
    /// output payload. A model missing from the node's store may be fetched from `uri`
    /// (the registered `artifact_uri`) and must be hash-checked before use.
    fn run(
        &self,
        model: ModelId,
        input: &[u8],
        spec: &IoSpec,
        numerics: &NumericsProfile,
        uri: Option<&[u8]>,
    ) -> Result<Vec<u8>, InferenceError>;

    /// Answers `ask` about `run` of `model` on SCALE-encoded `input`, from the model's
    /// dispute plan, which must have the registered commitments. Runs are cached, so the
    /// moves of one game do not re-run the model.
    fn trace(
        &self,
        model: &TracedModel,
        input: &[u8],
        run: TraceRun,
        ask: TraceAsk,
    ) -> Result<TraceAnswer, InferenceError>;
}

#[cfg(feature = "std")]
sp_externalities::decl_extension! {
    /// The node's inference runner, registered only for off-chain workers.
    pub struct InferenceExt(std::sync::Arc<dyn InferenceRunner>);
}

/// Host functions for inference.
#[runtime_interface]
pub trait Inference {
    /// Version 1, for runtimes from before the node's limits (spec 103 and older): the
    /// errors they do not know ([`InferenceError::is_limit`]) read as `ModelUnavailable`,
    /// which they hand back.
    fn run(
        &mut self,
        model: PassPointerAndReadCopy<ModelId, 32>,
        input: PassFatPointerAndRead<&[u8]>,
        spec: PassFatPointerAndDecode<IoSpec>,
        numerics: PassFatPointerAndDecode<NumericsProfile>,
        uri: PassFatPointerAndDecode<Option<alloc::vec::Vec<u8>>>,
    ) -> AllocateAndReturnByCodec<Result<alloc::vec::Vec<u8>, InferenceError>> {
        match self.extension::<InferenceExt>() {
            Some(ext) => ext
                .0
                .run(model, input, &spec, &numerics, uri.as_deref())
                .map_err(InferenceError::for_version_1),
            None => Err(InferenceError::NotOffchain),
        }
    }

    /// Runs `model` on the encoded `input` (checked against `spec`) under the model's
    /// registered `numerics`, fetching the model from `uri` first if the node lacks it.
    /// Off-chain workers only.
    #[version(2)]
    fn run(
        &mut self,
        model: PassPointerAndReadCopy<ModelId, 32>,
        input: PassFatPointerAndRead<&[u8]>,
        spec: PassFatPointerAndDecode<IoSpec>,
        numerics: PassFatPointerAndDecode<NumericsProfile>,
        uri: PassFatPointerAndDecode<Option<alloc::vec::Vec<u8>>>,
    ) -> AllocateAndReturnByCodec<Result<alloc::vec::Vec<u8>, InferenceError>> {
        match self.extension::<InferenceExt>() {
            Some(ext) => ext.0.run(model, input, &spec, &numerics, uri.as_deref()),
            None => Err(InferenceError::NotOffchain),
        }
    }

    /// Version 1 of `trace` (see version 1 of `run`).
    fn trace(
        &mut self,
        model: PassFatPointerAndDecode<TracedModel>,
        input: PassFatPointerAndRead<&[u8]>,
        run: PassFatPointerAndDecode<TraceRun>,
        ask: PassFatPointerAndDecode<TraceAsk>,
    ) -> AllocateAndReturnByCodec<Result<TraceAnswer, InferenceError>> {
        match self.extension::<InferenceExt>() {
            Some(ext) => ext
                .0
                .trace(&model, input, run, ask)
                .map_err(InferenceError::for_version_1),
            None => Err(InferenceError::NotOffchain),
        }
    }

    /// Answers `ask` about `run` of a model with dispute commitments on the encoded
    /// `input`: what the off-chain worker needs to post a traced result and to play the
    /// bisection game. Off-chain workers only.
    #[version(2)]
    fn trace(
        &mut self,
        model: PassFatPointerAndDecode<TracedModel>,
        input: PassFatPointerAndRead<&[u8]>,
        run: PassFatPointerAndDecode<TraceRun>,
        ask: PassFatPointerAndDecode<TraceAsk>,
    ) -> AllocateAndReturnByCodec<Result<TraceAnswer, InferenceError>> {
        match self.extension::<InferenceExt>() {
            Some(ext) => ext.0.trace(&model, input, run, ask),
            None => Err(InferenceError::NotOffchain),
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    struct Echo;
    impl InferenceRunner for Echo {
        fn run(
            &self,
            model: ModelId,
            input: &[u8],
            _: &IoSpec,
            _: &NumericsProfile,
            _: Option<&[u8]>,
        ) -> Result<Vec<u8>, InferenceError> {
            let mut out = model.as_bytes().to_vec();
            out.extend_from_slice(input);
            Ok(out)
        }

        fn trace(
            &self,
            model: &TracedModel,
            input: &[u8],
            run: TraceRun,
            ask: TraceAsk,
        ) -> Result<TraceAnswer, InferenceError> {
            match ask {
                TraceAsk::Proof(step) => {
                    Ok(TraceAnswer::Proof((model.model, input, run, step).encode()))
                }
                _ => Ok(TraceAnswer::OutOfRange),
            }
        }
    }

    fn traced() -> TracedModel {
        TracedModel {
            model: ModelId::repeat_byte(3),
            spec: IoSpec::Text { max_bytes: 2 },
            numerics: numerics(),
            commitments: ModelCommitments {
                plan_root: crate::H256::zero(),
                steps: 1,
                weights_root: crate::H256::zero(),
                weights: 0,
            },
            uri: None,
        }
    }

    fn numerics() -> NumericsProfile {
        NumericsProfile {
            engine_version: 3,
            compute_dtype: crate::io::DType::F32,
            threads: crate::model::ThreadRule::Any,
        }
    }

    #[test]
    fn without_the_offchain_extension_the_host_function_refuses() {
        let mut ext = sp_io::TestExternalities::default();
        ext.execute_with(|| {
            assert_eq!(
                inference::run(
                    ModelId::repeat_byte(1),
                    b"x",
                    IoSpec::Text { max_bytes: 1 },
                    numerics(),
                    None
                ),
                Err(InferenceError::NotOffchain)
            );
        });
    }

    #[test]
    fn traces_are_served_only_to_offchain_workers() {
        let ask = TraceAsk::Proof(7);
        let run = TraceRun::Against(b"claimed".to_vec());
        sp_io::TestExternalities::default().execute_with(|| {
            assert_eq!(
                inference::trace(traced(), b"in", run.clone(), ask),
                Err(InferenceError::NotOffchain)
            );
        });
        let mut ext = sp_io::TestExternalities::default();
        ext.register_extension(InferenceExt(std::sync::Arc::new(Echo)));
        ext.execute_with(|| {
            assert_eq!(
                inference::trace(traced(), b"in", run.clone(), ask),
                Ok(TraceAnswer::Proof(
                    (ModelId::repeat_byte(3), &b"in"[..], run.clone(), 7u32).encode()
                ))
            );
        });
    }

    #[test]
    fn with_the_extension_it_reaches_the_runner() {
        let mut ext = sp_io::TestExternalities::default();
        ext.register_extension(InferenceExt(std::sync::Arc::new(Echo)));
        ext.execute_with(|| {
            let out = inference::run(
                ModelId::repeat_byte(2),
                b"in",
                IoSpec::Text { max_bytes: 2 },
                numerics(),
                None,
            )
            .expect("runs");
            assert_eq!(&out[..32], &[2u8; 32]);
            assert_eq!(&out[32..], b"in");
        });
    }
}
