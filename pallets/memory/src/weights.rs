//! Weights for `pallet_memory`.
//!
//! **Not generated yet**: these are estimates, to be replaced by
//! `scripts/benchmark.sh pallet_memory` (the benchmarks exist and run as tests): the
//! reads and writes each path makes at the runtime's database weights, plus a compute
//! figure of the same order as pallet-inference's measured calls; `recall` is
//! 2 µs of compute and one read of a ~2.4 KB memory per memory, above what the native
//! timing in `tests::recall_latency` measured.
//! Regenerate rather than edit.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens, unused_imports, missing_docs, dead_code)]

use core::marker::PhantomData;
use frame_support::{traits::Get, weights::{constants::ParityDbWeight, Weight}};

/// Weight functions needed for `pallet_memory`.
pub trait WeightInfo {
    fn create_space() -> Weight;
    fn remember(l: u32) -> Weight;
    fn forget() -> Weight;
    fn grant() -> Weight;
    fn revoke() -> Weight;
    fn close_space(g: u32) -> Weight;
    fn on_embedding_final() -> Weight;
    fn recall(n: u32) -> Weight;
    fn ask() -> Weight;
    fn answer(n: u32) -> Weight;
    fn clear_answer() -> Weight;
}

/// Weights using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
    fn create_space() -> Weight {
        Weight::from_parts(30_000_000, 6000)
            .saturating_add(T::DbWeight::get().reads(2_u64))
            .saturating_add(T::DbWeight::get().writes(3_u64))
    }
    fn remember(l: u32) -> Weight {
        Weight::from_parts(40_000_000, 6000)
            .saturating_add(T::DbWeight::get().reads(4_u64))
            .saturating_add(T::DbWeight::get().writes(4_u64))
            .saturating_add(Weight::from_parts(2_000_u64.saturating_mul(l as u64), 0))
    }
    fn forget() -> Weight {
        Weight::from_parts(40_000_000, 6000)
            .saturating_add(T::DbWeight::get().reads(5_u64))
            .saturating_add(T::DbWeight::get().writes(5_u64))
    }
    fn grant() -> Weight {
        Weight::from_parts(25_000_000, 6000)
            .saturating_add(T::DbWeight::get().reads(2_u64))
            .saturating_add(T::DbWeight::get().writes(2_u64))
    }
    fn revoke() -> Weight {
        Weight::from_parts(25_000_000, 6000)
            .saturating_add(T::DbWeight::get().reads(2_u64))
            .saturating_add(T::DbWeight::get().writes(2_u64))
    }
    fn close_space(g: u32) -> Weight {
        Weight::from_parts(30_000_000, 6000)
            .saturating_add(T::DbWeight::get().reads(2_u64))
            .saturating_add(T::DbWeight::get().writes(3_u64))
            .saturating_add(T::DbWeight::get().writes(g as u64))
    }
    fn on_embedding_final() -> Weight {
        Weight::from_parts(60_000_000, 6000)
            .saturating_add(T::DbWeight::get().reads(5_u64))
            .saturating_add(T::DbWeight::get().writes(4_u64))
    }
    fn recall(n: u32) -> Weight {
        Weight::from_parts(20_000_000, 6000)
            .saturating_add(T::DbWeight::get().reads(1_u64))
            .saturating_add(T::DbWeight::get().writes(0_u64))
            .saturating_add(Weight::from_parts(2_000_000_u64.saturating_mul(n as u64), 2_400_u64.saturating_mul(n as u64)))
            .saturating_add(T::DbWeight::get().reads(n as u64))
    }
    fn ask() -> Weight {
        Weight::from_parts(30_000_000, 6000)
            .saturating_add(T::DbWeight::get().reads(3_u64))
            .saturating_add(T::DbWeight::get().writes(2_u64))
    }
    fn answer(n: u32) -> Weight {
        Weight::from_parts(60_000_000, 6000)
            .saturating_add(T::DbWeight::get().reads(6_u64))
            .saturating_add(T::DbWeight::get().writes(20_u64))
            .saturating_add(Weight::from_parts(2_000_000_u64.saturating_mul(n as u64), 2_400_u64.saturating_mul(n as u64)))
            .saturating_add(T::DbWeight::get().reads(n as u64))
    }
    fn clear_answer() -> Weight {
        Weight::from_parts(25_000_000, 6000)
            .saturating_add(T::DbWeight::get().reads(2_u64))
            .saturating_add(T::DbWeight::get().writes(2_u64))
    }
}

// For tests: the same figures over ParityDB's weights.
impl WeightInfo for () {
    fn create_space() -> Weight {
        Weight::from_parts(30_000_000, 6000)
            .saturating_add(ParityDbWeight::get().reads(2_u64))
            .saturating_add(ParityDbWeight::get().writes(3_u64))
    }
    fn remember(l: u32) -> Weight {
        Weight::from_parts(40_000_000, 6000)
            .saturating_add(ParityDbWeight::get().reads(4_u64))
            .saturating_add(ParityDbWeight::get().writes(4_u64))
            .saturating_add(Weight::from_parts(2_000_u64.saturating_mul(l as u64), 0))
    }
    fn forget() -> Weight {
        Weight::from_parts(40_000_000, 6000)
            .saturating_add(ParityDbWeight::get().reads(5_u64))
            .saturating_add(ParityDbWeight::get().writes(5_u64))
    }
    fn grant() -> Weight {
        Weight::from_parts(25_000_000, 6000)
            .saturating_add(ParityDbWeight::get().reads(2_u64))
            .saturating_add(ParityDbWeight::get().writes(2_u64))
    }
    fn revoke() -> Weight {
        Weight::from_parts(25_000_000, 6000)
            .saturating_add(ParityDbWeight::get().reads(2_u64))
            .saturating_add(ParityDbWeight::get().writes(2_u64))
    }
    fn close_space(g: u32) -> Weight {
        Weight::from_parts(30_000_000, 6000)
            .saturating_add(ParityDbWeight::get().reads(2_u64))
            .saturating_add(ParityDbWeight::get().writes(3_u64))
            .saturating_add(ParityDbWeight::get().writes(g as u64))
    }
    fn on_embedding_final() -> Weight {
        Weight::from_parts(60_000_000, 6000)
            .saturating_add(ParityDbWeight::get().reads(5_u64))
            .saturating_add(ParityDbWeight::get().writes(4_u64))
    }
    fn recall(n: u32) -> Weight {
        Weight::from_parts(20_000_000, 6000)
            .saturating_add(ParityDbWeight::get().reads(1_u64))
            .saturating_add(ParityDbWeight::get().writes(0_u64))
            .saturating_add(Weight::from_parts(2_000_000_u64.saturating_mul(n as u64), 2_400_u64.saturating_mul(n as u64)))
            .saturating_add(ParityDbWeight::get().reads(n as u64))
    }
    fn ask() -> Weight {
        Weight::from_parts(30_000_000, 6000)
            .saturating_add(ParityDbWeight::get().reads(3_u64))
            .saturating_add(ParityDbWeight::get().writes(2_u64))
    }
    fn answer(n: u32) -> Weight {
        Weight::from_parts(60_000_000, 6000)
            .saturating_add(ParityDbWeight::get().reads(6_u64))
            .saturating_add(ParityDbWeight::get().writes(20_u64))
            .saturating_add(Weight::from_parts(2_000_000_u64.saturating_mul(n as u64), 2_400_u64.saturating_mul(n as u64)))
            .saturating_add(ParityDbWeight::get().reads(n as u64))
    }
    fn clear_answer() -> Weight {
        Weight::from_parts(25_000_000, 6000)
            .saturating_add(ParityDbWeight::get().reads(2_u64))
            .saturating_add(ParityDbWeight::get().writes(2_u64))
    }
}
