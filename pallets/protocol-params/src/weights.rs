//! Weights for `pallet_protocol_params`.
//!
//! NOT YET GENERATED: `set_parameter` reads and writes one value (the parameter set,
//! about 200 bytes) and compares each field with its bounds; the compute figure is
//! `pallet_models::set_model_status`'s (a comparable bounded read-modify-write), rounded
//! up. Regenerate with `scripts/benchmark.sh pallet_protocol_params` and commit.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens, unused_imports, missing_docs, dead_code)]

use core::marker::PhantomData;
use frame_support::{traits::Get, weights::{constants::ParityDbWeight, Weight}};

/// Weight functions needed for `pallet_protocol_params`.
pub trait WeightInfo {
    fn set_parameter() -> Weight;
}

/// Weights using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
    fn set_parameter() -> Weight {
        // Proof size: the parameter set.
        Weight::from_parts(25_000_000, 1_700)
            .saturating_add(T::DbWeight::get().reads(1_u64))
            .saturating_add(T::DbWeight::get().writes(1_u64))
    }
}

// For tests.
impl WeightInfo for () {
    fn set_parameter() -> Weight {
        Weight::from_parts(25_000_000, 1_700)
            .saturating_add(ParityDbWeight::get().reads(1_u64))
            .saturating_add(ParityDbWeight::get().writes(1_u64))
    }
}
