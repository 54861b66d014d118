//! Weights for `pallet_inference`.
//!
//! NOT YET GENERATED: these are hand estimates that grow with input/output length and
//! with the number of deadline-queue entries handled, to be replaced by the output of
//! `scripts/benchmark.sh` (`inferchain-node benchmark pallet --pallet pallet_inference`),
//! which runs the v2 benchmarks in `benchmarking.rs`. `reveal_vote` is priced as the
//! reveal that completes a jury and settles the dispute; `on_initialize(k)` as `k` entries
//! that each settle a dispute.

#![allow(unused_parens, unused_imports, missing_docs)]

use core::marker::PhantomData;
use frame_support::{
    traits::Get,
    weights::{constants::ParityDbWeight, Weight},
};

/// Weight functions needed for `pallet_inference`.
pub trait WeightInfo {
    fn register_executor() -> Weight;
    fn unregister_executor() -> Weight;
    fn withdraw_bond() -> Weight;
    fn request_inference(n: u32) -> Weight;
    fn submit_result(n: u32) -> Weight;
    fn challenge(n: u32) -> Weight;
    fn commit_vote() -> Weight;
    fn reveal_vote() -> Weight;
    fn on_initialize(k: u32) -> Weight;
}

/// Weights using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
    fn register_executor() -> Weight {
        Weight::from_parts(25_000_000, 4_000)
            .saturating_add(T::DbWeight::get().reads(3))
            .saturating_add(T::DbWeight::get().writes(3))
    }
    fn unregister_executor() -> Weight {
        Weight::from_parts(20_000_000, 4_000)
            .saturating_add(T::DbWeight::get().reads(2))
            .saturating_add(T::DbWeight::get().writes(2))
    }
    fn withdraw_bond() -> Weight {
        Weight::from_parts(25_000_000, 4_000)
            .saturating_add(T::DbWeight::get().reads(2))
            .saturating_add(T::DbWeight::get().writes(2))
    }
    fn request_inference(n: u32) -> Weight {
        Weight::from_parts(60_000_000, 4_000)
            .saturating_add(Weight::from_parts(2_000, 0).saturating_mul(n.into()))
            .saturating_add(T::DbWeight::get().reads(6))
            .saturating_add(T::DbWeight::get().writes(6))
    }
    fn submit_result(n: u32) -> Weight {
        Weight::from_parts(45_000_000, 4_000)
            .saturating_add(Weight::from_parts(2_000, 0).saturating_mul(n.into()))
            .saturating_add(T::DbWeight::get().reads(3))
            .saturating_add(T::DbWeight::get().writes(3))
    }
    fn challenge(n: u32) -> Weight {
        Weight::from_parts(90_000_000, 4_000)
            .saturating_add(Weight::from_parts(2_000, 0).saturating_mul(n.into()))
            .saturating_add(T::DbWeight::get().reads(10))
            .saturating_add(T::DbWeight::get().writes(10))
    }
    fn commit_vote() -> Weight {
        Weight::from_parts(20_000_000, 4_000)
            .saturating_add(T::DbWeight::get().reads(1))
            .saturating_add(T::DbWeight::get().writes(1))
    }
    fn reveal_vote() -> Weight {
        Weight::from_parts(250_000_000, 4_000)
            .saturating_add(T::DbWeight::get().reads(16))
            .saturating_add(T::DbWeight::get().writes(16))
    }
    fn on_initialize(k: u32) -> Weight {
        Weight::from_parts(5_000_000, 4_000)
            .saturating_add(Weight::from_parts(120_000_000, 0).saturating_mul(k.into()))
            .saturating_add(T::DbWeight::get().reads(2_u64.saturating_mul(k.into())))
            .saturating_add(T::DbWeight::get().writes(1_u64.saturating_mul(k.into())))
    }
}

// For tests.
impl WeightInfo for () {
    fn register_executor() -> Weight {
        Weight::from_parts(25_000_000, 4_000)
            .saturating_add(ParityDbWeight::get().reads(3))
            .saturating_add(ParityDbWeight::get().writes(3))
    }
    fn unregister_executor() -> Weight {
        Weight::from_parts(20_000_000, 4_000)
            .saturating_add(ParityDbWeight::get().reads(2))
            .saturating_add(ParityDbWeight::get().writes(2))
    }
    fn withdraw_bond() -> Weight {
        Weight::from_parts(25_000_000, 4_000)
            .saturating_add(ParityDbWeight::get().reads(2))
            .saturating_add(ParityDbWeight::get().writes(2))
    }
    fn request_inference(n: u32) -> Weight {
        Weight::from_parts(60_000_000, 4_000)
            .saturating_add(Weight::from_parts(2_000, 0).saturating_mul(n.into()))
            .saturating_add(ParityDbWeight::get().reads(6))
            .saturating_add(ParityDbWeight::get().writes(6))
    }
    fn submit_result(n: u32) -> Weight {
        Weight::from_parts(45_000_000, 4_000)
            .saturating_add(Weight::from_parts(2_000, 0).saturating_mul(n.into()))
            .saturating_add(ParityDbWeight::get().reads(3))
            .saturating_add(ParityDbWeight::get().writes(3))
    }
    fn challenge(n: u32) -> Weight {
        Weight::from_parts(90_000_000, 4_000)
            .saturating_add(Weight::from_parts(2_000, 0).saturating_mul(n.into()))
            .saturating_add(ParityDbWeight::get().reads(10))
            .saturating_add(ParityDbWeight::get().writes(10))
    }
    fn commit_vote() -> Weight {
        Weight::from_parts(20_000_000, 4_000)
            .saturating_add(ParityDbWeight::get().reads(1))
            .saturating_add(ParityDbWeight::get().writes(1))
    }
    fn reveal_vote() -> Weight {
        Weight::from_parts(250_000_000, 4_000)
            .saturating_add(ParityDbWeight::get().reads(16))
            .saturating_add(ParityDbWeight::get().writes(16))
    }
    fn on_initialize(k: u32) -> Weight {
        Weight::from_parts(5_000_000, 4_000)
            .saturating_add(Weight::from_parts(120_000_000, 0).saturating_mul(k.into()))
            .saturating_add(ParityDbWeight::get().reads(2_u64.saturating_mul(k.into())))
            .saturating_add(ParityDbWeight::get().writes(1_u64.saturating_mul(k.into())))
    }
}
