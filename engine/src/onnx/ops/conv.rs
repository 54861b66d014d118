//! Convolutions.
//!
//! * `Conv`, every form (1-D, 2-D, 3-D and more, groups, depthwise, dilation, padding,
//!   `auto_pad`), on f32: im2col, then the kernels' matrix product per group. Its
//!   definition (`inferchain-kernels`): each output element is one FMA chain, from +0,
//!   over (input channel of the group, kernel position in row-major order), a padded
//!   position contributing `fma(w, 0, acc)`; then `+ bias`.
//! * `ConvTranspose` in every form (groups, dilation, asymmetric pads, `output_padding`,
//!   `output_shape`, `auto_pad`): direct loops accumulating in f64 in a fixed order
//!   (input channel, then kernel row-major), rounded once: the same bits on every CPU;
//!   not fast.

use super::{attrs, dense, window::Window};
use crate::numerics::{self, Rayon};
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use inferchain_kernels::{gemm, Bias, MatRef, PackedB};
use rayon::prelude::*;

/// Columns per matrix product the im2col path aims for: enough for the product to run
/// near its peak, few enough that the columns stay in cache-sized pieces. (Any value
/// gives the same bits: columns are independent outputs.)
const GEMM_COLUMNS: usize = 2048;

/// `Conv(X, W, B?)`: X [N, C, spatial…], W [M, C/group, kernel…], B [M].
pub fn conv(node: &NodeProto, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let (xd, wd) = (x.dims().to_vec(), w.dims().to_vec());
    if xd.len() < 3 || wd.len() != xd.len() {
        bail!("Conv: input {xd:?} and weight {wd:?} ranks do not match")
    }
    let group = attrs::int(node, "group", 1).max(1) as usize;
    let (n, c, m) = (xd[0], xd[1], wd[0]);
    if c != wd[1] * group || m % group != 0 {
        bail!("Conv: {c} input channels, weight {wd:?} and group {group} do not fit")
    }
    let window = Window::of(node, &xd[2..], &wd[2..])?;
    let (cg, mg) = (c / group, m / group);
    let (in_len, taps_len, p) = (window.input_len(), window.kernel_len(), window.output_len());
    let k = cg * taps_len;
    let xs = numerics::to_f32_vec("Conv", x)?;
    let ws = numerics::to_f32_vec("Conv", w)?;
    let bias = b.map(|b| numerics::to_f32_vec("Conv", b)).transpose()?;
    if bias.as_ref().is_some_and(|b| b.len() != m) {
        bail!("Conv: bias must have {m} values")
    }
    let im2col = Im2col::new(&window);
    let isa = numerics::isa();
    let chunk = GEMM_COLUMNS.div_ceil(p.max(1)).clamp(1, n.max(1));
    let mut out = vec![0f32; n * m * p];
    for first in (0..n).step_by(chunk) {
        let samples = chunk.min(n - first);
        let cols_n = samples * p;
        for g in 0..group {
            let mut cols = vec![0f32; k * cols_n];
            // Rows are independent copies: filled in parallel, the same bytes in any order.
            cols.par_chunks_exact_mut(cols_n.max(1))
                .enumerate()
                .for_each(|(row, dst)| {
                    let (ic, tap) = (row / taps_len, row % taps_len);
                    for s in 0..samples {
                        let plane = &xs[((first + s) * c + g * cg + ic) * in_len..][..in_len];
                        im2col.fill(tap, plane, &mut dst[s * p..][..p]);
                    }
                });
            let packed = PackedB::pack(isa, MatRef::row_major(&cols, k, cols_n));
            drop(cols);
            let a = MatRef::row_major(&ws[g * mg * k..][..mg * k], mg, k);
            let bias = match &bias {
                Some(b) => Bias::Row(&b[g * mg..][..mg]),
                None => Bias::None,
            };
            let mut y = vec![0f32; mg * cols_n];
            gemm(isa, a, &packed, bias, &mut y, &Rayon);
            for (oc, row) in y.chunks_exact(cols_n.max(1)).enumerate() {
                for (s, pixels) in row.chunks_exact(p.max(1)).enumerate() {
                    out[((first + s) * m + g * mg + oc) * p..][..p].copy_from_slice(pixels);
                }
            }
        }
    }
    let mut dims = vec![n, m];
    dims.extend(window.output_dims());
    numerics::tensor(out, dims)
}

/// Where each kernel position reads the input, for every output position.
enum Im2col {
    /// Two spatial axes: per kernel position, whole output rows copied as slices.
    Planar {
        window: Window,
        /// Per kernel column kx: the output columns that read inside the input, and the
        /// input column the first of them reads.
        spans: Vec<(usize, usize, usize)>,
    },
    /// Any rank: the input offset (or padding) per (output position, kernel position).
    General {
        taps: Vec<Option<usize>>,
        kernel_len: usize,
    },
}

impl Im2col {
    fn new(window: &Window) -> Im2col {
        if window.axes.len() == 2 {
            let ax = &window.axes[1];
            let spans = (0..ax.kernel)
                .map(|kx| {
                    let inside: Vec<usize> = (0..ax.output)
                        .filter(|&ox| ax.source(ox, kx).is_some())
                        .collect();
                    match (inside.first(), inside.last()) {
                        (Some(&lo), Some(&hi)) => (lo, hi + 1, ax.source(lo, kx).unwrap_or(0)),
                        _ => (0, 0, 0),
                    }
                })
                .collect();
            Im2col::Planar {
                window: window.clone(),
                spans,
            }
        } else {
            let kernel_len = window.kernel_len();
            let taps = window.taps().into_iter().flat_map(|(t, _)| t).collect();
            Im2col::General { taps, kernel_len }
        }
    }

    /// Writes kernel position `tap`'s value for every output position of one input
    /// plane into `dst` (zero where it reads padding).
    fn fill(&self, tap: usize, plane: &[f32], dst: &mut [f32]) {
        match self {
            Im2col::Planar { window, spans } => {
                let (ay, ax) = (&window.axes[0], &window.axes[1]);
                let (ky, kx) = (tap / ax.kernel, tap % ax.kernel);
                let (lo, hi, start) = spans[kx];
                let w = ax.input;
                for oy in 0..ay.output {
                    let row = &mut dst[oy * ax.output..][..ax.output];
                    let Some(iy) = ay.source(oy, ky) else {
                        row.fill(0.0);
                        continue;
                    };
                    row[..lo].fill(0.0);
                    row[hi..].fill(0.0);
                    let src = &plane[iy * w..][..w];
                    let row = &mut row[lo..hi];
                    if ax.stride == 1 {
                        row.copy_from_slice(&src[start..start + (hi - lo)]);
                    } else {
                        for (i, d) in row.iter_mut().enumerate() {
                            *d = src[start + i * ax.stride];
                        }
                    }
                }
            }
            Im2col::General { taps, kernel_len } => {
                for (o, d) in dst.iter_mut().enumerate() {
                    *d = taps[o * kernel_len + tap].map_or(0.0, |i| plane[i]);
                }
            }
        }
    }
}

/// `ConvTranspose(X, W, B?)`: X [N, C, spatial…], W [C, M/group, kernel…], B [M].
pub fn conv_transpose(
    node: &NodeProto,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> Result<Tensor> {
    let (xd, wd) = (x.dims().to_vec(), w.dims().to_vec());
    if xd.len() < 3 || wd.len() != xd.len() {
        bail!("ConvTranspose: input {xd:?} and weight {wd:?} ranks do not match")
    }
    let s = xd.len() - 2;
    let group = attrs::int(node, "group", 1).max(1) as usize;
    let (n, c) = (xd[0], xd[1]);
    if c != wd[0] || c % group != 0 {
        bail!("ConvTranspose: {c} input channels, weight {wd:?} and group {group} do not fit")
    }
    let (cg, mg) = (c / group, wd[1]);
    let m = mg * group;
    let kernel = &wd[2..];
    let strides = attrs::sizes(node, "strides", s, 1)?;
    let dilations = attrs::sizes(node, "dilations", s, 1)?;
    let out_pad = attrs::sizes(node, "output_padding", s, 0)?;
    let pads = attrs::sizes(node, "pads", 2 * s, 0)?;
    let auto_pad = attrs::string(node, "auto_pad", "NOTSET");
    let output_shape =
        attrs::ints(node, "output_shape").map(|v| v[v.len().saturating_sub(s)..].to_vec());
    let mut begin = vec![0usize; s];
    let mut out_dims = vec![0usize; s];
    for i in 0..s {
        let reach = (kernel[i] - 1) * dilations[i] + 1;
        let full = strides[i] * (xd[2 + i] - 1) + out_pad[i] + reach;
        let target = match (&output_shape, auto_pad.as_str()) {
            (Some(shape), _) => Some(shape[i].max(0) as usize),
            (None, "SAME_UPPER" | "SAME_LOWER") => Some(xd[2 + i] * strides[i]),
            _ => None,
        };
        match target {
            Some(out) => {
                let total = full.checked_sub(out).ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "ConvTranspose: output size {out} is larger than {full}"
                    ))
                })?;
                begin[i] = if auto_pad == "SAME_UPPER" {
                    total / 2
                } else {
                    total - total / 2
                };
                out_dims[i] = out;
            }
            None => {
                begin[i] = pads[i];
                out_dims[i] = full
                    .checked_sub(pads[i] + pads[s + i])
                    .filter(|&o| o > 0)
                    .ok_or_else(|| {
                        candle_core::Error::Msg(
                            "ConvTranspose: pads remove the whole output".into(),
                        )
                    })?;
            }
        }
    }
    let in_len: usize = xd[2..].iter().product();
    let k_len: usize = kernel.iter().product();
    let out_len: usize = out_dims.iter().product();
    let (xv, wv) = (dense::to_f64(x)?, dense::to_f64(w)?);
    let mut out = vec![0f64; n * m * out_len];
    let mut i_idx = vec![0usize; s];
    let mut k_idx = vec![0usize; s];
    for batch in 0..n {
        for ic in 0..c {
            let g = ic / cg;
            let plane = &xv[(batch * c + ic) * in_len..][..in_len];
            for (i, &value) in plane.iter().enumerate() {
                super::window::unravel(i, &xd[2..], &mut i_idx);
                for k in 0..k_len {
                    super::window::unravel(k, kernel, &mut k_idx);
                    let mut offset = 0usize;
                    let mut inside = true;
                    for a in 0..s {
                        let p = (i_idx[a] * strides[a] + k_idx[a] * dilations[a]) as isize
                            - begin[a] as isize;
                        if p < 0 || p as usize >= out_dims[a] {
                            inside = false;
                            break;
                        }
                        offset = offset * out_dims[a] + p as usize;
                    }
                    if !inside {
                        continue;
                    }
                    for oc in 0..mg {
                        let weight = wv[(ic * mg + oc) * k_len + k];
                        out[(batch * m + g * mg + oc) * out_len + offset] += value * weight;
                    }
                }
            }
        }
    }
    if let Some(b) = b {
        let bias = dense::to_f64(b)?;
        for (plane, chunk) in out.chunks_exact_mut(out_len.max(1)).enumerate() {
            let bv = bias[plane % m];
            chunk.iter_mut().for_each(|v| *v += bv);
        }
    }
    let mut dims = vec![n, m];
    dims.extend(out_dims);
    dense::from_f64(out, &dims, x.dtype())
}
