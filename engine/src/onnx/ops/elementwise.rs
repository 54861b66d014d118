//! Element-wise operators that are exact compositions of IEEE-754 operations (each
//! rounded once, in a fixed order) and that candle-onnx lacks: `Reciprocal` (`1 / x`),
//! `Softsign` (`x / (1 + |x|)`), `ThresholdedRelu` (`x > alpha ? x : 0`) and `Round`
//! (to nearest, ties to even: the kernels' `quantize::round_ties_even`), on f32.
//! (`Shrink` stays `crate::legalize`'s rewrite, whose bits registered models already
//! have: its middle is `x * 0`, a negative zero for negative `x`.)

use super::attrs;
use crate::numerics;
use candle_core::{Result, Tensor};
use candle_onnx::onnx::NodeProto;

/// Whether this module computes `op`.
pub fn computes(op: &str) -> bool {
    matches!(op, "Reciprocal" | "Softsign" | "ThresholdedRelu" | "Round")
}

/// `node` (one of [`computes`]) applied to every element of `x`.
pub fn apply(node: &NodeProto, x: &Tensor) -> Result<Tensor> {
    let op = node.op_type.as_str();
    let mut values = numerics::to_f32_vec(op, x)?;
    match op {
        "Reciprocal" => values.iter_mut().for_each(|v| *v = 1.0 / *v),
        "Softsign" => values.iter_mut().for_each(|v| *v /= 1.0 + v.abs()),
        "Round" => values
            .iter_mut()
            .for_each(|v| *v = inferchain_kernels::quantize::round_ties_even(*v)),
        _ => {
            let alpha = attrs::float(node, "alpha", 1.0);
            values
                .iter_mut()
                .for_each(|v| *v = if *v > alpha { *v } else { 0.0 });
        }
    }
    numerics::tensor(values, x.dims())
}

/// `Add(a, b)` of two f32 tensors of one shape and one dense layout
/// (`crate::channels_last::same_dense_layout`): `a + b` per element, in the inputs'
/// layout.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let sum = crate::channels_last::with_dense(a, |xs| {
        crate::channels_last::with_dense(b, |ys| {
            xs.iter().zip(ys).map(|(x, y)| x + y).collect::<Vec<f32>>()
        })
    });
    match sum.flatten() {
        Some(values) => crate::channels_last::tensor_like(values, a),
        None => candle_core::bail!("Add: operands of different layouts"),
    }
}
