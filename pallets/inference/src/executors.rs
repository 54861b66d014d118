//! Executors: bonding, unbonding, withdrawal and duties (what they serve and the draw
//! that assigns requests are in `service`).

use crate::{pallet::*, ExecutorInfo, ExecutorStatus};
use frame_support::pallet_prelude::*;
use sp_runtime::traits::Saturating;

impl<T: Config> Pallet<T> {
    pub(crate) fn do_register_executor(who: T::AccountId, bond: BalanceOf<T>) -> DispatchResult {
        ensure!(
            !Executors::<T>::contains_key(&who),
            Error::<T>::AlreadyExecutor
        );
        ensure!(bond >= T::MinExecutorBond::get(), Error::<T>::BondTooLow);
        let mut active = ActiveExecutors::<T>::get();
        active
            .try_push(who.clone())
            .map_err(|_| Error::<T>::TooManyExecutors)?;
        Self::hold(HoldReason::ExecutorBond, &who, bond)?;
        ActiveExecutors::<T>::put(active);
        Executors::<T>::insert(
            &who,
            ExecutorInfo {
                bond,
                status: ExecutorStatus::Active,
                obligations: 0,
            },
        );
        Self::deposit_event(Event::ExecutorRegistered { who, bond });
        Ok(())
    }

    pub(crate) fn do_unregister_executor(who: T::AccountId) -> DispatchResult {
        let mut info = Executors::<T>::get(&who).ok_or(Error::<T>::NotExecutor)?;
        ensure!(
            matches!(info.status, ExecutorStatus::Active),
            Error::<T>::AlreadyUnbonding
        );
        let until =
            frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingPeriod::get());
        info.status = ExecutorStatus::Unbonding { until };
        Executors::<T>::insert(&who, info);
        ActiveExecutors::<T>::mutate(|set| set.retain(|a| a != &who));
        Self::sync_pools(&who);
        Self::deposit_event(Event::ExecutorUnbonding { who, until });
        Ok(())
    }

    pub(crate) fn do_withdraw_bond(who: T::AccountId) -> DispatchResult {
        let info = Executors::<T>::get(&who).ok_or(Error::<T>::NotExecutor)?;
        let until = match info.status {
            ExecutorStatus::Active => return Err(Error::<T>::NotActiveExecutor.into()),
            ExecutorStatus::Unbonding { until } | ExecutorStatus::Deactivated { until } => until,
        };
        ensure!(
            frame_system::Pallet::<T>::block_number() >= until,
            Error::<T>::StillUnbonding
        );
        ensure!(info.obligations == 0, Error::<T>::OpenObligations);
        Self::release(HoldReason::ExecutorBond, &who, info.bond);
        Executors::<T>::remove(&who);
        Service::<T>::remove(&who);
        Self::deposit_event(Event::BondWithdrawn {
            who,
            amount: info.bond,
        });
        Ok(())
    }

    /// One more open duty for `who`.
    pub(crate) fn add_obligation(who: &T::AccountId) {
        Self::add_obligations(who, 1)
    }

    /// `who` takes `n` more duties at once (a batch): one write.
    pub(crate) fn add_obligations(who: &T::AccountId, n: u32) {
        Executors::<T>::mutate(who, |maybe| {
            if let Some(info) = maybe {
                info.obligations = info.obligations.saturating_add(n);
            }
        });
    }

    /// One duty of `who` is done.
    pub(crate) fn remove_obligation(who: &T::AccountId) {
        Self::remove_obligations(who, 1)
    }

    /// `n` duties of `who` are done at once: one write.
    pub(crate) fn remove_obligations(who: &T::AccountId, n: u32) {
        Executors::<T>::mutate(who, |maybe| {
            if let Some(info) = maybe {
                info.obligations = info.obligations.saturating_sub(n);
            }
        });
    }
}
