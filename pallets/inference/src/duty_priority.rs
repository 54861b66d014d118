//! Protocol duties first: a transaction extension that gives a due protocol move the
//! priority `Config::DutyPriority` in the transaction pool, and refuses a protocol call
//! that is nobody's duty before it takes block space.
//!
//! A due move is: the assigned executor's result (`submit_traced_result`, or
//! `submit_results` for a batch, due if every result in it is) or hand-back
//! (`release_assignment`) before its deadline, an active executor's first game on a result inside its window
//! (`open_game`), and a party's move in an open game by its deadline (`reveal`,
//! `prove_step`, `reveal_output`, `prove_element`). Each of these has a deadline with a
//! slash or a lost bond behind it, so none may be pushed out by a spammer who tips: a
//! tip would have to exceed `DutyPriority` divided by ChargeTransactionPayment's
//! per-transaction scaling (thousands of INFER per transaction with the runtime's
//! figures) to be ordered first. The calls are also `Operational`, so the block space
//! reserved beyond the normal class is theirs when normal transactions fill a block.
//!
//! Nobody else gets the priority: the checks are the calls' own (assigned executor,
//! deadline, party, active set), read from state at validation, and a move that has
//! landed is no longer due, so the same duty cannot be replayed for priority. A protocol
//! call from an account that is no registered executor is invalid in the pool (it
//! could never be anyone's duty); one from an executor that is not due now is valid
//! without priority (it fails at dispatch and pays its fee). That is deliberate: the
//! pool validates against the latest state it has processed, which may be a block
//! behind the one an off-chain worker just answered (a request one block old, a
//! reassignment), and refusing there would drop an honest result. Each new view of the
//! pool validates again and gives the move its priority. The extension reads at most
//! four storage items per protocol call (and one per result of a batch) and none for
//! any other.
//!
//! It also keeps requests beyond a block's request slots (`MaxRequestSlotsPerBlock`) in
//! the pool for a later block: when a block is built, such a request is refused with
//! `ExhaustsResources` (one storage read), as a transaction that would overfill the
//! block's weight is, instead of landing and failing with `BlockRequestLimit`.

use crate::{pallet::*, GamePhase, RequestStatus, Side};
use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode};
use core::marker::PhantomData;
use frame_support::{
    dispatch::DispatchInfo,
    pallet_prelude::TransactionSource,
    traits::{Get, IsSubType},
    DefaultNoBound,
};
use frame_system::pallet_prelude::BlockNumberFor;
use inferchain_primitives::{dispute::reveals, tensor_tree::tensor_leaf_of};
use scale_info::TypeInfo;
use sp_runtime::traits::UniqueSaturatedInto;
use sp_runtime::{
    traits::{AsSystemOriginSigner, DispatchInfoOf, Dispatchable, TransactionExtension},
    transaction_validity::{InvalidTransaction, ValidTransaction},
    Weight,
};

/// `InvalidTransaction::Custom` code of a protocol call from an account that is no
/// registered executor.
pub const NOT_AN_EXECUTOR: u8 = 1;

/// See the module docs.
#[derive(Encode, Decode, DecodeWithMemTracking, DefaultNoBound, Clone, Eq, PartialEq, TypeInfo)]
#[scale_info(skip_type_params(T))]
pub struct PrioritizeDuties<T>(PhantomData<T>);

impl<T> PrioritizeDuties<T> {
    /// The extension (it carries no data).
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T> core::fmt::Debug for PrioritizeDuties<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "PrioritizeDuties")
    }
}

/// The runtime's call type.
type CallOf<T> = <T as frame_system::Config>::RuntimeCall;

/// What a call is to the duty check.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DutyCheck {
    /// Not a protocol move: no priority, no refusal.
    NotAMove,
    /// The sender's due move: `tag` names the duty (one transaction per duty in the
    /// pool), due by block `deadline` (inclusive).
    Due { tag: Vec<u8>, deadline: u64 },
    /// A protocol move that is not the sender's duty now (as far as this state knows).
    NotDue,
    /// A protocol move from an account that is no registered executor.
    NotAnExecutor,
}

impl<T: Config> Pallet<T> {
    /// Whether `call` by `who` is a protocol move due now (see `duty_priority`).
    pub fn duty_check(who: &T::AccountId, call: &Call<T>) -> DutyCheck {
        let is_move = matches!(
            call,
            Call::submit_traced_result { .. }
                | Call::submit_results { .. }
                | Call::release_assignment { .. }
                | Call::open_game { .. }
                | Call::reveal { .. }
                | Call::prove_step { .. }
                | Call::reveal_output { .. }
                | Call::prove_element { .. }
        );
        if !is_move {
            return DutyCheck::NotAMove;
        }
        if !Executors::<T>::contains_key(who) {
            return DutyCheck::NotAnExecutor;
        }
        let now = frame_system::Pallet::<T>::block_number();
        let block = |b: BlockNumberFor<T>| -> u64 { b.unique_saturated_into() };
        let due = match call {
            // Answering an assignment (a result or a hand-back): one duty per attempt.
            Call::submit_traced_result { id, .. } | Call::release_assignment { id, .. } => {
                Requests::<T>::get(id).and_then(|r| match r.status {
                    RequestStatus::Pending { deadline } if r.executor == *who && now < deadline => {
                        Some(((b"answer", id, r.attempt).encode(), block(deadline) - 1))
                    }
                    _ => None,
                })
            }
            // Answering a batch: due if every result in it is (one read each,
            // weighed); one duty per first request's attempt.
            Call::submit_results { results } => {
                let answer = |id: &inferchain_primitives::RequestId| {
                    Requests::<T>::get(id).and_then(|r| match r.status {
                        RequestStatus::Pending { deadline }
                            if r.executor == *who && now < deadline =>
                        {
                            Some((r.attempt, block(deadline) - 1))
                        }
                        _ => None,
                    })
                };
                let all_due = || {
                    let first = results.first()?;
                    let (attempt, mut deadline) = answer(&first.0)?;
                    for result in results.iter().skip(1) {
                        deadline = deadline.min(answer(&result.0)?.1);
                    }
                    Some(((b"answer", first.0, attempt).encode(), deadline))
                };
                all_due()
            }
            // A first game on a result, inside its window, by an active executor.
            Call::open_game { id, .. } => Requests::<T>::get(id).and_then(|r| {
                let RequestStatus::Submitted { window_end } = r.status else {
                    return None;
                };
                let first = GameByChallenger::<T>::get(id, who)
                    .and_then(Games::<T>::get)
                    .is_none_or(|old| !Self::is_live(&old));
                let active = Executors::<T>::get(who)
                    .is_some_and(|e| matches!(e.status, crate::ExecutorStatus::Active));
                (r.executor != *who && now < window_end && first && active).then(|| {
                    (
                        (b"challenge", id, r.attempt, who).encode(),
                        block(window_end) - 1,
                    )
                })
            }),
            // A party's move that the game waits for, its own slot still open.
            Call::reveal { game, .. }
            | Call::prove_step { game, .. }
            | Call::reveal_output { game, .. }
            | Call::prove_element { game, .. } => Games::<T>::get(game).and_then(|g| {
                // A game on an overturned result waits for nothing.
                if !Self::is_live(&g) {
                    return None;
                }
                let side = Self::side_of(&g, who)?;
                let open = |e: bool, c: bool| match side {
                    Side::Executor => !e,
                    Side::Challenger => !c,
                };
                let mine = match side {
                    Side::Executor => g.executor_hash,
                    Side::Challenger => g.challenger_hash,
                };
                // A reveal is due only if it is the move this state waits for: its
                // children (or chunk root) hash to the node the party stands on. The pool
                // may validate against the block before the party's last move landed; a
                // later move is then merely not due there (it gets its priority in the
                // next view) instead of taking the pool slot of the move before it.
                let waits = match (call, &g.phase) {
                    (
                        Call::reveal { left, right, .. },
                        GamePhase::Bisect {
                            executor,
                            challenger,
                        },
                    ) => {
                        open(executor.is_some(), challenger.is_some())
                            && reveals(&mine, left, right)
                    }
                    (Call::prove_step { .. }, GamePhase::Prove)
                    | (Call::reveal_output { .. }, GamePhase::Prove)
                    | (Call::prove_element { .. }, GamePhase::ProveElement) => true,
                    (
                        Call::reveal_output { chunk_root, .. },
                        GamePhase::Outputs {
                            executor,
                            challenger,
                        },
                    ) => {
                        open(executor.is_some(), challenger.is_some())
                            && g.element.is_some_and(|walk| {
                                tensor_leaf_of(walk.output_bytes, chunk_root) == mine
                            })
                    }
                    _ => false,
                };
                (now <= g.deadline && waits).then(|| {
                    let phase: u8 = match g.phase {
                        GamePhase::Bisect { .. } => 0,
                        GamePhase::Prove => 1,
                        GamePhase::Outputs { .. } => 2,
                        GamePhase::ProveElement => 3,
                    };
                    let tag = (b"move", game, g.rounds, g.element.is_some(), phase, side).encode();
                    (tag, block(g.deadline))
                })
            }),
            _ => None,
        };
        match due {
            Some((tag, deadline)) => DutyCheck::Due { tag, deadline },
            None => DutyCheck::NotDue,
        }
    }
}

impl<T: Config + Send + Sync> TransactionExtension<CallOf<T>> for PrioritizeDuties<T>
where
    CallOf<T>: Dispatchable<Info = DispatchInfo> + IsSubType<Call<T>>,
    <CallOf<T> as Dispatchable>::RuntimeOrigin: AsSystemOriginSigner<T::AccountId> + Clone,
{
    const IDENTIFIER: &'static str = "PrioritizeDuties";
    type Implicit = ();
    type Val = ();
    type Pre = ();

    fn weight(&self, call: &CallOf<T>) -> Weight {
        match call.is_sub_type() {
            // A batch of results reads each of its requests.
            Some(Call::submit_results { results }) => {
                T::DbWeight::get().reads(4u64.saturating_add(results.len() as u64))
            }
            Some(_) => T::DbWeight::get().reads(4),
            None => Weight::zero(),
        }
    }

    fn validate(
        &self,
        origin: <CallOf<T> as Dispatchable>::RuntimeOrigin,
        call: &CallOf<T>,
        _info: &DispatchInfoOf<CallOf<T>>,
        _len: usize,
        _self_implicit: Self::Implicit,
        _inherited_implication: &impl Encode,
        _source: TransactionSource,
    ) -> sp_runtime::traits::ValidateResult<Self::Val, CallOf<T>> {
        let (Some(inner), Some(who)) = (call.is_sub_type(), origin.as_system_origin_signer())
        else {
            return Ok((ValidTransaction::default(), (), origin));
        };
        match Pallet::<T>::duty_check(who, inner) {
            DutyCheck::NotAMove | DutyCheck::NotDue => {
                Ok((ValidTransaction::default(), (), origin))
            }
            DutyCheck::Due { tag, deadline } => {
                let now: u64 = frame_system::Pallet::<T>::block_number().unique_saturated_into();
                Ok((
                    ValidTransaction {
                        priority: T::DutyPriority::get(),
                        // One transaction per duty and sender: a party cannot queue a
                        // stream of moves for one duty at this priority.
                        provides: alloc::vec![(b"inferchain/duty", tag).encode()],
                        // Useless after its deadline.
                        longevity: deadline.saturating_sub(now).saturating_add(1),
                        ..Default::default()
                    },
                    (),
                    origin,
                ))
            }
            DutyCheck::NotAnExecutor => Err(InvalidTransaction::Custom(NOT_AN_EXECUTOR).into()),
        }
    }

    /// A request that would take the block past its request slots
    /// (`MaxRequestSlotsPerBlock`) waits in the pool for a later block
    /// (`ExhaustsResources`, as a block full by weight does) instead of landing and
    /// failing with `BlockRequestLimit`.
    fn prepare(
        self,
        _val: Self::Val,
        _origin: &<CallOf<T> as Dispatchable>::RuntimeOrigin,
        call: &CallOf<T>,
        _info: &DispatchInfoOf<CallOf<T>>,
        _len: usize,
    ) -> Result<Self::Pre, sp_runtime::transaction_validity::TransactionValidityError> {
        let slots = call.is_sub_type().and_then(Pallet::<T>::request_slots);
        if let Some(slots) = slots {
            let taken = RequestsInBlock::<T>::get().saturating_add(slots);
            if taken > T::MaxRequestSlotsPerBlock::get() {
                return Err(InvalidTransaction::ExhaustsResources.into());
            }
        }
        Ok(())
    }
}
