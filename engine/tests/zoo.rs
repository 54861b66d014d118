//! The model zoo (`models/zoo`, made by scripts/zoo/export.sh with the exporters
//! themselves: scikit-learn through skl2onnx, XGBoost and LightGBM through onnxmltools):
//! every model imports into a store, runs
//! through the engine, and matches onnxruntime's outputs on seeded inputs, floats to
//! rtol 1e-4 (atol 1e-6), labels and other integers exactly.

#![allow(clippy::unwrap_used)]

use inferchain_engine::{npy, Engine, ModelStore};
use inferchain_primitives::io::{DType, Payload, Tensor};
use std::path::{Path, PathBuf};

const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-6;

fn zoo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/zoo")
}

fn read_npy(path: &Path) -> Tensor {
    npy::read(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Why `got` is not `want`, if it is not.
fn mismatch(got: &Tensor, want: &Tensor) -> Option<String> {
    if got.shape != want.shape {
        return Some(format!("shape {:?}, expected {:?}", got.shape, want.shape));
    }
    let integer = |t: &Tensor| matches!(t.dtype, DType::I64 | DType::I32 | DType::U8);
    let (Some(g), Some(w)) = (got.to_f64_vec(), want.to_f64_vec()) else {
        return Some("not numbers".into());
    };
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = if integer(want) {
            a == b && integer(got)
        } else {
            (a - b).abs() <= ATOL + RTOL * b.abs()
        };
        if !ok {
            return Some(format!("element {i}: {a}, expected {b}"));
        }
    }
    None
}

#[test]
fn every_zoo_model_imports_runs_and_matches_onnxruntime() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(zoo())
        .expect("models/zoo")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "the zoo has {} models", cases.len());
    let root = std::env::temp_dir().join(format!("inferchain-zoo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let store = ModelStore::open(&root).expect("store");
    let engine = Engine::new(store.clone(), 64 << 20);
    let mut failures = Vec::new();
    println!("{:<42} {:>7} result", "model", "outputs");
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let outcome = (|| -> Result<usize, String> {
            let id = store
                .import(case, None, &mut |_| {})
                .map_err(|e| format!("import: {e}"))?
                .id();
            let input = Payload::Tensors(vec![read_npy(&case.join("input_0.npy"))]);
            let run = engine
                .run(&id, &input, None)
                .map_err(|e| format!("run: {e}"))?;
            let Payload::Tensors(got) = run.output else {
                return Err("not a tensor output".into());
            };
            // A second run reuses what the first computed from weights and input shapes
            // alone (engine/src/onnx/static_values.rs): the same bits.
            let again = engine
                .run(&id, &input, None)
                .map_err(|e| format!("second run: {e}"))?;
            if again.output != Payload::Tensors(got.clone()) {
                return Err("a second run gave other bits".into());
            }
            let mut k = 0;
            while case.join(format!("expected_{k}.npy")).is_file() {
                let want = read_npy(&case.join(format!("expected_{k}.npy")));
                let got = got.get(k).ok_or(format!("no output {k}"))?;
                if let Some(why) = mismatch(got, &want) {
                    return Err(format!("output {k}: {why}"));
                }
                k += 1;
            }
            if k != got.len() {
                return Err(format!("{} outputs, {k} expected", got.len()));
            }
            Ok(k)
        })();
        match outcome {
            Ok(k) => println!("{name:<42} {k:>7} pass"),
            Err(why) => {
                println!("{name:<42} {:>7} FAIL {why}", "-");
                failures.push(format!("{name}: {why}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(root);
    assert!(failures.is_empty(), "{failures:#?}");
}
