//! Tests of `PrioritizeDuties`: due protocol moves are ordered first, other protocol
//! calls by executors get no priority, and non-executors' are refused in the pool.

#![allow(clippy::unwrap_used)]

use crate::{
    duty_priority::NOT_AN_EXECUTOR,
    game_fixtures::Plan,
    game_tests::{bounded, input, open, other_than, post, setup, walk, STEPS},
    mock::*,
    Call, PrioritizeDuties,
};
use frame_support::{
    assert_ok,
    dispatch::{DispatchClass, DispatchInfo, GetDispatchInfo},
};
use sp_runtime::{
    traits::DispatchTransaction,
    transaction_validity::{
        InvalidTransaction, TransactionPriority, TransactionSource, TransactionValidityError,
    },
};

/// The pool's verdict on `call` from `who`: its priority, or why it is refused.
fn validate(
    who: AccountId,
    call: Call<Test>,
) -> Result<TransactionPriority, TransactionValidityError> {
    let call: RuntimeCall = call.into();
    let info: DispatchInfo = call.get_dispatch_info();
    PrioritizeDuties::<Test>::new()
        .validate_only(
            RuntimeOrigin::signed(who),
            &call,
            &info,
            0,
            TransactionSource::External,
            0,
        )
        .map(|(valid, _, _)| valid.priority)
}

/// A protocol call from an account that is no executor: refused in the pool.
const NOT_EXECUTOR: TransactionValidityError =
    TransactionValidityError::Invalid(InvalidTransaction::Custom(NOT_AN_EXECUTOR));
/// A protocol call from an executor whose move it is not now: valid (it may be this
/// state that is behind), no priority; it fails at dispatch and pays its fee.
const NOT_DUE: Result<TransactionPriority, TransactionValidityError> = Ok(0);

fn result_call(id: u64, trace: &crate::game_fixtures::Trace) -> Call<Test> {
    Call::submit_traced_result {
        id,
        output: bounded(trace.output()),
        trace: trace.commitment(),
        output_path: trace.output_path(),
    }
}

fn open_call(id: u64, trace: &crate::game_fixtures::Trace) -> Call<Test> {
    Call::open_game {
        id,
        output: bounded(trace.output()),
        trace: trace.commitment(),
        output_path: trace.output_path(),
    }
}

#[test]
fn the_assigned_executors_result_is_first_and_nobody_elses_is_taken() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, executor) = setup(&plan);
        let honest = plan.run(&input(), None);
        assert_eq!(
            validate(executor, result_call(id, &honest)),
            Ok(DutyPriority::get())
        );
        // Another executor, and an account that is no executor at all.
        assert_eq!(
            validate(other_than(&[executor]), result_call(id, &honest)),
            NOT_DUE
        );
        assert_eq!(validate(1, result_call(id, &honest)), Err(NOT_EXECUTOR));
        // An unknown request is nobody's duty.
        assert_eq!(validate(executor, result_call(id + 1, &honest)), NOT_DUE);
        // Calls that are not protocol moves pass untouched, without priority.
        let request = Call::request_inference {
            model_id: TENSOR_MODEL,
            input: bounded(tensor(&[1.0])),
            max_fee: FEE,
        };
        assert_eq!(validate(1, request), Ok(0));
        // At the deadline the result is late: no priority.
        run_to_block(1 + ExecutionTimeout::get() - 1);
        assert_eq!(
            validate(executor, result_call(id, &honest)),
            Ok(DutyPriority::get())
        );
        System::set_block_number(1 + ExecutionTimeout::get());
        assert_eq!(validate(executor, result_call(id, &honest)), NOT_DUE);
    });
}

#[test]
fn a_challenge_is_first_once_per_challenger_and_game_moves_only_for_the_parties() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, cheater) = setup(&plan);
        let bad = plan.run(&input(), Some(1));
        let honest = plan.run(&input(), None);
        post(id, cheater, &bad);
        // Once posted, the result is no longer the executor's due move (no replay).
        assert_eq!(validate(cheater, result_call(id, &bad)), NOT_DUE);
        let watcher = other_than(&[cheater]);
        assert_eq!(
            validate(watcher, open_call(id, &honest)),
            Ok(DutyPriority::get())
        );
        // Not the executor on its own result, not an account without a bond.
        assert_eq!(validate(cheater, open_call(id, &honest)), NOT_DUE);
        assert_eq!(validate(1, open_call(id, &honest)), Err(NOT_EXECUTOR));
        let game = open(id, watcher, &honest);
        // A second game by the same challenger is not due.
        assert_eq!(validate(watcher, open_call(id, &honest)), NOT_DUE);

        let g = crate::Games::<Test>::get(game).unwrap();
        let (l, r) = g.at.children(STEPS as u32).unwrap();
        let reveal = |_: ()| Call::reveal {
            game,
            left: honest.node(l),
            right: honest.node(r),
        };
        // The cheater's own move: the children of its own trace's node.
        let cheat_reveal = |_: ()| Call::reveal {
            game,
            left: bad.node(l),
            right: bad.node(r),
        };
        assert_eq!(validate(watcher, reveal(())), Ok(DutyPriority::get()));
        assert_eq!(validate(cheater, cheat_reveal(())), Ok(DutyPriority::get()));
        // Children that are not the node the party stands on are no due move.
        assert_eq!(validate(cheater, reveal(())), NOT_DUE);
        let outsider = other_than(&[cheater, watcher]);
        assert_eq!(validate(outsider, reveal(())), NOT_DUE);
        assert_eq!(validate(1, reveal(())), Err(NOT_EXECUTOR));
        // A party that has revealed this round has no move due until the other reveals;
        // a proof is not due while the walk goes on.
        assert_ok!(Inference::reveal(
            RuntimeOrigin::signed(watcher),
            game,
            honest.node(l),
            honest.node(r)
        ));
        assert_eq!(validate(watcher, reveal(())), NOT_DUE);
        assert_eq!(validate(cheater, cheat_reveal(())), Ok(DutyPriority::get()));
        let junk_proof = Call::prove_step {
            game,
            proof: bounded(vec![1, 2, 3]),
        };
        assert_eq!(validate(cheater, junk_proof), NOT_DUE);
        // One transaction per duty: the same duty has one pool tag, another duty another.
        let tag = |who: AccountId, call: Call<Test>| {
            let call: RuntimeCall = call.into();
            PrioritizeDuties::<Test>::new()
                .validate_only(
                    RuntimeOrigin::signed(who),
                    &call,
                    &call.get_dispatch_info(),
                    0,
                    TransactionSource::External,
                    0,
                )
                .unwrap()
                .0
                .provides
        };
        let other_reveal = Call::reveal {
            game,
            left: [9; 32],
            right: [9; 32],
        };
        assert_eq!(validate(cheater, other_reveal), NOT_DUE);
        // One tag per duty, the same however often the move is sent.
        let duty = tag(cheater, cheat_reveal(()));
        assert_eq!(duty.len(), 1);
        assert_eq!(duty, tag(cheater, cheat_reveal(())));
        // After the move's deadline nobody's move is due.
        System::set_block_number(g.deadline + 1);
        assert_eq!(validate(cheater, reveal(())), NOT_DUE);
        // After the window, no new game is due either.
        let other = other_than(&[cheater, watcher]);
        System::set_block_number(1 + ChallengePeriod::get() + 10);
        assert_eq!(validate(other, open_call(id, &honest)), NOT_DUE);
    });
}

#[test]
fn protocol_moves_use_the_operational_class() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let honest = plan.run(&input(), None);
        for call in [result_call(0, &honest), open_call(0, &honest)] {
            let call: RuntimeCall = call.into();
            assert_eq!(call.get_dispatch_info().class, DispatchClass::Operational);
        }
        let request: RuntimeCall = Call::<Test>::request_inference {
            model_id: TENSOR_MODEL,
            input: bounded(tensor(&[1.0])),
            max_fee: FEE,
        }
        .into();
        assert_eq!(request.get_dispatch_info().class, DispatchClass::Normal);
    });
}

#[test]
fn a_due_move_that_succeeds_is_free_and_a_failed_one_pays() {
    use frame_support::dispatch::Pays;
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, executor) = setup(&plan);
        let honest = plan.run(&input(), None);
        let wrong = plan.run(&input(), Some(STEPS - 1));
        // A result whose trace does not end in its output fails and pays.
        let junk = Inference::submit_traced_result(
            RuntimeOrigin::signed(executor),
            id,
            bounded(wrong.output()),
            honest.commitment(),
            honest.output_path(),
        )
        .unwrap_err();
        assert_eq!(junk.post_info.pays_fee, Pays::Yes);
        let ok = Inference::submit_traced_result(
            RuntimeOrigin::signed(executor),
            id,
            bounded(honest.output()),
            honest.commitment(),
            honest.output_path(),
        )
        .unwrap();
        assert_eq!(ok.pays_fee, Pays::No);
    });
}

#[test]
fn a_move_that_only_voids_a_game_pays_and_a_padded_proof_is_refused() {
    use frame_support::{assert_noop, dispatch::Pays};
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, cheater) = setup(&plan);
        let bad = plan.run(&input(), Some(6));
        let honest = plan.run(&input(), None);
        post(id, cheater, &bad);
        let watcher = other_than(&[cheater]);
        let late = other_than(&[cheater, watcher]);
        let game = open(id, watcher, &honest);
        let void = open(id, late, &honest);
        walk(game, (cheater, &bad), (watcher, &honest));
        // A proof with bytes after it is refused: nothing rides along on a free move.
        let mut padded = plan.proof(&input(), &honest, 6);
        padded.extend([0u8; 64]);
        assert_noop!(
            Inference::prove_step(RuntimeOrigin::signed(watcher), game, bounded(padded)),
            crate::Error::<Test>::MalformedStepProof
        );
        assert_ok!(Inference::prove_step(
            RuntimeOrigin::signed(watcher),
            game,
            bounded(plan.proof(&input(), &honest, 6))
        ));
        // The late game's result was overturned: its move is not due, and the move that
        // voids it pays.
        let g = crate::Games::<Test>::get(void).unwrap();
        let (l, r) = g.at.children(STEPS as u32).unwrap();
        let call = Call::reveal {
            game: void,
            left: honest.node(l),
            right: honest.node(r),
        };
        assert_eq!(validate(late, call), NOT_DUE);
        let post = Inference::reveal(
            RuntimeOrigin::signed(late),
            void,
            honest.node(l),
            honest.node(r),
        )
        .unwrap();
        assert_eq!(post.pays_fee, Pays::Yes);
        assert!(crate::Games::<Test>::get(void).is_none());
    });
}

#[test]
fn a_batch_of_results_is_first_only_from_its_assigned_executor() {
    build_and_execute(|| {
        for who in [10, 11, 12] {
            assert_ok!(bond_and_serve(who, 1_000));
        }
        let first = crate::NextRequestId::<Test>::get();
        let inputs: Vec<frame_support::BoundedVec<u8, MaxInputBytes>> = (0..3)
            .map(|i| tensor(&[i as f32]).try_into().unwrap())
            .collect();
        assert_ok!(Inference::request_batch(
            RuntimeOrigin::signed(1),
            TENSOR_MODEL,
            inputs.try_into().unwrap(),
            FEE
        ));
        let executor = crate::Requests::<Test>::get(first).unwrap().executor;
        let results = |ids: &[u64]| Call::<Test>::submit_results {
            results: ids
                .iter()
                .map(|id| {
                    let output = tensor(&[*id as f32]);
                    let trace = one_step_trace(&output);
                    (*id, bounded(output), trace, Default::default())
                })
                .collect::<Vec<_>>()
                .try_into()
                .unwrap(),
        };
        let all = [first, first + 1, first + 2];
        assert_eq!(validate(executor, results(&all)), Ok(DutyPriority::get()));
        let other = [10, 11, 12].into_iter().find(|a| *a != executor).unwrap();
        assert_eq!(validate(other, results(&all)), NOT_DUE);
        assert_eq!(validate(1, results(&all)), Err(NOT_EXECUTOR));
        // A batch with one result that is nobody's duty (an unknown request): no priority.
        assert_eq!(validate(executor, results(&[first, first + 9])), NOT_DUE);
        assert_eq!(
            validate(executor, results(&[first, first + 9, first + 2])),
            NOT_DUE
        );
        assert_eq!(
            results(&all).get_dispatch_info().class,
            DispatchClass::Operational
        );
        System::set_block_number(1 + ExecutionTimeout::get());
        assert_eq!(validate(executor, results(&all)), NOT_DUE);
    });
}

#[test]
fn a_request_past_the_blocks_slots_waits_in_the_pool() {
    build_and_execute(|| {
        for who in [10, 11, 12] {
            assert_ok!(bond_and_serve(who, 1_000));
        }
        let per_assignment = SlotsPerAssignment::get();
        let batch = |n: u32| -> RuntimeCall {
            Call::<Test>::request_batch {
                model_id: TENSOR_MODEL,
                inputs: (0..n)
                    .map(|i| bounded(tensor(&[i as f32])))
                    .collect::<Vec<_>>()
                    .try_into()
                    .unwrap(),
                max_fee: FEE,
            }
            .into()
        };
        let prepare = |call: RuntimeCall| {
            let info = call.get_dispatch_info();
            PrioritizeDuties::<Test>::new()
                .validate_and_prepare(RuntimeOrigin::signed(1), &call, &info, 0, 0)
                .map(|_| ())
        };
        // Fill the block's slots but for one batch of 2.
        let room = MaxRequestSlotsPerBlock::get() - (2 + per_assignment);
        crate::RequestsInBlock::<Test>::put(room);
        assert_eq!(prepare(batch(2)), Ok(()));
        assert_eq!(
            prepare(batch(3)),
            Err(TransactionValidityError::Invalid(
                InvalidTransaction::ExhaustsResources
            ))
        );
        // Valid in the pool all the while: it waits there for the next block.
        assert_eq!(
            validate(
                1,
                Call::request_batch {
                    model_id: TENSOR_MODEL,
                    inputs: vec![bounded(tensor(&[1.0]))].try_into().unwrap(),
                    max_fee: FEE,
                }
            ),
            Ok(0)
        );
        crate::RequestsInBlock::<Test>::put(MaxRequestSlotsPerBlock::get());
        assert_eq!(
            prepare(
                Call::<Test>::request_inference {
                    model_id: TENSOR_MODEL,
                    input: bounded(tensor(&[1.0])),
                    max_fee: FEE,
                }
                .into()
            ),
            Err(TransactionValidityError::Invalid(
                InvalidTransaction::ExhaustsResources
            ))
        );
        // Other calls are not held back.
        assert_eq!(
            prepare(frame_system::Call::<Test>::remark { remark: vec![] }.into()),
            Ok(())
        );
        run_to_block(2);
        assert_eq!(prepare(batch(MaxBatchSize::get())), Ok(()));
    });
}
