//! `Sum` and `Mean` over any number of inputs (numpy broadcasting). Sums are taken left
//! to right, one exactly rounded addition per input (the bits `crate::legalize`'s former
//! rewrite into `Add`s gave), so they do not depend on the CPU; `Mean` divides that sum by
//! the count (a division, not a multiplication by a reciprocal). `Max` stays a rewrite
//! (`-Min(-a, …)`), whose bits registered models already have.

use candle_core::{bail, Result, Tensor};

/// `Sum` or `Mean` of `inputs` (all present, at least one).
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
        acc = acc.broadcast_add(t)?;
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
