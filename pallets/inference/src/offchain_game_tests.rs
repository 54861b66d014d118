//! The off-chain worker plays the bisection game against the mock runtime: a fake runner
//! serves traces of the test plan (`game_fixtures::Plan`) through the real host function;
//! several "nodes" (key sets, each with its own fault) run their workers every block and
//! everything they send is dispatched as its signer.

#![allow(clippy::unwrap_used)]

use crate::{
    game_fixtures::Plan,
    mock::*,
    offchain::{Fault, FAULT_KEY},
    offchain_tests::{offchain_ext, register, request_of, run_worker, Sent},
    Call, Event, GameEnd, HoldReason, RequestStatus, Requests, ResultTraces, Results, Side,
    SlashReason,
};
use codec::Encode;
use frame_support::{
    assert_ok,
    traits::fungible::{Inspect, InspectHold},
};
use inferchain_primitives::{
    host::{InferenceError, InferenceRunner, TraceAnswer, TraceAsk, TraceRun, TracedModel},
    io::IoSpec,
    model::NumericsProfile,
    trace_tree::TraceTree,
    ModelId,
};
use sp_runtime::{offchain::storage::StorageValueRef, traits::Dispatchable};
use std::sync::{
    atomic::{AtomicU32, Ordering},
    Arc,
};

const STEPS: usize = 8;

/// Serves traces of `plan`, as the node's engine serves its dispute plans.
struct PlanRunner {
    plan: Plan,
    asks: AtomicU32,
}

impl PlanRunner {
    fn new() -> Arc<PlanRunner> {
        PlanRunner::of(Plan::new(STEPS))
    }

    fn of(plan: Plan) -> Arc<PlanRunner> {
        Arc::new(PlanRunner {
            plan,
            asks: AtomicU32::new(0),
        })
    }
}

impl InferenceRunner for PlanRunner {
    fn run(
        &self,
        _: ModelId,
        _: &[u8],
        _: &IoSpec,
        _: &NumericsProfile,
        _: Option<&[u8]>,
    ) -> Result<Vec<u8>, InferenceError> {
        panic!("a model with commitments is run traced only")
    }

    fn trace(
        &self,
        model: &TracedModel,
        input: &[u8],
        run: TraceRun,
        ask: TraceAsk,
    ) -> Result<TraceAnswer, InferenceError> {
        self.asks.fetch_add(1, Ordering::SeqCst);
        if model.commitments != self.plan.commitments() {
            return Err(InferenceError::NoDisputePlan);
        }
        let trace = match run {
            // The fixtures' plans do not read the posted output: a run against it is the
            // honest run.
            TraceRun::Honest | TraceRun::Against(_) => self.plan.run(input, None),
            // A wide step keeps its length (the element walk can open it).
            TraceRun::Corrupted { step } if self.plan.steps[step as usize].output_bytes > 64 => {
                self.plan.run_flipping(input, step as usize, 100)
            }
            TraceRun::Corrupted { step } => self.plan.run(input, Some(step as usize)),
        };
        let tree = TraceTree::from_outputs(&trace.outputs);
        Ok(match ask {
            TraceAsk::Commit => TraceAnswer::Commit {
                output: trace.output(),
                trace: tree.commitment(),
                output_path: tree.output_path().unwrap(),
            },
            TraceAsk::Children(at) => tree
                .children(at)
                .map(|(l, r)| TraceAnswer::Children(l, r))
                .unwrap_or(TraceAnswer::OutOfRange),
            TraceAsk::Proof(step) => {
                TraceAnswer::Proof(self.plan.proof(input, &trace, step as usize))
            }
            TraceAsk::Output(step) => TraceAnswer::Output {
                step: self.plan.steps[step as usize].encode(),
                step_path: self.plan.step_path(step as usize),
                chunk_root: trace.chunk_root(step as usize),
            },
            TraceAsk::ChunkChildren(step, at) => {
                let (l, r) = trace.chunk_children(step as usize, at);
                TraceAnswer::Children(l, r)
            }
            TraceAsk::ElementProof { step, chunk } => {
                TraceAnswer::Proof(self.plan.element_proof(input, &trace, step as usize, chunk))
            }
        })
    }
}

/// One node: its executor keys and the fault it was started with.
struct Node {
    keys: Vec<AccountId>,
    fault: Option<Fault>,
}

impl Node {
    /// Runs this node's worker at the current block; returns what it sent.
    fn work(&self, drain: &impl Fn() -> Vec<Sent>) -> Vec<Sent> {
        let fault = StorageValueRef::persistent(FAULT_KEY);
        match self.fault {
            Some(f) => fault.set(&f),
            None => {
                let mut fault = fault;
                fault.clear();
            }
        }
        run_worker(&self.keys);
        drain()
    }
}

fn inference_events() -> Vec<Event<Test>> {
    System::events()
        .into_iter()
        .filter_map(|r| match r.event {
            RuntimeEvent::Inference(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Runs every node's worker each block, dispatching what they send (all of it must
/// succeed: an honest worker sends no transaction that fails), until request `id`
/// leaves the result under dispute or `blocks` pass.
fn play(id: u64, nodes: &[Node], drain: &impl Fn() -> Vec<Sent>, blocks: u64) -> Vec<Sent> {
    let mut all = Vec::new();
    let attempt = Requests::<Test>::get(id).unwrap().attempt;
    for _ in 0..blocks {
        for node in nodes {
            for (who, call) in node.work(drain) {
                assert_ok!(call.clone().dispatch(RuntimeOrigin::signed(who)));
                // As a signed transaction's inclusion does.
                System::inc_account_nonce(who);
                all.push((who, call));
            }
        }
        let request = Requests::<Test>::get(id).unwrap();
        if request.attempt != attempt || matches!(request.status, RequestStatus::Finalized { .. }) {
            break;
        }
        run_to_block(System::block_number() + 1);
    }
    all
}

/// Executors 1..=6, the game model committed to `plan`, one request; returns it, its
/// executor and the other executors.
fn setup(plan: &Plan) -> (u64, AccountId, Vec<AccountId>) {
    register(&[1, 2, 3, 4, 5, 6]);
    assert_ok!(Models::set_model_commitments(
        RuntimeOrigin::root(),
        GAME_MODEL,
        plan.commitments()
    ));
    let id = request_of(GAME_MODEL, &[0.5, 0.25]);
    let executor = Requests::<Test>::get(id).unwrap().executor;
    (id, executor, (1..=6).filter(|e| *e != executor).collect())
}

#[test]
fn workers_find_a_corrupted_step_convict_the_cheat_and_a_thrower_loses_its_bond() {
    let runner = PlanRunner::new();
    let (mut ext, drain) = offchain_ext(runner.clone());
    ext.execute_with(|| {
        let (id, cheat, others) = setup(&runner.plan);
        let (thrower, honest) = (others[0], others[1..].to_vec());
        let thrower_free = Balances::balance(&thrower);
        let honest_free: Vec<_> = honest.iter().map(Balances::balance).collect();
        let nodes = [
            Node {
                keys: vec![cheat],
                fault: Some(Fault::WrongOutput),
            },
            Node {
                keys: vec![thrower],
                fault: Some(Fault::ThrowGames),
            },
            Node {
                keys: honest.clone(),
                fault: None,
            },
        ];
        let sent = play(id, &nodes, &drain, 30);

        // The cheat posted a traced result: its trace with step 4 corrupted.
        let posted = sent
            .iter()
            .find(|(who, c)| {
                *who == cheat
                    && matches!(c, RuntimeCall::Inference(Call::submit_traced_result { .. }))
            })
            .expect("a traced result");
        let RuntimeCall::Inference(Call::submit_traced_result { trace, .. }) = &posted.1 else {
            unreachable!()
        };
        let bad = runner.plan.run(&tensor(&[0.5, 0.25]), Some(STEPS / 2));
        assert_eq!(*trace, TraceTree::from_outputs(&bad.outputs).commitment());

        // Every other key opened a game: the thrower and each honest watcher.
        let events = inference_events();
        let opened: Vec<(u64, AccountId)> = events
            .iter()
            .filter_map(|e| match e {
                Event::GameOpened {
                    game, challenger, ..
                } => Some((*game, *challenger)),
                _ => None,
            })
            .collect();
        assert_eq!(opened.len(), others.len(), "{events:?}");
        // Each honest game that was played out ended at step 4, refereed against the cheat;
        // the first of them overturned the result and voided the rest.
        let refereed: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                Event::StepRefereed { step, .. } => Some(*step),
                _ => None,
            })
            .collect();
        assert_eq!(refereed, vec![(STEPS / 2) as u32], "{events:?}");
        let ends: Vec<(AccountId, GameEnd)> = events
            .iter()
            .filter_map(|e| match e {
                Event::GameEnded { game, end, .. } => {
                    Some((opened.iter().find(|(g, _)| g == game).unwrap().1, *end))
                }
                _ => None,
            })
            .collect();
        assert!(ends.contains(&(
            thrower,
            GameEnd::Timeout {
                side: Side::Challenger
            }
        )));
        assert_eq!(
            ends.iter()
                .filter(|(_, e)| *e
                    == GameEnd::Refereed {
                        executor_right: false
                    })
                .count(),
            1
        );
        assert!(events.contains(&Event::Slashed {
            who: cheat,
            amount: ResultSlash::get(),
            reason: SlashReason::WrongResult
        }));
        // The request went to another executor; the cheat's result is gone.
        let request = Requests::<Test>::get(id).unwrap();
        assert!(request.attempt > 0);
        assert_ne!(request.executor, cheat);
        assert!(Results::<Test>::get(id).is_none_or(|r| r.executor != cheat));
        assert!(ResultTraces::<Test>::get(id).is_none_or(|t| t != *trace));

        // The thrower lost its bond; no honest watcher lost anything and none is held.
        assert_eq!(
            Balances::balance(&thrower),
            thrower_free - ChallengeBond::get()
        );
        for (w, free) in honest.iter().zip(honest_free) {
            assert!(Balances::balance(w) >= free, "watcher {w} lost funds");
            assert_eq!(
                Balances::balance_on_hold(&HoldReason::ChallengeBond.into(), w),
                0
            );
        }
        // Moves were answered from the runner's traces, not by re-running per block.
        assert!(runner.asks.load(Ordering::SeqCst) > 0);
        Inference::do_try_state().unwrap();
    });
}

#[test]
fn an_honest_traced_result_is_left_alone_and_finalizes_after_beating_a_thrower() {
    let runner = PlanRunner::new();
    let (mut ext, drain) = offchain_ext(runner.clone());
    ext.execute_with(|| {
        let (id, executor, others) = setup(&runner.plan);
        let executor_free = Balances::balance(&executor);
        let nodes = [
            Node {
                keys: vec![executor],
                fault: None,
            },
            Node {
                keys: vec![others[0]],
                fault: Some(Fault::ThrowGames),
            },
            Node {
                keys: others[1..].to_vec(),
                fault: None,
            },
        ];
        let sent = play(id, &nodes, &drain, 30);
        // Honest watchers agree and open nothing; the thrower opens one game and never
        // moves in it; the executor reveals, wins by timeout and is paid.
        let opens: Vec<AccountId> = sent
            .iter()
            .filter(|(_, c)| matches!(c, RuntimeCall::Inference(Call::open_game { .. })))
            .map(|(w, _)| *w)
            .collect();
        assert_eq!(opens, vec![others[0]]);
        assert!(sent.iter().all(|(who, c)| *who != others[0]
            || !matches!(
                c,
                RuntimeCall::Inference(Call::reveal { .. } | Call::prove_step { .. })
            )));
        assert!(sent
            .iter()
            .any(|(who, c)| *who == executor
                && matches!(c, RuntimeCall::Inference(Call::reveal { .. }))));
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Finalized { .. }
        ));
        assert_eq!(Results::<Test>::get(id).unwrap().executor, executor);
        assert!(
            Balances::balance(&executor) > executor_free,
            "paid fee and reward"
        );
        assert!(!inference_events()
            .iter()
            .any(|e| matches!(e, Event::Slashed { who, .. } if *who == executor)));
    });
}

#[test]
fn workers_play_the_element_walk_when_the_step_is_too_large_to_prove_whole() {
    // Wide steps of 20,000 bytes: a whole step proof is over the mock's 16 KiB.
    let runner = PlanRunner::of(Plan::wide_of(STEPS, 20_000));
    let (mut ext, drain) = offchain_ext(runner.clone());
    ext.execute_with(|| {
        let (id, cheat, others) = setup(&runner.plan);
        let nodes = [
            Node {
                keys: vec![cheat],
                fault: Some(Fault::WrongOutput),
            },
            Node {
                keys: others[..1].to_vec(),
                fault: None,
            },
        ];
        let sent = play(id, &nodes, &drain, 60);
        assert!(sent.iter().any(|(who, c)| *who == cheat
            && matches!(
                c,
                RuntimeCall::Inference(Call::reveal_output { step: Some(_), .. })
            )));
        assert!(sent.iter().any(|(who, c)| *who == others[0]
            && matches!(
                c,
                RuntimeCall::Inference(Call::reveal_output { step: None, .. })
            )));
        let events = inference_events();
        // The corrupted step is the plan's middle (4 of 8); byte 100 is in chunk 3.
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::ChunkRefereed {
                    step: 4,
                    chunk: 3,
                    ..
                }
            )),
            "{events:?}"
        );
        assert!(events.contains(&Event::Slashed {
            who: cheat,
            amount: ResultSlash::get(),
            reason: SlashReason::WrongResult
        }));
        assert_eq!(
            Balances::balance_on_hold(&HoldReason::ChallengeBond.into(), &others[0]),
            0
        );
    });
}
