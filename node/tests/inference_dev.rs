//! End to end on the dev chain, against the real node binary: requests for the genesis
//! ONNX model and for MiniLM get their results on chain from the node's off-chain worker
//! within two blocks, finalize after the challenge window, pay the executor and charge
//! the requester exactly the fee; and a node killed mid-window loses no request and
//! answers none twice after a restart.

mod common;

use codec::Encode;
use common::{
    free_port,
    inference::{
        connect, events_between, expected_output, inference_events, model_store, request_call,
        submitted, text_input, tiny_input, tx_fee, wait_until, MINILM_L6_V2, TINY_MLP, WIDE_MLP,
    },
    test_dir, Node,
};
use inferchain_primitives::io::{Payload, Tensor};
use inferchain_runtime::dev_models::TINY_LLM;
use inferchain_runtime::{configs::protocol_params::DEFAULT_PARAMS, RuntimeEvent};
use pallet_inference::{Event, HoldReason, RequestStatus};
use sp_keyring::Sr25519Keyring;
use std::time::Duration;

const CHALLENGE_PERIOD: u32 = 4;

fn dev_node(dir: &std::path::Path, store: &std::path::Path, name: &str) -> Node {
    dev_node_with(dir, store, name, &[])
}

fn dev_node_with(
    dir: &std::path::Path,
    store: &std::path::Path,
    name: &str,
    extra: &[&str],
) -> Node {
    let mut args = vec![
        "--dev".to_string(),
        "--base-path".to_string(),
        dir.join("base").display().to_string(),
        "--model-store".to_string(),
        store.display().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    Node::start(
        name,
        &args,
        free_port(),
        free_port(),
        &dir.join(format!("{name}.log")),
    )
}

#[test]
fn requests_for_onnx_and_minilm_are_answered_finalized_and_paid() {
    let dir = test_dir("inference-dev");
    let store = model_store(&dir.join("models"), true);
    let node = dev_node(&dir, &store, "dev");
    node.wait_finalized(1, Duration::from_secs(120));
    let chain = connect(&node);

    let requester = Sr25519Keyring::Charlie;
    let who = requester.to_account_id();
    let start = chain.best_number().expect("best");
    let free_before = chain.account(&who, None).expect("account").data.free;

    let cases = [
        (TINY_MLP, tiny_input([0.5, -1.0, 2.0, 0.25])),
        (
            MINILM_L6_V2,
            text_input("Verifiable inference on a Substrate chain."),
        ),
    ];
    let mut charged = 0u128;
    let mut deposits = 0u128;
    let mut requests = Vec::new();
    for (model, input) in cases {
        let spec = chain
            .model(model, None)
            .expect("RPC")
            .expect("genesis model")
            .spec;
        let fee = spec.fee;
        // Held until the request is pruned: the input and the model's largest output.
        deposits += DEFAULT_PARAMS.request_deposit_base
            + DEFAULT_PARAMS.deposit_per_byte
                * (input.len() as u128 + u128::from(spec.max_output_bytes));
        let included = chain
            .submit_and_wait(
                &requester.pair(),
                request_call(model, input.clone(), fee),
                Duration::from_secs(60),
            )
            .expect("the request lands");
        let (id, executor) = submitted(&included);
        charged += fee + tx_fee(&included);
        requests.push((id, model, input, fee, executor, included.block));
    }

    for (id, model, input, fee, executor, included_at) in &requests {
        // The result is on chain within two blocks of the request...
        let result = wait_until(Duration::from_secs(60), "the result", || {
            chain.result(*id, None).ok().flatten()
        });
        assert!(
            result.posted_at <= included_at + 2,
            "request {id} included at #{included_at}, result at #{}",
            result.posted_at
        );
        assert_eq!(&result.executor, executor);
        // ...and it is what this CPU computes.
        assert_eq!(
            result.output.to_vec(),
            expected_output(&store, *model, input),
            "request {id}: the posted output differs from a local run"
        );

        // It finalizes after the window, and GRANDPA finalizes that block.
        let at = wait_until(Duration::from_secs(60), "finalization", || {
            match chain.request(*id, None).ok().flatten()?.status {
                RequestStatus::Finalized { at } => Some(at),
                _ => None,
            }
        });
        assert_eq!(at, result.posted_at + CHALLENGE_PERIOD);
        node.wait_finalized(at as u64, Duration::from_secs(60));

        // The executor got the fee less the protocol's cut.
        let hash = chain.block_hash(at).expect("RPC").expect("block");
        let events = chain.events(hash).expect("events");
        let cut = DEFAULT_PARAMS.protocol_fee * *fee;
        assert!(
            events.iter().any(|e| matches!(e,
                RuntimeEvent::Balances(pallet_balances::Event::TransferOnHold { dest, amount, .. })
                    if dest == executor && *amount == fee - cut)),
            "request {id}: no payment of {} to the executor in #{at}: {events:?}",
            fee - cut
        );
        assert!(events.iter().any(|e| *e
            == RuntimeEvent::Inference(Event::ResultFinalized {
                id: *id,
                executor: executor.clone(),
                output_hash: result.output_hash
            })));
    }

    // The requester paid exactly the fees and its own transaction fees, holds no fee,
    // and holds the storage deposits until the requests are pruned.
    let free_after = chain.account(&who, None).expect("account").data.free;
    assert_eq!(free_before - free_after, charged + deposits);
    assert_eq!(
        chain
            .held(&who, HoldReason::RequestFee, None)
            .expect("holds"),
        0
    );
    assert_eq!(
        chain
            .held(&who, HoldReason::StorageDeposit, None)
            .expect("holds"),
        deposits
    );
    // Nobody was slashed or challenged on the way.
    let end = chain.best_number().expect("best");
    for (n, e) in inference_events(&events_between(&chain, start, end)) {
        assert!(
            !matches!(e, Event::Slashed { .. } | Event::GameOpened { .. }),
            "unexpected {e:?} in #{n}"
        );
    }
}

#[test]
fn a_node_killed_mid_window_loses_nothing_and_answers_once() {
    let dir = test_dir("inference-restart");
    let store = model_store(&dir.join("models"), false);
    let mut node = dev_node(&dir, &store, "run1");
    node.wait_finalized(1, Duration::from_secs(120));
    let chain = connect(&node);
    let requester = Sr25519Keyring::Dave.pair();
    let start = chain.best_number().expect("best");

    // Three requests land; the node dies before its answers (sent to its pool by the
    // off-chain worker of that block) can be included: they die with it.
    for i in 0..3 {
        chain
            .submit(
                &requester,
                request_call(TINY_MLP, tiny_input([i as f32, 1.0, 0.0, -1.0]), u128::MAX),
            )
            .expect("the pool takes it");
    }
    wait_until(Duration::from_secs(60), "the requests to land", || {
        (chain.next_request_id(None).ok()? == 3).then_some(())
    });
    node.kill();
    drop(chain);

    // Restarted, it answers them; it dies again while the results are in their window.
    let mut node = dev_node(&dir, &store, "run2");
    let chain = connect(&node);
    wait_until(Duration::from_secs(90), "the results", || {
        (0..3)
            .all(|id| chain.result(id, None).ok().flatten().is_some())
            .then_some(())
    });
    let in_window = (0..3)
        .filter(|id| {
            matches!(
                chain.request(*id, None).ok().flatten().map(|r| r.status),
                Some(RequestStatus::Submitted { .. })
            )
        })
        .count();
    node.kill();
    drop(chain);
    assert!(
        in_window > 0,
        "no result was in its window at the second crash"
    );

    // Restarted again: every request finalizes, each answered exactly once, nobody
    // slashed, nothing reassigned, no extrinsic failed (no duplicate answer was tried).
    let node = dev_node(&dir, &store, "run3");
    let chain = connect(&node);
    assert_eq!(
        chain.next_request_id(None).expect("RPC"),
        3,
        "the database kept every request"
    );
    for id in 0..3 {
        wait_until(Duration::from_secs(90), "every request to finalize", || {
            matches!(
                chain.request(id, None).ok().flatten()?.status,
                RequestStatus::Finalized { .. }
            )
            .then_some(())
        });
    }
    let end = chain.best_number().expect("best");
    let events = events_between(&chain, start, end);
    for id in 0..3 {
        let answers = inference_events(&events)
            .into_iter()
            .filter(|(_, e)| matches!(e, Event::ResultSubmitted { id: i, .. } if *i == id))
            .count();
        assert_eq!(answers, 1, "request {id} answered {answers} times");
    }
    let failed: Vec<_> = events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                RuntimeEvent::System(frame_system::Event::ExtrinsicFailed { .. })
            )
        })
        .collect();
    assert!(failed.is_empty(), "extrinsics failed: {failed:?}");
    for (n, e) in inference_events(&events) {
        assert!(
            !matches!(e, Event::Slashed { .. } | Event::RequestReassigned { .. }),
            "unexpected {e:?} in #{n}"
        );
    }
}

/// Requests `model` on `input` and waits for the game on the result to end with the
/// executor refereed wrong: the request, its executor, the game and the events since.
fn request_until_refereed(
    chain: &inferchain_cli::chain::Chain,
    model: inferchain_primitives::ModelId,
    input: Vec<u8>,
) -> (
    u64,
    inferchain_runtime::AccountId,
    u64,
    Vec<(u32, Event<inferchain_runtime::Runtime>)>,
) {
    let start = chain.best_number().expect("best");
    let included = chain
        .submit_and_wait(
            &Sr25519Keyring::Eve.pair(),
            request_call(model, input, u128::MAX),
            Duration::from_secs(60),
        )
        .expect("the request lands");
    let (id, cheat) = submitted(&included);
    let (game, end) = wait_until(Duration::from_secs(240), "the game to end", || {
        let now = chain.best_number().ok()?;
        inference_events(&events_between(chain, start, now))
            .into_iter()
            .find_map(|(_, e)| match e {
                Event::GameEnded { game, id: i, end } if i == id => Some((game, end)),
                _ => None,
            })
    });
    assert_eq!(
        end,
        pallet_inference::GameEnd::Refereed {
            executor_right: false
        }
    );
    let now = chain.best_number().expect("best");
    (
        id,
        cheat,
        game,
        inference_events(&events_between(chain, start, now)),
    )
}

#[test]
fn on_the_dev_chain_a_wrong_traced_result_is_refereed_and_slashed() {
    // One validator, two executor keys (Alice, Bob) on it, started with `wrong-output`:
    // the executor key posts a trace with step 3 of tiny-mlp's plan corrupted; the other
    // key watches with the honest trace, opens a game and the node plays both sides.
    let dir = test_dir("inference-dev-game");
    let store = model_store(&dir.join("models"), false);
    let node = dev_node_with(
        &dir,
        &store,
        "dev-game",
        &["--executor-fault", "wrong-output"],
    );
    node.wait_finalized(1, Duration::from_secs(120));
    let chain = connect(&node);
    let (_, cheat, game, events) =
        request_until_refereed(&chain, TINY_MLP, tiny_input([1.0, -2.0, 0.5, 3.0]));
    assert!(events.iter().any(|(_, e)| matches!(e,
        Event::GameOpened { game: g, executor, challenger, .. }
            if *g == game && *executor == cheat && *challenger != cheat)));
    assert!(events.iter().any(|(_, e)| matches!(e,
        Event::StepRefereed { game: g, step: 3, .. } if *g == game)));
    assert!(events.iter().any(|(_, e)| *e
        == Event::Slashed {
            who: cheat.clone(),
            amount: DEFAULT_PARAMS.result_slash,
            reason: pallet_inference::SlashReason::WrongResult
        }));

    // wide-mlp: the corrupted step (2 of 4) is a product over the referee's caps, settled
    // by the element-level walk over its 128 output chunks; the wrong chunk is recomputed.
    let values: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) / 16.0).collect();
    let input = Payload::Tensors(vec![Tensor::from_f32(vec![1, 64], &values)]).encode();
    let (_, cheat, game, events) = request_until_refereed(&chain, WIDE_MLP, input);
    assert!(events.iter().any(|(_, e)| matches!(e,
        Event::ElementWalkOpened { game: g, step: 2, chunks: 128 } if *g == game)));
    assert!(
        events.iter().any(|(_, e)| matches!(e,
        Event::ChunkRefereed { game: g, step: 2, chunk: 0, .. } if *g == game)),
        "{events:?}"
    );
    assert!(events.iter().any(|(_, e)| matches!(e,
        Event::Slashed { who, reason: pallet_inference::SlashReason::WrongResult, .. }
            if *who == cheat)));

    // tiny-llm: the cheat posts the generation of a trace whose middle step is corrupted
    // (engine/tests/llm_plan.rs checks it is not the greedy one for this prompt); the
    // watcher traces the plan over that posted output, ends in a witness of its fault
    // and opens the game; the cheat's trace is not over what it posted, and the first
    // step, which reads the posted output, convicts it.
    let input = Payload::Prompt {
        text: b"ROMEO.\nBut soft, what light".to_vec(),
        max_new_tokens: 24,
    }
    .encode();
    let (_, cheat, game, events) = request_until_refereed(&chain, TINY_LLM, input);
    assert!(events.iter().any(|(_, e)| matches!(e,
        Event::GameOpened { game: g, executor, .. } if *g == game && *executor == cheat)));
    assert!(
        events.iter().any(|(_, e)| matches!(e,
            Event::StepRefereed { game: g, step: 0, .. } if *g == game)),
        "{events:?}"
    );
    assert!(events.iter().any(|(_, e)| matches!(e,
        Event::Slashed { who, reason: pallet_inference::SlashReason::WrongResult, .. }
            if *who == cheat)));
}
