//! Convolutions.
//!
//! * 2-D `Conv` with one group on f32 (the CNN case): im2col, then a few large matrix
//!   products through candle's gemm, whose bits do not depend on the thread count
//!   (docs/DETERMINISM.md). 1.6-4x faster than candle's tiled conv2d on ResNet's layers,
//!   which runs many small products instead.
//! * `Conv` over three or more spatial axes, and `ConvTranspose` in every form (groups,
//!   dilation, asymmetric pads, `output_padding`, `output_shape`, `auto_pad`): direct
//!   loops accumulating in f64 in a fixed order (input channel, then kernel row-major),
//!   the same bits on every CPU; not fast.
//! * Anything else (1-D, grouped and depthwise 2-D) stays with candle-onnx.

use super::{attrs, dense, window::Window};
use candle_core::{bail, DType, Device, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use rayon::prelude::*;

/// Whether this node is for the im2col path ([`conv2d_gemm`]).
pub fn takes_gemm_path(node: &NodeProto, x: &Tensor, w: &Tensor) -> bool {
    w.rank() == 4
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && attrs::int(node, "group", 1) == 1
}

/// Whether candle-onnx's Conv takes this node (one or two spatial axes, explicit pads).
pub fn candle_handles(node: &NodeProto, w: &Tensor) -> bool {
    matches!(w.rank(), 3 | 4) && attrs::string(node, "auto_pad", "NOTSET") == "NOTSET"
}

/// Columns per matrix product the im2col path aims for: enough for gemm to run near its
/// peak, few enough that the columns stay in cache-sized pieces.
const GEMM_COLUMNS: usize = 2048;

/// 2-D `Conv`, one group, f32: X [N, C, H, W], W [M, C, kH, kW], B [M]. Samples are
/// taken in chunks of about [`GEMM_COLUMNS`] output pixels; a chunk's columns matrix is
/// [C·kH·kW, samples·oH·oW] (row `(c, ky, kx)`, column `(sample, oy, ox)`) and
/// `W[M, C·kH·kW] × columns` is its output with sample and channel swapped.
pub fn conv2d_gemm(node: &NodeProto, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let (m, cw, kh, kw) = w.dims4()?;
    if cw != c {
        bail!("Conv: {c} input channels, weight {:?}", w.dims())
    }
    let window = Window::of(node, &[h, wd], &[kh, kw])?;
    let (ay, ax) = (&window.axes[0], &window.axes[1]);
    let (oh, ow) = (ay.output, ax.output);
    let (k, p) = (c * kh * kw, oh * ow);
    let xs = x.flatten_all()?.to_vec1::<f32>()?;
    let weights = w.contiguous()?.reshape((m, k))?;
    // Per kernel column kx: the output columns that read inside the input, and where.
    let spans: Vec<(usize, usize, usize)> = (0..kw)
        .map(|kx| {
            let inside: Vec<usize> = (0..ow).filter(|&ox| ax.source(ox, kx).is_some()).collect();
            match (inside.first(), inside.last()) {
                (Some(&lo), Some(&hi)) => (lo, hi + 1, ax.source(lo, kx).unwrap_or(0)),
                _ => (0, 0, 0),
            }
        })
        .collect();
    let chunk = GEMM_COLUMNS.div_ceil(p.max(1)).clamp(1, n.max(1));
    let mut out = vec![0f32; n * m * p];
    for first in (0..n).step_by(chunk) {
        let samples = chunk.min(n - first);
        let cols_n = samples * p;
        let mut cols = vec![0f32; k * cols_n];
        // Rows are independent copies: filled in parallel, the same bytes in any order.
        cols.par_chunks_exact_mut(cols_n)
            .enumerate()
            .for_each(|(row, dst)| {
                let (ci, ky, kx) = (row / (kh * kw), row / kw % kh, row % kw);
                let (lo, hi, start) = spans[kx];
                for s in 0..samples {
                    let plane = &xs[((first + s) * c + ci) * h * wd..][..h * wd];
                    for oy in 0..oh {
                        let Some(iy) = ay.source(oy, ky) else {
                            continue;
                        };
                        let src = &plane[iy * wd..][..wd];
                        let dst = &mut dst[s * p + oy * ow..][lo..hi];
                        if ax.stride == 1 {
                            dst.copy_from_slice(&src[start..start + (hi - lo)]);
                        } else {
                            for (i, d) in dst.iter_mut().enumerate() {
                                *d = src[start + i * ax.stride];
                            }
                        }
                    }
                }
            });
        let cols = Tensor::from_vec(cols, (k, cols_n), &Device::Cpu)?;
        let y = weights.matmul(&cols)?.flatten_all()?.to_vec1::<f32>()?;
        for (oc, row) in y.chunks_exact(cols_n).enumerate() {
            for (s, pixels) in row.chunks_exact(p).enumerate() {
                out[((first + s) * m + oc) * p..][..p].copy_from_slice(pixels);
            }
        }
    }
    let y = Tensor::from_vec(out, (n, m, oh, ow), &Device::Cpu)?;
    match b {
        Some(b) => y.broadcast_add(&b.reshape((1, m, 1, 1))?),
        None => Ok(y),
    }
}

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
    let taps = window.taps();
    let (xv, wv) = (dense::to_f64(x)?, dense::to_f64(w)?);
    let bias = b.map(dense::to_f64).transpose()?;
    let (cg, mg) = (c / group, m / group);
    let (in_len, k_len, out_len) = (window.input_len(), window.kernel_len(), window.output_len());
    let mut out = vec![0f64; n * m * out_len];
    for batch in 0..n {
        for oc in 0..m {
            let g = oc / mg;
            let y = &mut out[(batch * m + oc) * out_len..][..out_len];
            for (o, (offsets, _)) in taps.iter().enumerate() {
                let mut acc = bias.as_ref().map_or(0.0, |b| b[oc]);
                for ic in 0..cg {
                    let plane = &xv[(batch * c + g * cg + ic) * in_len..][..in_len];
                    let kernel = &wv[(oc * cg + ic) * k_len..][..k_len];
                    for (k, offset) in offsets.iter().enumerate() {
                        if let Some(p) = offset {
                            acc += plane[*p] * kernel[k];
                        }
                    }
                }
                y[o] = acc;
            }
        }
    }
    let mut dims = vec![n, m];
    dims.extend(window.output_dims());
    dense::from_f64(out, &dims, x.dtype())
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
