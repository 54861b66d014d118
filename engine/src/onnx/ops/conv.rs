//! Convolutions.
//!
//! * `Conv`, every form (1-D, 2-D, 3-D and more, groups, depthwise, dilation, padding,
//!   `auto_pad`), on f32, through the kernels' matrix product. Its definition
//!   (`inferchain-kernels`): each output element is one FMA chain, from +0, over (input
//!   channel of the group, kernel position in row-major order), a padded position
//!   contributing `fma(0, w, acc)`; then `+ bias`.
//!
//!   How: per group, im2col builds `cols` [C·taps, pixels] (a 1×1 convolution with unit
//!   stride reads the input as it is); the product `Yᵀ = colsᵀ Wᵀ` then runs with `Wᵀ`
//!   packed once at load and `colsᵀ` read in place (twelve pixels of one row of `cols`
//!   per step of the chain); `Yᵀ` [pixels, channels] is transposed into NCHW. The
//!   orientation does not change a bit (`fma(a, b, c) = fma(b, a, c)`, same K order).
//! * `ConvTranspose` in every form (groups, dilation, asymmetric pads, `output_padding`,
//!   `output_shape`, `auto_pad`): the geometry here, the arithmetic the kernels'
//!   (`inferchain_kernels::window::conv_transpose`: binary64 in a fixed order, rounded
//!   once); not fast.

use super::{attrs, window::Window};
use crate::numerics::{self, Rayon};
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use inferchain_kernels::{gemm, Bias, MatRef, PackedB};
use rayon::prelude::*;

/// Pixels per matrix product the im2col path aims for: enough for the product to run
/// near its peak, few enough that `cols` stays in cache-sized pieces. (Any value gives
/// the same bits: pixels are independent outputs.)
const GEMM_PIXELS: usize = 2048;

/// `Wᵀ` per group, packed for the kernels: W [M, C/group, kernel…] gives, for group g,
/// the [C/group · taps, M/group] matrix `W[g·M/group + m][k]` transposed.
pub fn pack_conv_weight(node: &NodeProto, w: &Tensor) -> Result<Vec<PackedB>> {
    let group = attrs::int(node, "group", 1).max(1) as usize;
    let wd = w.dims();
    if group > 1 && wd.get(1) == Some(&1) {
        // Depthwise: read in place by `depthwise`, never packed.
        return Ok(Vec::new());
    }
    let m = wd[0];
    if !m.is_multiple_of(group) {
        bail!("Conv: {m} output channels do not divide into {group} groups")
    }
    let (mg, k) = (m / group, wd[1..].iter().product::<usize>());
    numerics::with_f32("Conv", w, |ws| {
        (0..group)
            .map(|g| {
                let wg = MatRef::row_major(&ws[g * mg * k..][..mg * k], mg, k);
                PackedB::pack(numerics::isa(), wg.t())
            })
            .collect()
    })
}

/// `Conv(X, W, B?)`: X [N, C, spatial…], W [M, C/group, kernel…], B [M]. `packed` holds
/// `Wᵀ` per group when W is a weight (else it is packed here).
pub fn conv(
    node: &NodeProto,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    packed: &[PackedB],
) -> Result<Tensor> {
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
    let bias = b.map(|b| numerics::to_f32_vec("Conv", b)).transpose()?;
    if bias.as_ref().is_some_and(|b| b.len() != m) {
        bail!("Conv: bias must have {m} values")
    }
    if cg == 1 && group > 1 {
        return numerics::with_f32("Conv", x, |xs| {
            depthwise(xs, n, w, bias.as_deref(), &window, group, mg)
        })?;
    }
    let owned;
    let packed = if packed.len() == group {
        packed
    } else {
        owned = pack_conv_weight(node, w)?;
        &owned[..]
    };
    // A 1×1 kernel with unit strides and no padding reads the input as its own `cols`.
    let identity = window
        .axes
        .iter()
        .all(|a| a.kernel == 1 && a.stride == 1 && a.pad_begin == 0 && a.pad_end == 0);
    let im2col = (!identity).then(|| Im2col::new(&window));
    let isa = numerics::isa();
    numerics::with_f32("Conv", x, |xs| -> Result<Tensor> {
        let chunk = GEMM_PIXELS.div_ceil(p.max(1)).clamp(1, n.max(1));
        let mut out = vec![0f32; n * m * p];
        let mut cols: Vec<f32> = Vec::new();
        for first in (0..n).step_by(chunk) {
            let samples = chunk.min(n - first);
            let pixels = samples * p;
            for g in 0..group {
                // colsᵀ as the product's A: element (pixel, k) at cols[k * pixels + pixel].
                let a = match &im2col {
                    None if samples == 1 => {
                        let plane = &xs[(first * c + g * cg) * in_len..][..cg * in_len];
                        MatRef::row_major(plane, k, pixels).t()
                    }
                    _ => {
                        cols.clear();
                        cols.resize(k * pixels, 0.0);
                        // Rows are independent copies: filled in parallel, the same bytes in
                        // any order.
                        cols.par_chunks_exact_mut(pixels.max(1))
                            .enumerate()
                            .for_each(|(row, dst)| {
                                let (ic, tap) = (row / taps_len, row % taps_len);
                                for s in 0..samples {
                                    let plane =
                                        &xs[((first + s) * c + g * cg + ic) * in_len..][..in_len];
                                    let dst = &mut dst[s * p..][..p];
                                    match &im2col {
                                        Some(im2col) => im2col.fill(tap, plane, dst),
                                        None => dst.copy_from_slice(plane),
                                    }
                                }
                            });
                        MatRef::row_major(&cols, k, pixels).t()
                    }
                };
                let bias = match &bias {
                    Some(b) => Bias::Col(&b[g * mg..][..mg]),
                    None => Bias::None,
                };
                let mut yt = vec![0f32; pixels * mg];
                gemm(isa, a, &packed[g], bias, &mut yt, &Rayon);
                // Yᵀ [pixels, channels] into NCHW.
                let out_chunk = &mut out[first * m * p..][..samples * m * p];
                out_chunk
                    .par_chunks_exact_mut(p.max(1))
                    .enumerate()
                    .filter(|(plane, _)| plane % m / mg == g)
                    .for_each(|(plane, dst)| {
                        let (s, oc) = (plane / m, plane % m - g * mg);
                        for (px, d) in dst.iter_mut().enumerate() {
                            *d = yt[(s * p + px) * mg + oc];
                        }
                    });
            }
        }
        let mut dims = vec![n, m];
        dims.extend(window.output_dims());
        numerics::tensor(out, dims)
    })?
}

/// A depthwise convolution (one input channel per group): per sample and channel, the
/// plane's taps as rows (im2col) and, per output channel of the group, the kernels' one-row
/// product — the same chain as the general path, without a matrix product's packing.
fn depthwise(
    xs: &[f32],
    n: usize,
    w: &Tensor,
    bias: Option<&[f32]>,
    window: &Window,
    group: usize,
    mg: usize,
) -> Result<Tensor> {
    let (in_len, taps, p) = (window.input_len(), window.kernel_len(), window.output_len());
    let m = group * mg;
    let ws = numerics::to_f32_vec("Conv", w)?;
    let isa = numerics::isa();
    let mut out = vec![0f32; n * m * p];
    // Two spatial axes, unit strides and rows wide enough for several registers: the taps
    // are slices of the zero-padded input rows, read in place (no im2col). Narrow planes
    // go through im2col, one product per plane.
    let wide_rows = window.axes.len() == 2 && window.axes[1].output >= 32;
    if wide_rows && window.axes.iter().all(|a| a.stride == 1) && p > 0 {
        let (ay, ax) = (&window.axes[0], &window.axes[1]);
        let (hp, wp) = (
            ay.input + ay.pad_begin + ay.pad_end,
            ax.input + ax.pad_begin + ax.pad_end,
        );
        let (oh, ow) = (ay.output, ax.output);
        out.par_chunks_mut(mg * p)
            .enumerate()
            .for_each(|(plane, dst)| {
                let (s, g) = (plane / group, plane % group);
                let src = &xs[(s * group + g) * in_len..][..in_len];
                let mut padded = vec![0f32; hp * wp];
                for (y, row) in src.chunks_exact(ax.input).enumerate() {
                    padded[(y + ay.pad_begin) * wp + ax.pad_begin..][..ax.input]
                        .copy_from_slice(row);
                }
                let mut rows: Vec<&[f32]> = Vec::with_capacity(taps);
                for (oc, y) in dst.chunks_exact_mut(p).enumerate() {
                    let c = g * mg + oc;
                    let (wc, b) = (&ws[c * taps..][..taps], bias.map(|b| b[c]));
                    for (oy, out_row) in y.chunks_exact_mut(ow).enumerate() {
                        rows.clear();
                        for ky in 0..ay.kernel {
                            let line = &padded[(oy + ky * ay.dilation) * wp..][..wp];
                            for kx in 0..ax.kernel {
                                rows.push(&line[kx * ax.dilation..]);
                            }
                        }
                        inferchain_kernels::weighted_slices(isa, &rows, wc, b, out_row);
                    }
                    debug_assert_eq!(y.len(), oh * ow);
                }
            });
        let mut dims = vec![n, m];
        dims.extend(window.output_dims());
        return numerics::tensor(out, dims);
    }
    let im2col = Im2col::new(window);
    if p > 0 {
        out.par_chunks_mut(mg * p)
            .enumerate()
            .for_each(|(plane, dst)| {
                let (s, g) = (plane / group, plane % group);
                let src = &xs[(s * group + g) * in_len..][..in_len];
                let mut rows = vec![0f32; taps * p];
                for (tap, row) in rows.chunks_exact_mut(p).enumerate() {
                    im2col.fill(tap, src, row);
                }
                for (oc, y) in dst.chunks_exact_mut(p).enumerate() {
                    let c = g * mg + oc;
                    let b = bias.map(|b| b[c]);
                    inferchain_kernels::weighted_rows(isa, &rows, &ws[c * taps..][..taps], b, y);
                }
            });
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
    let mg = wd[1];
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
    let geometry = inferchain_kernels::window::TransposedConv {
        batch: n,
        channels: c,
        group,
        out_per_group: mg,
        input: &xd[2..],
        kernel,
        strides: &strides,
        dilations: &dilations,
        begin: &begin,
        output: &out_dims,
    };
    let op = "ConvTranspose";
    let (xv, wv) = (numerics::to_f32_vec(op, x)?, numerics::to_f32_vec(op, w)?);
    let bias = b.map(|b| numerics::to_f32_vec(op, b)).transpose()?;
    if bias.as_ref().is_some_and(|b| b.len() != m) {
        bail!("ConvTranspose: bias must have {m} values")
    }
    let out = inferchain_kernels::window::conv_transpose(&geometry, &xv, &wv, bias.as_deref());
    let mut dims = vec![n, m];
    dims.extend(out_dims);
    numerics::tensor(out, dims)
}
