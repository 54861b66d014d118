//! Agent memory end to end on a real dev node, through the `inferchain` binary: a space
//! embedded by MiniLM, three facts remembered (each embedding a real inference result,
//! final before it is recalled), a recall the CLI recomputes from storage, a tiny-llm
//! question asked with the space whose receipt names the memory used and whose
//! `verify --rerun` recomputes the retrieval, the question's embedding and the
//! generation; then, after `forget`, the same question no longer retrieves it.

mod common;

use common::{
    inference::{fresh_dev_node, model_store, wait_until},
    node_binary, test_dir,
};
use serde_json::Value;
use std::{path::Path, process::Command, time::Duration};

const VAULT: &str = "The vault code is 4521.";
const FACTS: [&str; 3] = [
    VAULT,
    "Romeo's horse is named Thunder.",
    "The meeting moved to Friday.",
];
const QUESTION: &str = "What is the vault code?";

/// Runs `inferchain ARGS --store STORE --url URL` and parses its one JSON object.
fn cli(store: &Path, url: &str, args: &[&str]) -> Value {
    let out = Command::new(node_binary().with_file_name("inferchain"))
        .args(["--store", &store.display().to_string()])
        .args(args)
        .args(["--url", url])
        .output()
        .expect("inferchain runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default().trim())
        .unwrap_or_else(|e| panic!("{args:?}: no JSON object ({e}): {stdout}"))
}

fn check<'a>(receipt: &'a Value, name: &str) -> &'a Value {
    receipt["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} check in {receipt}"))
}

#[test]
fn memories_are_recalled_into_a_verified_answer_and_forgotten_ones_are_not() {
    let dir = test_dir("memory");
    let store = model_store(&dir.join("store"), true);
    let node = fresh_dev_node("memory", &dir, &store);
    let url = format!("ws://127.0.0.1:{}", node.rpc_port);
    let run = |args: &[&str]| cli(&store, &url, args);

    let created = run(&["memory", "create", "--model", "all-MiniLM-L6-v2", "--json"]);
    let space = created["space"].as_u64().expect("space id").to_string();
    let mut ids = Vec::new();
    for fact in FACTS {
        let r = run(&["memory", "remember", &space, fact, "--json"]);
        ids.push(r["memory"].as_u64().expect("memory id"));
    }
    // Each memory becomes recallable when its embedding result is final (recall reads
    // the GRANDPA-finalized state).
    let recalled = wait_until(
        Duration::from_secs(150),
        "three recallable memories",
        || {
            let r = run(&["memory", "recall", &space, QUESTION, "--k", "3", "--json"]);
            (r["recalled"].as_array().map_or(0, Vec::len) == 3).then_some(r)
        },
    );
    let vault = ids[0];
    assert_eq!(recalled["recomputed_locally"], true, "{recalled}");
    assert_eq!(recalled["recalled"][0]["memory"], vault, "{recalled}");
    println!("recall for {QUESTION:?}: {}", recalled["recalled"]);

    // A question to tiny-llm with the space: the answer's prompt holds the vault fact.
    let ask = |k: &str| {
        run(&[
            "submit",
            "--model",
            "tiny-llm",
            "--prompt",
            QUESTION,
            "--max-tokens",
            "8",
            "--memory",
            &space,
            "--k",
            k,
            "--wait",
            "--json",
        ])
    };
    let answer = ask("1");
    assert_eq!(answer["memory"][0]["memory"], vault, "{answer}");
    assert!(answer["final_in"].as_u64().is_some(), "not final: {answer}");
    let id = answer["request"].as_u64().expect("request id").to_string();
    println!("answer {id}: {:?}", answer["result"]["text"]);

    // Its receipt names the memory and recomputes retrieval, embedding and generation.
    let genesis = node.block_hash(0).expect("genesis hash");
    let receipt = run(&["verify", &id, "--genesis", &genesis, "--rerun", "--json"]);
    let memory = check(&receipt, "memory recall");
    assert_eq!(memory["ok"], true, "{receipt}");
    assert!(
        memory["detail"].as_str().is_some_and(|d| d.contains(VAULT)),
        "{memory}"
    );
    assert_eq!(check(&receipt, "question re-run")["ok"], true, "{receipt}");
    assert_eq!(check(&receipt, "re-run")["ok"], true, "{receipt}");
    let list = run(&["memory", "list", &space, "--json"]);
    let used = list["memories"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["memory"] == vault))
        .expect("the vault memory");
    assert_eq!(used["uses"], 1, "reinforced by the answer: {used}");

    // Forgotten: neither recalled nor asked with any more.
    let out = Command::new(node_binary().with_file_name("inferchain"))
        .args(["--store", &store.display().to_string()])
        .args([
            "memory",
            "forget",
            &space,
            &vault.to_string(),
            "--url",
            &url,
        ])
        .output()
        .expect("inferchain runs");
    assert!(
        out.status.success(),
        "forget failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Once the forget is finalized, recall no longer sees the memory.
    let recalled = wait_until(Duration::from_secs(60), "the forget finalized", || {
        let r = run(&["memory", "recall", &space, QUESTION, "--k", "3", "--json"]);
        (r["recalled"].as_array().map_or(0, Vec::len) == 2).then_some(r)
    });
    let recalled_ids: Vec<u64> = recalled["recalled"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|r| r["memory"].as_u64())
        .collect();
    assert!(!recalled_ids.contains(&vault), "{recalled}");
    let again = ask("1");
    assert_ne!(again["memory"][0]["memory"], vault, "{again}");
    assert!(again["final_in"].as_u64().is_some(), "not final: {again}");
}
