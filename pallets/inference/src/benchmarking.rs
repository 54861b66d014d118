//! Benchmarks (v2) for `pallet_inference`. Worst cases: the largest active set for
//! executor draws, inputs and outputs up to the configured maxima, and a reveal that
//! completes the jury and settles the dispute.

use super::*;
use crate::{challenge::vote_commitment, Pallet as Inference};
use alloc::{vec, vec::Vec};
use codec::Encode;
use frame_benchmarking::v2::*;
use frame_support::{
    pallet_prelude::*,
    traits::{fungible::Mutate, Hooks},
};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use inferchain_primitives::{
    compare::ComparisonRule,
    io::{DType, Dim, IoSpec, Payload, Tensor, TensorSpec},
    model::{ModelFormat, ModelRegistry, ModelSpec, NumericsProfile, ThreadRule},
    ModelId, RequestId, H256,
};
use sp_runtime::traits::{Bounded, One, Saturating};

const MODEL: ModelId = H256::repeat_byte(0xbe);
/// Bytes of SCALE framing around a one-tensor payload's data.
const FRAMING: u32 = 32;

fn bytes_io() -> IoSpec {
    IoSpec::Tensors(
        vec![TensorSpec {
            name: b"bytes".to_vec().try_into().expect("short; qed"),
            dtype: DType::U8,
            shape: vec![Dim::Fixed(1), Dim::Dynamic { max: u32::MAX }]
                .try_into()
                .expect("rank 2; qed"),
            allow_non_finite: false,
        }]
        .try_into()
        .expect("one tensor; qed"),
    )
}

fn payload(len: u32, fill: u8) -> Vec<u8> {
    let len = len.max(1);
    Payload::Tensors(vec![Tensor {
        dtype: DType::U8,
        shape: vec![1, len],
        data: vec![fill; len as usize],
    }])
    .encode()
}

fn setup_model<T: Config>() {
    let spec = ModelSpec {
        name: b"bench".to_vec().try_into().expect("short; qed"),
        format: ModelFormat::Onnx,
        artifact_hash: MODEL,
        input: bytes_io(),
        output: bytes_io(),
        fee: 1_000u32.into(),
        max_input_bytes: T::MaxInputBytes::get(),
        max_output_bytes: T::MaxOutputBytes::get(),
        comparison: ComparisonRule::Exact,
        numerics: NumericsProfile {
            engine_version: 1,
            compute_dtype: DType::F32,
            threads: ThreadRule::Any,
        },
        artifact_uri: None,
    };
    if T::Models::model(&MODEL).is_none() {
        T::Models::register_for_benchmark(spec).expect("the bench model is valid; qed");
    }
}

fn funded<T: Config>(name: &'static str, i: u32) -> T::AccountId {
    let who: T::AccountId = account(name, i, 0);
    // Enough for a bond of 10x the minimum, fees and challenge bonds, without the
    // issuance of ~130 such accounts overflowing.
    T::Currency::set_balance(
        &who,
        T::MinExecutorBond::get().saturating_mul(1_000u32.into()),
    );
    who
}

/// Registers executors until `count` are active (genesis may hold some already); the
/// active set's worst case is `MaxExecutors`. Returns the active set.
fn executors<T: Config>(count: u32) -> Vec<T::AccountId> {
    let mut i = 0u32;
    while (ActiveExecutors::<T>::get().len() as u32) < count {
        let who = funded::<T>("executor", i);
        i = i.saturating_add(1);
        if Executors::<T>::contains_key(&who) {
            continue;
        }
        Inference::<T>::do_register_executor(
            who,
            T::MinExecutorBond::get().saturating_mul(10u32.into()),
        )
        .expect("a funded executor registers; qed");
    }
    ActiveExecutors::<T>::get().into_inner()
}

fn request<T: Config>(input_len: u32) -> (RequestId, T::AccountId) {
    setup_model::<T>();
    let requester = funded::<T>("requester", 0);
    let input: BoundedVec<u8, T::MaxInputBytes> = payload(input_len, 1)
        .try_into()
        .expect("within the maximum; qed");
    let id =
        Inference::<T>::do_request(requester.clone(), MODEL, input, BalanceOf::<T>::max_value())
            .expect("the request is valid; qed");
    (id, requester)
}

fn posted<T: Config>() -> (RequestId, T::AccountId) {
    let (id, _) = request::<T>(64);
    let executor = Requests::<T>::get(id).expect("just made; qed").executor;
    let output = payload(64, 2).try_into().expect("small; qed");
    Inference::<T>::do_submit_result(executor.clone(), id, output, None)
        .expect("the executor posts; qed");
    (id, executor)
}

fn disputed<T: Config>() -> (RequestId, Vec<T::AccountId>) {
    let (id, executor) = posted::<T>();
    let challenger = ActiveExecutors::<T>::get()
        .into_iter()
        .find(|a| *a != executor)
        .expect("several executors are active; qed");
    let output = payload(64, 3).try_into().expect("small; qed");
    Inference::<T>::do_challenge(challenger, id, output).expect("the challenge is valid; qed");
    let jury = Disputes::<T>::get(id)
        .expect("just opened; qed")
        .jury
        .into_iter()
        .map(|(j, _)| j)
        .collect();
    (id, jury)
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn register_executor() {
        executors::<T>(T::MaxExecutors::get().saturating_sub(1));
        let who = funded::<T>("new", 0);
        let bond = T::MinExecutorBond::get();
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), bond);
        assert!(Executors::<T>::contains_key(&who));
    }

    #[benchmark]
    fn unregister_executor() {
        let all = executors::<T>(T::MaxExecutors::get());
        let who = all[all.len() - 1].clone();
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));
        assert!(!ActiveExecutors::<T>::get().contains(&who));
    }

    #[benchmark]
    fn withdraw_bond() {
        let who = funded::<T>("leaving", 0);
        Inference::<T>::do_register_executor(who.clone(), T::MinExecutorBond::get())
            .expect("a funded executor registers; qed");
        Inference::<T>::do_unregister_executor(who.clone()).expect("active; qed");
        frame_system::Pallet::<T>::set_block_number(
            frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingPeriod::get()),
        );
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));
        assert!(!Executors::<T>::contains_key(&who));
    }

    #[benchmark]
    fn request_inference(n: Linear<1, { T::MaxInputBytes::get().saturating_sub(FRAMING) }>) {
        executors::<T>(T::MaxExecutors::get());
        setup_model::<T>();
        let requester = funded::<T>("requester", 0);
        let input: BoundedVec<u8, T::MaxInputBytes> =
            payload(n, 1).try_into().expect("bounded; qed");
        #[extrinsic_call]
        _(
            RawOrigin::Signed(requester),
            MODEL,
            input,
            BalanceOf::<T>::max_value(),
        );
        assert!(Requests::<T>::contains_key(0));
    }

    #[benchmark]
    fn submit_result(n: Linear<1, { T::MaxOutputBytes::get().saturating_sub(FRAMING) }>) {
        executors::<T>(T::JurySize::get().saturating_add(2));
        let (id, _) = request::<T>(64);
        let executor = Requests::<T>::get(id).expect("just made; qed").executor;
        let output: BoundedVec<u8, T::MaxOutputBytes> =
            payload(n, 2).try_into().expect("bounded; qed");
        #[extrinsic_call]
        _(RawOrigin::Signed(executor), id, output);
        assert!(Results::<T>::contains_key(id));
    }

    #[benchmark]
    fn challenge(n: Linear<1, { T::MaxOutputBytes::get().saturating_sub(FRAMING) }>) {
        executors::<T>(T::MaxExecutors::get());
        let (id, executor) = posted::<T>();
        let challenger = ActiveExecutors::<T>::get()
            .into_iter()
            .find(|a| *a != executor)
            .expect("many; qed");
        let output: BoundedVec<u8, T::MaxOutputBytes> =
            payload(n, 3).try_into().expect("bounded; qed");
        #[extrinsic_call]
        _(RawOrigin::Signed(challenger), id, output);
        assert!(Disputes::<T>::contains_key(id));
    }

    #[benchmark]
    fn commit_vote() {
        executors::<T>(T::JurySize::get().saturating_add(2));
        let (id, jury) = disputed::<T>();
        let juror = jury[0].clone();
        let vote = Vote {
            executor_ok: true,
            challenger_ok: false,
        };
        let commitment = vote_commitment(id, &juror, &vote, &[7u8; 32]);
        #[extrinsic_call]
        _(RawOrigin::Signed(juror), id, commitment);
        assert!(matches!(
            Disputes::<T>::get(id).expect("open; qed").jury[0].1,
            Ballot::Committed(_)
        ));
    }

    #[benchmark]
    fn reveal_vote() {
        executors::<T>(T::JurySize::get().saturating_add(2));
        let (id, jury) = disputed::<T>();
        let vote = Vote {
            executor_ok: false,
            challenger_ok: true,
        };
        for juror in &jury {
            let c = vote_commitment(id, juror, &vote, &[7u8; 32]);
            Inference::<T>::do_commit_vote(juror.clone(), id, c).expect("a juror commits; qed");
        }
        let commit_end = Disputes::<T>::get(id).expect("open; qed").commit_end;
        frame_system::Pallet::<T>::set_block_number(commit_end.saturating_add(One::one()));
        let (last, others) = jury.split_last().expect("a jury has jurors; qed");
        for juror in others {
            Inference::<T>::do_reveal_vote(juror.clone(), id, vote, [7u8; 32]).expect("valid; qed");
        }
        #[extrinsic_call]
        _(RawOrigin::Signed(last.clone()), id, vote, [7u8; 32]);
        // The last reveal settled the dispute.
        assert!(!Disputes::<T>::contains_key(id));
    }

    #[benchmark]
    fn on_initialize(k: Linear<0, { T::MaxDeadlinesPerBlock::get() }>) {
        executors::<T>(T::JurySize::get().saturating_add(2));
        let now = frame_system::Pallet::<T>::block_number();
        for _ in 0..k {
            posted::<T>();
        }
        let window_end: BlockNumberFor<T> = now.saturating_add(T::ChallengePeriod::get());
        QueueCursor::<T>::put(window_end);
        frame_system::Pallet::<T>::set_block_number(window_end);
        #[block]
        {
            Inference::<T>::on_initialize(window_end);
        }
        assert_eq!(DeadlineQueue::<T>::iter_prefix(window_end).count(), 0);
    }

    impl_benchmark_test_suite!(Inference, crate::mock::new_test_ext(), crate::mock::Test);
}
