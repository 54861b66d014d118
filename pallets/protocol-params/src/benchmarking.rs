//! Benchmarks (v2) for `pallet_protocol_params`: one change that keeps every bound and
//! relation, so the whole check runs and the set is written.

use super::*;
use frame_benchmarking::v2::*;
use frame_support::traits::{EnsureOrigin, Get};

#[benchmarks]
mod benches {
    use super::*;

    #[benchmark]
    fn set_parameter() -> Result<(), BenchmarkError> {
        let origin =
            T::ParamsOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
        // The fee share at its upper bound: allowed, and (in any sane runtime) not the
        // default, so the set is written.
        let max = T::MaxValues::get().protocol_fee;
        let change = ParamChange::ProtocolFee(max);
        if T::Defaults::get().protocol_fee == max {
            return Err(BenchmarkError::Weightless);
        }
        #[extrinsic_call]
        _(origin as T::RuntimeOrigin, change);
        assert_eq!(Pallet::<T>::current().protocol_fee, max);
        Ok(())
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
