//! `MaxPool` and `AveragePool` over any number of spatial axes, with padding, dilation,
//! `ceil_mode`, `auto_pad` and `count_include_pad`; `GlobalMaxPool`, `GlobalAveragePool`.
//!
//! The geometry is worked out here; each window's arithmetic is the kernels'
//! (`inferchain_kernels::window`: values in kernel row-major order, averages summed in
//! binary64 and divided once), so the same bits on every CPU. f32 only.

use super::{
    attrs,
    window::{PhaseBuffer, StridePhases, Window},
};
use crate::{kernel_threads, numerics};
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use inferchain_kernels::window as kernel;

pub fn max_pool(node: &NodeProto, x: &Tensor) -> Result<Tensor> {
    if node.output.iter().skip(1).any(|o| !o.is_empty()) {
        bail!("MaxPool: the Indices output is not supported")
    }
    if let Some(out) = planar_max(node, x)? {
        return Ok(out);
    }
    pool(node, x, |values, _| kernel::max(values))
}

/// `MaxPool` over two spatial axes, a whole plane at a time ([`StridePhases`]): per
/// output, the kernels' window maximum taken lane by lane (`window_max_runs`: kernel
/// positions in row-major order, `v > m ? v : m` from -∞, a NaN anywhere giving the
/// canonical NaN), padding read as -∞, which never replaces anything: the bits of
/// [`kernel::max`] over the window's values inside the input. `None` where it does not apply (other ranks, `ceil_mode`
/// windows past the padding, or while kernel calls are being recorded).
fn planar_max(node: &NodeProto, x: &Tensor) -> Result<Option<Tensor>> {
    let dims = x.dims();
    let Some(kernel_shape) = attrs::ints(node, "kernel_shape") else {
        return Ok(None);
    };
    if dims.len() != 4 || kernel_shape.len() != 2 || inferchain_kernels::trace::on() {
        return Ok(None);
    }
    let kernel_shape: Vec<usize> = kernel_shape.iter().map(|&k| k.max(0) as usize).collect();
    let window = Window::of(node, &dims[2..], &kernel_shape)?;
    let Some(split) = StridePhases::of(&window) else {
        return Ok(None);
    };
    let (in_len, p) = (window.input_len(), window.output_len());
    let len = dims[0] * dims[1] * p;
    let out = if p > 0 && in_len > 0 {
        let (wq, ow, wide) = (split.wq, split.ow, split.wide);
        let isa = numerics::isa();
        numerics::with_f32(&node.op_type, x, |data| {
            // Planes per task: a few tasks per thread, each with its phase buffer (its
            // padding written once per task) and row of maxima, and its part of the
            // output (zeroed by the task, not by this thread first).
            let planes = data.len() / in_len;
            let per_task = kernel_threads::rows_per_task(planes);
            numerics::zeroed_on_threads(len, per_task * p, |task, dst| {
                let (mut buffer, mut max) = (PhaseBuffer::default(), Vec::new());
                for (i, dst) in dst.chunks_exact_mut(p).enumerate() {
                    let plane = &data[(task * per_task + i) * in_len..][..in_len];
                    let phases = split.phases(plane, f32::NEG_INFINITY, &mut buffer);
                    let runs: Vec<&[f32]> = split.reads.iter().map(|&at| &phases[at..]).collect();
                    max.resize(wide, f32::NEG_INFINITY);
                    inferchain_kernels::window_max_runs(isa, &runs, &mut max);
                    for (oy, row) in dst.chunks_exact_mut(ow).enumerate() {
                        super::window::copy_short(row, &max[oy * wq..][..ow]);
                    }
                }
            })
        })?
    } else {
        vec![0f32; len]
    };
    let mut out_dims = dims[..2].to_vec();
    out_dims.extend(window.output_dims());
    numerics::tensor(out, out_dims).map(Some)
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
        kernel_threads::for_each_row_pair(out, self.out_len, data, self.in_len, |out, plane| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_onnx::onnx::{attribute_proto::AttributeType, AttributeProto};

    fn max_pool_node(
        kernel: i64,
        stride: i64,
        pads: [i64; 4],
        dilation: i64,
        ceil: i64,
    ) -> NodeProto {
        let ints = |name: &str, v: Vec<i64>| AttributeProto {
            name: name.into(),
            ints: v,
            r#type: AttributeType::Ints as i32,
            ..Default::default()
        };
        NodeProto {
            op_type: "MaxPool".into(),
            attribute: vec![
                ints("kernel_shape", vec![kernel; 2]),
                ints("strides", vec![stride; 2]),
                ints("pads", pads.to_vec()),
                ints("dilations", vec![dilation; 2]),
                AttributeProto {
                    name: "ceil_mode".into(),
                    i: ceil,
                    r#type: AttributeType::Int as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    /// The whole-plane maximum gives the window-by-window bits: every stride, padding
    /// and dilation (unit strides without padding read in place), signed zeros (the
    /// first of equal maxima wins), NaNs and -∞.
    #[test]
    fn planar_max_pool_matches_the_window_by_window_one() {
        let (h, w) = (13usize, 18usize);
        let values: Vec<f32> = (0..2 * 3 * h * w)
            .map(|i| match i % 29 {
                0 => f32::NAN,
                1 => -0.0,
                2 => 0.0,
                3 => f32::NEG_INFINITY,
                _ => ((i * 7919 % 113) as f32 - 56.0) * 0.5,
            })
            .collect();
        let x = Tensor::from_vec(values, (2, 3, h, w), &Device::Cpu).expect("x");
        let cases = [
            (3, 2, [1, 1, 1, 1], 1, 0),
            (3, 1, [1, 1, 1, 1], 1, 0),
            // Unit strides, no padding: the plane is read in place.
            (3, 1, [0, 0, 0, 0], 1, 0),
            (2, 2, [0, 0, 0, 0], 1, 0),
            (3, 3, [2, 0, 1, 2], 2, 0),
            (5, 2, [2, 2, 2, 2], 1, 0),
            (3, 2, [0, 0, 0, 0], 1, 1),
        ];
        for (k, s, pads, d, ceil) in cases {
            let node = max_pool_node(k, s, pads, d, ceil);
            let reference = pool(&node, &x, |v, _| kernel::max(v)).expect("pool");
            let bits = |t: &Tensor| {
                t.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .expect("values")
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<u32>>()
            };
            let got = max_pool(&node, &x).expect("max_pool");
            assert_eq!(got.dims(), reference.dims());
            assert_eq!(
                bits(&got),
                bits(&reference),
                "k{k} s{s} {pads:?} d{d} ceil{ceil}"
            );
            if ceil == 0 {
                assert!(
                    planar_max(&node, &x).expect("planar").is_some(),
                    "k{k} s{s} takes the planar path"
                );
            }
        }
    }
}
