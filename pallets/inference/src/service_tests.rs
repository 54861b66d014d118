//! Tests of service declarations, the per-model draw, capacity, liveness and storage
//! deposits.

#![allow(clippy::unwrap_used)]

use crate::{
    game_tests::events, mock::*, ActiveExecutors, Error, Event, ExecutorStatus, Executors,
    HoldReason, ModelPools, ReleaseReason, ReleasedBy, RequestDeposits, RequestStatus, Requests,
    Service,
};
use frame_support::{
    assert_noop, assert_ok,
    traits::fungible::{Inspect, InspectHold},
    BoundedVec,
};
use inferchain_primitives::{model::ModelStatus, ModelId, H256};

fn serve(
    who: AccountId,
    models: &[ModelId],
    capacity: u32,
) -> frame_support::dispatch::DispatchResult {
    Inference::serve(
        RuntimeOrigin::signed(who),
        models.to_vec().try_into().unwrap(),
        capacity,
    )
}

fn register(who: AccountId, bond: Balance) {
    assert_ok!(Inference::register_executor(
        RuntimeOrigin::signed(who),
        bond
    ));
}

fn try_request(model: ModelId) -> Result<u64, frame_support::sp_runtime::DispatchError> {
    let id = crate::NextRequestId::<Test>::get();
    let input = if model == TEXT_MODEL {
        text(b"hello")
    } else {
        tensor(&[1.0])
    };
    let input: BoundedVec<u8, MaxInputBytes> = input.try_into().unwrap();
    Inference::request_inference(RuntimeOrigin::signed(1), model, input, FEE)?;
    Ok(id)
}

fn executor_of(id: u64) -> AccountId {
    Requests::<Test>::get(id).unwrap().executor
}

fn pool(model: ModelId) -> Vec<(AccountId, Balance)> {
    let mut p = ModelPools::<Test>::get(model).into_inner();
    p.sort();
    p
}

fn held(reason: HoldReason, who: AccountId) -> Balance {
    Balances::balance_on_hold(&reason.into(), &who)
}

#[test]
fn a_declaration_is_checked_and_announced() {
    build_and_execute(|| {
        assert_noop!(serve(10, &[TENSOR_MODEL], 1), Error::<Test>::NotExecutor);
        register(10, 1_000);
        assert_noop!(serve(10, &[TENSOR_MODEL], 0), Error::<Test>::ZeroCapacity);
        assert_noop!(
            serve(10, &[TENSOR_MODEL, TENSOR_MODEL], 1),
            Error::<Test>::DuplicateModel
        );
        assert_noop!(
            serve(10, &[H256::repeat_byte(0x99)], 1),
            Error::<Test>::UnknownModel
        );
        assert_ok!(Models::set_model_status(
            RuntimeOrigin::root(),
            BARE_MODEL,
            ModelStatus::Deprecated
        ));
        assert_noop!(
            serve(10, &[TENSOR_MODEL, BARE_MODEL], 1),
            Error::<Test>::ModelNotActive
        );
        assert_ok!(serve(10, &[TENSOR_MODEL, TEXT_MODEL], 2));
        System::assert_last_event(
            Event::ServiceDeclared {
                who: 10,
                models: vec![TENSOR_MODEL, TEXT_MODEL],
                capacity: 2,
            }
            .into(),
        );
        assert_eq!(pool(TENSOR_MODEL), vec![(10, 1_000)]);
        assert_eq!(pool(TEXT_MODEL), vec![(10, 1_000)]);
        // A new declaration replaces the old one: the text pool is left.
        assert_ok!(serve(10, &[TENSOR_MODEL], 2));
        assert!(pool(TEXT_MODEL).is_empty());
        assert_ok!(Inference::unregister_executor(RuntimeOrigin::signed(10)));
        assert!(pool(TENSOR_MODEL).is_empty());
        assert_noop!(
            serve(10, &[TENSOR_MODEL], 1),
            Error::<Test>::NotActiveExecutor
        );
    });
}

#[test]
fn requests_are_drawn_only_among_a_models_servers() {
    build_and_execute(|| {
        register(10, 1_000);
        register(11, 1_000);
        assert_ok!(serve(10, &[TENSOR_MODEL], 100));
        assert_ok!(serve(11, &[TEXT_MODEL], 100));
        for _ in 0..20 {
            let id = try_request(TENSOR_MODEL).unwrap();
            assert_eq!(executor_of(id), 10);
            let id = try_request(TEXT_MODEL).unwrap();
            assert_eq!(executor_of(id), 11);
        }
        // Nobody serves the game model: the request is refused and holds nothing.
        let free = Balances::balance(&1);
        let before = crate::NextRequestId::<Test>::get();
        assert_ok!(Models::set_model_commitments(
            RuntimeOrigin::root(),
            GAME_MODEL,
            TENSOR_COMMITMENTS
        ));
        assert_noop!(try_request(GAME_MODEL), Error::<Test>::NoExecutors);
        assert_eq!(Balances::balance(&1), free);
        assert_eq!(crate::NextRequestId::<Test>::get(), before);
    });
}

#[test]
fn a_full_executor_leaves_the_pool_until_it_answers() {
    build_and_execute(|| {
        register(10, 1_000);
        register(11, 1_000);
        assert_ok!(serve(10, &[TENSOR_MODEL], 2));
        assert_ok!(serve(11, &[TENSOR_MODEL], 1));
        let ids: Vec<u64> = (0..3).map(|_| try_request(TENSOR_MODEL).unwrap()).collect();
        let mut assigned: Vec<AccountId> = ids.iter().map(|id| executor_of(*id)).collect();
        assigned.sort();
        assert_eq!(assigned, vec![10, 10, 11]);
        assert!(pool(TENSOR_MODEL).is_empty());
        // Every slot is taken: the next request is refused, not queued on a full
        // executor.
        assert_noop!(try_request(TENSOR_MODEL), Error::<Test>::NoExecutors);
        let of_11 = *ids.iter().find(|id| executor_of(**id) == 11).unwrap();
        assert_ok!(submit(11, of_11, tensor(&[1.0])));
        assert_eq!(pool(TENSOR_MODEL), vec![(11, 1_000)]);
        assert_eq!(Service::<Test>::get(11).pending, 0);
        assert_eq!(executor_of(try_request(TENSOR_MODEL).unwrap()), 11);
    });
}

#[test]
fn the_draw_is_weighted_by_bond() {
    build_and_execute(|| {
        register(10, 1_000);
        register(11, 3_000);
        assert_ok!(serve(10, &[TENSOR_MODEL], 10_000));
        assert_ok!(serve(11, &[TENSOR_MODEL], 10_000));
        let draws = 2_000u32;
        let heavy = (0..draws)
            .filter(|i| Inference::pick_executor(&TENSOR_MODEL, &i.to_le_bytes(), &[]) == Some(11))
            .count() as u32;
        // Expected 1,500 of 2,000 (3:1); 5 standard deviations are ~97.
        assert!((1_400..=1_600).contains(&heavy), "{heavy} of {draws}");
        // An excluded executor is never drawn, whatever the point.
        assert!((0..200u32).all(|i| {
            Inference::pick_executor(&TENSOR_MODEL, &i.to_le_bytes(), &[11]) == Some(10)
        }));
        assert_eq!(
            Inference::pick_executor(&TENSOR_MODEL, b"x", &[10, 11]),
            None
        );
    });
}

#[test]
fn a_slash_lowers_the_executors_weight_in_its_pools() {
    build_and_execute(|| {
        register(10, 1_000);
        register(11, 1_000);
        assert_ok!(serve(10, &[TENSOR_MODEL, TEXT_MODEL], 10));
        assert_ok!(serve(11, &[TENSOR_MODEL], 10));
        let id = try_request(TENSOR_MODEL).unwrap();
        let late = executor_of(id);
        run_to_block(1 + ExecutionTimeout::get());
        let bond = Executors::<Test>::get(late).unwrap().bond;
        assert_eq!(bond, 1_000 - MissedDeadlineSlash::get());
        assert!(pool(TENSOR_MODEL).contains(&(late, bond)));
        if late == 10 {
            assert_eq!(pool(TEXT_MODEL), vec![(10, bond)]);
        }
    });
}

#[test]
fn an_executor_that_keeps_missing_deadlines_is_deactivated() {
    build_and_execute(|| {
        register(10, 1_000);
        assert_ok!(serve(10, &[TENSOR_MODEL], 10));
        // One miss, then an answer: the count starts again.
        let first = try_request(TENSOR_MODEL).unwrap();
        run_to_block(1 + ExecutionTimeout::get());
        assert_eq!(Service::<Test>::get(10).missed_in_row, 1);
        // Nobody else serves it: the request expired.
        assert!(matches!(
            Requests::<Test>::get(first).unwrap().status,
            RequestStatus::Expired { .. }
        ));
        let answered = try_request(TENSOR_MODEL).unwrap();
        assert_ok!(submit(10, answered, tensor(&[1.0])));
        assert_eq!(Service::<Test>::get(10).missed_in_row, 0);
        // Now MaxMissedInRow misses in a row, each in a block of its own.
        let mut last = 0;
        for _ in 0..MaxMissedInRow::get() {
            assert_eq!(
                Executors::<Test>::get(10).unwrap().status,
                ExecutorStatus::Active
            );
            try_request(TENSOR_MODEL).unwrap();
            last = System::block_number() + ExecutionTimeout::get();
            run_to_block(last);
        }
        let until = last + UnbondingPeriod::get();
        assert_eq!(
            Executors::<Test>::get(10).unwrap().status,
            ExecutorStatus::Deactivated { until }
        );
        assert!(ActiveExecutors::<Test>::get().is_empty());
        assert!(pool(TENSOR_MODEL).is_empty());
        assert!(events().contains(&Event::ExecutorDeactivated { who: 10, until }));
        // Its bond lost only the misses' slashes (1 + MaxMissedInRow of them).
        let misses = 1 + u64::from(MaxMissedInRow::get());
        assert_eq!(
            Executors::<Test>::get(10).unwrap().bond,
            1_000 - misses * MissedDeadlineSlash::get()
        );
    });
}

#[test]
fn a_request_holds_a_storage_deposit_returned_when_pruned() {
    build_and_execute(|| {
        RequestDepositBase::set(7);
        DepositPerByte::set(2);
        register(10, 1_000);
        assert_ok!(serve(10, &[TENSOR_MODEL], 10));
        let id = try_request(TENSOR_MODEL).unwrap();
        let stored = tensor(&[1.0]).len() as u64 + 256; // the input and max output
        let deposit = 7 + 2 * stored;
        assert_eq!(held(HoldReason::StorageDeposit, 1), deposit);
        assert_eq!(RequestDeposits::<Test>::get(id), Some(deposit));
        assert_ok!(submit(10, id, tensor(&[1.0])));
        let window_end = 1 + ChallengePeriod::get();
        run_to_block(window_end);
        // Final, but still stored (and its deposit held) for the retention period.
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Finalized { .. }
        ));
        assert_eq!(held(HoldReason::StorageDeposit, 1), deposit);
        run_to_block(window_end + ResultRetention::get());
        assert!(Requests::<Test>::get(id).is_none());
        assert_eq!(held(HoldReason::StorageDeposit, 1), 0);
        assert!(events().contains(&Event::RequestPruned {
            id,
            deposit_returned: deposit
        }));
    });
}

#[test]
fn a_requester_who_cannot_pay_the_deposit_keeps_its_fee() {
    build_and_execute(|| {
        register(10, 1_000);
        assert_ok!(serve(10, &[TENSOR_MODEL], 10));
        // More than the account has left after the fee.
        DepositPerByte::set(ENDOWMENT);
        assert!(try_request(TENSOR_MODEL).is_err());
        assert_eq!(held(HoldReason::RequestFee, 1), 0);
        assert_eq!(held(HoldReason::StorageDeposit, 1), 0);
        assert_eq!(Balances::balance(&1), ENDOWMENT);
        assert_eq!(Service::<Test>::get(10).pending, 0);
    });
}

fn release(who: AccountId, id: u64) -> frame_support::dispatch::DispatchResultWithPostInfo {
    Inference::release_assignment(
        RuntimeOrigin::signed(who),
        id,
        ReleaseReason::CannotServeModel,
    )
}

/// Runs to the end of request `id`'s challenge window; its result is then final.
fn finalize_unchallenged(id: u64) {
    let RequestStatus::Submitted { window_end } = Requests::<Test>::get(id).unwrap().status else {
        panic!("request {id} has no submitted result")
    };
    run_to_block(window_end);
    assert!(matches!(
        Requests::<Test>::get(id).unwrap().status,
        RequestStatus::Finalized { .. }
    ));
}

fn slashes() -> Vec<(AccountId, Balance)> {
    events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Slashed { who, amount, .. } => Some((who, amount)),
            _ => None,
        })
        .collect()
}

#[test]
fn executors_that_hand_back_a_request_nobody_can_run_lose_nothing() {
    build_and_execute(|| {
        for e in [10, 11] {
            register(e, 1_000);
            assert_ok!(serve(e, &[TENSOR_MODEL, TEXT_MODEL], 10));
        }
        let id = try_request(TENSOR_MODEL).unwrap();
        let first = executor_of(id);
        let other = if first == 10 { 11 } else { 10 };
        assert_noop!(release(first, id + 1), Error::<Test>::UnknownRequest);
        assert_noop!(release(other, id), Error::<Test>::NotAssignedExecutor);
        assert_noop!(release(1, id), Error::<Test>::NotAssignedExecutor);
        assert_ok!(release(first, id));
        assert!(events().contains(&Event::AssignmentReleased {
            id,
            executor: first,
            model: TENSOR_MODEL,
            reason: ReleaseReason::CannotServeModel,
        }));
        System::assert_last_event(
            Event::RequestReassigned {
                id,
                from: first,
                to: other,
                attempt: 2,
            }
            .into(),
        );
        // Nothing taken yet: whether the release was owed is known when the request ends.
        assert!(slashes().is_empty());
        assert_eq!(ReleasedBy::<Test>::get(id).to_vec(), vec![first]);
        // It no longer serves the model (but still the other one), and its slot is free.
        assert_eq!(
            Service::<Test>::get(first).models.to_vec(),
            vec![TEXT_MODEL]
        );
        assert_eq!(pool(TENSOR_MODEL), vec![(other, 1_000)]);
        assert_eq!(Service::<Test>::get(first).pending, 0);
        // The last server hands it back too (a model or input beyond both nodes' limits):
        // the request expires with a full refund and neither executor is slashed.
        assert_ok!(release(other, id));
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Expired { .. }
        ));
        System::assert_has_event(
            Event::ReleasesForgiven {
                id,
                executors: vec![first, other],
            }
            .into(),
        );
        assert!(slashes().is_empty());
        assert_eq!(Executors::<Test>::get(first).unwrap().bond, 1_000);
        assert_eq!(Executors::<Test>::get(other).unwrap().bond, 1_000);
        assert!(!ReleasedBy::<Test>::contains_key(id));
        assert_eq!(Balances::balance(&1), ENDOWMENT);
        assert_noop!(release(other, id), Error::<Test>::NotPending);
    });
}

#[test]
fn colluding_releasers_of_a_request_another_executor_answers_are_each_slashed() {
    build_and_execute(|| {
        for e in [10, 11, 12] {
            register(e, 1_000);
            assert_ok!(serve(e, &[TENSOR_MODEL, TEXT_MODEL], 10));
        }
        let id = try_request(TENSOR_MODEL).unwrap();
        // Two executors (one party's sybils, or lazy nodes) hand it back in turn.
        let mut released = Vec::new();
        for _ in 0..2 {
            let who = executor_of(id);
            assert_ok!(release(who, id));
            released.push(who);
        }
        let honest = executor_of(id);
        assert!(!released.contains(&honest));
        assert!(slashes().is_empty());
        // Until the request ends each releaser stays bound: it cannot unbond out of it.
        for who in &released {
            assert_eq!(Executors::<Test>::get(who).unwrap().obligations, 1);
        }
        // The third runs it: its result stands, so the model was runnable after all.
        let output = tensor(&[2.0]);
        assert_ok!(submit(honest, id, output));
        finalize_unchallenged(id);
        let mut slashed = slashes();
        slashed.sort();
        let mut expected: Vec<(AccountId, Balance)> =
            released.iter().map(|w| (*w, ReleaseSlash::get())).collect();
        expected.sort();
        assert_eq!(slashed, expected, "each releaser, once, and nobody else");
        for who in &released {
            assert_eq!(
                Executors::<Test>::get(who).unwrap().bond,
                1_000 - ReleaseSlash::get()
            );
            assert_eq!(
                held(HoldReason::ExecutorBond, *who),
                1_000 - ReleaseSlash::get()
            );
        }
        assert_eq!(Executors::<Test>::get(honest).unwrap().bond, 1_000);
        assert!(!ReleasedBy::<Test>::contains_key(id));
        for who in &released {
            assert_eq!(Executors::<Test>::get(who).unwrap().obligations, 0);
        }
    });
}

#[test]
fn a_hostile_input_neither_evicts_nor_slashes_the_executors_it_overwhelms() {
    build_and_execute(|| {
        for e in [10, 11] {
            register(e, 1_000);
            assert_ok!(serve(e, &[TENSOR_MODEL], 10));
        }
        // The input is beyond the first executor's limits (its run was stopped).
        let id = try_request(TENSOR_MODEL).unwrap();
        let first = executor_of(id);
        assert_ok!(Inference::release_assignment(
            RuntimeOrigin::signed(first),
            id,
            ReleaseReason::OverLimits
        ));
        System::assert_has_event(
            Event::AssignmentReleased {
                id,
                executor: first,
                model: TENSOR_MODEL,
                reason: ReleaseReason::OverLimits,
            }
            .into(),
        );
        // It still serves the model: the attacker's input did not take it out of the pool.
        assert!(Service::<Test>::get(first).models.contains(&TENSOR_MODEL));
        assert_eq!(pool(TENSOR_MODEL).len(), 2);
        assert!(!ReleasedBy::<Test>::contains_key(id));
        // Another executor with larger limits answers, and its result stands: the first
        // is still not slashed.
        let other = executor_of(id);
        assert_ne!(other, first);
        assert_ok!(submit(other, id, tensor(&[2.0])));
        finalize_unchallenged(id);
        assert!(slashes().is_empty());
        assert_eq!(Executors::<Test>::get(first).unwrap().bond, 1_000);
        assert_eq!(Executors::<Test>::get(first).unwrap().obligations, 0);
    });
}

#[test]
fn a_release_at_the_deadline_is_too_late() {
    build_and_execute(|| {
        register(10, 1_000);
        assert_ok!(serve(10, &[TENSOR_MODEL], 10));
        let id = try_request(TENSOR_MODEL).unwrap();
        System::set_block_number(1 + ExecutionTimeout::get());
        assert_noop!(
            Inference::release_assignment(RuntimeOrigin::signed(10), id, ReleaseReason::OverLimits),
            Error::<Test>::ResultTooLate
        );
    });
}

#[test]
fn a_batch_takes_every_input_or_none() {
    build_and_execute(|| {
        RequestDepositBase::set(3);
        register(10, 1_000);
        register(11, 1_000);
        assert_ok!(serve(10, &[TENSOR_MODEL], 100));
        assert_ok!(serve(11, &[TENSOR_MODEL], 100));
        let batch = |inputs: Vec<Vec<u8>>| {
            let inputs: Vec<BoundedVec<u8, MaxInputBytes>> =
                inputs.into_iter().map(|i| i.try_into().unwrap()).collect();
            Inference::request_batch(
                RuntimeOrigin::signed(1),
                TENSOR_MODEL,
                inputs.try_into().unwrap(),
                FEE,
            )
        };
        assert_noop!(batch(vec![]), Error::<Test>::EmptyBatch);
        // One bad input refuses the whole batch; nothing is held.
        assert_noop!(
            batch(vec![tensor(&[1.0]), b"junk".to_vec(), tensor(&[2.0])]),
            Error::<Test>::MalformedInput
        );
        assert_noop!(
            Inference::request_batch(
                RuntimeOrigin::signed(1),
                TENSOR_MODEL,
                vec![tensor(&[1.0]).try_into().unwrap()].try_into().unwrap(),
                FEE - 1,
            ),
            Error::<Test>::FeeAboveMax
        );
        let first = crate::NextRequestId::<Test>::get();
        let inputs: Vec<Vec<u8>> = (0..MaxBatchSize::get())
            .map(|i| tensor(&[i as f32]))
            .collect();
        assert_ok!(batch(inputs.clone()));
        let n = u64::from(MaxBatchSize::get());
        for (k, input) in inputs.iter().enumerate() {
            let id = first + k as u64;
            let request = Requests::<Test>::get(id).unwrap();
            assert_eq!(request.input.to_vec(), *input);
            assert!(events().contains(&Event::RequestSubmitted {
                id,
                model: TENSOR_MODEL,
                requester: 1,
                executor: request.executor,
            }));
        }
        assert_eq!(held(HoldReason::RequestFee, 1), n * FEE);
        // The base deposit each (DepositPerByte is zero here).
        assert_eq!(held(HoldReason::StorageDeposit, 1), n * 3);
        // The batch is drawn once: one server has all of it.
        let (p10, p11) = (
            Service::<Test>::get(10).pending,
            Service::<Test>::get(11).pending,
        );
        assert_eq!(u64::from(p10.max(p11)), n);
        assert_eq!(p10.min(p11), 0);
    });
}

#[test]
fn a_block_takes_at_most_max_assignments_per_block() {
    build_and_execute(|| {
        register(10, 1_000);
        assert_ok!(serve(10, &[TENSOR_MODEL], 10_000));
        // Single requests: one assignment each.
        for _ in 0..MaxRequestSlotsPerBlock::get() / (1 + SlotsPerAssignment::get()) {
            try_request(TENSOR_MODEL).unwrap();
        }
        let held_before = held(HoldReason::RequestFee, 1);
        assert_noop!(try_request(TENSOR_MODEL), Error::<Test>::BlockRequestLimit);
        assert_eq!(held(HoldReason::RequestFee, 1), held_before);
        // The next block takes requests again.
        run_to_block(2);
        assert_ok!(try_request(TENSOR_MODEL));
    });
}

#[test]
fn misses_in_one_block_count_once() {
    build_and_execute(|| {
        register(10, 1_000);
        assert_ok!(serve(10, &[TENSOR_MODEL], 100));
        // A burst: more assignments than the executor answers, all due in one block.
        for _ in 0..(2 * MaxMissedInRow::get()) {
            try_request(TENSOR_MODEL).unwrap();
        }
        run_to_block(1 + ExecutionTimeout::get());
        assert_eq!(Service::<Test>::get(10).missed_in_row, 1);
        assert_eq!(
            Executors::<Test>::get(10).unwrap().status,
            ExecutorStatus::Active
        );
    });
}
