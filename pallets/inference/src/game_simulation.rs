//! The adversarial simulation of the bisection game: a seeded random walk over 10,000
//! blocks of a committed model, with honest executors and watchers, colluding executors
//! that cheat when they choose to, throw their sybils' games to shield each other and
//! grief honest results with wrong games, a lazy cheater and offline executors.
//!
//! Trust assumption, as in docs/THREAT_MODEL.md: one honest bonded watcher online whose
//! moves are included in time. Asserted: no wrong result is ever finalized; no honest
//! executor or watcher is ever slashed, loses a request it answered or a game it played;
//! total issuance falls by exactly what the pallet burned; everything settles.

#![allow(clippy::unwrap_used)]

use crate::simulation_support::{bounded, rebond_deactivated, signed, Rng};
use crate::{
    game_fixtures::{Plan, Trace},
    mock::*,
    ActiveExecutors, Event, Executors, GameByChallenger, GameEnd, GamePhase, Games, RequestStatus,
    Requests, Results, TotalBurned,
};
use frame_support::traits::{
    fungible::{InspectHold, Mutate},
    Hooks,
};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Policy {
    Honest,
    /// Cheats on some results; shields fellow colluders with thrown games; griefs honest
    /// results with wrong games that it plays but cannot win.
    Colluding,
    /// Always wrong, never defends.
    Lazy,
    Offline,
}

#[derive(Default, Debug)]
struct Counts {
    requests: u64,
    results: u64,
    wrong_results: u64,
    honest_games: u64,
    thrown_games: u64,
    griefing_games: u64,
    executor_lost: u64,
    challenger_lost: u64,
    voided: u64,
    finalized: u64,
    expired: u64,
    rebonds: u64,
}

const PLAN_STEPS: usize = 8;

#[test]
fn adversarial_games_never_finalize_a_wrong_result_nor_cost_the_honest() {
    new_test_ext().execute_with(|| {
        let mut rng = Rng(0x6a09_e667_f3bc_c908);
        set_seed(rng.next());
        let plan = Plan::new(PLAN_STEPS);
        Models::set_model_commitments(RuntimeOrigin::root(), GAME_MODEL, plan.commitments())
            .unwrap();
        let policies: BTreeMap<AccountId, Policy> = (10..=21)
            .map(|a| {
                let p = match a {
                    10..=15 => Policy::Honest,
                    16..=18 => Policy::Colluding,
                    19 => Policy::Lazy,
                    _ => Policy::Offline,
                };
                (a, p)
            })
            .collect();
        let is = |who: AccountId, p: Policy| policies.get(&who) == Some(&p);
        let requesters: Vec<AccountId> = (1..=9).collect();
        for r in &requesters {
            Balances::mint_into(r, 1_000_000).unwrap();
        }
        for e in policies.keys() {
            bond_and_serve(*e, 1_000).unwrap();
        }
        let issuance_start = Balances::total_issuance();
        let mut counts = Counts::default();
        // The trace each party committed to, by (request, attempt, account).
        let mut traces: BTreeMap<(u64, u32, AccountId), Trace> = BTreeMap::new();
        // Games the honest side plays (as executor or challenger).
        let mut honest_in: BTreeSet<u64> = BTreeSet::new();

        const BLOCKS: u64 = 10_000;
        let settle_from = BLOCKS - 300;
        for block in 0..BLOCKS {
            let now = System::block_number() + 1;
            System::set_block_number(now);
            Inference::on_initialize(now);

            if block < settle_from {
                for _ in 0..rng.below(3) {
                    let requester = requesters[rng.below(requesters.len() as u64) as usize];
                    let values: Vec<f32> = (0..1 + rng.below(4))
                        .map(|_| rng.below(100) as f32 / 4.0)
                        .collect();
                    if Inference::request_inference(
                        signed(requester),
                        GAME_MODEL,
                        bounded(tensor(&values)),
                        FEE,
                    )
                    .is_ok()
                    {
                        counts.requests += 1;
                    }
                }
            }

            // Requests: executors answer, watchers and sybils open games.
            let ids: Vec<u64> = Requests::<Test>::iter_keys().collect();
            for id in ids {
                let request = Requests::<Test>::get(id).unwrap();
                let honest_trace = plan.run(&request.input, None);
                match request.status {
                    RequestStatus::Pending { .. } => {
                        let fault = match policies[&request.executor] {
                            Policy::Honest => None,
                            Policy::Colluding if rng.chance(40) => {
                                Some(rng.below(PLAN_STEPS as u64) as usize)
                            }
                            Policy::Colluding => None,
                            Policy::Lazy => Some(rng.below(PLAN_STEPS as u64) as usize),
                            Policy::Offline => continue,
                        };
                        let trace = plan.run(&request.input, fault);
                        Inference::submit_traced_result(
                            signed(request.executor),
                            id,
                            bounded(trace.output()),
                            trace.commitment(),
                            trace.output_path(),
                        )
                        .unwrap();
                        counts.results += 1;
                        counts.wrong_results += u64::from(fault.is_some());
                        traces.insert((id, request.attempt, request.executor), trace);
                    }
                    RequestStatus::Submitted { window_end } if now < window_end => {
                        let posted = Results::<Test>::get(id).unwrap();
                        let wrong = posted.output.to_vec() != honest_trace.output();
                        let active = ActiveExecutors::<Test>::get();
                        let mut open = |who: AccountId, trace: Trace| {
                            if GameByChallenger::<Test>::contains_key(id, who) {
                                return None;
                            }
                            Inference::open_game(
                                signed(who),
                                id,
                                bounded(trace.output()),
                                trace.commitment(),
                                trace.output_path(),
                            )
                            .ok()?;
                            traces.insert((id, request.attempt, who), trace);
                            GameByChallenger::<Test>::get(id, who)
                        };
                        if wrong && is(posted.executor, Policy::Colluding) {
                            // A fellow colluder challenges first and throws its game.
                            if let Some(sybil) = active
                                .iter()
                                .find(|a| is(**a, Policy::Colluding) && **a != posted.executor)
                            {
                                let junk = plan.run(&request.input, Some(0));
                                if junk.output() != posted.output.to_vec()
                                    && open(*sybil, junk).is_some()
                                {
                                    counts.thrown_games += 1;
                                }
                            }
                        }
                        if wrong {
                            // Honest watchers: two of them, so one game always runs.
                            for w in active
                                .iter()
                                .filter(|a| is(**a, Policy::Honest) && **a != posted.executor)
                                .take(2)
                            {
                                if let Some(g) = open(*w, plan.run(&request.input, None)) {
                                    honest_in.insert(g);
                                    counts.honest_games += 1;
                                }
                            }
                        } else if is(posted.executor, Policy::Honest) && rng.chance(15) {
                            // Griefing an honest result with a wrong game.
                            if let Some(griefer) =
                                active.iter().find(|a| is(**a, Policy::Colluding))
                            {
                                let fault = rng.below(PLAN_STEPS as u64) as usize;
                                if let Some(g) =
                                    open(*griefer, plan.run(&request.input, Some(fault)))
                                {
                                    honest_in.insert(g);
                                    counts.griefing_games += 1;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }

            // Games: each party makes at most one move per block.
            let games: Vec<(u64, crate::game::GameOf<Test>)> = Games::<Test>::iter().collect();
            for (gid, game) in games {
                for (who, is_executor) in [(game.executor, true), (game.challenger, false)] {
                    let Some(g) = Games::<Test>::get(gid) else {
                        break;
                    };
                    let Some(trace) = traces.get(&(g.request, g.attempt, who)) else {
                        continue;
                    };
                    let policy = policies[&who];
                    let throws = !is_executor
                        && policy == Policy::Colluding
                        && is(g.executor, Policy::Colluding);
                    match g.phase {
                        GamePhase::Bisect {
                            executor,
                            challenger,
                        } => {
                            let moved = if is_executor { executor } else { challenger };
                            let plays = matches!(policy, Policy::Honest | Policy::Colluding);
                            if moved.is_none() && plays && !throws {
                                let (l, r) = trace.children(g.at);
                                Inference::reveal(signed(who), gid, l, r).unwrap();
                            }
                        }
                        GamePhase::Prove => {
                            if policy == Policy::Honest {
                                let input = Requests::<Test>::get(g.request).unwrap().input;
                                let proof = plan.proof(&input, trace, g.at.start as usize);
                                Inference::prove_step(signed(who), gid, bounded(proof)).unwrap();
                            }
                        }
                        // This plan's steps are proven whole: the element walk is the
                        // element tests' (game_element_tests.rs).
                        GamePhase::Outputs { .. } | GamePhase::ProveElement => {
                            unreachable!("nobody opens the element walk here")
                        }
                    }
                }
            }

            // Deactivated adversaries bond again when they can.
            if block < settle_from {
                let adversaries = policies
                    .iter()
                    .filter(|(_, p)| **p != Policy::Honest)
                    .map(|(a, _)| *a);
                counts.rebonds += rebond_deactivated(adversaries, now);
            }

            for record in System::events() {
                let RuntimeEvent::Inference(event) = record.event else {
                    continue;
                };
                match event {
                    Event::ResultFinalized { id, .. } => {
                        counts.finalized += 1;
                        let request = Requests::<Test>::get(id).unwrap();
                        assert_eq!(
                            Results::<Test>::get(id).unwrap().output.to_vec(),
                            plan.run(&request.input, None).output(),
                            "block {block}: a wrong result of request {id} was finalized"
                        );
                    }
                    Event::RequestExpired { .. } => counts.expired += 1,
                    Event::Slashed { who, reason, .. } => assert!(
                        !is(who, Policy::Honest),
                        "block {block}: honest {who} slashed ({reason:?})"
                    ),
                    Event::RequestReassigned { id, from, .. } => assert!(
                        !is(from, Policy::Honest),
                        "block {block}: request {id} taken from honest {from}"
                    ),
                    Event::GameEnded { game, end, .. } => {
                        match end {
                            GameEnd::Refereed {
                                executor_right: false,
                            }
                            | GameEnd::NoProof
                            | GameEnd::Timeout {
                                side: crate::Side::Executor,
                            } => counts.executor_lost += 1,
                            _ => counts.challenger_lost += 1,
                        }
                        assert!(
                            end != GameEnd::Unrefereeable,
                            "every step of the plan is refereeable"
                        );
                        honest_in.remove(&game);
                    }
                    Event::GameVoided { game } => {
                        counts.voided += 1;
                        honest_in.remove(&game);
                    }
                    _ => {}
                }
            }
            System::reset_events();
            Inference::do_try_state().unwrap();
        }

        assert!(
            Requests::<Test>::iter().all(|(_, r)| !r.status.holds_fee()),
            "requests still open after the settling blocks"
        );
        assert_eq!(Games::<Test>::iter().count(), 0, "games still open");
        assert!(honest_in.is_empty());
        assert_eq!(
            issuance_start - Balances::total_issuance(),
            TotalBurned::<Test>::get(),
            "issuance changed by something other than burns"
        );
        // Honest executors and watchers kept every unit of bond.
        for (who, policy) in &policies {
            if *policy == Policy::Honest {
                assert_eq!(Executors::<Test>::get(who).unwrap().bond, 1_000);
                assert_eq!(
                    Balances::balance_on_hold(&crate::HoldReason::ChallengeBond.into(), who),
                    0
                );
            }
        }
        println!("game simulation over {BLOCKS} blocks: {counts:?}");
        assert!(counts.requests > 5_000, "too few requests to mean anything");
        assert!(counts.wrong_results > 300 && counts.honest_games > 500);
        // Every wrong result cost its executor a game.
        assert_eq!(counts.executor_lost, counts.wrong_results);
        assert!(counts.thrown_games > 50 && counts.griefing_games > 50);
        assert!(counts.executor_lost > 300 && counts.challenger_lost > 100);
        assert!(counts.rebonds > 2);
    });
}
