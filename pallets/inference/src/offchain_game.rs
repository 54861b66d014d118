//! The off-chain worker's side of the bisection game. Every answer comes from the node's traced runs through the inference
//! host function (`inference::trace`), which keeps a run for the moves that follow it.
//!
//! * **Executor**: posts `submit_traced_result` (output, trace commitment, output path)
//!   and defends each game on its result: it reveals every
//!   round and posts the step proof as soon as the walk ends.
//! * **Watcher**: every sampled active key other than the executor's re-runs the result
//!   and, when its output breaks the model's rule, opens its own game at once (no turns:
//!   a game lost to a sybil must not lock honest watchers out, so each honest one plays).
//!   It reveals every round; at the end it posts the step proof itself only when the
//!   executor has not by the block before the deadline (an executor that posts nothing
//!   loses anyway).
//! * **Element walk**: a step the referee settles by chunk (`StepReferee::path` is
//!   `Elements`: over the caps whole) is not proven whole; the party reveals its chunk
//!   root of the step's output instead (`reveal_output`), both walk down the chunk trees,
//!   and the chunk's element proof is posted as a step proof is.
//!
//! Every move is due inside its deadline, so moves are found through the game queue:
//! a game whose next move is due by block `d` has an entry at `d + 1`; the worker reads
//! the entries from `next + 1` to `next + MoveTimeout + 1` only, earliest deadline first.
//! Each move (and each game opening) takes a lock keyed by game, round and side that
//! expires after one block, not `OffchainRetryBlocks`: a move that did not land is sent
//! again at once while its deadline allows (with the next nonce, `offchain_sender`).
//!
//! Test faults: an executor with `WrongOutput` commits to the run with its plan's middle
//! step corrupted (a wrong result of a traced model must come with a trace ending in it)
//! and plays that run to the end; a node with `ThrowGames` opens a game on every traced
//! result of another executor (with an output that differs, wrong if need be) and never
//! moves in it, the sybil thrower of the threat model.

use crate::{offchain::Fault, pallet::*, GamePhase, RequestStatus, Side, LOG_TARGET};
use alloc::{collections::BTreeSet, vec::Vec};
use codec::{Decode, Encode};
use frame_support::pallet_prelude::*;
use frame_system::{offchain::Account, pallet_prelude::BlockNumberFor};
use inferchain_primitives::{
    dispute::{PlanStep, RefereePath, StepReferee, TraceCommitment},
    host::{inference, InferenceError, TraceAnswer, TraceAsk, TraceRun, TracedModel},
    merkle::Hash,
    model::ModelRegistry,
    RequestId,
};
use sp_runtime::traits::{One, Saturating};

/// How long a sent move (or game opening) is not sent again: one block, the soonest it
/// can land; its deadline is what matters, not the fee of a rare duplicate.
const MOVE_RETRY_BLOCKS: u32 = 1;

/// A traced run's output and what it is posted with.
struct Commit {
    output: Vec<u8>,
    trace: TraceCommitment,
    output_path: Vec<Hash>,
}

/// What the executor role does with one assigned request.
pub(crate) enum Answer<T: Config> {
    /// Post this result.
    Post(crate::pallet::BatchResultOf<T>),
    /// Done otherwise (a hand-back sent, or nothing to post): `Some` keeps the duty's
    /// lock, `None` releases it for a retry.
    Done(Option<()>),
}

impl<T: Config> Pallet<T> {
    /// What the host needs to trace a request's model, if the model has commitments.
    pub(crate) fn traced_model(request: &RequestOf<T>) -> Option<TracedModel> {
        let commitments = T::Models::commitments(&request.model)?;
        let (spec, _) = T::Models::model(&request.model)?;
        Some(TracedModel {
            model: request.model,
            spec: spec.input,
            numerics: spec.numerics,
            commitments,
            uri: spec.artifact_uri.map(|u| u.into_inner()),
        })
    }

    /// The run an executor commits to: the honest one, or with `WrongOutput` the one
    /// whose middle step is corrupted.
    fn executor_run(fault: Option<Fault>, model: &TracedModel) -> TraceRun {
        match fault {
            Some(Fault::WrongOutput) => TraceRun::Corrupted {
                step: model.commitments.steps / 2,
            },
            _ => TraceRun::Honest,
        }
    }

    /// The run a challenger commits to and plays: the honest one; for a generation (a
    /// model that takes a prompt), the honest teacher-forced pass over the executor's
    /// posted output, which ends in that output if it is right and in a witness of its
    /// first fault otherwise (docs/LLM.md), so both traces are over the same claim.
    fn challenger_run(model: &TracedModel, posted: &[u8]) -> TraceRun {
        match model.spec {
            inferchain_primitives::io::IoSpec::Prompt { .. } => TraceRun::Against(posted.to_vec()),
            _ => TraceRun::Honest,
        }
    }

    /// Asks the host about `run` of request `id`; `None` (logged) if it cannot answer.
    fn trace_ask(
        id: RequestId,
        model: &TracedModel,
        input: &[u8],
        run: TraceRun,
        ask: TraceAsk,
    ) -> Option<TraceAnswer> {
        match inference::trace(model.clone(), input, run, ask) {
            Ok(TraceAnswer::OutOfRange) => {
                log::error!(target: LOG_TARGET, "request {id}: {ask:?} is outside this node's trace of {:?}", model.model);
                None
            }
            Ok(answer) => Some(answer),
            Err(e) => {
                log::warn!(
                    target: LOG_TARGET,
                    "request {id}: this node cannot trace model {:?} ({e:?}); it can neither post nor \
                     play its traced results. Import the model into the node's --model-store and run \
                     an engine that builds its registered dispute plan.",
                    model.model
                );
                None
            }
        }
    }

    /// Whether `e` means this node cannot serve the model at all (not a passing failure
    /// of one run): the model is not in its store and cannot be fetched, or its engine
    /// cannot reproduce the registered numerics or dispute plan.
    fn cannot_serve(e: &InferenceError) -> bool {
        matches!(
            e,
            InferenceError::ModelUnavailable
                | InferenceError::UnsupportedNumerics
                | InferenceError::NoDisputePlan
        )
    }

    fn commit(id: RequestId, model: &TracedModel, input: &[u8], run: TraceRun) -> Option<Commit> {
        match Self::trace_ask(id, model, input, run, TraceAsk::Commit)? {
            TraceAnswer::Commit {
                output,
                trace,
                output_path,
            } => Some(Commit {
                output,
                trace,
                output_path,
            }),
            _ => None,
        }
    }

    /// Executor role for a model with commitments: post the traced result. Runs under
    /// the duty's lock; `Some` keeps it.
    pub(crate) fn execute_traced(
        id: RequestId,
        request: &RequestOf<T>,
        model: &TracedModel,
        account: &Account<T>,
        fault: Option<Fault>,
    ) -> Option<()> {
        match Self::traced_answer(id, request, model, account, fault) {
            Answer::Post((id, output, trace, output_path)) => {
                log::info!(target: LOG_TARGET, "request {id}: posting a traced result as executor {:?}", account.id);
                Self::send(
                    account,
                    Call::submit_traced_result {
                        id,
                        output,
                        trace,
                        output_path,
                    },
                )
            }
            Answer::Done(done) => done,
        }
    }

    /// Runs request `id` traced as its executor `account` and returns the result to
    /// post, or what was done instead (a hand-back sent, or nothing to post: `Some`
    /// keeps the duty's lock).
    pub(crate) fn traced_answer(
        id: RequestId,
        request: &RequestOf<T>,
        model: &TracedModel,
        account: &Account<T>,
        fault: Option<Fault>,
    ) -> Answer<T> {
        let run = Self::executor_run(fault, model);
        if run != TraceRun::Honest {
            log::warn!(target: LOG_TARGET, "request {id}: posting a wrong traced result ({run:?}, --executor-fault wrong-output)");
        }
        let commit = match inference::trace(model.clone(), &request.input, run, TraceAsk::Commit) {
            Ok(TraceAnswer::Commit {
                output,
                trace,
                output_path,
            }) => Commit {
                output,
                trace,
                output_path,
            },
            // A run past this node's limits: handed back, the model still served (the
            // input may be what is hostile), nothing lost but the fee.
            Err(e) if e.is_limit() => {
                log::warn!(
                    target: LOG_TARGET,
                    "request {id}: the run of model {:?} went past this node's limits ({e:?}); \
                     handing the request back (`release_assignment`, OverLimits)",
                    model.model
                );
                let reason = crate::ReleaseReason::OverLimits;
                return Answer::Done(Self::send(account, Call::release_assignment { id, reason }));
            }
            // A node that cannot serve the model at all says so on chain before its
            // deadline (the request re-drawn at once; a small slash if another executor
            // then answers it) instead of missing it.
            Err(e) if Self::cannot_serve(&e) => {
                log::error!(
                    target: LOG_TARGET,
                    "request {id}: this node cannot serve model {:?} ({e:?}); handing the request \
                     back (`release_assignment`) and no longer serving the model. Import the model into the \
                     node's model store and declare it again with `serve`.",
                    model.model
                );
                let reason = crate::ReleaseReason::CannotServeModel;
                return Answer::Done(Self::send(account, Call::release_assignment { id, reason }));
            }
            // Logged; retrying soon would not change it.
            other => {
                log::warn!(target: LOG_TARGET, "request {id}: no traced result from this node ({other:?})");
                return Answer::Done(Some(()));
            }
        };
        if let Err(e) = Self::check_output(&request.model, &commit.output) {
            log::error!(target: LOG_TARGET, "request {id}: the traced output does not fit the model's output spec ({e:?}); not posting it");
            return Answer::Done(Some(()));
        }
        let Some(output) = Self::bounded_output(id, commit.output) else {
            return Answer::Done(None);
        };
        let Ok(output_path) = commit.output_path.try_into() else {
            return Answer::Done(None);
        };
        Answer::Post((id, output, commit.trace, output_path))
    }

    /// Watcher role for a traced result: each of this node's sampled active keys other
    /// than the executor's opens its own game if its run disagrees.
    pub(crate) fn watch_traced(
        id: RequestId,
        request: &RequestOf<T>,
        model: &TracedModel,
        keys: &[Account<T>],
        fault: Option<Fault>,
        budget: &mut u32,
    ) {
        let Some(result) = Results::<T>::get(id) else {
            return;
        };
        // An honest node re-running its own result would only repeat itself; a node
        // started with a fault runs the honest trace as watcher and may disagree.
        if fault.is_none() && keys.iter().any(|k| k.id == result.executor) {
            return;
        }
        let Some((spec, _)) = T::Models::model(&request.model) else {
            return;
        };
        let rule = spec.comparison;
        let active = ActiveExecutors::<T>::get();
        // One honest run serves every key of this node: it is charged once.
        let mut charged = false;
        for watcher in keys.iter().filter(|k| {
            k.id != result.executor && active.contains(&k.id) && Self::sampled(id, &k.id)
        }) {
            let playing = GameByChallenger::<T>::get(id, &watcher.id)
                .and_then(Games::<T>::get)
                .is_some_and(|g| g.attempt == request.attempt);
            if playing || (*budget == 0 && !charged) {
                continue;
            }
            let key = (b"inferchain::open-game", id, request.attempt, &watcher.id).encode();
            Self::with_lock_for(&key, MOVE_RETRY_BLOCKS, || {
                if !charged {
                    *budget = budget.saturating_sub(1);
                    charged = true;
                }
                let run = Self::challenger_run(model, &result.output);
                let Some(mine) = Self::commit(id, model, &request.input, run) else {
                    return Some(());
                };
                let commit = if !rule.matches(&result.output, &mine.output) {
                    log::warn!(
                        target: LOG_TARGET,
                        "request {id}: the traced result of {:?} does not match this node's run; opening a game",
                        result.executor
                    );
                    mine
                } else if fault == Some(Fault::ThrowGames) {
                    let wrong = Self::commit(
                        id,
                        model,
                        &request.input,
                        TraceRun::Corrupted {
                            step: model.commitments.steps / 2,
                        },
                    )?;
                    if wrong.output == result.output.to_vec() {
                        return Some(());
                    }
                    wrong
                } else {
                    log::debug!(target: LOG_TARGET, "request {id}: traced result checked, it matches");
                    return Some(());
                };
                if fault == Some(Fault::ThrowGames) {
                    log::warn!(target: LOG_TARGET, "request {id}: opening a game to throw it (--executor-fault throw-games)");
                }
                let output = Self::bounded_output(id, commit.output)?;
                let output_path = commit.output_path.try_into().ok()?;
                Self::send(
                    watcher,
                    Call::open_game {
                        id,
                        output,
                        trace: commit.trace,
                        output_path,
                    },
                )
            });
        }
    }

    /// Both sides of every game one of `keys` is a party to and whose next move is still
    /// due when a transaction sent now lands (in `next` at the earliest).
    pub(crate) fn play_games(
        next: BlockNumberFor<T>,
        keys: &[Account<T>],
        fault: Option<Fault>,
        budget: &mut u32,
    ) {
        // Earliest deadline first (a game appears once, at its current move's entry).
        let mut games: Vec<crate::GameId> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut at = next.saturating_add(One::one());
        let end = at.saturating_add(T::MoveTimeout::get());
        while at <= end {
            games.extend(GameQueue::<T>::iter_key_prefix(at).filter(|g| seen.insert(*g)));
            at = at.saturating_add(One::one());
        }
        // The budget counts model runs: a run is traced once and kept, so every move
        // from it after the first is free (else sybil games could starve an honest
        // party of moves).
        let mut charged: BTreeSet<(RequestId, u32, TraceRun)> = BTreeSet::new();
        for game_id in games {
            let Some(game) = Games::<T>::get(game_id) else {
                continue;
            };
            if game.deadline < next {
                continue;
            }
            let Some(request) = Requests::<T>::get(game.request) else {
                continue;
            };
            if request.attempt != game.attempt
                || !matches!(request.status, RequestStatus::Submitted { .. })
            {
                continue;
            }
            let Some(model) = Self::traced_model(&request) else {
                continue;
            };
            for key in keys {
                let (side, run) = if key.id == game.executor {
                    (Side::Executor, Self::executor_run(fault, &model))
                } else if key.id == game.challenger && fault != Some(Fault::ThrowGames) {
                    let posted = Results::<T>::get(game.request)
                        .map(|r| r.output.into_inner())
                        .unwrap_or_default();
                    (Side::Challenger, Self::challenger_run(&model, &posted))
                } else {
                    continue;
                };
                if !Self::move_due(&game, side, next) {
                    continue;
                }
                let key_of_run = (game.request, game.attempt, run.clone());
                if !charged.contains(&key_of_run) {
                    if *budget == 0 {
                        continue;
                    }
                    charged.insert(key_of_run);
                    *budget = budget.saturating_sub(1);
                }
                Self::move_in(game_id, &game, side, key, &model, &request.input, run);
            }
        }
    }

    /// Whether `side` has a move to make in `game` now: a reveal it has not made, or
    /// the step proof (the executor at once, the challenger only if the executor has
    /// not proven by the block before the deadline; no proof convicts the executor).
    fn move_due(game: &crate::game::GameOf<T>, side: Side, next: BlockNumberFor<T>) -> bool {
        match (&game.phase, side) {
            (GamePhase::Bisect { executor, .. }, Side::Executor) => executor.is_none(),
            (GamePhase::Bisect { challenger, .. }, Side::Challenger) => challenger.is_none(),
            (GamePhase::Outputs { executor, .. }, Side::Executor) => executor.is_none(),
            (GamePhase::Outputs { challenger, .. }, Side::Challenger) => challenger.is_none(),
            (GamePhase::Prove | GamePhase::ProveElement, Side::Executor) => true,
            (GamePhase::Prove | GamePhase::ProveElement, Side::Challenger) => {
                next.saturating_add(One::one()) >= game.deadline
            }
        }
    }

    /// One party's move in game `game_id` (due, see [`Self::move_due`]).
    fn move_in(
        game_id: crate::GameId,
        game: &crate::game::GameOf<T>,
        side: Side,
        key: &Account<T>,
        model: &TracedModel,
        input: &[u8],
        run: TraceRun,
    ) {
        let id = game.request;
        let ask = |ask| Self::trace_ask(id, model, input, run.clone(), ask);
        match &game.phase {
            GamePhase::Bisect { .. } => {
                let lock = (
                    b"inferchain::reveal",
                    game_id,
                    game.element.is_some(),
                    game.rounds,
                    side,
                )
                    .encode();
                let question = match game.element {
                    Some(walk) => TraceAsk::ChunkChildren(walk.step, game.at),
                    None => TraceAsk::Children(game.at),
                };
                Self::with_lock_for(&lock, MOVE_RETRY_BLOCKS, || {
                    let TraceAnswer::Children(left, right) = ask(question)? else {
                        return None;
                    };
                    log::info!(target: LOG_TARGET, "game {game_id} (request {id}): revealing round {} as {side:?}", game.rounds + 1);
                    Self::send(
                        key,
                        Call::reveal {
                            game: game_id,
                            left,
                            right,
                        },
                    )
                });
            }
            GamePhase::Prove => {
                let lock = (b"inferchain::prove", game_id, side).encode();
                Self::with_lock_for(&lock, MOVE_RETRY_BLOCKS, || {
                    let step = game.at.start;
                    let output = ask(TraceAsk::Output(step))?;
                    let TraceAnswer::Output {
                        step: ref plan_step,
                        ..
                    } = output
                    else {
                        return None;
                    };
                    let plan_step = PlanStep::decode(&mut &plan_step[..]).ok()?;
                    // A step the referee settles by chunk: open the walk over its output.
                    if T::Referee::path(&plan_step.op, plan_step.output_bytes)
                        == RefereePath::Elements
                    {
                        return Self::send_output_reveal(game_id, key, side, output, true);
                    }
                    let TraceAnswer::Proof(proof) = ask(TraceAsk::Proof(step))? else {
                        return None;
                    };
                    let len = proof.len();
                    let Ok(proof) = proof.try_into() else {
                        log::error!(target: LOG_TARGET, "game {game_id}: the proof of step {step} is {len} bytes, over MaxStepProofBytes");
                        return Some(());
                    };
                    log::info!(target: LOG_TARGET, "game {game_id} (request {id}): proving step {step} as {side:?}");
                    Self::send(
                        key,
                        Call::prove_step {
                            game: game_id,
                            proof,
                        },
                    )
                });
            }
            GamePhase::Outputs { .. } => {
                let Some(walk) = game.element else {
                    return;
                };
                let lock = (b"inferchain::reveal-output", game_id, side).encode();
                Self::with_lock_for(&lock, MOVE_RETRY_BLOCKS, || {
                    Self::send_output_reveal(
                        game_id,
                        key,
                        side,
                        ask(TraceAsk::Output(walk.step))?,
                        false,
                    )
                });
            }
            GamePhase::ProveElement => {
                let Some(walk) = game.element else {
                    return;
                };
                let lock = (b"inferchain::prove-element", game_id, side).encode();
                Self::with_lock_for(&lock, MOVE_RETRY_BLOCKS, || {
                    let chunk = game.at.start;
                    let TraceAnswer::Proof(proof) = ask(TraceAsk::ElementProof {
                        step: walk.step,
                        chunk,
                    })?
                    else {
                        return None;
                    };
                    let len = proof.len();
                    let Ok(proof) = proof.try_into() else {
                        log::error!(target: LOG_TARGET, "game {game_id}: the proof of chunk {chunk} of step {} is {len} bytes, over MaxStepProofBytes", walk.step);
                        return Some(());
                    };
                    log::info!(target: LOG_TARGET, "game {game_id} (request {id}): proving chunk {chunk} of step {} as {side:?}", walk.step);
                    Self::send(
                        key,
                        Call::prove_element {
                            game: game_id,
                            proof,
                        },
                    )
                });
            }
        }
    }

    /// Sends `reveal_output` from an `Output` answer; the opening reveal carries the
    /// plan step and its path.
    fn send_output_reveal(
        game_id: crate::GameId,
        key: &Account<T>,
        side: Side,
        answer: TraceAnswer,
        opening: bool,
    ) -> Option<()> {
        let TraceAnswer::Output {
            step,
            step_path,
            chunk_root,
        } = answer
        else {
            return None;
        };
        let step = if opening {
            Some((step.try_into().ok()?, step_path.try_into().ok()?))
        } else {
            None
        };
        log::info!(target: LOG_TARGET, "game {game_id}: revealing the disputed step's chunk root as {side:?}");
        Self::send(
            key,
            Call::reveal_output {
                game: game_id,
                step,
                chunk_root,
            },
        )
    }
}
