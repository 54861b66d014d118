//! The dispute plan of `models/tiny-mlp`: the referee's step-by-step run ends in exactly
//! the engine's output, and every step's proof opens against the commitments and
//! recomputes to the committed leaf.

use codec::Encode;
use inferchain_engine::{dispute_plan::DisputePlan, error::EngineError, onnx::OnnxModel};
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
    let model = OnnxModel::from_bytes(&bytes).expect("tiny-mlp loads");
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
        let leaves: Vec<merkle::Hash> = outputs.iter().map(|o| merkle::leaf(o)).collect();
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
            assert_eq!(merkle::leaf(&out), *leaf, "seed {seed} step {i}");
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
