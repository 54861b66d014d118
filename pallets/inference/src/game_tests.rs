//! The bisection game against the mock runtime: every move, every timeout, several games
//! at once, a sybil that throws its game while an honest one wins, proofs that fail.

#![allow(clippy::unwrap_used)]

use crate::game_fixtures::{Plan, Trace};
use crate::{
    mock::*, Error, Event, GameByChallenger, GameEnd, GamePhase, Games, HoldReason, RequestStatus,
    Requests, ResultTraces, Results, Side, TotalBurned,
};
use codec::Encode;
use frame_support::{
    assert_noop, assert_ok,
    traits::fungible::{Inspect, InspectHold},
    BoundedVec,
};
use inferchain_primitives::dispute::{Position, Read, StepProof};

pub(crate) const STEPS: usize = 8;
pub(crate) const INPUT: [f32; 2] = [0.5, 0.25];

pub(crate) fn bounded<S: frame_support::traits::Get<u32>>(v: Vec<u8>) -> BoundedVec<u8, S> {
    v.try_into().unwrap()
}

pub(crate) fn events() -> Vec<Event<Test>> {
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

pub(crate) fn held(reason: HoldReason, who: AccountId) -> Balance {
    Balances::balance_on_hold(&reason.into(), &who)
}

pub(crate) fn free(who: AccountId) -> Balance {
    Balances::balance(&who)
}

/// Executors 10..=15 bonded, the game model committed to `plan`, a request from
/// account 1; returns the request id and its executor.
pub(crate) fn setup(plan: &Plan) -> (u64, AccountId) {
    for e in 10..=15 {
        assert_ok!(bond_and_serve(e, 1_000));
    }
    assert_ok!(Models::set_model_commitments(
        RuntimeOrigin::root(),
        GAME_MODEL,
        plan.commitments()
    ));
    let id = crate::NextRequestId::<Test>::get();
    assert_ok!(Inference::request_inference(
        RuntimeOrigin::signed(1),
        GAME_MODEL,
        bounded(tensor(&INPUT)),
        FEE
    ));
    (id, Requests::<Test>::get(id).unwrap().executor)
}

pub(crate) fn post(id: u64, executor: AccountId, trace: &Trace) {
    assert_ok!(Inference::submit_traced_result(
        RuntimeOrigin::signed(executor),
        id,
        bounded(trace.output()),
        trace.commitment(),
        trace.output_path()
    ));
}

pub(crate) fn open(id: u64, who: AccountId, trace: &Trace) -> u64 {
    assert_ok!(Inference::open_game(
        RuntimeOrigin::signed(who),
        id,
        bounded(trace.output()),
        trace.commitment(),
        trace.output_path()
    ));
    GameByChallenger::<Test>::get(id, who).unwrap()
}

/// `who` reveals the children of the node its game stands on, from `trace`.
fn reveal(game: u64, who: AccountId, trace: &Trace) -> frame_support::dispatch::DispatchResult {
    let g = Games::<Test>::get(game).unwrap();
    let (l, r) = g.at.children(trace.leaves.len() as u32).unwrap();
    Inference::reveal(
        RuntimeOrigin::signed(who),
        game,
        trace.node(l),
        trace.node(r),
    )
    .map(|_| ())
    .map_err(|e| e.error)
}

/// Both parties walk down honestly (each from its own trace) to the disputed step.
pub(crate) fn walk(
    game: u64,
    executor: (AccountId, &Trace),
    challenger: (AccountId, &Trace),
) -> u32 {
    while matches!(
        Games::<Test>::get(game).unwrap().phase,
        GamePhase::Bisect { .. }
    ) {
        assert_ok!(reveal(game, executor.0, executor.1));
        assert_ok!(reveal(game, challenger.0, challenger.1));
    }
    Games::<Test>::get(game).unwrap().at.start
}

pub(crate) fn other_than(ids: &[AccountId]) -> AccountId {
    (10..=15).find(|e| !ids.contains(e)).unwrap()
}

pub(crate) fn input() -> Vec<u8> {
    tensor(&INPUT)
}

#[test]
fn results_carry_a_trace_that_ends_in_the_output_and_uncommitted_models_take_no_requests() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, exec) = setup(&plan);
        let honest = plan.run(&input(), None);
        // A trace of another length, or one that ends in another output.
        let short = Trace::new(honest.outputs[1..].to_vec());
        assert_noop!(
            Inference::submit_traced_result(
                RuntimeOrigin::signed(exec),
                id,
                bounded(honest.output()),
                short.commitment(),
                short.output_path()
            ),
            Error::<Test>::BadTrace
        );
        let wrong_end = plan.run(&input(), Some(STEPS - 1));
        assert_noop!(
            Inference::submit_traced_result(
                RuntimeOrigin::signed(exec),
                id,
                bounded(honest.output()),
                wrong_end.commitment(),
                wrong_end.output_path()
            ),
            Error::<Test>::BadTrace
        );
        post(id, exec, &honest);
        assert_eq!(ResultTraces::<Test>::get(id), Some(honest.commitment()));

        // A model without commitments cannot be requested at all (so no result of it
        // is ever beyond dispute), and its requester keeps every unit.
        let before = free(2);
        assert_noop!(
            Inference::request_inference(
                RuntimeOrigin::signed(2),
                BARE_MODEL,
                bounded(tensor(&INPUT)),
                FEE
            ),
            Error::<Test>::NoCommitments
        );
        assert_eq!(free(2), before);
    });
}

#[test]
fn an_honest_watcher_walks_to_the_corrupted_step_and_the_cheater_is_slashed() {
    for fault in [0, 3, STEPS - 2, STEPS - 1] {
        build_and_execute(|| {
            let plan = Plan::new(STEPS);
            let (id, cheater) = setup(&plan);
            let bad = plan.run(&input(), Some(fault));
            let honest = plan.run(&input(), None);
            post(id, cheater, &bad);
            let watcher = other_than(&[cheater]);
            let (burned, requester_free, watcher_free) =
                (TotalBurned::<Test>::get(), free(1), free(watcher));
            let game = open(id, watcher, &honest);
            assert_eq!(held(HoldReason::ChallengeBond, watcher), 30);

            let step = walk(game, (cheater, &bad), (watcher, &honest));
            assert_eq!(step as usize, fault, "the walk ends at the corrupted step");
            let rounds = Games::<Test>::get(game).unwrap().rounds;
            assert!(rounds <= Position::max_rounds(STEPS as u32));
            assert_eq!(Games::<Test>::get(game).unwrap().phase, GamePhase::Prove);

            assert_ok!(Inference::prove_step(
                RuntimeOrigin::signed(watcher),
                game,
                bounded(plan.proof(&input(), &honest, fault))
            ));
            assert!(events().contains(&Event::StepRefereed {
                game,
                step,
                computed: honest.leaves[fault],
            }));
            assert!(events().contains(&Event::GameEnded {
                game,
                id,
                end: GameEnd::Refereed {
                    executor_right: false
                },
            }));
            // ResultSlash 50: half to the watcher, 20% to the requester, the rest burned;
            // the watcher's bond back.
            assert_eq!(crate::Executors::<Test>::get(cheater).unwrap().bond, 950);
            assert_eq!(free(watcher), watcher_free + 25);
            assert_eq!(held(HoldReason::ChallengeBond, watcher), 0);
            assert_eq!(free(1), requester_free + 10);
            assert_eq!(TotalBurned::<Test>::get(), burned + 15);
            // Never finalized: the request went to a third executor.
            let request = Requests::<Test>::get(id).unwrap();
            assert!(matches!(request.status, RequestStatus::Pending { .. }));
            assert!(request.executor != cheater && request.executor != watcher);
            assert!(ResultTraces::<Test>::get(id).is_none());
            assert!(Games::<Test>::get(game).is_none());
        });
    }
}

#[test]
fn a_game_settles_on_the_stakes_it_opened_with_whatever_governance_changes_meanwhile() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, cheater) = setup(&plan);
        let bad = plan.run(&input(), Some(3));
        let honest = plan.run(&input(), None);
        post(id, cheater, &bad);
        let watcher = other_than(&[cheater]);
        let watcher_free = free(watcher);
        let game = open(id, watcher, &honest);
        // A majority colluding with the cheater cuts the slash and the reward while the
        // game is open (the mock's parameters stand in for the governed ones).
        crate::mock::ResultSlash::set(1);
        crate::mock::ChallengeReward::set(sp_runtime::Perbill::zero());
        let step = walk(game, (cheater, &bad), (watcher, &honest));
        assert_ok!(Inference::prove_step(
            RuntimeOrigin::signed(watcher),
            game,
            bounded(plan.proof(&input(), &honest, step as usize))
        ));
        // Still the 50 slashed and the half to the watcher the game opened with.
        assert_eq!(crate::Executors::<Test>::get(cheater).unwrap().bond, 950);
        assert_eq!(free(watcher), watcher_free + 25);
        assert_eq!(crate::GameStakesOf::<Test>::get(game), None, "closed");
        // A game opened now puts up the new terms.
        assert_eq!(Inference::current_stakes().result_slash, 1);
    });
}

#[test]
fn the_cheaters_own_proof_convicts_it_too() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, cheater) = setup(&plan);
        let bad = plan.run(&input(), Some(5));
        let honest = plan.run(&input(), None);
        post(id, cheater, &bad);
        let watcher = other_than(&[cheater]);
        let game = open(id, watcher, &honest);
        walk(game, (cheater, &bad), (watcher, &honest));
        // The cheater proves step 5 from its own (agreed) earlier outputs: the referee
        // computes the honest output, not the one it committed to.
        assert_ok!(Inference::prove_step(
            RuntimeOrigin::signed(cheater),
            game,
            bounded(plan.proof(&input(), &bad, 5))
        ));
        assert!(events().contains(&Event::GameEnded {
            game,
            id,
            end: GameEnd::Refereed {
                executor_right: false
            },
        }));
        assert_eq!(crate::Executors::<Test>::get(cheater).unwrap().bond, 950);
    });
}

#[test]
fn a_wrong_challenge_costs_its_bond_and_the_result_finalizes_when_the_game_ends() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, exec) = setup(&plan);
        let honest = plan.run(&input(), None);
        let bad = plan.run(&input(), Some(4));
        post(id, exec, &honest);
        let RequestStatus::Submitted { window_end } = Requests::<Test>::get(id).unwrap().status
        else {
            panic!("submitted")
        };
        let griefer = other_than(&[exec]);
        let (exec_free, burned) = (free(exec), TotalBurned::<Test>::get());
        let game = open(id, griefer, &bad);
        // One round every other block: the game outlives the window, and the result must
        // not finalize under it.
        while matches!(
            Games::<Test>::get(game).unwrap().phase,
            GamePhase::Bisect { .. }
        ) {
            assert_ok!(reveal(game, exec, &honest));
            assert_ok!(reveal(game, griefer, &bad));
            run_to_block(System::block_number() + 2);
        }
        assert!(System::block_number() > window_end);
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Submitted { .. }
        ));
        assert_ok!(Inference::prove_step(
            RuntimeOrigin::signed(exec),
            game,
            bounded(plan.proof(&input(), &honest, 4))
        ));
        assert!(events().contains(&Event::GameEnded {
            game,
            id,
            end: GameEnd::Refereed {
                executor_right: true
            },
        }));
        // Bond 30: half to the executor (its moves' costs), the rest burned; the executor
        // then paid its fee less the protocol's 10%.
        assert_eq!(held(HoldReason::ChallengeBond, griefer), 0);
        assert_eq!(free(griefer), ENDOWMENT - 1_000 - 30);
        assert_eq!(free(exec), exec_free + 15 + 90);
        assert_eq!(TotalBurned::<Test>::get(), burned + 15 + 10);
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Finalized { .. }
        ));
        assert!(Results::<Test>::get(id).unwrap().challenged);
    });
}

#[test]
fn a_sybil_that_throws_its_game_does_not_save_the_cheater_and_later_games_are_void() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, cheater) = setup(&plan);
        let bad = plan.run(&input(), Some(6));
        let honest = plan.run(&input(), None);
        post(id, cheater, &bad);
        let sybil = other_than(&[cheater]);
        let watcher = other_than(&[cheater, sybil]);
        let late = other_than(&[cheater, sybil, watcher]);
        let b = System::block_number();
        // The sybil challenges first, with a trace wrong somewhere else, then goes silent.
        let thrown = open(id, sybil, &plan.run(&input(), Some(1)));
        assert_ok!(reveal(thrown, cheater, &bad));
        // One block later the honest watcher and a late watcher challenge too.
        run_to_block(b + 1);
        let game = open(id, watcher, &honest);
        let void = open(id, late, &honest);
        assert_eq!(crate::OpenGames::<Test>::get(id, 1), Some(3));
        walk(game, (cheater, &bad), (watcher, &honest));
        assert_ok!(reveal(void, cheater, &bad));
        assert_ok!(reveal(void, late, &honest));

        // The sybil missed its reveal: it loses its bond, half of it to the cheater, and
        // the result does not finalize while the honest games run.
        let cheater_free = free(cheater);
        run_to_block(b + 3);
        assert!(events().contains(&Event::GameEnded {
            game: thrown,
            id,
            end: GameEnd::Timeout {
                side: Side::Challenger
            },
        }));
        assert_eq!(held(HoldReason::ChallengeBond, sybil), 0);
        assert_eq!(free(sybil), ENDOWMENT - 1_000 - 30);
        assert_eq!(free(cheater), cheater_free + 15);
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Submitted { .. }
        ));

        // The honest game ends at the corrupted step and convicts the cheater.
        assert_ok!(Inference::prove_step(
            RuntimeOrigin::signed(watcher),
            game,
            bounded(plan.proof(&input(), &honest, 6))
        ));
        assert_eq!(crate::Executors::<Test>::get(cheater).unwrap().bond, 950);
        assert!(matches!(
            Requests::<Test>::get(id).unwrap().status,
            RequestStatus::Pending { .. }
        ));
        // The late game is void at its next deadline: nobody loses anything.
        let late_free = free(late);
        run_to_block(b + 4);
        assert!(events().contains(&Event::GameVoided { game: void }));
        assert_eq!(free(late), late_free + 30);
        assert_eq!(crate::OpenGames::<Test>::iter().count(), 0);
        assert_eq!(crate::Executors::<Test>::get(cheater).unwrap().bond, 950);
    });
}

#[test]
fn a_missed_move_loses_the_game() {
    // (executor reveals, challenger reveals) in the first round, then nothing.
    for (exec_moves, chall_moves, end) in [
        (
            false,
            true,
            GameEnd::Timeout {
                side: Side::Executor,
            },
        ),
        (
            true,
            false,
            GameEnd::Timeout {
                side: Side::Challenger,
            },
        ),
        (false, false, GameEnd::BothTimedOut),
    ] {
        build_and_execute(|| {
            let plan = Plan::new(STEPS);
            let (id, exec) = setup(&plan);
            let honest = plan.run(&input(), None);
            let bad = plan.run(&input(), Some(2));
            post(id, exec, &honest);
            let challenger = other_than(&[exec]);
            let game = open(id, challenger, &bad);
            if exec_moves {
                assert_ok!(reveal(game, exec, &honest));
            }
            if chall_moves {
                assert_ok!(reveal(game, challenger, &bad));
            }
            let b = System::block_number();
            // Due by b + 2 inclusive: nothing happens before b + 3.
            run_to_block(b + 2);
            assert!(Games::<Test>::get(game).is_some());
            run_to_block(b + 3);
            assert!(events().contains(&Event::GameEnded { game, id, end }));
            let exec_bond = crate::Executors::<Test>::get(exec).unwrap().bond;
            assert_eq!(exec_bond, if exec_moves { 1_000 } else { 950 });
            let reward = if chall_moves && !exec_moves { 25 } else { 0 };
            let forfeit = if chall_moves { 0 } else { 30 };
            assert_eq!(free(challenger), ENDOWMENT - 1_000 - forfeit + reward);
        });
    }
}

#[test]
fn no_step_proof_by_the_deadline_loses_the_game_for_the_executor() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, exec) = setup(&plan);
        let honest = plan.run(&input(), None);
        let bad = plan.run(&input(), Some(3));
        post(id, exec, &bad);
        let challenger = other_than(&[exec]);
        let game = open(id, challenger, &honest);
        walk(game, (exec, &bad), (challenger, &honest));
        run_to_block(System::block_number() + 3);
        assert!(events().contains(&Event::GameEnded {
            game,
            id,
            end: GameEnd::NoProof
        }));
        assert_eq!(crate::Executors::<Test>::get(exec).unwrap().bond, 950);
    });
}

#[test]
fn bad_games_and_bad_moves_are_rejected_by_name() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, exec) = setup(&plan);
        let honest = plan.run(&input(), None);
        let bad = plan.run(&input(), Some(3));
        post(id, exec, &honest);
        let challenger = other_than(&[exec]);
        let outsider = other_than(&[exec, challenger]);
        let open_as = |who: AccountId, t: &Trace, path: crate::game::PathOf| {
            Inference::open_game(
                RuntimeOrigin::signed(who),
                id,
                bounded(t.output()),
                t.commitment(),
                path,
            )
        };
        assert_noop!(
            open_as(exec, &bad, bad.output_path()),
            Error::<Test>::CannotChallengeSelf
        );
        assert_noop!(
            open_as(challenger, &honest, honest.output_path()),
            Error::<Test>::SameOutput
        );
        assert_noop!(
            open_as(challenger, &bad, honest.output_path()),
            Error::<Test>::BadTrace
        );
        assert_noop!(
            open_as(29, &bad, bad.output_path()),
            Error::<Test>::NotActiveExecutor
        );
        let game = open(id, challenger, &bad);
        assert_noop!(
            open_as(challenger, &bad, bad.output_path()),
            Error::<Test>::AlreadyChallenged
        );

        // Reveals: only the parties, only the real children, once a round.
        assert_noop!(reveal(game, outsider, &honest), Error::<Test>::NotAParty);
        assert_noop!(reveal(game, exec, &bad), Error::<Test>::RevealMismatch);
        assert_noop!(
            Inference::prove_step(
                RuntimeOrigin::signed(exec),
                game,
                bounded(plan.proof(&input(), &honest, 3))
            ),
            Error::<Test>::WrongMove
        );
        assert_ok!(reveal(game, exec, &honest));
        assert_noop!(reveal(game, exec, &honest), Error::<Test>::AlreadyMoved);
        assert_noop!(
            Inference::reveal(RuntimeOrigin::signed(exec), 99, [0; 32], [0; 32]),
            Error::<Test>::UnknownGame
        );
        assert_ok!(reveal(game, challenger, &bad));
        assert_eq!(walk(game, (exec, &honest), (challenger, &bad)), 3);

        // Step proofs that do not open change nothing.
        let prove = |bytes: Vec<u8>| {
            Inference::prove_step(RuntimeOrigin::signed(exec), game, bounded(bytes))
        };
        assert_noop!(prove(vec![1, 2, 3]), Error::<Test>::MalformedStepProof);
        assert_noop!(
            prove(plan.proof(&input(), &honest, 2)),
            Error::<Test>::BadStepProof
        );
        let mut tampered = StepProof::decode_all(&plan.proof(&input(), &honest, 3));
        tampered.operands[1].data.push(1);
        assert_noop!(prove(tampered.encode()), Error::<Test>::BadOperandProof);
        let mut fewer = StepProof::decode_all(&plan.proof(&input(), &honest, 3));
        fewer.operands.pop();
        assert_noop!(prove(fewer.encode()), Error::<Test>::OperandCountMismatch);
        // The prover cannot pick its operands: other reads are another step.
        let mut other_reads = StepProof::decode_all(&plan.proof(&input(), &honest, 3));
        other_reads.step.reads[1] = Read::Weight(1);
        other_reads.operands[1].data = plan.weights[1].clone();
        assert_noop!(prove(other_reads.encode()), Error::<Test>::BadStepProof);
        assert_ok!(prove(plan.proof(&input(), &honest, 3)));
        assert!(events().contains(&Event::GameEnded {
            game,
            id,
            end: GameEnd::Refereed {
                executor_right: true
            },
        }));
        // Too late: the game is over.
        assert_noop!(
            prove(plan.proof(&input(), &honest, 3)),
            Error::<Test>::UnknownGame
        );
    });
}

#[test]
fn a_move_after_its_deadline_is_refused_even_before_the_queue_runs() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, exec) = setup(&plan);
        let honest = plan.run(&input(), None);
        post(id, exec, &honest);
        let challenger = other_than(&[exec]);
        let game = open(id, challenger, &plan.run(&input(), Some(1)));
        let deadline = Games::<Test>::get(game).unwrap().deadline;
        System::set_block_number(deadline + 1);
        assert_noop!(reveal(game, exec, &honest), Error::<Test>::MoveTooLate);
    });
}

#[test]
fn a_step_the_referee_cannot_evaluate_convicts_nobody_and_the_request_is_rerun() {
    build_and_execute(|| {
        let mut plan = Plan::new(4);
        plan.steps[1].op = vec![0xff];
        let (id, exec) = setup(&plan);
        let honest = plan.run(&input(), None);
        let other = plan.run(&input(), Some(1));
        post(id, exec, &honest);
        let challenger = other_than(&[exec]);
        let game = open(id, challenger, &other);
        assert_eq!(walk(game, (exec, &honest), (challenger, &other)), 1);
        assert_ok!(Inference::prove_step(
            RuntimeOrigin::signed(exec),
            game,
            bounded(plan.proof(&input(), &honest, 1))
        ));
        assert!(events().contains(&Event::StepUnrefereeable {
            game,
            step: 1,
            error: inferchain_primitives::dispute::RefereeError::UnknownStep,
        }));
        assert!(events().contains(&Event::GameEnded {
            game,
            id,
            end: GameEnd::Unrefereeable
        }));
        // Nobody loses: the bond is back, the executor keeps its bond (unpaid), and
        // the request goes to another executor.
        assert_eq!(free(challenger), ENDOWMENT - 1_000);
        assert_eq!(crate::Executors::<Test>::get(exec).unwrap().bond, 1_000);
        let request = Requests::<Test>::get(id).unwrap();
        assert!(matches!(request.status, RequestStatus::Pending { .. }));
        assert_ne!(request.executor, exec);
    });
}

#[test]
fn a_challengers_game_on_an_overturned_attempt_does_not_block_its_next_challenge() {
    for seed in 0..4 {
        build_and_execute(|| {
            set_seed(seed);
            let plan = Plan::new(STEPS);
            let (id, cheater) = setup(&plan);
            let bad = plan.run(&input(), Some(2));
            let honest = plan.run(&input(), None);
            post(id, cheater, &bad);
            let winner = other_than(&[cheater]);
            let waiting = other_than(&[cheater, winner]);
            let game = open(id, winner, &honest);
            let stale = open(id, waiting, &honest);
            walk(game, (cheater, &bad), (winner, &honest));
            assert_ok!(Inference::prove_step(
                RuntimeOrigin::signed(winner),
                game,
                bounded(plan.proof(&input(), &honest, 2))
            ));
            // Attempt 2: if `waiting` was drawn it cannot challenge itself; otherwise the
            // new executor cheats too and `waiting` challenges again at once.
            let second = Requests::<Test>::get(id).unwrap().executor;
            if second == waiting {
                return;
            }
            post(id, second, &plan.run(&input(), Some(4)));
            let again = open(id, waiting, &honest);
            assert_ne!(again, stale);
            assert!(events().contains(&Event::GameVoided { game: stale }));
            assert!(Games::<Test>::get(stale).is_none());
        });
    }
}

trait DecodeAll: Sized {
    fn decode_all(bytes: &[u8]) -> Self;
}
impl DecodeAll for StepProof {
    fn decode_all(bytes: &[u8]) -> Self {
        codec::Decode::decode(&mut &bytes[..]).unwrap()
    }
}

#[test]
fn agreed_junk_of_the_wrong_length_cannot_make_a_step_unrefereeable() {
    build_and_execute(|| {
        let plan = Plan::new(STEPS);
        let (id, cheater) = setup(&plan);
        // The cheater's step 2 is 9 bytes of junk; the plan fixes 32.
        let bad = plan.run(&input(), Some(2));
        post(id, cheater, &bad);
        // Its sybil agrees on everything up to step 2 and differs at step 3, hoping the
        // referee chokes on the junk and the game ends with nobody convicted.
        let mut outputs = bad.outputs.clone();
        outputs[3] = vec![7; 32];
        outputs[STEPS - 1] = tensor(&[5.0, 5.0, 5.0, 5.0]);
        let sybil_trace = Trace::new(outputs);
        let sybil = other_than(&[cheater]);
        let game = open(id, sybil, &sybil_trace);
        assert_eq!(walk(game, (cheater, &bad), (sybil, &sybil_trace)), 3);
        // The junk does not open as step 3's operand, whoever posts it.
        for (who, trace) in [(sybil, &sybil_trace), (cheater, &bad)] {
            assert_noop!(
                Inference::prove_step(
                    RuntimeOrigin::signed(who),
                    game,
                    bounded(plan.proof(&input(), trace, 3))
                ),
                Error::<Test>::BadOperandProof
            );
        }
        // Nobody can prove the step: the executor's claim fails and it is slashed.
        run_to_block(System::block_number() + 3);
        assert!(events().contains(&Event::GameEnded {
            game,
            id,
            end: GameEnd::NoProof
        }));
        assert_eq!(crate::Executors::<Test>::get(cheater).unwrap().bond, 950);
    });
}
