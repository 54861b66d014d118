//! # Upgrades pallet
//!
//! Runtime upgrades by governance. `authorize_upgrade(code_hash)` (behind
//! `UpgradeOrigin`: two thirds of the model council, or Root, in the runtime) records the
//! hash with frame-system, which emits `UpgradeAuthorized`; anyone then applies the code
//! with frame-system's `apply_authorized_upgrade`, which checks the hash, the spec name
//! and that the spec version grows (frame-system emits `CodeUpdated`). The council votes
//! on 32 bytes, not on a megabyte of wasm in a motion.
//!
//! What it must not do: authorize an upgrade without the version check (a runtime that
//! keeps its spec version would let clients sign with types that no longer match: the
//! CLI refuses to sign for a spec version it was not built for), or hold the code.

#![cfg_attr(not(feature = "std"), no_std)]

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
    use frame_support::pallet_prelude::*;
    use frame_system::pallet_prelude::*;

    const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

    #[pallet::pallet]
    #[pallet::storage_version(STORAGE_VERSION)]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config {
        /// Who authorizes an upgrade.
        type UpgradeOrigin: EnsureOrigin<Self::RuntimeOrigin>;
        type WeightInfo: WeightInfo;
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Authorizes the runtime whose wasm hashes to `code_hash` (with the runtime's
        /// hasher): anyone may then apply it (`System::apply_authorized_upgrade`), if its
        /// spec name is the chain's and its spec version greater. A later authorization
        /// replaces an earlier one.
        #[pallet::call_index(0)]
        #[pallet::weight((T::WeightInfo::authorize_upgrade(), DispatchClass::Operational))]
        pub fn authorize_upgrade(origin: OriginFor<T>, code_hash: T::Hash) -> DispatchResult {
            T::UpgradeOrigin::ensure_origin(origin)?;
            frame_system::Pallet::<T>::do_authorize_upgrade(code_hash, true);
            Ok(())
        }
    }
}
