//! Helpers for running the real `inferchain` binary in tests.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_inferchain")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The committed tiny-mlp ONNX model the dev chain registers at genesis.
pub fn tiny_mlp() -> PathBuf {
    repo().join("models/tiny-mlp/model.onnx")
}

pub fn tiny_cnn() -> PathBuf {
    repo().join("models/tiny-cnn/model.onnx")
}

pub fn cache() -> PathBuf {
    std::env::var_os("INFERCHAIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/inferchain")
        })
}

pub fn minilm_dir() -> PathBuf {
    let dir = cache().join("models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} missing: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inferchain-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs `inferchain --store STORE args…` (optionally under a wrapper such as qemu).
pub fn run(store: &Path, args: &[&str], wrapper: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin());
            c
        }
        None => Command::new(bin()),
    };
    cmd.arg("--store").arg(store).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("inferchain runs")
}

/// Runs and expects success; returns stdout.
pub fn ok(store: &Path, args: &[&str]) -> String {
    let out = run(store, args, &[], &[]);
    assert!(
        out.status.success(),
        "inferchain {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs and expects failure; returns stderr.
pub fn fails(store: &Path, args: &[&str]) -> String {
    let out = run(store, args, &[], &[]);
    assert!(
        !out.status.success(),
        "inferchain {args:?} unexpectedly succeeded"
    );
    String::from_utf8(out.stderr).expect("utf-8")
}

/// Imports a model and returns its id (0x-hex).
pub fn import(store: &Path, path: &Path) -> String {
    let out = ok(
        store,
        &[
            "model",
            "import",
            path.to_str().expect("utf-8 path"),
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("import prints JSON");
    v["model"].as_str().expect("model id").to_string()
}

pub fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}
