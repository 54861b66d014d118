//! ONNX backend conformance: every case of the `onnx` wheel's backend test data
//! (`pytorch-converted`, `pytorch-operator`, `simple`) and of its per-operator cases
//! (`node`: each operator at one opset, as the spec's reference computes it) through the
//! engine, compared with the expected outputs at the backend tests' tolerance (rtol 1e-3,
//! atol 1e-7). Prints pass / fail / unsupported per folder and fails if a folder's pass
//! count drops below `tests/conformance-baseline.txt`. scripts/setup.sh puts the data in
//! place (the `node` cases written by scripts/gen-onnx-node-data.py).

use candle_core::Tensor as CTensor;
use inferchain_engine::{
    golden::{self, numbered, read_tensor},
    onnx::OnnxModel,
    EngineError,
};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

const FOLDERS: [&str; 4] = ["pytorch-converted", "pytorch-operator", "simple", "node"];
const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-7;

enum Outcome {
    Pass,
    Fail(String),
    Unsupported(String),
}

/// Where `folder`'s cases are: the wheel's data, or the per-operator cases setup writes.
fn folder_path(folder: &str) -> PathBuf {
    let wheel = golden::default_data().1;
    if folder == "node" {
        wheel
            .parent()
            .map(|cache| cache.join("onnx-node-data/node"))
            .unwrap_or_default()
    } else {
        wheel.join(folder)
    }
}

fn close(got: &CTensor, want: &CTensor) -> Result<(), String> {
    if got.dims() != want.dims() && got.elem_count() != want.elem_count() {
        return Err(format!(
            "shape {:?}, expected {:?}",
            got.dims(),
            want.dims()
        ));
    }
    let flat = |t: &CTensor| -> Result<Vec<f64>, String> {
        t.flatten_all()
            .and_then(|t| t.to_dtype(candle_core::DType::F64))
            .and_then(|t| t.to_vec1::<f64>())
            .map_err(|e| e.to_string())
    };
    let (g, w) = (flat(got)?, flat(want)?);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= ATOL + RTOL * b.abs();
        if !ok {
            return Err(format!("element {i}: {a}, expected {b}"));
        }
    }
    Ok(())
}

fn run_case(case: &Path) -> Outcome {
    let bytes = match std::fs::read(case.join("model.onnx")) {
        Ok(b) => b,
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    let model = match OnnxModel::from_bytes(&bytes) {
        Ok(m) => m,
        Err(
            e @ (EngineError::UnsupportedOp { .. }
            | EngineError::UnsupportedOperator { .. }
            | EngineError::UnsupportedOpset { .. }
            | EngineError::NondeterministicOp { .. }),
        ) => return Outcome::Unsupported(e.to_string()),
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    let input_names = model.input_names();
    let output_names = model.output_names();
    let mut sets: Vec<PathBuf> = std::fs::read_dir(case)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    sets.sort();
    if sets.is_empty() {
        return Outcome::Fail("no test data sets".into());
    }
    for set in sets {
        let mut inputs = HashMap::new();
        for (i, path) in numbered(&set, "input_").iter().enumerate() {
            let (name, t) = match read_tensor(path) {
                Ok(x) => x,
                Err(e) => return Outcome::Unsupported(e),
            };
            let name = if input_names.contains(&name) {
                name
            } else {
                input_names.get(i).cloned().unwrap_or(name)
            };
            inputs.insert(name, t);
        }
        let mut got = match model.run_named(inputs) {
            Ok(o) => o,
            Err(e @ (EngineError::UnsupportedOp { .. } | EngineError::UnsupportedDType(_))) => {
                return Outcome::Unsupported(e.to_string())
            }
            Err(e) => return Outcome::Fail(e.to_string()),
        };
        for (i, path) in numbered(&set, "output_").iter().enumerate() {
            let (name, want) = match read_tensor(path) {
                Ok(x) => x,
                Err(e) => return Outcome::Unsupported(e),
            };
            let name = if output_names.contains(&name) {
                name
            } else {
                output_names.get(i).cloned().unwrap_or(name)
            };
            let Some(t) = got.remove(&name) else {
                return Outcome::Fail(format!("no output `{name}`"));
            };
            if let Err(e) = close(&t, &want) {
                return Outcome::Fail(format!("output `{name}`: {e}"));
            }
        }
    }
    Outcome::Pass
}

fn baseline() -> HashMap<String, usize> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-baseline.txt");
    std::fs::read_to_string(&path)
        .expect("tests/conformance-baseline.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.parse().ok()?))
        })
        .collect()
}

#[test]
fn onnx_backend_cases_pass_at_least_the_baseline() {
    for folder in FOLDERS {
        let path = folder_path(folder);
        assert!(
            path.is_dir(),
            "{} missing: run scripts/setup.sh (it links the onnx wheel's backend test data \
             and writes its per-operator cases)",
            path.display()
        );
    }
    let baseline = baseline();
    let verbose = std::env::var_os("CONFORMANCE_VERBOSE").is_some();
    let (mut total_pass, mut total) = (0usize, 0usize);
    let mut regressions = Vec::new();
    println!(
        "{:<20} {:>5} {:>5} {:>12} {:>6}",
        "folder", "pass", "fail", "unsupported", "cases"
    );
    for folder in FOLDERS {
        let mut cases: Vec<PathBuf> = std::fs::read_dir(folder_path(folder))
            .expect("folder readable")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("model.onnx").is_file())
            .collect();
        cases.sort();
        let (mut pass, mut fail, mut unsupported) = (0, 0, 0);
        for case in &cases {
            let name = case
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match run_case(case) {
                Outcome::Pass => pass += 1,
                Outcome::Fail(why) => {
                    fail += 1;
                    if verbose {
                        println!(
                            "  FAIL {folder}/{name}: {}",
                            why.chars().take(160).collect::<String>()
                        );
                    }
                }
                Outcome::Unsupported(why) => {
                    unsupported += 1;
                    if verbose {
                        println!(
                            "  UNSUPPORTED {folder}/{name}: {}",
                            why.chars().take(160).collect::<String>()
                        );
                    }
                }
            }
        }
        println!(
            "{folder:<20} {pass:>5} {fail:>5} {unsupported:>12} {:>6}",
            cases.len()
        );
        total_pass += pass;
        total += cases.len();
        let floor = baseline.get(folder).copied().unwrap_or(0);
        if pass < floor {
            regressions.push(format!("{folder}: {pass} pass, baseline {floor}"));
        }
    }
    println!(
        "total: {total_pass}/{total} pass ({:.1}%)",
        100.0 * total_pass as f64 / total.max(1) as f64
    );
    assert!(
        regressions.is_empty(),
        "conformance fell below the baseline: {regressions:?}"
    );
}
