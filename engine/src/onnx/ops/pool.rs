//! `MaxPool` and `AveragePool` over any number of spatial axes, with padding, dilation,
//! `ceil_mode`, `auto_pad` and `count_include_pad`; `GlobalMaxPool`, `GlobalAveragePool`.
//!
//! The geometry is worked out here; each window's arithmetic is the kernels'
//! (`inferchain_kernels::window`: values in kernel row-major order, averages summed in
//! binary64 and divided once), so the same bits on every CPU. f32 only.

use super::{attrs, window::Window};
use crate::numerics;
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use inferchain_kernels::window as kernel;
use rayon::prelude::*;

pub fn max_pool(node: &NodeProto, x: &Tensor) -> Result<Tensor> {
    if node.output.iter().skip(1).any(|o| !o.is_empty()) {
        bail!("MaxPool: the Indices output is not supported")
    }
    pool(node, x, |values, _| kernel::max(values))
}

pub fn average_pool(node: &NodeProto, x: &Tensor) -> Result<Tensor> {
    let include_pad = attrs::int(node, "count_include_pad", 0) != 0;
    pool(node, x, move |values, in_padding| {
        let divisor = if include_pad {
            in_padding
        } else {
            values.len()
        };
        kernel::average(values, divisor)
    })
}

/// Marks a kernel position in the padding in [`pool`]'s offset table.
const PADDING: u32 = u32::MAX;

/// Reduces every window of `x` ([N, C, spatial…]) with `reduce`, which gets the window's
/// values inside the input (in kernel row-major order) and the count of its positions
/// inside the padded input. Planes run in parallel; each output is computed alone.
fn pool(
    node: &NodeProto,
    x: &Tensor,
    reduce: impl Fn(&[f32], usize) -> f32 + Sync,
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
    let (planes, in_len, out_len) = (dims[0] * dims[1], window.input_len(), window.output_len());
    if in_len >= PADDING as usize {
        bail!(
            "{}: input planes of {in_len} values are too large",
            node.op_type
        )
    }
    let kernel_len = window.kernel_len();
    // Per output position, its window's input offsets (PADDING outside the input) and
    // how many of its positions lie inside the padded input.
    let (mut offsets, mut in_padding) = (Vec::new(), Vec::new());
    for (taps, padded) in window.taps() {
        offsets.extend(taps.iter().map(|t| t.map_or(PADDING, |o| o as u32)));
        in_padding.push(padded);
    }
    let mut out = vec![0f32; planes * out_len];
    let windows = Windows {
        offsets: &offsets,
        in_padding: &in_padding,
        kernel_len,
        in_len,
        out_len,
    };
    numerics::with_f32(&node.op_type, x, |data| {
        windows.reduce(data, &mut out, &reduce)
    })?;
    let mut out_dims = dims[..2].to_vec();
    out_dims.extend(window.output_dims());
    numerics::tensor(out, out_dims)
}

/// Every window of a pooling node, as input offsets.
struct Windows<'a> {
    offsets: &'a [u32],
    in_padding: &'a [usize],
    kernel_len: usize,
    in_len: usize,
    out_len: usize,
}

impl Windows<'_> {
    /// `out` (one plane after the other) from `data`, plane by plane in parallel.
    fn reduce(
        &self,
        data: &[f32],
        out: &mut [f32],
        reduce: &(impl Fn(&[f32], usize) -> f32 + Sync),
    ) {
        if self.out_len == 0 || self.in_len == 0 {
            return;
        }
        out.par_chunks_mut(self.out_len)
            .zip(data.par_chunks(self.in_len))
            .for_each(|(out, plane)| {
                let mut values = Vec::with_capacity(self.kernel_len);
                for (o, y) in out.iter_mut().enumerate() {
                    values.clear();
                    values.extend(
                        self.offsets[o * self.kernel_len..][..self.kernel_len]
                            .iter()
                            .filter(|&&i| i != PADDING)
                            .map(|&i| plane[i as usize]),
                    );
                    *y = reduce(&values, self.in_padding[o]);
                }
            });
    }
}

/// `GlobalMaxPool` / `GlobalAveragePool`: over every spatial axis, kept as size 1.
pub fn global(x: &Tensor, max: bool) -> Result<Tensor> {
    if x.rank() < 3 {
        bail!("global pooling: input rank {} < 3", x.rank())
    }
    let dims = x.dims();
    let planes = dims[0] * dims[1];
    let len: usize = dims[2..].iter().product();
    let out: Vec<f32> = numerics::with_f32("global pooling", x, |data| {
        data.chunks_exact(len.max(1))
            .take(planes)
            .map(|plane| {
                if max {
                    kernel::max(plane)
                } else {
                    kernel::average(plane, len)
                }
            })
            .collect()
    })?;
    let mut out_dims = dims[..2].to_vec();
    out_dims.extend(std::iter::repeat_n(1, dims.len() - 2));
    numerics::tensor(out, out_dims)
}
