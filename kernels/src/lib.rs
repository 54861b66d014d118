//! # inferchain-kernels
//!
//! The numerics of every floating-point operator inferchain's engine computes, defined
//! as an exact sequence of IEEE-754 operations per output element, so that every honest
//! CPU computes the same output bits (docs/DETERMINISM.md):
//!
//! * **Matrix products and convolutions** ([`gemm`]): each element is one FMA chain
//!   along K, in index order, from +0. SIMD lanes run over columns, never over K.
//! * **Sums** ([`reduce`]): 16 partial sums and one fixed tree, however wide the
//!   registers; means, variances, softmax denominators and normalizations use it.
//! * **Transcendental functions** ([`math`]): exp, log, tanh, erf, sigmoid, GELU, SiLU,
//!   pow, built from FMA and exactly rounded operations; no platform libm.
//! * **Pooling windows and transposed convolutions** ([`window`]): binary64 sums in a
//!   fixed order, rounded once.
//! * **Quantization** ([`quantize`]): integer products, and round-to-nearest-even by
//!   2²³ arithmetic between floats and the quantized types.
//! * **NaN**: every kernel writes one canonical NaN ([`math::CANONICAL_NAN`]).
//!
//! Each kernel is written once over [`lanes::Lanes`] and instantiated for the scalar
//! reference ([`Isa::Scalar`]: no_std, runs in wasm32 and in the runtime's referee, with a
//! software FMA where the CPU has none) and for AVX-512, AVX2 + FMA and NEON, which give
//! the reference's bits. [`Isa::detect`] picks the fastest path this CPU runs (with the
//! `std` feature; without it, only the reference runs).
//!
//! What it must not do: call the platform's math library; let the CPU, the SIMD width,
//! a cache size or a thread count decide the order of any floating-point operation;
//! depend on anything but `core` and `alloc`. A change to any output bit of any kernel
//! bumps [`NUMERICS_VERSION`].
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod call;
mod dispatch;
pub mod elementwise;
pub mod fma;
pub mod gemm;
pub mod isa;
pub mod lanes;
pub mod lrn;
pub mod math;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod quantize;
pub mod reduce;
pub mod rotary;
#[cfg(feature = "std")]
pub mod trace;
pub mod window;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use elementwise::Unary;
pub use gemm::{
    gemm_reference, Bias, KeptColumns, Lhs, MatRef, PackedB, Parallel, Patches, Sequential, PADDING,
};
pub use isa::Isa;

/// The version of these numerics. A model registers the version its outputs are defined
/// under; an engine refuses a model registered under a version it does not implement.
///
/// | version | numerics |
/// | --- | --- |
/// | 1, 2 | candle 0.11.1's kernels (CPU-dependent in the last bits) |
/// | 3 | this crate: fixed-order FMA chains, 16-lane sums, own transcendentals |
pub const NUMERICS_VERSION: u32 = 3;

/// Records `call` with `output` while a trace is on ([`trace`]); `call` is built only
/// then.
#[inline]
pub(crate) fn record(call: impl FnOnce() -> call::Call, output: &[f32]) {
    #[cfg(feature = "std")]
    if trace::on() {
        trace::push(call(), output);
    }
    #[cfg(not(feature = "std"))]
    let _ = (call, output);
}

/// `C = A B (+ bias)`: the matrix product ([`gemm`](mod@gemm) says how it is defined).
pub fn gemm<'a>(
    isa: Isa,
    a: impl Into<Lhs<'a>>,
    b: &PackedB,
    bias: Bias<'_>,
    c: &mut [f32],
    par: &dyn Parallel,
) {
    let a = a.into();
    gemm::gemm(isa, a, b, bias, c, par);
    record(
        || call::Call::Gemm {
            m: a.rows() as u32,
            n: b.n() as u32,
            k: b.k() as u32,
            a: a.to_row_major(),
            b: b.unpack(),
            bias: match bias {
                Bias::None => call::CallBias::None,
                Bias::Row(v) => call::CallBias::Row(v.to_vec()),
                Bias::Col(v) => call::CallBias::Col(v.to_vec()),
            },
        },
        c,
    );
}

/// [`gemm`], then each element clamped as ONNX's `Clip` does ([`gemm::clamp`]) when
/// `bounds` are given: the two in one pass (a convolution fused with the `Clip` after it).
/// While a trace is on, the product is recorded as the plain [`gemm`] call it is and the
/// clamp, which is no kernel call, is applied after it.
pub fn gemm_clamped<'a>(
    isa: Isa,
    a: impl Into<Lhs<'a>>,
    b: &PackedB,
    bias: Bias<'_>,
    bounds: Option<(f32, f32)>,
    c: &mut [f32],
    par: &dyn Parallel,
) {
    let a = a.into();
    if !tracing() {
        return gemm::gemm_clamped(isa, a, b, bias, bounds, c, par);
    }
    gemm(isa, a, b, bias, c, par);
    if let Some(bounds) = bounds {
        clamp_slice(c, bounds);
    }
}

/// [`gemm_clamped`] into a fresh output (memory not yet written): every element of `c`
/// is written, and `c` is returned initialized.
pub fn gemm_into<'a, 'c>(
    isa: Isa,
    a: impl Into<Lhs<'a>>,
    b: &PackedB,
    bias: Bias<'_>,
    bounds: Option<(f32, f32)>,
    c: &'c mut [core::mem::MaybeUninit<f32>],
    par: &dyn Parallel,
) -> &'c mut [f32] {
    let a = a.into();
    if tracing() {
        let c = gemm::zeroed(c);
        gemm_clamped(isa, a, b, bias, bounds, c, par);
        return c;
    }
    gemm::gemm_into(isa, a, b, bias, bounds, c, par)
}

/// [`gemm_into`] with B given by its rows, packed panel by panel as the product reads
/// them ([`gemm::gemm_rows`]): the same bits as packing B first. While a trace is on, B
/// is packed first and the product recorded as the [`gemm`] call it is.
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows<'c>(
    isa: Isa,
    a: MatRef<'_>,
    rows: &[&[f32]],
    n: usize,
    bias: Bias<'_>,
    bounds: Option<(f32, f32)>,
    c: &'c mut [core::mem::MaybeUninit<f32>],
    par: &dyn Parallel,
) -> &'c mut [f32] {
    if tracing() {
        let b = PackedB::from_rows(isa, rows, n);
        return gemm_into(isa, a, &b, bias, bounds, c, par);
    }
    gemm::gemm_rows(isa, a, rows, n, bias, bounds, c, par)
}

/// [`gemm_rows`] storing only the columns `keep` keeps ([`gemm::gemm_rows_kept`]: a
/// convolution's wide output without its dropped columns): the same bits as the whole
/// product with those columns left out. While a trace is on, the whole product is
/// computed and recorded as the [`gemm`] call it is, then its kept columns stored.
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows_kept<'c>(
    isa: Isa,
    a: MatRef<'_>,
    rows: &[&[f32]],
    n: usize,
    keep: KeptColumns,
    bias: Bias<'_>,
    bounds: Option<(f32, f32)>,
    c: &'c mut [core::mem::MaybeUninit<f32>],
    par: &dyn Parallel,
) -> &'c mut [f32] {
    if tracing() {
        let mut whole = alloc::vec![core::mem::MaybeUninit::uninit(); a.rows * n];
        let whole = gemm_rows(isa, a, rows, n, bias, bounds, &mut whole, par);
        return gemm::kept_columns(whole, (a.rows, n), keep, c);
    }
    gemm::gemm_rows_kept(isa, a, rows, n, keep, bias, bounds, c, par)
}

/// Whether calls are being recorded ([`trace`]).
fn tracing() -> bool {
    #[cfg(feature = "std")]
    return trace::on();
    #[cfg(not(feature = "std"))]
    false
}

/// Every value of `x` clamped as [`gemm::clamp`] does.
pub fn clamp_slice(x: &mut [f32], bounds: (f32, f32)) {
    for v in x {
        *v = gemm::clamp(lanes::Scalar(*v), bounds).0;
    }
}

/// `out[p] = chain_k fma(rows[k][p], w[k], acc) (+ bias)`: the matrix product of the one
/// row `w` with `rows` (K × P), for depthwise convolutions; the same bits as [`gemm`].
pub fn weighted_rows(isa: Isa, rows: &[f32], w: &[f32], bias: Option<f32>, out: &mut [f32]) {
    dispatch::weighted_rows(isa, rows, w, bias, out);
    record(|| one_row_gemm(w, rows.to_vec(), bias, out.len()), out);
}

/// A one-row product as the matrix product it is, for the trace.
fn one_row_gemm(w: &[f32], b: alloc::vec::Vec<f32>, bias: Option<f32>, n: usize) -> call::Call {
    call::Call::Gemm {
        m: 1,
        n: n as u32,
        k: w.len() as u32,
        a: w.to_vec(),
        b,
        bias: match bias {
            Some(v) => call::CallBias::Row(alloc::vec![v]),
            None => call::CallBias::None,
        },
    }
}

/// [`weighted_rows`] with each row its own slice (of at least `out.len()` values).
pub fn weighted_slices(isa: Isa, rows: &[&[f32]], w: &[f32], bias: Option<f32>, out: &mut [f32]) {
    weighted_slices_clamped(isa, rows, w, bias, None, out)
}

/// [`weighted_slices`], then each value clamped as [`gemm_clamped`] does.
pub fn weighted_slices_clamped(
    isa: Isa,
    rows: &[&[f32]],
    w: &[f32],
    bias: Option<f32>,
    bounds: Option<(f32, f32)>,
    out: &mut [f32],
) {
    let fused = if tracing() { None } else { bounds };
    dispatch::weighted_slices(isa, rows, w, bias, fused, out);
    let n = out.len();
    record(
        || {
            one_row_gemm(
                w,
                rows.iter().flat_map(|r| r[..n].iter().copied()).collect(),
                bias,
                n,
            )
        },
        out,
    );
    if let (None, Some(bounds)) = (fused, bounds) {
        clamp_slice(out, bounds);
    }
}

/// [`weighted_slices_clamped`] for `m` weight rows at once over the same `rows`: `w` is
/// [m, K], `bias` one value per weight row, `out` [m, P]; row `i` of `out` gets the bits
/// [`weighted_slices_clamped`] gives for `w[i]` (each input register loaded serves
/// several rows). While calls are traced, it runs row by row through
/// [`weighted_slices_clamped`], which records them.
pub fn weighted_slices_rows(
    isa: Isa,
    rows: &[&[f32]],
    w: &[f32],
    bias: Option<&[f32]>,
    bounds: Option<(f32, f32)>,
    m: usize,
    out: &mut [f32],
) {
    if !tracing() || m == 0 {
        dispatch::weighted_slices_rows(isa, rows, w, (bias, bounds), m, out);
        return;
    }
    let (k, p) = (rows.len(), out.len() / m);
    for (i, y) in out.chunks_exact_mut(p.max(1)).take(m).enumerate() {
        weighted_slices_clamped(isa, rows, &w[i * k..][..k], bias.map(|b| b[i]), bounds, y);
    }
}

/// [`weighted_lanes`] where output position `o`'s tap `t` reads input position
/// `bases[o] + offsets[t]` and no tap reads padding (a depthwise convolution over a
/// padded copy of its input): the same bits, without a listed index per tap. While
/// calls are traced, it runs as [`weighted_lanes`] over the listed taps, which records
/// them.
#[allow(clippy::too_many_arguments)]
pub fn weighted_grid(
    isa: Isa,
    x: &[f32],
    bases: &[u32],
    offsets: &[u32],
    w: &[f32],
    bias: Option<&[f32]>,
    bounds: Option<(f32, f32)>,
    c: usize,
    out: &mut [f32],
) {
    if !tracing() || c == 0 {
        dispatch::weighted_grid(isa, x, (bases, offsets), w, (bias, bounds), c, out);
        return;
    }
    let at: alloc::vec::Vec<u32> = bases
        .iter()
        .flat_map(|&b| {
            offsets.iter().map(move |&t| {
                b.checked_add(t)
                    .filter(|&p| p != PADDING)
                    .expect("weighted_grid: a tap reads outside the input")
            })
        })
        .collect();
    weighted_lanes(isa, x, &at, w, bias, bounds, c, out);
}

/// [`weighted_slices_clamped`] for `c` channels at once, channels last: `x` is
/// [inputs, c], `w` is [taps, c], `at` lists for every output position the input position
/// each tap reads (or [`PADDING`]: +0), `out` is [positions, c]. Each output element is
/// the chain [`weighted_slices_clamped`] computes over that channel's taps (the same
/// bits); the lanes run across channels. While calls are traced, it runs channel by
/// channel through [`weighted_slices_clamped`], which records them.
#[allow(clippy::too_many_arguments)]
pub fn weighted_lanes(
    isa: Isa,
    x: &[f32],
    at: &[u32],
    w: &[f32],
    bias: Option<&[f32]>,
    bounds: Option<(f32, f32)>,
    c: usize,
    out: &mut [f32],
) {
    if !tracing() || c == 0 {
        dispatch::weighted_lanes(isa, x, at, w, (bias, bounds), c, out);
        return;
    }
    let (taps, positions) = (w.len() / c, out.len() / c);
    let mut rows = alloc::vec![alloc::vec![0f32; positions]; taps];
    let mut y = alloc::vec![0f32; positions];
    let mut wc = alloc::vec![0f32; taps];
    for ch in 0..c {
        for (t, row) in rows.iter_mut().enumerate() {
            for (o, v) in row.iter_mut().enumerate() {
                let p = at[o * taps + t];
                *v = if p == PADDING {
                    0.0
                } else {
                    x[p as usize * c + ch]
                };
            }
            wc[t] = w[t * c + ch];
        }
        let refs: alloc::vec::Vec<&[f32]> = rows.iter().map(|r| &r[..]).collect();
        weighted_slices_clamped(isa, &refs, &wc, bias.map(|b| b[ch]), bounds, &mut y);
        for (o, v) in y.iter().enumerate() {
            out[o * c + ch] = *v;
        }
    }
}

/// `y[i] = op(x[i])`.
pub fn unary(isa: Isa, op: Unary, x: &[f32], y: &mut [f32]) {
    dispatch::unary(isa, op, x, y);
    record(|| call::Call::Unary { op, x: x.to_vec() }, y);
}

/// `x[i] = op(x[i])`.
pub fn unary_in_place(isa: Isa, op: Unary, x: &mut [f32]) {
    #[cfg(feature = "std")]
    let input = trace::on().then(|| x.to_vec());
    dispatch::unary_in_place(isa, op, x);
    #[cfg(feature = "std")]
    if let Some(input) = input {
        trace::push(call::Call::Unary { op, x: input }, x);
    }
}

/// The sum of `x` in the fixed 16-lane order ([`reduce`]).
pub fn sum(isa: Isa, x: &[f32]) -> f32 {
    let s = dispatch::sum(isa, x);
    record(|| call::Call::Sum { x: x.to_vec() }, &[s]);
    s
}

/// `sum(x[i]^2)` in the fixed 16-lane order, each step `fma(x, x, partial)`.
pub fn sum_squares(isa: Isa, x: &[f32]) -> f32 {
    let s = dispatch::sum_sq_dev(isa, x, 0.0);
    record(|| call::Call::SumSquares { x: x.to_vec() }, &[s]);
    s
}

/// The largest element (NaN if any is NaN, -inf if empty).
pub fn max(isa: Isa, x: &[f32]) -> f32 {
    let m = dispatch::max(isa, x);
    record(|| call::Call::Max { x: x.to_vec() }, &[m]);
    m
}

/// The window maximum of `runs[0][j], runs[1][j], …` (in that order) for every `j` of
/// `out`: per element the bits of [`window::max`] over those values, lanes across `j`
/// (a pooling window's kernel positions, each a run over a plane's outputs). While
/// calls are traced, it runs element by element through [`window::max`], which records
/// them.
pub fn window_max_runs(isa: Isa, runs: &[&[f32]], out: &mut [f32]) {
    if tracing() {
        let mut values = alloc::vec::Vec::with_capacity(runs.len());
        for (j, y) in out.iter_mut().enumerate() {
            values.clear();
            values.extend(runs.iter().map(|r| r[j]));
            *y = window::max(&values);
        }
        return;
    }
    dispatch::window_max_runs(isa, runs, out);
}

/// The mean of `x`: `sum(x) / len`.
pub fn mean(isa: Isa, x: &[f32]) -> f32 {
    sum(isa, x) / x.len() as f32
}

/// Softmax over one row.
pub fn softmax(isa: Isa, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "softmax: lengths differ");
    dispatch::softmax(isa, x, y);
    record(|| call::Call::Softmax { x: x.to_vec() }, y);
}

/// Log-softmax over one row.
pub fn log_softmax(isa: Isa, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "log_softmax: lengths differ");
    dispatch::log_softmax(isa, x, y);
    record(|| call::Call::LogSoftmax { x: x.to_vec() }, y);
}

/// `(mean, 1 / sqrt(var + eps))` of one row.
pub fn moments(isa: Isa, x: &[f32], eps: f32) -> (f32, f32) {
    let (m, r) = dispatch::moments(isa, x, eps);
    record(|| call::Call::Moments { x: x.to_vec(), eps }, &[m, r]);
    (m, r)
}

/// Layer normalization of one row: [`moments`], then
/// `fma((x - mean) * rstd, scale, bias)` per element.
pub fn layer_norm(
    isa: Isa,
    x: &[f32],
    scale: &[f32],
    bias: Option<&[f32]>,
    eps: f32,
    y: &mut [f32],
) {
    let (mean, rstd) = dispatch::moments(isa, x, eps);
    dispatch::normalize_row(isa, x, mean, rstd, scale, bias, y);
    record(
        || call::Call::LayerNorm {
            x: x.to_vec(),
            scale: scale.to_vec(),
            bias: bias.map(<[f32]>::to_vec),
            eps,
        },
        y,
    );
}

/// One channel with a single scale and bias: `fma((x - mean) * rstd, scale, bias)`.
pub fn normalize_channel(
    isa: Isa,
    x: &[f32],
    mean: f32,
    rstd: f32,
    scale: f32,
    bias: f32,
    y: &mut [f32],
) {
    dispatch::normalize_channel(isa, x, mean, rstd, scale, bias, y);
    record(
        || call::Call::NormalizeChannel {
            x: x.to_vec(),
            mean,
            rstd,
            scale,
            bias,
        },
        y,
    );
}

/// `out[i] = x[i]^y[i]` ([`math::pow`]; scalar on every ISA).
pub fn pow(x: &[f32], y: &[f32], out: &mut [f32]) {
    assert!(
        x.len() == y.len() && y.len() == out.len(),
        "pow: lengths differ"
    );
    for ((o, &a), &b) in out.iter_mut().zip(x).zip(y) {
        *o = math::pow(a, b);
    }
    record(
        || call::Call::Pow {
            x: x.to_vec(),
            y: y.to_vec(),
        },
        out,
    );
}
