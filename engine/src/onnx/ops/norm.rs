//! Normalizations: `InstanceNormalization` and `LayerNormalization`.

use super::{attrs, dense};
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;

/// `InstanceNormalization`: per sample and channel, `scale * (x - mean) / sqrt(var + eps)
/// + bias` over the spatial axes, in f64 with a fixed summation order.
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
    let (scale, bias) = (dense::to_f64(scale)?, dense::to_f64(bias)?);
    if scale.len() != c || bias.len() != c {
        bail!("InstanceNormalization: scale and bias must have {c} values")
    }
    let eps = f64::from(attrs::float(node, "epsilon", 1e-5));
    let mut data = dense::to_f64(x)?;
    for (plane, chunk) in data.chunks_exact_mut(len.max(1)).enumerate() {
        let ch = plane % c;
        let mean = chunk.iter().sum::<f64>() / len as f64;
        let var = chunk.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / len as f64;
        let inv = 1.0 / (var + eps).sqrt();
        for v in chunk.iter_mut() {
            *v = scale[ch] * (*v - mean) * inv + bias[ch];
        }
    }
    dense::from_f64(data, dims, x.dtype())
}

/// `LayerNormalization` (opset 17): over the axes from `axis` to the last, `(x - mean) /
/// sqrt(var + eps) * scale + bias`, two passes (mean, then the squared deviations) with
/// candle's element-wise kernels. Only the `Y` output; `Mean` and `InvStdDev` are
/// training outputs.
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
    let eps = f64::from(attrs::float(node, "epsilon", 1e-5));
    let dims = x.dims().to_vec();
    let inner: usize = dims[axis..].iter().product();
    let rows = x.reshape((x.elem_count() / inner.max(1), inner))?;
    let mean = (rows.sum_keepdim(1)? / inner as f64)?;
    let centered = rows.broadcast_sub(&mean)?;
    let var = (centered.sqr()?.sum_keepdim(1)? / inner as f64)?;
    let normed = centered
        .broadcast_div(&(var + eps)?.sqrt()?)?
        .reshape(dims)?;
    let y = normed.broadcast_mul(scale)?;
    match bias {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}
