//! Running the `inferchain` client binary the way a user does, against a store folder.

use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The `inferchain` binary cargo built next to the node.
pub fn cli() -> PathBuf {
    let bin = super::node_binary().with_file_name("inferchain");
    assert!(
        bin.is_file(),
        "{} missing: build the workspace (`cargo test --release --workspace`)",
        bin.display()
    );
    bin
}

/// Runs `inferchain --store STORE ARGS…`: (success, stdout, stderr).
pub fn run(store: &Path, args: &[&str]) -> (bool, String, String) {
    let (code, out, err) = run_code(store, args);
    (code == Some(0), out, err)
}

/// Runs `inferchain --store STORE ARGS…`: (exit code, stdout, stderr).
pub fn run_code(store: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(cli())
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("inferchain runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `text` parsed as JSON (a `--json` output), or a panic showing it.
pub fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
