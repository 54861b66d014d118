//! The determinism matrix: the real `inferchain` binary runs each genesis model (and
//! models/tiny-cnn, for the engine's convolution and pooling paths) natively
//! at 1, 2 and 8 threads (twice each) and under qemu-user as an SSE4.2-only CPU (Nehalem)
//! and an AVX2+FMA CPU (Haswell). Native runs must give identical output bytes; emulated
//! CPUs must match under the model's registered comparison rule, and the table says
//! which ones are bit-exact. docs/DETERMINISM.md explains the results.

mod common;
use codec::Encode;
use common::*;
use inferchain_engine::npy;
use inferchain_primitives::{
    compare::ComparisonRule,
    io::{Payload, Tensor},
};
use std::path::Path;

/// The genesis comparison rules (runtime/src/dev_models.rs).
const TINY_MLP_RULE: ComparisonRule = ComparisonRule::Tolerance {
    abs_ppb: 1_000,
    rel_ppb: 10_000,
};
const MINILM_RULE: ComparisonRule = ComparisonRule::Tolerance {
    abs_ppb: 10_000,
    rel_ppb: 0,
};

/// What `inferchain model import` proposes for float outputs (engine/src/spec.rs).
const DEFAULT_FLOAT_RULE: ComparisonRule = ComparisonRule::Tolerance {
    abs_ppb: 10_000,
    rel_ppb: 100_000,
};

const CPUS: [(&str, &str); 2] = [("Nehalem", "SSE4.2 only"), ("Haswell-noTSX", "AVX2+FMA")];

struct Run {
    label: String,
    hash: String,
    payload: Vec<u8>,
}

fn run_once(store: &Path, args: &[&str], wrapper: &[&str], threads: &str, label: String) -> Run {
    let mut full = vec!["--threads", threads];
    full.extend_from_slice(args);
    full.push("--json");
    let out = common::run(store, &full, wrapper, &[]);
    assert!(
        out.status.success(),
        "{label}: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("TCG doesn't support"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let v = json(&String::from_utf8_lossy(&out.stdout));
    let values: Vec<f32> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|x| x.as_f64().expect("f") as f32)
        .collect();
    let shape: Vec<u32> = v["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|x| x.as_u64().expect("dim") as u32)
        .collect();
    let payload = Payload::Tensors(vec![Tensor::from_f32(shape, &values)]).encode();
    let hash = v["output_hash"].as_str().expect("hash").to_string();
    // The printed values are the hashed bytes.
    assert_eq!(
        format!(
            "0x{}",
            hex::encode(inferchain_primitives::blake2_256(&payload))
        ),
        hash,
        "{label}: JSON data matches its hash"
    );
    Run {
        label,
        hash,
        payload,
    }
}

fn matrix(name: &str, store: &Path, args: &[&str], rule: ComparisonRule) {
    let mut native = Vec::new();
    for threads in ["1", "2", "8"] {
        for round in 0..2 {
            native.push(run_once(
                store,
                args,
                &[],
                threads,
                format!("native, {threads} thread(s), run {round}"),
            ));
        }
    }
    let reference = &native[0];
    for r in &native {
        assert_eq!(
            r.hash, reference.hash,
            "{name}: {} differs from {}",
            r.label, reference.label
        );
    }
    println!(
        "{name}: native, 1/2/8 threads x2 runs: one output hash {}",
        reference.hash
    );
    let qemu = which_qemu();
    for (cpu, features) in CPUS {
        let r = run_once(
            store,
            args,
            &[&qemu, "-cpu", cpu],
            "2",
            format!("qemu {cpu}"),
        );
        let exact = r.hash == reference.hash;
        let within = rule.matches(&r.payload, &reference.payload);
        let max_diff = max_abs_diff(&r.payload, &reference.payload);
        println!(
            "{name}: qemu -cpu {cpu} ({features}): {} (max |diff| {max_diff:.3e}, rule {rule:?}: {})",
            if exact { "bit-exact" } else { "differs in bits" },
            if within { "within" } else { "OUTSIDE" }
        );
        assert!(
            within,
            "{name} on {cpu}: output outside the model's comparison rule"
        );
    }
}

fn max_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    let (Ok(Payload::Tensors(x)), Ok(Payload::Tensors(y))) =
        (Payload::decode_canonical(a), Payload::decode_canonical(b))
    else {
        return f64::NAN;
    };
    let (Some(xv), Some(yv)) = (x[0].to_f64_vec(), y[0].to_f64_vec()) else {
        return f64::NAN;
    };
    xv.iter()
        .zip(&yv)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max)
}

fn which_qemu() -> String {
    let found = std::process::Command::new("qemu-x86_64")
        .arg("--version")
        .output();
    assert!(
        matches!(found, Ok(ref o) if o.status.success()),
        "qemu-x86_64 not found: run scripts/setup.sh (Debian package qemu-user)"
    );
    "qemu-x86_64".into()
}

#[test]
fn determinism_matrix_for_the_genesis_models_and_a_cnn() {
    let dir = temp_dir("determinism");
    let tiny = import(&dir, &tiny_mlp());
    let input = dir.join("x.npy");
    std::fs::write(
        &input,
        npy::write(&Tensor::from_f32(vec![1, 4], &[0.3, -1.7, 2.25, 0.01])),
    )
    .expect("write");
    matrix(
        "tiny-mlp",
        &dir,
        &[
            "model",
            "run",
            &tiny,
            "--input",
            input.to_str().expect("path"),
        ],
        TINY_MLP_RULE,
    );
    let minilm = import(&dir, &minilm_dir());
    matrix(
        "all-MiniLM-L6-v2",
        &dir,
        &[
            "model",
            "run",
            &minilm,
            "--text",
            "Every executor must compute the same embedding, whatever its CPU.",
        ],
        MINILM_RULE,
    );
    let cnn = import(&dir, &tiny_cnn());
    let image: Vec<f32> = (0..3 * 16 * 16)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let image_path = dir.join("image.npy");
    std::fs::write(
        &image_path,
        npy::write(&Tensor::from_f32(vec![1, 3, 16, 16], &image)),
    )
    .expect("write");
    matrix(
        "tiny-cnn",
        &dir,
        &[
            "model",
            "run",
            &cnn,
            "--input",
            image_path.to_str().expect("path"),
        ],
        DEFAULT_FLOAT_RULE,
    );
    let _ = std::fs::remove_dir_all(dir);
}
