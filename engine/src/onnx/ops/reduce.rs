//! `ReduceSum`, `ReduceMean` and `CumSum`.
//!
//! f32 sums are the kernels' 16-lane sum over the reduced elements in row-major order
//! (the reduced axes are moved last by an exact copy); a mean is that sum divided by the
//! count. Integer sums are exact in any order (wrapping two's complement) and stay with
//! candle. `CumSum` is a running sum in index order (reversed with `reverse`).

use super::attrs;
use crate::kernel_threads;
use crate::numerics;
use candle_core::{bail, DType, Result, Tensor};
use candle_onnx::onnx::NodeProto;

/// Inputs smaller than this many values are reduced on one thread.
const SEQUENTIAL_VALUES: usize = 1 << 16;

/// The reduced axes of a `Reduce*` node: the `axes` input (ReduceSum from opset 13, the
/// others from 18) or attribute; all axes when none are given (unless
/// `noop_with_empty_axes`, which gives `None`: the input unchanged).
fn reduced_axes(node: &NodeProto, x: &Tensor, axes: Option<&Tensor>) -> Result<Option<Vec<usize>>> {
    let op = node.op_type.as_str();
    let listed: Option<Vec<i64>> = match axes {
        Some(a) => Some(a.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?),
        None => attrs::ints(node, "axes").map(<[i64]>::to_vec),
    };
    let rank = x.rank();
    let mut axes: Vec<usize> = match listed {
        Some(v) if !v.is_empty() => v
            .into_iter()
            .map(|a| attrs::axis(op, a, rank))
            .collect::<Result<_>>()?,
        _ if attrs::int(node, "noop_with_empty_axes", 0) != 0 => return Ok(None),
        _ => (0..rank).collect(),
    };
    axes.sort_unstable();
    axes.dedup();
    Ok(Some(axes))
}

/// `ReduceSum` (`mean = false`) or `ReduceMean` (`mean = true`).
pub fn reduce(node: &NodeProto, x: &Tensor, axes: Option<&Tensor>, mean: bool) -> Result<Tensor> {
    let Some(axes) = reduced_axes(node, x, axes)? else {
        return Ok(x.clone());
    };
    let keepdims = attrs::int(node, "keepdims", 1) != 0;
    let dims = x.dims().to_vec();
    let mut out_dims: Vec<usize> = Vec::new();
    for (i, &d) in dims.iter().enumerate() {
        if axes.contains(&i) {
            if keepdims {
                out_dims.push(1);
            }
        } else {
            out_dims.push(d);
        }
    }
    if x.dtype() != DType::F32 {
        if x.dtype().is_float() {
            bail!(
                "{}: {:?} input; the engine's kernels compute in f32",
                node.op_type,
                x.dtype()
            )
        }
        if mean {
            bail!("{}: integer input", node.op_type)
        }
        // Integer sums are exact in any order.
        return x.sum_keepdim(axes)?.reshape(out_dims);
    }
    // Kept axes first, reduced axes last, each group in its original order.
    let kept: Vec<usize> = (0..dims.len()).filter(|i| !axes.contains(i)).collect();
    let perm: Vec<usize> = kept.iter().chain(&axes).copied().collect();
    let moved = if perm.iter().enumerate().all(|(i, &p)| i == p) {
        x.clone()
    } else {
        x.permute(perm)?.contiguous()?
    };
    let len: usize = axes.iter().map(|&a| dims[a]).product();
    let isa = numerics::isa();
    let outputs: usize = kept.iter().map(|&a| dims[a]).product();
    let reduce_row = |o: usize, xs: &[f32]| {
        let row = if len == 0 {
            &[][..]
        } else {
            &xs[o * len..][..len]
        };
        let s = inferchain_kernels::sum(isa, row);
        if mean {
            s / len as f32
        } else {
            s
        }
    };
    let out: Vec<f32> = numerics::with_f32(&node.op_type, &moved, |xs| {
        // Rows are independent: any split gives the same bits; a small input stays on
        // this thread (waking the pool costs more than the sums).
        if outputs * len < SEQUENTIAL_VALUES {
            (0..outputs).map(|o| reduce_row(o, xs)).collect()
        } else {
            kernel_threads::map_collect(outputs, |o| reduce_row(o, xs))
        }
    })?;
    numerics::tensor(out, out_dims)
}

/// `CumSum(x, axis)` with `exclusive` and `reverse`.
pub fn cumsum(node: &NodeProto, x: &Tensor, axis: &Tensor) -> Result<Tensor> {
    let axis = axis.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?;
    let [axis] = axis.as_slice() else {
        bail!("CumSum: axis must be one value")
    };
    let axis = attrs::axis("CumSum", *axis, x.rank())?;
    let exclusive = attrs::int(node, "exclusive", 0) != 0;
    let reverse = attrs::int(node, "reverse", 0) != 0;
    let dims = x.dims();
    let (outer, len, inner) = (
        dims[..axis].iter().product::<usize>(),
        dims[axis],
        dims[axis + 1..].iter().product::<usize>(),
    );
    macro_rules! run {
        ($t:ty, $zero:expr, $add:expr) => {{
            let xs = x.flatten_all()?.to_vec1::<$t>()?;
            let mut out = vec![$zero; xs.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let mut acc: $t = $zero;
                    for step in 0..len {
                        let j = if reverse { len - 1 - step } else { step };
                        let at = (o * len + j) * inner + i;
                        if exclusive {
                            out[at] = acc;
                            acc = $add(acc, xs[at]);
                        } else {
                            acc = $add(acc, xs[at]);
                            out[at] = acc;
                        }
                    }
                }
            }
            Tensor::from_vec(out, dims, x.device())
        }};
    }
    match x.dtype() {
        DType::F32 => run!(f32, 0f32, |a: f32, b: f32| a + b),
        DType::F64 => run!(f64, 0f64, |a: f64, b: f64| a + b),
        DType::I64 => run!(i64, 0i64, |a: i64, b: i64| a.wrapping_add(b)),
        DType::U32 => run!(u32, 0u32, |a: u32, b: u32| a.wrapping_add(b)),
        other => bail!("CumSum: {other:?} input"),
    }
}
