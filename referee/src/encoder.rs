//! The steps of a transformer encoder's plan (BERT family): token embeddings, batched
//! products per attention head, axis permutations, masked row softmax, row LayerNorm,
//! mean pooling over the tokens and L2 normalization. Sequences are padded to the
//! plan's token count; the real length (`count`) is the first u32 of the plan's
//! `WordPiece` output, which the masked steps read. Every result is the scalar reference
//! of the kernels the engine's BERT runs, so a padded plan's real rows carry the bits of
//! the engine's unpadded run.

use crate::{bytes, canonical, chunk_elements, floats, gemm_element, PER_CHUNK};
use alloc::vec::Vec;
use inferchain_kernels::Isa;
use inferchain_primitives::dispute::{ElementRead, RefereeError};

/// The u32 values of an operand.
pub(crate) fn words(bytes: &[u8]) -> Result<Vec<u32>, RefereeError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(RefereeError::OperandMismatch);
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The real token count a `WordPiece` output declares, within `1..=tokens`.
pub(crate) fn token_count(ids: &[u8], tokens: u32) -> Result<usize, RefereeError> {
    let count = ids
        .first_chunk::<4>()
        .map(|c| u32::from_le_bytes(*c))
        .ok_or(RefereeError::OperandMismatch)?;
    if count == 0 || count > tokens {
        return Err(RefereeError::OperandMismatch);
    }
    Ok(count as usize)
}

/// Row `t` of the embeddings: `(word[id] + token_type) + position[t]`, columns `cols`.
fn embed_row<'a>(
    word: &'a [f32],
    token_type: &'a [f32],
    position: &'a [f32],
) -> impl Iterator<Item = f32> + 'a {
    word.iter()
        .zip(token_type)
        .zip(position)
        .map(|((w, ty), p)| (w + ty) + p)
}

pub(crate) fn embed(
    (tokens, hidden): (u32, u32),
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [ids, word, position, token_type] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let ids = words(ids)?;
    let (word, position, token_type) = (floats(word)?, floats(position)?, floats(token_type)?);
    // Sizes in u64 (no wrap on a 32-bit host): the output is no larger than the
    // position operand.
    if hidden == 0
        || ids.len() as u64 != u64::from(tokens) + 1
        || (position.len() as u64) < u64::from(tokens) * u64::from(hidden)
        || token_type.len() as u64 != u64::from(hidden)
    {
        return Err(RefereeError::OperandMismatch);
    }
    let (tokens, h) = (tokens as usize, hidden as usize);
    let mut out = Vec::with_capacity(tokens * h);
    for (t, &id) in ids[1..].iter().enumerate() {
        let row = word
            .get(id as usize * h..(id as usize + 1) * h)
            .ok_or(RefereeError::OperandMismatch)?;
        out.extend(embed_row(row, &token_type, &position[t * h..][..h]));
    }
    Ok(bytes(&out))
}

/// An embedding chunk's row and first column (a chunk never spans rows).
fn embed_chunk(
    (tokens, hidden): (u32, u32),
    output_bytes: u32,
    chunk: u32,
) -> Result<(u32, u32), RefereeError> {
    if hidden == 0
        || !hidden.is_multiple_of(PER_CHUNK)
        || u64::from(tokens) * u64::from(hidden) * 4 != u64::from(output_bytes)
    {
        return Err(RefereeError::OperandMismatch);
    }
    let first = chunk_elements(output_bytes, chunk)?.start;
    Ok((first / hidden, first % hidden))
}

/// The id (4 bytes of operand 0), position and token-type ranges of a chunk.
pub(crate) fn embed_reads(
    shape: (u32, u32),
    output_bytes: u32,
    chunk: u32,
) -> Result<Vec<ElementRead>, RefereeError> {
    let (t, c) = embed_chunk(shape, output_bytes, chunk)?;
    let len = PER_CHUNK * 4;
    Ok(alloc::vec![
        ElementRead {
            operand: 0,
            start: (1 + t) * 4,
            len: 4
        },
        ElementRead {
            operand: 2,
            start: (t * shape.1 + c) * 4,
            len
        },
        ElementRead {
            operand: 3,
            start: c * 4,
            len
        },
    ])
}

/// The word-table range the chunk's token id selects.
pub(crate) fn embed_gather(
    shape: (u32, u32),
    output_bytes: u32,
    chunk: u32,
    direct: &[&[u8]],
) -> Option<Vec<ElementRead>> {
    let (_, c) = embed_chunk(shape, output_bytes, chunk).ok()?;
    let id = u32::from_le_bytes(*direct.first()?.first_chunk::<4>()?);
    let start = id.checked_mul(shape.1)?.checked_add(c)?.checked_mul(4)?;
    Some(alloc::vec![ElementRead {
        operand: 1,
        start,
        len: PER_CHUNK * 4
    }])
}

pub(crate) fn embed_chunk_values(slices: &[&[u8]]) -> Result<Vec<u8>, RefereeError> {
    let [_, position, token_type, word] = slices else {
        return Err(RefereeError::OperandMismatch);
    };
    let (word, token_type, position) = (floats(word)?, floats(token_type)?, floats(position)?);
    Ok(bytes(
        &embed_row(&word, &token_type, &position).collect::<Vec<_>>(),
    ))
}

/// `batch` products `A_b B_bᵀ`, each element `GemmBt`'s FMA chain.
pub(crate) fn batch_gemm_bt(
    (batch, m, n, k): (u32, u32, u32, u32),
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [a, bt] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let (a, bt) = (floats(a)?, floats(bt)?);
    // Sizes in u128 (no wrap); with k > 0 the loops are bounded by the operands.
    let fits =
        |len: usize, rows: u32| len as u128 == u128::from(batch) * u128::from(rows) * u128::from(k);
    if k == 0 || !fits(a.len(), m) || !fits(bt.len(), n) {
        return Err(RefereeError::OperandMismatch);
    }
    let (batch, m, n, k) = (batch as usize, m as usize, n as usize, k as usize);
    let mut out = Vec::with_capacity(batch * m * n);
    for b in 0..batch {
        for i in 0..m {
            for j in 0..n {
                out.push(gemm_element(
                    &a[(b * m + i) * k..][..k],
                    &bt[(b * n + j) * k..][..k],
                    None,
                ));
            }
        }
    }
    Ok(bytes(&out))
}

/// A batched product chunk's batch, row and first column (a chunk never spans rows).
fn batch_chunk(
    (batch, m, n, k): (u32, u32, u32, u32),
    output_bytes: u32,
    chunk: u32,
) -> Result<(u32, u32, u32), RefereeError> {
    let cells = u64::from(batch) * u64::from(m) * u64::from(n);
    if n == 0 || k == 0 || !n.is_multiple_of(PER_CHUNK) || cells * 4 != u64::from(output_bytes) {
        return Err(RefereeError::OperandMismatch);
    }
    let first = chunk_elements(output_bytes, chunk)?.start;
    let row = first / n;
    Ok((row / m, row % m, first % n))
}

pub(crate) fn batch_gemm_reads(
    shape: (u32, u32, u32, u32),
    output_bytes: u32,
    chunk: u32,
) -> Result<Vec<ElementRead>, RefereeError> {
    let (b, i, j) = batch_chunk(shape, output_bytes, chunk)?;
    let (_, m, n, k) = shape;
    let at = |row: u64, rows: u64| -> Result<(u32, u32), RefereeError> {
        let start = u32::try_from(row * u64::from(k) * 4).map_err(|_| RefereeError::TooLarge)?;
        let len = u32::try_from(rows * u64::from(k) * 4).map_err(|_| RefereeError::TooLarge)?;
        Ok((start, len))
    };
    let (a_start, a_len) = at(u64::from(b) * u64::from(m) + u64::from(i), 1)?;
    let (b_start, b_len) = at(
        u64::from(b) * u64::from(n) + u64::from(j),
        u64::from(PER_CHUNK),
    )?;
    Ok(alloc::vec![
        ElementRead {
            operand: 0,
            start: a_start,
            len: a_len
        },
        ElementRead {
            operand: 1,
            start: b_start,
            len: b_len
        },
    ])
}

pub(crate) fn batch_gemm_chunk(k: u32, slices: &[&[u8]]) -> Result<Vec<u8>, RefereeError> {
    let [a, bt] = slices else {
        return Err(RefereeError::OperandMismatch);
    };
    let (a, bt, k) = (floats(a)?, floats(bt)?, k as usize);
    Ok(bytes(
        &bt.chunks_exact(k)
            .map(|b| gemm_element(&a, b, None))
            .collect::<Vec<_>>(),
    ))
}

/// Operand 0 (`dims`, row-major) with output axis `i` being input axis `perm[i]`.
pub(crate) fn permute(
    dims: &[u32],
    perm: &[u32],
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [x] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let rank = dims.len();
    let mut seen = alloc::vec![false; rank];
    for &p in perm {
        match seen.get_mut(p as usize) {
            Some(s) if !*s => *s = true,
            _ => return Err(RefereeError::OperandMismatch),
        }
    }
    let total = dims
        .iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d as usize))
        .ok_or(RefereeError::OperandMismatch)?;
    if perm.len() != rank || Some(x.len()) != total.checked_mul(4) {
        return Err(RefereeError::OperandMismatch);
    }
    // Input strides, in elements, then the output's dims and the strides they step.
    let mut strides = alloc::vec![1usize; rank];
    for a in (0..rank.saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * dims[a + 1] as usize;
    }
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p as usize] as usize).collect();
    let out_strides: Vec<usize> = perm.iter().map(|&p| strides[p as usize]).collect();
    let mut out = Vec::with_capacity(x.len());
    let mut index = alloc::vec![0usize; rank];
    for _ in 0..total {
        let from: usize = index.iter().zip(&out_strides).map(|(i, s)| i * s).sum();
        out.extend_from_slice(&x[from * 4..from * 4 + 4]);
        for a in (0..rank).rev() {
            index[a] += 1;
            if index[a] < out_dims[a] {
                break;
            }
            index[a] = 0;
        }
    }
    Ok(out)
}

/// One row of a masked softmax: the first `count` of `row` divided by `divisor`, their
/// softmax, then +0 for the rest.
fn masked_softmax_row(row: &[f32], count: usize, divisor: f32) -> Vec<f32> {
    let scaled: Vec<f32> = row[..count].iter().map(|s| s / divisor).collect();
    let mut out = alloc::vec![0f32; row.len()];
    inferchain_kernels::softmax(Isa::Scalar, &scaled, &mut out[..count]);
    out
}

pub(crate) fn masked_softmax(
    (rows, cols, divisor): (u32, u32, u32),
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [x, ids] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let x = floats(x)?;
    let count = token_count(ids, cols)?;
    if cols == 0 || x.len() as u64 != u64::from(rows) * u64::from(cols) {
        return Err(RefereeError::OperandMismatch);
    }
    let cols = cols as usize;
    let divisor = f32::from_bits(divisor);
    let out: Vec<f32> = x
        .chunks_exact(cols)
        .flat_map(|row| masked_softmax_row(row, count, divisor))
        .collect();
    Ok(bytes(&out))
}

/// A row-wise step's chunk: its row and first column (a chunk never spans rows).
pub(crate) fn row_chunk(
    (rows, cols): (u32, u32),
    output_bytes: u32,
    chunk: u32,
) -> Result<(u32, u32), RefereeError> {
    if cols == 0
        || !cols.is_multiple_of(PER_CHUNK)
        || u64::from(rows) * u64::from(cols) * 4 != u64::from(output_bytes)
    {
        return Err(RefereeError::OperandMismatch);
    }
    let first = chunk_elements(output_bytes, chunk)?.start;
    Ok((first / cols, first % cols))
}

pub(crate) fn masked_softmax_chunk(
    cols: u32,
    divisor: u32,
    column: u32,
    slices: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [row, ids] = slices else {
        return Err(RefereeError::OperandMismatch);
    };
    let count = token_count(ids, cols)?;
    let row = masked_softmax_row(&floats(row)?, count, f32::from_bits(divisor));
    row.get(column as usize..column as usize + PER_CHUNK as usize)
        .map(bytes)
        .ok_or(RefereeError::OperandMismatch)
}

fn layer_norm_row(x: &[f32], scale: &[f32], bias: &[f32], eps: f32) -> Vec<f32> {
    let mut y = alloc::vec![0f32; x.len()];
    inferchain_kernels::layer_norm(Isa::Scalar, x, scale, Some(bias), eps, &mut y);
    y.into_iter().map(canonical).collect()
}

pub(crate) fn layer_norm_rows(
    (rows, cols, eps): (u32, u32, u32),
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [x, scale, bias] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let (x, scale, bias) = (floats(x)?, floats(scale)?, floats(bias)?);
    if cols == 0
        || x.len() as u64 != u64::from(rows) * u64::from(cols)
        || scale.len() as u64 != u64::from(cols)
        || bias.len() as u64 != u64::from(cols)
    {
        return Err(RefereeError::OperandMismatch);
    }
    let cols = cols as usize;
    let eps = f32::from_bits(eps);
    let out: Vec<f32> = x
        .chunks_exact(cols)
        .flat_map(|row| layer_norm_row(row, &scale, &bias, eps))
        .collect();
    Ok(bytes(&out))
}

/// A LayerNorm chunk's row (whole) and its columns' scale and bias entries.
pub(crate) fn layer_norm_chunk(
    eps: u32,
    column: u32,
    slices: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [row, scale, bias] = slices else {
        return Err(RefereeError::OperandMismatch);
    };
    let (x, scale, bias) = (floats(row)?, floats(scale)?, floats(bias)?);
    // The row's LayerNorm with this chunk's scale and bias entries in place (every
    // element is `fma((x - mean) * rstd, scale, bias)` of the row's moments alone).
    let c = column as usize;
    let end = c + scale.len();
    if bias.len() != scale.len() || end > x.len() {
        return Err(RefereeError::OperandMismatch);
    }
    let mut full_scale = alloc::vec![0f32; x.len()];
    let mut full_bias = alloc::vec![0f32; x.len()];
    full_scale[c..end].copy_from_slice(&scale);
    full_bias[c..end].copy_from_slice(&bias);
    let y = layer_norm_row(&x, &full_scale, &full_bias, f32::from_bits(eps));
    Ok(bytes(&y[c..end]))
}

pub(crate) fn mean_rows(
    (tokens, hidden): (u32, u32),
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [x, ids] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let x = floats(x)?;
    let count = token_count(ids, tokens)?;
    if hidden == 0 || x.len() as u64 != u64::from(tokens) * u64::from(hidden) {
        return Err(RefereeError::OperandMismatch);
    }
    let h = hidden as usize;
    let mut column = alloc::vec![0f32; count];
    let out: Vec<f32> = (0..h)
        .map(|j| {
            for (t, c) in column.iter_mut().enumerate() {
                *c = x[t * h + j];
            }
            canonical(inferchain_kernels::sum(Isa::Scalar, &column) / count as f32)
        })
        .collect();
    Ok(bytes(&out))
}

pub(crate) fn l2_normalize(operands: &[&[u8]]) -> Result<Vec<u8>, RefereeError> {
    let [x] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let x = floats(x)?;
    let norm = inferchain_kernels::lanes::sqrt(inferchain_kernels::sum_squares(Isa::Scalar, &x));
    Ok(bytes(
        &x.iter().map(|v| canonical(v / norm)).collect::<Vec<_>>(),
    ))
}
