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

mod dispatch;
pub mod elementwise;
pub mod fma;
pub mod gemm;
pub mod isa;
pub mod lanes;
pub mod math;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod reduce;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use elementwise::Unary;
pub use gemm::{gemm, gemm_reference, Bias, MatRef, PackedB, Parallel, Sequential};
pub use isa::Isa;

/// The version of these numerics. A model registers the version its outputs are defined
/// under; an engine refuses a model registered under a version it does not implement.
///
/// | version | numerics |
/// | --- | --- |
/// | 1, 2 | candle 0.11.1's kernels (CPU-dependent in the last bits) |
/// | 3 | this crate: fixed-order FMA chains, 16-lane sums, own transcendentals |
pub const NUMERICS_VERSION: u32 = 3;

/// `y[i] = op(x[i])`.
pub fn unary(isa: Isa, op: Unary, x: &[f32], y: &mut [f32]) {
    dispatch::unary(isa, op, x, y)
}

/// `x[i] = op(x[i])`.
pub fn unary_in_place(isa: Isa, op: Unary, x: &mut [f32]) {
    dispatch::unary_in_place(isa, op, x)
}

/// The sum of `x` in the fixed 16-lane order ([`reduce`]).
pub fn sum(isa: Isa, x: &[f32]) -> f32 {
    dispatch::sum(isa, x)
}

/// `sum(x[i]^2)` in the fixed 16-lane order, each step `fma(x, x, partial)`.
pub fn sum_squares(isa: Isa, x: &[f32]) -> f32 {
    dispatch::sum_sq_dev(isa, x, 0.0)
}

/// The largest element (NaN if any is NaN, -inf if empty).
pub fn max(isa: Isa, x: &[f32]) -> f32 {
    dispatch::max(isa, x)
}

/// The mean of `x`: `sum(x) / len`.
pub fn mean(isa: Isa, x: &[f32]) -> f32 {
    sum(isa, x) / x.len() as f32
}

/// Softmax over one row.
pub fn softmax(isa: Isa, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "softmax: lengths differ");
    dispatch::softmax(isa, x, y)
}

/// Log-softmax over one row.
pub fn log_softmax(isa: Isa, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "log_softmax: lengths differ");
    dispatch::log_softmax(isa, x, y)
}

/// `(mean, 1 / sqrt(var + eps))` of one row.
pub fn moments(isa: Isa, x: &[f32], eps: f32) -> (f32, f32) {
    dispatch::moments(isa, x, eps)
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
    let (mean, rstd) = moments(isa, x, eps);
    dispatch::normalize_row(isa, x, mean, rstd, scale, bias, y)
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
    dispatch::normalize_channel(isa, x, mean, rstd, scale, bias, y)
}
