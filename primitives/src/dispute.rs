//! The vocabulary of the bisection game that settles a disputed result: what an executor
//! commits to ([`TraceCommitment`]), what governance registers about a model so that one
//! step of it can be refereed ([`ModelCommitments`]), where a game stands in the two
//! parties' trace trees ([`Position`]), and the one-step proof ([`StepProof`]) with the
//! checks that bind its operands to commitments ([`StepProof::open`]). A plan step
//! ([`PlanStep`]) fixes both what it computes and where each operand comes from, so a
//! prover chooses nothing but bytes that must match their commitments.
//!
//! A model's plan is a list of `steps` steps in a canonical order. Running it on an input
//! yields one tensor per step; the trace is the list of their tensor leaves
//! (`tensor_tree::tensor_leaf(bytes)`: a commitment that opens chunk by chunk), and the
//! last step's bytes are the canonical output payload,
//! so a trace commits to the output it ends in. Step `i` reads only the request's input,
//! registered weight tensors and the outputs of steps before `i`.
//!
//! Two traces of the same length that differ have a *leftmost* differing leaf `i`; the
//! game finds it by walking down both trees at once (each round both parties reveal the
//! two children of their current node and the walk goes left whenever the left children
//! differ). Every leaf before `i` is then the same in both traces, so whoever computed
//! step `i` correctly from those shared operands is right, and the runtime can check
//! that by re-executing that one step.
//!
//! What this module must not do: evaluate a step (that is the referee's, which shares the
//! engine's kernels) or know about accounts and funds (that is the pallet's).

use crate::{
    merkle::{self, Hash},
    tensor_tree::{tensor_leaf, tensor_leaf_of, ChunkRange},
    H256,
};
use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// What an executor (or a challenger) commits to with an output: the Merkle root over its
/// trace's leaves and how many leaves there are.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct TraceCommitment {
    pub root: H256,
    pub leaves: u32,
}

/// What governance registers about a model so that its disputes can be refereed: a
/// Merkle root over its plan's step descriptors (leaf `i` = `merkle::leaf(step i)`) and
/// one over its weight tensors (leaf `w` = `tensor_leaf(canonical bytes of tensor w)`).
/// Anyone can recompute both from the model's files with the engine.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct ModelCommitments {
    pub plan_root: H256,
    /// Steps in the plan: every trace of this model has exactly this many leaves.
    pub steps: u32,
    pub weights_root: H256,
    /// Weight tensors under `weights_root`.
    pub weights: u32,
}

/// A node of a trace tree of `count` leaves as built by [`merkle::root`]: the node at
/// `level` (0 = leaf) whose leaves start at `start` (a multiple of `2^level`). It covers
/// leaves `start .. min(start + 2^level, count)`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct Position {
    pub start: u32,
    pub level: u8,
}

impl Position {
    /// The root of a tree of `count` (≥ 1) leaves, as a node with two children (or a leaf).
    pub fn root(count: u32) -> Position {
        let level = (32 - count.saturating_sub(1).leading_zeros()) as u8;
        Position { start: 0, level }.settle(count)
    }

    /// Whether this is a leaf: the game's walk has ended at step `start`.
    pub fn is_leaf(&self) -> bool {
        self.level == 0
    }

    fn half(&self) -> u64 {
        1u64 << (self.level - 1)
    }

    /// A node without a right child has its left child's hash (the odd node carried up),
    /// so the walk goes down past it without a move.
    fn settle(mut self, count: u32) -> Position {
        while self.level > 0 && u64::from(self.start) + self.half() >= u64::from(count) {
            self.level -= 1;
        }
        self
    }

    /// The two children of an inner node (settled), or `None` for a leaf.
    pub fn children(&self, count: u32) -> Option<(Position, Position)> {
        if self.is_leaf() {
            return None;
        }
        let level = self.level - 1;
        let right = u32::try_from(u64::from(self.start) + self.half()).ok()?;
        Some((
            Position {
                start: self.start,
                level,
            }
            .settle(count),
            Position {
                start: right,
                level,
            }
            .settle(count),
        ))
    }

    /// How many rounds the walk from the root of a `count`-leaf tree takes at most.
    pub fn max_rounds(count: u32) -> u32 {
        u32::from(Position::root(count).level)
    }
}

/// One round of the walk: both parties revealed the children of the node they stood on.
/// Returns the next position and the two parties' hashes there, or `None` if the left
/// children agree and the right ones do too (impossible when the parents differ and both
/// reveals were checked against them).
pub fn descend(
    at: Position,
    count: u32,
    executor: (Hash, Hash),
    challenger: (Hash, Hash),
) -> Option<(Position, Hash, Hash)> {
    let (left, right) = at.children(count)?;
    if executor.0 != challenger.0 {
        Some((left, executor.0, challenger.0))
    } else if executor.1 != challenger.1 {
        Some((right, executor.1, challenger.1))
    } else {
        None
    }
}

/// Whether `left` and `right` are the children of `parent`.
pub fn reveals(parent: &Hash, left: &Hash, right: &Hash) -> bool {
    merkle::node(left, right) == *parent
}

/// Where a step reads one operand from: fixed by the plan, so no prover can choose it.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum Read {
    /// The request's input payload, as posted on chain.
    Input,
    /// The output of earlier step `index`, which is `bytes` long in every honest run (the
    /// plan fixes it, so agreed junk of another length can never reach the referee).
    Step { index: u32, bytes: u32 },
    /// A registered weight tensor.
    Weight(u32),
    /// The result's output payload as the executor posted it: what a generation's
    /// teacher-forced plan is computed over (docs/LLM.md). Read whole only.
    Output,
}

/// One step of a plan as committed: what the referee computes (`op`, in its own step
/// language) and where each operand comes from. Leaf `i` of the plan root is
/// `merkle::leaf(step_i.encode())`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct PlanStep {
    pub op: Vec<u8>,
    pub reads: Vec<Read>,
    /// The length of the step's output in every honest run (what its tensor leaf commits
    /// to, and what the element-level walk over its chunks counts).
    pub output_bytes: u32,
}

/// One operand of a refereed step: its bytes and, for a step output or a weight, the
/// Merkle path that proves them (empty for the input).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct Operand {
    pub data: Vec<u8>,
    pub path: Vec<Hash>,
}

/// Everything the runtime needs to re-execute step `index` of a disputed run: the plan
/// step with its proof against the model's plan root, and one operand per read.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct StepProof {
    pub step: PlanStep,
    pub step_path: Vec<Hash>,
    pub operands: Vec<Operand>,
}

/// Why a step proof does not open.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum ProofError {
    /// The plan step is not step `index` of the registered plan.
    BadStep,
    /// Not one operand per read of the step.
    OperandCount,
    /// An operand's bytes are not what its read commits to.
    BadOperand { operand: u32 },
    /// The plan's read cannot be satisfied: it names the refereed step or a later one,
    /// or a weight the root does not hold (a plan no honest engine makes: the step cannot
    /// be refereed).
    UnsatisfiableRead { operand: u32 },
}

impl StepProof {
    /// Checks that `step` is step `index` of the model's plan and that each operand is
    /// what the step's read commits to: the request's `input`, a leaf before `index` of
    /// `trace`, or a registered weight. On success returns the step's op and the
    /// operands' bytes, in order; what the op computes from them is the referee's to say.
    pub fn open(
        &self,
        model: &ModelCommitments,
        trace: &TraceCommitment,
        index: u32,
        input: &[u8],
    ) -> Result<(&[u8], Vec<&[u8]>), ProofError> {
        self.open_with_output(model, trace, index, input, &[])
    }

    /// [`Self::open`] for a result whose posted output is `output` (what a
    /// `Read::Output` operand must be).
    pub fn open_with_output(
        &self,
        model: &ModelCommitments,
        trace: &TraceCommitment,
        index: u32,
        input: &[u8],
        output: &[u8],
    ) -> Result<(&[u8], Vec<&[u8]>), ProofError> {
        if !is_plan_step(model, &self.step, index, &self.step_path) || trace.leaves != model.steps {
            return Err(ProofError::BadStep);
        }
        if self.operands.len() != self.step.reads.len() {
            return Err(ProofError::OperandCount);
        }
        let mut operands = Vec::with_capacity(self.operands.len());
        for (n, (operand, read)) in self.operands.iter().zip(&self.step.reads).enumerate() {
            let n = n as u32;
            let ok = match *read {
                Read::Input => operand.data == input && operand.path.is_empty(),
                Read::Output => operand.data == output && operand.path.is_empty(),
                Read::Step { index: j, bytes } => {
                    if j >= index {
                        return Err(ProofError::UnsatisfiableRead { operand: n });
                    }
                    operand.data.len() == bytes as usize
                        && merkle::verify(
                            &trace.root.0,
                            &tensor_leaf(&operand.data),
                            j as usize,
                            trace.leaves as usize,
                            &operand.path,
                        )
                }
                Read::Weight(w) if w >= model.weights => {
                    return Err(ProofError::UnsatisfiableRead { operand: n });
                }
                Read::Weight(w) => merkle::verify(
                    &model.weights_root.0,
                    &tensor_leaf(&operand.data),
                    w as usize,
                    model.weights as usize,
                    &operand.path,
                ),
            };
            if !ok {
                return Err(ProofError::BadOperand { operand: n });
            }
            operands.push(operand.data.as_slice());
        }
        Ok((&self.step.op, operands))
    }
}

/// A byte range of one of a step's operands: what one chunk of its output is computed
/// from (the referee says which, [`StepReferee::element_reads`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct ElementRead {
    /// Which of the step's reads.
    pub operand: u32,
    pub start: u32,
    pub len: u32,
}

/// One operand range of a refereed chunk, as a prover posts it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub enum ElementOperand {
    /// A range of the request's input (the runtime has it).
    Input,
    /// A range of a step output or a weight: the tensor's length and chunk root, the path
    /// of its tensor leaf in the trace or the weights root, and the covering chunks.
    Tensor {
        len: u32,
        chunk_root: Hash,
        path: Vec<Hash>,
        range: ChunkRange,
    },
}

/// Everything the runtime needs to recompute one chunk of step `index`'s output: the
/// plan step with its proof, and one operand per range the referee names.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct ElementProof {
    pub step: PlanStep,
    pub step_path: Vec<Hash>,
    pub operands: Vec<ElementOperand>,
}

/// Whether `step` is step `index` of the model's plan.
pub fn is_plan_step(model: &ModelCommitments, step: &PlanStep, index: u32, path: &[Hash]) -> bool {
    merkle::verify(
        &model.plan_root.0,
        &merkle::leaf(&step.encode()),
        index as usize,
        model.steps as usize,
        path,
    )
}

impl ElementProof {
    /// Checks that `step` is step `index` of the plan and that each operand is the range
    /// `reads` names of what the step's read commits to (as [`StepProof::open`] does for
    /// whole operands), then the ranges `indirect` names from the bytes of those (a
    /// gather: the embedding row a token id selects; `None` if the opened bytes select
    /// nothing valid). The proof holds one operand per read of both lists, in order. On
    /// success returns the step's op and the ranges' bytes, in order.
    pub fn open<'a>(
        &'a self,
        model: &ModelCommitments,
        trace: &TraceCommitment,
        index: u32,
        input: &'a [u8],
        reads: &[ElementRead],
        indirect: impl FnOnce(&[&[u8]]) -> Option<Vec<ElementRead>>,
    ) -> Result<(&'a [u8], Vec<&'a [u8]>), ProofError> {
        if !is_plan_step(model, &self.step, index, &self.step_path) || trace.leaves != model.steps {
            return Err(ProofError::BadStep);
        }
        if self.operands.len() < reads.len() {
            return Err(ProofError::OperandCount);
        }
        let mut slices = Vec::with_capacity(self.operands.len());
        for (n, (operand, read)) in self.operands.iter().zip(reads).enumerate() {
            slices.push(self.open_operand(model, trace, index, input, n as u32, operand, read)?);
        }
        let first = reads.len();
        let more = indirect(&slices).ok_or(ProofError::UnsatisfiableRead {
            operand: first as u32,
        })?;
        if self.operands.len() != first + more.len() {
            return Err(ProofError::OperandCount);
        }
        for (n, (operand, read)) in self.operands[first..].iter().zip(&more).enumerate() {
            let n = (first + n) as u32;
            slices.push(self.open_operand(model, trace, index, input, n, operand, read)?);
        }
        Ok((&self.step.op, slices))
    }

    /// Operand `n` of the proof, checked to be range `read` of what the step reads.
    #[allow(clippy::too_many_arguments)]
    fn open_operand<'a>(
        &'a self,
        model: &ModelCommitments,
        trace: &TraceCommitment,
        index: u32,
        input: &'a [u8],
        n: u32,
        operand: &'a ElementOperand,
        read: &ElementRead,
    ) -> Result<&'a [u8], ProofError> {
        let bad = ProofError::BadOperand { operand: n };
        let source = *self
            .step
            .reads
            .get(read.operand as usize)
            .ok_or(ProofError::UnsatisfiableRead { operand: n })?;
        // A tensor operand: its leaf (length and chunk root) at `at` of the tree with
        // `root` over `count` leaves, and the read's range of it.
        let tensor = |root: &Hash, at: u32, count: u32| -> Result<&'a [u8], ProofError> {
            let ElementOperand::Tensor {
                len,
                chunk_root,
                path,
                range,
            } = operand
            else {
                return Err(bad);
            };
            let leaf = tensor_leaf_of(*len, chunk_root);
            merkle::verify(root, &leaf, at as usize, count as usize, path)
                .then(|| range.open(chunk_root, *len, read.start, read.len))
                .flatten()
                .ok_or(bad)
        };
        let slice = match (source, operand) {
            (Read::Input, ElementOperand::Input) => {
                let end = read.start.checked_add(read.len).ok_or(bad)?;
                input.get(read.start as usize..end as usize).ok_or(bad)?
            }
            (Read::Step { index: j, .. }, _) if j >= index => {
                return Err(ProofError::UnsatisfiableRead { operand: n });
            }
            // Steps that read the posted output are refereed whole.
            (Read::Output, _) => return Err(ProofError::UnsatisfiableRead { operand: n }),
            (Read::Step { index: j, bytes }, ElementOperand::Tensor { len, .. }) => {
                if *len != bytes {
                    return Err(bad);
                }
                tensor(&trace.root.0, j, trace.leaves)?
            }
            (Read::Weight(w), _) if w >= model.weights => {
                return Err(ProofError::UnsatisfiableRead { operand: n });
            }
            (Read::Weight(w), ElementOperand::Tensor { .. }) => {
                tensor(&model.weights_root.0, w, model.weights)?
            }
            _ => return Err(bad),
        };
        Ok(slice)
    }
}

/// Why a referee could not evaluate a step.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum RefereeError {
    /// The step descriptor is not one the referee knows.
    UnknownStep,
    /// The operands do not fit the step (count, length or shape).
    OperandMismatch,
    /// The step is larger than the runtime re-executes in one block.
    TooLarge,
}

/// How the referee settles a disputed step, known from the step and its output length
/// alone (what the runtime can check before any operand is posted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub enum RefereePath {
    /// Proven whole (`prove_step`): within the caps, or a step the referee only
    /// evaluates whole (which then fails as it fails).
    Whole,
    /// Over the caps whole, and every chunk of its output within them: only the
    /// element-level walk settles it.
    Elements,
    /// Over the caps whole and by chunk: a plan that should not be registered.
    Neither,
}

/// Re-executes one step of a plan: the runtime's referee. Implementations compute with
/// the engine's scalar kernels, so the bits are the ones every honest executor produced.
pub trait StepReferee {
    /// The output bytes of `step` applied to `operands`.
    fn evaluate(step: &[u8], operands: &[&[u8]]) -> Result<Vec<u8>, RefereeError>;

    /// The costliest step the referee evaluates and operands for it: what the
    /// `prove_step` benchmark re-executes.
    fn costliest_step() -> (Vec<u8>, Vec<Vec<u8>>);

    /// Which path settles `step` (with an output of `output_bytes` bytes).
    fn path(step: &[u8], output_bytes: u32) -> RefereePath;

    /// The operand ranges chunk `chunk` (of `tensor_tree::CHUNK_BYTES` bytes) of the
    /// output of `step` (`output_bytes` long) is computed from; `UnknownStep` for a step
    /// without an element path (it must be proven whole), `TooLarge` beyond the caps.
    fn element_reads(
        step: &[u8],
        output_bytes: u32,
        chunk: u32,
    ) -> Result<Vec<ElementRead>, RefereeError>;

    /// The ranges chunk `chunk` reads that depend on the values of the first ones
    /// (`direct`, the bytes of the ranges `element_reads` named): the row of a table a
    /// token id selects. Empty for a step whose reads are fixed by its shape; `None`
    /// where the values select nothing valid.
    fn indirect_reads(
        _step: &[u8],
        _output_bytes: u32,
        _chunk: u32,
        _direct: &[&[u8]],
    ) -> Option<Vec<ElementRead>> {
        Some(Vec::new())
    }

    /// The bytes of that chunk, from the ranges `element_reads` and then
    /// `indirect_reads` named, in their order.
    fn evaluate_chunk(
        step: &[u8],
        output_bytes: u32,
        chunk: u32,
        slices: &[&[u8]],
    ) -> Result<Vec<u8>, RefereeError>;

    /// The costliest chunk the referee evaluates: step, output length, chunk and the
    /// operand tensors its reads range over (what the `prove_element` benchmark runs).
    fn costliest_chunk() -> (Vec<u8>, u32, u32, Vec<Vec<u8>>);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::merkle::{leaf, proof, root};

    fn leaves(n: u32, tag: u8) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf(&[tag, i as u8, (i >> 8) as u8]))
            .collect()
    }

    /// The hash of the node at `at` in the tree over `ls`, computed from scratch.
    fn node_hash(ls: &[Hash], at: Position) -> Hash {
        let end = (at.start as usize + (1usize << at.level)).min(ls.len());
        root(&ls[at.start as usize..end])
    }

    /// Plays the walk between two leaf lists and returns the leaf it ends at.
    fn walk(a: &[Hash], b: &[Hash]) -> (u32, u32) {
        let count = a.len() as u32;
        let mut at = Position::root(count);
        let (mut ha, mut hb) = (root(a), root(b));
        let mut rounds = 0;
        while !at.is_leaf() {
            let (l, r) = at.children(count).unwrap();
            let ea = (node_hash(a, l), node_hash(a, r));
            let eb = (node_hash(b, l), node_hash(b, r));
            assert!(reveals(&ha, &ea.0, &ea.1), "executor's reveal checks");
            assert!(reveals(&hb, &eb.0, &eb.1), "challenger's reveal checks");
            let (next, x, y) = descend(at, count, ea, eb).expect("parents differ");
            assert_ne!(x, y);
            (at, ha, hb) = (next, x, y);
            rounds += 1;
        }
        assert_eq!(ha, a[at.start as usize]);
        assert_eq!(hb, b[at.start as usize]);
        (at.start, rounds)
    }

    #[test]
    fn the_walk_finds_the_leftmost_differing_leaf_for_every_size() {
        for count in 1..=40u32 {
            let honest = leaves(count, 0);
            // Every leftmost difference, with later leaves differing too or not.
            for first in 0..count {
                for tail_differs in [false, true] {
                    let mut other = honest.clone();
                    other[first as usize] = leaf(b"wrong");
                    if tail_differs {
                        for l in other.iter_mut().skip(first as usize + 1) {
                            *l = leaf(&[l[0], 7]);
                        }
                    }
                    let (found, rounds) = walk(&honest, &other);
                    assert_eq!(found, first, "count {count}");
                    assert!(rounds <= Position::max_rounds(count));
                }
            }
        }
    }

    #[test]
    fn a_reveal_that_is_not_the_parent_fails() {
        let ls = leaves(5, 1);
        let at = Position::root(5);
        let (l, r) = at.children(5).unwrap();
        let (hl, hr) = (node_hash(&ls, l), node_hash(&ls, r));
        assert!(reveals(&root(&ls), &hl, &hr));
        assert!(!reveals(&root(&ls), &hr, &hl));
        assert!(!reveals(&root(&ls), &hl, &leaf(b"x")));
    }

    #[test]
    fn a_posted_output_read_opens_only_with_that_output() {
        let steps = [PlanStep {
            op: b"check".to_vec(),
            reads: vec![Read::Input, Read::Output],
            output_bytes: 2,
        }];
        let step_leaves: Vec<Hash> = steps.iter().map(|s| leaf(&s.encode())).collect();
        let model = ModelCommitments {
            plan_root: H256(root(&step_leaves)),
            steps: 1,
            weights_root: H256(root(&[])),
            weights: 0,
        };
        let trace = TraceCommitment {
            root: H256(tensor_leaf(b"ok")),
            leaves: 1,
        };
        let proof = |output: &[u8]| StepProof {
            step: steps[0].clone(),
            step_path: proof(&step_leaves, 0).unwrap(),
            operands: vec![
                Operand {
                    data: b"in".to_vec(),
                    path: vec![],
                },
                Operand {
                    data: output.to_vec(),
                    path: vec![],
                },
            ],
        };
        let posted = proof(b"posted");
        let (_, ops) = posted
            .open_with_output(&model, &trace, 0, b"in", b"posted")
            .expect("opens");
        assert_eq!(ops, vec![&b"in"[..], &b"posted"[..]]);
        assert_eq!(
            proof(b"forged").open_with_output(&model, &trace, 0, b"in", b"posted"),
            Err(ProofError::BadOperand { operand: 1 })
        );
        // Without the posted output (`open`), only an empty one matches.
        assert_eq!(
            proof(b"posted").open(&model, &trace, 0, b"in"),
            Err(ProofError::BadOperand { operand: 1 })
        );
    }

    #[test]
    fn a_step_proof_opens_only_against_its_commitments() {
        let reads = vec![
            Read::Input,
            Read::Step { index: 2, bytes: 2 },
            Read::Weight(1),
        ];
        let steps: Vec<PlanStep> = (0..6u8)
            .map(|i| PlanStep {
                op: vec![b's', i],
                reads: if i == 4 { reads.clone() } else { vec![] },
                output_bytes: 2,
            })
            .collect();
        let step_leaves: Vec<Hash> = steps.iter().map(|s| leaf(&s.encode())).collect();
        let weights: Vec<Vec<u8>> = (0..3u8).map(|i| vec![b'w', i, i]).collect();
        let weight_leaves: Vec<Hash> = weights.iter().map(|w| tensor_leaf(w)).collect();
        let outputs: Vec<Vec<u8>> = (0..6u8).map(|i| vec![b'o', i]).collect();
        let trace_leaves: Vec<Hash> = outputs.iter().map(|o| tensor_leaf(o)).collect();
        let model = ModelCommitments {
            plan_root: H256(root(&step_leaves)),
            steps: 6,
            weights_root: H256(root(&weight_leaves)),
            weights: 3,
        };
        let trace = TraceCommitment {
            root: H256(root(&trace_leaves)),
            leaves: 6,
        };
        let input = b"input".to_vec();
        let good = StepProof {
            step: steps[4].clone(),
            step_path: proof(&step_leaves, 4).unwrap(),
            operands: vec![
                Operand {
                    data: input.clone(),
                    path: vec![],
                },
                Operand {
                    data: outputs[2].clone(),
                    path: proof(&trace_leaves, 2).unwrap(),
                },
                Operand {
                    data: weights[1].clone(),
                    path: proof(&weight_leaves, 1).unwrap(),
                },
            ],
        };
        let (op, ops) = good.open(&model, &trace, 4, &input).expect("opens");
        assert_eq!(op, &steps[4].op[..]);
        assert_eq!(ops, vec![&input[..], &outputs[2][..], &weights[1][..]]);

        // The step is not step 3; a trace of another length; a tampered operand of each
        // kind; an operand missing.
        assert_eq!(
            good.open(&model, &trace, 3, &input),
            Err(ProofError::BadStep)
        );
        let short = TraceCommitment { leaves: 5, ..trace };
        assert_eq!(
            good.open(&model, &short, 4, &input),
            Err(ProofError::BadStep)
        );
        for n in 0..3 {
            let mut bad = good.clone();
            bad.operands[n].data.push(0);
            assert_eq!(
                bad.open(&model, &trace, 4, &input),
                Err(ProofError::BadOperand { operand: n as u32 })
            );
        }
        // A step output of another length than the plan fixes does not open, even when
        // the trace commits to it (junk two colluding parties agree on).
        let mut junk_outputs = outputs.clone();
        junk_outputs[2] = vec![1, 2, 3];
        let junk_leaves: Vec<Hash> = junk_outputs.iter().map(|o| tensor_leaf(o)).collect();
        let junk_trace = TraceCommitment {
            root: H256(root(&junk_leaves)),
            leaves: 6,
        };
        let mut junk = good.clone();
        junk.operands[1] = Operand {
            data: junk_outputs[2].clone(),
            path: proof(&junk_leaves, 2).unwrap(),
        };
        assert_eq!(
            junk.open(&model, &junk_trace, 4, &input),
            Err(ProofError::BadOperand { operand: 1 })
        );
        // A weight the root does not hold is a plan no engine makes.
        let mut far = good.clone();
        far.step.reads[2] = Read::Weight(3);
        let far_leaves: Vec<Hash> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i == 4 {
                    leaf(&far.step.encode())
                } else {
                    leaf(&s.encode())
                }
            })
            .collect();
        far.step_path = proof(&far_leaves, 4).unwrap();
        let far_model = ModelCommitments {
            plan_root: H256(root(&far_leaves)),
            ..model
        };
        assert_eq!(
            far.open(&far_model, &trace, 4, &input),
            Err(ProofError::UnsatisfiableRead { operand: 2 })
        );
        let mut fewer = good.clone();
        fewer.operands.pop();
        assert_eq!(
            fewer.open(&model, &trace, 4, &input),
            Err(ProofError::OperandCount)
        );
        // The prover cannot choose other reads: another operand list is another step,
        // which the plan root does not hold.
        let mut other_reads = good.clone();
        other_reads.step.reads[1] = Read::Step { index: 1, bytes: 2 };
        other_reads.operands[1] = Operand {
            data: outputs[1].clone(),
            path: proof(&trace_leaves, 1).unwrap(),
        };
        assert_eq!(
            other_reads.open(&model, &trace, 4, &input),
            Err(ProofError::BadStep)
        );
        // A plan that reads its own step cannot be refereed.
        let selfish = PlanStep {
            op: vec![b'x'],
            reads: vec![Read::Step { index: 0, bytes: 2 }],
            output_bytes: 2,
        };
        let one = ModelCommitments {
            plan_root: H256(root(&[leaf(&selfish.encode())])),
            steps: 1,
            ..model
        };
        let trace1 = TraceCommitment {
            root: H256(root(&trace_leaves[..1])),
            leaves: 1,
        };
        let p = StepProof {
            step: selfish,
            step_path: vec![],
            operands: vec![Operand {
                data: outputs[0].clone(),
                path: vec![],
            }],
        };
        assert_eq!(
            p.open(&one, &trace1, 0, &input),
            Err(ProofError::UnsatisfiableRead { operand: 0 })
        );
    }

    #[test]
    fn an_element_proof_opens_ranges_of_committed_tensors_only() {
        use crate::tensor_tree::{chunk_root, ChunkRange};
        let outputs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 70]).collect();
        let weights: Vec<Vec<u8>> = (0..2u8).map(|i| vec![100 + i; 90]).collect();
        let step = PlanStep {
            op: vec![b'e'],
            reads: vec![
                Read::Input,
                Read::Step {
                    index: 1,
                    bytes: 70,
                },
                Read::Weight(1),
            ],
            output_bytes: 70,
        };
        let mut steps: Vec<PlanStep> = (0..4u8)
            .map(|i| PlanStep {
                op: vec![b's', i],
                reads: vec![],
                output_bytes: 70,
            })
            .collect();
        steps[3] = step.clone();
        let step_leaves: Vec<Hash> = steps.iter().map(|s| leaf(&s.encode())).collect();
        let trace_leaves: Vec<Hash> = outputs.iter().map(|o| tensor_leaf(o)).collect();
        let weight_leaves: Vec<Hash> = weights.iter().map(|w| tensor_leaf(w)).collect();
        let model = ModelCommitments {
            plan_root: H256(root(&step_leaves)),
            steps: 4,
            weights_root: H256(root(&weight_leaves)),
            weights: 2,
        };
        let trace = TraceCommitment {
            root: H256(root(&trace_leaves)),
            leaves: 4,
        };
        let input = b"the request input".to_vec();
        let reads = [
            ElementRead {
                operand: 0,
                start: 4,
                len: 7,
            },
            ElementRead {
                operand: 1,
                start: 30,
                len: 8,
            },
            ElementRead {
                operand: 2,
                start: 64,
                len: 26,
            },
        ];
        let tensor =
            |data: &[u8], leaves: &[Hash], at: usize, r: &ElementRead| ElementOperand::Tensor {
                len: data.len() as u32,
                chunk_root: chunk_root(data),
                path: proof(leaves, at).unwrap(),
                range: ChunkRange::of(data, r.start, r.len).unwrap(),
            };
        let good = ElementProof {
            step: step.clone(),
            step_path: proof(&step_leaves, 3).unwrap(),
            operands: vec![
                ElementOperand::Input,
                tensor(&outputs[1], &trace_leaves, 1, &reads[1]),
                tensor(&weights[1], &weight_leaves, 1, &reads[2]),
            ],
        };
        let (op, slices) = good
            .open(&model, &trace, 3, &input, &reads, no_more)
            .unwrap();
        assert_eq!(op, b"e");
        assert_eq!(
            slices,
            vec![&input[4..11], &outputs[1][30..38], &weights[1][64..90]]
        );
        // Another step index, fewer operands, another range than the referee named, a
        // range of another tensor, an input range past its end: none opens.
        assert_eq!(
            good.open(&model, &trace, 2, &input, &reads, no_more),
            Err(ProofError::BadStep)
        );
        assert_eq!(
            good.open(&model, &trace, 3, &input, &reads[..2], no_more),
            Err(ProofError::OperandCount)
        );
        let mut shifted = reads;
        shifted[1].start = 40;
        assert_eq!(
            good.open(&model, &trace, 3, &input, &shifted, no_more),
            Err(ProofError::BadOperand { operand: 1 })
        );
        let mut swapped = good.clone();
        swapped.operands[1] = tensor(&outputs[0], &trace_leaves, 0, &reads[1]);
        assert_eq!(
            swapped.open(&model, &trace, 3, &input, &reads, no_more),
            Err(ProofError::BadOperand { operand: 1 })
        );
        let mut past = reads;
        past[0].len = 100;
        assert_eq!(
            good.open(&model, &trace, 3, &input, &past, no_more),
            Err(ProofError::BadOperand { operand: 0 })
        );
        // A step output of another length than the plan fixes does not open.
        let mut junk_outputs = outputs.clone();
        junk_outputs[1] = vec![1; 64];
        let junk_leaves: Vec<Hash> = junk_outputs.iter().map(|o| tensor_leaf(o)).collect();
        let junk_trace = TraceCommitment {
            root: H256(root(&junk_leaves)),
            leaves: 4,
        };
        let mut junk = good.clone();
        junk.operands[1] = tensor(&junk_outputs[1], &junk_leaves, 1, &reads[1]);
        assert_eq!(
            junk.open(&model, &junk_trace, 3, &input, &reads, no_more),
            Err(ProofError::BadOperand { operand: 1 })
        );

        // A gather: the first range's first byte (of the input range) selects where in the weight
        // the second read starts (`r`, 114, selects 16). The proof carries it after the direct ones.
        let gather = |direct: &[&[u8]]| {
            let at = u32::from(*direct.first()?.first()?) - 98;
            Some(vec![ElementRead {
                operand: 2,
                start: at,
                len: 4,
            }])
        };
        let direct = &reads[..1];
        let mut gathered = good.clone();
        gathered.operands = vec![
            ElementOperand::Input,
            tensor(
                &weights[1],
                &weight_leaves,
                1,
                &ElementRead {
                    operand: 2,
                    start: 16,
                    len: 4,
                },
            ),
        ];
        let (_, slices) = gathered
            .open(&model, &trace, 3, &input, direct, gather)
            .unwrap();
        assert_eq!(slices, vec![&input[4..11], &weights[1][16..20]]);
        // The range the data selects, not one in another chunk; a selection the data cannot make
        // (`None`) is unsatisfiable; a missing gathered operand is a count mismatch.
        let mut elsewhere = gathered.clone();
        elsewhere.operands[1] = tensor(
            &weights[1],
            &weight_leaves,
            1,
            &ElementRead {
                operand: 2,
                start: 64,
                len: 4,
            },
        );
        assert_eq!(
            elsewhere.open(&model, &trace, 3, &input, direct, gather),
            Err(ProofError::BadOperand { operand: 1 })
        );
        assert_eq!(
            gathered.open(&model, &trace, 3, &input, direct, |_| None),
            Err(ProofError::UnsatisfiableRead { operand: 1 })
        );
        gathered.operands.pop();
        assert_eq!(
            gathered.open(&model, &trace, 3, &input, direct, gather),
            Err(ProofError::OperandCount)
        );
    }

    fn no_more(_: &[&[u8]]) -> Option<Vec<ElementRead>> {
        Some(Vec::new())
    }
}
