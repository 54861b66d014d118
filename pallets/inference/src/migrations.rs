//! Storage migrations of the inference pallet.
//!
//! **v1 → v2** (runtime 102, executors declare what they serve): each executor's pending
//! requests are counted into its new service record (`RecountPending`).
//!
//! **v0 → v1** (runtime 101, the jury removed): every open jury dispute is settled with
//! nobody convicted — the jurors' and the challenger's duties end, the challenger's bond
//! comes back, the executor goes unpaid and the requester is refunded in full (the
//! request expires) — and its reveal deadline leaves the queue, as do stale reveal
//! deadlines of disputes settled earlier. Requests still pending for a model without
//! dispute commitments need nothing here: their execution deadline expires them with a
//! refund and no slash (`on_execution_deadline`); an untraced result still in its window
//! is not paid but expires at the window's end (`on_window_end`), since nobody can
//! dispute it any more.

use crate::{pallet::*, HoldReason, Request, RequestStatus, LOG_TARGET};
use alloc::vec::Vec;
use codec::{Decode, Encode};
use frame_support::{
    migrations::VersionedMigration, pallet_prelude::*, storage_alias,
    traits::UncheckedOnRuntimeUpgrade, weights::Weight,
};
use frame_system::pallet_prelude::BlockNumberFor;
use inferchain_primitives::{ModelId, RequestId, H256};
use sp_runtime::traits::Saturating;

/// The records of storage version 0 that version 1 no longer has.
pub mod v0 {
    use super::*;

    /// A juror's vote (v0).
    #[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
    pub struct Vote {
        pub executor_ok: bool,
        pub challenger_ok: bool,
    }

    /// A juror's seat (v0).
    #[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
    pub enum Ballot {
        Waiting,
        Committed(H256),
        Revealed(Vote),
    }

    /// A challenge under judgement (v0).
    #[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
    pub struct Dispute<AccountId, BlockNumber> {
        pub challenger: AccountId,
        pub challenger_output: Vec<u8>,
        pub jury: Vec<(AccountId, Ballot)>,
        pub commit_end: BlockNumber,
        pub reveal_end: BlockNumber,
    }

    /// A request's status (v0): `Disputed` was index 2.
    #[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
    pub enum RequestStatus<BlockNumber> {
        Pending { deadline: BlockNumber },
        Submitted { window_end: BlockNumber },
        Disputed,
        Finalized { at: BlockNumber },
        Expired { at: BlockNumber },
    }

    /// A request (v0): as v1's, with v0's status.
    #[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
    pub struct Request<AccountId, Balance, BlockNumber> {
        pub model: ModelId,
        pub requester: AccountId,
        pub executor: AccountId,
        pub input: Vec<u8>,
        pub input_hash: H256,
        pub fee: Balance,
        pub status: RequestStatus<BlockNumber>,
        pub attempt: u32,
        pub submitted_at: BlockNumber,
    }

    /// What the deadline queue held (v0): `Reveal` was index 2.
    #[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
    pub enum Deadline {
        Execution,
        ChallengeWindow,
        Reveal,
        Prune,
    }

    pub type DisputeOf<T> = Dispute<<T as frame_system::Config>::AccountId, BlockNumberFor<T>>;
    pub type RequestOf<T> =
        Request<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

    #[storage_alias]
    pub type Disputes<T: Config> = StorageMap<Pallet<T>, Twox64Concat, RequestId, DisputeOf<T>>;

    #[storage_alias]
    pub type Requests<T: Config> = StorageMap<Pallet<T>, Twox64Concat, RequestId, RequestOf<T>>;

    #[storage_alias]
    pub type DeadlineQueue<T: Config> = StorageDoubleMap<
        Pallet<T>,
        Twox64Concat,
        BlockNumberFor<T>,
        Twox64Concat,
        RequestId,
        Deadline,
    >;
}

/// Blocks past the current one a v0 reveal deadline could lie (`CommitPeriod +
/// RevealPeriod` of every runtime that had a jury, with margin).
const REVEAL_HORIZON: u32 = 16;

/// Settles the jury's open disputes (see the module docs); unversioned, wrapped in
/// [`RemoveJury`].
pub struct RemoveJuryUnchecked<T>(core::marker::PhantomData<T>);

impl<T: Config> UncheckedOnRuntimeUpgrade for RemoveJuryUnchecked<T> {
    fn on_runtime_upgrade() -> Weight {
        let now = frame_system::Pallet::<T>::block_number();
        let disputes: Vec<(RequestId, v0::DisputeOf<T>)> = v0::Disputes::<T>::drain().collect();
        let settled = disputes.len() as u64;
        for (id, dispute) in disputes {
            for (juror, _) in &dispute.jury {
                Pallet::<T>::remove_obligation(juror);
            }
            Pallet::<T>::remove_obligation(&dispute.challenger);
            Pallet::<T>::release(
                HoldReason::ChallengeBond,
                &dispute.challenger,
                T::ChallengeBond::get(),
            );
            v0::DeadlineQueue::<T>::remove(dispute.reveal_end, id);
            let Some(old) = v0::Requests::<T>::get(id) else {
                log::error!(target: LOG_TARGET, "migration v1: dispute {id} has no request");
                continue;
            };
            Pallet::<T>::remove_obligation(&old.executor);
            Results::<T>::remove(id);
            ResultTraces::<T>::remove(id);
            let Ok(input) = old.input.try_into() else {
                // Cannot happen while `MaxInputBytes` does not shrink; refund and drop it.
                log::error!(target: LOG_TARGET, "migration v1: request {id}'s input is over the limit");
                Pallet::<T>::release(HoldReason::RequestFee, &old.requester, old.fee);
                v0::Requests::<T>::remove(id);
                continue;
            };
            let request = Request {
                model: old.model,
                requester: old.requester,
                executor: old.executor,
                input,
                input_hash: old.input_hash,
                fee: old.fee,
                status: RequestStatus::Submitted { window_end: now },
                attempt: old.attempt,
                submitted_at: old.submitted_at,
            };
            // Refunds the fee, marks it expired and schedules its pruning.
            Pallet::<T>::expire(id, request, now);
        }
        // Reveal deadlines of disputes settled before the upgrade (early, when every juror
        // had revealed) are stale but would not decode any more: drop them. They lie
        // between the queue's cursor and `CommitPeriod + RevealPeriod` (6 blocks in every
        // runtime that had a jury) ahead.
        let mut stale = 0u64;
        let mut at = QueueCursor::<T>::get();
        let end = now.saturating_add(REVEAL_HORIZON.into());
        while at <= end {
            let reveals: Vec<RequestId> = v0::DeadlineQueue::<T>::iter_prefix(at)
                .filter(|(_, what)| *what == v0::Deadline::Reveal)
                .map(|(id, _)| id)
                .collect();
            for id in reveals {
                v0::DeadlineQueue::<T>::remove(at, id);
                stale += 1;
            }
            at = at.saturating_add(1u32.into());
        }
        log::info!(target: LOG_TARGET, "migration v1: {settled} jury disputes settled, {stale} stale reveal deadlines dropped");
        T::DbWeight::get().reads_writes(
            1 + 4 * settled + u64::from(REVEAL_HORIZON) + stale,
            15 * settled + stale,
        )
    }
}

/// v0 → v1, run once (the storage version says whether it has been).
pub type RemoveJury<T> = VersionedMigration<
    0,
    1,
    RemoveJuryUnchecked<T>,
    Pallet<T>,
    <T as frame_system::Config>::DbWeight,
>;

/// Counts each executor's pending requests into its (new) service record, so that an
/// executor that declares `serve` after the upgrade is not assigned beyond its capacity
/// by requests taken before it; unversioned, wrapped in [`RecountPending`]. Executors
/// serve nothing until they declare (`serve`): until then requests find no executor
/// (`NoExecutors`) and hold nothing.
pub struct RecountPendingUnchecked<T>(core::marker::PhantomData<T>);

impl<T: Config> UncheckedOnRuntimeUpgrade for RecountPendingUnchecked<T> {
    fn on_runtime_upgrade() -> Weight {
        let mut pending: alloc::collections::BTreeMap<T::AccountId, u32> = Default::default();
        let mut requests = 0u64;
        for (_, request) in Requests::<T>::iter() {
            requests += 1;
            if matches!(request.status, RequestStatus::Pending { .. }) {
                *pending.entry(request.executor).or_default() += 1;
            }
        }
        let executors = pending.len() as u64;
        for (who, n) in pending {
            Service::<T>::mutate(&who, |s| s.pending = n);
        }
        log::info!(target: LOG_TARGET, "migration v2: pending requests counted for {executors} executors");
        T::DbWeight::get().reads_writes(requests + executors, executors)
    }
}

/// v1 → v2, run once: [`RecountPendingUnchecked`].
pub type RecountPending<T> = VersionedMigration<
    1,
    2,
    RecountPendingUnchecked<T>,
    Pallet<T>,
    <T as frame_system::Config>::DbWeight,
>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mock::*;
    use frame_support::traits::{fungible::InspectHold, OnRuntimeUpgrade, StorageVersion};

    #[test]
    fn an_open_jury_dispute_is_settled_with_everyone_refunded() {
        build_and_execute(|| {
            for e in 10..=15 {
                frame_support::assert_ok!(bond_and_serve(e, 1_000));
            }
            let id = crate::NextRequestId::<Test>::get();
            frame_support::assert_ok!(Inference::request_inference(
                RuntimeOrigin::signed(1),
                TENSOR_MODEL,
                tensor(&[1.0]).try_into().unwrap(),
                FEE
            ));
            let executor = crate::Requests::<Test>::get(id).unwrap().executor;
            frame_support::assert_ok!(submit(executor, id, tensor(&[2.0])));
            // What a v0 chain held for a challenge: the request `Disputed`, the dispute,
            // the challenger's bond and everyone's duties, the reveal deadline.
            let others: Vec<u64> = (10..=15).filter(|e| *e != executor).collect();
            let (challenger, jurors) = (others[0], [others[1], others[2]]);
            let request = crate::Requests::<Test>::get(id).unwrap();
            v0::Requests::<Test>::insert(
                id,
                v0::Request {
                    model: request.model,
                    requester: request.requester,
                    executor,
                    input: request.input.into_inner(),
                    input_hash: request.input_hash,
                    fee: request.fee,
                    status: v0::RequestStatus::Disputed,
                    attempt: 1,
                    submitted_at: request.submitted_at,
                },
            );
            v0::Disputes::<Test>::insert(
                id,
                v0::Dispute {
                    challenger,
                    challenger_output: tensor(&[3.0]),
                    jury: jurors.iter().map(|j| (*j, v0::Ballot::Waiting)).collect(),
                    commit_end: 4,
                    reveal_end: 6,
                },
            );
            frame_support::assert_ok!(Inference::hold(
                HoldReason::ChallengeBond,
                &challenger,
                ChallengeBond::get()
            ));
            Inference::add_obligation(&challenger);
            jurors.iter().for_each(Inference::add_obligation);
            v0::DeadlineQueue::<Test>::insert(6, id, v0::Deadline::Reveal);
            // And a stale reveal deadline of a dispute settled before the upgrade.
            v0::DeadlineQueue::<Test>::insert(5, 99, v0::Deadline::Reveal);
            StorageVersion::new(0).put::<Inference>();

            RemoveJury::<Test>::on_runtime_upgrade();

            assert_eq!(StorageVersion::get::<Inference>(), StorageVersion::new(1));
            assert!(v0::Disputes::<Test>::iter().next().is_none());
            assert!(!v0::DeadlineQueue::<Test>::contains_key(6, id));
            assert!(!v0::DeadlineQueue::<Test>::contains_key(5, 99));
            assert!(matches!(
                crate::Requests::<Test>::get(id).unwrap().status,
                RequestStatus::Expired { .. }
            ));
            assert!(crate::Results::<Test>::get(id).is_none());
            // Nobody lost anything, and nobody owes anything.
            assert_eq!(
                Balances::balance_on_hold(&HoldReason::RequestFee.into(), &1),
                0
            );
            assert_eq!(
                Balances::balance_on_hold(&HoldReason::ChallengeBond.into(), &challenger),
                0
            );
            for who in [executor, challenger, jurors[0], jurors[1]] {
                assert_eq!(crate::Executors::<Test>::get(who).unwrap().obligations, 0);
            }
            // Run again: the version says it is done, nothing changes.
            RemoveJury::<Test>::on_runtime_upgrade();
            assert_eq!(StorageVersion::get::<Inference>(), StorageVersion::new(1));
        });
    }

    #[test]
    fn pending_requests_from_before_service_records_are_counted() {
        build_and_execute(|| {
            for e in 10..=12 {
                frame_support::assert_ok!(bond_and_serve(e, 1_000));
            }
            let ids: Vec<u64> = (0..6)
                .map(|i| {
                    let id = crate::NextRequestId::<Test>::get();
                    frame_support::assert_ok!(Inference::request_inference(
                        RuntimeOrigin::signed(1),
                        TENSOR_MODEL,
                        tensor(&[i as f32]).try_into().unwrap(),
                        FEE
                    ));
                    id
                })
                .collect();
            // As before v2: service records (and their counts) did not exist.
            let before: Vec<(AccountId, u32)> = (10..=12)
                .map(|e| (e, crate::Service::<Test>::get(e).pending))
                .collect();
            crate::Service::<Test>::mutate(10, |s| s.pending = 0);
            crate::Service::<Test>::mutate(11, |s| s.pending = 0);
            crate::Service::<Test>::mutate(12, |s| s.pending = 0);
            StorageVersion::new(1).put::<Inference>();

            RecountPending::<Test>::on_runtime_upgrade();

            assert_eq!(StorageVersion::get::<Inference>(), StorageVersion::new(2));
            for (e, n) in before {
                assert_eq!(crate::Service::<Test>::get(e).pending, n);
            }
            assert_eq!(
                before_total(&ids),
                (10..=12)
                    .map(|e| crate::Service::<Test>::get(e).pending)
                    .sum::<u32>()
            );
        });
    }

    fn before_total(ids: &[u64]) -> u32 {
        ids.iter()
            .filter(|id| {
                matches!(
                    crate::Requests::<Test>::get(**id).unwrap().status,
                    RequestStatus::Pending { .. }
                )
            })
            .count() as u32
    }
}
