//! The pallet's invariants, checked by `try_state` and after every test.

use crate::{pallet::*, ExecutorStatus, RequestStatus};
use alloc::collections::btree_map::BTreeMap;
use frame_support::ensure;
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

        // Fees: each requester's hold = the fees of its open requests. Results exist
        // exactly for the states that need them.
        let mut fees: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        for (id, request) in Requests::<T>::iter() {
            if request.status.holds_fee() {
                let entry = fees.entry(request.requester.clone()).or_default();
                *entry = entry.saturating_add(request.fee);
            }
            let has_result = Results::<T>::contains_key(id);
            let needs_result = matches!(
                request.status,
                RequestStatus::Submitted { .. } | RequestStatus::Finalized { .. }
            );
            ensure!(
                has_result == needs_result,
                "a result record does not match its request's state"
            );
        }
        for (who, fee) in &fees {
            ensure!(
                Self::held(HoldReason::RequestFee, who) == *fee,
                "a requester's fee hold differs from its open requests' fees"
            );
        }

        // Releases wait on open requests only, each releaser once.
        for (id, releasers) in ReleasedBy::<T>::iter() {
            let request = Requests::<T>::get(id).ok_or("releases of an unknown request")?;
            ensure!(
                request.status.holds_fee(),
                "releases of a settled request were not settled"
            );
            let mut sorted = releasers.into_inner();
            sorted.sort();
            sorted.dedup();
            ensure!(
                sorted.len() as u32 <= request.attempt,
                "more releasers than attempts"
            );
        }

        // Storage deposits: each requester's hold = the deposits of its stored requests.
        let mut deposits: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        for (id, deposit) in RequestDeposits::<T>::iter() {
            let request = Requests::<T>::get(id).ok_or("a deposit without its request")?;
            let entry = deposits.entry(request.requester).or_default();
            *entry = entry.saturating_add(deposit);
        }
        for (who, deposit) in &deposits {
            ensure!(
                Self::held(HoldReason::StorageDeposit, who) == *deposit,
                "a requester's deposit hold differs from its requests' deposits"
            );
        }

        // Service: `pending` counts the executor's pending requests; a model's pool holds
        // exactly the active executors serving it with a free slot, weighted by bond.
        let mut pending: BTreeMap<T::AccountId, u32> = BTreeMap::new();
        for (_, request) in Requests::<T>::iter() {
            if matches!(request.status, RequestStatus::Pending { .. }) {
                *pending.entry(request.executor).or_default() += 1;
            }
        }
        for (who, n) in &pending {
            ensure!(
                Service::<T>::get(who).pending == *n,
                "an executor's pending count differs from its pending requests"
            );
        }
        for (who, service) in Service::<T>::iter() {
            ensure!(
                pending.get(&who).copied().unwrap_or_default() == service.pending,
                "an executor's pending count differs from its pending requests"
            );
            let info = Executors::<T>::get(&who).ok_or("a service record without executor")?;
            let eligible =
                matches!(info.status, ExecutorStatus::Active) && service.pending < service.capacity;
            for model in service.models.iter() {
                let entry = ModelPools::<T>::get(model)
                    .into_iter()
                    .find(|(a, _)| a == &who);
                ensure!(
                    entry.map(|(_, w)| w) == eligible.then_some(info.bond),
                    "a model pool disagrees with its server's standing"
                );
            }
        }
        for (model, pool) in ModelPools::<T>::iter() {
            for (i, (who, _)) in pool.iter().enumerate() {
                ensure!(
                    !pool[..i].iter().any(|(a, _)| a == who),
                    "an executor twice in one pool"
                );
                ensure!(
                    Service::<T>::get(who).models.contains(&model),
                    "a pool names an executor that does not serve its model"
                );
            }
        }

        // Challenge bonds: each open game of the challenger holds the bond it opened
        // with; games are indexed by challenger and counted per attempt, and only open
        // games have recorded stakes.
        let mut bonds: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        let mut counts: BTreeMap<(inferchain_primitives::RequestId, u32), u32> = BTreeMap::new();
        for (game_id, game) in Games::<T>::iter() {
            let entry = bonds.entry(game.challenger.clone()).or_default();
            *entry = entry.saturating_add(Pallet::<T>::stakes_of(game_id).challenge_bond);
            ensure!(
                GameByChallenger::<T>::get(game.request, &game.challenger) == Some(game_id),
                "a game is not indexed under its challenger"
            );
            let n = counts.entry((game.request, game.attempt)).or_default();
            *n = n.saturating_add(1);
        }
        ensure!(
            GameByChallenger::<T>::iter().all(|(_, _, g)| Games::<T>::contains_key(g)),
            "a challenger's index names a closed game"
        );
        ensure!(
            GameStakesOf::<T>::iter_keys().all(Games::<T>::contains_key),
            "stakes recorded for a closed game"
        );
        ensure!(
            OpenGames::<T>::iter().all(|(id, attempt, n)| counts.get(&(id, attempt)) == Some(&n))
                && counts.len() == OpenGames::<T>::iter().count(),
            "OpenGames differs from the games"
        );
        ensure!(
            ResultTraces::<T>::iter_keys().all(Results::<T>::contains_key),
            "a trace without a result"
        );
        for (who, bond) in &bonds {
            ensure!(
                Self::held(HoldReason::ChallengeBond, who) == *bond,
                "a challenger's hold differs from its open games"
            );
        }
        Ok(())
    }
}
