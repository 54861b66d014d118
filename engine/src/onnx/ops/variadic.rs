//! The operators over any number of inputs that candle-onnx lacks: `Sum`, `Mean` and
//! `Max` (numpy broadcasting). Sums are taken left to right, one exactly rounded addition
//! per input, so their bits do not depend on the CPU; `Mean` divides that sum by the
//! count (a division, not a multiplication by a reciprocal); `Max` selects, and a NaN in
//! any input makes that element the canonical NaN (numpy's and onnxruntime's rule; candle's
//! `maximum` would keep the other operand when the NaN comes second).

use crate::numerics;
use candle_core::{bail, DType, Result, Tensor};
use inferchain_kernels::math::CANONICAL_NAN;

/// `max(a, b)` per element (numpy broadcasting), NaN if either is NaN.
fn max_f32(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = a.shape().broadcast_shape_binary_op(b.shape(), "Max")?;
    let xs = numerics::to_f32_vec("Max", &a.broadcast_as(&shape)?)?;
    let ys = numerics::to_f32_vec("Max", &b.broadcast_as(&shape)?)?;
    let out = xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| {
            if x.is_nan() || y.is_nan() {
                CANONICAL_NAN
            } else if y > x {
                y
            } else {
                x
            }
        })
        .collect();
    numerics::tensor(out, shape)
}

/// `Sum`, `Mean` or `Max` of `inputs` (all present, at least one).
pub fn fold(op: &str, inputs: &[&Tensor]) -> Result<Tensor> {
    let Some((first, rest)) = inputs.split_first() else {
        bail!("{op}: no inputs")
    };
    let mut acc = (*first).clone();
    for t in rest {
        if t.dtype() != acc.dtype() {
            bail!(
                "{op}: inputs of types {:?} and {:?}",
                acc.dtype(),
                t.dtype()
            )
        }
        acc = match op {
            "Max" if acc.dtype() == DType::F32 => max_f32(&acc, t)?,
            "Max" if acc.dtype().is_float() => {
                bail!(
                    "Max: {:?} inputs; the engine takes floats in f32",
                    acc.dtype()
                )
            }
            "Max" => acc.broadcast_maximum(t)?,
            _ => acc.broadcast_add(t)?,
        };
    }
    if op == "Mean" {
        if !acc.dtype().is_float() {
            bail!(
                "Mean: {:?} inputs; the mean is defined for floats",
                acc.dtype()
            )
        }
        let n = Tensor::new(inputs.len() as f64, acc.device())?.to_dtype(acc.dtype())?;
        acc = acc.broadcast_div(&n)?;
    }
    Ok(acc)
}
