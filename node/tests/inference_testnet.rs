//! End to end on four validators on loopback, each an executor with its own model store,
//! Dave started with `--executor-fault wrong-output`: his result is challenged by a
//! watcher, the jury votes it down, he is slashed, the correct output is final, and no
//! honest node is slashed.

mod common;

use common::{
    inference::{
        connect, events_between, expected_output, inference_events, model_store, request_call,
        submitted, tiny_input, wait_until, TINY_MLP,
    },
    local_testnet, test_dir, Node,
};
use inferchain_primitives::{blake2_256, H256};
use inferchain_runtime::configs::ResultSlash;
use pallet_inference::{Event, Judgement, RequestStatus, SlashReason, Verdict};
use sp_keyring::Sr25519Keyring;
use std::time::Duration;

#[test]
fn a_cheating_executor_is_challenged_voted_down_and_slashed() {
    let dir = test_dir("inference-testnet");
    let stores: Vec<_> = (0..4)
        .map(|i| model_store(&dir.join(format!("models-{i}")), false))
        .collect();
    let validators = local_testnet(&dir, |i| {
        let mut extra = vec!["--model-store".to_string(), stores[i].display().to_string()];
        if i == 3 {
            extra.extend(["--executor-fault".to_string(), "wrong-output".to_string()]);
        }
        extra
    });
    let mut nodes: Vec<Node> = validators.iter().map(|v| v.start()).collect();
    for node in &nodes {
        node.wait_finalized(1, Duration::from_secs(180));
    }
    let chain = connect(&nodes[0]);
    let dave = Sr25519Keyring::Dave.to_account_id();
    let requester = Sr25519Keyring::Eve.pair();
    let start = chain.best_number().expect("best");
    let dave_bond = chain
        .executor(&dave, None)
        .expect("RPC")
        .expect("dave")
        .bond;

    // Requests until one is assigned to Dave (assignment is a stake-weighted draw).
    let mut cheated = None;
    let mut honest = Vec::new();
    for i in 0..24 {
        let input = tiny_input([i as f32 * 0.25, 1.0, -0.5, 2.0]);
        let included = chain
            .submit_and_wait(
                &requester,
                request_call(TINY_MLP, input.clone(), u128::MAX),
                Duration::from_secs(60),
            )
            .expect("the request lands");
        let (id, executor) = submitted(&included);
        if executor == dave {
            cheated = Some((id, input));
            break;
        }
        honest.push(id);
    }
    let (id, input) = cheated.expect("one of 24 requests went to Dave");
    let truth = expected_output(&stores[0], TINY_MLP, &input);

    // The dispute runs its course: result, challenge, commit, reveal, verdict.
    let final_result = wait_until(Duration::from_secs(120), "the dispute to resolve", || {
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
    assert!(final_result.challenged);

    let end = chain.best_number().expect("best");
    let events = inference_events(&events_between(&chain, start, end));
    let find = |f: &dyn Fn(&Event<inferchain_runtime::Runtime>) -> bool| {
        events
            .iter()
            .find(|(_, e)| f(e))
            .map(|(n, e)| (*n, e.clone()))
    };
    let (_, posted) = find(&|e| matches!(e, Event::ResultSubmitted { id: i, .. } if *i == id))
        .expect("Dave posted a result");
    let Event::ResultSubmitted {
        output_hash,
        executor,
        ..
    } = posted
    else {
        unreachable!()
    };
    assert_eq!(executor, dave);
    assert_ne!(
        output_hash,
        H256(blake2_256(&truth)),
        "Dave's output was wrong"
    );
    let (_, challenged) = find(&|e| matches!(e, Event::Challenged { id: i, .. } if *i == id))
        .expect("a watcher challenged it");
    let Event::Challenged {
        challenger, jury, ..
    } = challenged
    else {
        unreachable!()
    };
    assert_ne!(challenger, dave);
    assert!(!jury.contains(&dave) && !jury.contains(&challenger));
    assert!(
        find(&|e| *e
            == Event::DisputeResolved {
                id,
                verdict: Verdict {
                    executor: Judgement::Wrong,
                    challenger: Judgement::Right
                }
            })
        .is_some(),
        "the jury voted Dave down: {events:?}"
    );
    assert!(find(&|e| *e
        == Event::Slashed {
            who: dave.clone(),
            amount: ResultSlash::get(),
            reason: SlashReason::WrongResult
        })
    .is_some());
    let slashed: Vec<_> = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Slashed { who, .. } if *who != dave))
        .collect();
    assert!(
        slashed.is_empty(),
        "honest executors were slashed: {slashed:?}"
    );
    assert_eq!(
        chain
            .executor(&dave, None)
            .expect("RPC")
            .expect("dave")
            .bond,
        dave_bond - ResultSlash::get()
    );

    // The honest requests on the way finalized with their executors' results.
    for id in honest {
        wait_until(
            Duration::from_secs(60),
            "honest requests to finalize",
            || {
                matches!(
                    chain.request(id, None).ok().flatten()?.status,
                    RequestStatus::Finalized { .. }
                )
                .then_some(())
            },
        );
        assert!(
            !chain
                .result(id, None)
                .expect("RPC")
                .expect("result")
                .challenged
        );
    }
    for node in &mut nodes {
        node.kill();
    }
}
