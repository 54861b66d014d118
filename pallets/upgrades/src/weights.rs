//! Weights for `pallet_upgrades`.
//!
//! NOT YET GENERATED: `authorize_upgrade` writes one value (frame-system's
//! `AuthorizedUpgrade`, 33 bytes) and an event; the compute figure is
//! `frame_system::authorize_upgrade`'s order, rounded up. Regenerate with
//! `scripts/benchmark.sh pallet_upgrades` and commit.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens, unused_imports, missing_docs, dead_code)]

use core::marker::PhantomData;
use frame_support::{traits::Get, weights::{constants::ParityDbWeight, Weight}};

/// Weight functions needed for `pallet_upgrades`.
pub trait WeightInfo {
    fn authorize_upgrade() -> Weight;
}

/// Weights using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
    fn authorize_upgrade() -> Weight {
        Weight::from_parts(15_000_000, 0)
            .saturating_add(T::DbWeight::get().writes(1_u64))
    }
}

// For tests.
impl WeightInfo for () {
    fn authorize_upgrade() -> Weight {
        Weight::from_parts(15_000_000, 0)
            .saturating_add(ParityDbWeight::get().writes(1_u64))
    }
}
