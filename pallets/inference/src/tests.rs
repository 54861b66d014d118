#![allow(clippy::unwrap_used)]

use crate::{
    mock::*, ActiveExecutors, Error, Event, ExecutorStatus, Executors, HoldReason, RequestStatus,
    Requests, Results, SlashReason, TotalBurned,
};
use frame_support::{
    assert_noop, assert_ok,
    traits::fungible::{Inspect, InspectHold},
    BoundedVec,
};
use inferchain_primitives::{
    blake2_256,
    model::{ModelCost, ModelRegistry, ModelStatus},
    H256,
};

fn bounded<S: frame_support::traits::Get<u32>>(v: Vec<u8>) -> BoundedVec<u8, S> {
    v.try_into().unwrap()
}

fn register(executors: &[AccountId]) {
    for e in executors {
        assert_ok!(bond_and_serve(*e, 1_000));
    }
}

fn request(requester: AccountId, input: Vec<u8>) -> u64 {
    let id = crate::NextRequestId::<Test>::get();
    assert_ok!(Inference::request_inference(
        RuntimeOrigin::signed(requester),
        TENSOR_MODEL,
        bounded(input),
        FEE
    ));
    id
}

fn executor_of(id: u64) -> AccountId {
    Requests::<Test>::get(id).unwrap().executor
}

fn held(reason: HoldReason, who: AccountId) -> Balance {
    Balances::balance_on_hold(&reason.into(), &who)
}

fn free(who: AccountId) -> Balance {
    Balances::balance(&who)
}

fn events() -> Vec<Event<Test>> {
    System::events()
        .into_iter()
        .filter_map(|r| {
            if let RuntimeEvent::Inference(e) = r.event {
                Some(e)
            } else {
                None
            }
        })
        .collect()
}

const RIGHT: [f32; 2] = [1.0, 2.0];

/// Registers executors 10..=15, takes a request from account 1 and posts `posted`.
fn posted_result(posted: &[f32]) -> (u64, AccountId) {
    register(&[10, 11, 12, 13, 14, 15]);
    let id = request(1, tensor(&[0.5, 0.5]));
    let executor = executor_of(id);
    assert_ok!(submit(executor, id, tensor(posted)));
    (id, executor)
}

// ---------------------------------------------------------------- executors

#[test]
fn executors_bond_and_join_the_active_set() {
    build_and_execute(|| {
        assert_ok!(Inference::register_executor(RuntimeOrigin::signed(10), 150));
        assert_eq!(held(HoldReason::ExecutorBond, 10), 150);
        assert_eq!(free(10), ENDOWMENT - 150);
        assert_eq!(ActiveExecutors::<Test>::get().into_inner(), vec![10]);
        System::assert_last_event(Event::ExecutorRegistered { who: 10, bond: 150 }.into());

        assert_noop!(
            Inference::register_executor(RuntimeOrigin::signed(10), 150),
            Error::<Test>::AlreadyExecutor
        );
        assert_noop!(
            Inference::register_executor(RuntimeOrigin::signed(11), 99),
            Error::<Test>::BondTooLow
        );
        // More than the account has: the hold fails and nothing is taken.
        assert!(Inference::register_executor(RuntimeOrigin::signed(11), ENDOWMENT * 2).is_err());
        assert_eq!(free(11), ENDOWMENT);
        assert!(!Executors::<Test>::contains_key(11));
    });
}

#[test]
fn unbonding_keeps_the_bond_until_the_period_ends_and_duties_are_done() {
    build_and_execute(|| {
        register(&[10]);
        assert_noop!(
            Inference::withdraw_bond(RuntimeOrigin::signed(10)),
            Error::<Test>::NotActiveExecutor
        );
        assert_noop!(
            Inference::withdraw_bond(RuntimeOrigin::signed(99)),
            Error::<Test>::NotExecutor
        );
        assert_noop!(
            Inference::unregister_executor(RuntimeOrigin::signed(99)),
            Error::<Test>::NotExecutor
        );

        let id = request(1, tensor(&[1.0]));
        assert_eq!(executor_of(id), 10);
        assert_ok!(Inference::unregister_executor(RuntimeOrigin::signed(10)));
        System::assert_last_event(Event::ExecutorUnbonding { who: 10, until: 51 }.into());
        assert!(ActiveExecutors::<Test>::get().is_empty());
        assert_noop!(
            Inference::unregister_executor(RuntimeOrigin::signed(10)),
            Error::<Test>::AlreadyUnbonding
        );
        assert_noop!(
            Inference::withdraw_bond(RuntimeOrigin::signed(10)),
            Error::<Test>::StillUnbonding
        );

        // It still owes the result; it posts it and the window passes.
        assert_ok!(submit(10, id, tensor(&[3.0])));
        run_to_block(51);
        assert_ok!(Inference::withdraw_bond(RuntimeOrigin::signed(10)));
        assert_eq!(held(HoldReason::ExecutorBond, 10), 0);
        assert!(!Executors::<Test>::contains_key(10));
        System::assert_last_event(
            Event::BondWithdrawn {
                who: 10,
                amount: 1_000,
            }
            .into(),
        );
    });
}

#[test]
fn open_duties_block_withdrawal_even_after_unbonding() {
    build_and_execute(|| {
        register(&[10]);
        assert_ok!(Inference::unregister_executor(RuntimeOrigin::signed(10)));
        System::set_block_number(60);
        // Defensive: the unbonding period outlasts every duty (integrity test), but if a
        // congested queue ever left one open, the bond must stay.
        Executors::<Test>::mutate(10, |i| i.as_mut().unwrap().obligations = 1);
        assert_noop!(
            Inference::withdraw_bond(RuntimeOrigin::signed(10)),
            Error::<Test>::OpenObligations
        );
        Executors::<Test>::mutate(10, |i| i.as_mut().unwrap().obligations = 0);
        assert_ok!(Inference::withdraw_bond(RuntimeOrigin::signed(10)));
    });
}

// ---------------------------------------------------------------- requests

#[test]
fn a_request_holds_the_fee_and_assigns_an_active_executor() {
    build_and_execute(|| {
        register(&[10, 11, 12]);
        let id = request(1, tensor(&[0.5, 0.25]));
        let r = Requests::<Test>::get(id).unwrap();
        assert!([10, 11, 12].contains(&r.executor));
        assert_eq!(r.fee, FEE);
        assert_eq!(r.status, RequestStatus::Pending { deadline: 1 + 3 });
        assert_eq!(r.input_hash, H256(blake2_256(&tensor(&[0.5, 0.25]))));
        assert_eq!(held(HoldReason::RequestFee, 1), FEE);
        assert_eq!(free(1), ENDOWMENT - FEE);
        System::assert_last_event(
            Event::RequestSubmitted {
                id,
                model: TENSOR_MODEL,
                requester: 1,
                executor: r.executor,
            }
            .into(),
        );
        assert_eq!(crate::NextRequestId::<Test>::get(), id + 1);
    });
}

#[test]
fn a_model_costlier_than_executors_must_provide_is_refused_before_anything_is_held() {
    build_and_execute(|| {
        register(&[10]);
        let requester = 1;
        let before = free(requester);
        let cost = <Models as ModelRegistry<Balance>>::model(&TENSOR_MODEL)
            .expect("registered")
            .0
            .cost;
        // The requirement on executors drops below the model's cost (a runtime upgrade
        // could do this to a model registered earlier), on either count.
        for lowered in [
            ModelCost {
                flops: cost.flops - 1,
                ..MaxModelCost::get()
            },
            ModelCost {
                peak_memory_bytes: cost.peak_memory_bytes - 1,
                ..MaxModelCost::get()
            },
        ] {
            MaxRequestCost::set(&lowered);
            assert_noop!(
                Inference::request_inference(
                    RuntimeOrigin::signed(requester),
                    TENSOR_MODEL,
                    bounded(tensor(&[1.0])),
                    FEE
                ),
                Error::<Test>::ModelTooCostly
            );
            assert_noop!(
                Inference::request_batch(
                    RuntimeOrigin::signed(requester),
                    TENSOR_MODEL,
                    vec![bounded(tensor(&[1.0]))].try_into().unwrap(),
                    FEE
                ),
                Error::<Test>::ModelTooCostly
            );
        }
        assert_eq!(free(requester), before);
        // At exactly the model's cost, it is taken.
        MaxRequestCost::set(&cost);
        assert_ok!(Inference::request_inference(
            RuntimeOrigin::signed(requester),
            TENSOR_MODEL,
            bounded(tensor(&[1.0])),
            FEE
        ));
    });
}

#[test]
fn bad_requests_are_rejected_by_name_and_cost_nothing() {
    build_and_execute(|| {
        let call = |model, input: Vec<u8>, max_fee| {
            Inference::request_inference(RuntimeOrigin::signed(1), model, bounded(input), max_fee)
        };
        assert_noop!(
            call(TENSOR_MODEL, tensor(&[1.0]), FEE),
            Error::<Test>::NoExecutors
        );
        register(&[10]);
        assert_noop!(
            call(H256::repeat_byte(9), tensor(&[1.0]), FEE),
            Error::<Test>::UnknownModel
        );
        assert_noop!(
            call(TENSOR_MODEL, tensor(&[1.0]), FEE - 1),
            Error::<Test>::FeeAboveMax
        );
        // 17 values: the shape's dynamic dim allows 16.
        assert_noop!(
            call(TENSOR_MODEL, tensor(&[0.0; 17]), FEE),
            Error::<Test>::InputSpecMismatch
        );
        // 40 values: 160+ bytes, above the model's 128-byte limit.
        assert_noop!(
            call(TENSOR_MODEL, tensor(&[0.0; 40]), FEE),
            Error::<Test>::InputTooLarge
        );
        assert_noop!(
            call(TENSOR_MODEL, vec![0xde, 0xad], FEE),
            Error::<Test>::MalformedInput
        );
        assert_noop!(
            call(TENSOR_MODEL, tensor(&[f32::NAN]), FEE),
            Error::<Test>::NonFiniteInput
        );
        assert_noop!(
            call(TENSOR_MODEL, text(b"hello"), FEE),
            Error::<Test>::InputSpecMismatch
        );
        assert_noop!(
            call(TEXT_MODEL, text(&[0xc3, 0x28]), FEE),
            Error::<Test>::InvalidUtf8Input
        );
        assert_noop!(
            call(TEXT_MODEL, text(&[b'a'; 33]), FEE),
            Error::<Test>::InputTooLarge
        );
        assert_ok!(call(TEXT_MODEL, text(b"a sentence"), FEE));
        // Without dispute commitments nothing can be disputed, so nothing is taken.
        assert_noop!(
            call(BARE_MODEL, tensor(&[1.0]), FEE),
            Error::<Test>::NoCommitments
        );

        assert_ok!(Models::set_model_status(
            RuntimeOrigin::root(),
            TENSOR_MODEL,
            ModelStatus::Deprecated
        ));
        assert_noop!(
            call(TENSOR_MODEL, tensor(&[1.0]), FEE),
            Error::<Test>::ModelNotActive
        );
        assert_ok!(Models::set_model_status(
            RuntimeOrigin::root(),
            TENSOR_MODEL,
            ModelStatus::Retired
        ));
        assert_noop!(
            call(TENSOR_MODEL, tensor(&[1.0]), FEE),
            Error::<Test>::ModelNotActive
        );

        // A requester who cannot pay keeps what it has.
        let poor = 99;
        assert!(Inference::request_inference(
            RuntimeOrigin::signed(poor),
            TEXT_MODEL,
            bounded(text(b"x")),
            FEE
        )
        .is_err());
        assert_eq!(free(poor), 0);
    });
}

#[test]
fn only_the_assigned_executor_posts_a_well_formed_result_in_time() {
    build_and_execute(|| {
        register(&[10, 11]);
        let id = request(1, tensor(&[1.0]));
        let executor = executor_of(id);
        let other = if executor == 10 { 11 } else { 10 };
        let submit = |who, out: Vec<u8>| submit(who, id, out);

        assert_noop!(
            crate::mock::submit(executor, 77, tensor(&[1.0])),
            Error::<Test>::UnknownRequest
        );
        assert_noop!(
            submit(other, tensor(&[1.0])),
            Error::<Test>::NotAssignedExecutor
        );
        assert_noop!(
            submit(executor, vec![1, 2, 3]),
            Error::<Test>::MalformedOutput
        );
        assert_noop!(
            submit(executor, tensor(&[0.0; 17])),
            Error::<Test>::MalformedOutput
        );
        assert_noop!(
            submit(executor, tensor(&[0.0; 64])),
            Error::<Test>::OutputTooLarge
        );
        // The trace must end in the output: another output's leaf, or another leaf count.
        let post = |trace| {
            Inference::submit_traced_result(
                RuntimeOrigin::signed(executor),
                id,
                bounded(tensor(&RIGHT)),
                trace,
                Default::default(),
            )
        };
        assert_noop!(
            post(one_step_trace(&tensor(&[5.0]))),
            Error::<Test>::BadTrace
        );
        let mut two = one_step_trace(&tensor(&RIGHT));
        two.leaves = 2;
        assert_noop!(post(two), Error::<Test>::BadTrace);

        assert_ok!(submit(executor, tensor(&RIGHT)));
        let hash = H256(blake2_256(&tensor(&RIGHT)));
        System::assert_last_event(
            Event::ResultSubmitted {
                id,
                executor,
                output_hash: hash,
                window_end: 1 + 4,
            }
            .into(),
        );
        assert_noop!(submit(executor, tensor(&RIGHT)), Error::<Test>::NotPending);
    });
}

#[test]
fn an_untraced_result_from_before_the_upgrade_is_not_paid_at_its_windows_end() {
    build_and_execute(|| {
        let (id, executor) = posted_result(&RIGHT);
        // What runtime 100 left: a result posted without a trace, which no game can
        // dispute.
        crate::ResultTraces::<Test>::remove(id);
        let bond = Executors::<Test>::get(executor).unwrap().bond;
        run_to_block(1 + 4);
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Expired { .. }
        ));
        assert!(Results::<Test>::get(id).is_none());
        assert_eq!(free(1), ENDOWMENT, "the requester is refunded");
        assert_eq!(
            free(executor),
            ENDOWMENT - 1_000,
            "the executor is not paid"
        );
        assert_eq!(Executors::<Test>::get(executor).unwrap().bond, bond);
        assert_eq!(Executors::<Test>::get(executor).unwrap().obligations, 0);
    });
}

#[test]
fn a_late_result_is_refused_even_when_the_queue_runs_behind() {
    build_and_execute(|| {
        register(&[10, 11]);
        let id = request(1, tensor(&[1.0]));
        let executor = executor_of(id);
        // Deadline at block 1 + 3; the queue has not reached it (no `on_initialize` ran).
        System::set_block_number(4);
        assert_noop!(
            submit(executor, id, tensor(&RIGHT)),
            Error::<Test>::ResultTooLate
        );
        // When the queue gets there, the missed deadline is slashed as usual.
        run_to_block(5);
        assert!(events().contains(&Event::Slashed {
            who: executor,
            amount: 10,
            reason: SlashReason::MissedDeadline
        }));
    });
}

#[test]
fn an_unchallenged_result_is_finalized_and_paid_after_the_window() {
    build_and_execute(|| {
        let (id, executor) = posted_result(&RIGHT);
        let issuance = Balances::total_issuance();
        let executor_free = free(executor);
        run_to_block(4);
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Submitted { .. }
        ));
        run_to_block(5);
        assert_eq!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Finalized { at: 5 }
        );
        let cut = FEE / 10;
        assert_eq!(free(executor), executor_free + FEE - cut);
        assert_eq!(
            free(1),
            ENDOWMENT - FEE,
            "the requester paid exactly the fee"
        );
        assert_eq!(held(HoldReason::RequestFee, 1), 0);
        assert_eq!(Balances::total_issuance(), issuance - cut);
        assert_eq!(TotalBurned::<Test>::get(), cut);
        System::assert_last_event(
            Event::ResultFinalized {
                id,
                executor,
                output_hash: H256(blake2_256(&tensor(&RIGHT))),
            }
            .into(),
        );
        // Retained, then pruned.
        run_to_block(15);
        assert!(Requests::<Test>::get(id).is_none());
        assert!(Results::<Test>::get(id).is_none());
        System::assert_last_event(
            Event::RequestPruned {
                id,
                deposit_returned: 0,
            }
            .into(),
        );
    });
}

#[test]
fn a_missed_deadline_is_slashed_and_the_request_reassigned_then_expired() {
    build_and_execute(|| {
        register(&[10, 11, 12]);
        let id = request(1, tensor(&[1.0]));
        let first = executor_of(id);
        run_to_block(4);
        assert_eq!(Executors::<Test>::get(first).unwrap().bond, 1_000 - 10);
        assert!(events().contains(&Event::Slashed {
            who: first,
            amount: 10,
            reason: SlashReason::MissedDeadline
        }));
        let second = executor_of(id);
        assert_ne!(second, first);
        assert_eq!(Requests::<Test>::get(id).unwrap().attempt, 2);
        assert!(events().contains(&Event::RequestReassigned {
            id,
            from: first,
            to: second,
            attempt: 2
        }));

        run_to_block(7);
        assert_eq!(Requests::<Test>::get(id).unwrap().attempt, 3);
        run_to_block(10);
        // MaxAttempts = 3: expired, refunded in full.
        assert_eq!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Expired { at: 10 }
        );
        assert_eq!(free(1), ENDOWMENT);
        System::assert_last_event(Event::RequestExpired { id, refunded: FEE }.into());
        assert_eq!(TotalBurned::<Test>::get(), 30);
    });
}

#[test]
fn a_model_retired_under_a_pending_request_refunds_without_slashing() {
    build_and_execute(|| {
        register(&[10]);
        let id = request(1, tensor(&[1.0]));
        assert_ok!(Models::set_model_status(
            RuntimeOrigin::root(),
            TENSOR_MODEL,
            ModelStatus::Retired
        ));
        assert_noop!(submit(10, id, tensor(&RIGHT)), Error::<Test>::ModelRetired);
        run_to_block(4);
        assert_eq!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Expired { at: 4 }
        );
        assert_eq!(Executors::<Test>::get(10).unwrap().bond, 1_000);
        assert_eq!(free(1), ENDOWMENT);
    });
}

#[test]
fn an_executor_slashed_below_the_minimum_is_deactivated() {
    build_and_execute(|| {
        assert_ok!(bond_and_serve(10, 105));
        let id = request(1, tensor(&[1.0]));
        assert_eq!(executor_of(id), 10);
        run_to_block(4);
        assert_eq!(
            Executors::<Test>::get(10).unwrap().status,
            ExecutorStatus::Deactivated { until: 54 }
        );
        assert!(ActiveExecutors::<Test>::get().is_empty());
        assert!(events().contains(&Event::ExecutorDeactivated { who: 10, until: 54 }));
        // No one left: the request expired with a refund.
        assert_eq!(free(1), ENDOWMENT);
    });
}

#[test]
fn the_deadline_queue_carries_over_what_does_not_fit_a_block() {
    build_and_execute(|| {
        register(&[10, 11, 12, 13, 14, 15]);
        let ids: Vec<u64> = (0..60)
            .map(|i| request(1 + (i % 20), tensor(&[i as f32])))
            .collect();
        let executors: Vec<AccountId> = ids.iter().map(|id| executor_of(*id)).collect();
        for (id, e) in ids.iter().zip(&executors) {
            assert_ok!(submit(*e, *id, tensor(&RIGHT)));
        }
        // Windows end at block 5 for all 60; only 50 are handled per block.
        run_to_block(5);
        let finalized = |ids: &[u64]| {
            ids.iter()
                .filter(|id| {
                    matches!(
                        Requests::<Test>::get(**id).unwrap().status,
                        RequestStatus::Finalized { .. }
                    )
                })
                .count()
        };
        // The cursor also handled the stale execution deadlines at block 4 first.
        assert!(finalized(&ids) < 60);
        run_to_block(7);
        assert_eq!(finalized(&ids), 60);
    });
}

#[test]
fn the_executor_set_is_bounded() {
    build_and_execute(|| {
        let max = MaxExecutors::get() as u64;
        for e in 0..max {
            assert_ok!(
                Inference::register_executor(RuntimeOrigin::signed(100 + e), 100).or_else(|_| {
                    // Accounts above 30 are not endowed by the mock; fund them here.
                    Balances::force_set_balance(RuntimeOrigin::root(), 100 + e, ENDOWMENT)?;
                    Inference::register_executor(RuntimeOrigin::signed(100 + e), 100)
                })
            );
        }
        assert_eq!(ActiveExecutors::<Test>::get().len() as u64, max);
        assert_ok!(Balances::force_set_balance(
            RuntimeOrigin::root(),
            999,
            ENDOWMENT
        ));
        assert_noop!(
            Inference::register_executor(RuntimeOrigin::signed(999), 100),
            Error::<Test>::TooManyExecutors
        );
    });
}

/// A language model's request is priced per token: its prompt's bytes (the chain cannot
/// tokenize; a byte-level tokenizer makes at most one token per byte) plus the
/// `max_new_tokens` it asks for; a bad prompt is refused by name and costs nothing.
#[test]
fn a_prompt_is_priced_per_token_and_a_bad_one_costs_nothing() {
    use codec::Encode;
    use inferchain_primitives::{
        io::{IoSpec, Payload},
        model::ModelFormat,
    };
    build_and_execute(|| {
        let llm = H256::repeat_byte(7);
        let mut spec = model_spec(
            llm,
            IoSpec::Prompt {
                max_bytes: 64,
                max_new_tokens: 16,
            },
            128,
        );
        spec.format = ModelFormat::Llm;
        spec.output = IoSpec::Generation {
            max_new_tokens: 16,
            max_text_bytes: 200,
        };
        assert_ok!(Models::register_model(RuntimeOrigin::root(), spec));
        assert_ok!(Models::set_model_commitments(
            RuntimeOrigin::root(),
            llm,
            TENSOR_COMMITMENTS
        ));
        assert_ok!(Inference::register_executor(
            RuntimeOrigin::signed(10),
            1_000
        ));
        assert_ok!(Inference::serve(
            RuntimeOrigin::signed(10),
            vec![llm].try_into().unwrap(),
            TEST_CAPACITY
        ));
        let prompt = |text: &[u8], max_new_tokens| {
            Payload::Prompt {
                text: text.to_vec(),
                max_new_tokens,
            }
            .encode()
        };
        let call = |input: Vec<u8>, max_fee| {
            Inference::request_inference(RuntimeOrigin::signed(1), llm, bounded(input), max_fee)
        };
        let units = 10 + 16; // "To be, or " is 10 bytes
        assert_noop!(
            call(prompt(b"To be, or ", 16), FEE * units - 1),
            Error::<Test>::FeeAboveMax
        );
        assert_noop!(
            call(prompt(b"x", 0), Balance::MAX),
            Error::<Test>::MaxNewTokensOutOfRange
        );
        assert_noop!(
            call(prompt(b"x", 17), Balance::MAX),
            Error::<Test>::MaxNewTokensOutOfRange
        );
        assert_noop!(
            call(prompt(&[0xff, 0xfe], 1), Balance::MAX),
            Error::<Test>::InvalidUtf8Input
        );
        assert_noop!(
            call(prompt(&[b'a'; 65], 1), Balance::MAX),
            Error::<Test>::InputTooLarge
        );
        assert_noop!(
            call(text(b"hi"), Balance::MAX),
            Error::<Test>::InputSpecMismatch
        );
        let id = crate::NextRequestId::<Test>::get();
        assert_ok!(call(prompt(b"To be, or ", 16), FEE * units));
        assert_eq!(Requests::<Test>::get(id).unwrap().fee, FEE * units);
        assert_eq!(held(HoldReason::RequestFee, 1), FEE * units);
        // A shorter request pays less: one byte and one token.
        let id = crate::NextRequestId::<Test>::get();
        assert_ok!(call(prompt(b"x", 1), FEE * 2));
        assert_eq!(Requests::<Test>::get(id).unwrap().fee, FEE * 2);
    });
}
