//! A chain that changes hands, on the local testnet: the council adds a fifth validator
//! (Eve, who registered her session keys) and removes Dave; two sessions later GRANDPA's
//! set id has moved and Eve authors blocks. A request finalized under the genesis set and
//! one under the new set both verify from the genesis hash alone: online, and from their
//! exported files once every node is stopped. In between, the council upgrades the
//! runtime (the next release's, spec version + 1) and both receipts still verify.

mod common;

use common::{
    cli::{json, run, run_code},
    inference::model_store,
    local_testnet, peer_id, test_dir, Node, Validator,
};
use serde_json::Value;
use std::{
    path::Path,
    time::{Duration, Instant},
};

/// Bob votes aye on the one open motion and Dave closes it.
fn pass(store: &Path, url: &str) {
    let (ok, out, err) = run(store, &["council", "list", "--url", url, "--json"]);
    assert!(ok, "council list failed: {err}");
    let list = json(&out);
    let motion = list["motions"][0]["motion"]
        .as_str()
        .unwrap_or_else(|| panic!("no open motion: {list}"))
        .to_string();
    let (ok, _, err) = run(
        store,
        &[
            "council", "vote", &motion, "--aye", "--suri", "//Bob", "--url", url,
        ],
    );
    assert!(ok, "vote failed: {err}");
    let (ok, out, err) = run(
        store,
        &[
            "council", "close", &motion, "--suri", "//Dave", "--url", url,
        ],
    );
    assert!(
        ok && out.contains("approved and executed"),
        "close failed: {out}\n{err}"
    );
}

fn validators(store: &Path, url: &str) -> Value {
    let (ok, out, err) = run(store, &["validator", "list", "--url", url, "--json"]);
    assert!(ok, "validator list failed: {err}");
    json(&out)
}

/// Submits a tiny-mlp request and follows it to GRANDPA finality: its id.
fn request(store: &Path, url: &str, x: &Path) -> String {
    let (ok, out, err) = run(
        store,
        &[
            "submit",
            "--model",
            "tiny-mlp",
            "--input",
            x.to_str().expect("UTF-8 path"),
            "--url",
            url,
            "--wait",
            "--json",
            "--timeout",
            "180",
        ],
    );
    assert!(ok, "submit failed: {err}");
    json(&out)["request"]
        .as_u64()
        .expect("request id")
        .to_string()
}

/// `verify ID --export FILE`: the receipt's JSON.
fn verify(store: &Path, url: &str, genesis: &str, id: &str, file: &Path) -> Value {
    let (code, out, err) = run_code(
        store,
        &[
            "verify",
            id,
            "--url",
            url,
            "--genesis",
            genesis,
            "--export",
            file.to_str().expect("UTF-8 path"),
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "receipt of {id} failed: {out}\n{err}");
    json(&out)
}

#[test]
fn governance_rotates_the_validators_and_receipts_verify_across_the_set_change() {
    let dir = test_dir("validator-set");
    let stores: Vec<_> = (0..5)
        .map(|i| model_store(&dir.join(format!("models-{i}")), false))
        .collect();
    let validators4 = local_testnet(&dir, |i| {
        vec!["--model-store".to_string(), stores[i].display().to_string()]
    });
    // Eve's node: the local chain, her dev keys in its keystore, Alice as bootnode.
    let eve_key = format!("{:064x}", 5);
    let alice_key = format!("{:064x}", 1);
    let eve = Validator {
        name: "eve",
        args: vec![
            "--chain".into(),
            "local".into(),
            "--eve".into(),
            "--validator".into(),
            "--base-path".into(),
            dir.join("eve").display().to_string(),
            "--node-key".into(),
            eve_key,
            "--bootnodes".into(),
            format!(
                "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                validators4[0].p2p_port,
                peer_id(&dir, &alice_key)
            ),
            "--model-store".into(),
            stores[4].display().to_string(),
        ],
        rpc_port: common::free_port(),
        p2p_port: common::free_port(),
        log: dir.join("eve.log"),
    };
    let mut nodes: Vec<Node> = validators4.iter().map(Validator::start).collect();
    nodes.push(eve.start());
    for node in &nodes {
        node.wait_finalized(1, Duration::from_secs(180));
    }
    let url = format!("ws://127.0.0.1:{}", nodes[0].rpc_port);
    let genesis = nodes[0].block_hash(0).expect("genesis");
    let store = dir.join("cli-models");
    let x = dir.join("x.npy");
    std::fs::write(
        &x,
        inferchain_engine::npy::write(&inferchain_primitives::io::Tensor::from_f32(
            vec![1, 4],
            &[0.5, -1.0, 2.0, 0.25],
        )),
    )
    .expect("write x.npy");

    let before = validators(&store, &url);
    assert_eq!(before["grandpa_set_id"], 0, "{before}");
    assert_eq!(
        before["active"].as_array().map(Vec::len),
        Some(4),
        "{before}"
    );

    // A request finalized under the genesis set.
    let old = request(&store, &url, &x);
    let old_file = dir.join("old.receipt");
    let receipt = verify(&store, &url, &genesis, &old, &old_file);
    assert_eq!(receipt["authority_set"], 0, "{receipt}");

    // Eve registers her session keys; the council adds her and removes Dave.
    let (ok, out, err) = run(
        &store,
        &["validator", "set-keys", "--suri", "//Eve", "--url", &url],
    );
    assert!(ok, "set-keys failed: {out}\n{err}");
    let (ok, _, err) = run(
        &store,
        &[
            "validator",
            "propose-add",
            "//Eve",
            "--suri",
            "//Alice",
            "--url",
            &url,
        ],
    );
    assert!(ok, "propose-add failed: {err}");
    pass(&store, &url);
    let (ok, _, err) = run(
        &store,
        &[
            "validator",
            "propose-remove",
            "//Dave",
            "--suri",
            "//Alice",
            "--url",
            &url,
        ],
    );
    assert!(ok, "propose-remove failed: {err}");
    pass(&store, &url);
    let decided = validators(&store, &url);
    let eve_account = sp_keyring::Sr25519Keyring::Eve.to_account_id().to_string();
    let dave_account = sp_keyring::Sr25519Keyring::Dave.to_account_id().to_string();
    let has = |v: &Value, list: &str, who: &str| {
        v[list]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == who))
    };
    assert!(has(&decided, "governed", &eve_account), "{decided}");
    assert!(!has(&decided, "governed", &dave_account), "{decided}");

    // Within two short sessions of each change the set has changed hands (the two
    // motions may land in different sessions: two hand-offs then).
    let started = Instant::now();
    let after = loop {
        let now = validators(&store, &url);
        if has(&now, "active", &eve_account) && !has(&now, "active", &dave_account) {
            break now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the set did not change: {now}\n{}",
            nodes[0].log_tail(20)
        );
        std::thread::sleep(Duration::from_secs(3));
    };
    assert!(
        after["grandpa_set_id"].as_u64().unwrap_or(0) >= 1,
        "{after}"
    );
    // Finality goes on under the new set (Eve votes; Dave's node no longer counts).
    let head = nodes[0].finalized_number().expect("finalized");
    nodes[4].wait_finalized(head + 3, Duration::from_secs(120));

    // A request finalized under the new set.
    let new = request(&store, &url, &x);
    let new_file = dir.join("new.receipt");
    let receipt = verify(&store, &url, &genesis, &new, &new_file);
    assert!(
        receipt["authority_set"].as_u64().unwrap_or(0) >= 1,
        "{receipt}"
    );
    let handoff = receipt["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "authority set"))
        .expect("authority set check");
    assert!(
        handoff["detail"]
            .as_str()
            .is_some_and(|d| d.contains("hand-off")),
        "{handoff}"
    );
    // The old request still verifies online.
    let receipt = verify(&store, &url, &genesis, &old, &old_file);
    assert_eq!(receipt["valid"], true, "{receipt}");

    // A runtime upgrade by council motion: two thirds of the council authorize the next
    // release's code (Alice proposes, Bob's aye is the second of three), then anyone
    // submits it. Every node switches to it and finality goes on.
    // (`None` while a node is busy: each compiles the new runtime when it first runs it,
    // five at once on the test machine's cores.)
    let spec = |node: &Node| {
        node.rpc("state_getRuntimeVersion", serde_json::json!([]))
            .and_then(|v| v["specVersion"].as_u64())
    };
    let built = u64::from(inferchain_runtime::VERSION.spec_version);
    assert_eq!(spec(&nodes[0]), Some(built));
    let next = inferchain_runtime::next_runtime::WASM_BINARY_PATH
        .expect("build.rs builds the next runtime");
    let (ok, out, err) = run(
        &store,
        &[
            "upgrade", "propose", next, "--suri", "//Alice", "--url", &url,
        ],
    );
    assert!(ok && out.contains("needs 2 ayes of 3"), "{out}\n{err}");
    pass(&store, &url);
    let (ok, out, err) = run(
        &store,
        &[
            "upgrade",
            "apply",
            next,
            "--suri",
            "//Charlie",
            "--url",
            &url,
        ],
    );
    assert!(ok && out.contains("runtime upgraded"), "{out}\n{err}");
    let started = Instant::now();
    while nodes.iter().any(|n| spec(n) != Some(built + 1)) {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "not every node runs the upgrade:\n{}",
            nodes[0].log_tail(20)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let head = nodes[0].best_number().expect("best");
    nodes[1].wait_finalized(head + 2, Duration::from_secs(120));
    // This client was built for the old runtime: it no longer signs, and says why...
    let (ok, _, err) = run(
        &store,
        &[
            "submit",
            "--model",
            "tiny-mlp",
            "--input",
            x.to_str().expect("UTF-8 path"),
            "--url",
            &url,
        ],
    );
    assert!(!ok && err.contains("was built for"), "{err}");
    // ...but receipts from before the upgrade still verify against the upgraded chain.
    for (id, file) in [(&old, &old_file), (&new, &new_file)] {
        let receipt = verify(&store, &url, &genesis, id, file);
        assert_eq!(receipt["valid"], true, "{receipt}");
    }

    // Every node stopped: both receipts verify from their files and the genesis hash.
    drop(nodes);
    for (file, set) in [(&old_file, 0), (&new_file, 1)] {
        let (code, out, err) = run_code(
            &store,
            &[
                "receipt",
                "check",
                file.to_str().expect("UTF-8 path"),
                "--genesis",
                &genesis,
                "--json",
            ],
        );
        assert_eq!(code, Some(0), "{}: {out}\n{err}", file.display());
        let receipt = json(&out);
        assert!(
            receipt["authority_set"].as_u64().unwrap_or(0) >= set,
            "{receipt}"
        );
    }
}
