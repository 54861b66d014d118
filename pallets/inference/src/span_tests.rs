//! Tests of batches as spans: one draw and one queue entry per batch, results posted
//! together, a missed batch slashed per request and reassigned together, settled and
//! pruned together, and members that go their own way handled alone.

#![allow(clippy::unwrap_used)]

use crate::{
    game_tests::events, mock::*, BatchResultOf, Config, Deadline, DeadlineQueue, Error, Event,
    Executors, HoldReason, ReleaseReason, RequestStatus, Requests, Service,
};
use frame_support::{
    assert_noop, assert_ok,
    traits::fungible::{Inspect, InspectHold},
    BoundedVec,
};
use inferchain_primitives::{model::ModelRegistry, RequestId};

type MaxBatch = <Test as Config>::MaxBatchSize;

fn held(reason: HoldReason, who: AccountId) -> Balance {
    Balances::balance_on_hold(&reason.into(), &who)
}

fn bond_of(who: AccountId) -> Balance {
    Executors::<Test>::get(who).unwrap().bond
}

/// A batch of `n` tensor requests from account 1: their ids.
fn batch(n: u32) -> Vec<RequestId> {
    batch_from(1, n)
}

/// A batch of `n` tensor requests from `who`: their ids.
fn batch_from(who: AccountId, n: u32) -> Vec<RequestId> {
    let first = crate::NextRequestId::<Test>::get();
    let inputs: Vec<BoundedVec<u8, MaxInputBytes>> = (0..n)
        .map(|i| tensor(&[i as f32]).try_into().unwrap())
        .collect();
    assert_ok!(Inference::request_batch(
        RuntimeOrigin::signed(who),
        TENSOR_MODEL,
        inputs.try_into().unwrap(),
        FEE,
    ));
    (first..first + u64::from(n)).collect()
}

fn result_of(id: RequestId) -> BatchResultOf<Test> {
    let output = tensor(&[id as f32, 0.5]);
    let trace = one_step_trace(&output);
    (id, output.try_into().unwrap(), trace, Default::default())
}

fn post(who: AccountId, ids: &[RequestId]) -> frame_support::dispatch::DispatchResult {
    let results: Vec<_> = ids.iter().map(|id| result_of(*id)).collect();
    Inference::submit_results(RuntimeOrigin::signed(who), results.try_into().unwrap())
        .map(|_| ())
        .map_err(|e| e.error)
}

fn executor_of(id: RequestId) -> AccountId {
    Requests::<Test>::get(id).unwrap().executor
}

fn entries_at(block: u64) -> Vec<(RequestId, Deadline)> {
    let mut entries: Vec<_> = DeadlineQueue::<Test>::iter_prefix(block)
        .map(|(key, what)| (crate::queue::key_id(key), what))
        .collect();
    entries.sort_by_key(|(id, what)| (*id, crate::queue::queue_key(0, *what)));
    entries
}

fn setup() {
    RequestDepositBase::set(3);
    for who in [10, 11, 12] {
        assert_ok!(bond_and_serve(who, 1_000));
    }
}

#[test]
fn a_batch_is_drawn_once_held_once_and_scheduled_as_one_entry() {
    build_and_execute(|| {
        setup();
        let before = Balances::balance(&1);
        let ids = batch(8);
        let executor = executor_of(ids[0]);
        assert!(ids.iter().all(|id| executor_of(*id) == executor));
        let deadline = 1 + <Test as Config>::ExecutionTimeout::get();
        assert_eq!(
            entries_at(deadline),
            vec![(ids[0], Deadline::ExecutionSpan { count: 8 })]
        );
        assert_eq!(Service::<Test>::get(executor).pending, 8);
        assert_eq!(Executors::<Test>::get(executor).unwrap().obligations, 8);
        assert_eq!(held(HoldReason::RequestFee, 1), 8 * FEE);
        let deposits = held(HoldReason::StorageDeposit, 1);
        assert_eq!(Balances::balance(&1), before - 8 * FEE - deposits);
        assert_eq!(
            events()
                .iter()
                .filter(|e| matches!(e, Event::RequestSubmitted { .. }))
                .count(),
            8
        );
    });
}

#[test]
fn a_batch_answered_in_one_transaction_is_paid_once_and_pruned_together() {
    build_and_execute(|| {
        setup();
        let ids = batch(8);
        let executor = executor_of(ids[0]);
        let deadline = 1 + <Test as Config>::ExecutionTimeout::get();
        let earned_before = Balances::balance(&executor);
        run_to_block(2);
        assert_ok!(post(executor, &ids));
        // The execution entry is gone; one window entry for the eight.
        assert!(entries_at(deadline).is_empty());
        let window_end = 2 + <Test as Config>::ChallengePeriod::get();
        assert_eq!(
            entries_at(window_end),
            vec![(ids[0], Deadline::ChallengeWindowSpan { count: 8 })]
        );
        assert_eq!(Service::<Test>::get(executor).pending, 0);
        assert_eq!(
            events()
                .iter()
                .filter(|e| matches!(e, Event::ResultSubmitted { .. }))
                .count(),
            8
        );
        run_to_block(window_end);
        for id in &ids {
            assert!(matches!(
                Requests::<Test>::get(id).unwrap().status,
                RequestStatus::Finalized { at } if at == window_end
            ));
        }
        let cut = <Test as Config>::ProtocolFee::get() * (8 * FEE);
        assert_eq!(Balances::balance(&executor), earned_before + 8 * FEE - cut);
        assert_eq!(held(HoldReason::RequestFee, 1), 0);
        assert_eq!(Executors::<Test>::get(executor).unwrap().obligations, 0);
        let prune_at = window_end + <Test as Config>::ResultRetention::get();
        assert_eq!(
            entries_at(prune_at),
            vec![(ids[0], Deadline::PruneSpan { count: 8 })]
        );
        let deposits = held(HoldReason::StorageDeposit, 1);
        assert!(deposits > 0);
        let free = Balances::balance(&1);
        run_to_block(prune_at);
        assert!(ids.iter().all(|id| !Requests::<Test>::contains_key(id)));
        assert_eq!(held(HoldReason::StorageDeposit, 1), 0);
        assert_eq!(Balances::balance(&1), free + deposits);
        assert_eq!(
            events()
                .iter()
                .filter(|e| matches!(e, Event::RequestPruned { .. }))
                .count(),
            8
        );
    });
}

#[test]
fn a_missed_batch_is_slashed_per_request_and_reassigned_together() {
    build_and_execute(|| {
        setup();
        let ids = batch(6);
        let executor = executor_of(ids[0]);
        let bond = bond_of(executor);
        let deadline = 1 + <Test as Config>::ExecutionTimeout::get();
        run_to_block(deadline);
        let slash = <Test as Config>::MissedDeadlineSlash::get();
        assert_eq!(bond_of(executor), bond - 6 * slash);
        let to = executor_of(ids[0]);
        assert_ne!(to, executor);
        for id in &ids {
            let request = Requests::<Test>::get(id).unwrap();
            assert_eq!((request.executor, request.attempt), (to, 2));
        }
        let next = deadline + <Test as Config>::ExecutionTimeout::get();
        assert_eq!(
            entries_at(next),
            vec![(ids[0], Deadline::ExecutionSpan { count: 6 })]
        );
        assert_eq!(Service::<Test>::get(executor).pending, 0);
        assert_eq!(Service::<Test>::get(to).pending, 6);
        assert_eq!(Executors::<Test>::get(executor).unwrap().obligations, 0);
        assert_eq!(Executors::<Test>::get(to).unwrap().obligations, 6);
        // The new executor answers in time.
        assert_ok!(post(to, &ids));
    });
}

#[test]
fn a_batch_nobody_answers_expires_together_with_every_fee_back() {
    build_and_execute(|| {
        setup();
        let before = Balances::balance(&1);
        let ids = batch(4);
        let mut at = 1;
        for _ in 0..<Test as Config>::MaxAttempts::get() {
            at += <Test as Config>::ExecutionTimeout::get();
            run_to_block(at);
        }
        for id in &ids {
            assert!(matches!(
                Requests::<Test>::get(id).unwrap().status,
                RequestStatus::Expired { .. }
            ));
        }
        assert_eq!(held(HoldReason::RequestFee, 1), 0);
        let deposits = held(HoldReason::StorageDeposit, 1);
        assert_eq!(Balances::balance(&1), before - deposits);
        assert_eq!(
            events()
                .iter()
                .filter(|e| matches!(e, Event::RequestExpired { refunded, .. } if *refunded == FEE))
                .count(),
            4
        );
        run_to_block(at + <Test as Config>::ResultRetention::get());
        assert!(ids.iter().all(|id| !Requests::<Test>::contains_key(id)));
        assert_eq!(Balances::balance(&1), before);
    });
}

#[test]
fn a_member_that_goes_its_own_way_is_handled_alone() {
    build_and_execute(|| {
        setup();
        let ids = batch(5);
        let executor = executor_of(ids[0]);
        run_to_block(2);
        // The executor hands one request back; it is drawn again on its own.
        assert_ok!(Inference::release_assignment(
            RuntimeOrigin::signed(executor),
            ids[2],
            ReleaseReason::OverLimits
        ));
        let other = executor_of(ids[2]);
        assert_ne!(other, executor);
        let rest = [ids[0], ids[1], ids[3], ids[4]];
        assert_ok!(post(executor, &rest));
        // Two runs, two window entries; the batch's execution entry stays (ids[2] is
        // pending elsewhere, with another deadline).
        let window_end = 2 + <Test as Config>::ChallengePeriod::get();
        assert_eq!(
            entries_at(window_end),
            vec![
                (ids[0], Deadline::ChallengeWindowSpan { count: 2 }),
                (ids[3], Deadline::ChallengeWindowSpan { count: 2 }),
            ]
        );
        let deadline = 1 + <Test as Config>::ExecutionTimeout::get();
        assert_eq!(
            entries_at(deadline),
            vec![(ids[0], Deadline::ExecutionSpan { count: 5 })]
        );
        let bond = bond_of(executor);
        // The old span entry passes over ids[2]: nobody is slashed for it.
        run_to_block(deadline);
        assert_eq!(bond_of(executor), bond);
        assert_eq!(executor_of(ids[2]), other);
        // ids[2] is answered by its new executor; its window ends after its span's.
        assert_ok!(submit(other, ids[2], tensor(&[9.0])));
        let own_window = deadline + <Test as Config>::ChallengePeriod::get();
        assert!(own_window > window_end);
        run_to_block(window_end);
        assert!(rest.iter().all(|id| matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Finalized { .. }
        )));
        assert!(matches!(
            Requests::<Test>::get(ids[2]).unwrap().status,
            RequestStatus::Submitted { .. }
        ));
        run_to_block(own_window);
        assert!(matches!(
            Requests::<Test>::get(ids[2]).unwrap().status,
            RequestStatus::Finalized { at } if at == own_window
        ));
        // The span's pruning leaves it: it waits for its own retention.
        run_to_block(window_end + <Test as Config>::ResultRetention::get());
        assert!(rest.iter().all(|id| !Requests::<Test>::contains_key(id)));
        assert!(Requests::<Test>::contains_key(ids[2]));
        run_to_block(own_window + <Test as Config>::ResultRetention::get());
        assert!(!Requests::<Test>::contains_key(ids[2]));
        assert_eq!(held(HoldReason::StorageDeposit, 1), 0);
    });
}

#[test]
fn bad_batch_results_are_refused_by_name_and_change_nothing() {
    build_and_execute(|| {
        setup();
        let ids = batch(3);
        let executor = executor_of(ids[0]);
        let stranger = [10, 11, 12].into_iter().find(|a| *a != executor).unwrap();
        let empty: BoundedVec<BatchResultOf<Test>, MaxBatch> = Default::default();
        assert_noop!(
            Inference::submit_results(RuntimeOrigin::signed(executor), empty),
            Error::<Test>::EmptyBatch
        );
        assert_noop!(
            post(executor, &[ids[1], ids[0]]),
            Error::<Test>::UnsortedResults
        );
        assert_noop!(
            post(executor, &[ids[0], ids[0]]),
            Error::<Test>::UnsortedResults
        );
        assert_noop!(post(stranger, &ids), Error::<Test>::NotAssignedExecutor);
        assert_noop!(
            post(executor, &[ids[0], 999]),
            Error::<Test>::UnknownRequest
        );
        // One malformed output refuses all three.
        let mut results: Vec<_> = ids.iter().map(|id| result_of(*id)).collect();
        results[1].1 = b"junk".to_vec().try_into().unwrap();
        assert_noop!(
            Inference::submit_results(RuntimeOrigin::signed(executor), results.try_into().unwrap()),
            Error::<Test>::MalformedOutput
        );
        // A trace that does not end in its output.
        let mut results: Vec<_> = ids.iter().map(|id| result_of(*id)).collect();
        results[2].2 = one_step_trace(&tensor(&[7.0]));
        assert_noop!(
            Inference::submit_results(RuntimeOrigin::signed(executor), results.try_into().unwrap()),
            Error::<Test>::BadTrace
        );
        // At the deadline, too late (the queue has not run for that block yet).
        System::set_block_number(1 + <Test as Config>::ExecutionTimeout::get());
        assert_noop!(post(executor, &ids), Error::<Test>::ResultTooLate);
        System::set_block_number(2);
        assert_ok!(post(executor, &ids));
        assert_noop!(post(executor, &ids), Error::<Test>::NotPending);
    });
}

#[test]
fn a_block_takes_request_slots_one_per_request_and_some_per_assignment() {
    build_and_execute(|| {
        setup();
        let slots = <Test as Config>::MaxRequestSlotsPerBlock::get();
        let per_assignment = <Test as Config>::SlotsPerAssignment::get();
        let size = MaxBatch::get();
        // Full batches while they fit, then single requests (batches of one) while
        // they fit: each takes its requests' slots and the assignment's.
        // (From several requesters: one could not pay for them all.)
        let mut taken = 0;
        let mut requester = (2..=9).cycle();
        while taken + size + per_assignment <= slots {
            batch_from(requester.next().unwrap(), size);
            taken += size + per_assignment;
        }
        while taken + 1 + per_assignment <= slots {
            batch_from(requester.next().unwrap(), 1);
            taken += 1 + per_assignment;
        }
        assert_eq!(crate::RequestsInBlock::<Test>::get(), taken);
        let held_before = held(HoldReason::RequestFee, 1);
        let one: Vec<BoundedVec<u8, MaxInputBytes>> = vec![tensor(&[1.0]).try_into().unwrap()];
        assert_noop!(
            Inference::request_batch(
                RuntimeOrigin::signed(1),
                TENSOR_MODEL,
                one.clone().try_into().unwrap(),
                FEE
            ),
            Error::<Test>::BlockRequestLimit
        );
        assert_noop!(
            Inference::request_inference(
                RuntimeOrigin::signed(1),
                TENSOR_MODEL,
                one[0].clone(),
                FEE
            ),
            Error::<Test>::BlockRequestLimit
        );
        assert_eq!(held(HoldReason::RequestFee, 1), held_before);
        // The next block has its slots again.
        run_to_block(2);
        batch(size);
    });
}

#[test]
fn a_request_handed_back_alone_leaves_its_batchs_entry_to_the_rest() {
    build_and_execute(|| {
        setup();
        let ids = batch(4);
        let executor = executor_of(ids[0]);
        let deadline = 1 + <Test as Config>::ExecutionTimeout::get();
        run_to_block(2);
        // The first request, whose id keys the batch's entry, is handed back alone.
        assert_ok!(Inference::release_assignment(
            RuntimeOrigin::signed(executor),
            ids[0],
            ReleaseReason::OverLimits
        ));
        assert_eq!(
            entries_at(deadline),
            vec![(ids[0], Deadline::ExecutionSpan { count: 4 })]
        );
        // The rest are never answered: they are missed at the batch's deadline.
        let bond = bond_of(executor);
        run_to_block(deadline);
        let slash = <Test as Config>::MissedDeadlineSlash::get();
        assert_eq!(bond_of(executor), bond - 3 * slash);
        assert!(ids[1..].iter().all(|id| executor_of(*id) != executor));
        assert_eq!(Service::<Test>::get(executor).pending, 0);
    });
}

#[test]
fn entries_of_different_kinds_at_one_block_and_id_both_stay_and_like_ones_merge() {
    build_and_execute(|| {
        Inference::schedule(9, 5, Deadline::ExecutionSpan { count: 4 });
        Inference::schedule(9, 5, Deadline::ChallengeWindowSpan { count: 2 });
        Inference::schedule(9, 5, Deadline::Prune);
        let kinds_at = |block| {
            entries_at(block)
                .into_iter()
                .map(|(_, what)| what)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds_at(9),
            vec![
                Deadline::ExecutionSpan { count: 4 },
                Deadline::ChallengeWindowSpan { count: 2 },
                Deadline::Prune,
            ]
        );
        assert!(entries_at(9).iter().all(|(id, _)| *id == 5));
        // A single entry where a span of its kind is: the span covers it.
        Inference::schedule(9, 5, Deadline::Execution);
        Inference::schedule(9, 5, Deadline::PruneSpan { count: 3 });
        assert_eq!(
            kinds_at(9),
            vec![
                Deadline::ExecutionSpan { count: 4 },
                Deadline::ChallengeWindowSpan { count: 2 },
                Deadline::PruneSpan { count: 3 },
            ]
        );
        // A single execution entry is removed as its own; a span's is not.
        assert!(!Inference::unschedule_execution(9, 5));
        Inference::schedule(8, 6, Deadline::Execution);
        assert!(Inference::unschedule_execution(8, 6));
        assert!(entries_at(8).is_empty());
    });
}

#[test]
fn answering_a_batch_whole_is_free_and_splitting_it_pays() {
    build_and_execute(|| {
        setup();
        let pays =
            |result: frame_support::dispatch::DispatchResultWithPostInfo| result.unwrap().pays_fee;
        let results = |ids: &[RequestId]| -> BoundedVec<BatchResultOf<Test>, MaxBatch> {
            ids.iter()
                .map(|id| result_of(*id))
                .collect::<Vec<_>>()
                .try_into()
                .unwrap()
        };
        use frame_support::dispatch::Pays;
        let whole = batch(3);
        let split = batch(3);
        let executor = executor_of(whole[0]);
        let other = executor_of(split[0]);
        assert_eq!(
            pays(Inference::submit_results(
                RuntimeOrigin::signed(executor),
                results(&whole)
            )),
            Pays::No
        );
        assert_eq!(
            pays(Inference::submit_results(
                RuntimeOrigin::signed(other),
                results(&split[..2])
            )),
            Pays::Yes
        );
        let answer_alone = |who: AccountId, id: RequestId| {
            let output = tensor(&[1.0]);
            pays(Inference::submit_traced_result(
                RuntimeOrigin::signed(who),
                id,
                output.clone().try_into().unwrap(),
                one_step_trace(&output),
                Default::default(),
            ))
        };
        assert_eq!(answer_alone(other, split[2]), Pays::Yes);
        // A single request answered alone is its own entry: free.
        let single = crate::NextRequestId::<Test>::get();
        assert_ok!(Inference::request_inference(
            RuntimeOrigin::signed(1),
            TENSOR_MODEL,
            tensor(&[1.0]).try_into().unwrap(),
            FEE
        ));
        assert_eq!(answer_alone(executor_of(single), single), Pays::No);
    });
}

#[test]
fn a_batch_costing_more_than_one_request_may_is_refused() {
    build_and_execute(|| {
        setup();
        let flops = Models::model(&TENSOR_MODEL).unwrap().0.cost.flops;
        // Room for exactly three of the model's requests in one.
        MaxRequestCost::set(&inferchain_primitives::model::ModelCost {
            flops: 3 * flops,
            ..MaxRequestCost::get()
        });
        let before = Balances::balance(&1);
        let inputs = |n: u32| -> BoundedVec<BoundedVec<u8, MaxInputBytes>, MaxBatch> {
            (0..n)
                .map(|i| tensor(&[i as f32]).try_into().unwrap())
                .collect::<Vec<_>>()
                .try_into()
                .unwrap()
        };
        assert_noop!(
            Inference::request_batch(RuntimeOrigin::signed(1), TENSOR_MODEL, inputs(4), FEE),
            Error::<Test>::BatchTooCostly
        );
        assert_eq!(Balances::balance(&1), before);
        assert_ok!(Inference::request_batch(
            RuntimeOrigin::signed(1),
            TENSOR_MODEL,
            inputs(3),
            FEE
        ));
    });
}

#[test]
fn a_batch_and_its_results_weigh_more_for_every_byte_they_store() {
    build_and_execute(|| {
        let inputs = |len: usize| -> Vec<BoundedVec<u8, MaxInputBytes>> {
            vec![vec![0u8; len].try_into().unwrap(); 4]
        };
        let results = |len: usize| -> Vec<BatchResultOf<Test>> {
            (0..4)
                .map(|id| {
                    (
                        id,
                        vec![0u8; len].try_into().unwrap(),
                        one_step_trace(&[]),
                        Default::default(),
                    )
                })
                .collect()
        };
        for (small, large) in [(1, 2), (500, 501), (1_000, 1_024)] {
            assert!(
                Inference::request_batch_weight(&inputs(large)).ref_time()
                    > Inference::request_batch_weight(&inputs(small)).ref_time()
            );
            assert!(
                Inference::submit_results_weight(&results(large)).ref_time()
                    > Inference::submit_results_weight(&results(small)).ref_time()
            );
        }
        // And more for every input or result.
        assert!(
            Inference::request_batch_weight(&inputs(8)[..2]).ref_time()
                < Inference::request_batch_weight(&inputs(8)[..3]).ref_time()
        );
        assert!(
            Inference::submit_results_weight(&results(8)[..2]).ref_time()
                < Inference::submit_results_weight(&results(8)[..3]).ref_time()
        );
    });
}
