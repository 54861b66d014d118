//! The off-chain worker against the mock runtime: a fake inference runner behind the real
//! host function, the test transaction pool and off-chain storage. Every transaction the
//! worker sends is decoded and dispatched as its signer, so these tests drive the whole
//! executor → watcher → jury path.

#![allow(clippy::unwrap_used)]

use crate::{
    mock::*,
    offchain::{corrupt_output, Fault, FAULT_KEY},
    Ballot, Call, Disputes, Event, Judgement, RequestStatus, Requests, Results,
};
use codec::Decode;
use frame_support::{assert_ok, traits::Hooks, BoundedVec};
use inferchain_primitives::{
    host::{InferenceError, InferenceExt, InferenceRunner},
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

/// The "model": doubles every input value. `unavailable` makes it a node without the
/// model; `runs` counts calls.
#[derive(Default)]
struct Doubler {
    unavailable: bool,
    runs: AtomicU32,
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
        if self.unavailable {
            return Err(InferenceError::ModelUnavailable);
        }
        let Ok(Payload::Tensors(ts)) = inferchain_primitives::io::validate_encoded(input, spec)
        else {
            return Err(InferenceError::InvalidInput);
        };
        let values: Vec<f32> = ts[0]
            .to_f64_vec()
            .unwrap()
            .into_iter()
            .map(|v| (2.0 * v) as f32)
            .collect();
        Ok(tensor(&values))
    }

    fn trace(
        &self,
        _: &inferchain_primitives::host::TracedModel,
        _: &[u8],
        _: inferchain_primitives::host::TraceRun,
        _: inferchain_primitives::host::TraceAsk,
    ) -> Result<inferchain_primitives::host::TraceAnswer, InferenceError> {
        Err(InferenceError::NoDisputePlan)
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
}

pub(crate) fn register(executors: &[AccountId]) {
    for e in executors {
        assert_ok!(Inference::register_executor(
            RuntimeOrigin::signed(*e),
            1_000
        ));
    }
}

pub(crate) fn request(input: &[f32]) -> u64 {
    let id = crate::NextRequestId::<Test>::get();
    assert_ok!(Inference::request_inference(
        RuntimeOrigin::signed(20),
        TENSOR_MODEL,
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
                RuntimeCall::Inference(Call::submit_result {
                    id,
                    output: bounded(tensor(&[2.0, 5.0]))
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

#[test]
fn a_watcher_challenges_a_wrong_result_and_leaves_a_right_one() {
    let (mut ext, drain) = offchain_ext(Arc::new(Doubler::default()));
    ext.execute_with(|| {
        register(&EXECUTORS);
        let right = request(&[1.0]);
        let wrong = request(&[3.0]);
        for (id, output) in [(right, tensor(&[2.0])), (wrong, tensor(&[7.0]))] {
            let executor = Requests::<Test>::get(id).unwrap().executor;
            assert_ok!(Inference::submit_result(
                RuntimeOrigin::signed(executor),
                id,
                bounded(output)
            ));
        }
        let wrong_executor = Results::<Test>::get(wrong).unwrap().executor;
        let watchers: Vec<AccountId> = EXECUTORS
            .iter()
            .copied()
            .filter(|e| *e != wrong_executor)
            .collect();

        // A node holding every other key: the watcher whose turn is first acts at once.
        run_worker(&watchers);
        let sent = drain();
        let watcher = sent.first().map(|s| s.0).unwrap_or_default();
        assert_eq!(
            sent,
            vec![(
                watcher,
                RuntimeCall::Inference(Call::challenge {
                    id: wrong,
                    output: bounded(tensor(&[6.0]))
                })
            )],
            "only the wrong result is challenged, with the watcher's own output"
        );
        sent.into_iter().for_each(dispatch);
        assert!(Disputes::<Test>::contains_key(wrong));
        assert!(!Disputes::<Test>::contains_key(right));
    });
}

#[test]
fn jurors_commit_then_reveal_and_the_cheat_is_convicted() {
    let (mut ext, drain) = offchain_ext(Arc::new(Doubler::default()));
    ext.execute_with(|| {
        register(&EXECUTORS);
        let id = request(&[4.0]);
        let cheat = Requests::<Test>::get(id).unwrap().executor;
        assert_ok!(Inference::submit_result(
            RuntimeOrigin::signed(cheat),
            id,
            bounded(tensor(&[-1.0]))
        ));
        let watchers: Vec<AccountId> = EXECUTORS.iter().copied().filter(|e| *e != cheat).collect();
        run_worker(&watchers);
        drain().into_iter().for_each(dispatch);
        let dispute = Disputes::<Test>::get(id).expect("challenged");
        let jurors: Vec<AccountId> = dispute.jury.iter().map(|(j, _)| *j).collect();

        // Commit phase: every juror key on this node commits, once.
        run_worker(&jurors);
        let commits = drain();
        assert_eq!(commits.len(), jurors.len());
        assert!(commits
            .iter()
            .all(|(_, c)| matches!(c, RuntimeCall::Inference(Call::commit_vote { .. }))));
        commits.into_iter().for_each(dispatch);
        run_worker(&jurors);
        assert!(drain().is_empty(), "no second commit");

        // Reveal phase: the worker of the commit period's last block sends the reveals,
        // which land in the next block.
        run_to_block(dispute.commit_end);
        run_worker(&jurors);
        let reveals = drain();
        run_to_block(dispute.commit_end + 1);
        assert_eq!(reveals.len(), jurors.len());
        for (_, call) in &reveals {
            let RuntimeCall::Inference(Call::reveal_vote { vote, .. }) = call else {
                panic!("a reveal, got {call:?}")
            };
            assert!(!vote.executor_ok && vote.challenger_ok);
        }
        reveals.into_iter().for_each(dispatch);

        assert!(System::events().iter().any(|r| r.event
            == RuntimeEvent::Inference(Event::DisputeResolved {
                id,
                verdict: crate::Verdict {
                    executor: Judgement::Wrong,
                    challenger: Judgement::Right
                }
            })));
        assert_eq!(
            Results::<Test>::get(id).unwrap().output.to_vec(),
            tensor(&[8.0])
        );
        Inference::do_try_state().unwrap();
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
        let RuntimeCall::Inference(Call::submit_result { output, .. }) = &sent[0].1 else {
            panic!("a result")
        };
        assert_eq!(
            output.to_vec(),
            corrupt_output(&tensor(&[2.0, 4.0])).unwrap()
        );
        assert_ne!(output.to_vec(), tensor(&[2.0, 4.0]));
        // The chain accepts it: it is well formed, just wrong.
        sent.into_iter().for_each(dispatch);
    });
}

#[test]
fn no_output_and_no_vote_faults_stay_silent() {
    let (mut ext, drain) = offchain_ext(Arc::new(Doubler::default()));
    ext.execute_with(|| {
        register(&EXECUTORS);
        let id = request(&[1.0]);
        let executor = Requests::<Test>::get(id).unwrap().executor;
        StorageValueRef::persistent(FAULT_KEY).set(&Fault::NoOutput);
        run_worker(&[executor]);
        assert!(drain().is_empty());

        assert_ok!(Inference::submit_result(
            RuntimeOrigin::signed(executor),
            id,
            bounded(tensor(&[5.0]))
        ));
        StorageValueRef::persistent(FAULT_KEY).set(&Fault::NoVote);
        let watchers: Vec<AccountId> = EXECUTORS
            .iter()
            .copied()
            .filter(|e| *e != executor)
            .collect();
        run_worker(&watchers);
        drain().into_iter().for_each(dispatch);
        let dispute = Disputes::<Test>::get(id).expect("watchers still watch under no-vote");
        let jurors: Vec<AccountId> = dispute.jury.iter().map(|(j, _)| *j).collect();
        run_worker(&jurors);
        assert!(drain().is_empty());
        assert!(Disputes::<Test>::get(id)
            .unwrap()
            .jury
            .iter()
            .all(|(_, b)| *b == Ballot::Waiting));
    });
}

#[test]
fn a_missing_model_is_skipped_with_one_attempt_per_lock_period() {
    let runner = Arc::new(Doubler {
        unavailable: true,
        ..Default::default()
    });
    let (mut ext, drain) = offchain_ext(runner.clone());
    ext.execute_with(|| {
        register(&EXECUTORS);
        let id = request(&[1.0]);
        let executor = Requests::<Test>::get(id).unwrap().executor;
        run_worker(&[executor]);
        run_to_block(2);
        run_worker(&[executor]);
        assert!(drain().is_empty());
        assert_eq!(
            runner.runs.load(Ordering::SeqCst),
            1,
            "not retried inside the lock period"
        );
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
fn watchers_take_turns_so_one_challenge_is_sent() {
    let (mut ext, drain) = offchain_ext(Arc::new(Doubler::default()));
    ext.execute_with(|| {
        register(&EXECUTORS);
        let id = request(&[1.0]);
        let cheat = Requests::<Test>::get(id).unwrap().executor;
        assert_ok!(Inference::submit_result(
            RuntimeOrigin::signed(cheat),
            id,
            bounded(tensor(&[0.0]))
        ));
        let watchers: Vec<AccountId> = EXECUTORS.iter().copied().filter(|e| *e != cheat).collect();
        // Each watcher on its own node: exactly one acts per block, first turn first.
        let mut acted = Vec::new();
        for block in 1..=3u64 {
            run_to_block(block);
            for w in &watchers {
                run_worker(&[*w]);
                for (who, _) in drain() {
                    acted.push((block, who));
                }
            }
        }
        // Five watchers, a four-block window: turns 0 and 1 in blocks 1 and 2, everyone
        // left in block 3, the last block whose transactions land inside the window.
        let blocks: Vec<u64> = acted.iter().map(|(b, _)| *b).collect();
        assert_eq!(blocks, vec![1, 2, 3, 3, 3], "{acted:?}");
        let mut who: Vec<AccountId> = acted.iter().map(|(_, w)| *w).collect();
        who.sort();
        who.dedup();
        assert_eq!(who.len(), 5, "each watcher once: {acted:?}");
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
            assert_ok!(Inference::submit_result(
                RuntimeOrigin::signed(executor),
                id,
                bounded(tensor(&[2.0 * i as f32]))
            ));
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
            .filter(|(_, c)| matches!(c, RuntimeCall::Inference(Call::submit_result { .. })))
            .count() as u32;
        assert_eq!(answers, MaxOffchainRuns::get());
        assert_eq!(runner.runs.load(Ordering::SeqCst), MaxOffchainRuns::get());
    });
}
