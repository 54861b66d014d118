//! The golden output hashes (engine/src/golden.rs): every model under models/, MiniLM and
//! every ONNX conformance case the engine runs must give the hash committed in
//! tests/golden-hashes.txt. A kernel or dependency change that moves one bit fails here
//! unless NUMERICS_VERSION is bumped on purpose; after a bump,
//! `INFERCHAIN_BLESS=1 cargo test --release --workspace --test golden` rewrites the file.

use inferchain_engine::{
    golden::{self, GoldenFile, Outcome},
    spec::NUMERICS_VERSION,
};
use std::path::PathBuf;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden-hashes.txt")
}

#[test]
fn every_case_gives_its_committed_hash() {
    let (minilm, conformance) = golden::default_data();
    assert!(
        minilm.join("model.safetensors").is_file() && conformance.join("simple").is_dir(),
        "MiniLM or the ONNX backend data is missing: run scripts/setup.sh"
    );
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models");
    let mut entries = Vec::new();
    for case in golden::cases(&models, Some(&minilm), Some(&conformance)) {
        let outcome = golden::run(&case).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        entries.push((case.name.clone(), outcome.to_string()));
    }
    let hashed = entries.iter().filter(|(_, h)| h.starts_with("0x")).count();
    let now = GoldenFile {
        numerics: NUMERICS_VERSION,
        entries,
    };
    if std::env::var_os("INFERCHAIN_BLESS").is_some() {
        std::fs::write(golden_path(), now.render()).expect("write golden-hashes.txt");
        println!("wrote {} ({hashed} hashes)", golden_path().display());
        return;
    }
    let text = std::fs::read_to_string(golden_path()).expect("tests/golden-hashes.txt");
    let committed = GoldenFile::parse(&text).expect("golden-hashes.txt parses");
    assert_eq!(
        committed.numerics, NUMERICS_VERSION,
        "golden-hashes.txt is for numerics version {}, the engine implements {}: after a \
         deliberate bump, regenerate it with INFERCHAIN_BLESS=1",
        committed.numerics, NUMERICS_VERSION
    );
    let mut moved = Vec::new();
    for ((name, hash), (cname, chash)) in now.entries.iter().zip(&committed.entries) {
        if name != cname || hash != chash {
            moved.push(format!("{name}: {hash}, committed {cname} {chash}"));
        }
    }
    assert_eq!(
        now.entries.len(),
        committed.entries.len(),
        "the set of golden cases changed"
    );
    assert!(
        moved.is_empty(),
        "output bits moved without a NUMERICS_VERSION bump ({} cases):\n{}",
        moved.len(),
        moved.join("\n")
    );
    println!("{hashed} golden hashes unchanged under numerics version {NUMERICS_VERSION}");
    assert!(
        hashed >= 135,
        "fewer hashed cases than the 3 models and 132 conformance cases"
    );
}

#[test]
fn an_unsupported_case_is_named_not_hashed() {
    let (_, conformance) = golden::default_data();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models");
    let case = golden::cases(&models, None, Some(&conformance))
        .into_iter()
        .find(|c| c.name == "onnx/simple/test_gradient_of_add")
        .expect("the case exists");
    assert!(matches!(golden::run(&case), Ok(Outcome::Unsupported(_))));
}

/// An execution trace has one leaf per value the plan produces, in plan order, ending in
/// the output; each intermediate can be proven against the root; another input moves it.
#[test]
fn a_trace_commits_every_intermediate_and_ends_in_the_output() {
    use codec::Encode;
    use inferchain_engine::onnx::OnnxModel;
    use inferchain_primitives::{io::Tensor, merkle};
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-mlp/model.onnx");
    let model = OnnxModel::from_bytes(&std::fs::read(path).expect("tiny-mlp")).expect("loads");
    let run = |x: [f32; 4]| {
        let mut leaves = Vec::new();
        let out = model
            .run_traced(&[Tensor::from_f32(vec![1, 4], &x)], Some(&mut leaves))
            .expect("runs");
        (out, leaves)
    };
    let (out, leaves) = run([0.5, -1.0, 2.0, 0.25]);
    assert_eq!(leaves.len(), 4, "Gemm, Relu, Gemm, Softmax");
    assert_eq!(leaves[3], merkle::leaf(&out[0].encode()));
    let root = merkle::root(&leaves);
    for (i, leaf) in leaves.iter().enumerate() {
        let proof = merkle::proof(&leaves, i).expect("in range");
        assert!(merkle::verify(&root, leaf, i, leaves.len(), &proof));
    }
    let (_, other) = run([0.5, -1.0, 2.0, 0.5]);
    assert_ne!(other[0], leaves[0]);
    assert_ne!(merkle::root(&other), root);
    // Tracing changes nothing about the output.
    assert_eq!(
        model
            .run(&[Tensor::from_f32(vec![1, 4], &[0.5, -1.0, 2.0, 0.25])])
            .expect("runs"),
        out
    );
}

/// Every model case reports the cost it would be registered with (the determinism matrix
/// compares it across CPUs); an ONNX model's is its dry run at its declared input.
#[test]
fn model_cases_report_their_registration_cost() {
    use inferchain_engine::onnx::OnnxModel;
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models");
    let cases = golden::cases(&models, None, None);
    assert!(cases.len() >= 3, "tiny-mlp, tiny-cnn, tiny-llm");
    for case in &cases {
        let (_, _, cost) =
            golden::run_traced(case).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let cost = cost.unwrap_or_else(|| panic!("{} reports no cost", case.name));
        assert!(
            cost.flops > 0 && cost.peak_memory_bytes > 0,
            "{}: {cost:?}",
            case.name
        );
        if case.name == "model/tiny-mlp" {
            let model = OnnxModel::from_bytes(
                &std::fs::read(models.join("tiny-mlp/model.onnx")).expect("tiny-mlp"),
            )
            .expect("loads");
            let estimated = model
                .estimate_cost(&model.io_specs().expect("specs").0)
                .expect("a bounded cost");
            assert_eq!(cost, estimated);
            assert_eq!(
                golden::cost_token(&cost),
                format!("cost:{}/{}", estimated.flops, estimated.peak_memory_bytes)
            );
        }
    }
}
