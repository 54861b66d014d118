//! # Protocol parameters pallet
//!
//! The inference protocol's economic and timing parameters (bonds, slashes, shares,
//! deadlines, deposits, the off-chain worker's budgets) as storage that governance sets,
//! one parameter per call: `set_parameter` (behind `ParamsOrigin`: the model council's
//! majority or Root in the runtime) checks the new value against the runtime's bounds
//! (`MinValues`, `MaxValues`) and the set against the relations every set must keep
//! ([`ProtocolParams::check_relations`]), stores it and emits `ParameterSet` with the old
//! and new value. Until governance changes anything the runtime's `Defaults` hold, so a
//! chain upgraded into this pallet needs no migration.
//!
//! The runtime hands each parameter to pallet-inference as a `Get` that reads
//! [`Pallet::current`]. A change applies from the next use: deadlines, unbonding ends and
//! deposits already recorded keep the values they were recorded with.
//!
//! What it must not do: hold parameters that shape storage bounds or weights (the most
//! executors, input bytes, requests per block, ...): those stay runtime constants, changed
//! by a runtime upgrade. Nor, yet, the challenge bond (games record the bond they hold,
//! so it could be governed next).

#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
mod params;
#[cfg(test)]
mod tests;
pub mod weights;

pub use pallet::*;
pub use params::{BrokenRelation, ParamChange, ParamKind, ProtocolParams, PARAM_NAMES};
pub use weights::WeightInfo;

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::pallet_prelude::*;
    use frame_system::pallet_prelude::*;
    use sp_runtime::traits::AtLeast32BitUnsigned;

    const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

    /// The parameter set of runtime `T`.
    pub type ParamsOf<T> = ProtocolParams<<T as Config>::Balance, BlockNumberFor<T>>;
    /// A change of one parameter of runtime `T`.
    pub type ChangeOf<T> = ParamChange<<T as Config>::Balance, BlockNumberFor<T>>;

    #[pallet::pallet]
    #[pallet::storage_version(STORAGE_VERSION)]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config {
        #[allow(deprecated)]
        type RuntimeEvent: From<Event<Self>> + IsType<<Self as frame_system::Config>::RuntimeEvent>;
        /// The balance type of the bonds, slashes and deposits.
        type Balance: Parameter
            + MaxEncodedLen
            + AtLeast32BitUnsigned
            + Copy
            + DecodeWithMemTracking;
        /// Who changes parameters.
        type ParamsOrigin: EnsureOrigin<Self::RuntimeOrigin>;
        /// The values until governance changes them.
        #[pallet::constant]
        type Defaults: Get<ParamsOf<Self>>;
        /// The least value of each parameter governance may set.
        #[pallet::constant]
        type MinValues: Get<ParamsOf<Self>>;
        /// The greatest value of each parameter governance may set.
        #[pallet::constant]
        type MaxValues: Get<ParamsOf<Self>>;
        type WeightInfo: WeightInfo;
    }

    /// The parameters, once governance changed one; absent while the defaults hold.
    #[pallet::storage]
    pub type Params<T: Config> = StorageValue<_, ParamsOf<T>, OptionQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A parameter changed from `old` to `new` (the same parameter: `new.name()`).
        ParameterSet { old: ChangeOf<T>, new: ChangeOf<T> },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The value is outside the bounds the runtime allows for this parameter
        /// (`MinValues`..=`MaxValues`).
        OutOfBounds,
        /// The parameter already has this value.
        Unchanged,
        /// The handing-back slash would exceed the missed-deadline slash.
        ReleaseAboveMissedSlash,
        /// The challenge reward and the requester's compensation would exceed 100%.
        SlashSharesAboveWhole,
        /// The unbonding period would be shorter than the execution timeout and the
        /// challenge period together.
        UnbondingTooShort,
        /// A slash would exceed the least executor bond.
        SlashAboveMinBond,
        /// The off-chain retry delay would not be shorter than the move timeout and the
        /// execution timeout.
        RetryNotBeforeDeadlines,
    }

    impl<T> From<BrokenRelation> for Error<T> {
        fn from(broken: BrokenRelation) -> Self {
            match broken {
                BrokenRelation::ReleaseAboveMissedSlash => Error::ReleaseAboveMissedSlash,
                BrokenRelation::SlashSharesAboveWhole => Error::SlashSharesAboveWhole,
                BrokenRelation::UnbondingTooShort => Error::UnbondingTooShort,
                BrokenRelation::SlashAboveMinBond => Error::SlashAboveMinBond,
                BrokenRelation::RetryNotBeforeDeadlines => Error::RetryNotBeforeDeadlines,
            }
        }
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn integrity_test() {
            let (min, max) = (T::MinValues::get(), T::MaxValues::get());
            assert_eq!(min.outside(&min, &max), None, "MinValues above MaxValues");
            assert_eq!(
                T::Defaults::get().outside(&min, &max),
                None,
                "a default is outside its bounds"
            );
            assert_eq!(
                T::Defaults::get().check_relations(),
                Ok(()),
                "the defaults break a relation"
            );
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            let params = Self::current();
            ensure!(
                params
                    .outside(&T::MinValues::get(), &T::MaxValues::get())
                    .is_none(),
                "a stored parameter is outside its bounds"
            );
            ensure!(
                params.check_relations().is_ok(),
                "the stored parameters break a relation"
            );
            Ok(())
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Sets one parameter. It must lie within the runtime's bounds and keep the
        /// relations between parameters; it applies from its next use.
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::set_parameter())]
        pub fn set_parameter(origin: OriginFor<T>, change: ChangeOf<T>) -> DispatchResult {
            T::ParamsOrigin::ensure_origin(origin)?;
            let mut params = Self::current();
            let old = params.value_of(&change);
            ensure!(old != change, Error::<T>::Unchanged);
            // Only the changed parameter is held to the bounds: if an upgrade tightens
            // the bounds of others, each can still be brought inside by its own motion.
            ensure!(
                ParamsOf::<T>::admits(&T::MinValues::get(), &T::MaxValues::get(), &change),
                Error::<T>::OutOfBounds
            );
            params.apply(change);
            params.check_relations().map_err(Error::<T>::from)?;
            Params::<T>::put(params);
            Self::deposit_event(Event::ParameterSet { old, new: change });
            Ok(())
        }
    }

    impl<T: Config> Pallet<T> {
        /// The parameters in force: governance's, or the defaults.
        pub fn current() -> ParamsOf<T> {
            Params::<T>::get().unwrap_or_else(T::Defaults::get)
        }
    }
}
