//! Convolutions.
//!
//! * `Conv`, every form (1-D, 2-D, 3-D and more, groups, depthwise, dilation, padding,
//!   `auto_pad`), on f32, through the kernels' matrix product. Its definition
//!   (`inferchain-kernels`): each output element is one FMA chain, from +0, over (input
//!   channel of the group, kernel position in row-major order), a padded position
//!   contributing `fma(0, w, acc)`; then `+ bias`.
//!
//!   How, on small planes: per group, the product `Yᵀ = colsᵀ Wᵀ` runs with `Wᵀ` packed
//!   once at load and `colsᵀ` (im2col's matrix [C·taps, pixels], transposed) never
//!   written: the product gathers it from the input planes at each output position's
//!   kernel offsets as it packs A (`inferchain_kernels::Patches`), or reads channels-last
//!   input in place (a 1×1 convolution); `Yᵀ` [pixels, channels] is stored channels last
//!   or transposed into NCHW. Large planes run `Y = W · cols` with `cols`' rows read from
//!   the input planes' stride phases. The orientation does not change a bit
//!   (`fma(a, b, c) = fma(b, a, c)`, same K order).
//! * `ConvTranspose` in every form (groups, dilation, asymmetric pads, `output_padding`,
//!   `output_shape`, `auto_pad`): the geometry here, the arithmetic the kernels'
//!   (`inferchain_kernels::window::conv_transpose`: binary64 in a fixed order, rounded
//!   once); not fast.

use super::{
    attrs,
    window::{self, PhaseBuffer, StridePhases, Window},
    Context, FusedActivation,
};
use crate::channels_last;
use crate::kernel_threads;
use crate::numerics::{self, KernelThreads};
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use inferchain_kernels::{
    gemm_clamped, gemm_into, gemm_rows, gemm_rows_kept, Bias, KeptColumns, Lhs, MatRef, PackedB,
    Patches, Sequential, PADDING,
};
use std::borrow::Cow;

/// Pixels per matrix product the small-plane path aims for: enough for the product to
/// run near its peak, few enough that a product's packed A stays in cache-sized pieces.
/// (Any value gives the same bits: pixels are independent outputs.)
const GEMM_PIXELS: usize = 2048;
/// The fewest values a task of a fused activation takes (fewer cost more to hand out than
/// to compute).
const ACTIVATION_VALUES: usize = 1 << 13;

/// Output pixels per plane from which a convolution runs as `Y = W · cols`, its output
/// rows already NCHW; smaller planes batch samples into one `Yᵀ = colsᵀ Wᵀ` and
/// transpose. (Either gives the same bits: the same chains, `fma(a, b, c) = fma(b, a, c)`.)
const DIRECT_PIXELS: usize = 256;

/// Output pixels per plane up to which a depthwise convolution runs channels last (the
/// kernels' lanes across channels): on planes this small a plane fills a register or two
/// and the per-plane set-up costs more than the products. (Either gives the same bits.)
const LANES_PIXELS: usize = 64;

/// The same, for a depthwise convolution with unit strides: up to a 14×14 plane
/// (measured on MobileNet-like: its 384- and 576-channel 14×14 layers 30–40% faster
/// channels last; a stride-2 layer to 14×14 was slower).
const LANES_PIXELS_UNIT_STRIDE: usize = 196;

/// Chains up to this long (input channels of a group × kernel positions) run on a large
/// plane as one weighted sum of whole-plane rows per output channel ([`conv_planar`]): for
/// chains this short (a 1×1 convolution on 16 channels) packing costs more than the
/// products. (Either path gives the same bits: the same chains.) Longer chains take the
/// matrix product's register tile: MobileNet-like's 24→144 1×1 at 56² 0.218 → 0.129 ms
/// and 32→192 at 28² 0.141 → 0.096 ms (2 threads) when this was lowered from 32.
const PLANAR_K: usize = 16;

/// Output pixels per plane from which a short chain runs on the wide path
/// ([`conv_wide`]) instead: on larger planes the matrix product's register tile, B packed
/// as it goes, beats four output channels per register loaded (measured: MobileNet-like's
/// 16→96 1×1 at 112² 0.37 → 0.23–0.27 ms; at 32² the planar rows were ~10% faster).
const PLANAR_PIXELS: usize = 4096;

/// Multiply-adds per group below which a batched convolution stays on one thread: waking
/// the pool for less costs more than it saves. (Any split gives the same bits.)
const SEQUENTIAL_MACS: usize = 1 << 18;

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

/// `Conv(X, W, B?)`: X [N, C, spatial…], W [M, C/group, kernel…], B [M]. From `ctx`:
/// `packed` holds `Wᵀ` per group when W is a weight (else it is packed here); with
/// `clip`, the output is clamped as the `Clip` fused after it would (the same bits, one
/// pass fewer); with `activation`, the fused `Relu` or `HardSwish` is applied to the
/// values before they become a tensor (the same bits, one tensor fewer); with
/// `channels_last`, the output may be stored so.
pub fn conv(
    node: &NodeProto,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    ctx: &Context<'_>,
) -> Result<Tensor> {
    let Context {
        packed,
        clip,
        activation,
        residual,
        channels_last: channels_last_out,
        ..
    } = *ctx;
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
        let epilogue = Epilogue {
            bias: bias.as_deref(),
            clip,
        };
        let (out, layout) = depthwise(x, n, w, epilogue, &window, group, mg, channels_last_out)?;
        return finish(out, &dims_of(n, m, &window), layout, (residual, activation));
    }
    // A 1×1 kernel with unit strides and no padding reads the input as its own `cols`.
    let identity = window
        .axes
        .iter()
        .all(|a| a.kernel == 1 && a.stride == 1 && a.pad_begin == 0 && a.pad_end == 0);
    let geometry = Geometry {
        n,
        c,
        cg,
        mg,
        k,
        taps: taps_len,
        p,
        in_len,
        group,
    };
    let epilogue = Epilogue {
        bias: bias.as_deref(),
        clip,
    };
    let dims = dims_of(n, m, &window);
    // A large plane runs as `Y = W · cols`, NCHW out (measured: storing it channels last
    // for the next layer gained nothing at 32×32 and 16×16).
    if p >= DIRECT_PIXELS {
        if k <= PLANAR_K && p < PLANAR_PIXELS {
            if let Some(split) = StridePhases::compact(&window) {
                let out = numerics::with_f32("Conv", w, |ws| {
                    numerics::with_f32("Conv", x, |xs| {
                        conv_planar(xs, ws, &geometry, &epilogue, &split)
                    })
                })??;
                return finish(out, &dims, Layout::RowMajor, (residual, activation));
            }
        }
        let out = numerics::with_f32("Conv", w, |ws| {
            numerics::with_f32("Conv", x, |xs| match StridePhases::compact(&window) {
                Some(split) => conv_wide(xs, ws, &geometry, &epilogue, &split),
                None => {
                    let im2col = (!identity).then(|| Im2col::new(&window));
                    conv_direct(xs, ws, &geometry, &epilogue, im2col.as_ref())
                }
            })
        })??;
        return finish(out, &dims, Layout::RowMajor, (residual, activation));
    }
    let owned;
    let packed = if packed.len() == group {
        packed
    } else {
        owned = pack_conv_weight(node, w)?;
        &owned[..]
    };
    // Channels last out only where one product covers every group's channels.
    let layout = if channels_last_out && group == 1 {
        Layout::ChannelsLast
    } else {
        Layout::RowMajor
    };
    // Per output position and kernel position, where in its input plane it reads (or
    // padding): the product gathers its A (im2col's `colsᵀ`) from the input planes at
    // these. None are read where the chain is empty or there are no samples.
    let positions = match k > 0 && n > 0 {
        true => patch_positions(&window).ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "Conv: an input plane of {in_len} values is over what this engine indexes"
            ))
        })?,
        false => Vec::new(),
    };
    let run =
        |source: Source<'_>| conv_batched(source, packed, &geometry, &epilogue, &positions, layout);
    // Channels-last input only for a 1×1 convolution (its rows are the product's A).
    let out = match identity {
        true => channels_last::with_storage(x, |xs| run(Source::Pixels(xs))),
        false => None,
    };
    let out = match out {
        Some(out) => out,
        None => numerics::with_f32("Conv", x, |xs| run(Source::Planes(xs)))?,
    };
    finish(out, &dims, layout, (residual, activation))
}

/// Per output position (row-major) and kernel position (row-major): the input offset
/// within one plane it reads, or [`PADDING`]; `None` where a plane has more values than
/// 32 bits count. (One list for every sample and channel: output positions × kernel
/// positions, 4 bytes each, never more than the im2col matrix of one channel.)
fn patch_positions(window: &Window) -> Option<Vec<u32>> {
    if window.input_len() >= PADDING as usize {
        return None;
    }
    let (p, axes) = (window.output_len(), &window.axes);
    if axes
        .iter()
        .all(|a| a.kernel == 1 && a.stride == 1 && a.pad_begin == 0 && a.output == a.input)
    {
        // A 1×1 kernel with unit strides and no padding: each position reads itself.
        return Some((0..p as u32).collect());
    }
    Some(tap_offsets(window))
}

/// The output tensor [N, M, spatial…] of a convolution.
fn dims_of(n: usize, m: usize, window: &Window) -> Vec<usize> {
    let mut dims = vec![n, m];
    dims.extend(window.output_dims());
    dims
}

/// Values a residual `Add` and the activation after it finish together (16 KiB: the
/// activation reads the sums from L1). Any length gives the same bits: elements are
/// independent.
const RESIDUAL_BLOCK: usize = 4096;

/// The `Add` the plan fuses after a `Conv` whose output only it reads (a residual
/// connection): its other operand, of the convolution's output shape, and the order of
/// its operands (`a + b`; the order decides which NaN's payload a sum of two NaNs
/// carries, as it does in the unfused `Add`).
#[derive(Clone, Copy)]
pub struct ResidualAdd<'a> {
    pub other: &'a Tensor,
    /// The convolution's output is the `Add`'s first operand.
    pub conv_first: bool,
}

/// The output shape of `Conv(x, w)` under `node`'s attributes, where they fit (the plan
/// fuses a residual `Add` only into a convolution whose output has its other operand's
/// shape).
pub fn output_dims(node: &NodeProto, x: &Tensor, w: &Tensor) -> Option<Vec<usize>> {
    let (xd, wd) = (x.dims(), w.dims());
    if xd.len() < 3 || wd.len() != xd.len() {
        return None;
    }
    let window = Window::of(node, &xd[2..], &wd[2..]).ok()?;
    Some(dims_of(xd[0], wd[0], &window))
}

/// A convolution's values, in `layout`, as its output tensor, after the `Add` and then
/// the activation fused into it: per element the unfused operators' operations in their
/// order (`conv + other` or `other + conv`, then the activation's), in one pass.
fn finish(
    mut out: Vec<f32>,
    dims: &[usize],
    layout: Layout,
    (residual, activation): (Option<ResidualAdd<'_>>, Option<FusedActivation>),
) -> Result<Tensor> {
    // Element by element: on the threads, each a contiguous part (as the tasks that
    // wrote the output split it).
    let per_task = kernel_threads::rows_per_task(out.len()).max(ACTIVATION_VALUES);
    match residual {
        Some(ResidualAdd { other, conv_first }) => {
            if other.dims() != dims {
                bail!(
                    "Conv: the Add fused after it has an operand of shape {:?}, the output {dims:?}",
                    other.dims()
                )
            }
            let add = |ys: &[f32]| {
                kernel_threads::for_each_chunk_mut(&mut out, per_task, |t, part| {
                    let ys = &ys[t * per_task..][..part.len()];
                    // Block by block, so that the activation reads the sums from L1.
                    for (sums, ys) in part
                        .chunks_mut(RESIDUAL_BLOCK)
                        .zip(ys.chunks(RESIDUAL_BLOCK))
                    {
                        // `Add`'s `a + b`, its operands in the node's order.
                        let sum = |a: f32, b: f32| a + b;
                        match conv_first {
                            true => sums.iter_mut().zip(ys).for_each(|(o, &y)| *o = sum(*o, y)),
                            false => sums.iter_mut().zip(ys).for_each(|(o, &y)| *o = sum(y, *o)),
                        }
                        if let Some(activation) = activation {
                            activation.apply(sums);
                        }
                    }
                })
            };
            // The other operand's values in the output's order.
            let added = match layout {
                Layout::ChannelsLast => channels_last::with_storage(other, add),
                Layout::RowMajor => Some(numerics::with_f32("Add", other, add)?),
            };
            if added.is_none() {
                bail!("Conv: the Add fused after it has an operand not stored channels last, as the output is")
            }
        }
        None => {
            if let Some(activation) = activation {
                kernel_threads::for_each_chunk_mut(&mut out, per_task, |_, part| {
                    activation.apply(part)
                });
            }
        }
    }
    match layout {
        Layout::ChannelsLast => channels_last::tensor(out, dims),
        Layout::RowMajor => numerics::tensor(out, dims.to_vec()),
    }
}

/// Where a convolution's input values lie.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// Row-major NCHW: plane after plane.
    Planes(&'a [f32]),
    /// Channels last (`crate::channels_last`): pixel after pixel, channels side by side.
    Pixels(&'a [f32]),
}

/// How a convolution lays out its output.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    RowMajor,
    ChannelsLast,
}

/// `Yᵀ = colsᵀ Wᵀ` over as many samples as make [`GEMM_PIXELS`] pixels, with `Wᵀ` packed
/// at load, then transposed into NCHW. `colsᵀ` is never written: read in place from
/// channels-last input (a 1×1 convolution), else gathered from the input planes at
/// `positions` ([`patch_positions`]) as the product packs it.
fn conv_batched(
    source: Source,
    packed: &[PackedB],
    geometry: &Geometry,
    &Epilogue { bias, clip }: &Epilogue,
    positions: &[u32],
    layout: Layout,
) -> Vec<f32> {
    let Geometry {
        n, mg, p, group, ..
    } = *geometry;
    let m = mg * group;
    let isa = numerics::isa();
    let chunk = GEMM_PIXELS.div_ceil(p.max(1)).clamp(1, n.max(1));
    if group == 1 && n.is_multiple_of(chunk) {
        // One product per chunk of samples. Channels last, Yᵀ [pixels, channels] is the
        // output as stored: each value written once, by the product. Row-major, fresh Yᵀ
        // is transposed into the chunk's NCHW output (on the threads unless the product
        // is small enough to stay on this one). Neither is zeroed first.
        let bias = bias.map_or(Bias::None, Bias::Col);
        return numerics::written_in_parts(n / chunk, chunk * m * p, |part, y| {
            let (a, par) = product_a(source, geometry, positions, (part * chunk, chunk), 0);
            match layout {
                Layout::ChannelsLast => gemm_into(isa, a, &packed[0], bias, clip, y, par),
                Layout::RowMajor => {
                    let yt = numerics::written_in_parts(1, chunk * p * m, |_, yt| {
                        gemm_into(isa, a, &packed[0], bias, clip, yt, par)
                    });
                    let parallel = !is_small(geometry, chunk * p);
                    channels_last::transposed_into(&yt, (chunk, p, m), y, parallel)
                }
            }
        });
    }
    let mut out = vec![0f32; n * m * p];
    for first in (0..n).step_by(chunk) {
        let samples = chunk.min(n - first);
        let pixels = samples * p;
        for g in 0..group {
            let (a, par) = product_a(source, geometry, positions, (first, samples), g);
            let bias = match bias {
                Some(b) => Bias::Col(&b[g * mg..][..mg]),
                None => Bias::None,
            };
            let out_chunk = &mut out[first * m * p..][..samples * m * p];
            if layout == Layout::ChannelsLast {
                // One group: Yᵀ [pixels, channels] is the output as stored.
                gemm_clamped(isa, a, &packed[g], bias, clip, out_chunk, par);
                continue;
            }
            let mut yt = vec![0f32; pixels * mg];
            gemm_clamped(isa, a, &packed[g], bias, clip, &mut yt, par);
            // Yᵀ [pixels, channels] into NCHW.
            if group == 1 {
                if p * m > 0 {
                    for (y, d) in yt
                        .chunks_exact(p * m)
                        .zip(out_chunk.chunks_exact_mut(p * m))
                    {
                        channels_last::transpose(y, p, m, d);
                    }
                }
                continue;
            }
            let scatter = |plane: usize, dst: &mut [f32]| {
                if plane % m / mg == g {
                    let (s, oc) = (plane / m, plane % m - g * mg);
                    for (px, d) in dst.iter_mut().enumerate() {
                        *d = yt[(s * p + px) * mg + oc];
                    }
                }
            };
            if is_small(geometry, pixels) {
                for (plane, dst) in out_chunk.chunks_mut(p.max(1)).enumerate() {
                    scatter(plane, dst)
                }
            } else {
                kernel_threads::for_each_row_mut(out_chunk, p, scatter);
            }
        }
    }
    out
}

/// Whether a product over `pixels` output pixels is too small to wake the threads for.
fn is_small(geometry: &Geometry, pixels: usize) -> bool {
    geometry.k * pixels * geometry.mg < SEQUENTIAL_MACS
}

/// The product's A for samples `first..first + samples` and group `g`: `colsᵀ`, element
/// (pixel, k) — read in place where the input is channels last (a 1×1 convolution), else
/// gathered from the input planes at `positions` as the product packs it; and the
/// threads it runs on.
fn product_a<'a>(
    source: Source<'a>,
    geometry: &Geometry,
    positions: &'a [u32],
    (first, samples): (usize, usize),
    g: usize,
) -> (Lhs<'a>, &'static dyn inferchain_kernels::Parallel) {
    let Geometry {
        c,
        cg,
        k,
        taps,
        p,
        in_len,
        ..
    } = *geometry;
    let pixels = samples * p;
    let par: &'static dyn inferchain_kernels::Parallel = if is_small(geometry, pixels) {
        &Sequential
    } else {
        &KernelThreads
    };
    let a = match source {
        // An empty chain: nothing of A is read (C is the bias).
        _ if k == 0 => Lhs::Mat(MatRef {
            data: &[],
            rows: pixels,
            cols: 0,
            rs: 0,
            cs: 1,
        }),
        // Channels last, 1×1: the input's rows are A's, read in place.
        Source::Pixels(xs) => Lhs::Mat(MatRef {
            data: &xs[first * p * c + g * cg..],
            rows: pixels,
            cols: k,
            rs: c,
            cs: 1,
        }),
        Source::Planes(xs) => Lhs::Patches(Patches {
            data: &xs[(first * c + g * cg) * in_len..],
            positions,
            taps,
            channels: cg,
            channel_stride: in_len,
            samples,
            sample_stride: c * in_len,
        }),
    };
    (a, par)
}

/// What is applied to each finished output: `+ bias[channel]`, then the fused `Clip`.
#[derive(Clone, Copy)]
struct Epilogue<'a> {
    bias: Option<&'a [f32]>,
    clip: Option<(f32, f32)>,
}

/// A convolution's sizes.
#[derive(Clone, Copy)]
struct Geometry {
    /// Samples.
    n: usize,
    /// Input channels, and per group.
    c: usize,
    cg: usize,
    /// Output channels per group.
    mg: usize,
    /// The chain's length (input channels of the group × kernel positions), and the
    /// kernel positions.
    k: usize,
    taps: usize,
    /// Output and input pixels per plane.
    p: usize,
    in_len: usize,
    group: usize,
}

/// `Y = W · cols` per sample and group, written straight into NCHW: W [M/group, K] as
/// stored (the product's A, read in place), `cols` [K, pixels] packed per run (B).
fn conv_direct(
    xs: &[f32],
    ws: &[f32],
    geometry: &Geometry,
    &Epilogue { bias, clip }: &Epilogue,
    im2col: Option<&Im2col>,
) -> Vec<f32> {
    let Geometry {
        n,
        c,
        cg,
        mg,
        k,
        p,
        in_len,
        group,
        ..
    } = *geometry;
    let isa = numerics::isa();
    let mut cols: Vec<f32> = Vec::new();
    numerics::written_in_parts(n * group, mg * p, |part, y| {
        let (s, gi) = (part / group, part % group);
        let planes = &xs[(s * c + gi * cg) * in_len..][..cg * in_len];
        let b = match im2col {
            None => MatRef::row_major(planes, k, p),
            Some(im2col) => {
                cols.resize(k * p, 0.0);
                let taps = k / cg.max(1);
                // Rows are independent copies: filled in parallel, the same bytes in
                // any order (neighbouring rows grouped into a few tasks per thread: a
                // task per row costs more to hand out than its copy).
                kernel_threads::for_each_row_mut(&mut cols[..k * p], p, |row, dst| {
                    let (ic, tap) = (row / taps, row % taps);
                    im2col.fill(tap, &planes[ic * in_len..][..in_len], dst)
                });
                MatRef::row_major(&cols, k, p)
            }
        };
        let packed = PackedB::pack_with(isa, b, &KernelThreads);
        let a = MatRef::row_major(&ws[gi * mg * k..][..mg * k], mg, k);
        let bias = match bias {
            Some(b) => Bias::Row(&b[gi * mg..][..mg]),
            None => Bias::None,
        };
        gemm_into(isa, a, &packed, bias, clip, y, &KernelThreads)
    })
}

/// The stride phases of the `planes` input planes (`in_len` values each) of `xs`,
/// padding +0 (an empty plane's phases are all padding):
/// planes are independent, written in parallel (neighbouring planes in a few tasks per
/// thread).
fn phases_of_planes(
    xs: &[f32],
    planes: usize,
    in_len: usize,
    split: &StridePhases,
) -> Vec<PhaseBuffer> {
    let mut buffers: Vec<PhaseBuffer> = (0..planes).map(|_| PhaseBuffer::default()).collect();
    kernel_threads::for_each_row_mut(&mut buffers, 1, |plane, buffer| {
        split.fill(&xs[plane * in_len..][..in_len], 0.0, &mut buffer[0])
    });
    buffers
}

/// Two spatial axes: `Y = W · B` per sample and group, as [`conv_direct`] computes it,
/// with B (im2col's `cols`) never written out. The product's fill function copies each
/// K block of a panel of B straight from the input planes' stride phases
/// ([`StridePhases`]): row (input channel, kernel position) of B is one contiguous run of
/// the channel's phases from the position's offset, over the "wide" output (output rows
/// `wq` apart; the columns past `ow` read neighbouring values and are dropped: the
/// product stores only each wide row's first `ow`, [`gemm_rows_kept`], so they never
/// reach memory). The same chains as im2col's, padding read as +0.
fn conv_wide(
    xs: &[f32],
    ws: &[f32],
    geometry: &Geometry,
    &Epilogue { bias, clip }: &Epilogue,
    split: &StridePhases,
) -> Vec<f32> {
    let Geometry {
        n,
        c,
        cg,
        mg,
        k,
        p,
        in_len,
        group,
        ..
    } = *geometry;
    let (wq, ow, wide) = (split.wq, split.ow, split.wide);
    let isa = numerics::isa();
    // One sample and group's stride phases at a time, written just before its product
    // reads them (still in cache, not evicted by every other sample's), into buffers
    // reused from part to part (their padding written once).
    let mut buffers: Vec<PhaseBuffer> = (0..cg).map(|_| PhaseBuffer::default()).collect();
    numerics::written_in_parts(n * group, mg * p, |part, y| {
        let (s, g) = (part / group, part % group);
        let inputs = &xs[(s * c + g * cg) * in_len..][..cg * in_len];
        kernel_threads::for_each_row_mut(&mut buffers, 1, |ic, buffer| {
            split.fill(&inputs[ic * in_len..][..in_len], 0.0, &mut buffer[0])
        });
        let planes: Vec<&[f32]> = (0..cg)
            .map(|ic| split.read(&inputs[ic * in_len..][..in_len], &buffers[ic]))
            .collect();
        // B's rows: (input channel, kernel position), by position within the channel.
        let rows: Vec<&[f32]> = planes
            .iter()
            .flat_map(|plane| split.reads.iter().map(move |&at| &plane[at..][..wide]))
            .collect();
        let a = MatRef::row_major(&ws[g * mg * k..][..mg * k], mg, k);
        let bias = match bias {
            Some(b) => Bias::Row(&b[g * mg..][..mg]),
            None => Bias::None,
        };
        if wq == ow {
            // No dropped columns: the wide output is the output.
            return gemm_rows(isa, a, &rows, wide, bias, clip, y, &KernelThreads);
        }
        // Each wide row's first `ow` columns are the output row; the rest never leave
        // the product's cache.
        let keep = KeptColumns::new(wq, ow);
        gemm_rows_kept(isa, a, &rows, wide, keep, bias, clip, y, &KernelThreads)
    })
}

/// Two spatial axes and a short chain: per sample and group, the kernels' product of the
/// group's weights with the chain's `k` rows (input channel, then kernel position, as
/// im2col orders them), each row a contiguous run of one input plane's stride phases
/// ([`StridePhases`], padding +0), as [`depthwise_planar`] reads one channel: the same
/// chains as the matrix product, without im2col and packing.
fn conv_planar(
    xs: &[f32],
    ws: &[f32],
    geometry: &Geometry,
    &Epilogue { bias, clip }: &Epilogue,
    split: &StridePhases,
) -> Vec<f32> {
    let Geometry {
        n,
        c,
        cg,
        mg,
        k,
        p,
        in_len,
        group,
        ..
    } = *geometry;
    let (wq, ow, wide) = (split.wq, split.ow, split.wide);
    let isa = numerics::isa();
    let mut out = vec![0f32; n * group * mg * p];
    if p == 0 || mg == 0 {
        return out;
    }
    // Output channels per task: at least four tasks in all where there are channels
    // enough, in blocks of four (the kernel's rows side by side).
    let parts = n * group;
    let block = mg
        .div_ceil(4usize.div_ceil(parts))
        .next_multiple_of(4)
        .min(mg);
    // Every input plane's stride phases first, then the products, a (sample and group,
    // block of output channels) per task.
    let buffers = phases_of_planes(xs, n * c, in_len, split);
    let mut tasks: Vec<(usize, usize, &mut [f32])> = Vec::new();
    for (part, y) in out.chunks_mut(mg * p).enumerate() {
        for (b, y) in y.chunks_mut(block * p).enumerate() {
            tasks.push((part, b, y));
        }
    }
    kernel_threads::for_each_mut(&mut tasks, |_, (part, b, y)| {
        let (s, g) = (*part / group, *part % group);
        let rows: Vec<&[f32]> = (0..cg)
            .flat_map(|ic| {
                let plane = (s * c + g * cg + ic) * in_len;
                let phase = split.read(&xs[plane..][..in_len], &buffers[s * c + g * cg + ic]);
                split.reads.iter().map(move |&at| &phase[at..])
            })
            .collect();
        let (first, count) = (g * mg + *b * block, y.len() / p);
        let wb = &ws[first * k..][..count * k];
        let bb = bias.map(|bias| &bias[first..][..count]);
        if wq == ow {
            inferchain_kernels::weighted_slices_rows(isa, &rows, wb, bb, clip, count, y);
            return;
        }
        let mut wide_out = vec![0f32; count * wide];
        inferchain_kernels::weighted_slices_rows(isa, &rows, wb, bb, clip, count, &mut wide_out);
        for (y, w) in y.chunks_exact_mut(p).zip(wide_out.chunks_exact(wide)) {
            for (oy, row) in y.chunks_exact_mut(ow).enumerate() {
                window::copy_short(row, &w[oy * wq..][..ow]);
            }
        }
    });
    out
}

/// A depthwise convolution (one input channel per group): per sample, channel and output
/// channel of the group, the kernels' one-row product over the taps — the same chain as
/// the general path (over kernel positions in row-major order, padding read as +0),
/// without a matrix product's packing. Returns the values and the layout they are in.
#[allow(clippy::too_many_arguments)]
fn depthwise(
    x: &Tensor,
    n: usize,
    w: &Tensor,
    epilogue: Epilogue,
    window: &Window,
    group: usize,
    mg: usize,
    channels_last_out: bool,
) -> Result<(Vec<f32>, Layout)> {
    let unit_strides = window.axes.iter().all(|a| a.stride == 1);
    let lanes = window.output_len() <= LANES_PIXELS
        || (unit_strides && window.output_len() <= LANES_PIXELS_UNIT_STRIDE);
    if mg == 1 && lanes && window.input_len() < u32::MAX as usize {
        let layout = if channels_last_out {
            Layout::ChannelsLast
        } else {
            Layout::RowMajor
        };
        let out = numerics::with_f32("Conv", w, |ws| {
            let run = |source: Source<'_>| {
                depthwise_channels_last(source, n, ws, epilogue, window, group, layout)
            };
            match channels_last::with_storage(x, |xs| run(Source::Pixels(xs))) {
                Some(out) => Ok(out),
                None => numerics::with_f32("Conv", x, |xs| run(Source::Planes(xs))),
            }
        })??;
        return Ok((out, layout));
    }
    let Epilogue { bias, clip } = epilogue;
    let out = numerics::with_f32("Conv", x, |xs| {
        numerics::with_f32("Conv", w, |ws| {
            if window.axes.len() == 2 {
                depthwise_planar(xs, n, ws, epilogue, window, group, mg)
            } else {
                let mut out = depthwise_im2col(xs, n, ws, bias, window, group, mg);
                if let Some(bounds) = clip {
                    kernel_threads::for_each_chunk_mut(&mut out, GEMM_PIXELS, |_, c| {
                        inferchain_kernels::clamp_slice(c, bounds)
                    });
                }
                out
            }
        })
    })??;
    Ok((out, Layout::RowMajor))
}

/// Per output position, in row-major order, and per kernel position, in row-major order:
/// the input offset it reads, or `PADDING`.
/// A sample's pixels (channels last) copied into its padded plane, zeros around: the
/// geometry of a two-axis window whose every window lies inside the padded input.
struct PaddedPixels {
    /// The input's rows and columns, and the padded plane's width.
    h: usize,
    w: usize,
    wp: usize,
    /// The padded plane's pixels, and where the input's first pixel lies in it.
    len: usize,
    first: usize,
}

impl PaddedPixels {
    /// `None` unless the windows lie inside the padded input and the padded plane is at
    /// most four times the input's (offsets fit `u32`, and a hostile padding does not
    /// make the copy huge).
    fn of(window: &Window) -> Option<PaddedPixels> {
        StridePhases::of(window)?;
        let [ay, ax] = window.axes.as_slice() else {
            return None;
        };
        let wp = ax.input + ax.pad_begin + ax.pad_end;
        let len = (ay.input + ay.pad_begin + ay.pad_end).checked_mul(wp)?;
        if len > 4 * (ay.input * ax.input).max(1) || len >= u32::MAX as usize {
            return None;
        }
        Some(PaddedPixels {
            h: ay.input,
            w: ax.input,
            wp,
            len,
            first: ay.pad_begin * wp + ax.pad_begin,
        })
    }

    /// Where each window lies in the padded plane: per output position (row-major), the
    /// padded pixel its first tap reads; per kernel position (row-major), how far past
    /// that pixel the tap reads.
    fn grid(&self, window: &Window) -> (Vec<u32>, Vec<u32>) {
        let [ay, ax] = window.axes.as_slice() else {
            return (Vec::new(), Vec::new());
        };
        let bases = (0..ay.output)
            .flat_map(|oy| {
                (0..ax.output).map(move |ox| (oy * ay.stride * self.wp + ox * ax.stride) as u32)
            })
            .collect();
        let offsets = (0..ay.kernel)
            .flat_map(|ky| {
                (0..ax.kernel).map(move |kx| (ky * ay.dilation * self.wp + kx * ax.dilation) as u32)
            })
            .collect();
        (bases, offsets)
    }

    /// `x` (`h · w` pixels of `c` channels) in its padded plane: each value written once
    /// (the input's rows copied, zeros only around them), the padded rows split over the
    /// threads as the kernel's positions are after it (so each thread mostly copies the
    /// rows it then reads).
    fn copy(&self, x: &[f32], c: usize) -> Vec<f32> {
        let (rows, row) = (self.len / self.wp, self.wp * c);
        let (top, left) = (self.first / self.wp, self.first % self.wp);
        let right = self.wp - left - self.w;
        let per_task = kernel_threads::rows_per_task(rows);
        numerics::written_on_threads(self.len * c, per_task * row, |t, part| {
            let first = t * per_task;
            let count = part.len() / row;
            let mut fill = numerics::Filling::new(part);
            for r in first..first + count {
                match r.checked_sub(top).filter(|&iy| iy < self.h) {
                    Some(iy) => {
                        fill.zeros(left * c);
                        fill.put(&x[iy * self.w * c..][..self.w * c]);
                        fill.zeros(right * c);
                    }
                    None => fill.zeros(row),
                }
            }
            fill.done()
        })
    }
}

fn tap_offsets(window: &Window) -> Vec<u32> {
    let axes = &window.axes;
    if let [ay, ax] = axes.as_slice() {
        // Two axes (the common case), without the general case's per-output lists.
        let mut at = Vec::with_capacity(window.output_len() * window.kernel_len());
        for oy in 0..ay.output {
            for ox in 0..ax.output {
                for ky in 0..ay.kernel {
                    let y = ay.source(oy, ky);
                    for kx in 0..ax.kernel {
                        at.push(match (y, ax.source(ox, kx)) {
                            (Some(y), Some(x)) => (y * ax.input + x) as u32,
                            _ => inferchain_kernels::PADDING,
                        });
                    }
                }
            }
        }
        return at;
    }
    // Per axis, per (output, kernel position): the input position read, if inside.
    let sources: Vec<Vec<Option<usize>>> = axes
        .iter()
        .map(|a| {
            (0..a.output)
                .flat_map(|o| (0..a.kernel).map(move |k| a.source(o, k)))
                .collect()
        })
        .collect();
    let mut at = Vec::with_capacity(window.output_len() * window.kernel_len());
    let mut o_idx = vec![0usize; axes.len()];
    let (mut reads, mut next): (Vec<Option<usize>>, Vec<Option<usize>>) = (Vec::new(), Vec::new());
    for _ in 0..window.output_len() {
        // The kernel positions in row-major order, one axis at a time.
        reads.clear();
        reads.push(Some(0));
        for (i, axis) in axes.iter().enumerate() {
            let row = &sources[i][o_idx[i] * axis.kernel..][..axis.kernel];
            next.clear();
            for &offset in &reads {
                next.extend(row.iter().map(|&p| Some(offset? * axis.input + p?)));
            }
            std::mem::swap(&mut reads, &mut next);
        }
        at.extend(
            reads
                .iter()
                .map(|r| r.map_or(inferchain_kernels::PADDING, |i| i as u32)),
        );
        for (i, axis) in axes.iter().enumerate().rev() {
            o_idx[i] += 1;
            if o_idx[i] < axis.output {
                break;
            }
            o_idx[i] = 0;
        }
    }
    at
}

/// Small planes, one output channel per input channel, any rank: channels last, so the
/// kernels' lanes run across channels (`inferchain_kernels::weighted_lanes`) instead of
/// across a plane of a few pixels. Per element it is the chain the planar and im2col
/// paths compute: every tap in kernel row-major order, padding read as +0.
fn depthwise_channels_last(
    source: Source,
    n: usize,
    ws: &[f32],
    Epilogue { bias, clip }: Epilogue,
    window: &Window,
    c: usize,
    layout: Layout,
) -> Vec<f32> {
    let (in_len, taps, p) = (window.input_len(), window.kernel_len(), window.output_len());
    // Two axes whose windows lie inside the padded input read a padded copy of the
    // sample: no tap reads padding, so the kernel's loop never branches on it (a zero
    // read from the copy is the same `fma(0, w, acc)` as a padding tap).
    let padded = PaddedPixels::of(window);
    let taps_at = match &padded {
        Some(padded) => TapsAt::Grid(padded.grid(window)),
        None => TapsAt::Listed(tap_offsets(window)),
    };
    let mut wt = vec![0f32; taps * c];
    channels_last::transpose(&ws[..c * taps], c, taps, &mut wt);
    let isa = numerics::isa();
    if p == 0 || c == 0 || in_len == 0 {
        return vec![0f32; n * c * p];
    }
    let threads = kernel_threads::threads();
    if n == 1 && layout == Layout::ChannelsLast {
        // One sample, stored as computed: its output written once, by the tasks (each
        // zeroes its own part in cache just before the kernel writes it).
        let x = sample_pixels(source, 0, in_len, c, padded.as_ref());
        let q = positions_per_task(p, n, threads);
        return numerics::written_on_threads(c * p, q * c, |t, y| {
            let y = inferchain_kernels::gemm::zeroed(y);
            let positions = t * q..t * q + y.len() / c;
            taps_at.weigh(isa, &x, positions, &wt, (bias, clip), c, y);
            y
        });
    }
    if n < threads {
        let mut out = vec![0f32; n * c * p];
        // Fewer samples than threads: each sample's pixels are prepared once, then its
        // output positions are split over the threads (positions are independent
        // outputs; each still runs its own chain).
        let q = positions_per_task(p, n, threads);
        let mut yt = Vec::new();
        for (s, y) in out.chunks_exact_mut(c * p).enumerate() {
            let x = sample_pixels(source, s, in_len, c, padded.as_ref());
            let run = |y: &mut [f32]| {
                kernel_threads::for_each_chunk_mut(y, q * c, |t, y| {
                    let positions = t * q..t * q + y.len() / c;
                    taps_at.weigh(isa, &x, positions, &wt, (bias, clip), c, y)
                })
            };
            match layout {
                Layout::ChannelsLast => run(y),
                Layout::RowMajor => {
                    yt.resize(p * c, 0.0);
                    run(&mut yt);
                    channels_last::transpose(&yt, p, c, y);
                }
            }
        }
        return out;
    }
    // Samples are independent: one task each, which zeroes its own sample's output in
    // its cache just before writing it (not a pass of the calling thread over all of
    // them while the workers wait).
    numerics::zeroed_on_threads(n * c * p, c * p, |s, y| {
        let x = sample_pixels(source, s, in_len, c, padded.as_ref());
        let x = &x[..];
        match layout {
            Layout::ChannelsLast => taps_at.weigh(isa, x, 0..p, &wt, (bias, clip), c, y),
            Layout::RowMajor => {
                let mut yt = vec![0f32; p * c];
                taps_at.weigh(isa, x, 0..p, &wt, (bias, clip), c, &mut yt);
                channels_last::transpose(&yt, p, c, y);
            }
        }
    })
}

/// Output positions per task where `n` samples (fewer than the `threads`) share the
/// threads, each split into tasks of this many positions: whole groups of the kernel's
/// positions side by side (eight for the padded grid, four for listed taps).
fn positions_per_task(p: usize, n: usize, threads: usize) -> usize {
    let chunks = (threads * kernel_threads::TASKS_PER_THREAD).div_ceil(n.max(1));
    p.div_ceil(chunks).next_multiple_of(8)
}

/// Where a channels-last depthwise convolution's taps read its input.
enum TapsAt {
    /// Per output position and tap, the input position, or `PADDING`.
    Listed(Vec<u32>),
    /// Per output position, the padded pixel its window starts at; per tap, the offset
    /// from there ([`PaddedPixels::grid`]).
    Grid((Vec<u32>, Vec<u32>)),
}

impl TapsAt {
    /// The kernels' weighted sums over the taps for the output positions `positions`
    /// (their values into `y`, channels last).
    #[allow(clippy::too_many_arguments)]
    fn weigh(
        &self,
        isa: inferchain_kernels::Isa,
        x: &[f32],
        positions: std::ops::Range<usize>,
        wt: &[f32],
        (bias, clip): (Option<&[f32]>, Option<(f32, f32)>),
        c: usize,
        y: &mut [f32],
    ) {
        match self {
            TapsAt::Listed(at) => {
                let taps = wt.len() / c.max(1);
                let at = &at[positions.start * taps..positions.end * taps];
                inferchain_kernels::weighted_lanes(isa, x, at, wt, bias, clip, c, y)
            }
            TapsAt::Grid((bases, offsets)) => inferchain_kernels::weighted_grid(
                isa,
                x,
                &bases[positions],
                offsets,
                wt,
                bias,
                clip,
                c,
                y,
            ),
        }
    }
}

/// Sample `s`'s `in_len` pixels of `c` channels, channels last, in their padded plane
/// where `padded` says so: read in place where the source already is that.
fn sample_pixels<'a>(
    source: Source<'a>,
    s: usize,
    in_len: usize,
    c: usize,
    padded: Option<&PaddedPixels>,
) -> Cow<'a, [f32]> {
    let x = match source {
        Source::Pixels(xs) => Cow::Borrowed(&xs[s * in_len * c..][..in_len * c]),
        Source::Planes(xs) => {
            let mut xt = vec![0f32; in_len * c];
            channels_last::transpose(&xs[s * c * in_len..][..c * in_len], c, in_len, &mut xt);
            Cow::Owned(xt)
        }
    };
    match padded {
        Some(padded) => Cow::Owned(padded.copy(&x, c)),
        None => x,
    }
}

/// Any rank: per plane, the taps as im2col rows.
fn depthwise_im2col(
    xs: &[f32],
    n: usize,
    ws: &[f32],
    bias: Option<&[f32]>,
    window: &Window,
    group: usize,
    mg: usize,
) -> Vec<f32> {
    let (in_len, taps, p) = (window.input_len(), window.kernel_len(), window.output_len());
    let isa = numerics::isa();
    let mut out = vec![0f32; n * group * mg * p];
    let im2col = Im2col::new(window);
    if p > 0 {
        kernel_threads::for_each_row_mut(&mut out, mg * p, |plane, dst| {
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
    out
}

/// Two spatial axes, any stride and dilation, read in place: the zero-padded input plane
/// is split into its `sy × sx` stride phases (phase `(ry, rx)` holds padded rows
/// `ry, ry + sy, …` and columns `rx, rx + sx, …`), so every kernel position reads one
/// contiguous run of one phase for the whole plane. The product runs over a "wide"
/// output whose rows are a phase's width apart; the columns past the output's width are
/// computed from neighbouring values and dropped.
fn depthwise_planar(
    xs: &[f32],
    n: usize,
    ws: &[f32],
    Epilogue { bias, clip }: Epilogue,
    window: &Window,
    group: usize,
    mg: usize,
) -> Vec<f32> {
    let (in_len, taps, p) = (window.input_len(), window.kernel_len(), window.output_len());
    let Some(split) = StridePhases::compact(window) else {
        return depthwise_im2col(xs, n, ws, bias, window, group, mg);
    };
    if p == 0 {
        return vec![0f32; n * group * mg * p];
    }
    let (wq, ow) = (split.wq, split.ow);
    let oh = p / ow;
    // Output rows per band: about DEPTHWISE_BAND_VALUES of the wide output.
    let band = (DEPTHWISE_BAND_VALUES / wq).clamp(1, oh);
    let isa = numerics::isa();
    // Planes per task: a few tasks per thread, each with its phase buffer and a band of
    // wide output (the buffer's padding written once per task). The output is not
    // zeroed first: each plane's rows are copied out of the wide output into fresh
    // storage, in order (output channel, then row).
    let planes = n * group;
    let per_task = kernel_threads::rows_per_task(planes);
    numerics::written_on_threads(planes * mg * p, per_task * mg * p, |task, dst| {
        let mut buffer = PhaseBuffer::default();
        let mut wide_out = vec![0f32; (band - 1) * wq + ow];
        let mut out = numerics::Filling::new(dst);
        for i in 0..dst_planes(per_task, task, planes) {
            let plane = task * per_task + i;
            let (s, g) = (plane / group, plane % group);
            let src = &xs[(s * group + g) * in_len..][..in_len];
            if mg > 1 {
                // Several output channels read the plane: its phases whole, then each
                // output channel's rows (the plane's output channels in order).
                split.fill(src, 0.0, &mut buffer);
                let phases = split.read(src, &buffer);
                for oc in 0..mg {
                    let c = g * mg + oc;
                    let (wc, b) = (&ws[c * taps..][..taps], bias.map(|b| b[c]));
                    for oy0 in (0..oh).step_by(band) {
                        let rows = oh.min(oy0 + band) - oy0;
                        let wide = &mut wide_out[..(rows - 1) * wq + ow];
                        weigh_band(isa, phases, &split.reads, oy0 * wq, (wc, b, clip), wide);
                        for oy in 0..rows {
                            out.put(&wide[oy * wq..][..ow]);
                        }
                    }
                }
                continue;
            }
            // One output channel: band by band, its input rows written to the phases
            // just before the band's windows read them, and its rows copied out just
            // after, all while in L1.
            let (wc, b) = (&ws[g * taps..][..taps], bias.map(|b| b[g]));
            let mut written = 0;
            for oy0 in (0..oh).step_by(band) {
                let rows = oh.min(oy0 + band) - oy0;
                // Every band fills (none, where its windows read only padding): the
                // first lays the buffer out, its padding written, before it is read.
                let needed = split.input_rows_for(oy0 + rows).max(written);
                split.fill_rows(src, 0.0, &mut buffer, written..needed);
                written = needed;
                let phases = split.read(src, &buffer);
                let wide = &mut wide_out[..(rows - 1) * wq + ow];
                weigh_band(isa, phases, &split.reads, oy0 * wq, (wc, b, clip), wide);
                for oy in 0..rows {
                    out.put(&wide[oy * wq..][..ow]);
                }
            }
        }
        out.done()
    })
}

/// Values of a depthwise convolution's wide output computed per band (8 KiB): the band's
/// phase rows and its output then stay in L1 between being written and read. (Any band
/// gives the same bits: each output is its own chain.)
const DEPTHWISE_BAND_VALUES: usize = 2048;

/// One band of [`depthwise_planar`]'s wide output, from wide position `start`: the taps'
/// rows read the phases at `reads` from there.
fn weigh_band(
    isa: inferchain_kernels::Isa,
    phases: &[f32],
    reads: &[usize],
    start: usize,
    (wc, b, clip): (&[f32], Option<f32>, Option<(f32, f32)>),
    wide: &mut [f32],
) {
    // The taps' rows: on the stack for kernels of up to 16 positions (no allocation per
    // band).
    let (mut few, many): ([&[f32]; 16], Vec<&[f32]>);
    let rows: &[&[f32]] = if reads.len() <= 16 {
        few = [&[]; 16];
        for (r, &at) in few.iter_mut().zip(reads) {
            *r = &phases[at + start..];
        }
        &few[..reads.len()]
    } else {
        many = reads.iter().map(|&at| &phases[at + start..]).collect();
        &many
    };
    inferchain_kernels::weighted_slices_clamped(isa, rows, wc, b, clip, wide);
}

/// How many planes task `task` of `per_task` planes each holds, of `planes` in all.
fn dst_planes(per_task: usize, task: usize, planes: usize) -> usize {
    planes.saturating_sub(task * per_task).min(per_task)
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
                    // Rows of small planes are short: inline moves rather than calls to
                    // memset and memcpy.
                    let (head, rest) = row.split_at_mut(lo);
                    for d in head.iter_mut().chain(&mut rest[hi - lo..]) {
                        *d = 0.0;
                    }
                    let src = &plane[iy * w..][..w];
                    let row = &mut row[lo..hi];
                    if ax.stride == 1 {
                        window::copy_short(row, &src[start..start + (hi - lo)]);
                    } else {
                        for (d, v) in row.iter_mut().zip(src[start..].iter().step_by(ax.stride)) {
                            *d = *v;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::onnx::ops::window::Axis;

    fn axis(
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        pads: (usize, usize),
    ) -> Axis {
        let reach = (kernel - 1) * dilation + 1;
        Axis {
            input,
            kernel,
            stride,
            dilation,
            pad_begin: pads.0,
            pad_end: pads.1,
            output: (input + pads.0 + pads.1 - reach) / stride + 1,
        }
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        // Mixed signs and magnitudes, a few exact zeros: any change of order shows.
        (0..len)
            .map(|i| {
                let h = (i as u32 ^ seed)
                    .wrapping_mul(2_654_435_761)
                    .rotate_left(13);
                if h.is_multiple_of(17) {
                    0.0
                } else {
                    (h as f32 / u32::MAX as f32 - 0.5) * (1.0 + (h % 7) as f32)
                }
            })
            .collect()
    }

    /// The channels-last path's tap table lists what the window's own `taps` lists, in
    /// its order, for one, two and three spatial axes.
    #[test]
    fn tap_offsets_list_the_windows_taps() {
        let windows = [
            vec![axis(9, 3, 2, 1, (1, 2))],
            vec![axis(7, 3, 1, 2, (2, 2)), axis(6, 2, 2, 1, (0, 1))],
            vec![
                axis(4, 3, 1, 1, (1, 1)),
                axis(5, 2, 2, 1, (1, 0)),
                axis(3, 3, 1, 1, (0, 2)),
            ],
        ];
        for window in windows.map(|axes| Window { axes }) {
            let expected: Vec<u32> = window
                .taps()
                .into_iter()
                .flat_map(|(reads, _)| reads)
                .map(|r| r.map_or(inferchain_kernels::PADDING, |i| i as u32))
                .collect();
            assert_eq!(tap_offsets(&window), expected);
            assert_eq!(patch_positions(&window), Some(expected));
        }
        // A 1×1 window reading every position in place lists the positions themselves.
        let identity = Window {
            axes: vec![axis(3, 1, 1, 1, (0, 0)), axis(5, 1, 1, 1, (0, 0))],
        };
        let expected: Vec<u32> = identity
            .taps()
            .into_iter()
            .flat_map(|(reads, _)| reads)
            .map(|r| r.map_or(PADDING, |i| i as u32))
            .collect();
        assert_eq!(patch_positions(&identity), Some(expected));
    }

    /// `Y = W · cols` (NCHW directly) and the short-chain planar path compute the bits of
    /// `Yᵀ = colsᵀ Wᵀ` transposed, for 1×1 and im2col convolutions, groups, batches and
    /// biases.
    #[test]
    fn direct_convolution_matches_batched() {
        let isa = numerics::isa();
        // (h, w, kernel, stride, pads, c, m, group, n)
        let cases = [
            (16, 16, 1, 1, (0, 0), 16, 24, 1, 1),
            (17, 15, 3, 2, (1, 1), 3, 32, 1, 2),
            (16, 16, 3, 1, (1, 1), 12, 8, 4, 3),
            (20, 18, 5, 1, (2, 0), 130, 40, 2, 1),
            (9, 30, 1, 1, (0, 0), 300, 20, 1, 2),
            (13, 11, 3, 2, (1, 0), 3, 6, 1, 1),
            (16, 16, 1, 1, (0, 0), 8, 7, 1, 3),
            // No input channels: the chain is empty, the output its bias.
            (6, 6, 3, 1, (1, 1), 0, 4, 1, 2),
            // Groups over ten samples, eight a product: a product starting past the
            // first sample.
            (16, 16, 3, 1, (1, 1), 12, 8, 4, 10),
            // A network's stem: 7×7, stride 2, padding 3.
            (30, 28, 7, 2, (3, 3), 3, 16, 1, 1),
        ];
        for (h, w, kernel, stride, pads, c, m, group, n) in cases {
            let window = Window {
                axes: vec![
                    axis(h, kernel, stride, 1, pads),
                    axis(w, kernel, stride, 1, pads),
                ],
            };
            let (cg, mg) = (c / group, m / group);
            let k = cg * kernel * kernel;
            let p = window.output_len();
            let geometry = Geometry {
                n,
                c,
                cg,
                mg,
                k,
                taps: kernel * kernel,
                p,
                in_len: h * w,
                group,
            };
            let xs = values(n * c * h * w, 4);
            let ws = values(m * k, 5);
            let bias = values(m, 6);
            let packed: Vec<PackedB> = (0..group)
                .map(|g| {
                    PackedB::pack(
                        isa,
                        MatRef::row_major(&ws[g * mg * k..][..mg * k], mg, k).t(),
                    )
                })
                .collect();
            let im2col = (kernel > 1).then(|| Im2col::new(&window));
            let positions = patch_positions(&window).unwrap();
            for b in [None, Some(&bias[..])] {
                let epilogue = Epilogue {
                    bias: b,
                    clip: None,
                };
                let direct = conv_direct(&xs, &ws, &geometry, &epilogue, im2col.as_ref());
                let batched = |source, layout| {
                    conv_batched(source, &packed, &geometry, &epilogue, &positions, layout)
                };
                let same = |got: &[f32]| {
                    got.len() == direct.len()
                        && direct
                            .iter()
                            .zip(got)
                            .all(|(d, r)| d.to_bits() == r.to_bits())
                };
                // The short-chain path: whole-plane rows of the stride phases, several
                // output channels per register loaded; with the clamp fused too.
                let split = StridePhases::of(&window).unwrap();
                let planar = conv_planar(&xs, &ws, &geometry, &epilogue, &split);
                assert!(
                    same(&planar),
                    "planar {h}x{w} k{kernel} s{stride} m{m} n{n}"
                );
                let clipped = Epilogue {
                    bias: b,
                    clip: Some((-0.5, 0.75)),
                };
                let want = conv_direct(&xs, &ws, &geometry, &clipped, im2col.as_ref());
                let got = conv_planar(&xs, &ws, &geometry, &clipped, &split);
                let bitwise = |got: &[f32]| {
                    got.len() == want.len()
                        && want
                            .iter()
                            .zip(got)
                            .all(|(a, b)| a.to_bits() == b.to_bits())
                };
                assert!(bitwise(&got), "planar clamped {h}x{w} k{kernel} m{m}");
                // B's rows read from the stride phases as the product goes (the wide
                // output's dropped columns included), plain and clamped.
                let wide = conv_wide(&xs, &ws, &geometry, &epilogue, &split);
                assert!(
                    same(&wide),
                    "wide {h}x{w} k{kernel} s{stride} c{c} m{m} g{group} n{n}"
                );
                let wide = conv_wide(&xs, &ws, &geometry, &clipped, &split);
                assert!(bitwise(&wide), "wide clamped {h}x{w} k{kernel} m{m}");
                let row_major = batched(Source::Planes(&xs), Layout::RowMajor);
                assert!(
                    same(&row_major),
                    "{h}x{w} k{kernel} s{stride} c{c} m{m} g{group} n{n}"
                );
                let q = h * w;
                if group == 1 {
                    // Channels last out: the same values, pixel by pixel.
                    let stored = batched(Source::Planes(&xs), Layout::ChannelsLast);
                    let back = channels_last::to_nchw(&stored, n, m, p);
                    assert!(same(&back), "channels last out {h}x{w} k{kernel} n{n}");
                }
                if im2col.is_none() {
                    // Channels last in (a 1×1 convolution reads its rows in place).
                    let mut pixels = vec![0f32; xs.len()];
                    for (x, d) in xs.chunks_exact(c * q).zip(pixels.chunks_exact_mut(c * q)) {
                        channels_last::transpose(x, c, q, d);
                    }
                    let from_pixels = batched(Source::Pixels(&pixels), Layout::RowMajor);
                    assert!(
                        same(&from_pixels),
                        "channels last in {h}x{w} c{c} g{group} n{n}"
                    );
                    if group == 1 {
                        // Channels last in and out: A's rows in place, Yᵀ as stored.
                        let stored = batched(Source::Pixels(&pixels), Layout::ChannelsLast);
                        let back = channels_last::to_nchw(&stored, n, m, p);
                        assert!(same(&back), "channels last in and out {h}x{w} c{c} n{n}");
                    }
                }
            }
        }
    }

    /// A padding or stride far larger than the plane (a hostile graph's) keeps a
    /// convolution off the paths whose buffers grow with the padded plane.
    #[test]
    fn hostile_paddings_and_strides_keep_off_the_phase_paths() {
        let two = |y: Axis, x: Axis| Window { axes: vec![y, x] };
        let dilated = two(
            axis(1, 2, 1, 4096, (4096, 4096)),
            axis(1, 2, 1, 4096, (12, 12)),
        );
        assert!(PaddedPixels::of(&dilated).is_none());
        assert!(StridePhases::compact(&dilated).is_none());
        let strided = two(
            axis(1, 1, 1000, 1, (8000, 8000)),
            axis(1, 1, 1000, 1, (8000, 8000)),
        );
        assert!(StridePhases::compact(&strided).is_none());
        // An ordinary layer takes them.
        let plain = two(axis(14, 3, 1, 1, (1, 1)), axis(14, 3, 1, 1, (1, 1)));
        assert!(PaddedPixels::of(&plain).is_some());
        assert!(StridePhases::compact(&plain).is_some());
        let stem = two(axis(224, 7, 2, 1, (3, 3)), axis(224, 7, 2, 1, (3, 3)));
        assert!(StridePhases::compact(&stem).is_some());
    }

    /// The stride-phase depthwise path computes the im2col path's bits for every
    /// stride, dilation, padding and depth multiplier, narrow planes and wide, in one
    /// band of output rows and in several.
    #[test]
    fn planar_depthwise_matches_im2col() {
        let cases = [
            // (h, w, kernel, stride, dilation, pads, multiplier)
            (7, 7, 3, 1, 1, (1, 1), 1),
            (14, 14, 3, 2, 1, (1, 1), 1),
            (15, 15, 3, 2, 1, (1, 1), 1),
            (13, 17, 5, 2, 2, (3, 2), 1),
            (112, 112, 3, 2, 1, (0, 1), 1),
            (40, 37, 5, 2, 1, (2, 2), 2),
            (9, 11, 3, 3, 2, (2, 0), 1),
            (20, 33, 3, 1, 2, (2, 2), 3),
            (5, 6, 1, 2, 1, (0, 0), 1),
            (8, 8, 4, 4, 1, (3, 1), 1),
            // Several bands of output rows (`DEPTHWISE_BAND_VALUES`): wide planes, a
            // dilated kernel, stride 2 and several output channels per plane.
            (64, 200, 3, 1, 1, (1, 1), 1),
            (100, 64, 3, 1, 2, (2, 2), 1),
            (130, 90, 5, 2, 1, (2, 2), 2),
            // Bands of one row, the first ones reading only the top padding.
            (6, 2100, 3, 1, 1, (4, 1), 1),
        ];
        for (h, w, k, stride, dilation, pads, mg) in cases {
            let window = Window {
                axes: vec![
                    axis(h, k, stride, dilation, pads),
                    axis(w, k, stride, dilation, (pads.1, pads.0)),
                ],
            };
            // Three channels, and 21 (one AVX-512 register and a tail); one sample (its
            // positions split over the threads) and two.
            for (group, n) in [(3, 1), (3, 2), (21, 1), (21, 2)] {
                let xs = values(n * group * h * w, 1);
                let ws = values(group * mg * k * k, 2);
                let bias = values(group * mg, 3);
                for b in [None, Some(&bias[..])] {
                    let epilogue = Epilogue {
                        bias: b,
                        clip: None,
                    };
                    let planar = depthwise_planar(&xs, n, &ws, epilogue, &window, group, mg);
                    let reference = depthwise_im2col(&xs, n, &ws, b, &window, group, mg);
                    let same = |got: &[f32]| {
                        got.len() == reference.len()
                            && got
                                .iter()
                                .zip(&reference)
                                .all(|(a, r)| a.to_bits() == r.to_bits())
                    };
                    assert!(
                        same(&planar),
                        "{h}x{w} k{k} s{stride} d{dilation} {pads:?} x{mg}"
                    );
                    if mg == 1 {
                        // Channels last, whatever the plane's size; planes or pixels in,
                        // planes or pixels out.
                        let lanes = |source, layout| {
                            depthwise_channels_last(
                                source, n, &ws, epilogue, &window, group, layout,
                            )
                        };
                        let q = h * w;
                        let mut pixels = vec![0f32; xs.len()];
                        for (x, d) in xs
                            .chunks_exact(group * q)
                            .zip(pixels.chunks_exact_mut(group * q))
                        {
                            channels_last::transpose(x, group, q, d);
                        }
                        let p = window.output_len();
                        for source in [Source::Planes(&xs), Source::Pixels(&pixels)] {
                            assert!(
                                same(&lanes(source, Layout::RowMajor)),
                                "channels last {h}x{w} k{k} s{stride} d{dilation} {pads:?}"
                            );
                            let stored = lanes(source, Layout::ChannelsLast);
                            assert!(
                                same(&channels_last::to_nchw(&stored, n, group, p)),
                                "channels last out {h}x{w} k{k} s{stride} d{dilation} {pads:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
