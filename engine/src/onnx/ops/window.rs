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

/// A 2-D window's input plane split into its stride phases, so that each kernel position
/// reads one contiguous run for the whole plane: phase `(ry, rx)` holds the padded rows
/// `ry, ry + sy, …` and columns `rx, rx + sx, …`; kernel position (ky, kx) reads padded
/// (oy·sy + ky·dy, ox·sx + kx·dx), in phase (ky·dy mod sy, kx·dx mod sx) at
/// (oy + ky·dy div sy, ox + kx·dx div sx). The reads run over a "wide" output whose rows
/// are a phase's width (`wq`) apart; the columns past the output's width (`ow`) read
/// neighbouring values and are dropped.
pub struct StridePhases {
    window: Window,
    /// Phase rows' width, and the values in one phase.
    pub wq: usize,
    phase_len: usize,
    pub ow: usize,
    /// Values of the wide output.
    pub wide: usize,
    /// Per kernel position (row-major), where its run starts in the phases.
    pub reads: Vec<usize>,
}

impl StridePhases {
    /// `None` unless the window has two axes and every window lies inside the padded
    /// input (always so without `ceil_mode`).
    pub fn of(window: &Window) -> Option<StridePhases> {
        let [ay, ax] = window.axes.as_slice() else {
            return None;
        };
        let fits = |a: &Axis| {
            a.output == 0
                || (a.output - 1) * a.stride + (a.kernel - 1) * a.dilation
                    < a.input + a.pad_begin + a.pad_end
        };
        if !fits(ay) || !fits(ax) {
            return None;
        }
        let (sy, sx) = (ay.stride, ax.stride);
        let hq = (ay.input + ay.pad_begin + ay.pad_end).div_ceil(sy);
        let wq = (ax.input + ax.pad_begin + ax.pad_end).div_ceil(sx);
        let phase_len = hq * wq;
        let reads = (0..ay.kernel)
            .flat_map(|ky| {
                (0..ax.kernel).map(move |kx| {
                    let (ry, rx) = (ky * ay.dilation, kx * ax.dilation);
                    ((ry % sy) * sx + rx % sx) * phase_len + (ry / sy) * wq + rx / sx
                })
            })
            .collect();
        Some(StridePhases {
            window: window.clone(),
            wq,
            phase_len,
            ow: ax.output,
            wide: (ay.output.max(1) - 1) * wq + ax.output,
            reads,
        })
    }

    /// [`StridePhases::of`], where the phases hold at most four times the input plane's
    /// values: a padding or stride far larger than the plane (a hostile graph's) would
    /// make the per-plane buffers huge, and the im2col paths cost nothing like it.
    pub fn compact(window: &Window) -> Option<StridePhases> {
        let split = StridePhases::of(window)?;
        let (ay, ax) = (&split.window.axes[0], &split.window.axes[1]);
        let values = (ay.stride * ax.stride).checked_mul(split.phase_len)?;
        (split.in_place() || values <= 4 * (ay.input * ax.input).max(1)).then_some(split)
    }

    /// Whether the phases are the input plane itself: unit strides and no padding.
    fn in_place(&self) -> bool {
        self.window
            .axes
            .iter()
            .all(|a| a.stride == 1 && a.pad_begin == 0 && a.pad_end == 0)
    }

    /// What a [`PhaseBuffer`]'s padding was written for: the layout of the phases and the
    /// padding value (its bits).
    fn layout_key(&self, padding: f32) -> [usize; 8] {
        let (ay, ax) = (&self.window.axes[0], &self.window.axes[1]);
        [
            ay.stride,
            ax.stride,
            ay.pad_begin,
            ax.pad_begin,
            ay.input,
            ax.input,
            self.phase_len,
            padding.to_bits() as usize,
        ]
    }

    /// The phases of the input plane `src`, `padding` where the padded plane lies outside
    /// the input: `src` itself where they are the plane (unit strides, no padding), else
    /// `buffer` with `src`'s values written in. A buffer keeps its padding between planes
    /// of the same layout, so only the input's values are written per plane.
    pub fn phases<'a>(
        &self,
        src: &'a [f32],
        padding: f32,
        buffer: &'a mut PhaseBuffer,
    ) -> &'a [f32] {
        self.fill(src, padding, buffer);
        self.read(src, buffer)
    }

    /// Writes what [`Self::phases`] reads into `buffer` (nothing where they are `src`).
    pub fn fill(&self, src: &[f32], padding: f32, buffer: &mut PhaseBuffer) {
        let rows = self.window.axes[0].input;
        self.fill_rows(src, padding, buffer, 0..rows);
    }

    /// [`Self::fill`] for the input rows `rows` only (the padding is written where the
    /// buffer does not hold it yet): filled row band by row band, just before the output
    /// rows that read them ([`Self::input_rows_for`]), a plane's phases are written and
    /// read while in L1. Once every row is written, the buffer holds what `fill` writes.
    pub fn fill_rows(
        &self,
        src: &[f32],
        padding: f32,
        buffer: &mut PhaseBuffer,
        rows: core::ops::Range<usize>,
    ) {
        if self.in_place() {
            return;
        }
        let key = self.layout_key(padding);
        if buffer.layout != Some(key) {
            let (ay, ax) = (&self.window.axes[0], &self.window.axes[1]);
            buffer.values.clear();
            buffer.values.resize(
                ay.stride * ax.stride * self.phase_len + PHASE_SLACK,
                padding,
            );
            buffer.layout = Some(key);
        }
        self.write_input(src, &mut buffer.values, rows);
    }

    /// How many input rows (from the first) the output rows before `oy` read: their
    /// windows' last rows, inside the input.
    pub fn input_rows_for(&self, oy: usize) -> usize {
        let ay = &self.window.axes[0];
        if oy == 0 {
            return 0;
        }
        let last = (oy - 1) * ay.stride + (ay.kernel.max(1) - 1) * ay.dilation;
        (last + 1).saturating_sub(ay.pad_begin).min(ay.input)
    }

    /// The phases [`Self::fill`] wrote for `src` into `buffer`.
    pub fn read<'a>(&self, src: &'a [f32], buffer: &'a PhaseBuffer) -> &'a [f32] {
        if self.in_place() {
            src
        } else {
            &buffer.values
        }
    }

    /// Writes the input plane's rows `rows` to their places in the phases (the padding
    /// is left as it is).
    fn write_input(&self, src: &[f32], phases: &mut [f32], rows: core::ops::Range<usize>) {
        let (ay, ax) = (&self.window.axes[0], &self.window.axes[1]);
        let (sy, sx, wq, phase_len) = (ay.stride, ax.stride, self.wq, self.phase_len);
        // The padded row `y` lies in phase row `y % sy`, at row `y / sy` of it (kept as a
        // running pair, not divided per row).
        let first = ay.pad_begin + rows.start;
        let (mut ry, mut qy) = (first % sy, first / sy);
        let src = &src[rows.start * ax.input..rows.end * ax.input];
        for row in src.chunks_exact(ax.input) {
            let line = ry * sx * phase_len + qy * wq;
            ry += 1;
            if ry == sy {
                ry = 0;
                qy += 1;
            }
            if sx == 1 {
                copy_short(&mut phases[line + ax.pad_begin..][..ax.input], row);
                continue;
            }
            if sx == 2 {
                // Even and odd input columns to their two phases, a pair at a time.
                let pad = ax.pad_begin;
                let (first, second) = (pad % 2, (pad + 1) % 2);
                let (a0, b0) = (
                    line + first * phase_len + pad / 2,
                    line + second * phase_len + pad.div_ceil(2),
                );
                let pairs = ax.input / 2;
                let (lo, hi) = phases.split_at_mut(line + phase_len);
                let (a, b) = if first == 0 {
                    (
                        &mut lo[a0..][..pairs + ax.input % 2],
                        &mut hi[b0 - line - phase_len..][..pairs],
                    )
                } else {
                    (
                        &mut hi[a0 - line - phase_len..][..pairs + ax.input % 2],
                        &mut lo[b0..][..pairs],
                    )
                };
                for ((pair, da), db) in row.chunks_exact(2).zip(a.iter_mut()).zip(b.iter_mut()) {
                    *da = pair[0];
                    *db = pair[1];
                }
                if ax.input % 2 == 1 {
                    a[pairs] = row[ax.input - 1];
                }
                continue;
            }
            for rx in 0..sx {
                // Input columns ix ≡ rx - pad (mod sx) land in phase column rx.
                let first = (rx + sx - ax.pad_begin % sx) % sx;
                if first >= ax.input {
                    continue;
                }
                let column = (first + ax.pad_begin) / sx;
                let phase = line + rx * phase_len;
                let dst = &mut phases[phase + column..phase + wq];
                for (d, v) in dst.iter_mut().zip(row[first..].iter().step_by(sx)) {
                    *d = *v;
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short rows of small planes, in fixed-size pieces
/// the compiler moves inline: `copy_from_slice` calls `memcpy`, whose call costs more
/// than moving a 16-value row.
pub fn copy_short(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "copy_short: lengths differ");
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let s: &[f32; 8] = s.try_into().expect("8 values");
        d.copy_from_slice(s);
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// Values of padding past a [`PhaseBuffer`]'s phases: every kernel position's run then
/// goes on for a whole register past the wide output, so the kernels read a last,
/// partial register in place (`inferchain_kernels::weighted_slices`) rather than
/// through a copy. (Read values past the output are computed and dropped.)
const PHASE_SLACK: usize = 16;

/// Where a plane's stride phases are written ([`StridePhases::phases`]): reused from
/// plane to plane, it writes its padding once per layout.
#[derive(Default)]
pub struct PhaseBuffer {
    values: Vec<f32>,
    /// The layout and padding value (`StridePhases::layout_key`) the padding is for.
    layout: Option<[usize; 8]>,
}
