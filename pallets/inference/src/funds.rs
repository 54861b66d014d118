//! Every currency operation of the pallet, in one place: holds, releases, payments out
//! of holds and burns. Nothing else in the pallet touches balances.

use crate::{pallet::*, ExecutorStatus, LOG_TARGET};
use frame_support::{
    pallet_prelude::*,
    traits::{
        fungible::{InspectHold, MutateHold},
        tokens::{Fortitude, Precision, Restriction},
    },
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::{Saturating, Zero};

impl<T: Config> Pallet<T> {
    /// Holds `amount` from `who` for `reason`.
    pub(crate) fn hold(
        reason: HoldReason,
        who: &T::AccountId,
        amount: BalanceOf<T>,
    ) -> DispatchResult {
        T::Currency::hold(&reason.into(), who, amount)
    }

    /// Releases `amount` held from `who` for `reason` back to its free balance.
    pub(crate) fn release(reason: HoldReason, who: &T::AccountId, amount: BalanceOf<T>) {
        if amount.is_zero() {
            return;
        }
        if let Err(e) = T::Currency::release(&reason.into(), who, amount, Precision::BestEffort) {
            log::error!(target: LOG_TARGET, "release of {amount:?} for {reason:?} failed: {e:?}");
        }
    }

    /// What `who` has on hold for `reason`.
    pub(crate) fn held(reason: HoldReason, who: &T::AccountId) -> BalanceOf<T> {
        T::Currency::balance_on_hold(&reason.into(), who)
    }

    /// Moves `amount` from `from`'s hold for `reason` to `to`'s free balance. If the
    /// transfer cannot be made (for instance `to` could not exist with so little), the
    /// amount is burned instead, so the hold always shrinks by `amount`.
    pub(crate) fn pay_from_hold(
        reason: HoldReason,
        from: &T::AccountId,
        to: &T::AccountId,
        amount: BalanceOf<T>,
    ) {
        if amount.is_zero() {
            return;
        }
        let paid = T::Currency::transfer_on_hold(
            &reason.into(),
            from,
            to,
            amount,
            Precision::BestEffort,
            Restriction::Free,
            Fortitude::Force,
        );
        match paid {
            Ok(paid) if paid == amount => {}
            Ok(paid) => Self::burn_from_hold(reason, from, amount.saturating_sub(paid)),
            Err(e) => {
                log::warn!(target: LOG_TARGET, "payment of {amount:?} failed ({e:?}); burning it");
                Self::burn_from_hold(reason, from, amount);
            }
        }
    }

    /// Burns `amount` from `who`'s hold for `reason`, recording it in `TotalBurned`.
    pub(crate) fn burn_from_hold(reason: HoldReason, who: &T::AccountId, amount: BalanceOf<T>) {
        if amount.is_zero() {
            return;
        }
        match T::Currency::burn_held(
            &reason.into(),
            who,
            amount,
            Precision::BestEffort,
            Fortitude::Force,
        ) {
            Ok(burned) => TotalBurned::<T>::mutate(|t| *t = t.saturating_add(burned)),
            Err(e) => log::error!(target: LOG_TARGET, "burn of {amount:?} failed: {e:?}"),
        }
    }

    /// Takes up to `amount` out of an executor's bond: returns what can be taken and
    /// lowers the recorded bond by it. The caller must then pay or burn exactly that much
    /// from the `ExecutorBond` hold. An executor left below `MinExecutorBond` is
    /// deactivated.
    pub(crate) fn debit_bond(
        who: &T::AccountId,
        amount: BalanceOf<T>,
        reason: SlashReason,
        now: BlockNumberFor<T>,
    ) -> BalanceOf<T> {
        let Some(mut info) = Executors::<T>::get(who) else {
            return Zero::zero();
        };
        let taken = amount.min(info.bond);
        info.bond = info.bond.saturating_sub(taken);
        if matches!(info.status, ExecutorStatus::Active) && info.bond < T::MinExecutorBond::get() {
            Self::deactivate(who, info, now);
        } else {
            Executors::<T>::insert(who, info);
            // The bond is the executor's weight in its pools.
            Self::sync_pools(who);
        }
        if !taken.is_zero() {
            Self::deposit_event(Event::Slashed {
                who: who.clone(),
                amount: taken,
                reason,
            });
        }
        taken
    }
}
