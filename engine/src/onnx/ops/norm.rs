//! Normalizations through the kernels: `LayerNormalization`, `InstanceNormalization`,
//! `GroupNormalization` and `BatchNormalization` (inference). Each is, per normalised
//! group, the kernels' `moments` (16-lane sums: `mean = sum / n`,
//! `var = sum((x - mean)^2) / n`, `rstd = 1 / sqrt(var + eps)`; BatchNormalization takes
//! mean and var from its inputs) and `fma((x - mean) * rstd, scale, bias)` per element.
//! `LRN` is the kernels' `lrn` per sample.

use super::attrs;
use crate::kernel_threads;
use crate::numerics;
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use inferchain_kernels::{layer_norm as kernel_layer_norm, moments, normalize_channel};

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
        kernel_threads::for_each_row_mut(&mut ys, len, |plane, y| {
            let x = &xs[plane * len..][..len];
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
        kernel_threads::for_each_row_mut(&mut ys, len, |plane, y| {
            let x = &xs[plane * len..][..len];
            let ch = plane % c;
            let rstd = 1.0 / inferchain_kernels::lanes::sqrt(var[ch] + eps);
            normalize_channel(isa, x, mean[ch], rstd, scale[ch], bias[ch], y);
        });
    }
    numerics::tensor(ys, dims)
}

/// `LayerNormalization`'s optional `Mean` and `InvStdDev` outputs: per normalised row,
/// the kernels' `moments` (the very values `Y` is computed from), shaped as `x` with the
/// normalised axes kept as 1.
pub fn layer_norm_stats(node: &NodeProto, x: &Tensor) -> Result<(Tensor, Tensor)> {
    let axis = attrs::axis("LayerNormalization", attrs::int(node, "axis", -1), x.rank())?;
    let eps = attrs::float(node, "epsilon", 1e-5);
    let dims = x.dims().to_vec();
    let inner: usize = dims[axis..].iter().product();
    let isa = numerics::isa();
    let xs = numerics::to_f32_vec("LayerNormalization", x)?;
    let (mut means, mut rstds) = (Vec::new(), Vec::new());
    if inner > 0 {
        for row in xs.chunks(inner) {
            let (mean, rstd) = moments(isa, row, eps);
            means.push(mean);
            rstds.push(rstd);
        }
    }
    let mut shape = dims[..axis].to_vec();
    shape.resize(dims.len(), 1);
    Ok((
        numerics::tensor(means, shape.clone())?,
        numerics::tensor(rstds, shape)?,
    ))
}

/// `LayerNormalization` (opset 17): over the axes from `axis` to the last (the `Y`
/// output; [`layer_norm_stats`] gives the others).
pub fn layer_norm(
    node: &NodeProto,
    x: &Tensor,
    scale: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
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
        kernel_threads::for_each_row_pair(&mut ys, inner, &xs, inner, |y, x| {
            kernel_layer_norm(isa, x, &scale, bias.as_deref(), eps, y)
        });
    }
    numerics::tensor(ys, dims)
}

/// `GroupNormalization`: per sample, the channels split into `num_groups` consecutive
/// groups, each normalised over its channels and spatial positions together, then scaled
/// and shifted per channel (opset 21) or per group (opset 18, since deprecated).
pub fn group_norm(
    node: &NodeProto,
    x: &Tensor,
    scale: &Tensor,
    bias: &Tensor,
    opset: i64,
) -> Result<Tensor> {
    let op = "GroupNormalization";
    let dims = x.dims();
    if dims.len() < 2 {
        bail!("{op}: input rank {} < 2", dims.len())
    }
    let groups = attrs::int(node, "num_groups", 0);
    let c = dims[1];
    if groups <= 0 || !c.is_multiple_of(groups as usize) {
        bail!("{op}: num_groups {groups} does not divide the {c} channels")
    }
    if attrs::int(node, "stash_type", 1) != 1 {
        bail!("{op}: only stash_type 1 (statistics in f32) is supported")
    }
    let groups = groups as usize;
    let per_group = c / groups;
    let plane: usize = dims[2..].iter().product();
    let (scale, bias) = (
        numerics::to_f32_vec(op, scale)?,
        numerics::to_f32_vec(op, bias)?,
    );
    let per_channel = |v: Vec<f32>| -> Result<Vec<f32>> {
        match v.len() {
            n if n == c && opset >= 21 => Ok(v),
            n if n == groups && opset < 21 => Ok((0..c).map(|ch| v[ch / per_group]).collect()),
            n => bail!(
                "{op}: scale and bias have {n} values; opset {opset} wants one per {}",
                if opset >= 21 { "channel" } else { "group" }
            ),
        }
    };
    let (scale, bias) = (per_channel(scale)?, per_channel(bias)?);
    let eps = attrs::float(node, "epsilon", 1e-5);
    let isa = numerics::isa();
    let xs = numerics::to_f32_vec(op, x)?;
    let mut ys = vec![0f32; xs.len()];
    let block = per_group * plane;
    if block > 0 {
        kernel_threads::for_each_row_mut(&mut ys, block, |index, y| {
            let x = &xs[index * block..][..block];
            let first = (index % groups) * per_group;
            let (mean, rstd) = moments(isa, x, eps);
            for (k, (y, x)) in y.chunks_mut(plane).zip(x.chunks(plane)).enumerate() {
                let ch = first + k;
                normalize_channel(isa, x, mean, rstd, scale[ch], bias[ch], y);
            }
        });
    }
    numerics::tensor(ys, dims)
}

/// `LRN`: each value divided by a power of the sum of squares across neighbouring
/// channels (`inferchain_kernels::lrn::lrn`), per sample.
pub fn lrn(node: &NodeProto, x: &Tensor) -> Result<Tensor> {
    let op = "LRN";
    let dims = x.dims();
    if dims.len() < 3 {
        bail!("{op}: input rank {} < 3", dims.len())
    }
    let size = attrs::int(node, "size", 0);
    if size <= 0 {
        bail!("{op}: attribute `size` must be positive, got {size}")
    }
    let alpha = attrs::float(node, "alpha", 1e-4);
    let beta = attrs::float(node, "beta", 0.75);
    let bias = attrs::float(node, "bias", 1.0);
    let (c, plane) = (dims[1], dims[2..].iter().product::<usize>());
    let xs = numerics::to_f32_vec(op, x)?;
    let mut ys = vec![0f32; xs.len()];
    let sample = c * plane;
    if sample > 0 {
        kernel_threads::for_each_row_pair(&mut ys, sample, &xs, sample, |y, x| {
            inferchain_kernels::lrn::lrn(x, c, plane, size as usize, alpha, beta, bias, y)
        });
    }
    numerics::tensor(ys, dims)
}
