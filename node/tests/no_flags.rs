//! As a new user starts a node: `inferchain-node --dev --tmp` and nothing else, in a
//! home with no model store, then `inferchain submit --model all-MiniLM-L6-v2 --text …
//! --wait`. The node provides the genesis models itself (the shipped ONNX models it
//! carries, MiniLM from where `scripts/setup.sh` put it) into the model store it shares
//! with the CLI, its executors serve them from genesis, and the request is final within
//! 30 seconds. Then a tiny-llm prompt, whose final generation is the one the CLI computes
//! locally.

mod common;

use common::{inference::minilm_dir, node_binary, rpc_call, test_dir};
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The default RPC port a node started without flags listens on.
const DEFAULT_RPC_PORT: u16 = 9944;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cmd` with a fresh home: no model store, no `$INFERCHAIN_STORE`, MiniLM's files where
/// setup leaves them.
fn fresh_home(cmd: &mut Command, home: &Path) {
    let cache = minilm_dir()
        .parent()
        .and_then(Path::parent)
        .expect("the cache holds models/all-MiniLM-L6-v2")
        .to_path_buf();
    cmd.env("HOME", home)
        .env("INFERCHAIN_CACHE", cache)
        .env_remove("INFERCHAIN_STORE")
        .env_remove("XDG_DATA_HOME")
        .env_remove("INFERCHAIN_URL");
}

#[test]
fn a_node_started_with_no_flags_answers_a_minilm_request_within_30_seconds() {
    let dir = test_dir("no-flags");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", DEFAULT_RPC_PORT)).is_ok(),
        "port {DEFAULT_RPC_PORT} is taken: stop the node using it to run this test"
    );
    let log = std::fs::File::create(dir.join("node.log")).expect("log");
    let mut node = Command::new(node_binary());
    node.args(["--dev", "--tmp"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    fresh_home(&mut node, &home);
    let _node = Running(node.spawn().expect("inferchain-node starts"));

    let started = Instant::now();
    while rpc_call(
        DEFAULT_RPC_PORT,
        "chain_getFinalizedHead",
        serde_json::json!([]),
    )
    .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the node did not answer on {DEFAULT_RPC_PORT}; see {}",
            dir.join("node.log").display()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The node put the genesis models into the default store, the CLI's.
    let store = home.join(".local/share/inferchain/models");
    assert!(store.is_dir(), "no model store at {}", store.display());

    let cli = node_binary().with_file_name("inferchain");
    // `inferchain ARGS` from the fresh home: its one JSON object, and how long it took.
    let run = |args: &[&str]| -> (serde_json::Value, Duration) {
        let mut cmd = Command::new(&cli);
        cmd.args(args);
        fresh_home(&mut cmd, &home);
        let asked = Instant::now();
        let out = cmd.output().expect("inferchain runs");
        let took = asked.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?} failed: {stdout}{}\nnode log: {}",
            String::from_utf8_lossy(&out.stderr),
            dir.join("node.log").display()
        );
        let value = serde_json::from_str(stdout.trim()).expect("--json prints one JSON object");
        (value, took)
    };
    let (report, took) = run(&[
        "submit",
        "--model",
        "all-MiniLM-L6-v2",
        "--text",
        "A node started with no flags serves the genesis models.",
        "--wait",
        "--json",
    ]);
    assert!(
        report["final_in"].as_u64().is_some(),
        "no final block: {report}"
    );
    assert!(
        took < Duration::from_secs(30),
        "final after {took:?}, not within 30 s"
    );
    println!("MiniLM request final (and GRANDPA-finalized) {took:?} after submitting");

    // A language model request: answered by an executor, watched by the other, final;
    // the tokens are the greedy generation the CLI computes locally.
    let prompt = "ROMEO.\nBut soft, what light";
    let (report, took) = run(&[
        "submit",
        "--model",
        "tiny-llm",
        "--prompt",
        prompt,
        "--max-tokens",
        "24",
        "--wait",
        "--json",
    ]);
    assert!(
        report["final_in"].as_u64().is_some(),
        "no final block: {report}"
    );
    let tokens = &report["result"]["tokens"];
    assert!(
        tokens
            .as_array()
            .is_some_and(|t| !t.is_empty() && t.len() <= 24),
        "no generation in {report}"
    );
    let model = format!("{:?}", inferchain_runtime::dev_models::TINY_LLM);
    let (mine, _) = run(&[
        "model",
        "run",
        &model,
        "--prompt",
        prompt,
        "--max-tokens",
        "24",
        "--json",
    ]);
    assert_eq!(
        &mine["tokens"], tokens,
        "the chain's generation is the local one"
    );
    assert_eq!(mine["text"], report["result"]["text"]);
    println!(
        "tiny-llm request final {took:?} after submitting: {:?}",
        report["result"]["text"]
    );

    // Its receipt, re-checked on this CPU by one teacher-forced pass.
    let id = report["request"].as_u64().expect("request id").to_string();
    let genesis = rpc_call(
        DEFAULT_RPC_PORT,
        "chain_getBlockHash",
        serde_json::json!([0]),
    )
    .and_then(|h| h.as_str().map(str::to_owned))
    .expect("genesis hash");
    let (receipt, _) = run(&["verify", &id, "--genesis", &genesis, "--rerun", "--json"]);
    let rerun = receipt["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "re-run"))
        .expect("a re-run check");
    assert_eq!(rerun["ok"], true, "{receipt}");
    assert!(
        rerun["detail"]
            .as_str()
            .is_some_and(|d| d.contains("teacher-forced")),
        "{rerun}"
    );
}
