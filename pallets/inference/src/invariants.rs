//! The pallet's invariants, checked by `try_state` and after every test.

use crate::{pallet::*, ExecutorStatus, RequestStatus};
use alloc::collections::btree_map::BTreeMap;
use frame_support::{ensure, traits::Get};
use sp_runtime::{traits::Saturating, TryRuntimeError};

impl<T: Config> Pallet<T> {
    /// Checks every invariant listed in the crate docs.
    pub fn do_try_state() -> Result<(), TryRuntimeError> {
        // Bonds: recorded = held; the active set = the Active executors.
        let active = ActiveExecutors::<T>::get();
        let mut active_count = 0usize;
        for (who, info) in Executors::<T>::iter() {
            ensure!(
                Self::held(HoldReason::ExecutorBond, &who) == info.bond,
                "an executor's recorded bond differs from its hold"
            );
            let is_active = matches!(info.status, ExecutorStatus::Active);
            ensure!(
                is_active == active.contains(&who),
                "active set and executor status disagree"
            );
            active_count += usize::from(is_active);
        }
        ensure!(
            active_count == active.len(),
            "the active set names unregistered accounts"
        );

        // Fees: each requester's hold = the fees of its open requests. Results and
        // disputes exist exactly for the states that need them.
        let mut fees: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        for (id, request) in Requests::<T>::iter() {
            if request.status.holds_fee() {
                let entry = fees.entry(request.requester.clone()).or_default();
                *entry = entry.saturating_add(request.fee);
            }
            let has_result = Results::<T>::contains_key(id);
            let needs_result = matches!(
                request.status,
                RequestStatus::Submitted { .. }
                    | RequestStatus::Disputed
                    | RequestStatus::Finalized { .. }
            );
            ensure!(
                has_result == needs_result,
                "a result record does not match its request's state"
            );
            ensure!(
                Disputes::<T>::contains_key(id)
                    == matches!(request.status, RequestStatus::Disputed),
                "a dispute record does not match its request's state"
            );
        }
        for (who, fee) in &fees {
            ensure!(
                Self::held(HoldReason::RequestFee, who) == *fee,
                "a requester's fee hold differs from its open requests' fees"
            );
        }

        // Challenge bonds: one ChallengeBond per open dispute of the challenger.
        let mut bonds: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        for (id, dispute) in Disputes::<T>::iter() {
            ensure!(
                Requests::<T>::contains_key(id),
                "a dispute without a request"
            );
            let entry = bonds.entry(dispute.challenger.clone()).or_default();
            *entry = entry.saturating_add(T::ChallengeBond::get());
        }
        for (who, bond) in &bonds {
            ensure!(
                Self::held(HoldReason::ChallengeBond, who) == *bond,
                "a challenger's hold differs from its open disputes"
            );
        }
        Ok(())
    }
}
