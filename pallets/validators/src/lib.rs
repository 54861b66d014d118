//! # Validators pallet
//!
//! inferchain's validator set, which governance changes: `add_validator` and
//! `remove_validator` (behind `ValidatorOrigin`: the model council's majority or Root in
//! the runtime) edit the set, and the pallet, as pallet-session's `SessionManager`, hands
//! the new set to the session pallet at the next session. pallet-session queues it for
//! one session and then rotates it in: BABE's authorities change, and GRANDPA's through a
//! scheduled change (its set id moves), which receipts follow (docs/RECEIPTS.md).
//!
//! A validator only produces and finalizes blocks once it has registered session keys
//! (`Session::set_keys`); one without keys is skipped by pallet-session.
//!
//! What it must not do: pay or slash (validators are not staked here; executors are, in
//! pallet-inference), or let the set fall below `MinValidators`.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod weights;

pub use pallet::*;
pub use weights::WeightInfo;

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use alloc::vec::Vec;
    use frame_support::{pallet_prelude::*, traits::Contains};
    use frame_system::pallet_prelude::*;

    const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

    #[pallet::pallet]
    #[pallet::storage_version(STORAGE_VERSION)]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config {
        #[allow(deprecated)]
        type RuntimeEvent: From<Event<Self>> + IsType<<Self as frame_system::Config>::RuntimeEvent>;
        /// Who adds and removes validators.
        type ValidatorOrigin: EnsureOrigin<Self::RuntimeOrigin>;
        /// Accounts with session keys registered. Only they may be added: pallet-session
        /// skips a validator without keys, and a set of only such accounts would stop
        /// block production.
        type KeysRegistered: Contains<Self::AccountId>;
        /// The most validators the set may hold.
        #[pallet::constant]
        type MaxValidators: Get<u32>;
        /// The fewest: a removal that would go below is refused (GRANDPA needs more than
        /// two thirds of the set online; a set of one is a single point of failure).
        #[pallet::constant]
        type MinValidators: Get<u32>;
        type WeightInfo: WeightInfo;
    }

    /// The validator set governance decided, in the order it was built.
    #[pallet::storage]
    pub type Validators<T: Config> =
        StorageValue<_, BoundedVec<T::AccountId, T::MaxValidators>, ValueQuery>;

    /// Whether `Validators` changed since the last session was planned.
    #[pallet::storage]
    pub type Changed<T: Config> = StorageValue<_, bool, ValueQuery>;

    /// The session from which the last set handed to pallet-session validates, until it
    /// starts.
    #[pallet::storage]
    pub type Planned<T: Config> = StorageValue<_, u32, OptionQuery>;

    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        pub validators: Vec<T::AccountId>,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            let mut set: Vec<T::AccountId> = Vec::new();
            for v in &self.validators {
                assert!(!set.contains(v), "a genesis validator is listed twice");
                set.push(v.clone());
            }
            // None at all: pallet-session's genesis keys name the first set.
            assert!(
                set.is_empty() || set.len() as u32 >= T::MinValidators::get(),
                "fewer genesis validators than MinValidators"
            );
            let set: BoundedVec<_, _> = set
                .try_into()
                .expect("more genesis validators than MaxValidators");
            Validators::<T>::put(set);
        }
    }

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// `who` joins the set from the session after next.
        ValidatorAdded { who: T::AccountId },
        /// `who` leaves the set from the session after next.
        ValidatorRemoved { who: T::AccountId },
        /// The changed set was handed to pallet-session for session `session`.
        NewSetPlanned { session: u32, validators: u32 },
        /// The changed set was not handed over: only `keyed` of its validators have session
        /// keys, fewer than `MinValidators` (or none). The current set stays.
        NewSetWithheld { session: u32, keyed: u32 },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The account is a validator already.
        AlreadyValidator,
        /// The account is not a validator.
        NotValidator,
        /// The set holds `MaxValidators` already.
        TooManyValidators,
        /// Removing would leave fewer than `MinValidators`.
        TooFewValidators,
        /// The account has no session keys registered (`Session::set_keys` first).
        NoSessionKeys,
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Adds `who` to the validator set, from the session after next.
        ///
        /// **Origin**: `ValidatorOrigin`.
        /// **Errors**: `NoSessionKeys`, `AlreadyValidator`, `TooManyValidators`.
        /// **Events**: `ValidatorAdded`.
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::add_validator())]
        pub fn add_validator(origin: OriginFor<T>, who: T::AccountId) -> DispatchResult {
            T::ValidatorOrigin::ensure_origin(origin)?;
            ensure!(T::KeysRegistered::contains(&who), Error::<T>::NoSessionKeys);
            Validators::<T>::try_mutate(|set| -> DispatchResult {
                ensure!(!set.contains(&who), Error::<T>::AlreadyValidator);
                set.try_push(who.clone())
                    .map_err(|_| Error::<T>::TooManyValidators)?;
                Ok(())
            })?;
            Changed::<T>::put(true);
            Self::deposit_event(Event::ValidatorAdded { who });
            Ok(())
        }

        /// Removes `who` from the validator set, from the session after next.
        ///
        /// **Origin**: `ValidatorOrigin`.
        /// **Errors**: `NotValidator`, `TooFewValidators`.
        /// **Events**: `ValidatorRemoved`.
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::remove_validator())]
        pub fn remove_validator(origin: OriginFor<T>, who: T::AccountId) -> DispatchResult {
            T::ValidatorOrigin::ensure_origin(origin)?;
            Validators::<T>::try_mutate(|set| -> DispatchResult {
                let at = set
                    .iter()
                    .position(|v| *v == who)
                    .ok_or(Error::<T>::NotValidator)?;
                ensure!(
                    set.len() as u32 > T::MinValidators::get(),
                    Error::<T>::TooFewValidators
                );
                set.remove(at);
                Ok(())
            })?;
            Changed::<T>::put(true);
            Self::deposit_event(Event::ValidatorRemoved { who });
            Ok(())
        }
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        #[cfg(feature = "try-runtime")]
        fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }

    impl<T: Config> Pallet<T> {
        /// Whether a set change is decided and not yet validating: the runtime ends
        /// sessions early while it is.
        pub fn change_pending() -> bool {
            Changed::<T>::get() || Planned::<T>::exists()
        }

        /// The set is within its bounds and lists nobody twice.
        #[cfg(any(test, feature = "try-runtime"))]
        pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
            let set = Validators::<T>::get();
            ensure!(
                set.is_empty() || set.len() as u32 >= T::MinValidators::get(),
                "fewer validators than MinValidators"
            );
            for (i, v) in set.iter().enumerate() {
                ensure!(!set[..i].contains(v), "a validator is listed twice");
            }
            Ok(())
        }
    }

    /// pallet-session asks for the next set when it plans a session: the changed set's
    /// validators that have session keys, or nothing (keep the current set).
    impl<T: Config> pallet_session::SessionManager<T::AccountId> for Pallet<T> {
        fn new_session(new_index: u32) -> Option<Vec<T::AccountId>> {
            if !Changed::<T>::take() {
                return None;
            }
            // Keys may have been purged since a validator was added: pallet-session would
            // skip it, and a set with nobody left would stop block production.
            let set: Vec<T::AccountId> = Validators::<T>::get()
                .into_iter()
                .filter(T::KeysRegistered::contains)
                .collect();
            let keyed = set.len() as u32;
            if keyed == 0 || keyed < T::MinValidators::get() {
                Self::deposit_event(Event::NewSetWithheld {
                    session: new_index,
                    keyed,
                });
                return None;
            }
            Planned::<T>::put(new_index);
            Self::deposit_event(Event::NewSetPlanned {
                session: new_index,
                validators: keyed,
            });
            Some(set)
        }

        fn new_session_genesis(_new_index: u32) -> Option<Vec<T::AccountId>> {
            let set = Validators::<T>::get().into_inner();
            (!set.is_empty()).then_some(set)
        }

        fn end_session(_end_index: u32) {}

        fn start_session(start_index: u32) {
            if Planned::<T>::get().is_some_and(|planned| start_index >= planned) {
                Planned::<T>::kill();
            }
        }
    }
}
