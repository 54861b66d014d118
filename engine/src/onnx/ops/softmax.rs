//! `Softmax` and `LogSoftmax` through the kernels (max, `exp(x - max)`, the 16-lane sum,
//! one division or `- log(sum)` per element).
//!
//! Before opset 13 the input is coerced to 2-D at `axis` (default 1) and normalised over
//! everything from `axis` on; from opset 13 over the one `axis` (default -1).

use super::attrs;
use crate::numerics;
use candle_core::{Result, Tensor};
use candle_onnx::onnx::NodeProto;

pub fn softmax(node: &NodeProto, x: &Tensor, opset: i64, log: bool) -> Result<Tensor> {
    let rank = x.rank();
    let op = node.op_type.as_str();
    let default = if opset < 13 { 1 } else { -1 };
    let axis = attrs::axis(op, attrs::int(node, "axis", default), rank.max(1))?;
    let isa = numerics::isa();
    let row = |xs: &[f32], ys: &mut [f32]| {
        if log {
            inferchain_kernels::log_softmax(isa, xs, ys)
        } else {
            inferchain_kernels::softmax(isa, xs, ys)
        }
    };
    if opset < 13 || axis + 1 == rank {
        // Rows are contiguous: everything from `axis` on (opset < 13) or the last axis.
        let len: usize = if opset < 13 {
            x.dims()[axis..].iter().product()
        } else {
            x.dims()[axis]
        };
        // Read in place, written once by the tasks (no copy, no zeroing on this thread).
        let ys = numerics::with_f32(op, x, |xs| rows_of(xs, len, &row))?;
        return numerics::tensor(ys, x.dims());
    }
    // Another axis: move it last (an exact copy), normalise, move it back.
    let last = rank - 1;
    let moved = x.transpose(axis, last)?.contiguous()?;
    let len = moved.dims()[last];
    let ys = numerics::with_f32(op, &moved, |xs| rows_of(xs, len, &row))?;
    numerics::tensor(ys, moved.dims())?
        .transpose(axis, last)?
        .contiguous()
}

/// `row(x, y)` for every `len`-long row of `xs`, each into the same row of the output
/// (rows as tasks on the kernels' threads).
fn rows_of(xs: &[f32], len: usize, row: &(impl Fn(&[f32], &mut [f32]) + Sync)) -> Vec<f32> {
    if len == 0 {
        return vec![0f32; xs.len()];
    }
    numerics::rows_on_threads(xs.len(), len, |first, ys| {
        for (i, y) in ys.chunks_mut(len).enumerate() {
            row(&xs[(first + i) * len..][..y.len()], y);
        }
    })
}
