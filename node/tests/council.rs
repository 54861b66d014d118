//! Governance on the four-validator local testnet, which has no sudo key: the model
//! council (Alice, Bob, Charlie) registers a model by motion, then changes its fee and
//! deprecates it, each by motion; non-members cannot vote, a motion without its votes
//! cannot be closed, and `model register` (sudo) says to use the council instead. Then a
//! protocol parameter changes by motion (and one outside its bounds is refused).

mod common;

use common::{
    cli::{json, run},
    local_testnet, test_dir, Node,
};
use serde_json::Value;
use std::{path::Path, time::Duration};

/// The one open motion's hash.
fn only_motion(store: &Path, url: &str) -> String {
    let (ok, out, err) = run(store, &["council", "list", "--url", url, "--json"]);
    assert!(ok, "council list failed: {err}");
    let list = json(&out);
    let motions = list["motions"].as_array().expect("motions");
    assert_eq!(motions.len(), 1, "{list}");
    motions[0]["motion"].as_str().expect("hash").to_string()
}

/// The registry's entry for `name`, as `model list` shows it.
fn listed(store: &Path, url: &str, name: &str) -> Option<Value> {
    let (ok, out, err) = run(store, &["model", "list", "--url", url, "--json"]);
    assert!(ok, "model list failed: {err}");
    json(&out)
        .as_array()
        .expect("a list")
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
}

/// Bob votes aye on the open motion and Dave (not a member) closes it.
fn pass(store: &Path, url: &str) {
    let motion = only_motion(store, url);
    let (ok, out, err) = run(
        store,
        &[
            "council", "vote", &motion, "--aye", "--suri", "//Bob", "--url", url,
        ],
    );
    assert!(ok, "Bob's vote failed: {err}");
    assert!(out.contains("2 aye"), "{out}");
    let (ok, out, err) = run(
        store,
        &[
            "council", "close", &motion, "--suri", "//Dave", "--url", url,
        ],
    );
    assert!(ok, "close failed: {out}\n{err}");
    assert!(out.contains("approved and executed"), "{out}");
}

#[test]
fn the_council_registers_reprices_and_deprecates_a_model_by_motion() {
    let dir = test_dir("council");
    let validators = local_testnet(&dir, |_| Vec::new());
    let nodes: Vec<Node> = (0..4).map(|i| validators[i].start()).collect();
    for node in &nodes {
        node.wait_finalized(2, Duration::from_secs(180));
    }
    let url = format!("ws://127.0.0.1:{}", nodes[0].rpc_port);
    let other_url = format!("ws://127.0.0.1:{}", nodes[2].rpc_port);
    let store = dir.join("cli-models");

    // A new artifact: the tiny MLP with an unknown protobuf field appended.
    let variant = dir.join("variant.onnx");
    let mut bytes = std::fs::read(common::inference::repo().join("models/tiny-mlp/model.onnx"))
        .expect("tiny-mlp");
    bytes.extend_from_slice(&[0x98, 0x06, 0x01]);
    std::fs::write(&variant, bytes).expect("write variant");
    let variant = variant.to_str().expect("UTF-8 path");
    let model_args = |verb: &'static str, suri: &'static str| -> Vec<String> {
        [
            "model",
            verb,
            variant,
            "--name",
            "council-mlp",
            "--fee",
            "1000",
            "--suri",
            suri,
            "--url",
            &url,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run_owned = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&store, &args)
    };

    // No sudo here.
    let (ok, _, err) = run_owned(model_args("register", "//Alice"));
    assert!(
        !ok && err.contains("no sudo key") && err.contains("model propose"),
        "sudo registration on the local testnet: {err}"
    );
    // Only members propose.
    let (ok, _, err) = run_owned(model_args("propose", "//Dave"));
    assert!(!ok && err.contains("not a council member"), "{err}");

    // Alice proposes (and votes aye): the motion needs 2 of 3.
    let (ok, out, err) = run_owned(model_args("propose", "//Alice"));
    assert!(ok, "propose failed: {err}");
    assert!(out.contains("needs 2 ayes of 3"), "{out}");
    let motion = only_motion(&store, &url);
    let (ok, out, _) = run(&store, &["council", "list", "--url", &url, "--json"]);
    assert!(ok);
    let listed_motion = &json(&out)["motions"][0];
    assert_eq!(listed_motion["ayes"].as_array().map(Vec::len), Some(1));
    assert!(
        listed_motion["call"]
            .as_str()
            .is_some_and(|c| c.contains("register model") && c.contains("commitments")),
        "{listed_motion}"
    );

    // One aye is not enough to close; a non-member's vote is refused.
    let (ok, _, err) = run(
        &store,
        &[
            "council", "close", &motion, "--suri", "//Dave", "--url", &url,
        ],
    );
    assert!(!ok, "a motion closed with one aye");
    assert!(err.contains("TooEarly"), "unclear refusal: {err}");
    let (ok, _, err) = run(
        &store,
        &[
            "council", "vote", &motion, "--aye", "--suri", "//Dave", "--url", &url,
        ],
    );
    assert!(
        !ok && err.contains("NotMember"),
        "a non-member voted: {err}"
    );
    assert!(listed(&store, &url, "council-mlp").is_none());

    // Bob's aye carries it: registered, as every node sees.
    pass(&store, &url);
    let model = listed(&store, &other_url, "council-mlp").expect("registered by motion");
    assert_eq!(model["status"], "Active");
    assert_eq!(model["fee"], "1000");
    let (ok, out, _) = run(&store, &["council", "list", "--url", &url, "--json"]);
    assert!(ok);
    assert_eq!(json(&out)["motions"].as_array().map(Vec::len), Some(0));

    // A new fee, then deprecation, each by motion.
    let (ok, _, err) = run(
        &store,
        &[
            "model",
            "propose-fee",
            "council-mlp",
            "2500",
            "--suri",
            "//Charlie",
            "--url",
            &url,
        ],
    );
    assert!(ok, "propose-fee failed: {err}");
    pass(&store, &url);
    assert_eq!(
        listed(&store, &url, "council-mlp").expect("listed")["fee"],
        "2500"
    );
    let (ok, _, err) = run(
        &store,
        &[
            "model",
            "propose-status",
            "council-mlp",
            "deprecated",
            "--suri",
            "//Alice",
            "--url",
            &url,
        ],
    );
    assert!(ok, "propose-status failed: {err}");
    pass(&store, &url);
    assert_eq!(
        listed(&store, &other_url, "council-mlp").expect("listed")["status"],
        "Deprecated"
    );

    // A protocol parameter, by motion: the defaults hold until then.
    let param = |url: &str, name: &str| -> (bool, String) {
        let (ok, out, err) = run(&store, &["params", "list", "--url", url, "--json"]);
        assert!(ok, "params list failed: {err}");
        let list = json(&out);
        let entry = list["params"]
            .as_array()
            .expect("params")
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .expect("listed");
        (
            list["changed_by_governance"].as_bool().expect("flag"),
            entry["value"].as_str().expect("value").to_string(),
        )
    };
    assert_eq!(param(&url, "execution-timeout"), (false, "5".to_string()));
    // Outside the runtime's bounds (an hour): refused before any vote.
    let (ok, _, err) = run(
        &store,
        &[
            "params",
            "propose",
            "execution-timeout",
            "1201",
            "--suri",
            "//Alice",
            "--url",
            &url,
        ],
    );
    assert!(!ok && err.contains("outside the bounds"), "{err}");
    let (ok, _, err) = run(
        &store,
        &[
            "params",
            "propose",
            "execution-timeout",
            "8",
            "--suri",
            "//Alice",
            "--url",
            &url,
        ],
    );
    assert!(ok, "params propose failed: {err}");
    pass(&store, &url);
    // Another validator reads the change once it has imported the block that executed
    // the motion (under a loaded CI machine, a block or two after the first node).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while param(&other_url, "execution-timeout") != (true, "8".to_string())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        param(&other_url, "execution-timeout"),
        (true, "8".to_string())
    );
    assert_eq!(
        param(&other_url, "challenge-period"),
        (true, "4".to_string())
    );
}
