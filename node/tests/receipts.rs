//! The `inferchain` client against a real dev node: `submit --wait` follows a request to
//! GRANDPA finality, `result` shows it, `verify --rerun` proves its receipt; and through
//! a tampering RPC proxy (an altered output in a storage proof, an altered header) the
//! receipt fails with the check that caught it. The receipt also checks the user's
//! claims (their account, their input), is refused without a pinned genesis, and once
//! exported is checked by `inferchain receipt check` after the node is gone.

mod common;

use common::{
    cli::{json, run, run_code},
    inference::{fresh_dev_node, model_store},
    tamper, test_dir,
};
use serde_json::Value;
use std::sync::Arc;

#[test]
fn receipts_verify_against_the_node_and_fail_through_a_tampering_proxy() {
    let dir = test_dir("receipts");
    let store = model_store(&dir.join("models"), false);
    let node = fresh_dev_node("receipts", &dir, &store);
    let rpc = node.rpc_port;
    let url = format!("ws://127.0.0.1:{rpc}");
    let genesis = node.block_hash(0).expect("genesis hash");

    // submit --wait: by name, an .npy input, followed to GRANDPA finality.
    let x = dir.join("x.npy");
    let npy = inferchain_engine::npy::write(&inferchain_primitives::io::Tensor::from_f32(
        vec![1, 4],
        &[0.5, -1.0, 2.0, 0.25],
    ));
    std::fs::write(&x, npy).expect("write x.npy");
    let (ok, out, err) = run(
        &store,
        &[
            "submit",
            "--model",
            "tiny-mlp",
            "--input",
            x.to_str().expect("a UTF-8 temp path"),
            "--url",
            &url,
            "--wait",
            "--json",
        ],
    );
    assert!(ok, "submit failed: {err}");
    let submitted = json(&out);
    let id = submitted["request"].as_u64().expect("request id");
    let final_in = submitted["final_in"].as_u64().expect("final block");
    let output_hash = submitted["result"]["output_hash"]
        .as_str()
        .expect("hash")
        .to_string();
    assert_eq!(
        submitted["result"]["outputs"][0]["shape"],
        serde_json::json!([1, 3])
    );

    // result: what the chain holds.
    let (ok, out, err) = run(
        &store,
        &["result", &id.to_string(), "--url", &url, "--json"],
    );
    assert!(ok, "result failed: {err}");
    let result = json(&out);
    assert_eq!(result["status"]["finalized"]["at"].as_u64(), Some(final_in));
    assert_eq!(result["result"]["output_hash"], output_hash.as_str());

    // verify --rerun: every check holds, exit code 0.
    let verify = |url: &str| {
        run(
            &store,
            &[
                "verify",
                &id.to_string(),
                "--url",
                url,
                "--genesis",
                &genesis,
                "--rerun",
                "--json",
            ],
        )
    };
    let (ok, out, err) = verify(&url);
    assert!(ok, "verify failed: {out}\n{err}");
    let receipt = json(&out);
    assert_eq!(receipt["valid"], true);
    let names: Vec<&str> = receipt["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    for name in [
        "finality",
        "state proof",
        "status",
        "input hash",
        "output hash",
        "model",
        "re-run",
    ] {
        assert!(names.contains(&name), "check `{name}` missing: {names:?}");
    }
    assert_eq!(receipt["result"]["output_hash"], output_hash.as_str());

    // Claims: the requester (submit's default payer, //Charlie) and the exact input.
    let claim = |extra: &[&str]| {
        let id = id.to_string();
        let mut args = vec![
            "verify",
            &id,
            "--url",
            &url,
            "--genesis",
            &genesis,
            "--json",
        ];
        args.extend_from_slice(extra);
        run_code(&store, &args)
    };
    let x_path = x.to_str().expect("a UTF-8 temp path");
    let (code, out, err) = claim(&["--account", "//Charlie", "--input", x_path]);
    assert_eq!(code, Some(0), "true claims refused: {out}\n{err}");
    let receipt = json(&out);
    for name in ["requester", "input"] {
        assert_eq!(check(&receipt, name), Some(true), "{receipt}");
    }
    // Someone else's request presented as yours: invalid (exit code 3), named.
    let (code, out, _) = claim(&["--account", "//Bob"]);
    assert_eq!(code, Some(3), "another's request accepted: {out}");
    assert_eq!(check(&json(&out), "requester"), Some(false), "{out}");
    // Another input.
    let other_x = dir.join("other.npy");
    std::fs::write(
        &other_x,
        inferchain_engine::npy::write(&inferchain_primitives::io::Tensor::from_f32(
            vec![1, 4],
            &[0.5, -1.0, 2.0, 0.5],
        )),
    )
    .expect("write other.npy");
    let (code, out, _) = claim(&["--input", other_x.to_str().expect("UTF-8 path")]);
    assert_eq!(code, Some(3), "another input accepted: {out}");
    assert_eq!(check(&json(&out), "input"), Some(false), "{out}");

    // No pinned genesis: refused (invalid), with a JSON error under --json.
    let (code, out, _) = run_code(
        &store,
        &["verify", &id.to_string(), "--url", &url, "--json"],
    );
    assert_eq!(code, Some(3), "verified without a genesis: {out}");
    let error = json(&out);
    assert_eq!(error["exit_code"], 3);
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("--genesis")),
        "{error}"
    );

    // A node that is not there: unreachable (exit code 5).
    let (code, _, err) = run_code(
        &store,
        &[
            "verify",
            &id.to_string(),
            "--url",
            "ws://127.0.0.1:1",
            "--genesis",
            &genesis,
        ],
    );
    assert_eq!(code, Some(5), "unreachable node not named: {err}");

    // Exported: the receipt file alone proves the request once the node is gone.
    let file = dir.join("receipt.bin");
    let file_path = file.to_str().expect("UTF-8 path");
    let (code, out, err) = claim(&["--export", file_path]);
    assert_eq!(code, Some(0), "export failed: {out}\n{err}");

    // A wrong genesis is refused before anything is trusted.
    let (ok, _, err) = run(
        &store,
        &[
            "verify",
            &id.to_string(),
            "--url",
            &url,
            "--genesis",
            &format!("0x{}", "11".repeat(32)),
        ],
    );
    assert!(
        !ok && err.contains("not the trusted"),
        "wrong genesis accepted: {err}"
    );

    // A proxy that alters one byte of the biggest proof node (where the output lives).
    let flip_proof: tamper::Rewrite = Arc::new(|result: &mut Value| {
        if let Some(nodes) = result["proof"].as_array_mut() {
            if let Some(node) = nodes
                .iter_mut()
                .max_by_key(|n| n.as_str().map_or(0, str::len))
            {
                let mut bytes = hex::decode(node.as_str().unwrap_or("0x").trim_start_matches("0x"))
                    .unwrap_or_default();
                let last = bytes.len() - 1;
                bytes[last] ^= 0x01;
                *node = Value::String(format!("0x{}", hex::encode(bytes)));
            }
        }
    });
    let proxy = tamper::start(rpc, "state_getReadProof", flip_proof);
    let (ok, out, err) = verify(&proxy);
    assert!(!ok, "a tampered proof verified: {out}");
    assert!(
        err.contains("NOT verified") || err.contains("storage proof"),
        "unclear failure: {out}\n{err}"
    );

    // A proxy that serves a header with another state root.
    let other_root: tamper::Rewrite = Arc::new(|result: &mut Value| {
        result["stateRoot"] = Value::String(format!("0x{}", "22".repeat(32)));
    });
    let proxy = tamper::start(rpc, "chain_getHeader", other_root);
    let (ok, out, err) = verify(&proxy);
    assert!(!ok, "a tampered header verified: {out}");
    assert!(
        out.contains("hashes to") || err.contains("hashes to"),
        "unclear failure: {out}\n{err}"
    );

    // A node whose runtime is not the one this client was built for (as after an
    // upgrade): the client refuses to sign, and says what to do.
    let upgraded: tamper::Rewrite = Arc::new(|result: &mut Value| {
        let spec = result["specVersion"].as_u64().unwrap_or(0);
        result["specVersion"] = Value::from(spec + 1);
    });
    let proxy = tamper::start(rpc, "state_getRuntimeVersion", upgraded);
    let (ok, _, err) = run(
        &store,
        &[
            "submit", "--model", "tiny-mlp", "--input", x_path, "--url", &proxy,
        ],
    );
    assert!(!ok, "signed for an unknown runtime");
    assert!(err.contains("was built for"), "unclear refusal: {err}");

    drop(node);
    let offline = |extra: &[&str]| {
        let mut args = vec!["receipt", "check", file_path, "--json"];
        args.extend_from_slice(extra);
        run_code(&store, &args)
    };
    let (code, out, err) = offline(&["--genesis", &genesis, "--account", "//Charlie", "--rerun"]);
    assert_eq!(
        code,
        Some(0),
        "the exported receipt failed offline: {out}\n{err}"
    );
    let receipt = json(&out);
    assert_eq!(receipt["result"]["output_hash"], output_hash.as_str());
    for name in [
        "finality",
        "state proof",
        "set id",
        "status",
        "requester",
        "re-run",
    ] {
        assert_eq!(check(&receipt, name), Some(true), "{name}: {receipt}");
    }
    // The file proves its own request, not another one asked for.
    let (code, _, err) = offline(&["--genesis", &genesis, "--request", "999"]);
    assert_eq!(code, Some(3), "a receipt proved another request: {err}");
    let (code, out, _) = offline(&["--genesis", &format!("0x{}", "11".repeat(32))]);
    assert_eq!(code, Some(3), "another genesis accepted offline: {out}");
    assert_eq!(check(&json(&out), "genesis"), Some(false), "{out}");
    // One flipped byte anywhere in the file: it no longer proves the request.
    let bytes = std::fs::read(&file).expect("read receipt");
    let mut flipped_any = 0;
    for at in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 40] {
        let mut tampered = bytes.clone();
        tampered[at] ^= 0x20;
        std::fs::write(&file, &tampered).expect("write tampered");
        let (code, out, _) = offline(&["--genesis", &genesis]);
        assert_ne!(
            code,
            Some(0),
            "a receipt with byte {at} flipped verified: {out}"
        );
        flipped_any += 1;
    }
    assert_eq!(flipped_any, 3);
}

/// The outcome of check `name` in a `--json` receipt.
fn check(receipt: &Value, name: &str) -> Option<bool> {
    receipt["checks"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)?["ok"]
        .as_bool()
}

#[test]
fn a_model_registered_with_a_mirror_is_fetched_by_the_executor_and_answered() {
    let dir = test_dir("governance");
    let node_store = model_store(&dir.join("node-models"), false);
    let cli_store = dir.join("cli-models");
    let node = fresh_dev_node("governance", &dir, &node_store);
    let rpc = node.rpc_port;
    let url = format!("ws://127.0.0.1:{rpc}");

    // A new artifact: the tiny MLP with an unknown protobuf field appended (ignored by
    // ONNX readers, so the same function under another id).
    let variant = dir.join("variant.onnx");
    let mut bytes = std::fs::read(common::inference::repo().join("models/tiny-mlp/model.onnx"))
        .expect("tiny-mlp");
    bytes.extend_from_slice(&[0x98, 0x06, 0x01]);
    std::fs::write(&variant, bytes).expect("write variant");
    let (ok, out, err) = run(
        &cli_store,
        &[
            "model",
            "import",
            variant.to_str().expect("UTF-8 path"),
            "--json",
        ],
    );
    assert!(ok, "import failed: {err}");
    let id = json(&out)["model"].as_str().expect("id").to_string();

    // Served from the CLI's store; registered through sudo with that mirror.
    let mirror = common::mirror::serve(cli_store.clone());
    let uri = format!("{mirror}/{}", id.trim_start_matches("0x"));
    let register = |suri: &str| {
        run(
            &cli_store,
            &[
                "model",
                "register",
                variant.to_str().expect("UTF-8 path"),
                "--name",
                "tiny-mlp-variant",
                "--fee",
                "1000",
                "--uri",
                &uri,
                "--suri",
                suri,
                "--url",
                &url,
            ],
        )
    };
    let (ok, _, err) = register("//Bob");
    assert!(
        !ok && err.contains("not the sudo key"),
        "a non-sudo key registered: {err}"
    );
    let (ok, out, err) = register("//Alice");
    assert!(ok, "register failed: {err}");
    assert!(out.contains(&id), "{out}");
    let (ok, _, err) = register("//Alice");
    assert!(
        !ok && err.contains("already registered"),
        "registered twice: {err}"
    );

    let (ok, out, err) = run(&cli_store, &["model", "list", "--url", &url, "--json"]);
    assert!(ok, "list failed: {err}");
    let names: Vec<String> = json(&out)
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| m["name"].as_str().unwrap_or("").to_string())
        .collect();
    for name in ["tiny-mlp", "all-MiniLM-L6-v2", "tiny-mlp-variant"] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} not listed: {names:?}"
        );
    }

    // The dev executors declare they serve it too (a new model has no servers until
    // some declare it: a request now would find no executor).
    for suri in ["//Alice", "//Bob"] {
        let (ok, out, err) = run(
            &cli_store,
            &[
                "serve",
                "--model",
                "tiny-mlp-variant",
                "--suri",
                suri,
                "--url",
                &url,
            ],
        );
        assert!(ok, "serve failed: {err}");
        assert!(out.contains("serves 5 models"), "{out}");
    }

    // The executor's node lacks the model: it fetches it from the mirror, checks it
    // against the id and answers; the answer is the tiny MLP's.
    assert!(!node_store.join(id.trim_start_matches("0x")).exists());
    let x = dir.join("x.npy");
    let npy = inferchain_engine::npy::write(&inferchain_primitives::io::Tensor::from_f32(
        vec![1, 4],
        &[1.0, 0.0, -1.0, 0.5],
    ));
    std::fs::write(&x, npy).expect("write x.npy");
    let x = x.to_str().expect("UTF-8 path");
    let (ok, out, err) = run(
        &cli_store,
        &[
            "submit",
            "--model",
            "tiny-mlp-variant",
            "--input",
            x,
            "--url",
            &url,
            "--wait",
            "--json",
        ],
    );
    assert!(ok, "submit failed: {err}\n{}", node.log_tail(30));
    let on_chain = json(&out)["result"]["output_hash"]
        .as_str()
        .expect("hash")
        .to_string();
    assert!(node_store
        .join(id.trim_start_matches("0x"))
        .join("manifest.scale")
        .is_file());
    let (ok, out, err) = run(&cli_store, &["model", "run", &id, "--input", x, "--json"]);
    assert!(ok, "local run failed: {err}");
    assert_eq!(json(&out)["output_hash"].as_str(), Some(on_chain.as_str()));
}
