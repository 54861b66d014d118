//! Benchmarks (v2) for `pallet_upgrades`.

use super::*;
use frame_benchmarking::v2::*;
use frame_support::traits::EnsureOrigin;
use sp_runtime::traits::Hash;

#[benchmarks]
mod benches {
    use super::*;

    #[benchmark]
    fn authorize_upgrade() -> Result<(), BenchmarkError> {
        let origin =
            T::UpgradeOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
        let hash = T::Hashing::hash(b"a runtime");
        #[extrinsic_call]
        _(origin as T::RuntimeOrigin, hash);
        frame_system::Pallet::<T>::assert_last_event(
            frame_system::Event::<T>::UpgradeAuthorized {
                code_hash: hash,
                check_version: true,
            }
            .into(),
        );
        Ok(())
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
