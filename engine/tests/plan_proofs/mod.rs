//! What the dispute-plan tests check of every proof: it opens against the model's
//! commitments and the run's trace, and the referee recomputes the committed bytes.

use inferchain_engine::dispute_plan::DisputePlan;
use inferchain_primitives::{
    dispute::{StepReferee, TraceCommitment},
    merkle,
    tensor_tree::{chunk_leaves, tensor_leaf},
    H256,
};
use inferchain_referee::KernelReferee;

/// The trace commitment of a run whose step outputs are `outputs`.
pub fn trace_of(outputs: &[Vec<u8>]) -> TraceCommitment {
    let leaves: Vec<merkle::Hash> = outputs.iter().map(|o| tensor_leaf(o)).collect();
    TraceCommitment {
        root: H256(merkle::root(&leaves)),
        leaves: leaves.len() as u32,
    }
}

/// Chunk `chunk` of step `i` of the run: its element proof (the gather's second reads
/// included) opens, and the referee recomputes the committed chunk.
pub fn assert_chunk_proves(
    plan: &DisputePlan,
    input: &[u8],
    outputs: &[Vec<u8>],
    i: usize,
    chunk: u32,
) {
    let step = &plan.steps[i];
    let proof = plan
        .element_proof(input, outputs, i, chunk)
        .unwrap_or_else(|| panic!("step {i} chunk {chunk}: a proof"));
    let reads = KernelReferee::element_reads(&step.op, step.output_bytes, chunk).expect("reads");
    let indirect = |direct: &[&[u8]]| {
        KernelReferee::indirect_reads(&step.op, step.output_bytes, chunk, direct)
    };
    let (op, slices) = proof
        .open(
            &plan.commitments(),
            &trace_of(outputs),
            i as u32,
            input,
            &reads,
            indirect,
        )
        .unwrap_or_else(|e| panic!("step {i} chunk {chunk}: {e:?}"));
    let out = KernelReferee::evaluate_chunk(op, step.output_bytes, chunk, &slices)
        .unwrap_or_else(|e| panic!("step {i} chunk {chunk}: {e:?}"));
    assert_eq!(
        merkle::leaf(&out),
        chunk_leaves(&outputs[i])[chunk as usize],
        "step {i} chunk {chunk}"
    );
}
