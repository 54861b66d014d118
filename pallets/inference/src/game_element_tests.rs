//! The element-level walk against the mock runtime: when the walk over steps ends at a
//! step that opens chunk by chunk, a party reveals its output's chunk root instead of
//! proving the step whole; both walk down the chunk trees to the leftmost differing
//! chunk, and the runtime recomputes that chunk from ranges of committed tensors.

#![allow(clippy::unwrap_used)]

use crate::game_fixtures::{Plan, Trace};
use crate::game_tests::{bounded, events, free, held, input, open, post, setup, walk};
use crate::{mock::*, Error, Event, GameEnd, GamePhase, Games, HoldReason, Side};
use codec::Encode;
use frame_support::{assert_noop, assert_ok};

const STEPS: usize = 6;

/// `who` reveals its chunk root of step `step`'s output, the opening reveal carrying the
/// plan step.
fn reveal_output(
    plan: &Plan,
    game: u64,
    who: AccountId,
    trace: &Trace,
    step: usize,
    opening: bool,
) -> frame_support::dispatch::DispatchResult {
    let carried = opening.then(|| {
        (
            bounded(plan.steps[step].encode()),
            plan.step_path(step).try_into().unwrap(),
        )
    });
    Inference::reveal_output(
        RuntimeOrigin::signed(who),
        game,
        carried,
        trace.chunk_root(step),
    )
    .map(|_| ())
    .map_err(|e| e.error)
}

/// Both parties walk down their chunk trees of step `step`; returns the chunk.
fn chunk_walk(
    game: u64,
    step: usize,
    executor: (AccountId, &Trace),
    challenger: (AccountId, &Trace),
) -> u32 {
    while let GamePhase::Bisect { .. } = Games::<Test>::get(game).unwrap().phase {
        let at = Games::<Test>::get(game).unwrap().at;
        for (who, trace) in [executor, challenger] {
            let (l, r) = trace.chunk_children(step, at);
            assert_ok!(Inference::reveal(RuntimeOrigin::signed(who), game, l, r));
        }
    }
    assert_eq!(
        Games::<Test>::get(game).unwrap().phase,
        GamePhase::ProveElement
    );
    Games::<Test>::get(game).unwrap().at.start
}

#[test]
fn a_wrong_chunk_is_found_by_the_element_walk_and_refereed() {
    build_and_execute(|| {
        let plan = Plan::wide(STEPS);
        let (id, cheat) = setup(&plan);
        // Byte 100 of step 3 (chunk 3 of 8) is wrong; later steps follow from it.
        let bad = plan.run_flipping(&input(), 3, 100);
        let honest = plan.run(&input(), None);
        post(id, cheat, &bad);
        let watcher = (10..=15).find(|e| *e != cheat).unwrap();
        let game = open(id, watcher, &honest);
        assert_eq!(walk(game, (cheat, &bad), (watcher, &honest)), 3);

        // The watcher opens the element walk; the cheat must reveal too.
        assert_ok!(reveal_output(&plan, game, watcher, &honest, 3, true));
        assert_noop!(
            reveal_output(&plan, game, watcher, &honest, 3, false),
            Error::<Test>::AlreadyMoved
        );
        assert_ok!(reveal_output(&plan, game, cheat, &bad, 3, false));
        assert!(events().contains(&Event::ElementWalkOpened {
            game,
            step: 3,
            chunks: 8
        }));
        assert_eq!(chunk_walk(game, 3, (cheat, &bad), (watcher, &honest)), 3);

        let before = free(watcher);
        assert_ok!(Inference::prove_element(
            RuntimeOrigin::signed(watcher),
            game,
            bounded(plan.element_proof(&input(), &honest, 3, 3))
        ));
        let evs = events();
        assert!(evs.iter().any(|e| matches!(
            e,
            Event::ChunkRefereed { game: g, step: 3, chunk: 3, .. } if *g == game
        )));
        assert!(evs.contains(&Event::GameEnded {
            game,
            id,
            end: GameEnd::Refereed {
                executor_right: false
            }
        }));
        assert!(evs.contains(&Event::Slashed {
            who: cheat,
            amount: ResultSlash::get(),
            reason: crate::SlashReason::WrongResult
        }));
        assert_eq!(held(HoldReason::ChallengeBond, watcher), 0);
        assert!(free(watcher) > before, "the watcher is paid its reward");
    });
}

#[test]
fn an_honest_executor_wins_the_element_walk_against_a_griefer() {
    build_and_execute(|| {
        let plan = Plan::wide(STEPS);
        let (id, executor) = setup(&plan);
        let honest = plan.run(&input(), None);
        let griefer = (10..=15).find(|e| *e != executor).unwrap();
        let wrong = plan.run_flipping(&input(), 2, 255);
        post(id, executor, &honest);
        let game = open(id, griefer, &wrong);
        assert_eq!(walk(game, (executor, &honest), (griefer, &wrong)), 2);
        // The executor opens it this time.
        assert_ok!(reveal_output(&plan, game, executor, &honest, 2, true));
        assert_ok!(reveal_output(&plan, game, griefer, &wrong, 2, false));
        assert_eq!(
            chunk_walk(game, 2, (executor, &honest), (griefer, &wrong)),
            7
        );
        assert_ok!(Inference::prove_element(
            RuntimeOrigin::signed(executor),
            game,
            bounded(plan.element_proof(&input(), &honest, 2, 7))
        ));
        assert!(events().contains(&Event::GameEnded {
            game,
            id,
            end: GameEnd::Refereed {
                executor_right: true
            }
        }));
        assert!(events().contains(&Event::Slashed {
            who: griefer,
            amount: ChallengeBond::get(),
            reason: crate::SlashReason::WrongChallenge
        }));
    });
}

#[test]
fn element_moves_out_of_turn_or_unproven_are_refused_by_name() {
    build_and_execute(|| {
        let plan = Plan::wide(STEPS);
        let (id, cheat) = setup(&plan);
        let bad = plan.run_flipping(&input(), 3, 40);
        let honest = plan.run(&input(), None);
        post(id, cheat, &bad);
        let watcher = (10..=15).find(|e| *e != cheat).unwrap();
        let game = open(id, watcher, &honest);
        // Not while the walk over steps goes on.
        assert_noop!(
            reveal_output(&plan, game, watcher, &honest, 3, true),
            Error::<Test>::WrongMove
        );
        walk(game, (cheat, &bad), (watcher, &honest));
        // The opening reveal must carry the disputed plan step, with its path.
        assert_noop!(
            reveal_output(&plan, game, watcher, &honest, 3, false),
            Error::<Test>::BadStepProof
        );
        assert_noop!(
            reveal_output(&plan, game, watcher, &honest, 2, true),
            Error::<Test>::BadStepProof
        );
        // A root that is not the party's own leaf.
        assert_noop!(
            reveal_output(&plan, game, watcher, &bad, 3, true),
            Error::<Test>::RevealMismatch
        );
        // A step the element walk settles is not proven whole (it would otherwise end
        // unrefereeable, over the referee's caps, whoever posted it).
        assert_noop!(
            Inference::prove_step(
                RuntimeOrigin::signed(watcher),
                game,
                bounded(plan.proof(&input(), &honest, 3))
            ),
            Error::<Test>::UseElementWalk
        );
        assert_noop!(
            Inference::prove_element(
                RuntimeOrigin::signed(watcher),
                game,
                bounded(plan.element_proof(&input(), &honest, 3, 1))
            ),
            Error::<Test>::WrongMove
        );
        assert_ok!(reveal_output(&plan, game, watcher, &honest, 3, true));
        assert_noop!(
            reveal_output(&plan, game, cheat, &honest, 3, false),
            Error::<Test>::RevealMismatch
        );
        assert_ok!(reveal_output(&plan, game, cheat, &bad, 3, false));
        let chunk = chunk_walk(game, 3, (cheat, &bad), (watcher, &honest));
        assert_eq!(chunk, 1);
        // A whole-step proof is not the move now; a proof of another chunk, tampered
        // ranges, or junk are refused.
        assert_noop!(
            Inference::prove_step(
                RuntimeOrigin::signed(watcher),
                game,
                bounded(plan.proof(&input(), &honest, 3))
            ),
            Error::<Test>::WrongMove
        );
        assert_noop!(
            Inference::prove_element(
                RuntimeOrigin::signed(watcher),
                game,
                bounded(plan.element_proof(&input(), &honest, 3, 2))
            ),
            Error::<Test>::BadOperandProof
        );
        let mut tampered = plan.element_proof(&input(), &honest, 3, 1);
        let last = tampered.len() - 40;
        tampered[last] ^= 1;
        assert!(
            Inference::prove_element(RuntimeOrigin::signed(watcher), game, bounded(tampered))
                .is_err()
        );
        assert_noop!(
            Inference::prove_element(RuntimeOrigin::signed(watcher), game, bounded(vec![1, 2])),
            Error::<Test>::MalformedStepProof
        );
        // Thousands of one-byte operands would decode into far more memory than the call
        // carries: refused while decoding, before anything is checked.
        let many = 15_000u32;
        let mut bomb = plan.steps[3].encode();
        bomb.extend(Vec::<[u8; 32]>::new().encode());
        bomb.extend(codec::Compact(many).encode());
        bomb.extend(vec![0u8; many as usize]);
        assert_noop!(
            Inference::prove_element(RuntimeOrigin::signed(watcher), game, bounded(bomb)),
            Error::<Test>::MalformedStepProof
        );
        // Nobody proves: the executor's claim fails.
        let deadline = Games::<Test>::get(game).unwrap().deadline;
        run_to_block(deadline + 1);
        assert!(events().contains(&Event::GameEnded {
            game,
            id,
            end: GameEnd::NoProof
        }));
    });
}

#[test]
fn a_step_without_an_element_path_is_proven_whole_and_a_silent_party_loses() {
    build_and_execute(|| {
        let plan = Plan::wide(STEPS);
        let (id, cheat) = setup(&plan);
        // Step 1 (wide, hashed) has no element path.
        let bad = plan.run_flipping(&input(), 1, 9);
        let honest = plan.run(&input(), None);
        post(id, cheat, &bad);
        let watcher = (10..=15).find(|e| *e != cheat).unwrap();
        let game = open(id, watcher, &honest);
        assert_eq!(walk(game, (cheat, &bad), (watcher, &honest)), 1);
        assert_noop!(
            reveal_output(&plan, game, watcher, &honest, 1, true),
            Error::<Test>::NoElementPath
        );
        assert_ok!(Inference::prove_step(
            RuntimeOrigin::signed(watcher),
            game,
            bounded(plan.proof(&input(), &honest, 1))
        ));
        assert!(events().contains(&Event::GameEnded {
            game,
            id,
            end: GameEnd::Refereed {
                executor_right: false
            }
        }));

        // Another request: the cheat opens the element walk and the watcher stays silent.
        let (id2, exec2) = {
            let id = crate::NextRequestId::<Test>::get();
            assert_ok!(Inference::request_inference(
                RuntimeOrigin::signed(1),
                GAME_MODEL,
                bounded(input()),
                FEE
            ));
            (id, crate::Requests::<Test>::get(id).unwrap().executor)
        };
        let bad2 = plan.run_flipping(&input(), 4, 3);
        post(id2, exec2, &honest);
        let griefer = (10..=15).find(|e| *e != exec2).unwrap();
        let game2 = open(id2, griefer, &bad2);
        walk(game2, (exec2, &honest), (griefer, &bad2));
        assert_ok!(reveal_output(&plan, game2, exec2, &honest, 4, true));
        let deadline = Games::<Test>::get(game2).unwrap().deadline;
        run_to_block(deadline + 1);
        assert!(events().contains(&Event::GameEnded {
            game: game2,
            id: id2,
            end: GameEnd::Timeout {
                side: Side::Challenger
            }
        }));
    });
}
