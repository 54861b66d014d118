//! Benchmarks (v2) for `pallet_validators`: each call at a set one short of full (add)
//! or full (remove), so the bounded list is as long as it gets.

use super::*;
use frame_benchmarking::v2::*;
use frame_support::{
    traits::{EnsureOrigin, Get},
    BoundedVec,
};

fn fill<T: Config>(n: u32) {
    let set: alloc::vec::Vec<T::AccountId> = (0..n).map(|i| account("validator", i, 0)).collect();
    Validators::<T>::put(BoundedVec::try_from(set).expect("within MaxValidators; qed"));
}

#[benchmarks]
mod benches {
    use super::*;

    #[benchmark]
    fn add_validator() -> Result<(), BenchmarkError> {
        let origin =
            T::ValidatorOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
        fill::<T>(T::MaxValidators::get() - 1);
        let who: T::AccountId = account("new", 0, 0);
        #[extrinsic_call]
        _(origin as T::RuntimeOrigin, who.clone());
        assert!(Validators::<T>::get().contains(&who));
        Ok(())
    }

    #[benchmark]
    fn remove_validator() -> Result<(), BenchmarkError> {
        let origin =
            T::ValidatorOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
        let n = T::MaxValidators::get();
        fill::<T>(n);
        // The last one: the longest search.
        let who: T::AccountId = account("validator", n - 1, 0);
        #[extrinsic_call]
        _(origin as T::RuntimeOrigin, who.clone());
        assert!(!Validators::<T>::get().contains(&who));
        Ok(())
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
