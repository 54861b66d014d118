//! all-MiniLM-L6-v2 through the engine against an independent reference:
//! `scripts/reference/minilm_numpy.py`, a float64 numpy forward pass with its own
//! WordPiece tokenizer, sharing no code with candle or `tokenizers`.

use inferchain_engine::{bert::BertEmbedder, ModelStore};
use inferchain_primitives::model::ModelFormat;
use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

fn cache() -> PathBuf {
    std::env::var_os("INFERCHAIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/inferchain")
        })
}

const SENTENCES: [&str; 5] = [
    "Verifiable inference on a blockchain.",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog; it was not amused.",
    "Café déjà vu: naïve résumé (accents are stripped).",
    "",
];

#[test]
fn embeddings_match_an_independent_numpy_reference() {
    let dir = cache().join("models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} missing: run scripts/setup.sh",
        dir.display()
    );
    let tmp = std::env::temp_dir().join(format!("inferchain-minilm-ref-{}", std::process::id()));
    let store = ModelStore::open(&tmp).expect("store");
    let manifest = store
        .import(&dir, Some(ModelFormat::BertEmbedding), &mut |_| {})
        .expect("import");
    let mut files = store
        .read_verified(&manifest.id(), &mut |_| {})
        .expect("verified");
    let model = BertEmbedder::load(&mut files).expect("loads");

    let python = cache().join("venv/bin/python");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/reference/minilm_numpy.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", python.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(&SENTENCES).expect("json").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("reference runs");
    assert!(out.status.success(), "reference failed");
    let reference: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");

    for (sentence, reference) in SENTENCES.iter().zip(&reference) {
        let ids: Vec<u32> = reference["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect();
        assert_eq!(
            model.tokenize(sentence).expect("tokenizes"),
            ids,
            "tokens of {sentence:?}"
        );
        let want: Vec<f64> = reference["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .map(|v| v.as_f64().expect("float"))
            .collect();
        let got = model.embed(sentence).expect("embeds");
        assert_eq!(got.shape, vec![1, 384]);
        let got = got.to_f64_vec().expect("f32 data");
        let dot: f64 = got.iter().zip(&want).map(|(a, b)| a * b).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let cosine = dot / (norm(&got) * norm(&want));
        let max_abs = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!("{sentence:?}: cosine {cosine:.9}, max |diff| {max_abs:.2e}");
        assert!(cosine >= 0.9999, "{sentence:?}: cosine {cosine}");
        assert!(
            (norm(&got) - 1.0).abs() < 1e-5,
            "embedding is L2-normalised"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
