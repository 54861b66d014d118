//! The bisection game: how a disputed result of a model with dispute commitments is
//! settled without a jury.
//!
//! * **Traced results.** For such a model the executor posts its output with the
//!   commitment to its trace (`submit_traced_result`) and the Merkle path showing that the
//!   trace's last leaf is its output.
//! * **Open challenges.** Any active executor other than the result's, inside the window,
//!   opens a game with its own output and trace (`open_game`, holding `ChallengeBond`).
//!   Each challenger plays its own game; a challenger has at most one per result. The
//!   result finalizes at the end of its window only when every game has ended in the
//!   executor's favour (the last such game finalizes it if the window is over).
//! * **The walk** (`reveal`): each round both parties reveal the two children of the node
//!   they stand on in their own trace tree, checked against the hash they stood on; when
//!   both have, the walk goes to the leftmost child where they differ. It ends at the
//!   leftmost leaf (plan step) where the traces differ: every earlier step is agreed.
//! * **The one step** (`prove_step`): either party posts the step's descriptor and
//!   operands with their proofs (plan root, earlier leaves of its own trace, registered
//!   weights, the request's input); the runtime's referee re-executes the step. If the
//!   executor's leaf is what the step computes, the challenger loses; otherwise the
//!   executor does. The plan step fixes what is computed and which operands are read, so a
//!   prover chooses nothing. A step the referee cannot evaluate (outside its language or
//!   caps: a plan governance should not have registered) ends the game with nobody
//!   convicted and the request re-run by another executor.
//! * **The element-level walk** (`reveal_output`, then `reveal`, then `prove_element`): a
//!   step too large to prove whole is refereed one 32-byte chunk of its output at a time.
//!   Instead of a step proof a party reveals its chunk root of the step's output (the
//!   opening reveal carries the plan step, which fixes the output length, and is refused
//!   unless the referee has an element path for it); when both have, they walk down their
//!   chunk trees to the leftmost differing chunk, and either posts the ranges of the
//!   operands the referee names for that chunk, each proven against its tensor's chunk
//!   root and that root against the trace or the weights root; the runtime recomputes
//!   the chunk. Timeouts are as in the walk over steps and as for a step proof.
//! * **Deadlines.** Every move is due within `MoveTimeout` blocks. A party that misses a
//!   reveal loses (both missing: both lose); no valid step proof by the deadline loses
//!   the game for the executor, whose claim it is.
//! * **Money.** An executor that loses is slashed `ResultSlash`: `ChallengeReward` of it
//!   to the challenger, `RequesterCompensation` to the requester, the rest burned; the
//!   challenger's bond is returned and the request goes to another executor. A challenger
//!   that loses forfeits its bond: `ChallengeReward` of it to the executor (its moves'
//!   costs), the rest burned. The other games on an overturned result are void: bonds back.

use crate::{
    pallet::*, Deadline, Game, GameEnd, GameId, GamePhase, RequestStatus, Side, LOG_TARGET,
};
use alloc::vec::Vec;
use codec::{DecodeAll, DecodeWithMemLimit};
use frame_support::{pallet_prelude::*, traits::Get, weights::Weight};
use frame_system::pallet_prelude::BlockNumberFor;
use inferchain_primitives::{
    dispute::{
        descend, is_plan_step, reveals, ElementProof, PlanStep, Position, ProofError, Read,
        RefereePath, StepProof, StepReferee, TraceCommitment,
    },
    merkle::{self, Hash},
    model::ModelRegistry,
    tensor_tree::{chunk_count, tensor_leaf, tensor_leaf_of},
    RequestId,
};
use sp_runtime::traits::{One, Saturating, Zero};

/// The longest Merkle path a commitment is opened with (trees of up to 2^32 leaves).
pub type MaxPathLen = ConstU32<32>;
/// A Merkle path as a call carries it.
pub type PathOf = BoundedVec<Hash, MaxPathLen>;
/// The largest encoded plan step `reveal_output` carries.
pub type MaxPlanStepBytes = ConstU32<4096>;

/// A game as stored.
pub type GameOf<T> = Game<<T as frame_system::Config>::AccountId, BlockNumberFor<T>>;

impl<T: Config> Pallet<T> {
    /// Whether `trace`, of a model with `steps` steps, ends in `output` (by `path`).
    fn ends_in(trace: &TraceCommitment, steps: u32, output: &[u8], path: &[Hash]) -> bool {
        trace.leaves == steps
            && merkle::verify(
                &trace.root.0,
                &tensor_leaf(output),
                steps.saturating_sub(1) as usize,
                steps as usize,
                path,
            )
    }

    /// Checks the trace a result is posted with against its model's commitments.
    pub(crate) fn check_trace(
        model: &inferchain_primitives::ModelId,
        output: &[u8],
        trace: &TraceCommitment,
        path: &PathOf,
    ) -> DispatchResult {
        let commitments = T::Models::commitments(model).ok_or(Error::<T>::NoCommitments)?;
        ensure!(
            Self::ends_in(trace, commitments.steps, output, path),
            Error::<T>::BadTrace
        );
        Ok(())
    }

    pub(crate) fn do_open_game(
        who: T::AccountId,
        id: RequestId,
        output: BoundedVec<u8, T::MaxOutputBytes>,
        trace: TraceCommitment,
        path: PathOf,
    ) -> DispatchResult {
        let request = Requests::<T>::get(id).ok_or(Error::<T>::UnknownRequest)?;
        let now = frame_system::Pallet::<T>::block_number();
        let RequestStatus::Submitted { window_end } = request.status else {
            return Err(Error::<T>::NotChallengeable.into());
        };
        ensure!(now < window_end, Error::<T>::NotChallengeable);
        let result = Results::<T>::get(id).ok_or(Error::<T>::NotChallengeable)?;
        let commitments =
            T::Models::commitments(&request.model).ok_or(Error::<T>::NoCommitments)?;
        let executor_trace = ResultTraces::<T>::get(id).ok_or(Error::<T>::NoCommitments)?;
        ensure!(who != result.executor, Error::<T>::CannotChallengeSelf);
        ensure!(
            ActiveExecutors::<T>::get().contains(&who),
            Error::<T>::NotActiveExecutor
        );
        if let Some(previous) = GameByChallenger::<T>::get(id, &who) {
            // A game of this challenger on an earlier attempt of the request is void.
            match Games::<T>::get(previous) {
                Some(old) if !Self::is_live(&old) => Self::void(previous, old),
                _ => return Err(Error::<T>::AlreadyChallenged.into()),
            }
        }
        ensure!(output != result.output, Error::<T>::SameOutput);
        Self::check_output(&request.model, &output)?;
        ensure!(
            Self::ends_in(&trace, commitments.steps, &output, &path),
            Error::<T>::BadTrace
        );
        let stakes = Self::current_stakes();
        Self::hold(HoldReason::ChallengeBond, &who, stakes.challenge_bond)?;

        let game_id = NextGameId::<T>::get();
        NextGameId::<T>::put(game_id.saturating_add(1));
        GameStakesOf::<T>::insert(game_id, stakes);
        let deadline = now.saturating_add(T::MoveTimeout::get());
        let at = Position::root(commitments.steps);
        let game = Game {
            request: id,
            attempt: request.attempt,
            executor: result.executor.clone(),
            challenger: who.clone(),
            executor_trace,
            challenger_trace: trace,
            challenger_output_hash: inferchain_primitives::H256(inferchain_primitives::blake2_256(
                &output,
            )),
            at,
            executor_hash: executor_trace.root.0,
            challenger_hash: trace.root.0,
            phase: if at.is_leaf() {
                GamePhase::Prove
            } else {
                GamePhase::Bisect {
                    executor: None,
                    challenger: None,
                }
            },
            deadline,
            rounds: 0,
            element: None,
        };
        Self::add_obligation(&who);
        Self::add_obligation(&result.executor);
        OpenGames::<T>::mutate(id, request.attempt, |n| {
            *n = Some(n.unwrap_or_default().saturating_add(1))
        });
        GameByChallenger::<T>::insert(id, &who, game_id);
        Games::<T>::insert(game_id, game);
        Self::schedule_move(deadline, game_id);
        Self::deposit_event(Event::GameOpened {
            game: game_id,
            id,
            executor: result.executor,
            challenger: who,
            at,
        });
        Ok(())
    }

    /// The party `who` is in game `game`, if any.
    pub(crate) fn side_of(game: &GameOf<T>, who: &T::AccountId) -> Option<Side> {
        if *who == game.executor {
            Some(Side::Executor)
        } else if *who == game.challenger {
            Some(Side::Challenger)
        } else {
            None
        }
    }

    /// Whether a move on game `game_id` pays its fee: it does unless the game is open
    /// and its result still stands (a move that only voids a game is no free block
    /// space).
    pub(crate) fn move_pays(game_id: GameId) -> bool {
        !Games::<T>::get(game_id).is_some_and(|g| Self::is_live(&g))
    }

    /// Whether the result a game is about still stands (another game may have overturned it).
    pub(crate) fn is_live(game: &GameOf<T>) -> bool {
        Requests::<T>::get(game.request).is_some_and(|r| {
            r.attempt == game.attempt && matches!(r.status, RequestStatus::Submitted { .. })
        })
    }

    pub(crate) fn do_reveal(
        who: T::AccountId,
        game_id: GameId,
        left: Hash,
        right: Hash,
    ) -> DispatchResult {
        let Some((mut game, side, now)) = Self::moving(game_id, &who)? else {
            return Ok(());
        };
        let GamePhase::Bisect {
            executor,
            challenger,
        } = &mut game.phase
        else {
            return Err(Error::<T>::WrongMove.into());
        };
        let (slot, parent) = match side {
            Side::Executor => (executor, game.executor_hash),
            Side::Challenger => (challenger, game.challenger_hash),
        };
        ensure!(slot.is_none(), Error::<T>::AlreadyMoved);
        ensure!(reveals(&parent, &left, &right), Error::<T>::RevealMismatch);
        *slot = Some((left, right));
        Self::deposit_event(Event::Revealed {
            game: game_id,
            side,
            left,
            right,
        });
        if let GamePhase::Bisect {
            executor: Some(e),
            challenger: Some(c),
        } = game.phase
        {
            let count = match game.element {
                Some(walk) => chunk_count(walk.output_bytes),
                None => game.executor_trace.leaves,
            };
            let Some((at, eh, ch)) = descend(game.at, count, e, c) else {
                // Two checked reveals of differing parents cannot agree on both children.
                frame_support::defensive!("a walk found no differing child");
                return Err(Error::<T>::RevealMismatch.into());
            };
            game.at = at;
            game.executor_hash = eh;
            game.challenger_hash = ch;
            game.rounds = game.rounds.saturating_add(1);
            game.phase = Self::phase_at(at, game.element.is_some());
            game.deadline = now.saturating_add(T::MoveTimeout::get());
            Self::schedule_move(game.deadline, game_id);
            Self::deposit_event(Event::Descended { game: game_id, at });
        }
        Games::<T>::insert(game_id, game);
        Ok(())
    }

    /// The game `game_id` a move by `who` is for, the mover's side and the block, if the
    /// move is in time; `None` if the result it is about no longer stands (the game is
    /// voided, the move has nothing to do).
    #[allow(clippy::type_complexity)]
    fn moving(
        game_id: GameId,
        who: &T::AccountId,
    ) -> Result<Option<(GameOf<T>, Side, BlockNumberFor<T>)>, DispatchError> {
        let game = Games::<T>::get(game_id).ok_or(Error::<T>::UnknownGame)?;
        let side = Self::side_of(&game, who).ok_or(Error::<T>::NotAParty)?;
        let now = frame_system::Pallet::<T>::block_number();
        ensure!(now <= game.deadline, Error::<T>::MoveTooLate);
        if !Self::is_live(&game) {
            Self::void(game_id, game);
            return Ok(None);
        }
        Ok(Some((game, side, now)))
    }

    /// The memory a decoded proof may take: a few times its encoded bound, so that a
    /// proof of many empty operands cannot make the runtime allocate far beyond what
    /// the call paid for.
    fn proof_mem_limit() -> usize {
        (T::MaxStepProofBytes::get() as usize).saturating_mul(4)
    }

    /// What a walk standing at `at` waits for: reveals, or the proof at a leaf.
    fn phase_at(at: Position, element: bool) -> GamePhase {
        match (at.is_leaf(), element) {
            (false, _) => GamePhase::Bisect {
                executor: None,
                challenger: None,
            },
            (true, false) => GamePhase::Prove,
            (true, true) => GamePhase::ProveElement,
        }
    }

    pub(crate) fn do_reveal_output(
        who: T::AccountId,
        game_id: GameId,
        step: Option<(BoundedVec<u8, MaxPlanStepBytes>, PathOf)>,
        chunk_root: Hash,
    ) -> DispatchResult {
        let Some((mut game, side, now)) = Self::moving(game_id, &who)? else {
            return Ok(());
        };
        let mine = match side {
            Side::Executor => game.executor_hash,
            Side::Challenger => game.challenger_hash,
        };
        match game.phase {
            GamePhase::Prove => {
                // The first reveal opens the walk: the plan step fixes the output length.
                let (step, path) = step.ok_or(Error::<T>::BadStepProof)?;
                let step = PlanStep::decode_all(&mut &step[..])
                    .map_err(|_| Error::<T>::MalformedPlanStep)?;
                let request = Requests::<T>::get(game.request).ok_or(Error::<T>::UnknownRequest)?;
                let commitments =
                    T::Models::commitments(&request.model).ok_or(Error::<T>::NoCommitments)?;
                ensure!(
                    is_plan_step(&commitments, &step, game.at.start, &path),
                    Error::<T>::BadStepProof
                );
                // Only a step too large to prove whole, every chunk of which the referee
                // recomputes within its caps: neither party may move a game onto a path
                // that cannot decide it.
                ensure!(
                    T::Referee::path(&step.op, step.output_bytes) == RefereePath::Elements,
                    Error::<T>::NoElementPath
                );
                ensure!(
                    tensor_leaf_of(step.output_bytes, &chunk_root) == mine,
                    Error::<T>::RevealMismatch
                );
                game.element = Some(crate::ElementWalk {
                    step: game.at.start,
                    output_bytes: step.output_bytes,
                });
                game.phase = match side {
                    Side::Executor => GamePhase::Outputs {
                        executor: Some(chunk_root),
                        challenger: None,
                    },
                    Side::Challenger => GamePhase::Outputs {
                        executor: None,
                        challenger: Some(chunk_root),
                    },
                };
                game.deadline = now.saturating_add(T::MoveTimeout::get());
                Self::schedule_move(game.deadline, game_id);
            }
            GamePhase::Outputs {
                ref mut executor,
                ref mut challenger,
            } => {
                let walk = game.element.ok_or(Error::<T>::WrongMove)?;
                let slot = match side {
                    Side::Executor => executor,
                    Side::Challenger => challenger,
                };
                ensure!(slot.is_none(), Error::<T>::AlreadyMoved);
                ensure!(
                    tensor_leaf_of(walk.output_bytes, &chunk_root) == mine,
                    Error::<T>::RevealMismatch
                );
                *slot = Some(chunk_root);
            }
            _ => return Err(Error::<T>::WrongMove.into()),
        }
        Self::deposit_event(Event::OutputRevealed {
            game: game_id,
            side,
            chunk_root,
        });
        if let (
            GamePhase::Outputs {
                executor: Some(e),
                challenger: Some(c),
            },
            Some(walk),
        ) = (game.phase, game.element)
        {
            // Equal lengths and different leaves: the roots differ.
            let chunks = chunk_count(walk.output_bytes);
            game.at = Position::root(chunks);
            game.executor_hash = e;
            game.challenger_hash = c;
            game.phase = Self::phase_at(game.at, true);
            game.deadline = now.saturating_add(T::MoveTimeout::get());
            Self::schedule_move(game.deadline, game_id);
            Self::deposit_event(Event::ElementWalkOpened {
                game: game_id,
                step: walk.step,
                chunks,
            });
        }
        Games::<T>::insert(game_id, game);
        Ok(())
    }

    pub(crate) fn do_prove_element(
        who: T::AccountId,
        game_id: GameId,
        proof: &[u8],
    ) -> DispatchResult {
        let Some((game, side, now)) = Self::moving(game_id, &who)? else {
            return Ok(());
        };
        let (GamePhase::ProveElement, Some(walk)) = (game.phase, game.element) else {
            return Err(Error::<T>::WrongMove.into());
        };
        let request = Requests::<T>::get(game.request).ok_or(Error::<T>::UnknownRequest)?;
        let commitments =
            T::Models::commitments(&request.model).ok_or(Error::<T>::NoCommitments)?;
        // Exactly one proof: no trailing bytes ride along on a (free) successful move.
        let mut bytes = proof;
        let proof = ElementProof::decode_with_mem_limit(&mut bytes, Self::proof_mem_limit())
            .map_err(|_| Error::<T>::MalformedStepProof)?;
        ensure!(bytes.is_empty(), Error::<T>::MalformedStepProof);
        ensure!(
            is_plan_step(&commitments, &proof.step, walk.step, &proof.step_path),
            Error::<T>::BadStepProof
        );
        let chunk = game.at.start;
        let unrefereeable = |game: crate::game::GameOf<T>, error| {
            Self::deposit_event(Event::StepUnrefereeable {
                game: game_id,
                step: walk.step,
                error,
            });
            Self::end_game(game_id, game, GameEnd::Unrefereeable, now);
            Ok(())
        };
        // The step is the plan's: what it reads for this chunk is fixed by it.
        let reads = match T::Referee::element_reads(&proof.step.op, walk.output_bytes, chunk) {
            Ok(reads) => reads,
            Err(error) => return unrefereeable(game, error),
        };
        let trace = match side {
            Side::Executor => game.executor_trace,
            Side::Challenger => game.challenger_trace,
        };
        // A gather's further reads follow from the bytes of the first ones.
        let (step_op, output_bytes) = (proof.step.op.clone(), walk.output_bytes);
        let indirect =
            |direct: &[&[u8]]| T::Referee::indirect_reads(&step_op, output_bytes, chunk, direct);
        let opened = proof.open(
            &commitments,
            &trace,
            walk.step,
            &request.input,
            &reads,
            indirect,
        );
        let (op, slices) = match opened {
            Ok(opened) => opened,
            Err(ProofError::UnsatisfiableRead { .. }) => {
                Self::end_game(game_id, game, GameEnd::Unrefereeable, now);
                return Ok(());
            }
            Err(e) => return Err(Self::proof_error(e).into()),
        };
        let output = match T::Referee::evaluate_chunk(op, walk.output_bytes, chunk, &slices) {
            Ok(output) => output,
            Err(error) => return unrefereeable(game, error),
        };
        let computed = merkle::leaf(&output);
        let executor_right = computed == game.executor_hash;
        Self::deposit_event(Event::ChunkRefereed {
            game: game_id,
            step: walk.step,
            chunk,
            computed,
        });
        Self::end_game(game_id, game, GameEnd::Refereed { executor_right }, now);
        Ok(())
    }

    fn proof_error(e: ProofError) -> Error<T> {
        match e {
            ProofError::BadStep => Error::<T>::BadStepProof,
            ProofError::OperandCount => Error::<T>::OperandCountMismatch,
            ProofError::BadOperand { .. } => Error::<T>::BadOperandProof,
            ProofError::UnsatisfiableRead { .. } => Error::<T>::BadStepProof,
        }
    }

    pub(crate) fn do_prove_step(
        who: T::AccountId,
        game_id: GameId,
        proof: &[u8],
    ) -> DispatchResult {
        let Some((game, side, now)) = Self::moving(game_id, &who)? else {
            return Ok(());
        };
        ensure!(game.phase == GamePhase::Prove, Error::<T>::WrongMove);
        let request = Requests::<T>::get(game.request).ok_or(Error::<T>::UnknownRequest)?;
        let commitments =
            T::Models::commitments(&request.model).ok_or(Error::<T>::NoCommitments)?;
        // Exactly one proof: no trailing bytes ride along on a (free) successful move.
        let mut bytes = proof;
        let proof = StepProof::decode_with_mem_limit(&mut bytes, Self::proof_mem_limit())
            .map_err(|_| Error::<T>::MalformedStepProof)?;
        ensure!(bytes.is_empty(), Error::<T>::MalformedStepProof);
        // Operands from earlier steps are proven against the prover's own trace: every
        // leaf before the disputed one is the same in both.
        let trace = match side {
            Side::Executor => game.executor_trace,
            Side::Challenger => game.challenger_trace,
        };
        // A generation's plan reads the posted output (read only for such a step).
        let output = if proof.step.reads.contains(&Read::Output) {
            Results::<T>::get(game.request)
                .map(|r| r.output.into_inner())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let opened =
            proof.open_with_output(&commitments, &trace, game.at.start, &request.input, &output);
        let (op, operands) = match opened {
            Ok(opened) => opened,
            // The plan itself reads a step that is not earlier, or a weight it does not
            // commit: it cannot be refereed.
            Err(ProofError::UnsatisfiableRead { .. }) => {
                Self::end_game(game_id, game, GameEnd::Unrefereeable, now);
                return Ok(());
            }
            Err(e) => return Err(Self::proof_error(e).into()),
        };
        // A step over the caps with an element path is settled by the element walk, not
        // ended unrefereeable by whoever posts it whole.
        ensure!(
            T::Referee::path(op, proof.step.output_bytes) != RefereePath::Elements,
            Error::<T>::UseElementWalk
        );
        let output = match T::Referee::evaluate(op, &operands) {
            Ok(output) => output,
            Err(error) => {
                // Everything the referee was given is fixed by the plan: the step, the
                // weights, the input and the length of every earlier output it reads
                // (agreed junk of another length does not open). So the error is the
                // plan's, whoever proves the step: nobody is convicted and the result
                // does not stand.
                Self::deposit_event(Event::StepUnrefereeable {
                    game: game_id,
                    step: game.at.start,
                    error,
                });
                Self::end_game(game_id, game, GameEnd::Unrefereeable, now);
                return Ok(());
            }
        };
        let computed = tensor_leaf(&output);
        let executor_right = computed == game.executor_hash;
        Self::deposit_event(Event::StepRefereed {
            game: game_id,
            step: game.at.start,
            computed,
        });
        Self::end_game(game_id, game, GameEnd::Refereed { executor_right }, now);
        Ok(())
    }

    /// A move due by `deadline` (inclusive) is checked at the start of the next block.
    fn schedule_move(deadline: BlockNumberFor<T>, game_id: GameId) {
        GameQueue::<T>::insert(deadline.saturating_add(One::one()), game_id, ());
    }

    /// The game's queue entry for block `at` came: its move was due by `at - 1`.
    pub(crate) fn on_game_deadline(game_id: GameId, at: BlockNumberFor<T>, now: BlockNumberFor<T>) {
        let Some(game) = Games::<T>::get(game_id) else {
            return;
        };
        if game.deadline.saturating_add(One::one()) != at {
            return; // stale: a move came in time
        }
        if !Self::is_live(&game) {
            Self::void(game_id, game);
            return;
        }
        let (executor, challenger) = match game.phase {
            GamePhase::Prove | GamePhase::ProveElement => (None, None),
            GamePhase::Bisect {
                executor,
                challenger,
            } => (executor.map(|_| ()), challenger.map(|_| ())),
            GamePhase::Outputs {
                executor,
                challenger,
            } => (executor.map(|_| ()), challenger.map(|_| ())),
        };
        let end = match game.phase {
            GamePhase::Prove | GamePhase::ProveElement => GameEnd::NoProof,
            GamePhase::Bisect { .. } | GamePhase::Outputs { .. } => {
                match (executor.is_some(), challenger.is_some()) {
                    (false, false) => GameEnd::BothTimedOut,
                    (false, true) => GameEnd::Timeout {
                        side: Side::Executor,
                    },
                    (true, false) => GameEnd::Timeout {
                        side: Side::Challenger,
                    },
                    (true, true) => {
                        frame_support::defensive!("a game with both reveals did not move on");
                        return;
                    }
                }
            }
        };
        Self::end_game(game_id, game, end, now);
    }

    /// Removes a finished game's records.
    /// The stakes a game opened now puts up: the parameters in force.
    pub(crate) fn current_stakes() -> crate::GameStakes<BalanceOf<T>> {
        crate::GameStakes {
            challenge_bond: T::ChallengeBond::get(),
            result_slash: T::ResultSlash::get(),
            challenge_reward: T::ChallengeReward::get(),
            requester_compensation: T::RequesterCompensation::get(),
        }
    }

    /// What game `game_id` put at stake (the parameters in force for a game opened
    /// before stakes were recorded).
    pub(crate) fn stakes_of(game_id: GameId) -> crate::GameStakes<BalanceOf<T>> {
        GameStakesOf::<T>::get(game_id).unwrap_or_else(Self::current_stakes)
    }

    /// Removes a game and its indexes; returns what it put at stake.
    fn close(game_id: GameId, game: &GameOf<T>) -> crate::GameStakes<BalanceOf<T>> {
        let stakes = Self::stakes_of(game_id);
        GameStakesOf::<T>::remove(game_id);
        Games::<T>::remove(game_id);
        GameByChallenger::<T>::remove(game.request, &game.challenger);
        OpenGames::<T>::mutate_exists(game.request, game.attempt, |n| {
            let left = n.unwrap_or_default().saturating_sub(1);
            *n = (left > 0).then_some(left);
        });
        Self::remove_obligation(&game.executor);
        Self::remove_obligation(&game.challenger);
        stakes
    }

    /// A game whose result was overturned by another game: nobody loses anything.
    fn void(game_id: GameId, game: GameOf<T>) {
        let stakes = Self::close(game_id, &game);
        Self::release(
            HoldReason::ChallengeBond,
            &game.challenger,
            stakes.challenge_bond,
        );
        Self::deposit_event(Event::GameVoided { game: game_id });
    }

    /// Settles a game that ended with `end`.
    fn end_game(game_id: GameId, game: GameOf<T>, end: GameEnd, now: BlockNumberFor<T>) {
        let stakes = Self::close(game_id, &game);
        let (executor_lost, challenger_lost) = match end {
            GameEnd::Refereed { executor_right } => (!executor_right, executor_right),
            GameEnd::Timeout { side } => (side == Side::Executor, side == Side::Challenger),
            GameEnd::BothTimedOut => (true, true),
            GameEnd::NoProof => (true, false),
            GameEnd::Unrefereeable => (false, false),
        };
        Self::deposit_event(Event::GameEnded {
            game: game_id,
            id: game.request,
            end,
        });

        // The challenger's bond: forfeited (a share to the executor, if it won) or back.
        let bond = stakes
            .challenge_bond
            .min(Self::held(HoldReason::ChallengeBond, &game.challenger));
        if challenger_lost {
            Self::deposit_event(Event::Slashed {
                who: game.challenger.clone(),
                amount: bond,
                reason: SlashReason::WrongChallenge,
            });
            let mut rest = bond;
            if !executor_lost {
                let to_executor = stakes.challenge_reward * bond;
                Self::pay_from_hold(
                    HoldReason::ChallengeBond,
                    &game.challenger,
                    &game.executor,
                    to_executor,
                );
                rest = rest.saturating_sub(to_executor);
            }
            Self::burn_from_hold(HoldReason::ChallengeBond, &game.challenger, rest);
        } else {
            Self::release(HoldReason::ChallengeBond, &game.challenger, bond);
        }

        let Some(request) = Requests::<T>::get(game.request) else {
            log::error!(target: LOG_TARGET, "game {game_id}: request {} is missing", game.request);
            return;
        };
        if end == GameEnd::Unrefereeable {
            // Neither side is convicted and the result is not confirmed: someone else
            // runs the request (the executor keeps its bond but is not paid).
            let exclude = [game.executor.clone(), game.challenger.clone()];
            Self::reassign_or_expire(game.request, &exclude, now);
        } else if executor_lost {
            let taken = Self::debit_bond(
                &game.executor,
                stakes.result_slash,
                SlashReason::WrongResult,
                now,
            );
            let mut rest = taken;
            if !challenger_lost {
                let to_challenger = stakes.challenge_reward * taken;
                Self::pay_from_hold(
                    HoldReason::ExecutorBond,
                    &game.executor,
                    &game.challenger,
                    to_challenger,
                );
                rest = rest.saturating_sub(to_challenger);
            }
            let to_requester = stakes.requester_compensation * taken;
            Self::pay_from_hold(
                HoldReason::ExecutorBond,
                &game.executor,
                &request.requester,
                to_requester,
            );
            rest = rest.saturating_sub(to_requester);
            Self::burn_from_hold(HoldReason::ExecutorBond, &game.executor, rest);
            // The result is overturned: the request goes to someone else, and every
            // other game on this result is void when it next moves or times out.
            let exclude = [game.executor.clone(), game.challenger.clone()];
            Self::reassign_or_expire(game.request, &exclude, now);
        } else {
            Results::<T>::mutate(game.request, |r| {
                if let Some(r) = r {
                    r.challenged = true;
                }
            });
            let window_over = matches!(
                request.status,
                RequestStatus::Submitted { window_end } if window_end <= now
            );
            if window_over && Self::open_games(game.request, request.attempt).is_zero() {
                Self::finalize_paid(game.request, now);
            }
        }
    }

    /// How many games are open on attempt `attempt` of request `id`.
    pub(crate) fn open_games(id: RequestId, attempt: u32) -> u32 {
        OpenGames::<T>::get(id, attempt).unwrap_or_default()
    }

    /// Handles due game deadlines, at most `budget`, after the request queue's work of
    /// weight `requests` (at most `budget` entries' worth): both queues together (and the
    /// observer's hooks) stay within the weight of `1.25 × budget` entries, so games have
    /// at least a quarter of a budget of their own however full the request queue is.
    pub(crate) fn process_game_deadlines(
        now: BlockNumberFor<T>,
        budget: u32,
        requests: Weight,
    ) -> u32 {
        let mut handled = 0u32;
        let mut cursor = GameQueueCursor::<T>::get();
        let mut empty_steps = 0u32;
        while cursor <= now && handled < budget && empty_steps < budget {
            let due: Vec<GameId> = GameQueue::<T>::iter_key_prefix(cursor)
                .take((budget - handled) as usize)
                .collect();
            if due.is_empty() {
                empty_steps = empty_steps.saturating_add(1);
            }
            for game_id in &due {
                let used = requests
                    .saturating_add(Self::single_entry_weight().saturating_mul(u64::from(handled)));
                if !Self::queue_room(
                    used,
                    Self::entry_reserve(Deadline::Execution),
                    budget.saturating_add(budget / 4),
                ) {
                    break;
                }
                GameQueue::<T>::remove(cursor, game_id);
                handled = handled.saturating_add(1);
                Self::on_game_deadline(*game_id, cursor, now);
            }
            if GameQueue::<T>::iter_key_prefix(cursor).next().is_some() {
                break; // budget spent with entries left at this block
            }
            cursor = cursor.saturating_add(One::one());
        }
        GameQueueCursor::<T>::put(cursor);
        handled
    }
}
