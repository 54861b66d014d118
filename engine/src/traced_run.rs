//! Traced runs: what an executor posts a result of a model with dispute commitments with,
//! and what either party of a bisection game answers each move from. A run is the model's
//! dispute plan executed on one input ([`DisputePlan::run`], checked against the engine's
//! own output); [`TracedRuns`] keeps the plans of recently used models and the last runs,
//! so the moves of a game (a reveal per round, a step proof) do not re-run the model.
//!
//! What it must not do: answer from a plan whose commitments differ from the registered
//! ones (every move would then lose), or keep an unbounded number of runs.

use crate::{
    dispute_plan::DisputePlan,
    error::{EngineError, Result},
    Engine,
};
use codec::Encode;
use inferchain_primitives::{
    dispute::ModelCommitments,
    host::{TraceAnswer, TraceAsk, TraceRun},
    io::Payload,
    merkle,
    tensor_tree::chunk_root,
    trace_tree::TraceTree,
    ModelId,
};
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

/// How many runs are kept, least recently used dropped first (a node plays a handful of
/// games at once; every traced result it posts or watches adds a run).
const KEPT_RUNS: usize = 64;
/// And how many bytes of step outputs they may hold together.
const KEPT_BYTES: usize = 512 << 20;

/// One run of a plan: every step's output and the tree over them.
pub struct TracedRun {
    plan: Arc<DisputePlan>,
    /// The plan's commitments, computed once when it was built.
    commitments: ModelCommitments,
    input: Vec<u8>,
    /// The posted output a generation's plan is traced over (empty for other plans).
    claimed: Vec<u8>,
    outputs: Vec<Vec<u8>>,
    tree: TraceTree,
    /// Whether the plan's output differed from the engine's (see [`Engine::traced_run`]).
    engine_mismatch: bool,
}

impl TracedRun {
    pub fn outputs(&self) -> &[Vec<u8>] {
        &self.outputs
    }

    pub fn tree(&self) -> &TraceTree {
        &self.tree
    }

    /// Whether this honest run's output differs from the engine's own: a defect of the
    /// plan compiler, to be reported (the run, the referee's truth, is served anyway).
    pub fn engine_mismatch(&self) -> bool {
        self.engine_mismatch
    }

    fn bytes(&self) -> usize {
        self.outputs.iter().map(Vec::len).sum::<usize>() + self.input.len() + self.claimed.len()
    }

    /// The answer to one move's question.
    pub fn answer(&self, ask: TraceAsk) -> TraceAnswer {
        let answer = match ask {
            TraceAsk::Commit => (|| {
                Some(TraceAnswer::Commit {
                    output: self.outputs.last()?.clone(),
                    trace: self.tree.commitment(),
                    output_path: self.tree.output_path()?,
                })
            })(),
            TraceAsk::Children(at) => self
                .tree
                .children(at)
                .map(|(l, r)| TraceAnswer::Children(l, r)),
            TraceAsk::Proof(step) => self
                .plan
                .proof_over(&self.input, &self.claimed, &self.outputs, step as usize)
                .map(|p| TraceAnswer::Proof(p.encode())),
            TraceAsk::Output(step) => (|| {
                Some(TraceAnswer::Output {
                    step: self.plan.steps.get(step as usize)?.encode(),
                    step_path: merkle::proof(self.plan.step_leaves(), step as usize)?,
                    chunk_root: chunk_root(self.outputs.get(step as usize)?),
                })
            })(),
            TraceAsk::ChunkChildren(step, at) => self
                .outputs
                .get(step as usize)
                .and_then(|o| TraceTree::of_chunks(o).children(at))
                .map(|(l, r)| TraceAnswer::Children(l, r)),
            TraceAsk::ElementProof { step, chunk } => self
                .plan
                .element_proof(&self.input, &self.outputs, step as usize, chunk)
                .map(|p| TraceAnswer::Proof(p.encode())),
        };
        answer.unwrap_or(TraceAnswer::OutOfRange)
    }
}

type RunKey = (ModelId, [u8; 32], TraceRun);

/// The most re-traces that settle an executor's generation on its plan's (one token a
/// round at least; a generation has at most as many tokens as the model has positions).
const MAX_CLAIM_ROUNDS: usize = 1 << 16;

/// Plans and runs an engine keeps for the game.
#[derive(Default)]
pub struct TracedRuns {
    plans: Mutex<HashMap<ModelId, (Arc<DisputePlan>, ModelCommitments)>>,
    runs: Mutex<VecDeque<(RunKey, Arc<TracedRun>)>>,
}

impl Engine {
    /// The dispute plan of stored ONNX model `id`, checked against the registered
    /// `commitments`.
    pub fn dispute_plan(
        &self,
        id: &ModelId,
        commitments: &ModelCommitments,
    ) -> Result<Arc<DisputePlan>> {
        let cached = self
            .traced()
            .plans
            .lock()
            .ok()
            .and_then(|p| p.get(id).cloned());
        let (plan, built) = match cached {
            Some(found) => found,
            None => {
                let files = self.store().read_verified(id, &mut |_| {})?;
                // Compiling a hostile file must end in an error, never unwind.
                let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    DisputePlan::compile(&files)
                }))
                .map_err(|p| EngineError::Panicked(crate::onnx::panic_message(p)))?;
                let plan = Arc::new(compiled?);
                let built = plan.commitments();
                if let Ok(mut plans) = self.traced().plans.lock() {
                    plans.insert(*id, (plan.clone(), built));
                }
                (plan, built)
            }
        };
        if built != *commitments {
            return Err(EngineError::CommitmentsMismatch);
        }
        Ok(plan)
    }

    /// `run` of model `id` on the encoded, already validated `input`, from its dispute
    /// plan (kept for later moves). An honest run is compared with the engine's output
    /// ([`TracedRun::engine_mismatch`]).
    pub fn traced_run(
        &self,
        id: &ModelId,
        input: &[u8],
        commitments: &ModelCommitments,
        run: TraceRun,
    ) -> Result<Arc<TracedRun>> {
        let key = (*id, inferchain_primitives::blake2_256(input), run.clone());
        if let Some(found) = self.traced().runs.lock().ok().and_then(|mut runs| {
            // A hit moves to the back: least recently used first out.
            let at = runs.iter().position(|(k, _)| *k == key)?;
            let entry = runs.remove(at)?;
            let found = entry.1.clone();
            runs.push_back(entry);
            Some(found)
        }) {
            if found.commitments != *commitments {
                return Err(EngineError::CommitmentsMismatch);
            }
            return Ok(found);
        }
        let plan = self.dispute_plan(id, commitments)?;
        // The referee's step-by-step run is the truth the game decides by, so it is what
        // a traced result commits to even where the engine's own output differs (a plan
        // compiler defect, flagged for the node to report, never a reason to post
        // nothing and be slashed for it).
        let corrupt = match &run {
            TraceRun::Corrupted { step } => Some(*step as usize),
            TraceRun::Honest | TraceRun::Against(_) => None,
        };
        // A generation's plan is the teacher-forced pass over a posted output: this
        // node's own (an executor traces the result it posts), or another party's (a
        // watcher's trace ends in that claim if it is right, in a witness otherwise).
        let claimed = match &run {
            _ if !plan.reads_output() => Vec::new(),
            TraceRun::Against(claimed) => claimed.clone(),
            TraceRun::Honest | TraceRun::Corrupted { .. } => {
                let payload =
                    Payload::decode_canonical(input).map_err(EngineError::InvalidInput)?;
                self.load(id, &mut |_| {})?.run(&payload)?.encode()
            }
        };
        let mut outputs = plan.trace_over(input, &claimed, corrupt)?;
        let mut claimed = claimed;
        // An executor's generation must be what its plan ends in, or the output it posts
        // (the plan's) is not the claim its trace is over, and it loses the game at the
        // first step. Where the engine and the plan disagree (a defect: they are tested
        // bit for bit alike), the plan's witness becomes the claim until the plan ends in
        // it; each round settles at least one more token.
        if plan.reads_output() && run == TraceRun::Honest {
            let mut rounds = 0;
            while outputs.last() != Some(&claimed) && rounds <= MAX_CLAIM_ROUNDS {
                log::error!(
                    target: "inferchain::engine",
                    "model {id:?}: the engine's generation is not its dispute plan's; posting the plan's"
                );
                claimed = outputs.last().cloned().unwrap_or_default();
                outputs = plan.trace_over(input, &claimed, None)?;
                rounds += 1;
            }
        }
        let engine_mismatch = match run {
            TraceRun::Honest => {
                let model = self.load(id, &mut |_| {})?;
                matches!(
                    plan.check_against_engine(&model, input, &outputs),
                    Err(EngineError::DisputePlanMismatch)
                )
            }
            TraceRun::Corrupted { .. } | TraceRun::Against(_) => false,
        };
        let traced = Arc::new(TracedRun {
            tree: TraceTree::from_outputs(&outputs),
            plan,
            commitments: *commitments,
            input: input.to_vec(),
            claimed,
            outputs,
            engine_mismatch,
        });
        if let Ok(mut runs) = self.traced().runs.lock() {
            runs.push_back((key, traced.clone()));
            let mut held: usize = runs.iter().map(|(_, r)| r.bytes()).sum();
            while runs.len() > KEPT_RUNS || (held > KEPT_BYTES && runs.len() > 1) {
                if let Some((_, dropped)) = runs.pop_front() {
                    held = held.saturating_sub(dropped.bytes());
                }
            }
        }
        Ok(traced)
    }
}
