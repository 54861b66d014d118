//! The off-chain worker against the mock runtime: a fake inference runner behind the real
//! host function, the test transaction pool and off-chain storage. Every transaction the
//! worker sends is decoded and dispatched as its signer. These tests drive the executor's
//! duties and the worker's budget on the tensor model's one-step plan; the game itself
//! is `offchain_game_tests`'.

#![allow(clippy::unwrap_used)]

use crate::{
    mock::*,
    offchain::{Fault, FAULT_KEY},
    Call, RequestStatus, Requests,
};
use codec::Decode;
use frame_support::{assert_ok, traits::Hooks, BoundedVec};
use inferchain_primitives::{
    host::{InferenceError, InferenceExt, InferenceRunner, TraceAnswer, TraceAsk, TraceRun},
    io::{IoSpec, Payload},
    ModelId,
};
use sp_core::offchain::{
    testing::{TestOffchainExt, TestTransactionPoolExt},
    OffchainDbExt, OffchainWorkerExt, TransactionPoolExt,
};
use sp_runtime::{
    generic::Preamble, offchain::storage::StorageValueRef, testing::UintAuthorityId,
    traits::Dispatchable,
};
use std::sync::{
    atomic::{AtomicU32, Ordering},
    Arc,
};

/// The "model": doubles every input value, a one-step plan (its trace is its output's
/// leaf); a corrupted run adds 1 to each value. `fails_with` makes every run fail with
/// that error (a node without the model, or past its limits); `runs` counts the runs
/// asked for.
#[derive(Default)]
struct Doubler {
    fails_with: Option<InferenceError>,
    runs: AtomicU32,
}

impl Doubler {
    fn double(input: &[u8], spec: &IoSpec, plus: f64) -> Result<Vec<u8>, InferenceError> {
        let Ok(Payload::Tensors(ts)) = inferchain_primitives::io::validate_encoded(input, spec)
        else {
            return Err(InferenceError::InvalidInput);
        };
        let values: Vec<f32> = ts[0]
            .to_f64_vec()
            .unwrap()
            .into_iter()
            .map(|v| (2.0 * v + plus) as f32)
            .collect();
        Ok(tensor(&values))
    }
}

impl InferenceRunner for Doubler {
    fn run(
        &self,
        _: ModelId,
        input: &[u8],
        spec: &IoSpec,
        _: &inferchain_primitives::model::NumericsProfile,
        _: Option<&[u8]>,
    ) -> Result<Vec<u8>, InferenceError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = &self.fails_with {
            return Err(e.clone());
        }
        Self::double(input, spec, 0.0)
    }

    fn trace(
        &self,
        model: &inferchain_primitives::host::TracedModel,
        input: &[u8],
        run: TraceRun,
        ask: TraceAsk,
    ) -> Result<TraceAnswer, InferenceError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = &self.fails_with {
            return Err(e.clone());
        }
        let plus = match run {
            TraceRun::Honest | TraceRun::Against(_) => 0.0,
            TraceRun::Corrupted { .. } => 1.0,
        };
        let output = Self::double(input, &model.spec, plus)?;
        Ok(match ask {
            TraceAsk::Commit => TraceAnswer::Commit {
                trace: one_step_trace(&output),
                output,
                output_path: Vec::new(),
            },
            _ => TraceAnswer::OutOfRange,
        })
    }
}

/// A transaction the worker sent: who signed it and what it calls.
pub(crate) type Sent = (AccountId, RuntimeCall);

/// The mock chain with off-chain extensions; the closure drains the pool.
pub(crate) fn offchain_ext(
    runner: Arc<dyn InferenceRunner>,
) -> (sp_io::TestExternalities, impl Fn() -> Vec<Sent>) {
    let mut ext = new_test_ext();
    let (offchain, _) = TestOffchainExt::new();
    let (pool, pool_state) = TestTransactionPoolExt::new();
    ext.register_extension(OffchainDbExt::new(offchain.clone()));
    ext.register_extension(OffchainWorkerExt::new(offchain));
    ext.register_extension(TransactionPoolExt::new(pool));
    ext.register_extension(InferenceExt(runner));
    let drain = move || {
        let txs: Vec<Vec<u8>> = pool_state.write().transactions.drain(..).collect();
        txs.into_iter()
            .map(|bytes| {
                let xt = Extrinsic::decode(&mut &bytes[..]).unwrap();
                let Preamble::Signed(who, _, _) = xt.preamble else {
                    panic!("the worker sends signed transactions only")
                };
                (who, xt.function)
            })
            .collect()
    };
    (ext, drain)
}

/// Makes `keys` the node's executor keys and runs its off-chain worker at this block.
pub(crate) fn run_worker(keys: &[AccountId]) {
    UintAuthorityId::set_all_keys(keys.iter().copied());
    Inference::offchain_worker(System::block_number());
}

fn dispatch((who, call): Sent) {
    assert_ok!(call.dispatch(RuntimeOrigin::signed(who)));
    // As a signed transaction's inclusion does.
    System::inc_account_nonce(who);
}

pub(crate) fn register(executors: &[AccountId]) {
    for e in executors {
        assert_ok!(bond_and_serve(*e, 1_000));
    }
}

/// A request of the tensor model from account 20.
pub(crate) fn request(input: &[f32]) -> u64 {
    request_of(TENSOR_MODEL, input)
}

/// A request of `model` from account 20.
pub(crate) fn request_of(model: ModelId, input: &[f32]) -> u64 {
    let id = crate::NextRequestId::<Test>::get();
    assert_ok!(Inference::request_inference(
        RuntimeOrigin::signed(20),
        model,
        tensor(input).try_into().unwrap(),
        FEE
    ));
    id
}

fn bounded(v: Vec<u8>) -> BoundedVec<u8, MaxOutputBytes> {
    v.try_into().unwrap()
}

const EXECUTORS: [AccountId; 6] = [1, 2, 3, 4, 5, 6];

#[test]
fn the_assigned_executor_posts_the_result_once() {
    let runner = Arc::new(Doubler::default());
    let (mut ext, drain) = offchain_ext(runner.clone());
    ext.execute_with(|| {
        register(&EXECUTORS);
        let id = request(&[1.0, 2.5]);
        let executor = Requests::<Test>::get(id).unwrap().executor;
        let others: Vec<AccountId> = EXECUTORS
            .iter()
            .copied()
            .filter(|e| *e != executor)
            .collect();

        // A node without the assigned key does nothing for a pending request.
        run_worker(&others);
        assert!(drain().is_empty());

        run_worker(&[executor]);
        let sent = drain();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0],
            (
                executor,
                RuntimeCall::Inference(Call::submit_traced_result {
                    id,
                    output: bounded(tensor(&[2.0, 5.0])),
                    trace: one_step_trace(&tensor(&[2.0, 5.0])),
                    output_path: Default::default(),
                })
            )
        );
        // The same block again (e.g. a re-org or a second import): the lock holds.
        run_worker(&[executor]);
        assert!(drain().is_empty());
        assert_eq!(runner.runs.load(Ordering::SeqCst), 1);

        sent.into_iter().for_each(dispatch);
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Submitted { .. }
        ));
        Inference::do_try_state().unwrap();
    });
}

/// A transaction the pool lost (on a fork, say) is submitted again with its nonce in
/// the next block, without running the model again, until the chain takes its nonce.
#[test]
fn a_send_the_pool_lost_is_submitted_again_until_it_lands() {
    let runner = Arc::new(Doubler::default());
    let (mut ext, drain) = offchain_ext(runner.clone());
    ext.execute_with(|| {
        register(&EXECUTORS);
        let id = request(&[1.0, 2.5]);
        let executor = Requests::<Test>::get(id).unwrap().executor;
        let nonce = System::account_nonce(executor);
        run_worker(&[executor]);
        let sent = drain(); // and lost: never dispatched
        assert_eq!(sent.len(), 1);
        // Its call is kept under its own nonce, the chain's next for the executor.
        let key = crate::offchain_sender::call_key(&executor, nonce);
        let kept = StorageValueRef::persistent(&key).get::<Vec<u8>>().unwrap();
        let RuntimeCall::Inference(call) = &sent[0].1 else {
            panic!("an inference call")
        };
        assert_eq!(kept, Some(codec::Encode::encode(call)));
        // Not again in the block it was sent in.
        run_worker(&[executor]);
        assert!(drain().is_empty());

        run_to_block(System::block_number() + 1);
        run_worker(&[executor]);
        assert_eq!(drain(), sent, "the lost result is submitted again");
        assert_eq!(runner.runs.load(Ordering::SeqCst), 1, "from the kept call");

        // Once it lands, nothing is sent again, and its kept call is gone.
        let again = sent.clone();
        again.into_iter().for_each(dispatch);
        run_to_block(System::block_number() + 1);
        run_worker(&[executor]);
        assert!(drain().is_empty());
        assert_eq!(
            StorageValueRef::persistent(&key).get::<Vec<u8>>().unwrap(),
            None
        );
        // And the record no longer counts it, so it is not cleared again every block.
        let (record_key, _) = crate::offchain_sender::storage_keys(&executor);
        let record = StorageValueRef::persistent(&record_key)
            .get::<crate::offchain_sender::NonceRecord<
                <Test as frame_system::Config>::Nonce,
                frame_system::pallet_prelude::BlockNumberFor<Test>,
            >>()
            .unwrap()
            .unwrap();
        assert!(record.sent.is_empty(), "{:?}", record.sent);
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Submitted { .. }
        ));
    });
}

#[test]
fn a_wrong_output_fault_posts_a_well_formed_wrong_result() {
    let (mut ext, drain) = offchain_ext(Arc::new(Doubler::default()));
    ext.execute_with(|| {
        register(&EXECUTORS);
        StorageValueRef::persistent(FAULT_KEY).set(&Fault::WrongOutput);
        let id = request(&[1.0, 2.0]);
        let executor = Requests::<Test>::get(id).unwrap().executor;
        run_worker(&[executor]);
        let sent = drain();
        let RuntimeCall::Inference(Call::submit_traced_result { output, trace, .. }) = &sent[0].1
        else {
            panic!("a result")
        };
        // The run with the plan's middle step corrupted, and a trace that ends in it.
        assert_eq!(output.to_vec(), tensor(&[3.0, 5.0]));
        assert_eq!(*trace, one_step_trace(output));
        // The chain accepts it: it is well formed, just wrong.
        sent.into_iter().for_each(dispatch);
    });
}

#[test]
fn a_no_output_fault_stays_silent() {
    let (mut ext, drain) = offchain_ext(Arc::new(Doubler::default()));
    ext.execute_with(|| {
        register(&EXECUTORS);
        let id = request(&[1.0]);
        let executor = Requests::<Test>::get(id).unwrap().executor;
        StorageValueRef::persistent(FAULT_KEY).set(&Fault::NoOutput);
        run_worker(&[executor]);
        assert!(drain().is_empty());
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Pending { .. }
        ));
    });
}

#[test]
fn a_node_without_the_model_or_past_its_limits_hands_the_request_back_once() {
    for error in [
        InferenceError::ModelUnavailable,
        InferenceError::OutOfMemory,
        InferenceError::CpuTimeExceeded,
        InferenceError::DeadlineExceeded,
        InferenceError::WorkerCrashed,
    ] {
        hands_back_once_on(error);
    }
}

fn hands_back_once_on(error: InferenceError) {
    let over_limits = error.is_limit();
    let reason = if over_limits {
        crate::ReleaseReason::OverLimits
    } else {
        crate::ReleaseReason::CannotServeModel
    };
    let runner = Arc::new(Doubler {
        fails_with: Some(error),
        ..Default::default()
    });
    let (mut ext, drain) = offchain_ext(runner.clone());
    ext.execute_with(|| {
        register(&EXECUTORS);
        let id = request(&[1.0]);
        let executor = Requests::<Test>::get(id).unwrap().executor;
        run_worker(&[executor]);
        let sent = drain();
        assert_eq!(
            sent,
            vec![(
                executor,
                RuntimeCall::Inference(Call::release_assignment { id, reason })
            )]
        );
        // Not asked again inside the lock period.
        run_worker(&[executor]);
        assert!(drain().is_empty());
        assert_eq!(runner.runs.load(Ordering::SeqCst), 1);
        // On chain: the request re-drawn at once, nothing slashed now. A node that cannot
        // serve the model drops it (and is slashed later only if another executor's
        // result is finalized); a run past the node's limits keeps it and costs nothing.
        sent.into_iter().for_each(dispatch);
        let request = Requests::<Test>::get(id).unwrap();
        assert_ne!(request.executor, executor);
        assert_eq!(request.attempt, 2);
        assert_eq!(
            crate::Service::<Test>::get(executor)
                .models
                .contains(&TENSOR_MODEL),
            over_limits
        );
        assert_eq!(crate::Executors::<Test>::get(executor).unwrap().bond, 1_000);
        let recorded = if over_limits { vec![] } else { vec![executor] };
        assert_eq!(crate::ReleasedBy::<Test>::get(id).to_vec(), recorded);
        Inference::do_try_state().unwrap();
    });
}

#[test]
fn without_executor_keys_the_worker_does_nothing() {
    let runner = Arc::new(Doubler::default());
    let (mut ext, drain) = offchain_ext(runner.clone());
    ext.execute_with(|| {
        register(&EXECUTORS);
        request(&[1.0]);
        run_worker(&[]);
        assert!(drain().is_empty());
        assert_eq!(runner.runs.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn the_model_runs_per_block_are_bounded() {
    let runner = Arc::new(Doubler::default());
    let (mut ext, drain) = offchain_ext(runner.clone());
    ext.execute_with(|| {
        register(&EXECUTORS);
        for i in 0..10 {
            request(&[i as f32]);
        }
        run_worker(&EXECUTORS);
        assert_eq!(drain().len() as u32, MaxOffchainRuns::get());
        assert_eq!(runner.runs.load(Ordering::SeqCst), MaxOffchainRuns::get());
    });
}

#[test]
fn answering_comes_before_watching_when_the_budget_is_short() {
    let runner = Arc::new(Doubler::default());
    let (mut ext, drain) = offchain_ext(runner.clone());
    ext.execute_with(|| {
        register(&EXECUTORS);
        let me = 1;
        // Results to watch, whose windows end before the new requests' deadlines (so
        // they come first in the deadline queue)...
        for i in 0..12 {
            let id = request(&[i as f32]);
            let executor = Requests::<Test>::get(id).unwrap().executor;
            assert_ok!(submit(executor, id, tensor(&[2.0 * i as f32])));
        }
        run_to_block(3);
        let mine: Vec<u64> = (0..30)
            .map(|i| request(&[i as f32]))
            .filter(|id| Requests::<Test>::get(id).unwrap().executor == me)
            .collect();
        assert!(
            mine.len() as u32 >= MaxOffchainRuns::get(),
            "the draw gave executor 1 enough"
        );
        // ...yet the whole budget goes to the requests assigned to this node.
        run_worker(&[me]);
        let answers = drain()
            .iter()
            .filter(|(_, c)| matches!(c, RuntimeCall::Inference(Call::submit_traced_result { .. })))
            .count() as u32;
        assert_eq!(answers, MaxOffchainRuns::get());
        assert_eq!(runner.runs.load(Ordering::SeqCst), MaxOffchainRuns::get());
    });
}

#[test]
fn the_assigned_executor_answers_a_batch_in_one_transaction() {
    let runner = Arc::new(Doubler::default());
    let (mut ext, drain) = offchain_ext(runner.clone());
    ext.execute_with(|| {
        register(&EXECUTORS);
        let first = crate::NextRequestId::<Test>::get();
        // One request more than a worker runs per block.
        let runs = MaxOffchainRuns::get() as u64;
        let inputs: Vec<BoundedVec<u8, MaxInputBytes>> = (0..=runs)
            .map(|i| tensor(&[i as f32]).try_into().unwrap())
            .collect();
        assert_ok!(Inference::request_batch(
            RuntimeOrigin::signed(20),
            TENSOR_MODEL,
            inputs.try_into().unwrap(),
            FEE
        ));
        let executor = Requests::<Test>::get(first).unwrap().executor;
        run_worker(&[executor]);
        let sent = drain();
        assert_eq!(sent.len(), 1, "one transaction for the whole batch");
        let result = |i: u64| {
            let output = tensor(&[2.0 * i as f32]);
            (
                first + i,
                bounded(output.clone()),
                one_step_trace(&output),
                Default::default(),
            )
        };
        let expected = |ids: core::ops::Range<u64>| {
            RuntimeCall::Inference(Call::submit_results {
                results: ids.map(result).collect::<Vec<_>>().try_into().unwrap(),
            })
        };
        // As many as the worker runs per block, in one transaction.
        assert_eq!(sent[0], (executor, expected(0..runs)));
        assert_eq!(runner.runs.load(Ordering::SeqCst), runs as u32);
        // The next run answers the rest, not those again (their locks hold).
        run_worker(&[executor]);
        let rest = drain();
        assert_eq!(rest, vec![(executor, expected(runs..runs + 1))]);
        run_worker(&[executor]);
        assert!(drain().is_empty());
        sent.into_iter().chain(rest).for_each(dispatch);
        assert!((first..=first + runs).all(|id| matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Submitted { .. }
        )));
        Inference::do_try_state().unwrap();
    });
}
