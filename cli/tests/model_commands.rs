//! `inferchain model import|run|verify` against the real binary.

mod common;
use common::*;
use inferchain_engine::npy;
use inferchain_primitives::io::Tensor;

/// The id the runtime registers a model under at genesis (`pub const NAME` in
/// runtime/src/dev_models.rs).
fn genesis_id(constant: &str) -> String {
    let src =
        std::fs::read_to_string(repo().join("runtime/src/dev_models.rs")).expect("dev_models.rs");
    let start = src
        .find(&format!("pub const {constant}"))
        .expect("constant in dev_models.rs");
    let hex = src[start..].split('"').nth(1).expect("hex literal");
    format!("0x{hex}")
}

fn genesis_tiny_mlp_id() -> String {
    genesis_id("TINY_MLP")
}

/// Runs `model run MODEL --input FILE`, expecting failure; returns stderr.
fn fails_with_input(store: &std::path::Path, model: &str, file: &std::path::Path) -> String {
    fails(
        store,
        &[
            "model",
            "run",
            model,
            "--input",
            file.to_str().expect("path"),
        ],
    )
}

#[test]
fn import_prints_the_genesis_id_and_a_registrable_spec() {
    let dir = temp_dir("import");
    let tiny = tiny_mlp();
    let path = tiny.to_str().expect("utf-8 path");
    let out = ok(&dir, &["model", "import", path, "--json"]);
    let v = json(&out);
    assert_eq!(v["model"].as_str(), Some(genesis_tiny_mlp_id().as_str()));
    assert_eq!(v["format"], "onnx");
    assert_eq!(v["spec"]["name"], serde_json::json!(b"tiny-mlp".to_vec()));
    assert_eq!(
        v["spec"]["input"]["Tensors"][0]["shape"],
        serde_json::json!([{"Fixed": 1}, {"Fixed": 4}])
    );
    assert_eq!(v["files"][0]["name"], "model.onnx");
    // Human form names the id too.
    let text = ok(&dir, &["model", "import", path]);
    assert!(text.contains(&genesis_tiny_mlp_id()), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn run_prints_json_and_writes_the_output_npy() {
    let dir = temp_dir("run");
    let id = import(&dir, &tiny_mlp());
    let input = dir.join("x.npy");
    std::fs::write(
        &input,
        npy::write(&Tensor::from_f32(vec![1, 4], &[0.5, -1.0, 2.0, 0.25])),
    )
    .expect("write");
    let output = dir.join("y.npy");
    let out = ok(
        &dir,
        &[
            "model",
            "run",
            &id,
            "--input",
            input.to_str().expect("path"),
            "--output",
            output.to_str().expect("path"),
            "--json",
        ],
    );
    let v = json(&out);
    assert_eq!(v["model"].as_str(), Some(id.as_str()));
    assert_eq!(v["dtype"], "f32");
    assert_eq!(v["shape"], serde_json::json!([1, 3]));
    let data: Vec<f64> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect();
    assert!(
        (data.iter().sum::<f64>() - 1.0).abs() < 1e-6,
        "softmax output {data:?}"
    );
    assert_eq!(v["input_hash"].as_str().map(str::len), Some(66));
    let written = npy::read(&std::fs::read(&output).expect("output written")).expect("valid npy");
    assert_eq!(written.shape, vec![1, 3]);
    let written: Vec<f32> = written
        .to_f64_vec()
        .expect("f32")
        .iter()
        .map(|v| *v as f32)
        .collect();
    let printed: Vec<f32> = data.iter().map(|v| *v as f32).collect();
    assert_eq!(
        written, printed,
        "the .npy holds exactly the printed values"
    );
    // Named input form works too, and gives the same output hash.
    let named = format!("x={}", input.display());
    let again = json(&ok(
        &dir,
        &["model", "run", &id, "--input", &named, "--json"],
    ));
    assert_eq!(again["output_hash"], v["output_hash"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_inputs_fail_with_a_message_that_says_what_to_do() {
    let dir = temp_dir("errors");
    let id = import(&dir, &tiny_mlp());
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, b"not numpy").expect("write");
    let err = fails_with_input(&dir, &id, &garbage);
    assert!(err.contains("not a .npy file"), "{err}");
    let wrong = dir.join("wrong.npy");
    std::fs::write(&wrong, npy::write(&Tensor::from_f32(vec![1, 5], &[0.0; 5]))).expect("write");
    let err = fails_with_input(&dir, &id, &wrong);
    assert!(
        err.contains("does not fit the model's spec") && err.contains("Shape"),
        "{err}"
    );
    let err = fails(&dir, &["model", "run", &id, "--text", "hello"]);
    assert!(err.contains("takes tensors"), "{err}");
    let unknown = format!("0x{}", "ab".repeat(32));
    let err = fails_with_input(&dir, &unknown, &wrong);
    assert!(
        err.contains("not in the store") && err.contains("inferchain model import"),
        "{err}"
    );
    let err = fails_with_input(&dir, "0x1234", &wrong);
    assert!(err.contains("not a model id"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn verify_catches_a_tampered_store() {
    let dir = temp_dir("verify");
    let id = import(&dir, &tiny_mlp());
    let out = ok(&dir, &["model", "verify", &id]);
    assert!(out.starts_with("ok:"), "{out}");
    let file = dir.join(id.trim_start_matches("0x")).join("model.onnx");
    let mut bytes = std::fs::read(&file).expect("read");
    bytes[10] ^= 0x40;
    std::fs::write(&file, bytes).expect("write");
    let err = fails(&dir, &["model", "verify", &id]);
    assert!(
        err.contains("does not match the manifest") && err.contains("re-import"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn minilm_imports_as_the_genesis_model_and_embeds_text() {
    let dir = temp_dir("minilm");
    let v = json(&ok(
        &dir,
        &[
            "model",
            "import",
            minilm_dir().to_str().expect("path"),
            "--json",
        ],
    ));
    let genesis = genesis_id("MINILM_L6_V2");
    assert_eq!(v["model"].as_str(), Some(genesis.as_str()));
    assert_eq!(v["format"], "bert");
    let id = genesis;
    let out = json(&ok(
        &dir,
        &[
            "model",
            "run",
            &id,
            "--text",
            "A dApp asks; the chain answers.",
            "--json",
        ],
    ));
    assert_eq!(out["shape"], serde_json::json!([1, 384]));
    let norm: f64 = out["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|x| x.as_f64().expect("f").powi(2))
        .sum::<f64>()
        .sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "L2 norm {norm}");
    let err = fails(&dir, &["model", "run", &id, "--input", "x.npy"]);
    assert!(err.contains("takes text"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_llm_imports_detected_and_generates_a_verified_text() {
    let dir = temp_dir("llm");
    let model = repo().join("models/tiny-llm");
    let path = model.to_str().expect("utf-8 path");
    let v = json(&ok(&dir, &["model", "import", path, "--json"]));
    assert_eq!(v["format"], "llm");
    let cap = v["spec"]["input"]["Prompt"]["max_new_tokens"]
        .as_u64()
        .expect("a prompt spec");
    assert_eq!(cap, 64);
    assert_eq!(v["spec"]["output"]["Generation"]["max_new_tokens"], 64);
    assert_eq!(v["generation"]["stop_tokens"], serde_json::json!([0]));
    assert_eq!(v["generation"]["canonical_tokenizer"], true);
    let id = v["model"].as_str().expect("id").to_string();
    // Forcing the format gives the same id.
    let forced = json(&ok(
        &dir,
        &["model", "import", path, "--format", "llm", "--json"],
    ));
    assert_eq!(forced["model"], v["model"]);

    let run = |n: &str| {
        json(&ok(
            &dir,
            &[
                "model",
                "run",
                &id,
                "--prompt",
                "ROMEO.\n",
                "--max-tokens",
                n,
                "--json",
            ],
        ))
    };
    let out = run("20");
    let tokens = out["tokens"].as_array().expect("tokens");
    assert!(!tokens.is_empty() && tokens.len() <= 20);
    assert!(out["text"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(out["tokens_per_second"].as_f64().is_some());
    // Deterministic: the same request gives the same output hash.
    assert_eq!(run("20")["output_hash"], out["output_hash"]);
    // The human form streams the text after the prompt and prints tokens/s.
    let text = ok(
        &dir,
        &[
            "model",
            "run",
            &id,
            "--prompt",
            "ROMEO.\n",
            "--max-tokens",
            "8",
        ],
    );
    assert!(text.starts_with("ROMEO.\n"), "{text}");

    let err = fails(
        &dir,
        &["model", "run", &id, "--prompt", "x", "--max-tokens", "65"],
    );
    assert!(err.contains("1 to 64 new tokens"), "{err}");
    let err = fails(&dir, &["model", "run", &id, "--text", "x"]);
    assert!(err.contains("--prompt"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
