//! The steps of a decoder-only language model's plan (llama family), each the scalar
//! reference of what the engine's `llm` layers compute, so every row carries the bits of
//! the engine's run: rows gathered from the embedding table, RMSNorm per row, RoPE per
//! row (the row index is the position), causal attention per query row over exactly its
//! prefix, and the greedy choice per row of logits. Each has an element path: a 32-byte
//! chunk of its output reads one row (and, for attention, one contiguous range of its
//! head's keys and values up to that row).

use crate::encoder::{row_chunk, words};
use crate::{bytes, canonical, chunk_elements, floats, gemm_element, PER_CHUNK};
use alloc::vec::Vec;
use inferchain_kernels::{lanes, rotary, Isa};
use inferchain_primitives::dispute::{ElementRead, RefereeError};

fn range(start: u64, len: u64, operand: u32) -> Result<ElementRead, RefereeError> {
    Ok(ElementRead {
        operand,
        start: u32::try_from(start * 4).map_err(|_| RefereeError::TooLarge)?,
        len: u32::try_from(len * 4).map_err(|_| RefereeError::TooLarge)?,
    })
}

// ---- GatherRows: row t = table[id_t] ----

/// `rows` ids, u32 words `offset..offset + rows` of operand 0, select rows of the table
/// (operand 1, `hidden` wide), copied exactly.
pub(crate) fn gather_rows(
    (rows, hidden, offset): (u32, u32, u32),
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [ids, table] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let ids = words(ids)?;
    let ids = ids
        .get(offset as usize..)
        .and_then(|ids| ids.get(..rows as usize))
        .ok_or(RefereeError::OperandMismatch)?;
    let h = hidden as usize;
    if h == 0 || !table.len().is_multiple_of(4 * h) {
        return Err(RefereeError::OperandMismatch);
    }
    let row_bytes = h.checked_mul(4).ok_or(RefereeError::TooLarge)?;
    let mut out = Vec::with_capacity(ids.len().saturating_mul(row_bytes));
    for &id in ids {
        let start = (id as usize)
            .checked_mul(row_bytes)
            .ok_or(RefereeError::OperandMismatch)?;
        let row = table
            .get(start..start.saturating_add(row_bytes))
            .ok_or(RefereeError::OperandMismatch)?;
        out.extend_from_slice(row);
    }
    Ok(out)
}

pub(crate) fn gather_reads(
    (rows, hidden, offset): (u32, u32, u32),
    output_bytes: u32,
    chunk: u32,
) -> Result<Vec<ElementRead>, RefereeError> {
    let (row, _) = row_chunk((rows, hidden), output_bytes, chunk)?;
    Ok(alloc::vec![range(
        u64::from(offset) + u64::from(row),
        1,
        0
    )?])
}

pub(crate) fn gather_indirect(
    shape: (u32, u32, u32),
    output_bytes: u32,
    chunk: u32,
    direct: &[&[u8]],
) -> Option<Vec<ElementRead>> {
    let (_, column) = row_chunk((shape.0, shape.1), output_bytes, chunk).ok()?;
    let id = u32::from_le_bytes(*direct.first()?.first_chunk::<4>()?);
    let start = u64::from(id) * u64::from(shape.1) + u64::from(column);
    Some(alloc::vec![range(start, u64::from(PER_CHUNK), 1).ok()?])
}

// ---- RmsNormRows ----

/// One row: `ms = sum_squares(x) / n`, `r = 1 / sqrt(ms + eps)`, `y = w * (x * r)`.
fn rms_row(x: &[f32], w: &[f32], eps: f32, out: &mut Vec<f32>) {
    let ms = inferchain_kernels::sum_squares(Isa::Scalar, x) / x.len() as f32;
    let r = 1.0 / lanes::sqrt(ms + eps);
    out.extend(x.iter().zip(w).map(|(&x, &w)| canonical(w * (x * r))));
}

pub(crate) fn rms_norm_rows(
    (rows, cols, eps): (u32, u32, u32),
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [x, w] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let (x, w) = (floats(x)?, floats(w)?);
    if cols == 0 || w.len() != cols as usize || x.len() as u64 != u64::from(rows) * u64::from(cols)
    {
        return Err(RefereeError::OperandMismatch);
    }
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(cols as usize) {
        rms_row(row, &w, f32::from_bits(eps), &mut out);
    }
    Ok(bytes(&out))
}

/// A chunk reads its whole row and the eight weights of its columns.
pub(crate) fn rms_norm_reads(
    (rows, cols): (u32, u32),
    output_bytes: u32,
    chunk: u32,
) -> Result<Vec<ElementRead>, RefereeError> {
    let (row, column) = row_chunk((rows, cols), output_bytes, chunk)?;
    Ok(alloc::vec![
        range(u64::from(row) * u64::from(cols), u64::from(cols), 0)?,
        range(u64::from(column), u64::from(PER_CHUNK), 1)?,
    ])
}

pub(crate) fn rms_norm_chunk(
    (rows, cols, eps): (u32, u32, u32),
    output_bytes: u32,
    chunk: u32,
    slices: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [x, w] = slices else {
        return Err(RefereeError::OperandMismatch);
    };
    let (_, column) = row_chunk((rows, cols), output_bytes, chunk)?;
    let (x, w) = (floats(x)?, floats(w)?);
    let ms = inferchain_kernels::sum_squares(Isa::Scalar, &x) / x.len() as f32;
    let r = 1.0 / lanes::sqrt(ms + f32::from_bits(eps));
    let xs = x
        .get(column as usize..column as usize + w.len())
        .ok_or(RefereeError::OperandMismatch)?;
    Ok(bytes(
        &xs.iter()
            .zip(&w)
            .map(|(&x, &w)| canonical(w * (x * r)))
            .collect::<Vec<_>>(),
    ))
}

// ---- RopeRows ----

/// The cosines and sines of position `p` (`rotary`'s definition).
fn angles(p: u32, inv_freq: &[f32]) -> (Vec<f32>, Vec<f32>) {
    inv_freq
        .iter()
        .map(|&f| rotary::cos_sin(p as f32 * f))
        .unzip()
}

/// Every head of row `t` turned by position `t`'s angles.
pub(crate) fn rope_rows(
    (rows, heads, head_dim, theta): (u32, u32, u32, u32),
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [x] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let mut x = floats(x)?;
    let d = head_dim as usize;
    let width = u64::from(heads) * u64::from(head_dim);
    if d == 0 || !d.is_multiple_of(2) || x.len() as u64 != u64::from(rows) * width {
        return Err(RefereeError::OperandMismatch);
    }
    let inv_freq = rotary::inv_freq(d, f32::from_bits(theta));
    for (t, row) in x.chunks_exact_mut(width as usize).enumerate() {
        let (cos, sin) = angles(t as u32, &inv_freq);
        for head in row.chunks_exact_mut(d) {
            rotary::rotate(head, &cos, &sin);
        }
    }
    Ok(bytes(&x))
}

/// A chunk reads its head of its row (a pair's partner is in the other half).
pub(crate) fn rope_reads(
    (rows, heads, head_dim): (u32, u32, u32),
    output_bytes: u32,
    chunk: u32,
) -> Result<Vec<ElementRead>, RefereeError> {
    if head_dim == 0 || !head_dim.is_multiple_of(2 * PER_CHUNK) {
        return Err(RefereeError::OperandMismatch);
    }
    let width = heads.checked_mul(head_dim).ok_or(RefereeError::TooLarge)?;
    let (row, column) = row_chunk((rows, width), output_bytes, chunk)?;
    let head = column / head_dim;
    let start = u64::from(row) * u64::from(width) + u64::from(head) * u64::from(head_dim);
    Ok(alloc::vec![range(start, u64::from(head_dim), 0)?])
}

pub(crate) fn rope_chunk(
    (rows, heads, head_dim, theta): (u32, u32, u32, u32),
    output_bytes: u32,
    chunk: u32,
    slices: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [head] = slices else {
        return Err(RefereeError::OperandMismatch);
    };
    let width = heads.checked_mul(head_dim).ok_or(RefereeError::TooLarge)?;
    let (row, column) = row_chunk((rows, width), output_bytes, chunk)?;
    let mut head = floats(head)?;
    let (cos, sin) = angles(
        row,
        &rotary::inv_freq(head_dim as usize, f32::from_bits(theta)),
    );
    rotary::rotate(&mut head, &cos, &sin);
    let at = (column % head_dim) as usize;
    Ok(bytes(
        head.get(at..at + PER_CHUNK as usize)
            .ok_or(RefereeError::OperandMismatch)?,
    ))
}

// ---- CausalAttention ----

/// The attention shape: query rows, query heads, key/value heads, head size, the score
/// scale's bits.
pub(crate) type AttentionShape = (u32, u32, u32, u32, u32);

fn check_heads(heads: u32, kv_heads: u32, head_dim: u32) -> Result<(), RefereeError> {
    if heads == 0 || kv_heads == 0 || head_dim == 0 || !heads.is_multiple_of(kv_heads) {
        return Err(RefereeError::OperandMismatch);
    }
    Ok(())
}

/// One query row of one head over keys and values `0..=t` (`keys`, `values`: `t + 1`
/// rows of `d`): `s_j = fma-chain(k_j, q) * scale`, `p = softmax(s)`,
/// `out[c] = fma-chain_j(v_j[c], p_j)`, NaN canonical — the engine's
/// `LayerCache::attend` on the scalar kernels.
fn attend(q: &[f32], keys: &[f32], values: &[f32], scale: f32, out: &mut Vec<f32>) {
    let d = q.len();
    let scores: Vec<f32> = keys
        .chunks_exact(d)
        .map(|k| gemm_element(k, q, None) * scale)
        .collect();
    let mut probs = alloc::vec![0f32; scores.len()];
    inferchain_kernels::softmax(Isa::Scalar, &scores, &mut probs);
    for c in 0..d {
        let acc = values
            .chunks_exact(d)
            .zip(&probs)
            .fold(0f32, |acc, (v, &p)| {
                inferchain_kernels::fma::fma(v[c], p, acc)
            });
        out.push(canonical(acc));
    }
}

/// Operand 0 the queries (`rows × heads·d`), 1 the keys and 2 the values (`kv_heads ×
/// rows × d`, one head's rows contiguous); query head `h` reads key/value head
/// `h / (heads / kv_heads)`; row `t` attends over rows `0..=t`.
pub(crate) fn causal_attention(
    (rows, heads, kv_heads, head_dim, scale): AttentionShape,
    operands: &[&[u8]],
    capped: bool,
) -> Result<Vec<u8>, RefereeError> {
    let [q, k, v] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    check_heads(heads, kv_heads, head_dim)?;
    let (r, h, kvh, d) = (
        u64::from(rows),
        u64::from(heads),
        u64::from(kv_heads),
        u64::from(head_dim),
    );
    // Multiply-adds: per head, d per score and per context entry over t + 1 rows.
    if capped && h * d * 2 * (r * (r + 1) / 2) > crate::MAX_WORK {
        return Err(RefereeError::TooLarge);
    }
    let (q, k, v) = (floats(q)?, floats(k)?, floats(v)?);
    if q.len() as u64 != r * h * d || k.len() as u64 != kvh * r * d || v.len() != k.len() {
        return Err(RefereeError::OperandMismatch);
    }
    let (rows, heads, d) = (rows as usize, heads as usize, head_dim as usize);
    let group = heads / kv_heads as usize;
    let mut out = Vec::with_capacity(q.len());
    for t in 0..rows {
        for head in 0..heads {
            let kv = head / group;
            let span = kv * rows * d..(kv * rows + t + 1) * d;
            attend(
                &q[(t * heads + head) * d..][..d],
                &k[span.clone()],
                &v[span],
                f32::from_bits(scale),
                &mut out,
            );
        }
    }
    Ok(bytes(&out))
}

/// A chunk (eight entries of one row's head) reads that row's query head and its
/// key/value head's rows `0..=t`.
pub(crate) fn attention_reads(
    (rows, heads, kv_heads, head_dim, _): AttentionShape,
    output_bytes: u32,
    chunk: u32,
) -> Result<Vec<ElementRead>, RefereeError> {
    check_heads(heads, kv_heads, head_dim)?;
    if !head_dim.is_multiple_of(PER_CHUNK) {
        return Err(RefereeError::OperandMismatch);
    }
    let width = heads.checked_mul(head_dim).ok_or(RefereeError::TooLarge)?;
    let (t, column) = row_chunk((rows, width), output_bytes, chunk)?;
    let head = column / head_dim;
    let kv = head / (heads / kv_heads);
    let d = u64::from(head_dim);
    let (t64, kv64) = (u64::from(t), u64::from(kv));
    let prefix = |operand| range(kv64 * u64::from(rows) * d, (t64 + 1) * d, operand);
    Ok(alloc::vec![
        range(t64 * u64::from(width) + u64::from(head) * d, d, 0)?,
        prefix(1)?,
        prefix(2)?,
    ])
}

pub(crate) fn attention_chunk(
    (rows, heads, kv_heads, head_dim, scale): AttentionShape,
    output_bytes: u32,
    chunk: u32,
    slices: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [q, k, v] = slices else {
        return Err(RefereeError::OperandMismatch);
    };
    check_heads(heads, kv_heads, head_dim)?;
    let width = heads.checked_mul(head_dim).ok_or(RefereeError::TooLarge)?;
    let (_, column) = row_chunk((rows, width), output_bytes, chunk)?;
    let (q, k, v) = (floats(q)?, floats(k)?, floats(v)?);
    if q.len() != head_dim as usize || k.len() != v.len() || !k.len().is_multiple_of(q.len()) {
        return Err(RefereeError::OperandMismatch);
    }
    let mut out = Vec::with_capacity(q.len());
    attend(&q, &k, &v, f32::from_bits(scale), &mut out);
    let at = (column % head_dim) as usize;
    Ok(bytes(
        out.get(at..at + PER_CHUNK as usize)
            .ok_or(RefereeError::OperandMismatch)?,
    ))
}

// ---- ArgmaxRows ----

/// The index of the largest entry, the lowest on ties; NaN is never the largest (a row
/// of NaN gives 0).
fn argmax(row: &[f32]) -> u32 {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in row.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i as u32)
}

pub(crate) fn argmax_rows(
    (rows, cols): (u32, u32),
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [x] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let x = floats(x)?;
    if cols == 0 || x.len() as u64 != u64::from(rows) * u64::from(cols) {
        return Err(RefereeError::OperandMismatch);
    }
    Ok(x.chunks_exact(cols as usize)
        .flat_map(|row| argmax(row).to_le_bytes())
        .collect())
}

/// A chunk (eight rows' choices, fewer at the end) reads those rows.
pub(crate) fn argmax_reads(
    (rows, cols): (u32, u32),
    output_bytes: u32,
    chunk: u32,
) -> Result<Vec<ElementRead>, RefereeError> {
    if cols == 0 || u64::from(rows) * 4 != u64::from(output_bytes) {
        return Err(RefereeError::OperandMismatch);
    }
    let e = chunk_elements(output_bytes, chunk)?;
    let c = u64::from(cols);
    Ok(alloc::vec![range(
        u64::from(e.start) * c,
        u64::from(e.end - e.start) * c,
        0
    )?])
}

pub(crate) fn argmax_chunk(cols: u32, slices: &[&[u8]]) -> Result<Vec<u8>, RefereeError> {
    argmax_rows(
        (
            (slices.first().map_or(0, |s| s.len()) / 4 / cols.max(1) as usize) as u32,
            cols,
        ),
        slices,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn argmax_prefers_the_lowest_index_and_skips_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -1.0, -2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[-0.0, 0.0]), 0);
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        bytes(v)
    }

    #[test]
    fn bad_operands_are_refused_by_name_never_a_panic() {
        let ids: Vec<u8> = [0u32, 5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let table = f32s(&[1.0; 8 * 2]);
        // Id 5 is outside a two-row table.
        assert_eq!(
            gather_rows((2, 8, 0), &[&ids, &table]),
            Err(RefereeError::OperandMismatch)
        );
        // More rows than ids.
        assert_eq!(
            gather_rows((3, 8, 0), &[&ids, &table]),
            Err(RefereeError::OperandMismatch)
        );
        // An odd head size cannot be turned in pairs.
        assert_eq!(
            rope_rows((1, 1, 3, 10_000f32.to_bits()), &[&f32s(&[1.0; 3])]),
            Err(RefereeError::OperandMismatch)
        );
        // Heads not a multiple of the key/value heads.
        let x = f32s(&[0.5; 3 * 8]);
        assert_eq!(
            causal_attention((1, 3, 2, 8, 1f32.to_bits()), &[&x, &x, &x], false),
            Err(RefereeError::OperandMismatch)
        );
        // Over the work cap on chain, fine off chain.
        let (rows, d) = (512u32, 64u32);
        let q = f32s(&alloc::vec![0.1; (rows * d) as usize]);
        assert_eq!(
            causal_attention((rows, 1, 1, d, 1f32.to_bits()), &[&q, &q, &q], true),
            Err(RefereeError::TooLarge)
        );
        assert!(causal_attention(
            (8, 1, 1, d, 1f32.to_bits()),
            &[&q[..8 * 64 * 4], &q[..8 * 64 * 4], &q[..8 * 64 * 4]],
            false
        )
        .is_ok());
        assert_eq!(
            rms_norm_rows((2, 4, 0), &[&f32s(&[1.0; 8]), &f32s(&[1.0; 3])]),
            Err(RefereeError::OperandMismatch)
        );
        assert_eq!(
            argmax_rows((2, 3), &[&f32s(&[1.0; 5])]),
            Err(RefereeError::OperandMismatch)
        );
    }

    #[test]
    fn attention_of_the_first_row_is_its_own_value() {
        // Row 0 attends to itself only: softmax of one score is 1, the context is v_0.
        let d = 8;
        let q = f32s(&[0.3; 8]);
        let k = f32s(&[0.7; 8]);
        let v: Vec<f32> = (0..d).map(|i| i as f32 - 2.5).collect();
        let out =
            causal_attention((1, 1, 1, d, 0.5f32.to_bits()), &[&q, &k, &f32s(&v)], true).unwrap();
        assert_eq!(out, f32s(&v));
    }
}
