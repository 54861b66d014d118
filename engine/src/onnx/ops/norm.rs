//! `InstanceNormalization`: per sample and channel, `scale * (x - mean) / sqrt(var + eps)
//! + bias` over the spatial axes, in f64 with a fixed summation order.

use super::{attrs, dense};
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;

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
