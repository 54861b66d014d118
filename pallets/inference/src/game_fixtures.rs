//! A model plan and its traces for the game's tests and simulation: steps whose test
//! referee (`mock::TestReferee`) hashes what they read, and runs with one corrupted step;
//! a wide plan whose element-wise steps open chunk by chunk, and its element proofs.

#![allow(clippy::unwrap_used)]

use crate::mock::*;
use codec::Encode;
use inferchain_primitives::{
    dispute::{
        ElementOperand, ElementProof, ModelCommitments, Operand, PlanStep, Position, Read,
        StepProof, StepReferee, TraceCommitment,
    },
    merkle::{self, Hash},
    tensor_tree::{chunk_root, tensor_leaf, ChunkRange},
    trace_tree::TraceTree,
    H256,
};

/// Weight tensors of the test plans.
pub const WEIGHTS: usize = 3;

/// A read of step `i`'s output: the test referee writes 32-byte digests.
fn step_read(i: usize) -> Read {
    Read::Step {
        index: i as u32,
        bytes: 32,
    }
}

/// The test model's plan: step 0 reads the input and weight 0, step i the output of step
/// i - 1 and weight i % 3, the last step (`o`) turns step n - 2's output into the payload.
pub struct Plan {
    pub steps: Vec<PlanStep>,
    pub weights: Vec<Vec<u8>>,
}

/// Bytes of the test referee's outputs: digests, wide steps and the output payload.
const DIGEST: u32 = 32;
const WIDE: u32 = 256;
fn payload_bytes() -> u32 {
    tensor(&[0.0; 4]).len() as u32
}

impl Plan {
    /// A plan whose step 1 is wide (256 bytes) and steps 2 ..= n - 2 element-wise over
    /// it (`e`, each opening chunk by chunk), between the input step and the output.
    pub fn wide(n: usize) -> Plan {
        Plan::wide_of(n, WIDE)
    }

    /// [`Plan::wide`] with wide outputs of `wide` bytes.
    pub fn wide_of(n: usize, wide: u32) -> Plan {
        assert!(n >= 4);
        let steps = (0..n)
            .map(|i| match i {
                0 => PlanStep {
                    op: vec![b's', 0],
                    reads: vec![Read::Input, Read::Weight(0)],
                    output_bytes: DIGEST,
                },
                1 => PlanStep {
                    op: [&[b'w'][..], &wide.to_le_bytes()].concat(),
                    reads: vec![step_read(0)],
                    output_bytes: wide,
                },
                i if i == n - 1 => PlanStep {
                    op: b"o".to_vec(),
                    reads: vec![Read::Step {
                        index: i as u32 - 1,
                        bytes: wide,
                    }],
                    output_bytes: payload_bytes(),
                },
                i => PlanStep {
                    op: vec![b'e', i as u8],
                    reads: vec![Read::Step {
                        index: i as u32 - 1,
                        bytes: wide,
                    }],
                    output_bytes: wide,
                },
            })
            .collect();
        Plan {
            steps,
            weights: (0..WEIGHTS).map(|w| vec![b'w', w as u8, 7]).collect(),
        }
    }

    pub fn new(n: usize) -> Plan {
        let steps = (0..n)
            .map(|i| {
                if i == 0 {
                    PlanStep {
                        op: vec![b's', 0],
                        reads: vec![Read::Input, Read::Weight(0)],
                        output_bytes: DIGEST,
                    }
                } else if i == n - 1 {
                    PlanStep {
                        op: b"o".to_vec(),
                        reads: vec![step_read(i - 1)],
                        output_bytes: payload_bytes(),
                    }
                } else {
                    PlanStep {
                        op: vec![b's', i as u8],
                        reads: vec![step_read(i - 1), Read::Weight((i % WEIGHTS) as u32)],
                        output_bytes: DIGEST,
                    }
                }
            })
            .collect();
        Plan {
            steps,
            weights: (0..WEIGHTS).map(|w| vec![b'w', w as u8, 7]).collect(),
        }
    }

    fn step_leaves(&self) -> Vec<Hash> {
        self.steps
            .iter()
            .map(|s| merkle::leaf(&s.encode()))
            .collect()
    }

    pub fn commitments(&self) -> ModelCommitments {
        let weight_leaves: Vec<Hash> = self.weights.iter().map(|w| tensor_leaf(w)).collect();
        ModelCommitments {
            plan_root: H256(merkle::root(&self.step_leaves())),
            steps: self.steps.len() as u32,
            weights_root: H256(merkle::root(&weight_leaves)),
            weights: WEIGHTS as u32,
        }
    }

    /// Runs the plan; with `fault`, the output of that step is corrupted and every later
    /// step computed honestly from it (a consistent wrong trace).
    pub fn run(&self, input: &[u8], fault: Option<usize>) -> Trace {
        self.run_with(input, |i, out| {
            if fault == Some(i) {
                *out = if i == self.steps.len() - 1 {
                    tensor(&[9.0, 9.0, 9.0, 9.0])
                } else {
                    b"corrupted".to_vec()
                };
            }
        })
    }

    /// Runs the plan with byte `byte` of step `step`'s output flipped (its length kept)
    /// and every later step computed from it.
    pub fn run_flipping(&self, input: &[u8], step: usize, byte: usize) -> Trace {
        self.run_with(input, |i, out| {
            if i == step {
                out[byte] ^= 0x5a;
            }
        })
    }

    fn run_with(&self, input: &[u8], mut tamper: impl FnMut(usize, &mut Vec<u8>)) -> Trace {
        let mut outputs: Vec<Vec<u8>> = Vec::new();
        for i in 0..self.steps.len() {
            let ops: Vec<Vec<u8>> = self.steps[i]
                .reads
                .iter()
                .map(|r| match *r {
                    Read::Input => input.to_vec(),
                    Read::Step { index: j, .. } => outputs[j as usize].clone(),
                    Read::Weight(w) => self.weights[w as usize].clone(),
                    Read::Output => unimplemented!("the fixtures' plans do not read the output"),
                })
                .collect();
            let refs: Vec<&[u8]> = ops.iter().map(|o| o.as_slice()).collect();
            let mut out = TestReferee::evaluate(&self.steps[i].op, &refs)
                .unwrap_or_else(|_| b"unrefereeable".to_vec());
            tamper(i, &mut out);
            outputs.push(out);
        }
        Trace::new(outputs)
    }

    /// The path of step `i` in the plan root.
    pub fn step_path(&self, i: usize) -> Vec<Hash> {
        merkle::proof(&self.step_leaves(), i).unwrap()
    }

    /// The element proof of chunk `chunk` of step `i`'s output, with earlier outputs
    /// from `trace` (the ranges are what the test referee names).
    pub fn element_proof(&self, _input: &[u8], trace: &Trace, i: usize, chunk: u32) -> Vec<u8> {
        let step = &self.steps[i];
        let reads = TestReferee::element_reads(&step.op, step.output_bytes, chunk).unwrap();
        ElementProof {
            step: step.clone(),
            step_path: merkle::proof(&self.step_leaves(), i).unwrap(),
            operands: reads
                .iter()
                .map(|r| match step.reads[r.operand as usize] {
                    Read::Input => ElementOperand::Input,
                    Read::Step { index: j, .. } => {
                        let data = &trace.outputs[j as usize];
                        ElementOperand::Tensor {
                            len: data.len() as u32,
                            chunk_root: chunk_root(data),
                            path: merkle::proof(&trace.leaves, j as usize).unwrap(),
                            range: ChunkRange::of(data, r.start, r.len).unwrap(),
                        }
                    }
                    Read::Weight(_) | Read::Output => {
                        unimplemented!("the wide plan's element steps read steps")
                    }
                })
                .collect(),
        }
        .encode()
    }

    /// The one-step proof of step `i`, with earlier outputs from `trace`.
    pub fn proof(&self, input: &[u8], trace: &Trace, i: usize) -> Vec<u8> {
        let weight_leaves: Vec<Hash> = self.weights.iter().map(|w| tensor_leaf(w)).collect();
        StepProof {
            step: self.steps[i].clone(),
            step_path: merkle::proof(&self.step_leaves(), i).unwrap(),
            operands: self.steps[i]
                .reads
                .iter()
                .map(|r| match *r {
                    Read::Input => Operand {
                        data: input.to_vec(),
                        path: vec![],
                    },
                    Read::Step { index: j, .. } => Operand {
                        data: trace.outputs[j as usize].clone(),
                        path: merkle::proof(&trace.leaves, j as usize).unwrap(),
                    },
                    Read::Weight(w) => Operand {
                        data: self.weights[w as usize].clone(),
                        path: merkle::proof(&weight_leaves, w as usize).unwrap(),
                    },
                    Read::Output => unimplemented!("the fixtures' plans do not read the output"),
                })
                .collect(),
        }
        .encode()
    }
}

pub struct Trace {
    pub outputs: Vec<Vec<u8>>,
    pub leaves: Vec<Hash>,
}

impl Trace {
    pub fn new(outputs: Vec<Vec<u8>>) -> Trace {
        let leaves = outputs.iter().map(|o| tensor_leaf(o)).collect();
        Trace { outputs, leaves }
    }
    pub fn commitment(&self) -> TraceCommitment {
        self.tree().commitment()
    }
    pub fn output(&self) -> Vec<u8> {
        self.outputs.last().unwrap().clone()
    }
    pub fn output_path(&self) -> crate::game::PathOf {
        merkle::proof(&self.leaves, self.leaves.len() - 1)
            .unwrap()
            .try_into()
            .unwrap()
    }
    fn tree(&self) -> TraceTree {
        TraceTree::from_outputs(&self.outputs)
    }
    pub fn node(&self, at: Position) -> Hash {
        self.tree().node(at).unwrap()
    }
}

impl Trace {
    /// The children of the node at `at`, as its owner reveals them.
    pub fn children(&self, at: Position) -> ([u8; 32], [u8; 32]) {
        self.tree().children(at).unwrap()
    }

    /// The chunk root of step `i`'s output (what `reveal_output` carries).
    pub fn chunk_root(&self, i: usize) -> Hash {
        chunk_root(&self.outputs[i])
    }

    /// The children of the node at `at` of step `i`'s chunk tree.
    pub fn chunk_children(&self, i: usize, at: Position) -> ([u8; 32], [u8; 32]) {
        TraceTree::of_chunks(&self.outputs[i]).children(at).unwrap()
    }
}
