//! `MaxPool` and `AveragePool` over any number of spatial axes, with padding, dilation,
//! `ceil_mode`, `auto_pad` and `count_include_pad`; `GlobalMaxPool`, `GlobalAveragePool`.
//!
//! Windows are visited in kernel row-major order and averages are summed in f64 and
//! divided once: a fixed order, so the same bits on every CPU.

use super::{attrs, dense, window::Window};
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;

/// The larger of `m` and `v`; a NaN, once seen, wins (as numpy's max).
fn nan_max(m: f64, v: f64) -> f64 {
    if v > m || v.is_nan() {
        v
    } else {
        m
    }
}

pub fn max_pool(node: &NodeProto, x: &Tensor) -> Result<Tensor> {
    if node.output.iter().skip(1).any(|o| !o.is_empty()) {
        bail!("MaxPool: the Indices output is not supported")
    }
    pool(node, x, |values, _| values.fold(f64::NEG_INFINITY, nan_max))
}

pub fn average_pool(node: &NodeProto, x: &Tensor) -> Result<Tensor> {
    let include_pad = attrs::int(node, "count_include_pad", 0) != 0;
    pool(node, x, |values, in_padding| {
        let (mut sum, mut count) = (0f64, 0usize);
        for v in values {
            sum += v;
            count += 1;
        }
        let divisor = if include_pad { in_padding } else { count };
        sum / divisor.max(1) as f64
    })
}

/// Reduces every window of `x` ([N, C, spatial…]) with `reduce`, which gets the window's
/// values inside the input and the count of its positions inside the padded input.
fn pool(
    node: &NodeProto,
    x: &Tensor,
    reduce: impl Fn(&mut dyn Iterator<Item = f64>, usize) -> f64,
) -> Result<Tensor> {
    let dims = x.dims();
    if dims.len() < 3 {
        bail!("{}: input rank {} < 3", node.op_type, dims.len())
    }
    let Some(kernel) = attrs::ints(node, "kernel_shape") else {
        bail!("{}: no kernel_shape", node.op_type)
    };
    let kernel: Vec<usize> = kernel.iter().map(|&k| k.max(0) as usize).collect();
    let window = Window::of(node, &dims[2..], &kernel)?;
    let taps = window.taps();
    let data = dense::to_f64(x)?;
    let (planes, in_len) = (dims[0] * dims[1], window.input_len());
    let mut out = Vec::with_capacity(planes * window.output_len());
    for plane in data.chunks_exact(in_len.max(1)).take(planes) {
        for (offsets, in_padding) in &taps {
            let mut values = offsets.iter().filter_map(|o| o.map(|o| plane[o]));
            out.push(reduce(&mut values, *in_padding));
        }
    }
    let mut out_dims = dims[..2].to_vec();
    out_dims.extend(window.output_dims());
    dense::from_f64(out, &out_dims, x.dtype())
}

/// `GlobalMaxPool` / `GlobalAveragePool`: over every spatial axis, kept as size 1.
pub fn global(x: &Tensor, max: bool) -> Result<Tensor> {
    if x.rank() < 3 {
        bail!("global pooling: input rank {} < 3", x.rank())
    }
    let dims = x.dims();
    let planes = dims[0] * dims[1];
    let len: usize = dims[2..].iter().product();
    let data = dense::to_f64(x)?;
    let out: Vec<f64> = data
        .chunks_exact(len.max(1))
        .take(planes)
        .map(|plane| {
            if max {
                plane.iter().copied().fold(f64::NEG_INFINITY, nan_max)
            } else {
                plane.iter().sum::<f64>() / len as f64
            }
        })
        .collect();
    let mut out_dims = dims[..2].to_vec();
    out_dims.extend(std::iter::repeat_n(1, dims.len() - 2));
    dense::from_f64(out, &out_dims, x.dtype())
}
