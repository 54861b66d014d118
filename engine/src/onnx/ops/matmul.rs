//! `MatMul` and `Gemm` through the kernels' matrix product (each element one FMA chain
//! along K; `inferchain-kernels`). A constant B (a weight) is packed once, at load.

use super::attrs;
use crate::numerics::{self, KernelThreads};
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use inferchain_kernels::{gemm, gemm_into, Bias, MatRef, PackedB, Sequential};

/// B as the product wants it: packed at load when it is a weight, else packed per run.
pub enum RightOperand<'a> {
    Packed(&'a PackedB),
    Tensor(&'a Tensor),
}

/// Packs a 2-D weight for `MatMul` (`trans_b = false`) or `Gemm` (`transB`).
pub fn pack_weight(w: &Tensor, trans_b: bool) -> Result<PackedB> {
    let (rows, cols) = w.dims2()?;
    numerics::with_f32("MatMul", w, |data| {
        let m = MatRef::row_major(data, rows, cols);
        PackedB::pack(numerics::isa(), if trans_b { m.t() } else { m })
    })
}

/// `MatMul(A, B)` with numpy's rules: 1-D operands promoted, batch dimensions
/// broadcast. f32 only. With `bias` (one value per column, B packed), each output is
/// `product + bias[column]`, the add of an `Add` node after it.
pub fn matmul(a: &Tensor, b: RightOperand<'_>, bias: Option<&[f32]>) -> Result<Tensor> {
    let isa = numerics::isa();
    let b_dims: Vec<usize> = match &b {
        RightOperand::Packed(p) => vec![p.k(), p.n()],
        RightOperand::Tensor(t) => t.dims().to_vec(),
    };
    let (a_dims, a_vec) = (a.dims().to_vec(), a.rank() == 1);
    let b_vec = b_dims.len() == 1;
    if a_dims.is_empty() || b_dims.is_empty() {
        bail!("MatMul: scalar operands")
    }
    let a_shape = if a_vec {
        vec![1, a_dims[0]]
    } else {
        a_dims.clone()
    };
    let b_shape = if b_vec {
        vec![b_dims[0], 1]
    } else {
        b_dims.clone()
    };
    let (m, k) = (a_shape[a_shape.len() - 2], a_shape[a_shape.len() - 1]);
    let (kb, n) = (b_shape[b_shape.len() - 2], b_shape[b_shape.len() - 1]);
    if k != kb {
        bail!("MatMul: shapes {a_dims:?} and {b_dims:?} do not fit")
    }
    let a_batch = &a_shape[..a_shape.len() - 2];
    let b_batch = &b_shape[..b_shape.len() - 2];
    let batch = broadcast(a_batch, b_batch).ok_or_else(|| {
        candle_core::Error::Msg(format!(
            "MatMul: cannot broadcast {a_dims:?} and {b_dims:?}"
        ))
    })?;
    let mut out_dims = batch.clone();
    if !a_vec {
        out_dims.push(m);
    }
    if !b_vec {
        out_dims.push(n);
    }
    let batches: usize = batch.iter().product();
    // A and B are read where they lie, and the output is written once, by the products
    // (no copies, no zeroing: passes over memory the calling thread would make alone
    // while the kernels' threads wait).
    let out = numerics::with_f32("MatMul", a, |a_data| match b {
        RightOperand::Packed(packed) if b_batch.is_empty() => {
            // One product over all of A's rows: batch rows are independent outputs.
            let expanded;
            let rows: &[f32] = if a_batch.iter().product::<usize>() == batches {
                a_data
            } else {
                expanded = expand_rows(a_data, a_batch, &batch, m * k);
                &expanded
            };
            let a_all = MatRef::row_major(rows, batches * m, k);
            let bias = match bias {
                Some(b) if b.len() == n => Bias::Col(b),
                Some(b) => bail!("MatMul: a bias of {} values for {n} columns", b.len()),
                None => Bias::None,
            };
            Ok(numerics::written_in_parts(1, batches * m * n, |_, y| {
                gemm_into(isa, a_all, packed, bias, None, y, &KernelThreads)
            }))
        }
        RightOperand::Packed(_) => bail!("MatMul: a packed B must be 2-D"),
        RightOperand::Tensor(_) if bias.is_some() => bail!("MatMul: a bias needs a packed B"),
        RightOperand::Tensor(bt) => numerics::with_f32("MatMul", bt, |b_data| {
            // Entry `i`'s A (read in place) and B (packed here).
            let operands = |i: usize| {
                let mut index = vec![0usize; batch.len()];
                super::window::unravel(i, &batch, &mut index);
                let ai = source_index(&index, a_batch, &batch);
                let bi = source_index(&index, b_batch, &batch);
                let am = MatRef::row_major(&a_data[ai * m * k..][..m * k], m, k);
                let bm = MatRef::row_major(&b_data[bi * k * n..][..k * n], k, n);
                (am, PackedB::pack(isa, bm))
            };
            if batches * m * n == 0 {
                Vec::new()
            } else if batches > 1 {
                // One product per batch entry, entries in parallel (each its own outputs).
                numerics::written_on_threads(batches * m * n, m * n, |i, y| {
                    let (am, packed) = operands(i);
                    gemm_into(isa, am, &packed, Bias::None, None, y, &Sequential)
                })
            } else {
                numerics::written_in_parts(1, m * n, |_, y| {
                    let (am, packed) = operands(0);
                    gemm_into(isa, am, &packed, Bias::None, None, y, &KernelThreads)
                })
            }
        }),
    })??;
    numerics::tensor(out, out_dims)
}

/// `Gemm(A, B, C?)`: `alpha * A' B' + beta * C` with `A' = transA ? Aᵀ : A` (likewise B),
/// C broadcast to [M, N]. The product is the kernels' FMA chain; then `* alpha` (when not
/// 1), then `+ beta * C` (`beta * C` rounded first when beta is not 1).
pub fn gemm_node(
    node: &NodeProto,
    a: &Tensor,
    b: RightOperand<'_>,
    c: Option<&Tensor>,
) -> Result<Tensor> {
    let isa = numerics::isa();
    let alpha = attrs::float(node, "alpha", 1.0);
    let beta = attrs::float(node, "beta", 1.0);
    let trans_a = attrs::int(node, "transA", 0) != 0;
    let trans_b = attrs::int(node, "transB", 0) != 0;
    let (ar, ac) = a.dims2()?;
    let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
    let a_data = numerics::to_f32_vec("Gemm", a)?;
    let am = MatRef::row_major(&a_data, ar, ac);
    let am = if trans_a { am.t() } else { am };
    let owned;
    let packed = match b {
        RightOperand::Packed(p) => p,
        RightOperand::Tensor(t) => {
            owned = pack_weight(t, trans_b)?;
            &owned
        }
    };
    if packed.k() != k {
        bail!("Gemm: A is {m} x {k}, B has {} rows", packed.k())
    }
    let n = packed.n();
    let c_data = c.map(|c| numerics::to_f32_vec("Gemm", c)).transpose()?;
    let c_dims = c.map(|c| c.dims().to_vec()).unwrap_or_default();
    // C as a fused bias, where it is one: alpha = beta = 1 and C a row or column vector.
    let fused = match (&c_data, alpha == 1.0 && beta == 1.0) {
        (Some(cv), true) if cv.len() == n && c_dims.last().copied().unwrap_or(1) == n => {
            Some(Bias::Col(cv))
        }
        (Some(cv), true) if cv.len() == m && m != n && c_dims.len() == 2 && c_dims[1] == 1 => {
            Some(Bias::Row(cv))
        }
        _ => None,
    };
    let mut out = vec![0f32; m * n];
    gemm(
        isa,
        am,
        packed,
        fused.unwrap_or(Bias::None),
        &mut out,
        &KernelThreads,
    );
    let y = numerics::tensor(out, (m, n))?;
    if fused.is_some() {
        return Ok(y);
    }
    let y = if alpha != 1.0 { scale(&y, alpha)? } else { y };
    match c {
        None => Ok(y),
        Some(c) => {
            let c = if beta != 1.0 {
                scale(c, beta)?
            } else {
                c.clone()
            };
            y.broadcast_add(&c)
        }
    }
}

/// `t * s`, one rounding per element.
fn scale(t: &Tensor, s: f32) -> Result<Tensor> {
    t.broadcast_mul(&Tensor::new(s, t.device())?)
}

/// The broadcast of two batch shapes (numpy rules).
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            let da = if i + a.len() >= n {
                a[i + a.len() - n]
            } else {
                1
            };
            let db = if i + b.len() >= n {
                b[i + b.len() - n]
            } else {
                1
            };
            match (da, db) {
                (x, y) if x == y => Some(x),
                (1, y) => Some(y),
                (x, 1) => Some(x),
                _ => None,
            }
        })
        .collect()
}

/// The flat index into an operand with batch shape `own` of the broadcast index `index`.
fn source_index(index: &[usize], own: &[usize], full: &[usize]) -> usize {
    let skip = full.len() - own.len();
    own.iter().enumerate().fold(0, |acc, (i, &d)| {
        acc * d + if d == 1 { 0 } else { index[skip + i] }
    })
}

/// A's matrices repeated to the broadcast batch shape.
fn expand_rows(a: &[f32], own: &[usize], full: &[usize], size: usize) -> Vec<f32> {
    let batches: usize = full.iter().product();
    let mut out = Vec::with_capacity(batches * size);
    let mut index = vec![0usize; full.len()];
    for i in 0..batches {
        super::window::unravel(i, full, &mut index);
        let s = source_index(&index, own, full);
        out.extend_from_slice(&a[s * size..][..size]);
    }
    out
}
