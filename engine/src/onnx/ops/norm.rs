//! Normalizations through the kernels: `LayerNormalization`, `InstanceNormalization`
//! and `BatchNormalization` (inference). Each is, per normalised group, the kernels'
//! `moments` (16-lane sums: `mean = sum / n`, `var = sum((x - mean)^2) / n`,
//! `rstd = 1 / sqrt(var + eps)`; BatchNormalization takes mean and var from its inputs)
//! and `fma((x - mean) * rstd, scale, bias)` per element.

use super::attrs;
use crate::numerics;
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use inferchain_kernels::{layer_norm as kernel_layer_norm, moments, normalize_channel};
use rayon::prelude::*;

/// `InstanceNormalization`: per sample and channel over the spatial axes.
pub fn instance_norm(
    node: &NodeProto,
    x: &Tensor,
    scale: &Tensor,
    bias: &Tensor,
) -> Result<Tensor> {
    let dims = x.dims();
    if dims.len() < 3 {
        bail!("InstanceNormalization: input rank {} < 3", dims.len())
    }
    let (c, len) = (dims[1], dims[2..].iter().product::<usize>());
    let op = "InstanceNormalization";
    let (scale, bias) = (
        numerics::to_f32_vec(op, scale)?,
        numerics::to_f32_vec(op, bias)?,
    );
    if scale.len() != c || bias.len() != c {
        bail!("InstanceNormalization: scale and bias must have {c} values")
    }
    let eps = attrs::float(node, "epsilon", 1e-5);
    let isa = numerics::isa();
    let xs = numerics::to_f32_vec(op, x)?;
    let mut ys = vec![0f32; xs.len()];
    if len > 0 {
        ys.par_chunks_mut(len)
            .zip(xs.par_chunks(len))
            .enumerate()
            .for_each(|(plane, (y, x))| {
                let ch = plane % c;
                let (mean, rstd) = moments(isa, x, eps);
                normalize_channel(isa, x, mean, rstd, scale[ch], bias[ch], y);
            });
    }
    numerics::tensor(ys, dims)
}

/// `BatchNormalization` in inference mode: per channel, the running mean and variance.
pub fn batch_norm(
    node: &NodeProto,
    x: &Tensor,
    scale: &Tensor,
    bias: &Tensor,
    mean: &Tensor,
    var: &Tensor,
) -> Result<Tensor> {
    if attrs::int(node, "training_mode", 0) != 0 {
        bail!("BatchNormalization: training mode is not supported")
    }
    if node.output.iter().skip(1).any(|o| !o.is_empty()) {
        bail!("BatchNormalization: only the Y output is supported")
    }
    let dims = x.dims();
    if dims.len() < 2 {
        bail!("BatchNormalization: input rank {} < 2", dims.len())
    }
    let (c, len) = (dims[1], dims[2..].iter().product::<usize>());
    let op = "BatchNormalization";
    let vec = |t: &Tensor| -> Result<Vec<f32>> {
        let v = numerics::to_f32_vec(op, t)?;
        if v.len() != c {
            bail!("BatchNormalization: per-channel inputs must have {c} values")
        }
        Ok(v)
    };
    let (scale, bias, mean, var) = (vec(scale)?, vec(bias)?, vec(mean)?, vec(var)?);
    let eps = attrs::float(node, "epsilon", 1e-5);
    let isa = numerics::isa();
    let xs = numerics::to_f32_vec(op, x)?;
    let mut ys = vec![0f32; xs.len()];
    if len > 0 {
        ys.par_chunks_mut(len)
            .zip(xs.par_chunks(len))
            .enumerate()
            .for_each(|(plane, (y, x))| {
                let ch = plane % c;
                let rstd = 1.0 / inferchain_kernels::lanes::sqrt(var[ch] + eps);
                normalize_channel(isa, x, mean[ch], rstd, scale[ch], bias[ch], y);
            });
    }
    numerics::tensor(ys, dims)
}

/// `LayerNormalization` (opset 17): over the axes from `axis` to the last. Only the `Y`
/// output; `Mean` and `InvStdDev` are training outputs.
pub fn layer_norm(
    node: &NodeProto,
    x: &Tensor,
    scale: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    if node.output.iter().skip(1).any(|o| !o.is_empty()) {
        bail!("LayerNormalization: only the Y output is supported")
    }
    let axis = attrs::axis("LayerNormalization", attrs::int(node, "axis", -1), x.rank())?;
    let eps = attrs::float(node, "epsilon", 1e-5);
    let dims = x.dims().to_vec();
    let inner: usize = dims[axis..].iter().product();
    let op = "LayerNormalization";
    // Scale and bias broadcast to the normalised shape.
    let norm_shape = &dims[axis..];
    let scale = numerics::to_f32_vec(op, &scale.broadcast_as(norm_shape)?)?;
    let bias = bias
        .map(|b| numerics::to_f32_vec(op, &b.broadcast_as(norm_shape)?))
        .transpose()?;
    let isa = numerics::isa();
    let xs = numerics::to_f32_vec(op, x)?;
    let mut ys = vec![0f32; xs.len()];
    if inner > 0 {
        ys.par_chunks_mut(inner)
            .zip(xs.par_chunks(inner))
            .for_each(|(y, x)| kernel_layer_norm(isa, x, &scale, bias.as_deref(), eps, y));
    }
    numerics::tensor(ys, dims)
}
