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
    if !crate::channels_last::same_dense_layout(a, b) {
        candle_core::bail!("Add: operands of different shapes or layouts")
    }
    let sum = crate::channels_last::with_dense(a, |xs| {
        crate::channels_last::with_dense(b, |ys| {
            xs.iter().zip(ys).map(|(x, y)| x + y).collect::<Vec<f32>>()
        })
    });
    match sum.flatten() {
        Some(values) => crate::channels_last::tensor_like(values, a),
        None => candle_core::bail!("Add: an operand's values could not be read"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The engine's same-layout `Add` gives candle's `a + b` bits, row-major or channels
    /// last, and keeps the layout.
    #[test]
    fn add_keeps_candles_bits_and_the_layout() {
        let a: Vec<f32> = (0..2 * 4 * 3 * 5)
            .map(|i| (i as f32 * 0.731).sin() * 1e3)
            .collect();
        let b: Vec<f32> = (0..a.len())
            .map(|i| (i as f32 * 1.37).cos() * 1e-3)
            .collect();
        let dims = [2, 4, 3, 5];
        let (ra, rb) = (
            Tensor::from_vec(a.clone(), &dims, &Device::Cpu).unwrap(),
            Tensor::from_vec(b.clone(), &dims, &Device::Cpu).unwrap(),
        );
        let want = ra.broadcast_add(&rb).unwrap().flatten_all().unwrap();
        let want = want.to_vec1::<f32>().unwrap();
        let row_major = add(&ra, &rb).unwrap();
        assert_eq!(
            row_major.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want
        );
        let (ca, cb) = (
            crate::channels_last::tensor(a, &dims).unwrap(),
            crate::channels_last::tensor(b, &dims).unwrap(),
        );
        let want = ca.broadcast_add(&cb).unwrap().flatten_all().unwrap();
        let got = add(&ca, &cb).unwrap();
        assert!(crate::channels_last::is_channels_last(&got));
        assert_eq!(
            got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want.to_vec1::<f32>().unwrap()
        );
        // Different layouts are not paired element by element.
        assert!(add(&ra, &cb).is_err());
    }
}
