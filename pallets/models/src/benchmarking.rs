//! Benchmarks (v2) for `pallet_models`: the worst case of each call is the largest spec
//! the bounds allow.

use super::*;
use frame_benchmarking::v2::*;
use frame_support::traits::{EnsureOrigin, Get};
use inferchain_primitives::{
    compare::ComparisonRule,
    io::{DType, Dim, IoSpec, TensorSpec, MAX_NAME_LEN, MAX_RANK, MAX_TENSORS},
    model::{ModelFormat, NumericsProfile, ThreadRule, MAX_MODEL_NAME_LEN, MAX_URI_LEN},
    H256,
};

fn largest_io() -> IoSpec {
    let tensor = TensorSpec {
        name: alloc::vec![b'n'; MAX_NAME_LEN as usize]
            .try_into()
            .expect("within bound; qed"),
        dtype: DType::F32,
        shape: alloc::vec![Dim::Dynamic { max: 512 }; MAX_RANK as usize]
            .try_into()
            .expect("within bound; qed"),
        allow_non_finite: false,
    };
    IoSpec::Tensors(
        alloc::vec![tensor; MAX_TENSORS as usize]
            .try_into()
            .expect("within bound; qed"),
    )
}

fn largest_spec<T: Config>(seed: u8) -> ModelSpec<T::Balance> {
    ModelSpec {
        name: alloc::vec![b'm'; MAX_MODEL_NAME_LEN as usize]
            .try_into()
            .expect("within bound; qed"),
        format: ModelFormat::Onnx,
        artifact_hash: H256::repeat_byte(seed),
        input: largest_io(),
        output: largest_io(),
        fee: 1_000u32.into(),
        max_input_bytes: T::MaxInputBytes::get(),
        max_output_bytes: T::MaxOutputBytes::get(),
        comparison: ComparisonRule::Tolerance {
            abs_ppb: 1,
            rel_ppb: 1,
        },
        numerics: NumericsProfile {
            engine_version: 1,
            compute_dtype: DType::F32,
            threads: ThreadRule::Any,
        },
        cost: inferchain_primitives::model::ModelCost {
            flops: 1,
            peak_memory_bytes: 1,
        },
        artifact_uri: Some({
            // The longest address the registry accepts.
            let mut uri = b"http://mirror/".to_vec();
            uri.resize(MAX_URI_LEN as usize, b'a');
            uri.try_into().expect("within bound; qed")
        }),
    }
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn register_model() -> Result<(), BenchmarkError> {
        let origin =
            T::RegisterOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
        let spec = largest_spec::<T>(1);
        #[extrinsic_call]
        _(origin as T::RuntimeOrigin, spec);
        assert!(Models::<T>::contains_key(H256::repeat_byte(1)));
        Ok(())
    }

    #[benchmark]
    fn set_model_status() -> Result<(), BenchmarkError> {
        let origin =
            T::RegisterOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
        Pallet::<T>::do_register(largest_spec::<T>(2)).map_err(|_| BenchmarkError::Weightless)?;
        #[extrinsic_call]
        _(
            origin as T::RuntimeOrigin,
            H256::repeat_byte(2),
            ModelStatus::Deprecated,
        );
        assert_eq!(
            Models::<T>::get(H256::repeat_byte(2)).map(|m| m.status),
            Some(ModelStatus::Deprecated)
        );
        Ok(())
    }

    #[benchmark]
    fn set_model_fee() -> Result<(), BenchmarkError> {
        let origin =
            T::RegisterOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
        Pallet::<T>::do_register(largest_spec::<T>(3)).map_err(|_| BenchmarkError::Weightless)?;
        #[extrinsic_call]
        _(
            origin as T::RuntimeOrigin,
            H256::repeat_byte(3),
            7u32.into(),
        );
        assert_eq!(
            Models::<T>::get(H256::repeat_byte(3)).map(|m| m.spec.fee),
            Some(7u32.into())
        );
        Ok(())
    }

    #[benchmark]
    fn set_model_commitments() -> Result<(), BenchmarkError> {
        let origin =
            T::RegisterOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
        Pallet::<T>::do_register(largest_spec::<T>(4)).map_err(|_| BenchmarkError::Weightless)?;
        let commitments = ModelCommitments {
            plan_root: H256::repeat_byte(5),
            steps: u32::MAX,
            weights_root: H256::repeat_byte(6),
            weights: u32::MAX,
        };
        #[extrinsic_call]
        _(
            origin as T::RuntimeOrigin,
            H256::repeat_byte(4),
            commitments,
        );
        assert_eq!(
            Commitments::<T>::get(H256::repeat_byte(4)),
            Some(commitments)
        );
        Ok(())
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
