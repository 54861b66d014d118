//! Service: which models an executor serves and how many requests it works on at once,
//! the per-model pools requests are drawn from, and liveness.
//!
//! An executor is in the pool of model `m` exactly when it is `Active`, has declared `m`
//! (`serve`) and has fewer pending assignments than its declared capacity; its weight
//! there is its bond. Every change to one of those (a declaration, a bond debit, a
//! deactivation, an assignment that fills or frees the last slot) re-syncs the
//! executor's entries, so a draw reads one pool and nothing else: the cost of taking a
//! request does not grow with the number of executors' storage entries.
//!
//! Liveness: an executor with missed deadlines in `MaxMissedInRow` blocks in a row is
//! deactivated (its bond stays slashable for `UnbondingPeriod`); misses due in one block
//! count once, and any result it posts in time resets the count.

use crate::{pallet::*, ExecutorStatus, RequestStatus, WeightInfo};
use alloc::vec::Vec;
use codec::Encode;
use frame_support::{pallet_prelude::*, traits::Randomness};
use frame_system::pallet_prelude::BlockNumberFor;
use inferchain_primitives::{
    model::{ModelRegistry, ModelStatus},
    ModelId, RequestId,
};
use sp_runtime::traits::{Saturating, UniqueSaturatedInto, Zero};

/// How a pending assignment ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AssignmentEnd {
    /// The executor posted its result in time.
    Answered,
    /// The executor missed its deadline, due at the given block (misses due in one
    /// block count once, whenever the queue handles them).
    Missed(u64),
    /// Nobody's doing: the model went away under the request.
    Void,
}

impl<T: Config> Pallet<T> {
    /// Declares that `who` serves `models`, at most `capacity` pending requests at once.
    pub(crate) fn do_serve(
        who: T::AccountId,
        models: BoundedVec<ModelId, T::MaxServedModels>,
        capacity: u32,
    ) -> DispatchResult {
        let info = Executors::<T>::get(&who).ok_or(Error::<T>::NotExecutor)?;
        ensure!(
            matches!(info.status, ExecutorStatus::Active),
            Error::<T>::NotActiveExecutor
        );
        ensure!(capacity > 0, Error::<T>::ZeroCapacity);
        let mut service = Service::<T>::get(&who);
        for (i, model) in models.iter().enumerate() {
            ensure!(!models[..i].contains(model), Error::<T>::DuplicateModel);
            let (_, status) = T::Models::model(model).ok_or(Error::<T>::UnknownModel)?;
            // A deprecated model takes no new servers, but one already served may be
            // kept (its requests still in flight may be reassigned).
            ensure!(
                status == ModelStatus::Active
                    || (status == ModelStatus::Deprecated && service.models.contains(model)),
                Error::<T>::ModelNotActive
            );
        }
        // Leave the pools of the models no longer served, then join (or re-weigh in)
        // those of the new list.
        let dropped: Vec<ModelId> = service
            .models
            .iter()
            .filter(|m| !models.contains(m))
            .copied()
            .collect();
        for model in &dropped {
            Self::pool_remove(model, &who);
        }
        service.models = models.clone();
        service.capacity = capacity;
        Service::<T>::insert(&who, service);
        Self::sync_pools(&who);
        Self::deposit_event(Event::ServiceDeclared {
            who,
            models: models.into_inner(),
            capacity,
        });
        Ok(())
    }

    /// The assigned executor of pending request `id` hands it back (see `release_assignment`).
    pub(crate) fn do_release(
        who: T::AccountId,
        id: RequestId,
        reason: crate::ReleaseReason,
    ) -> DispatchResult {
        let request = Requests::<T>::get(id).ok_or(Error::<T>::UnknownRequest)?;
        let RequestStatus::Pending { deadline } = request.status else {
            return Err(Error::<T>::NotPending.into());
        };
        ensure!(request.executor == who, Error::<T>::NotAssignedExecutor);
        let now = frame_system::Pallet::<T>::block_number();
        ensure!(now < deadline, Error::<T>::ResultTooLate);
        let model = request.model;
        if reason == crate::ReleaseReason::CannotServeModel {
            // Slashed later only if someone else's result for the request is finalized;
            // bound until then (an obligation), so it cannot unbond out of the slash.
            let recorded = ReleasedBy::<T>::try_mutate(id, |by| {
                if by.contains(&who) {
                    return Ok(false);
                }
                by.try_push(who.clone()).map(|()| true)
            });
            match recorded {
                Ok(true) => Self::add_obligation(&who),
                Ok(false) => {}
                Err(_) => {
                    defensive!("more releases of one request than attempts");
                    let slashed =
                        Self::debit_bond(&who, T::ReleaseSlash::get(), SlashReason::Released, now);
                    Self::burn_from_hold(HoldReason::ExecutorBond, &who, slashed);
                }
            }
            // It says it cannot serve the model: it leaves the model's pool and list.
            Self::pool_remove(&model, &who);
            Service::<T>::mutate(&who, |s| s.models.retain(|m| m != &model));
        }
        Self::end_assignment(&who, AssignmentEnd::Void, now);
        let _ = Self::unschedule_execution(deadline, id);
        Self::deposit_event(Event::AssignmentReleased {
            id,
            executor: who.clone(),
            model,
            reason,
        });
        Self::reassign_or_expire(id, &[who], now);
        Ok(())
    }

    /// Whether `info`/`service` put an executor in its models' pools.
    fn eligible(info: &ExecutorOf<T>, service: &ServiceOf<T>) -> bool {
        matches!(info.status, ExecutorStatus::Active) && service.pending < service.capacity
    }

    /// Brings `who`'s entries in the pools of the models it serves up to date: present
    /// with its bond as weight while eligible, absent otherwise.
    pub(crate) fn sync_pools(who: &T::AccountId) {
        let service = Service::<T>::get(who);
        let weight = Executors::<T>::get(who)
            .filter(|info| Self::eligible(info, &service))
            .map(|info| info.bond);
        for model in service.models.iter() {
            ModelPools::<T>::mutate(model, |pool| {
                let at = pool.iter().position(|(a, _)| a == who);
                match (at, weight) {
                    (Some(i), Some(w)) => pool[i].1 = w,
                    (Some(i), None) => {
                        pool.swap_remove(i);
                    }
                    (None, Some(w)) => {
                        // A pool holds registered executors only, at most MaxExecutors.
                        if pool.try_push((who.clone(), w)).is_err() {
                            defensive!("a model pool is fuller than the executor set");
                        }
                    }
                    (None, None) => {}
                }
            });
        }
    }

    fn pool_remove(model: &ModelId, who: &T::AccountId) {
        ModelPools::<T>::mutate(model, |pool| pool.retain(|(a, _)| a != who));
    }

    /// `who` takes one more pending request; a full executor leaves its pools.
    pub(crate) fn start_assignment(who: &T::AccountId) {
        Self::start_assignments(who, 1)
    }

    /// `who` takes `n` more pending requests at once (a batch, drawn while it had a free
    /// slot: it may go past its capacity by at most `MaxBatchSize - 1`); a full executor
    /// leaves its pools.
    pub(crate) fn start_assignments(who: &T::AccountId, n: u32) {
        let service = Service::<T>::mutate(who, |s| {
            s.pending = s.pending.saturating_add(n);
            s.clone()
        });
        if service.pending >= service.capacity {
            Self::sync_pools(who);
        }
    }

    /// One pending request of `who` ends. An executor with a free slot again rejoins its
    /// pools; `MaxMissedInRow` misses in a row deactivate it.
    pub(crate) fn end_assignment(who: &T::AccountId, end: AssignmentEnd, now: BlockNumberFor<T>) {
        Self::end_assignments(who, end, 1, now)
    }

    /// `n` pending requests of `who` end the same way at once (a batch): as `n` calls of
    /// [`Self::end_assignment`] (misses due in one block count once anyway), in one write.
    pub(crate) fn end_assignments(
        who: &T::AccountId,
        end: AssignmentEnd,
        n: u32,
        now: BlockNumberFor<T>,
    ) {
        let (service, was_full) = Service::<T>::mutate(who, |s| {
            let was_full = s.pending >= s.capacity;
            s.pending = s.pending.saturating_sub(n);
            match end {
                AssignmentEnd::Answered => s.missed_in_row = 0,
                AssignmentEnd::Missed(block) => {
                    if s.last_miss != block || s.missed_in_row == 0 {
                        s.missed_in_row = s.missed_in_row.saturating_add(1);
                        s.last_miss = block;
                    }
                }
                AssignmentEnd::Void => {}
            }
            (s.clone(), was_full)
        });
        if matches!(end, AssignmentEnd::Missed(_))
            && service.missed_in_row >= T::MaxMissedInRow::get()
        {
            if let Some(info) = Executors::<T>::get(who) {
                if matches!(info.status, ExecutorStatus::Active) {
                    Self::deactivate(who, info, now);
                    return;
                }
            }
        }
        if was_full && service.pending < service.capacity {
            Self::sync_pools(who);
        }
    }

    /// Takes `who` out of the active set and its pools; its bond stays slashable until
    /// `UnbondingPeriod` from now.
    pub(crate) fn deactivate(who: &T::AccountId, mut info: ExecutorOf<T>, now: BlockNumberFor<T>) {
        let until = now.saturating_add(T::UnbondingPeriod::get());
        info.status = ExecutorStatus::Deactivated { until };
        Executors::<T>::insert(who, info);
        ActiveExecutors::<T>::mutate(|set| set.retain(|a| a != who));
        Self::sync_pools(who);
        Self::deposit_event(Event::ExecutorDeactivated {
            who: who.clone(),
            until,
        });
    }

    /// A random 128-bit number for `subject`, from the runtime's randomness.
    fn random_u128(subject: &[u8]) -> u128 {
        let (seed, _) = T::Randomness::random(subject);
        let bytes = sp_io::hashing::blake2_128(&(seed, subject).encode());
        u128::from_le_bytes(bytes)
    }

    /// Draws an executor from `model`'s pool, weighted by bond, other than those in
    /// `exclude`. One storage read (the pool) whatever the number of executors.
    pub(crate) fn pick_executor(
        model: &ModelId,
        subject: &[u8],
        exclude: &[T::AccountId],
    ) -> Option<T::AccountId> {
        let pool = ModelPools::<T>::get(model);
        let weight = |bond: &BalanceOf<T>| -> u128 {
            let w: u128 = (*bond).unique_saturated_into();
            w.max(1)
        };
        let total = pool
            .iter()
            .filter(|(a, _)| !exclude.contains(a))
            .fold(0u128, |acc, (_, b)| acc.saturating_add(weight(b)));
        if total.is_zero() {
            return None;
        }
        let mut point = Self::random_u128(subject) % total;
        for (who, bond) in pool.into_iter().filter(|(a, _)| !exclude.contains(a)) {
            let w = weight(&bond);
            if point < w {
                return Some(who);
            }
            point = point.saturating_sub(w);
        }
        None
    }
}

/// The most executors that can hand one request back: one per attempt.
pub struct MaxReleasers<T>(core::marker::PhantomData<T>);

impl<T: Config> Get<u32> for MaxReleasers<T> {
    fn get() -> u32 {
        T::MaxAttempts::get().saturating_add(1)
    }
}

impl<T: Config> Pallet<T> {
    /// Settles the releases of request `id` as it ends: `answered` (its result is final)
    /// slashes each releaser `ReleaseSlash`; otherwise (it expired) they are forgiven.
    /// The work counts in `ObserverWeight` like the observer's hooks.
    pub(crate) fn settle_releases(id: RequestId, answered: bool, now: BlockNumberFor<T>) {
        let releasers = ReleasedBy::<T>::take(id);
        if releasers.is_empty() {
            return;
        }
        let used = Self::release_settlement_weight(releasers.len() as u32);
        ObserverWeight::<T>::mutate(|w| *w = w.saturating_add(used));
        for who in &releasers {
            Self::remove_obligation(who);
        }
        if answered {
            for who in &releasers {
                let slashed =
                    Self::debit_bond(who, T::ReleaseSlash::get(), SlashReason::Released, now);
                Self::burn_from_hold(HoldReason::ExecutorBond, who, slashed);
            }
        } else {
            Self::deposit_event(Event::ReleasesForgiven {
                id,
                executors: releasers.into_inner(),
            });
        }
    }

    /// The weight of settling `n` releases (a slash each, at most what a release costs).
    pub(crate) fn release_settlement_weight(n: u32) -> Weight {
        T::WeightInfo::release_assignment().saturating_mul(u64::from(n))
    }

    /// The most side work one settlement may do beyond its own weight: the observer's
    /// hooks and the request's release slashes.
    pub fn settlement_reserve() -> Weight {
        <T::Observer as crate::RequestObserver>::max_weight()
            .saturating_add(Self::release_settlement_weight(MaxReleasers::<T>::get()))
    }
}
