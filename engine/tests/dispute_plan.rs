//! The dispute plan of `models/tiny-mlp`: the referee's step-by-step run ends in exactly
//! the engine's output, and every step's proof opens against the commitments and
//! recomputes to the committed leaf.

mod plan_proofs;

use codec::Encode;
use inferchain_engine::{
    dispute_plan::DisputePlan, error::EngineError, onnx::OnnxModel, LoadedModel,
};
use inferchain_primitives::{
    dispute::{StepReferee, TraceCommitment},
    io::{Payload, Tensor},
    merkle, H256,
};
use inferchain_referee::KernelReferee;
use std::path::PathBuf;

fn model_bytes(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
        .join("model.onnx");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn input(seed: u32) -> Vec<u8> {
    let values: Vec<f32> = (0..4)
        .map(|i| ((seed * 7 + i * 13) % 23) as f32 / 4.0 - 2.5)
        .collect();
    Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &values)]).encode()
}

#[test]
fn the_tiny_mlp_plan_reproduces_the_engine_and_every_step_proves() {
    let bytes = model_bytes("tiny-mlp");
    let model = LoadedModel::Onnx(Box::new(
        OnnxModel::from_bytes(&bytes).expect("tiny-mlp loads"),
    ));
    let plan = DisputePlan::compile_onnx(&bytes).expect("tiny-mlp compiles");
    // Input, Gemm, Relu, Gemm, Softmax, output; w1, b1, w2, b2.
    assert_eq!(plan.steps.len(), 6);
    assert_eq!(plan.weights.len(), 4);
    let commitments = plan.commitments();
    assert_eq!(
        commitments,
        DisputePlan::compile_onnx(&bytes)
            .expect("compiles again")
            .commitments()
    );
    eprintln!("tiny-mlp dispute commitments: {commitments:?}");

    for seed in 0..32 {
        let input = input(seed);
        let outputs = plan
            .run(&model, &input)
            .expect("the plan's output is the engine's");
        let leaves: Vec<merkle::Hash> = outputs
            .iter()
            .map(|o| inferchain_primitives::tensor_tree::tensor_leaf(o))
            .collect();
        let trace = TraceCommitment {
            root: H256(merkle::root(&leaves)),
            leaves: leaves.len() as u32,
        };
        for (i, leaf) in leaves.iter().enumerate() {
            let proof = plan.proof(&input, &outputs, i).expect("in range");
            let (op, operands) = proof
                .open(&commitments, &trace, i as u32, &input)
                .expect("the proof opens");
            let out = KernelReferee::evaluate(op, &operands).expect("refereeable");
            assert_eq!(
                inferchain_primitives::tensor_tree::tensor_leaf(&out),
                *leaf,
                "seed {seed} step {i}"
            );
        }
    }
}

#[test]
fn graphs_outside_the_plan_language_are_named() {
    let err = DisputePlan::compile_onnx(&model_bytes("tiny-cnn")).expect_err("Conv is not in it");
    assert!(
        matches!(&err, EngineError::UnsupportedOp { op } if op.contains("Conv")),
        "{err}"
    );
}

/// An engine over a fresh store holding `models/tiny-mlp`.
fn engine_with_tiny_mlp(tag: &str) -> (inferchain_engine::Engine, inferchain_primitives::ModelId) {
    let dir = std::env::temp_dir().join(format!("inferchain-traced-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = inferchain_engine::ModelStore::open(&dir).expect("store");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-mlp/model.onnx");
    let id = store.import(&path, None, &mut |_| {}).expect("import").id();
    (inferchain_engine::Engine::new(store, 1 << 24), id)
}

#[test]
fn traced_runs_answer_every_move_and_a_corrupted_run_differs_at_one_step_first() {
    use inferchain_primitives::{
        dispute::{descend, reveals, Position, StepProof},
        host::{TraceAnswer, TraceAsk, TraceRun},
    };
    let (engine, id) = engine_with_tiny_mlp("moves");
    let plan = DisputePlan::compile_onnx(&model_bytes("tiny-mlp")).expect("compiles");
    let commitments = plan.commitments();
    let input = input(3);
    let honest = engine
        .traced_run(&id, &input, &commitments, TraceRun::Honest)
        .expect("runs");
    assert!(!honest.engine_mismatch());
    // Kept: the second ask does not run the model again.
    assert!(std::sync::Arc::ptr_eq(
        &honest,
        &engine
            .traced_run(&id, &input, &commitments, TraceRun::Honest)
            .expect("runs")
    ));
    let TraceAnswer::Commit {
        output,
        trace,
        output_path,
    } = honest.answer(TraceAsk::Commit)
    else {
        panic!("a commit")
    };
    let engine_output = engine
        .run(
            &id,
            &Payload::decode_canonical(&input).expect("canonical"),
            None,
        )
        .expect("runs")
        .output
        .encode();
    assert_eq!(
        output, engine_output,
        "a traced result is the engine's output"
    );
    assert!(merkle::verify(
        &trace.root.0,
        &inferchain_primitives::tensor_tree::tensor_leaf(&output),
        5,
        6,
        &output_path
    ));

    let bad = engine
        .traced_run(&id, &input, &commitments, TraceRun::Corrupted { step: 3 })
        .expect("runs");
    let diff: Vec<usize> = (0..6)
        .filter(|&i| honest.outputs()[i] != bad.outputs()[i])
        .collect();
    assert_eq!(diff.first(), Some(&3), "{diff:?}");
    assert!(diff.contains(&5), "the corruption reaches the output");

    // The walk both sides play from their answers ends at step 3, where the honest
    // proof recomputes the honest leaf and not the corrupted one.
    let mut at = Position::root(6);
    let (mut h, mut b) = (trace.root.0, bad.tree().commitment().root.0);
    while !at.is_leaf() {
        let (TraceAnswer::Children(hl, hr), TraceAnswer::Children(bl, br)) = (
            honest.answer(TraceAsk::Children(at)),
            bad.answer(TraceAsk::Children(at)),
        ) else {
            panic!("children")
        };
        assert!(reveals(&h, &hl, &hr) && reveals(&b, &bl, &br));
        (at, h, b) = descend(at, 6, (hl, hr), (bl, br)).expect("they differ");
    }
    assert_eq!(at.start, 3);
    let TraceAnswer::Proof(proof) = bad.answer(TraceAsk::Proof(3)) else {
        panic!("a proof")
    };
    let proof: StepProof = codec::Decode::decode(&mut &proof[..]).expect("decodes");
    let (op, operands) = proof
        .open(&commitments, &bad.tree().commitment(), 3, &input)
        .expect("opens: every earlier leaf is agreed");
    let computed = inferchain_primitives::tensor_tree::tensor_leaf(
        &KernelReferee::evaluate(op, &operands).expect("evaluates"),
    );
    assert_eq!(computed, h);
    assert_ne!(computed, b);
    assert_eq!(honest.answer(TraceAsk::Proof(6)), TraceAnswer::OutOfRange);
}

#[test]
fn a_plan_whose_commitments_differ_from_the_registered_ones_is_refused() {
    use inferchain_primitives::host::TraceRun;
    let (engine, id) = engine_with_tiny_mlp("mismatch");
    let right = DisputePlan::compile_onnx(&model_bytes("tiny-mlp"))
        .expect("compiles")
        .commitments();
    let mut wrong = right;
    wrong.weights_root = H256::repeat_byte(1);
    assert!(matches!(
        engine.traced_run(&id, &input(1), &wrong, TraceRun::Honest),
        Err(EngineError::CommitmentsMismatch)
    ));
    // Nor is a kept run served under other commitments than it was made for.
    engine
        .traced_run(&id, &input(1), &right, TraceRun::Honest)
        .expect("runs");
    assert!(matches!(
        engine.traced_run(&id, &input(1), &wrong, TraceRun::Honest),
        Err(EngineError::CommitmentsMismatch)
    ));
}

#[test]
fn every_chunk_of_every_step_with_an_element_path_proves() {
    use inferchain_primitives::tensor_tree::chunk_count;
    let bytes = model_bytes("tiny-mlp");
    let plan = DisputePlan::compile_onnx(&bytes).expect("compiles");
    let input = input(5);
    let outputs = plan.trace(&input).expect("runs");
    let mut proven = 0;
    for (i, step) in plan.steps.iter().enumerate() {
        assert_eq!(step.output_bytes as usize, outputs[i].len(), "step {i}");
        if KernelReferee::element_reads(&step.op, step.output_bytes, 0).is_err() {
            assert!(plan.element_proof(&input, &outputs, i, 0).is_none());
            continue;
        }
        for chunk in 0..chunk_count(step.output_bytes) {
            plan_proofs::assert_chunk_proves(&plan, &input, &outputs, i, chunk);
            proven += 1;
        }
    }
    // Two GemmBt steps and the Relu, at least a chunk each.
    assert!(proven >= 3, "{proven} chunks proven");
}

#[test]
fn the_wide_mlp_product_is_over_the_caps_whole_and_settled_by_chunk() {
    use inferchain_primitives::dispute::RefereePath;
    let bytes = model_bytes("wide-mlp");
    let model = LoadedModel::Onnx(Box::new(
        OnnxModel::from_bytes(&bytes).expect("wide-mlp loads"),
    ));
    let plan = DisputePlan::compile_onnx(&bytes).expect("wide-mlp compiles");
    eprintln!("wide-mlp dispute commitments: {:?}", plan.commitments());
    // Input, Relu, GemmBt (1 x 64 by 1024 x 64), output.
    assert_eq!(plan.steps.len(), 4);
    let paths: Vec<RefereePath> = plan
        .steps
        .iter()
        .map(|s| KernelReferee::path(&s.op, s.output_bytes))
        .collect();
    assert_eq!(
        paths,
        vec![
            RefereePath::Whole,
            RefereePath::Whole,
            RefereePath::Elements,
            RefereePath::Whole
        ]
    );
    let values: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) / 16.0).collect();
    let input = Payload::Tensors(vec![Tensor::from_f32(vec![1, 64], &values)]).encode();
    plan.run(&model, &input)
        .expect("the plan's output is the engine's");
}
