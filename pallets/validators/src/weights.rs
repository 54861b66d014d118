//! Weights for `pallet_validators`.
//!
//! NOT YET GENERATED: these are the calls' storage accesses (a read and two writes of a
//! `MaxValidators`-bounded list and a flag, and for `add_validator` a read of the
//! account's session keys) at ParityDB's cost, with a compute figure
//! taken from `pallet_models::set_model_status` (a comparable bounded read-modify-write),
//! rounded up. Regenerate with `scripts/benchmark.sh pallet_validators` and commit.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens, unused_imports, missing_docs, dead_code)]

use core::marker::PhantomData;
use frame_support::{traits::Get, weights::{constants::ParityDbWeight, Weight}};

/// Weight functions needed for `pallet_validators`.
pub trait WeightInfo {
    fn add_validator() -> Weight;
    fn remove_validator() -> Weight;
}

/// Weights using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
    fn add_validator() -> Weight {
        // Proof size: the bounded list, the flag and the account's session keys.
        Weight::from_parts(25_000_000, 3_500)
            .saturating_add(T::DbWeight::get().reads(2_u64))
            .saturating_add(T::DbWeight::get().writes(2_u64))
    }
    fn remove_validator() -> Weight {
        Weight::from_parts(25_000_000, 3_300)
            .saturating_add(T::DbWeight::get().reads(1_u64))
            .saturating_add(T::DbWeight::get().writes(2_u64))
    }
}

// For tests.
impl WeightInfo for () {
    fn add_validator() -> Weight {
        Weight::from_parts(25_000_000, 3_500)
            .saturating_add(ParityDbWeight::get().reads(2_u64))
            .saturating_add(ParityDbWeight::get().writes(2_u64))
    }
    fn remove_validator() -> Weight {
        Weight::from_parts(25_000_000, 3_300)
            .saturating_add(ParityDbWeight::get().reads(1_u64))
            .saturating_add(ParityDbWeight::get().writes(2_u64))
    }
}
