//! The TypeScript dApp example (scripts/dapp/request.ts, @polkadot/api) against a real
//! dev node: it submits a tiny-mlp request and a tiny-llm prompt, waits for
//! `ResultFinalized` and reads each result; what it prints is what the chain holds.

mod common;

use common::{
    inference::{connect, fresh_dev_node, model_store, repo},
    test_dir,
};
use pallet_inference::RequestStatus;
use std::process::Command;

#[test]
fn the_typescript_example_gets_a_final_result() {
    let dapp = repo().join("scripts/dapp");
    let tsx = dapp.join("node_modules/.bin/tsx");
    assert!(
        tsx.is_file(),
        "{} missing: run scripts/setup.sh",
        tsx.display()
    );

    let dir = test_dir("dapp");
    let store = model_store(&dir.join("models"), false);
    let node = fresh_dev_node("dapp", &dir, &store);
    let rpc = node.rpc_port;

    let out = Command::new(&tsx)
        .arg("request.ts")
        .current_dir(&dapp)
        .env("INFERCHAIN_URL", format!("ws://127.0.0.1:{rpc}"))
        .output()
        .expect("tsx runs");
    assert!(
        out.status.success(),
        "the example failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.log_tail(20)
    );
    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the example prints one JSON line");
    let id = printed["request"].as_u64().expect("request id");

    let chain = connect(&node);
    let request = chain.request(id, None).expect("RPC").expect("the request");
    assert!(matches!(request.status, RequestStatus::Finalized { .. }));
    let result = chain.result(id, None).expect("RPC").expect("the result");
    assert_eq!(
        printed["output_hash"].as_str(),
        Some(format!("{:?}", result.output_hash).as_str())
    );
    assert_eq!(
        printed["executor"].as_str(),
        Some(result.executor.to_string().as_str())
    );
    assert_eq!(printed["outputs"][0]["shape"], serde_json::json!([1, 3]));
    let total: f64 = printed["outputs"][0]["data"]
        .as_array()
        .expect("values")
        .iter()
        .filter_map(|v| v.as_f64())
        .sum();
    assert!((total - 1.0).abs() < 1e-5, "softmax sums to {total}");

    // The language model request: final, and what it printed is what the chain holds.
    let llm = &printed["llm"];
    let id = llm["request"].as_u64().expect("the LLM request id");
    let request = chain.request(id, None).expect("RPC").expect("the request");
    assert!(matches!(request.status, RequestStatus::Finalized { .. }));
    let result = chain.result(id, None).expect("RPC").expect("the result");
    assert_eq!(
        llm["output_hash"].as_str(),
        Some(format!("{:?}", result.output_hash).as_str())
    );
    let Ok(inferchain_primitives::io::Payload::Generation { tokens, text }) =
        inferchain_primitives::io::Payload::decode_canonical(&result.output)
    else {
        panic!("the result is not a generation")
    };
    assert_eq!(llm["tokens"], serde_json::json!(tokens));
    assert!(!tokens.is_empty() && tokens.len() <= 16);
    assert_eq!(
        llm["text"].as_str(),
        Some(String::from_utf8_lossy(&text).as_ref())
    );
    // Priced per token: 15 prompt bytes and 16 new tokens at 10 mINFER.
    assert_eq!(request.fee, 31 * 10 * inferchain_runtime::MILLI_UNIT);
}
