//! Sliding-window geometry shared by pooling and convolution: per spatial axis, the
//! kernel, stride, dilation and padding, the output size they give (`auto_pad`,
//! `ceil_mode`), and for each (output, kernel) position the input position it reads.

use super::attrs;
use candle_core::{bail, Result};
use candle_onnx::onnx::NodeProto;

/// One spatial axis.
#[derive(Debug, Clone)]
pub struct Axis {
    pub input: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    pub pad_begin: usize,
    pub pad_end: usize,
    pub output: usize,
}

impl Axis {
    /// The input position read by output `o` at kernel offset `k`, if inside the input.
    pub fn source(&self, o: usize, k: usize) -> Option<usize> {
        let p = (o * self.stride + k * self.dilation) as isize - self.pad_begin as isize;
        (p >= 0 && (p as usize) < self.input).then_some(p as usize)
    }

    /// Whether output `o` at kernel offset `k` lies inside the padded input.
    pub fn inside_padding(&self, o: usize, k: usize) -> bool {
        o * self.stride + k * self.dilation < self.input + self.pad_begin + self.pad_end
    }
}

/// The geometry of a window over every spatial axis.
#[derive(Debug, Clone)]
pub struct Window {
    pub axes: Vec<Axis>,
}

impl Window {
    /// The geometry of a pooling or convolution node over `input` (spatial sizes) with
    /// `kernel`, reading `strides`, `dilations`, `pads`, `auto_pad` (and `ceil_mode`
    /// when `ceil_mode` is allowed).
    pub fn of(node: &NodeProto, input: &[usize], kernel: &[usize]) -> Result<Window> {
        let n = input.len();
        if kernel.len() != n {
            bail!(
                "{}: kernel {kernel:?} does not match the {n} spatial axes of the input",
                node.op_type
            )
        }
        let strides = attrs::sizes(node, "strides", n, 1)?;
        let dilations = attrs::sizes(node, "dilations", n, 1)?;
        let pads = attrs::sizes(node, "pads", 2 * n, 0)?;
        let ceil = attrs::int(node, "ceil_mode", 0) != 0;
        let auto_pad = attrs::string(node, "auto_pad", "NOTSET");
        let mut axes = Vec::with_capacity(n);
        for i in 0..n {
            let (stride, dilation) = (strides[i], dilations[i]);
            if stride == 0 || dilation == 0 || kernel[i] == 0 {
                bail!("{}: zero kernel, stride or dilation", node.op_type)
            }
            let reach = (kernel[i] - 1) * dilation + 1;
            let (pad_begin, pad_end) = match auto_pad.as_str() {
                "NOTSET" => (pads[i], pads[n + i]),
                "VALID" => (0, 0),
                "SAME_UPPER" | "SAME_LOWER" => {
                    let out = input[i].div_ceil(stride);
                    let total = ((out - 1) * stride + reach).saturating_sub(input[i]);
                    if auto_pad == "SAME_UPPER" {
                        (total / 2, total - total / 2)
                    } else {
                        (total - total / 2, total / 2)
                    }
                }
                other => bail!("{}: unknown auto_pad `{other}`", node.op_type),
            };
            let padded = input[i] + pad_begin + pad_end;
            if padded < reach {
                bail!(
                    "{}: the kernel ({reach} wide) is larger than the padded input ({padded})",
                    node.op_type
                )
            }
            let span = padded - reach;
            let mut output = if ceil {
                span.div_ceil(stride) + 1
            } else {
                span / stride + 1
            };
            // With ceil_mode, a last window starting in the end padding is dropped.
            if ceil && (output - 1) * stride >= input[i] + pad_begin {
                output -= 1;
            }
            axes.push(Axis {
                input: input[i],
                kernel: kernel[i],
                stride,
                dilation,
                pad_begin,
                pad_end,
                output,
            });
        }
        Ok(Window { axes })
    }

    pub fn output_dims(&self) -> Vec<usize> {
        self.axes.iter().map(|a| a.output).collect()
    }

    pub fn input_len(&self) -> usize {
        self.axes.iter().map(|a| a.input).product()
    }

    pub fn output_len(&self) -> usize {
        self.axes.iter().map(|a| a.output).product()
    }

    pub fn kernel_len(&self) -> usize {
        self.axes.iter().map(|a| a.kernel).product()
    }

    /// For every output position (row-major), the flat input offsets its window reads, in
    /// kernel row-major order (`None` where the window is in the padding), and how many
    /// of its kernel positions lie inside the padded input.
    pub fn taps(&self) -> Vec<(Vec<Option<usize>>, usize)> {
        let (outputs, kernels) = (self.output_len(), self.kernel_len());
        let mut all = Vec::with_capacity(outputs);
        let out_dims = self.output_dims();
        let kernel_dims: Vec<usize> = self.axes.iter().map(|a| a.kernel).collect();
        let mut o_idx = vec![0usize; self.axes.len()];
        let mut k_idx = vec![0usize; self.axes.len()];
        for o in 0..outputs {
            unravel(o, &out_dims, &mut o_idx);
            let mut taps = Vec::with_capacity(kernels);
            let mut in_padding = 0;
            for k in 0..kernels {
                unravel(k, &kernel_dims, &mut k_idx);
                let mut offset = 0usize;
                let mut valid = true;
                let mut padded = true;
                for (i, axis) in self.axes.iter().enumerate() {
                    padded &= axis.inside_padding(o_idx[i], k_idx[i]);
                    match axis.source(o_idx[i], k_idx[i]) {
                        Some(p) => offset = offset * axis.input + p,
                        None => valid = false,
                    }
                }
                in_padding += usize::from(padded);
                taps.push(valid.then_some(offset));
            }
            all.push((taps, in_padding));
        }
        all
    }
}

/// Row-major multi-index of `flat` in `dims`.
pub fn unravel(mut flat: usize, dims: &[usize], out: &mut [usize]) {
    for (i, &d) in dims.iter().enumerate().rev() {
        out[i] = flat % d;
        flat /= d;
    }
}
