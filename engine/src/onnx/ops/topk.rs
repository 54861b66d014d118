//! `TopK`: the `k` largest (or smallest) elements along an axis, and their indices.
//!
//! Defined to the last bit, as a consensus output must be: values are ordered by the
//! total order of IEEE numbers with NaN above +inf (so `largest` puts NaN first), equal
//! values by ascending index (as the spec requires), and the output is always sorted
//! (`sorted = 0` allows any order; this one is as good and the same everywhere).

use super::attrs;
use candle_core::{bail, DType, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use std::cmp::Ordering;

/// `TopK(x, k)` → (values, indices as i64). `k` is the input (opset 10 on) or the
/// attribute (before).
pub fn topk(node: &NodeProto, x: &Tensor, k: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
    let k = match k {
        Some(t) => match t.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?[..] {
            [k] => k,
            ref other => bail!("TopK: K must be one integer, got {} values", other.len()),
        },
        None => attrs::int(node, "k", -1),
    };
    let rank = x.rank();
    if rank == 0 {
        bail!("TopK: a scalar input has no axis")
    }
    let axis = attrs::axis("TopK", attrs::int(node, "axis", -1), rank)?;
    let n = x.dim(axis)?;
    if k < 0 || k as usize > n {
        bail!("TopK: k = {k} outside 0..={n} along axis {axis}")
    }
    let k = k as usize;
    let largest = attrs::int(node, "largest", 1) != 0;
    // Rows along the last axis.
    let moved = x.transpose(axis, rank - 1)?.contiguous()?;
    let rows = moved.elem_count() / n.max(1);
    let keys = Keys::of(&moved)?;
    let mut chosen: Vec<i64> = Vec::with_capacity(rows * k);
    let mut order: Vec<usize> = Vec::with_capacity(n);
    for row in 0..rows {
        order.clear();
        order.extend(0..n);
        let base = row * n;
        order.sort_by(|&a, &b| {
            let by_value = keys.cmp(base + a, base + b);
            let by_value = if largest {
                by_value.reverse()
            } else {
                by_value
            };
            by_value.then(a.cmp(&b))
        });
        chosen.extend(order[..k].iter().map(|&i| i as i64));
    }
    let mut out_dims = moved.dims().to_vec();
    out_dims[rank - 1] = k;
    let indices = Tensor::from_vec(chosen, out_dims, x.device())?;
    let values = moved.contiguous()?.gather(&indices, rank - 1)?;
    Ok((
        values.transpose(axis, rank - 1)?.contiguous()?,
        indices.transpose(axis, rank - 1)?.contiguous()?,
    ))
}

/// A row-major tensor's elements, compared exactly.
enum Keys {
    Float(Vec<f64>),
    Int(Vec<i64>),
}

impl Keys {
    fn of(t: &Tensor) -> Result<Keys> {
        let flat = t.flatten_all()?;
        Ok(match t.dtype() {
            DType::I64 => Keys::Int(flat.to_vec1::<i64>()?),
            // Every f32, f16, u8 and u32 is an f64 exactly.
            DType::F32 | DType::F16 | DType::BF16 | DType::F64 | DType::U8 | DType::U32 => {
                Keys::Float(flat.to_dtype(DType::F64)?.to_vec1::<f64>()?)
            }
            other => bail!("TopK: {other:?} input"),
        })
    }

    fn cmp(&self, a: usize, b: usize) -> Ordering {
        match self {
            Keys::Int(v) => v[a].cmp(&v[b]),
            Keys::Float(v) => match (v[a].is_nan(), v[b].is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                // -0 and +0 are equal, as IEEE compares them.
                _ => v[a].partial_cmp(&v[b]).unwrap_or(Ordering::Equal),
            },
        }
    }
}
