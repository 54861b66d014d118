//! Weights for `pallet_models`.
//!
//! NOT YET GENERATED: these figures are hand estimates (one read and one write of a
//! `ModelInfo`, plus the counter), to be replaced by the output of
//! `scripts/benchmark.sh` (`inferchain-node benchmark pallet --pallet pallet_models`),
//! which runs the v2 benchmarks in `benchmarking.rs`.

#![allow(unused_parens, unused_imports, missing_docs)]

use core::marker::PhantomData;
use frame_support::{
    traits::Get,
    weights::{constants::ParityDbWeight, Weight},
};

/// Weight functions needed for `pallet_models`.
pub trait WeightInfo {
    fn register_model() -> Weight;
    fn set_model_status() -> Weight;
    fn set_model_fee() -> Weight;
}

/// Weights for `pallet_models` using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
    fn register_model() -> Weight {
        Weight::from_parts(25_000_000, 2_000)
            .saturating_add(T::DbWeight::get().reads(2))
            .saturating_add(T::DbWeight::get().writes(2))
    }
    fn set_model_status() -> Weight {
        Weight::from_parts(15_000_000, 2_000)
            .saturating_add(T::DbWeight::get().reads(1))
            .saturating_add(T::DbWeight::get().writes(1))
    }
    fn set_model_fee() -> Weight {
        Weight::from_parts(15_000_000, 2_000)
            .saturating_add(T::DbWeight::get().reads(1))
            .saturating_add(T::DbWeight::get().writes(1))
    }
}

// For tests and backwards compatibility.
impl WeightInfo for () {
    fn register_model() -> Weight {
        Weight::from_parts(25_000_000, 2_000)
            .saturating_add(ParityDbWeight::get().reads(2))
            .saturating_add(ParityDbWeight::get().writes(2))
    }
    fn set_model_status() -> Weight {
        Weight::from_parts(15_000_000, 2_000)
            .saturating_add(ParityDbWeight::get().reads(1))
            .saturating_add(ParityDbWeight::get().writes(1))
    }
    fn set_model_fee() -> Weight {
        Weight::from_parts(15_000_000, 2_000)
            .saturating_add(ParityDbWeight::get().reads(1))
            .saturating_add(ParityDbWeight::get().writes(1))
    }
}
