//! The subcommands a Substrate user reaches for work on `inferchain-node`.

mod common;

use common::{node_binary, test_dir};
use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(node_binary())
        .args(args)
        .output()
        .expect("inferchain-node runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn build_spec_emits_the_chain_specs_with_their_genesis() {
    let (ok, spec, err) = run(&["build-spec", "--chain", "local"]);
    assert!(ok, "build-spec failed: {err}");
    let json: serde_json::Value = serde_json::from_str(&spec).expect("build-spec prints JSON");
    assert_eq!(json["id"], "inferchain_local");
    let patch = &json["genesis"]["runtimeGenesis"]["patch"];
    // The first authorities are the validators' session keys (BABE's and GRANDPA's own
    // genesis lists stay empty); the council governs, and there is no sudo key.
    assert_eq!(patch["session"]["keys"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        patch["validators"]["validators"].as_array().map(Vec::len),
        Some(4)
    );
    assert_eq!(
        patch["councilMembership"]["members"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert!(patch["sudo"]["key"].is_null(), "{}", patch["sudo"]);
    assert_eq!(
        patch["inference"]["executors"].as_array().map(Vec::len),
        Some(4)
    );
    assert_eq!(patch["models"]["models"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        patch["models"]["commitments"].as_array().map(Vec::len),
        Some(4)
    );

    let (ok, raw, err) = run(&["build-spec", "--chain", "dev", "--raw"]);
    assert!(ok, "build-spec --raw failed: {err}");
    let json: serde_json::Value = serde_json::from_str(&raw).expect("raw spec is JSON");
    assert!(json["genesis"]["raw"]["top"]
        .as_object()
        .is_some_and(|top| top.len() > 10));
}

#[test]
fn key_generate_and_inspect_agree() {
    let (ok, out, err) = run(&["key", "generate", "--output-type", "json"]);
    assert!(ok, "key generate failed: {err}");
    let key: serde_json::Value = serde_json::from_str(&out).expect("key generate prints JSON");
    let phrase = key["secretPhrase"].as_str().expect("a secret phrase");
    let (ok, out, err) = run(&["key", "inspect", "--output-type", "json", phrase]);
    assert!(ok, "key inspect failed: {err}");
    let inspected: serde_json::Value = serde_json::from_str(&out).expect("key inspect prints JSON");
    assert_eq!(inspected["ss58Address"], key["ss58Address"]);
}

#[test]
fn purge_chain_removes_the_database() {
    let dir = test_dir("purge");
    let base = dir.join("base");
    // A short run creates the database...
    let mut child = Command::new(node_binary())
        .args(["--dev", "--base-path"])
        .arg(&base)
        .args([
            "--rpc-port",
            "0",
            "--port",
            "0",
            "--no-prometheus",
            "--no-telemetry",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the node starts");
    let db = base.join("chains/inferchain_dev/paritydb");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !db.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        db.exists(),
        "the dev node made no ParityDB database at {}",
        db.display()
    );
    // ...and purge-chain removes it.
    let (ok, _, err) = run(&[
        "purge-chain",
        "--dev",
        "-y",
        "--base-path",
        &base.display().to_string(),
    ]);
    assert!(ok, "purge-chain failed: {err}");
    assert!(!db.exists(), "purge-chain left the database");
}

#[test]
fn benchmark_without_the_feature_says_how_to_get_it() {
    if cfg!(feature = "runtime-benchmarks") {
        return;
    }
    let (ok, _, err) = run(&["benchmark", "pallet", "--pallet", "pallet_inference"]);
    assert!(!ok);
    assert!(
        err.contains("--features runtime-benchmarks"),
        "unhelpful error: {err}"
    );
}

#[test]
fn the_executor_fault_test_mode_is_refused_on_a_live_chain() {
    let dir = test_dir("fault-on-live");
    let (ok, spec, err) = run(&["build-spec", "--chain", "local"]);
    assert!(ok, "build-spec failed: {err}");
    let mut json: serde_json::Value = serde_json::from_str(&spec).expect("JSON spec");
    json["chainType"] = serde_json::Value::from("Live");
    let path = dir.join("live.json");
    std::fs::write(&path, json.to_string()).expect("write spec");
    let path = path.to_str().expect("UTF-8 path");
    let base = dir.join("base");
    let base = base.to_str().expect("UTF-8 path");
    let (ok, _, err) = run(&[
        "--chain",
        path,
        "--base-path",
        base,
        "--executor-fault",
        "wrong-output",
        "--rpc-port",
        "0",
        "--port",
        "0",
    ]);
    assert!(!ok, "a live chain ran the cheating test mode");
    assert!(
        err.contains("test mode for development and local chains"),
        "unclear refusal: {err}"
    );
}
