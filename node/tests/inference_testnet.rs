//! End to end on four validators on loopback, each an executor with its own model store.
//! Dave is started with `--executor-fault wrong-output`: for all-MiniLM-L6-v2 (dispute
//! commitments at genesis, a 114-step plan) he posts a traced result whose middle plan
//! step (57: layer 3's query projection) is corrupted and defends it. Charlie is started
//! with `--executor-fault throw-games`: he opens a game on every traced result of another
//! executor and never moves. The honest watchers' games walk to exactly step 57, whose
//! output is too large to prove whole, then over its 6,144 chunks to the first one; the
//! runtime computes that chunk, Dave is slashed, Charlie forfeits the bond of every game
//! he lets time out (a game voided first returns it), the correct embedding is final, and
//! no honest node loses anything.

mod common;

use common::{
    inference::{
        connect, events_between, expected_output, inference_events, model_store, request_call,
        submitted, text_input, wait_until, MINILM_L6_V2,
    },
    local_testnet, test_dir, Node,
};
use inferchain_primitives::{blake2_256, H256};
use inferchain_runtime::configs::{protocol_params::DEFAULT_PARAMS, ChallengeBond};
use pallet_inference::{Event, GameEnd, RequestStatus, Side, SlashReason};
use sp_keyring::Sr25519Keyring;
use std::time::Duration;

/// The plan step `wrong-output` corrupts in MiniLM's 114-step plan (half way).
const CORRUPTED_STEP: u32 = 57;

#[test]
fn a_cheat_is_found_at_its_corrupted_step_by_bisection_while_a_sybil_throws_its_game() {
    let dir = test_dir("inference-testnet");
    let stores: Vec<_> = (0..4)
        .map(|i| model_store(&dir.join(format!("models-{i}")), true))
        .collect();
    let validators = local_testnet(&dir, |i| {
        let mut extra = vec!["--model-store".to_string(), stores[i].display().to_string()];
        match i {
            2 => extra.extend(["--executor-fault".to_string(), "throw-games".to_string()]),
            3 => extra.extend(["--executor-fault".to_string(), "wrong-output".to_string()]),
            _ => {}
        }
        extra
    });
    let mut nodes: Vec<Node> = validators.iter().map(|v| v.start()).collect();
    for node in &nodes {
        node.wait_finalized(1, Duration::from_secs(180));
    }
    let chain = connect(&nodes[0]);
    let charlie = Sr25519Keyring::Charlie.to_account_id();
    let dave = Sr25519Keyring::Dave.to_account_id();
    let honest_keys = [
        Sr25519Keyring::Alice.to_account_id(),
        Sr25519Keyring::Bob.to_account_id(),
    ];
    let requester = Sr25519Keyring::Eve.pair();
    let start = chain.best_number().expect("best");
    let bond = |who| {
        chain
            .executor(who, None)
            .expect("RPC")
            .expect("executor")
            .bond
    };
    let dave_bond = bond(&dave);
    let honest_before: Vec<_> = honest_keys
        .iter()
        .map(|k| chain.account(k, None).expect("account").data.free)
        .collect();

    // Requests until one is assigned to Dave (assignment is a stake-weighted draw).
    let mut cheated = None;
    let mut honest = Vec::new();
    for i in 0..24 {
        let input = text_input(&format!(
            "Request {i}: a sentence for a verifiable embedding."
        ));
        let included = chain
            .submit_and_wait(
                &requester,
                request_call(MINILM_L6_V2, input.clone(), u128::MAX),
                Duration::from_secs(60),
            )
            .expect("the request lands");
        let (id, executor) = submitted(&included);
        if executor == dave {
            cheated = Some((id, input));
            break;
        }
        honest.push((id, executor));
        // Each honest result is watched by every other node (and thrown by Charlie, two
        // model runs): the next request waits until this one's challenge window has
        // closed, so that no node is still busy with it when Dave's result arrives and
        // must be challenged inside its own window (on 2 shared cores, a watcher behind
        // on earlier runs can miss a 4-block window).
        wait_until(
            Duration::from_secs(180),
            "the challenge window to close",
            || {
                let request = chain.request(id, None).ok().flatten()?;
                match request.status {
                    RequestStatus::Pending { .. } => None,
                    RequestStatus::Submitted { window_end } => {
                        (chain.best_number().ok()? > window_end).then_some(())
                    }
                    _ => Some(()),
                }
            },
        );
    }
    let (id, input) = cheated.expect("one of 24 requests went to Dave");
    let truth = expected_output(&stores[0], MINILM_L6_V2, &input);

    // The games run their course (a step walk of 7 rounds, then a chunk walk of 13), then
    // another executor answers and its result is final.
    let final_result = wait_until(Duration::from_secs(480), "the dispute to resolve", || {
        let request = chain.request(id, None).ok().flatten()?;
        matches!(request.status, RequestStatus::Finalized { .. })
            .then(|| chain.result(id, None).ok().flatten())
            .flatten()
    });
    assert_eq!(
        final_result.output.to_vec(),
        truth,
        "the correct output is final"
    );
    assert_ne!(final_result.executor, dave);

    let end = chain.best_number().expect("best");
    let events = inference_events(&events_between(&chain, start, end));
    let of_request = || events.iter().map(|(_, e)| e);
    let posted = of_request()
        .find_map(|e| match e {
            Event::ResultSubmitted {
                id: i,
                executor,
                output_hash,
                ..
            } if *i == id && *executor == dave => Some(*output_hash),
            _ => None,
        })
        .expect("Dave posted a result");
    assert_ne!(posted, H256(blake2_256(&truth)), "Dave's output was wrong");
    let games: Vec<(u64, inferchain_runtime::AccountId)> = of_request()
        .filter_map(|e| match e {
            Event::GameOpened {
                game,
                id: i,
                executor,
                challenger,
                ..
            } if *i == id && *executor == dave => Some((*game, challenger.clone())),
            _ => None,
        })
        .collect();
    assert!(
        games.iter().any(|(_, c)| *c == charlie),
        "Charlie opened a game to throw: {events:?}"
    );
    assert!(
        games.iter().any(|(_, c)| honest_keys.contains(c)),
        "an honest watcher opened a game: {events:?}"
    );
    let game_ids: Vec<u64> = games.iter().map(|(g, _)| *g).collect();
    // What each game on Dave's result did, in one short line per event, so a failure
    // says how the games went before the (long) list of every event.
    let story: Vec<String> = events
        .iter()
        .filter(|(_, e)| match e {
            Event::GameOpened { game, .. }
            | Event::ElementWalkOpened { game, .. }
            | Event::StepRefereed { game, .. }
            | Event::ChunkRefereed { game, .. }
            | Event::GameEnded { game, .. }
            | Event::GameVoided { game } => game_ids.contains(game),
            _ => false,
        })
        .map(|(b, e)| format!("#{b} {e:?}"))
        .collect();
    // The one refereed step is the corrupted one, settled by its first chunk (where the
    // fault raised the first value), and Dave was wrong there.
    let walked: Vec<u32> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ElementWalkOpened { game, step, .. } if game_ids.contains(game) => Some(*step),
            _ => None,
        })
        .collect();
    // (Alice's and Bob's games may both get this far before one of them ends it.)
    assert!(
        !walked.is_empty() && walked.iter().all(|s| *s == CORRUPTED_STEP),
        "walked {walked:?}; the games: {story:#?}; every event: {events:?}"
    );
    let refereed: Vec<(u32, u32)> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ChunkRefereed {
                game, step, chunk, ..
            } if game_ids.contains(game) => Some((*step, *chunk)),
            _ => None,
        })
        .collect();
    assert!(
        !refereed.is_empty() && refereed.iter().all(|r| *r == (CORRUPTED_STEP, 0)),
        "refereed {refereed:?}; the games: {story:#?}; every event: {events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|(_, e)| matches!(e, Event::StepRefereed { game, .. } if game_ids.contains(game))),
        "no whole-step proof; the games: {story:#?}"
    );
    assert!(
        events.iter().any(|(_, e)| matches!(e,
        Event::GameEnded { game, end: GameEnd::Refereed { executor_right: false }, .. }
            if game_ids.contains(game))),
        "a game refereed against Dave; the games: {story:#?}"
    );
    // Figures for docs/PROTOCOL.md: blocks and moves of the game that convicted Dave.
    let at = |f: &dyn Fn(&Event<inferchain_runtime::Runtime>) -> bool| {
        events.iter().find(|(_, e)| f(e)).map(|(b, _)| *b)
    };
    let won = events
        .iter()
        .find_map(|(_, e)| match e {
            Event::ChunkRefereed { game, .. } if game_ids.contains(game) => Some(*game),
            _ => None,
        })
        .expect("a refereed chunk");
    let opened = at(&|e| matches!(e, Event::GameOpened { game, .. } if *game == won));
    let walk = at(&|e| matches!(e, Event::ElementWalkOpened { game, .. } if *game == won));
    let refereed = at(&|e| matches!(e, Event::ChunkRefereed { game, .. } if *game == won));
    let reveals = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Revealed { game, .. } if *game == won))
        .count();
    let outputs = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::OutputRevealed { game, .. } if *game == won))
        .count();
    eprintln!(
        "MiniLM game {won}: opened at block {opened:?}, element walk from {walk:?}, chunk \
         refereed at {refereed:?}; {reveals} reveals, {outputs} output reveals"
    );
    assert!(events.iter().any(|(_, e)| *e
        == Event::Slashed {
            who: dave.clone(),
            amount: DEFAULT_PARAMS.result_slash,
            reason: SlashReason::WrongResult
        }));
    assert_eq!(bond(&dave), dave_bond - DEFAULT_PARAMS.result_slash);

    // The honest requests on the way finalized with their executors' results; Charlie
    // threw a game on each he did not answer himself and lost every bond of them.
    for (id, executor) in &honest {
        let result = wait_until(
            Duration::from_secs(90),
            "honest requests to finalize",
            || {
                let request = chain.request(*id, None).ok().flatten()?;
                matches!(request.status, RequestStatus::Finalized { .. })
                    .then(|| chain.result(*id, None).ok().flatten())
                    .flatten()
            },
        );
        assert_eq!(result.executor, *executor, "request {id} kept its result");
    }
    let end = chain.best_number().expect("best");
    let events = inference_events(&events_between(&chain, start, end));
    // Every game Charlie opened ended without a move of his: lost by his timeout (his
    // bond forfeited) or voided when another game overturned the result first (bond
    // back). Which of the two, and how many, depends on the draw of executors.
    let charlies: Vec<u64> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::GameOpened {
                game, challenger, ..
            } if *challenger == charlie => Some(*game),
            _ => None,
        })
        .collect();
    let mut thrown = 0;
    for game in &charlies {
        let ended = events.iter().find_map(|(_, e)| match e {
            Event::GameEnded { game: g, end, .. } if g == game => Some(*end),
            _ => None,
        });
        let voided = events
            .iter()
            .any(|(_, e)| matches!(e, Event::GameVoided { game: g } if g == game));
        match ended {
            Some(GameEnd::Timeout {
                side: Side::Challenger,
            }) => thrown += 1,
            None if voided => {}
            other => panic!("Charlie's game {game} ended {other:?}: {events:?}"),
        }
    }
    assert!(
        events.iter().all(|(_, e)| !matches!(e,
            Event::Revealed { game, side: Side::Challenger, .. } if charlies.contains(game))),
        "Charlie never moves"
    );
    let charlie_slashes: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Slashed {
                who,
                amount,
                reason: SlashReason::WrongChallenge,
            } if *who == charlie => Some(*amount),
            _ => None,
        })
        .collect();
    assert_eq!(charlie_slashes.len(), thrown, "{events:?}");
    assert!(charlie_slashes.iter().all(|a| *a == ChallengeBond::get()));
    let honest_slashed: Vec<_> = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Slashed { who, .. } if honest_keys.contains(who)))
        .collect();
    assert!(
        honest_slashed.is_empty(),
        "honest executors were slashed: {honest_slashed:?}"
    );
    // An honest game that lost the race to convict Dave is voided, its bond returned, when
    // its deadline passes, which may be after the request is final: wait for that.
    let kept_all = || {
        honest_keys.iter().zip(&honest_before).all(|(k, before)| {
            chain.account(k, None).expect("account").data.free + inferchain_runtime::UNIT >= *before
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !kept_all() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    for (k, before) in honest_keys.iter().zip(honest_before) {
        let now = chain.account(k, None).expect("account").data;
        assert!(
            now.free + inferchain_runtime::UNIT >= before,
            "{k} lost more than transaction fees: free {before} before, {} now ({} held)",
            now.free,
            now.reserved
        );
    }
    for node in &mut nodes {
        node.kill();
    }
}
