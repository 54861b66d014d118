//! Fees that follow load: the fee multiplier rises while blocks are fuller than
//! `TargetBlockFullness` and falls back (never below `MinimumMultiplier`) when they are
//! emptier, like `pallet_transaction_payment::TargetedFeeAdjustment`, except that a
//! block's fullness is the largest of its normal-class ref time and proof size, its
//! operational ref time **and its length** shares: a spammer who fills blocks with
//! long, light transactions (big remarks) or with failing protocol calls raises fees as
//! much as one who fills the normal class's weight.

use crate::{
    configs::{
        AdjustmentVariable, MaximumMultiplier, MinimumMultiplier, RuntimeBlockLength,
        RuntimeBlockWeights, TargetBlockFullness, TransactionByteFee,
    },
    Balance, Runtime, System,
};
use frame_support::{
    dispatch::DispatchClass,
    weights::{Weight, WeightToFee},
};
use pallet_transaction_payment::{Multiplier, MultiplierUpdate};
use sp_runtime::{
    traits::{Convert, Saturating},
    FixedPointNumber, PerThing, Perquintill,
};

/// The fee multiplier update by block load (see the module docs).
pub struct LoadFeeAdjustment;

impl LoadFeeAdjustment {
    /// The current block's fullness: the largest share of the normal class's limits
    /// (ref time, proof size) its normal extrinsics used, of the block's ref time its
    /// operational extrinsics used, or of the normal length limit all extrinsics used.
    pub fn fullness() -> Perquintill {
        let weights = RuntimeBlockWeights::get();
        let max = weights
            .get(DispatchClass::Normal)
            .max_total
            .unwrap_or(weights.max_block);
        let consumed = System::block_weight();
        let used = *consumed.get(DispatchClass::Normal);
        // Protocol moves are `Operational`: measured against the whole block, so spam
        // in that class (failed moves pay) raises fees too.
        let operational = *consumed.get(DispatchClass::Operational);
        let max_len = *RuntimeBlockLength::get().max.get(DispatchClass::Normal);
        let len: u64 = System::block_size().into();
        let share = |used: u64, max: u64| Perquintill::from_rational(used.min(max), max.max(1));
        share(used.ref_time(), max.ref_time())
            .max(share(used.proof_size(), max.proof_size()))
            .max(share(operational.ref_time(), weights.max_block.ref_time()))
            .max(share(len, u64::from(max_len)))
    }
}

impl Convert<Multiplier, Multiplier> for LoadFeeAdjustment {
    fn convert(previous: Multiplier) -> Multiplier {
        let (min, max) = (MinimumMultiplier::get(), MaximumMultiplier::get());
        let previous = previous.max(min);
        let fullness = Self::fullness();
        let target = TargetBlockFullness::get();
        let positive = fullness >= target;
        let diff = if positive {
            fullness - target
        } else {
            target - fullness
        };
        let diff = Multiplier::saturating_from_rational(diff.deconstruct(), Perquintill::ACCURACY);
        let v = AdjustmentVariable::get();
        let first = v.saturating_mul(diff);
        let second = v
            .saturating_mul(v)
            .saturating_mul(diff)
            .saturating_mul(diff)
            / Multiplier::saturating_from_integer(2);
        if positive {
            let excess = first.saturating_add(second).saturating_mul(previous);
            previous.saturating_add(excess).clamp(min, max)
        } else {
            let fall = first.saturating_sub(second).saturating_mul(previous);
            previous.saturating_sub(fall).clamp(min, max)
        }
    }
}

impl MultiplierUpdate for LoadFeeAdjustment {
    fn min() -> Multiplier {
        MinimumMultiplier::get()
    }
    fn max() -> Multiplier {
        MaximumMultiplier::get()
    }
    fn target() -> Perquintill {
        TargetBlockFullness::get()
    }
    fn variability() -> Multiplier {
        AdjustmentVariable::get()
    }
}

/// The length fee follows load too: `TransactionByteFee` per byte times the fee
/// multiplier (`pallet_transaction_payment` applies the multiplier to weight fees
/// only, so without this a spammer of long, light transactions would pay the same
/// however full blocks are).
pub struct LengthFeeByLoad;

impl WeightToFee for LengthFeeByLoad {
    type Balance = Balance;

    /// `length` carries the byte count in its ref time.
    fn weight_to_fee(length: &Weight) -> Balance {
        let base = TransactionByteFee::get().saturating_mul(u128::from(length.ref_time()));
        pallet_transaction_payment::NextFeeMultiplier::<Runtime>::get().saturating_mul_int(base)
    }
}

#[cfg(test)]
mod tests {
    use super::LoadFeeAdjustment;
    use crate::{
        configs::{MinimumMultiplier, RuntimeBlockLength, RuntimeBlockWeights},
        Runtime, System,
    };
    use frame_support::{dispatch::DispatchClass, weights::Weight};
    use pallet_transaction_payment::Multiplier;
    use sp_runtime::{traits::Convert, BuildStorage, FixedPointNumber};

    fn ext() -> sp_io::TestExternalities {
        frame_system::GenesisConfig::<Runtime>::default()
            .build_storage()
            .expect("system genesis builds")
            .into()
    }

    /// The multiplier after `blocks` blocks each filled to `fill` of the normal class.
    fn after(blocks: u32, fill: f64, start: Multiplier) -> Multiplier {
        let normal = RuntimeBlockWeights::get()
            .get(DispatchClass::Normal)
            .max_total
            .expect("the normal class has a limit");
        let used = Weight::from_parts(
            (normal.ref_time() as f64 * fill) as u64,
            (normal.proof_size() as f64 * fill) as u64,
        );
        let mut m = start;
        for _ in 0..blocks {
            System::set_block_consumed_resources(used, 0);
            m = LoadFeeAdjustment::convert(m);
        }
        m
    }

    #[test]
    fn blocks_full_by_length_raise_fees_like_blocks_full_by_weight() {
        ext().execute_with(|| {
            let one = Multiplier::saturating_from_integer(1);
            let max_len = *RuntimeBlockLength::get().max.get(DispatchClass::Normal);
            let mut by_length = one;
            for _ in 0..100 {
                // Light transactions, a full block's length.
                System::set_block_consumed_resources(Weight::zero(), max_len as usize);
                by_length = LoadFeeAdjustment::convert(by_length);
            }
            assert_eq!(by_length, after(100, 1.0, one));
            assert!(by_length > one);
        });
    }

    #[test]
    fn full_blocks_raise_fees_and_empty_blocks_bring_them_back() {
        ext().execute_with(|| {
            let one = Multiplier::saturating_from_integer(1);
            // 320 full blocks (16 minutes of stuffing) at least double the fee.
            let stuffed = after(320, 1.0, one);
            assert!(
                stuffed > Multiplier::saturating_from_integer(2),
                "{stuffed:?}"
            );
            // A block at the 25% target leaves it where it is (within rounding).
            let at_target = after(1, 0.25, stuffed);
            let drift = if at_target > stuffed {
                at_target - stuffed
            } else {
                stuffed - at_target
            };
            assert!(
                drift < Multiplier::saturating_from_rational(1, 1_000),
                "{drift:?}"
            );
            // Empty blocks lower it, never below the base fee.
            let calm = after(3_000, 0.0, stuffed);
            assert!(calm < stuffed);
            assert_eq!(calm, MinimumMultiplier::get());
            // Quiet chains stay at the base fee.
            assert_eq!(after(100, 0.1, one), one);
        });
    }

    #[test]
    fn the_length_fee_follows_the_multiplier() {
        use frame_support::weights::WeightToFee;
        ext().execute_with(|| {
            let len = Weight::from_parts(1_000, 0);
            let base = super::LengthFeeByLoad::weight_to_fee(&len);
            assert_eq!(base, 1_000 * crate::configs::TransactionByteFee::get());
            pallet_transaction_payment::NextFeeMultiplier::<Runtime>::put(
                Multiplier::saturating_from_integer(3),
            );
            assert_eq!(super::LengthFeeByLoad::weight_to_fee(&len), 3 * base);
        });
    }
}
