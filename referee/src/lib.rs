//! # inferchain-referee
//!
//! The referee of the bisection game: given one step of a model's plan (a [`Step`]
//! descriptor, registered under the model's plan root) and its operands (already proven
//! by the inference pallet), it computes the step's output with the scalar reference of
//! `inferchain-kernels`, the same bits every honest executor's SIMD kernels produce.
//!
//! A step's operands and output are f32 tensors as little-endian bytes, except the
//! plan's last step ([`Step::Output`]), whose output is the canonical output payload,
//! and a text model's first ([`Step::WordPiece`], [`wordpiece`]), which reads the input
//! text and the vocabulary and writes u32 token ids. The steps of a transformer encoder
//! are in `encoder.rs`.
//!
//! What it must not do: run a model, allocate beyond its caps ([`MAX_OPERAND_BYTES`],
//! [`MAX_WORK`]) or panic on any input; it runs inside block execution.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod bpe;
mod char_class;
mod decoder;
mod encoder;
mod generation;
mod unicode_tables;
pub mod wordpiece;

use alloc::vec::Vec;
use codec::{Decode, Encode};
use inferchain_kernels::{call::Call, math::CANONICAL_NAN};
use inferchain_primitives::{
    dispute::{ElementRead, RefereeError, RefereePath, StepReferee},
    io::{Payload, Tensor},
    tensor_tree::CHUNK_BYTES,
};
use wordpiece::{Vocab, WordPiece};

/// The most operand bytes one step may read.
pub const MAX_OPERAND_BYTES: usize = 256 * 1024;
/// The most arithmetic one step may do (multiply-adds of a matrix product, elements
/// otherwise; see `Call::work`): what the `prove_step` weight pays for.
pub const MAX_WORK: u64 = 1 << 21;
/// f32 values per chunk of a step's output.
const PER_CHUNK: u32 = (CHUNK_BYTES / 4) as u32;
/// The most elements one step may write (a matrix product's m·n; other steps write at
/// most what they read).
pub const MAX_OUTPUT_ELEMENTS: u64 = 1 << 16;
/// The most multiply-adds one chunk of an element walk may cost: that of
/// `costliest_chunk` (eight output entries of a product with K at the operand cap), which
/// the `prove_element` weight is measured on.
pub const MAX_CHUNK_WORK: u64 = 8 * 7_280;

/// An element-wise operation on two tensors of one length, one IEEE-754 operation each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

/// One step of a plan, as registered (leaf `i` of the plan root is
/// `merkle::leaf(step.encode())`).
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub enum Step {
    /// A kernel call: `template` is a `Call` encoding whose data vectors are empty; the
    /// operands fill them in field order.
    Kernel { template: Vec<u8> },
    /// An element-wise binary operation of operands 0 and 1.
    Binary(Binary),
    /// `x > 0 ? x : +0` element-wise on operand 0 (NaN gives +0, as `f32::max(x, 0)`).
    Relu,
    /// The plan's last step: operand 0 as the one f32 tensor of the output payload.
    Output { shape: Vec<u32> },
    /// Tensor `index` of the request's input payload (operand 0), as its data bytes:
    /// how a plan's first steps read the input.
    InputTensor { index: u32 },
    /// `C = A Bᵀ (+ bias)`: operand 0 is A (`m × k`), operand 1 is B *transposed*
    /// (`n × k`, so that column `j` of B is one contiguous row), operand 2 (if `bias`)
    /// the column bias (`n`). The same bits as the kernels' `Gemm` on B: every element is
    /// one FMA chain along K from +0, then `+ bias`, NaN canonical. Its output opens
    /// element by element: a chunk reads rows of A and of Bᵀ.
    GemmBt { m: u32, n: u32, k: u32, bias: bool },
    /// Canonical BERT tokenization ([`wordpiece`]): operand 0 is the input payload
    /// (text), operand 1 the vocabulary (tokens in id order, each ended by `\n`). Output:
    /// `1 + max_tokens` u32 (little-endian): the id count, then the ids, padded with
    /// `pad`. The sequence length every later step of an encoder plan is padded to.
    WordPiece(WordPiece),
    /// Token embeddings, `tokens × hidden` f32: row `t` is
    /// `(word[id_t] + token_type) + position[t]`, `id_t` read from operand 0 (a
    /// `WordPiece` output), operand 1 the word table (`vocab × hidden`), 2 the position
    /// table (`tokens × hidden`), 3 the token-type row (`hidden`). A chunk reads its id
    /// and then the word-table row it selects.
    Embed { tokens: u32, hidden: u32 },
    /// `batch` products `C_b = A_b B_bᵀ` (A is `batch × m × k`, Bᵀ `batch × n × k`),
    /// each element `GemmBt`'s FMA chain, no bias: attention per head.
    BatchGemmBt { batch: u32, m: u32, n: u32, k: u32 },
    /// Operand 0 (`dims`, row-major) with its axes reordered: output axis `i` is input
    /// axis `perm[i]`. Whole only.
    Permute { dims: Vec<u32>, perm: Vec<u32> },
    /// Per row of operand 0 (`rows × cols`): its first `count` entries divided by
    /// `f32::from_bits(divisor)`, their softmax, then +0 for the rest; `count` from
    /// operand 1 (a `WordPiece` output). Attention over the real tokens only.
    MaskedSoftmax { rows: u32, cols: u32, divisor: u32 },
    /// The kernels' LayerNorm of each row of operand 0 (`rows × cols`), scale operand 1,
    /// bias operand 2, `eps = f32::from_bits(eps)`.
    LayerNormRows { rows: u32, cols: u32, eps: u32 },
    /// Per column of operand 0 (`tokens × hidden`): the kernels' 16-lane sum of its first
    /// `count` entries divided by `count` (operand 1, a `WordPiece` output): mean pooling.
    MeanRows { tokens: u32, hidden: u32 },
    /// `x / sqrt(sum_squares(x))` with the kernels' 16-lane sum of squares.
    L2Normalize,
    /// `rows` rows of a table (operand 1, `hidden` wide) copied exactly, selected by the
    /// u32 ids at words `offset..offset + rows` of operand 0: a language model's token
    /// embeddings. A chunk reads its id and then the table range it selects.
    GatherRows { rows: u32, hidden: u32, offset: u32 },
    /// RMSNorm of each row of operand 0 (`rows × cols`) with weight operand 1:
    /// `y = w * (x * (1 / sqrt(sum_squares(x) / cols + eps)))`, `eps = f32::from_bits`.
    RmsNormRows { rows: u32, cols: u32, eps: u32 },
    /// RoPE on every head of every row of operand 0 (`rows × heads·head_dim`), row `t`
    /// at position `t`, `theta = f32::from_bits(theta)` (`inferchain_kernels::rotary`).
    RopeRows {
        rows: u32,
        heads: u32,
        head_dim: u32,
        theta: u32,
    },
    /// Causal grouped-query attention: queries operand 0 (`rows × heads·head_dim`), keys
    /// 1 and values 2 (`kv_heads × rows × head_dim`); row `t` of query head `h` attends
    /// over rows `0..=t` of key/value head `h / (heads / kv_heads)`, scores scaled by
    /// `f32::from_bits(scale)`.
    CausalAttention {
        rows: u32,
        heads: u32,
        kv_heads: u32,
        head_dim: u32,
        scale: u32,
    },
    /// Per row of operand 0 (`rows × cols`): the index of its largest entry, the lowest on
    /// ties, NaN never largest (u32 little-endian): greedy decoding's choice.
    ArgmaxRows { rows: u32, cols: u32 },
    /// A generation's teacher-forced sequence: operand 0 the request's prompt payload, 1
    /// the claimed output (a generation payload), 2 the tokenizer (`bpe::BpeTables`,
    /// SCALE). Output u32 words: the prompt's token count `c`, the claim's `n`, then the
    /// prompt's canonical ids and the claimed ids (an id outside the model's `vocab` as
    /// 0: `GreedyCheck` compares the claim itself), padded with 0 to `positions` ids.
    TeacherForced { positions: u32, vocab: u32 },
    /// A generation plan's last step: operand 0 the `TeacherForced` words, 1 the
    /// `ArgmaxRows` of every position, 2 the prompt, 3 the claimed output, 4 the
    /// tokenizer; output the claimed payload if it is the greedy generation (stopping
    /// after any of `stop_tokens`), else the witness of its first fault
    /// (`generation::greedy_check`).
    GreedyCheck {
        positions: u32,
        stop_tokens: Vec<u32>,
    },
}

fn floats(bytes: &[u8]) -> Result<Vec<f32>, RefereeError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(RefereeError::OperandMismatch);
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn bytes(values: &[f32]) -> Vec<u8> {
    inferchain_kernels::call::output_bytes(values)
}

/// NaN canonical, as every kernel writes it.
fn canonical(v: f32) -> f32 {
    if v.is_nan() {
        CANONICAL_NAN
    } else {
        v
    }
}

/// One element of a matrix product: the FMA chain of `a` and `b` along K from +0, then
/// `+ bias`, NaN canonical (the definition in `inferchain_kernels::gemm`).
fn gemm_element(a: &[f32], b: &[f32], bias: Option<f32>) -> f32 {
    let acc = a.iter().zip(b).fold(0f32, |acc, (&x, &y)| {
        inferchain_kernels::fma::fma(x, y, acc)
    });
    canonical(match bias {
        Some(b) => acc + b,
        None => acc,
    })
}

fn gemm_bt(
    (m, n, k, has_bias): (u32, u32, u32, bool),
    operands: &[&[u8]],
    capped: bool,
) -> Result<Vec<u8>, RefereeError> {
    let (a, bt, bias) = match (operands, has_bias) {
        ([a, bt], false) => (floats(a)?, floats(bt)?, None),
        ([a, bt, bias], true) => (floats(a)?, floats(bt)?, Some(floats(bias)?)),
        _ => return Err(RefereeError::OperandMismatch),
    };
    let (m, n, k) = (m as usize, n as usize, k as usize);
    let work = (m.max(1) as u64) * (n.max(1) as u64) * (k.max(1) as u64);
    if capped && (work > MAX_WORK || (m as u64) * (n as u64) > MAX_OUTPUT_ELEMENTS) {
        return Err(RefereeError::TooLarge);
    }
    if a.len() != m * k || bt.len() != n * k || bias.as_ref().is_some_and(|b| b.len() != n) {
        return Err(RefereeError::OperandMismatch);
    }
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            out.push(gemm_element(
                &a[i * k..][..k],
                &bt[j * k..][..k],
                bias.as_ref().map(|b| b[j]),
            ));
        }
    }
    Ok(bytes(&out))
}

/// The elements of chunk `chunk` of an output of `output_bytes` bytes (4 per f32).
fn chunk_elements(output_bytes: u32, chunk: u32) -> Result<core::ops::Range<u32>, RefereeError> {
    if !output_bytes.is_multiple_of(4) {
        return Err(RefereeError::OperandMismatch);
    }
    let per = (CHUNK_BYTES / 4) as u32;
    let first = chunk
        .checked_mul(per)
        .ok_or(RefereeError::OperandMismatch)?;
    let end = first.saturating_add(per).min(output_bytes / 4);
    if first >= end {
        return Err(RefereeError::OperandMismatch);
    }
    Ok(first..end)
}

/// What one chunk of a `GemmBt` output reads: its elements, the rows of A they touch
/// (one contiguous range) and the rows of Bᵀ (and bias entries) they use, as at most two
/// ranges (a chunk that wraps from the end of one output row to the start of the next).
struct GemmChunk {
    elements: core::ops::Range<u32>,
    a_rows: core::ops::Range<u32>,
    cols: Vec<core::ops::Range<u32>>,
}

fn gemm_chunk(
    (m, n, k): (u32, u32, u32),
    output_bytes: u32,
    chunk: u32,
) -> Result<GemmChunk, RefereeError> {
    let cells = u64::from(m) * u64::from(n);
    if n == 0 || k == 0 || cells * 4 != u64::from(output_bytes) {
        return Err(RefereeError::OperandMismatch);
    }
    let elements = chunk_elements(output_bytes, chunk)?;
    let (first, last) = (elements.start, elements.end - 1);
    let a_rows = first / n..last / n + 1;
    let (j_first, j_last) = (first % n, last % n);
    let cols = if a_rows.len() == 1 {
        alloc::vec![j_first..j_last + 1]
    } else if a_rows.len() == 2 && j_last < j_first {
        // The end of one row and the start of the next: two disjoint column ranges.
        alloc::vec![0..j_last + 1, j_first..n]
    } else {
        // The chunk covers at least one whole row (N < 8): every column.
        alloc::vec![0..n]
    };
    Ok(GemmChunk {
        elements,
        a_rows,
        cols,
    })
}

/// The most bytes any chunk of a `GemmBt` output reads: at most `rows` rows of A (the
/// most output rows 8 consecutive elements touch) and `min(n, 8)` rows of Bᵀ and bias.
fn gemm_chunk_bound(m: u32, n: u32, k: u32, bias: bool) -> u64 {
    let per = (CHUNK_BYTES / 4) as u64;
    let (m, n, k) = (u64::from(m), u64::from(n), u64::from(k));
    let rows = if n == 0 { 0 } else { (per - 1).div_ceil(n) + 1 }.min(m);
    let cols = n.min(per);
    (rows * k + cols * k + if bias { cols } else { 0 }) * 4
}

/// A step's output; with `capped`, refused (`TooLarge`) beyond the caps a block can
/// afford. Off chain (the engine computing a trace) nothing is capped.
fn evaluate(step: &[u8], operands: &[&[u8]], capped: bool) -> Result<Vec<u8>, RefereeError> {
    let step = Step::decode(&mut &step[..]).map_err(|_| RefereeError::UnknownStep)?;
    let total: usize = operands.iter().map(|o| o.len()).sum();
    if capped && total > MAX_OPERAND_BYTES {
        return Err(RefereeError::TooLarge);
    }
    match step {
        Step::Kernel { template } => {
            let template = Call::decode_template(&template).ok_or(RefereeError::UnknownStep)?;
            let values = operands
                .iter()
                .map(|o| floats(o))
                .collect::<Result<Vec<_>, _>>()?;
            let call = template
                .with_operands(values)
                .ok_or(RefereeError::OperandMismatch)?;
            let written = match &call {
                Call::Gemm { m, n, .. } => u64::from(*m) * u64::from(*n),
                _ => 0,
            };
            if capped && (call.work() > MAX_WORK || written > MAX_OUTPUT_ELEMENTS) {
                return Err(RefereeError::TooLarge);
            }
            Ok(bytes(&call.eval()))
        }
        Step::Binary(op) => {
            let [a, b] = operands else {
                return Err(RefereeError::OperandMismatch);
            };
            let (a, b) = (floats(a)?, floats(b)?);
            if a.len() != b.len() {
                return Err(RefereeError::OperandMismatch);
            }
            let out: Vec<f32> = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| {
                    let r = match op {
                        Binary::Add => x + y,
                        Binary::Sub => x - y,
                        Binary::Mul => x * y,
                        Binary::Div => x / y,
                    };
                    if r.is_nan() {
                        CANONICAL_NAN
                    } else {
                        r
                    }
                })
                .collect();
            Ok(bytes(&out))
        }
        Step::Relu => {
            let [x] = operands else {
                return Err(RefereeError::OperandMismatch);
            };
            let out: Vec<f32> = floats(x)?
                .into_iter()
                .map(|v| if v > 0.0 { v } else { 0.0 })
                .collect();
            Ok(bytes(&out))
        }
        Step::InputTensor { index } => {
            let [payload] = operands else {
                return Err(RefereeError::OperandMismatch);
            };
            match Payload::decode_canonical(payload) {
                Ok(Payload::Tensors(tensors)) => tensors
                    .into_iter()
                    .nth(index as usize)
                    .map(|t| t.data)
                    .ok_or(RefereeError::OperandMismatch),
                _ => Err(RefereeError::OperandMismatch),
            }
        }
        Step::GemmBt { m, n, k, bias } => gemm_bt((m, n, k, bias), operands, capped),
        Step::WordPiece(spec) => {
            let [payload, vocab] = operands else {
                return Err(RefereeError::OperandMismatch);
            };
            let Ok(Payload::Text(text)) = Payload::decode_canonical(payload) else {
                return Err(RefereeError::OperandMismatch);
            };
            let text = core::str::from_utf8(&text).map_err(|_| RefereeError::OperandMismatch)?;
            if capped && u64::from(spec.max_tokens) + 1 > MAX_OUTPUT_ELEMENTS {
                return Err(RefereeError::TooLarge);
            }
            let vocab = Vocab::parse(vocab).ok_or(RefereeError::OperandMismatch)?;
            let ids = spec
                .tokenize(text, &vocab)
                .ok_or(RefereeError::OperandMismatch)?;
            let mut out = Vec::with_capacity(4 * (1 + spec.max_tokens as usize));
            out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            for t in 0..spec.max_tokens as usize {
                out.extend_from_slice(&ids.get(t).copied().unwrap_or(spec.pad).to_le_bytes());
            }
            Ok(out)
        }
        Step::Embed { tokens, hidden } => encoder::embed((tokens, hidden), operands),
        Step::BatchGemmBt { batch, m, n, k } => {
            // In u128: four u32 factors cannot overflow it.
            let cells = u128::from(batch.max(1)) * u128::from(m.max(1)) * u128::from(n.max(1));
            if capped
                && (cells * u128::from(k.max(1)) > u128::from(MAX_WORK)
                    || cells > u128::from(MAX_OUTPUT_ELEMENTS))
            {
                return Err(RefereeError::TooLarge);
            }
            encoder::batch_gemm_bt((batch, m, n, k), operands)
        }
        Step::Permute { dims, perm } => encoder::permute(&dims, &perm, operands),
        Step::MaskedSoftmax {
            rows,
            cols,
            divisor,
        } => encoder::masked_softmax((rows, cols, divisor), operands),
        Step::LayerNormRows { rows, cols, eps } => {
            encoder::layer_norm_rows((rows, cols, eps), operands)
        }
        Step::MeanRows { tokens, hidden } => encoder::mean_rows((tokens, hidden), operands),
        Step::L2Normalize => encoder::l2_normalize(operands),
        Step::GatherRows {
            rows,
            hidden,
            offset,
        } => {
            if capped && u64::from(rows) * u64::from(hidden) > MAX_OUTPUT_ELEMENTS {
                return Err(RefereeError::TooLarge);
            }
            decoder::gather_rows((rows, hidden, offset), operands)
        }
        Step::RmsNormRows { rows, cols, eps } => {
            decoder::rms_norm_rows((rows, cols, eps), operands)
        }
        Step::RopeRows {
            rows,
            heads,
            head_dim,
            theta,
        } => decoder::rope_rows((rows, heads, head_dim, theta), operands),
        Step::CausalAttention {
            rows,
            heads,
            kv_heads,
            head_dim,
            scale,
        } => decoder::causal_attention((rows, heads, kv_heads, head_dim, scale), operands, capped),
        Step::ArgmaxRows { rows, cols } => decoder::argmax_rows((rows, cols), operands),
        Step::TeacherForced { positions, vocab } => {
            if capped && u64::from(positions) + 2 > MAX_OUTPUT_ELEMENTS {
                return Err(RefereeError::TooLarge);
            }
            generation::teacher_forced((positions, vocab), operands)
        }
        Step::GreedyCheck {
            positions,
            stop_tokens,
        } => generation::greedy_check((positions, &stop_tokens), operands),
        Step::Output { shape } => {
            let [x] = operands else {
                return Err(RefereeError::OperandMismatch);
            };
            let values = floats(x)?;
            let elements = shape
                .iter()
                .try_fold(1usize, |n, d| n.checked_mul(*d as usize));
            if elements != Some(values.len()) {
                return Err(RefereeError::OperandMismatch);
            }
            Ok(Payload::Tensors(alloc::vec![Tensor::from_f32(shape, &values)]).encode())
        }
    }
}

/// A step's output computed off chain, without the caps: how the engine computes the
/// trace an executor commits to (every step of it is the referee's arithmetic).
pub fn evaluate_uncapped(step: &[u8], operands: &[&[u8]]) -> Result<Vec<u8>, RefereeError> {
    evaluate(step, operands, false)
}

/// The runtime's referee.
pub struct KernelReferee;

impl StepReferee for KernelReferee {
    fn evaluate(step: &[u8], operands: &[&[u8]]) -> Result<Vec<u8>, RefereeError> {
        evaluate(step, operands, true)
    }

    fn path(step: &[u8], output_bytes: u32) -> RefereePath {
        let Ok(step) = Step::decode(&mut &step[..]) else {
            return RefereePath::Whole;
        };
        let cap = MAX_OPERAND_BYTES as u64;
        let (whole, by_chunk) = match step {
            Step::GemmBt { m, n, k, bias } => {
                let (m64, n64, k64) = (u64::from(m), u64::from(n), u64::from(k));
                let operands = (m64 * k64 + n64 * k64 + if bias { n64 } else { 0 }) * 4;
                let whole = operands <= cap
                    && m64.max(1) * n64.max(1) * k64.max(1) <= MAX_WORK
                    && m64 * n64 <= MAX_OUTPUT_ELEMENTS;
                let by_chunk = k > 0
                    && m64 * n64 * 4 == u64::from(output_bytes)
                    && gemm_chunk_bound(m, n, k, bias) <= cap;
                (whole, by_chunk)
            }
            Step::Binary(_) => (2 * u64::from(output_bytes) <= cap, true),
            Step::Relu => (u64::from(output_bytes) <= cap, true),
            Step::Kernel { template } => match Call::decode_template(&template) {
                Some(Call::Unary { .. }) => (u64::from(output_bytes) <= cap, true),
                _ => return RefereePath::Whole,
            },
            // The word table is read a row per chunk, never whole.
            Step::Embed { tokens, hidden } => (
                false,
                encoder::embed_reads((tokens, hidden), output_bytes, 0).is_ok(),
            ),
            Step::BatchGemmBt { batch, m, n, k } => {
                // In u128: no product of these u32 factors overflows it.
                let (b, m, n, k) = (
                    u128::from(batch),
                    u128::from(m),
                    u128::from(n),
                    u128::from(k),
                );
                let cap = u128::from(cap);
                let whole = b * (m + n) * k * 4 <= cap
                    && b.max(1) * m.max(1) * n.max(1) * k.max(1) <= u128::from(MAX_WORK)
                    && b * m * n <= u128::from(MAX_OUTPUT_ELEMENTS);
                let by_chunk = k > 0
                    && b * m * n * 4 == u128::from(output_bytes)
                    && n % u128::from(PER_CHUNK) == 0
                    && (1 + u128::from(PER_CHUNK)) * k * 4 <= cap;
                (whole, by_chunk)
            }
            Step::MaskedSoftmax { rows, cols, .. } => (
                u64::from(output_bytes) + 4 * (u64::from(cols) + 1) <= cap,
                encoder::row_chunk((rows, cols), output_bytes, 0).is_ok()
                    && 4 * u64::from(cols) + 4 <= cap,
            ),
            Step::LayerNormRows { rows, cols, .. } => (
                u64::from(output_bytes) + 8 * u64::from(cols) <= cap,
                encoder::row_chunk((rows, cols), output_bytes, 0).is_ok()
                    && 4 * u64::from(cols) + 8 * u64::from(PER_CHUNK) <= cap,
            ),
            Step::MeanRows { tokens, .. } => (
                u64::from(output_bytes) * u64::from(tokens) + 4 * (u64::from(tokens) + 1) <= cap,
                false,
            ),
            Step::Permute { .. } => (u64::from(output_bytes) <= cap, false),
            Step::L2Normalize => (u64::from(output_bytes) <= cap, false),
            // The table is read a row per chunk, never whole.
            Step::GatherRows {
                rows,
                hidden,
                offset,
            } => (
                false,
                decoder::gather_reads((rows, hidden, offset), output_bytes, 0).is_ok(),
            ),
            Step::RmsNormRows { rows, cols, .. } => (
                u64::from(output_bytes) + 4 * u64::from(cols) <= cap
                    && u64::from(rows) * u64::from(cols) <= MAX_OUTPUT_ELEMENTS,
                decoder::rms_norm_reads((rows, cols), output_bytes, 0).is_ok()
                    && 4 * u64::from(cols) + 4 * u64::from(PER_CHUNK) <= cap,
            ),
            Step::RopeRows {
                rows,
                heads,
                head_dim,
                ..
            } => (
                u64::from(output_bytes) <= cap
                    && u64::from(output_bytes) / 4 <= MAX_OUTPUT_ELEMENTS,
                decoder::rope_reads((rows, heads, head_dim), output_bytes, 0).is_ok()
                    && 4 * u64::from(head_dim) <= cap,
            ),
            Step::CausalAttention {
                rows,
                heads,
                kv_heads,
                head_dim,
                scale,
            } => {
                let (r, h, kvh, d) = (
                    u64::from(rows),
                    u64::from(heads),
                    u64::from(kv_heads),
                    u64::from(head_dim),
                );
                let whole = 4 * (r * h * d + 2 * kvh * r * d) <= cap
                    && h * d * 2 * (r * (r + 1) / 2) <= MAX_WORK
                    && r * h * d <= MAX_OUTPUT_ELEMENTS;
                // The last row's chunk reads the most: its query head and every row of
                // its key/value head.
                let by_chunk = decoder::attention_reads(
                    (rows, heads, kv_heads, head_dim, scale),
                    output_bytes,
                    0,
                )
                .is_ok()
                    && 4 * (d + 2 * r * d) <= cap
                    && 2 * r * d + r <= MAX_CHUNK_WORK;
                (whole, by_chunk)
            }
            Step::ArgmaxRows { rows, cols } => (
                4 * u64::from(rows) * u64::from(cols) <= cap,
                decoder::argmax_reads((rows, cols), output_bytes, 0).is_ok()
                    && 4 * u64::from(cols) * u64::from(PER_CHUNK) <= cap,
            ),
            // Evaluated whole only; over the caps they fail as they fail.
            _ => return RefereePath::Whole,
        };
        match (whole, by_chunk) {
            (true, _) => RefereePath::Whole,
            (false, true) => RefereePath::Elements,
            (false, false) => RefereePath::Neither,
        }
    }

    fn element_reads(
        step: &[u8],
        output_bytes: u32,
        chunk: u32,
    ) -> Result<Vec<ElementRead>, RefereeError> {
        let step = Step::decode(&mut &step[..]).map_err(|_| RefereeError::UnknownStep)?;
        let whole_chunk = |operand: u32| -> Result<ElementRead, RefereeError> {
            let elements = chunk_elements(output_bytes, chunk)?;
            Ok(ElementRead {
                operand,
                start: elements.start * 4,
                len: (elements.end - elements.start) * 4,
            })
        };
        let reads = match step {
            Step::Binary(_) => alloc::vec![whole_chunk(0)?, whole_chunk(1)?],
            Step::Relu => alloc::vec![whole_chunk(0)?],
            Step::Kernel { template } => match Call::decode_template(&template) {
                Some(Call::Unary { .. }) => alloc::vec![whole_chunk(0)?],
                _ => return Err(RefereeError::UnknownStep),
            },
            Step::Embed { tokens, hidden } => {
                encoder::embed_reads((tokens, hidden), output_bytes, chunk)?
            }
            Step::BatchGemmBt { batch, m, n, k } => {
                encoder::batch_gemm_reads((batch, m, n, k), output_bytes, chunk)?
            }
            Step::MaskedSoftmax { rows, cols, .. } => {
                let (row, _) = encoder::row_chunk((rows, cols), output_bytes, chunk)?;
                alloc::vec![
                    ElementRead {
                        operand: 0,
                        start: row * cols * 4,
                        len: cols * 4
                    },
                    ElementRead {
                        operand: 1,
                        start: 0,
                        len: 4
                    },
                ]
            }
            Step::LayerNormRows { rows, cols, .. } => {
                let (row, column) = encoder::row_chunk((rows, cols), output_bytes, chunk)?;
                let entries = |operand| ElementRead {
                    operand,
                    start: column * 4,
                    len: PER_CHUNK * 4,
                };
                alloc::vec![
                    ElementRead {
                        operand: 0,
                        start: row * cols * 4,
                        len: cols * 4
                    },
                    entries(1),
                    entries(2),
                ]
            }
            Step::GatherRows {
                rows,
                hidden,
                offset,
            } => decoder::gather_reads((rows, hidden, offset), output_bytes, chunk)?,
            Step::RmsNormRows { rows, cols, .. } => {
                decoder::rms_norm_reads((rows, cols), output_bytes, chunk)?
            }
            Step::RopeRows {
                rows,
                heads,
                head_dim,
                ..
            } => decoder::rope_reads((rows, heads, head_dim), output_bytes, chunk)?,
            Step::CausalAttention {
                rows,
                heads,
                kv_heads,
                head_dim,
                scale,
            } => decoder::attention_reads(
                (rows, heads, kv_heads, head_dim, scale),
                output_bytes,
                chunk,
            )?,
            Step::ArgmaxRows { rows, cols } => {
                decoder::argmax_reads((rows, cols), output_bytes, chunk)?
            }
            Step::GemmBt { m, n, k, bias } => {
                let row = u64::from(k) * 4;
                let at = |i: u32, rows: u64| -> Result<(u32, u32), RefereeError> {
                    let start =
                        u32::try_from(u64::from(i) * row).map_err(|_| RefereeError::TooLarge)?;
                    let len = u32::try_from(rows * row).map_err(|_| RefereeError::TooLarge)?;
                    Ok((start, len))
                };
                let chunk = gemm_chunk((m, n, k), output_bytes, chunk)?;
                let (start, len) = at(chunk.a_rows.start, chunk.a_rows.len() as u64)?;
                let mut reads = alloc::vec![ElementRead {
                    operand: 0,
                    start,
                    len,
                }];
                for cols in &chunk.cols {
                    let (start, len) = at(cols.start, cols.len() as u64)?;
                    reads.push(ElementRead {
                        operand: 1,
                        start,
                        len,
                    });
                }
                if bias {
                    for cols in &chunk.cols {
                        reads.push(ElementRead {
                            operand: 2,
                            start: cols.start * 4,
                            len: cols.len() as u32 * 4,
                        });
                    }
                }
                reads
            }
            _ => return Err(RefereeError::UnknownStep),
        };
        let total: u64 = reads.iter().map(|r| u64::from(r.len)).sum();
        if total > MAX_OPERAND_BYTES as u64 {
            return Err(RefereeError::TooLarge);
        }
        Ok(reads)
    }

    fn indirect_reads(
        step: &[u8],
        output_bytes: u32,
        chunk: u32,
        direct: &[&[u8]],
    ) -> Option<Vec<ElementRead>> {
        match Step::decode(&mut &step[..]).ok()? {
            Step::Embed { tokens, hidden } => {
                encoder::embed_gather((tokens, hidden), output_bytes, chunk, direct)
            }
            Step::GatherRows {
                rows,
                hidden,
                offset,
            } => decoder::gather_indirect((rows, hidden, offset), output_bytes, chunk, direct),
            _ => Some(Vec::new()),
        }
    }

    fn evaluate_chunk(
        step: &[u8],
        output_bytes: u32,
        chunk: u32,
        slices: &[&[u8]],
    ) -> Result<Vec<u8>, RefereeError> {
        let mut reads = Self::element_reads(step, output_bytes, chunk)?;
        let direct = slices
            .get(..reads.len())
            .ok_or(RefereeError::OperandMismatch)?;
        reads.extend(
            Self::indirect_reads(step, output_bytes, chunk, direct)
                .ok_or(RefereeError::OperandMismatch)?,
        );
        if slices.len() != reads.len()
            || slices
                .iter()
                .zip(&reads)
                .any(|(s, r)| s.len() != r.len as usize)
        {
            return Err(RefereeError::OperandMismatch);
        }
        let step = Step::decode(&mut &step[..]).map_err(|_| RefereeError::UnknownStep)?;
        match step {
            Step::Binary(_) | Step::Relu | Step::Kernel { .. } => {
                // The chunk's elements depend on the same elements of the operands only
                // (a kernel step here is an element-wise one: `element_reads` said so).
                Self::evaluate(&step.encode(), slices)
            }
            Step::Embed { .. } => encoder::embed_chunk_values(slices),
            Step::BatchGemmBt { k, .. } => encoder::batch_gemm_chunk(k, slices),
            Step::MaskedSoftmax {
                rows,
                cols,
                divisor,
            } => {
                let (_, column) = encoder::row_chunk((rows, cols), output_bytes, chunk)?;
                encoder::masked_softmax_chunk(cols, divisor, column, slices)
            }
            Step::LayerNormRows { rows, cols, eps } => {
                let (_, column) = encoder::row_chunk((rows, cols), output_bytes, chunk)?;
                encoder::layer_norm_chunk(eps, column, slices)
            }
            // The table range the id selected, copied.
            Step::GatherRows { .. } => slices
                .get(1)
                .map(|s| s.to_vec())
                .ok_or(RefereeError::OperandMismatch),
            Step::RmsNormRows { rows, cols, eps } => {
                decoder::rms_norm_chunk((rows, cols, eps), output_bytes, chunk, slices)
            }
            Step::RopeRows {
                rows,
                heads,
                head_dim,
                theta,
            } => decoder::rope_chunk((rows, heads, head_dim, theta), output_bytes, chunk, slices),
            Step::CausalAttention {
                rows,
                heads,
                kv_heads,
                head_dim,
                scale,
            } => decoder::attention_chunk(
                (rows, heads, kv_heads, head_dim, scale),
                output_bytes,
                chunk,
                slices,
            ),
            Step::ArgmaxRows { cols, .. } => decoder::argmax_chunk(cols, slices),
            Step::GemmBt { n, k, bias, m } => {
                let chunk = gemm_chunk((m, n, k), output_bytes, chunk)?;
                let k = k as usize;
                let ranges = chunk.cols.len();
                let a = floats(slices[0])?;
                let bt: Vec<Vec<f32>> = slices[1..1 + ranges]
                    .iter()
                    .map(|s| floats(s))
                    .collect::<Result<_, _>>()?;
                let b: Vec<Vec<f32>> = if bias {
                    slices[1 + ranges..]
                        .iter()
                        .map(|s| floats(s))
                        .collect::<Result<_, _>>()?
                } else {
                    Vec::new()
                };
                let mut out = Vec::with_capacity(chunk.elements.len());
                for e in chunk.elements.clone() {
                    let (i, j) = ((e / n - chunk.a_rows.start) as usize, e % n);
                    let (r, cols) = chunk
                        .cols
                        .iter()
                        .enumerate()
                        .find(|(_, c)| c.contains(&j))
                        .ok_or(RefereeError::OperandMismatch)?;
                    let c = (j - cols.start) as usize;
                    out.push(gemm_element(
                        &a[i * k..][..k],
                        &bt[r][c * k..][..k],
                        b.get(r).map(|b| b[c]),
                    ));
                }
                Ok(bytes(&out))
            }
            _ => Err(RefereeError::UnknownStep),
        }
    }

    /// A chunk of a `GemmBt` with one output column (N = 1) and K at the operand cap:
    /// eight rows of A, one of Bᵀ, a bias entry, 8 × 7,280 multiply-adds (the most
    /// multiply-adds and operand bytes a chunk may have), of a step too large to prove
    /// whole (16 rows).
    fn costliest_chunk() -> (Vec<u8>, u32, u32, Vec<Vec<u8>>) {
        let (m, n, k) = (16u32, 1u32, 7_280u32);
        let step = Step::GemmBt {
            m,
            n,
            k,
            bias: true,
        };
        let values =
            |len: u32| -> Vec<f32> { (0..len).map(|i| (i % 89) as f32 / 89.0 - 0.5).collect() };
        (
            step.encode(),
            m * n * 4,
            0,
            alloc::vec![
                bytes(&values(m * k)),
                bytes(&values(n * k)),
                bytes(&values(n))
            ],
        )
    }

    /// A 128 × 128 by 128 × 128 matrix product with a bias: 2²¹ multiply-adds (the work
    /// cap) on 129 KiB of operands, in software FMA under wasm.
    fn costliest_step() -> (Vec<u8>, Vec<Vec<u8>>) {
        let template = Call::Gemm {
            m: 128,
            n: 128,
            k: 128,
            a: Vec::new(),
            b: Vec::new(),
            bias: inferchain_kernels::call::CallBias::Row(Vec::new()),
        };
        let step = Step::Kernel {
            template: template.encode(),
        };
        let square: Vec<f32> = (0..128 * 128)
            .map(|i| (i % 97) as f32 / 97.0 - 0.5)
            .collect();
        let bias: Vec<f32> = (0..128).map(|i| i as f32 / 128.0).collect();
        (
            step.encode(),
            alloc::vec![bytes(&square), bytes(&square), bytes(&bias)],
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use inferchain_kernels::{call::CallBias, elementwise::Unary};

    fn eval(step: &Step, operands: &[Vec<f32>]) -> Result<Vec<u8>, RefereeError> {
        let ops: Vec<Vec<u8>> = operands.iter().map(|o| bytes(o)).collect();
        let refs: Vec<&[u8]> = ops.iter().map(|o| o.as_slice()).collect();
        KernelReferee::evaluate(&step.encode(), &refs)
    }

    #[test]
    fn a_kernel_step_is_the_scalar_reference_of_its_call() {
        let template = Call::Gemm {
            m: 2,
            n: 2,
            k: 3,
            a: alloc::vec![],
            b: alloc::vec![],
            bias: CallBias::Col(alloc::vec![]),
        };
        let step = Step::Kernel {
            template: template.encode(),
        };
        let (a, b, c) = (
            alloc::vec![0.1f32, -0.2, 0.3, 0.4, 0.5, -0.6],
            alloc::vec![1.5f32, -2.5, 0.25, 3.0, -1.0, 0.125],
            alloc::vec![0.01f32, -0.02],
        );
        let full = template
            .with_operands(alloc::vec![a.clone(), b.clone(), c.clone()])
            .unwrap();
        assert_eq!(
            eval(&step, &[a.clone(), b.clone(), c]),
            Ok(bytes(&full.eval()))
        );
        // A missing operand or a wrong size is a mismatch, never a panic.
        assert_eq!(
            eval(&step, &[a.clone(), b]),
            Err(RefereeError::OperandMismatch)
        );
        assert_eq!(
            eval(&step, &[a.clone(), a.clone(), a]),
            Err(RefereeError::OperandMismatch)
        );

        let gelu = Step::Kernel {
            template: Call::Unary {
                op: Unary::Gelu,
                x: alloc::vec![],
            }
            .encode(),
        };
        let x = alloc::vec![-3.0f32, -0.5, 0.0, 0.7, 10.0];
        let want = Call::Unary {
            op: Unary::Gelu,
            x: x.clone(),
        }
        .eval();
        assert_eq!(eval(&gelu, &[x]), Ok(bytes(&want)));
    }

    #[test]
    fn binary_and_output_steps() {
        let add = Step::Binary(Binary::Add);
        assert_eq!(
            eval(&add, &[alloc::vec![1.0, 2.0], alloc::vec![0.5, -2.0]]),
            Ok(bytes(&[1.5, 0.0]))
        );
        assert_eq!(
            eval(&add, &[alloc::vec![1.0], alloc::vec![0.5, -2.0]]),
            Err(RefereeError::OperandMismatch)
        );
        assert_eq!(
            eval(&Step::Relu, &[alloc::vec![-1.0, 0.5, -0.0, f32::NAN]]),
            Ok(bytes(&[0.0, 0.5, 0.0, 0.0]))
        );
        // 0/0 is the canonical NaN.
        let div = eval(
            &Step::Binary(Binary::Div),
            &[alloc::vec![0.0], alloc::vec![0.0]],
        );
        assert_eq!(div, Ok(0x7fc0_0000u32.to_le_bytes().to_vec()));
        let out = Step::Output {
            shape: alloc::vec![1, 2],
        };
        assert_eq!(
            eval(&out, &[alloc::vec![1.0, 2.0]]),
            Ok(Payload::Tensors(alloc::vec![Tensor::from_f32(
                alloc::vec![1, 2],
                &[1.0, 2.0]
            )])
            .encode())
        );
        assert_eq!(
            eval(&out, &[alloc::vec![1.0, 2.0, 3.0]]),
            Err(RefereeError::OperandMismatch)
        );
        // The input payload's tensor data, as the engine's first step sees it.
        let payload = Payload::Tensors(alloc::vec![Tensor::from_f32(
            alloc::vec![1, 2],
            &[0.5, -1.0]
        )])
        .encode();
        let first = Step::InputTensor { index: 0 }.encode();
        assert_eq!(
            KernelReferee::evaluate(&first, &[&payload]),
            Ok(bytes(&[0.5, -1.0]))
        );
        assert_eq!(
            KernelReferee::evaluate(&Step::InputTensor { index: 1 }.encode(), &[&payload]),
            Err(RefereeError::OperandMismatch)
        );
        assert_eq!(
            KernelReferee::evaluate(&first, &[&payload[1..]]),
            Err(RefereeError::OperandMismatch)
        );
    }

    #[test]
    fn the_costliest_step_is_within_the_caps() {
        let (step, operands) = KernelReferee::costliest_step();
        let refs: Vec<&[u8]> = operands.iter().map(|o| o.as_slice()).collect();
        let out = KernelReferee::evaluate(&step, &refs).expect("within the caps");
        assert_eq!(out.len(), 128 * 128 * 4);
    }

    #[test]
    fn encoder_steps_with_absurd_descriptors_are_refused_without_running() {
        use wordpiece::WordPiece;
        let empty: &[&[u8]] = &[&[], &[]];
        let refused = |step: Step, operands: &[&[u8]]| {
            let out = KernelReferee::evaluate(&step.encode(), operands);
            assert!(out.is_err(), "{step:?} gave {out:?}");
        };
        // Descriptor fields whose products wrap a 32- or 64-bit size, on empty operands.
        let big = 1 << 22;
        refused(
            Step::BatchGemmBt {
                batch: big,
                m: big,
                n: big,
                k: 0,
            },
            empty,
        );
        refused(
            Step::BatchGemmBt {
                batch: 1,
                m: u32::MAX,
                n: u32::MAX,
                k: 1,
            },
            empty,
        );
        refused(
            Step::Embed {
                tokens: u32::MAX,
                hidden: 0,
            },
            &[&[], &[], &[], &[]],
        );
        refused(
            Step::Permute {
                dims: alloc::vec![1 << 30, 1 << 30],
                perm: alloc::vec![1, 0],
            },
            &[&[]],
        );
        refused(
            Step::MeanRows {
                tokens: u32::MAX,
                hidden: 0,
            },
            &[&[], &1u32.to_le_bytes()],
        );
        refused(
            Step::MaskedSoftmax {
                rows: u32::MAX,
                cols: u32::MAX,
                divisor: 0,
            },
            &[&[], &1u32.to_le_bytes()],
        );
        refused(
            Step::LayerNormRows {
                rows: u32::MAX,
                cols: 0,
                eps: 0,
            },
            &[&[], &[], &[]],
        );
        // A tokenizer step whose output alone is over the caps.
        let spec = WordPiece {
            max_tokens: u32::MAX,
            cls: 0,
            sep: 0,
            unk: 0,
            pad: 0,
            specials: alloc::vec![],
            max_word_chars: 100,
            lowercase: true,
        };
        let text = Payload::Text(b"hi".to_vec()).encode();
        assert_eq!(
            KernelReferee::evaluate(&Step::WordPiece(spec).encode(), &[&text, b"hi\n"]),
            Err(RefereeError::TooLarge)
        );
    }

    #[test]
    fn oversize_steps_and_junk_are_refused() {
        assert_eq!(
            KernelReferee::evaluate(&[9, 9, 9], &[]),
            Err(RefereeError::UnknownStep)
        );
        let big = alloc::vec![0u8; MAX_OPERAND_BYTES + 4];
        let step = Step::Binary(Binary::Add).encode();
        assert_eq!(
            KernelReferee::evaluate(&step, &[&big, &big]),
            Err(RefereeError::TooLarge)
        );
        // 256 x 64 times 64 x 256: within the bytes, over the work cap.
        let template = Call::Gemm {
            m: 256,
            n: 256,
            k: 64,
            a: alloc::vec![],
            b: alloc::vec![],
            bias: CallBias::None,
        };
        let step = Step::Kernel {
            template: template.encode(),
        };
        assert_eq!(
            eval(
                &step,
                &[alloc::vec![1.0; 256 * 64], alloc::vec![1.0; 64 * 256]]
            ),
            Err(RefereeError::TooLarge)
        );
        // 1024 x 1 times 1 x 1024: little work, but 4 MiB written.
        let outer = Step::Kernel {
            template: Call::Gemm {
                m: 1024,
                n: 1024,
                k: 1,
                a: alloc::vec![],
                b: alloc::vec![],
                bias: CallBias::None,
            }
            .encode(),
        };
        assert_eq!(
            eval(&outer, &[alloc::vec![1.0; 1024], alloc::vec![1.0; 1024]]),
            Err(RefereeError::TooLarge)
        );
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u32 * 7919 + seed * 104_729) % 1000) as f32 / 250.0 - 2.0)
            .collect()
    }

    #[test]
    fn gemm_bt_is_the_kernels_gemm_on_the_transposed_operand() {
        for (m, n, k, bias) in [(1, 3, 4, true), (3, 5, 7, false), (4, 9, 33, true)] {
            let (a, bt, b) = (values(m * k, 1), values(n * k, 2), values(n, 3));
            let mut kb = vec![0f32; k * n];
            for j in 0..n {
                for kk in 0..k {
                    kb[kk * n + j] = bt[j * k + kk];
                }
            }
            let call = Call::Gemm {
                m: m as u32,
                n: n as u32,
                k: k as u32,
                a: a.clone(),
                b: kb,
                bias: if bias {
                    CallBias::Col(b.clone())
                } else {
                    CallBias::None
                },
            };
            let step = Step::GemmBt {
                m: m as u32,
                n: n as u32,
                k: k as u32,
                bias,
            };
            let mut ops = vec![bytes(&a), bytes(&bt)];
            if bias {
                ops.push(bytes(&b));
            }
            let refs: Vec<&[u8]> = ops.iter().map(|o| o.as_slice()).collect();
            let full = KernelReferee::evaluate(&step.encode(), &refs).unwrap();
            assert_eq!(full, bytes(&call.eval()), "{m}x{n}x{k}");
            // Every chunk, recomputed from the ranges it names, is that chunk of the whole.
            let out_len = full.len() as u32;
            for chunk in 0..out_len.div_ceil(CHUNK_BYTES as u32) {
                let reads = KernelReferee::element_reads(&step.encode(), out_len, chunk).unwrap();
                let slices: Vec<&[u8]> = reads
                    .iter()
                    .map(|r| &refs[r.operand as usize][r.start as usize..][..r.len as usize])
                    .collect();
                let got =
                    KernelReferee::evaluate_chunk(&step.encode(), out_len, chunk, &slices).unwrap();
                let from = chunk as usize * CHUNK_BYTES;
                let to = (from + CHUNK_BYTES).min(full.len());
                assert_eq!(got, full[from..to], "{m}x{n}x{k} chunk {chunk}");
            }
            // A chunk past the end, or an output of another length, has no reads.
            let past = out_len.div_ceil(CHUNK_BYTES as u32);
            assert!(KernelReferee::element_reads(&step.encode(), out_len, past).is_err());
            assert!(KernelReferee::element_reads(&step.encode(), out_len + 4, 0).is_err());
        }
    }

    #[test]
    fn element_wise_chunks_and_steps_without_an_element_path() {
        let (x, y) = (values(21, 4), values(21, 5));
        let (xb, yb) = (bytes(&x), bytes(&y));
        for step in [Step::Binary(Binary::Div), Step::Relu] {
            let ops: Vec<&[u8]> = match step {
                Step::Relu => vec![&xb],
                _ => vec![&xb, &yb],
            };
            let full = KernelReferee::evaluate(&step.encode(), &ops).unwrap();
            for chunk in 0..3u32 {
                let reads = KernelReferee::element_reads(&step.encode(), 84, chunk).unwrap();
                let slices: Vec<&[u8]> = reads
                    .iter()
                    .map(|r| &ops[r.operand as usize][r.start as usize..][..r.len as usize])
                    .collect();
                let from = chunk as usize * CHUNK_BYTES;
                assert_eq!(
                    KernelReferee::evaluate_chunk(&step.encode(), 84, chunk, &slices).unwrap(),
                    full[from..(from + CHUNK_BYTES).min(84)]
                );
                // Slices of the wrong length are refused.
                let mut short = slices.clone();
                short[0] = &short[0][..4];
                assert_eq!(
                    KernelReferee::evaluate_chunk(&step.encode(), 84, chunk, &short),
                    Err(RefereeError::OperandMismatch)
                );
            }
        }
        for step in [
            Step::Output { shape: vec![1, 3] },
            Step::InputTensor { index: 0 },
            Step::Kernel {
                template: Call::Sum { x: vec![] }.encode(),
            },
        ] {
            assert_eq!(
                KernelReferee::element_reads(&step.encode(), 12, 0),
                Err(RefereeError::UnknownStep)
            );
        }
    }

    #[test]
    fn the_costliest_chunk_is_within_the_caps() {
        let (step, out, chunk, tensors) = KernelReferee::costliest_chunk();
        assert_eq!(KernelReferee::path(&step, out), RefereePath::Elements);
        let reads = KernelReferee::element_reads(&step, out, chunk).unwrap();
        let total: u32 = reads.iter().map(|r| r.len).sum();
        assert!(total as usize <= MAX_OPERAND_BYTES && total as usize > MAX_OPERAND_BYTES - 4096);
        let slices: Vec<&[u8]> = reads
            .iter()
            .map(|r| &tensors[r.operand as usize][r.start as usize..][..r.len as usize])
            .collect();
        assert_eq!(
            KernelReferee::evaluate_chunk(&step, out, chunk, &slices)
                .unwrap()
                .len(),
            CHUNK_BYTES.min(out as usize)
        );
        // One more column of K is over the cap.
        let Step::GemmBt { m, n, k, bias } = Step::decode(&mut &step[..]).unwrap() else {
            unreachable!()
        };
        let wider = Step::GemmBt {
            m,
            n,
            k: k + 100,
            bias,
        }
        .encode();
        assert_eq!(
            KernelReferee::element_reads(&wider, out, chunk),
            Err(RefereeError::TooLarge)
        );
    }

    #[test]
    fn the_path_of_a_step_follows_from_its_sizes() {
        let gemm = |m, n, k| {
            Step::GemmBt {
                m,
                n,
                k,
                bias: true,
            }
            .encode()
        };
        // tiny-mlp's products fit whole.
        assert_eq!(KernelReferee::path(&gemm(1, 8, 4), 32), RefereePath::Whole);
        // A 128-token MiniLM feed-forward product: 2.36 MB of weights, by chunk.
        assert_eq!(
            KernelReferee::path(&gemm(128, 1536, 384), 128 * 1536 * 4),
            RefereePath::Elements
        );
        // A row of A or Bᵀ alone over the cap: neither.
        assert_eq!(
            KernelReferee::path(&gemm(2, 16, 40_000), 2 * 16 * 4),
            RefereePath::Neither
        );
        // Few columns: a chunk touches several rows of A. m = 6, n = 3, k = 5,500 fits
        // whole (and is proven whole); with k = 9,000 a chunk would read 4 rows of A and
        // 3 of Bᵀ (252 KB) and the whole is over the cap: by chunk, and every chunk fits.
        assert_eq!(
            KernelReferee::path(&gemm(6, 3, 5_500), 72),
            RefereePath::Whole
        );
        assert_eq!(
            KernelReferee::path(&gemm(6, 3, 9_000), 72),
            RefereePath::Elements
        );
        let step = gemm(6, 3, 9_000);
        for chunk in 0..3 {
            let reads = KernelReferee::element_reads(&step, 72, chunk).unwrap();
            let total: u32 = reads.iter().map(|r| r.len).sum();
            assert!(
                total as usize <= MAX_OPERAND_BYTES,
                "chunk {chunk}: {total}"
            );
        }
        // K = 0: no chunk can be proven (its ranges would be empty), and the whole is
        // within the caps or not at all.
        assert_eq!(
            KernelReferee::path(&gemm(300, 300, 0), 300 * 300 * 4),
            RefereePath::Neither
        );
        // Element-wise steps: whole up to the cap, by chunk beyond.
        assert_eq!(
            KernelReferee::path(&Step::Relu.encode(), 1 << 20),
            RefereePath::Elements
        );
        assert_eq!(
            KernelReferee::path(&Step::Relu.encode(), 1 << 10),
            RefereePath::Whole
        );
        // Steps evaluated whole only.
        assert_eq!(
            KernelReferee::path(&Step::Output { shape: vec![1] }.encode(), 1 << 30),
            RefereePath::Whole
        );
    }
}
