//! An adversarial simulation on the mock runtime: a seeded random walk over many blocks
//! with honest, lazy, malicious and offline executors acting as executors, watchers,
//! challengers and jurors, against a deterministic "truth" function.
//!
//! Trust assumption, as in the protocol docs: every result is watched by at least one
//! honest executor, and every jury holds at most one juror that lies (here the single
//! malicious executor; lazy and offline jurors do not vote at all). Under it, the
//! simulation asserts: no honest executor is ever slashed; every wrong result that was
//! challenged was corrected; no wrong result is ever finalized; total issuance falls by
//! exactly what the pallet burned; once everything settles and everyone leaves, no hold
//! remains.

#![allow(clippy::unwrap_used)]

use crate::simulation_support::{bounded, rebond_deactivated, signed, Rng};
use crate::{
    challenge::vote_commitment, mock::*, ActiveExecutors, Ballot, Disputes, Event, Executors,
    RequestStatus, Requests, Results, TotalBurned, Vote,
};
use frame_support::traits::{
    fungible::{InspectHold, Mutate},
    Hooks,
};
use inferchain_primitives::{blake2_256, io::Payload};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Policy {
    Honest,
    Lazy,
    Malicious,
    Offline,
}

/// The correct output for an input: `[sum, 2 * sum]`.
fn truth(input: &[u8]) -> Vec<u8> {
    let Ok(Payload::Tensors(ts)) = Payload::decode_canonical(input) else {
        panic!("inputs are valid")
    };
    let sum: f32 = ts[0].to_f64_vec().unwrap().iter().map(|v| *v as f32).sum();
    tensor(&[sum, 2.0 * sum])
}

fn wrong_output(rng: &mut Rng) -> Vec<u8> {
    tensor(&[1000.0 + rng.below(1000) as f32, -1.0])
}

#[derive(Default, Debug)]
struct Counts {
    requests: u64,
    rejected_requests: u64,
    results: u64,
    wrong_results: u64,
    challenges: u64,
    dishonest_challenges: u64,
    wrong_results_corrected: u64,
    finalized: u64,
    expired: u64,
    slashes: u64,
    rebonds: u64,
}

#[test]
fn adversarial_random_walk_keeps_honest_executors_and_users_safe() {
    new_test_ext().execute_with(|| {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        set_seed(rng.next());
        let policies: BTreeMap<AccountId, Policy> = (10..=21)
            .map(|a| {
                let p = match a {
                    10..=16 => Policy::Honest,
                    17 | 18 => Policy::Lazy,
                    19 => Policy::Malicious,
                    _ => Policy::Offline,
                };
                (a, p)
            })
            .collect();
        let honest: BTreeSet<AccountId> = policies
            .iter()
            .filter(|(_, p)| **p == Policy::Honest)
            .map(|(a, _)| *a)
            .collect();
        let requesters: Vec<AccountId> = (1..=9).collect();
        for r in &requesters {
            Balances::mint_into(r, 1_000_000).unwrap();
        }
        for e in policies.keys() {
            Inference::register_executor(signed(*e), 1_000).unwrap();
        }
        let issuance_start = Balances::total_issuance();
        let mut counts = Counts::default();
        // Requests whose posted result was wrong and then challenged.
        let mut challenged_wrong: BTreeSet<u64> = BTreeSet::new();
        let mut salts: BTreeMap<(u64, AccountId), ([u8; 32], Vote)> = BTreeMap::new();

        const STEPS: u64 = 10_000;
        let settle_from = STEPS - 200;
        for step in 0..STEPS {
            let now = System::block_number() + 1;
            System::set_block_number(now);
            Inference::on_initialize(now);

            // New requests (none in the last 200 blocks, so everything settles).
            if step < settle_from {
                for _ in 0..rng.below(3) {
                    let requester = requesters[rng.below(requesters.len() as u64) as usize];
                    let len = 1 + rng.below(4) as usize;
                    let values: Vec<f32> = (0..len).map(|_| rng.below(100) as f32 / 4.0).collect();
                    let ok = Inference::request_inference(
                        signed(requester),
                        TENSOR_MODEL,
                        bounded(tensor(&values)),
                        FEE,
                    );
                    if ok.is_ok() {
                        counts.requests += 1;
                    } else {
                        counts.rejected_requests += 1;
                    }
                }
            }

            let ids: Vec<u64> = Requests::<Test>::iter_keys().collect();
            for id in ids {
                let Some(request) = Requests::<Test>::get(id) else {
                    continue;
                };
                let correct = truth(&request.input);
                match request.status {
                    RequestStatus::Pending { .. } => {
                        let output = match policies[&request.executor] {
                            Policy::Honest => Some(correct.clone()),
                            Policy::Lazy => Some(wrong_output(&mut rng)),
                            Policy::Malicious if rng.chance(70) => Some(wrong_output(&mut rng)),
                            Policy::Malicious => Some(correct.clone()),
                            Policy::Offline => None,
                        };
                        if let Some(output) = output {
                            if output != correct {
                                counts.wrong_results += 1;
                            }
                            Inference::submit_result(signed(request.executor), id, bounded(output))
                                .unwrap();
                            counts.results += 1;
                        }
                    }
                    RequestStatus::Submitted { .. } => {
                        let posted = Results::<Test>::get(id).unwrap();
                        let active = ActiveExecutors::<Test>::get();
                        if posted.output.to_vec() != correct {
                            // Every honest active executor watches; the first one able to challenges.
                            if let Some(w) = active
                                .iter()
                                .find(|a| honest.contains(a) && **a != posted.executor)
                            {
                                if Inference::challenge(signed(*w), id, bounded(correct.clone()))
                                    .is_ok()
                                {
                                    counts.challenges += 1;
                                    challenged_wrong.insert(id);
                                }
                            }
                        } else if posted.executor != 19 && active.contains(&19) && rng.chance(10) {
                            // The malicious executor challenges correct results now and then.
                            if Inference::challenge(signed(19), id, bounded(wrong_output(&mut rng)))
                                .is_ok()
                            {
                                counts.challenges += 1;
                                counts.dishonest_challenges += 1;
                            }
                        }
                    }
                    RequestStatus::Disputed => {
                        let dispute = Disputes::<Test>::get(id).unwrap();
                        let posted = Results::<Test>::get(id).unwrap();
                        for (juror, ballot) in dispute.jury.iter() {
                            let vote = match policies[juror] {
                                Policy::Honest => Vote {
                                    executor_ok: posted.output.to_vec() == correct,
                                    challenger_ok: dispute.challenger_output.to_vec() == correct,
                                },
                                Policy::Malicious => Vote {
                                    executor_ok: posted.output.to_vec() != correct,
                                    challenger_ok: dispute.challenger_output.to_vec() != correct,
                                },
                                Policy::Lazy | Policy::Offline => continue,
                            };
                            if now <= dispute.commit_end && *ballot == Ballot::Waiting {
                                let salt = blake2_256(&(id, juror, rng.next()).encode_to_vec());
                                salts.insert((id, *juror), (salt, vote));
                                let c = vote_commitment(id, juror, &vote, &salt);
                                Inference::commit_vote(signed(*juror), id, c).unwrap();
                            } else if now > dispute.commit_end
                                && matches!(ballot, Ballot::Committed(_))
                            {
                                let (salt, vote) = salts[&(id, *juror)];
                                Inference::reveal_vote(signed(*juror), id, vote, salt).unwrap();
                            }
                        }
                    }
                    RequestStatus::Finalized { .. } | RequestStatus::Expired { .. } => {}
                }
            }

            // Adversaries that were deactivated bond again once they can, while they
            // still have the funds: a determined attacker keeps coming back.
            if step < settle_from {
                let adversaries = policies
                    .iter()
                    .filter(|(_, p)| **p != Policy::Honest)
                    .map(|(a, _)| *a);
                counts.rebonds += rebond_deactivated(adversaries, now);
            }

            // Check what settled in this block.
            for record in System::events() {
                let RuntimeEvent::Inference(event) = record.event else {
                    continue;
                };
                match event {
                    Event::ResultFinalized { id, .. } => {
                        counts.finalized += 1;
                        let request = Requests::<Test>::get(id).unwrap();
                        let result = Results::<Test>::get(id).unwrap();
                        assert_eq!(
                            result.output.to_vec(),
                            truth(&request.input),
                            "step {step}: a wrong result of request {id} was finalized"
                        );
                        if challenged_wrong.remove(&id) {
                            counts.wrong_results_corrected += 1;
                        }
                    }
                    Event::RequestExpired { id, .. } => {
                        counts.expired += 1;
                        challenged_wrong.remove(&id);
                    }
                    Event::Slashed { who, reason, .. } => {
                        counts.slashes += 1;
                        assert!(
                            !honest.contains(&who),
                            "step {step}: honest executor {who} slashed ({reason:?})"
                        );
                    }
                    _ => {}
                }
            }
            System::reset_events();
            Inference::do_try_state().unwrap();
        }

        // Everything settled: no open request, every challenged wrong result corrected.
        assert!(
            Requests::<Test>::iter().all(|(_, r)| !r.status.holds_fee()),
            "requests still open after the settling blocks"
        );
        assert!(
            challenged_wrong.is_empty(),
            "challenged wrong results left uncorrected: {challenged_wrong:?}"
        );
        assert_eq!(
            issuance_start - Balances::total_issuance(),
            TotalBurned::<Test>::get(),
            "issuance changed by something other than burns"
        );

        // Everyone leaves; after unbonding no hold remains.
        for e in policies.keys() {
            let _ = Inference::unregister_executor(signed(*e));
        }
        let end = System::block_number() + UnbondingPeriod::get() + 1;
        while System::block_number() < end {
            let next = System::block_number() + 1;
            System::set_block_number(next);
            Inference::on_initialize(next);
        }
        for e in policies.keys() {
            if Executors::<Test>::contains_key(e) {
                Inference::withdraw_bond(signed(*e)).unwrap();
            }
        }
        let holds: Balance = (1..=30).map(|a| Balances::total_balance_on_hold(&a)).sum();
        assert_eq!(holds, 0, "holds remain after everyone left");
        Inference::do_try_state().unwrap();

        println!("simulation over {STEPS} blocks: {counts:?}");
        assert!(counts.requests > 5_000, "too few requests to mean anything");
        assert!(
            counts.wrong_results > 100 && counts.challenges > 100,
            "too little cheating"
        );
        assert!(counts.dishonest_challenges > 5 && counts.wrong_results_corrected > 50);
        assert!(counts.rebonds > 2);
    });
}

trait EncodeToVec {
    fn encode_to_vec(&self) -> Vec<u8>;
}
impl<T: codec::Encode> EncodeToVec for T {
    fn encode_to_vec(&self) -> Vec<u8> {
        self.encode()
    }
}
