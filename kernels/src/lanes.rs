//! [`Lanes`]: the few IEEE-754 operations every kernel is written in, over one value
//! ([`Scalar`]) or a SIMD register of values (`x86.rs`, `neon.rs`).
//!
//! Each kernel is written once, generically over `Lanes`, and instantiated per ISA; every
//! operation here is exactly defined lane by lane (add, sub, mul, div and sqrt rounded
//! to nearest-even; [`Lanes::fma`] rounded once; compares and selects; bit operations),
//! so every instantiation computes the same bits. Operations whose result differs
//! between ISAs (min/max with NaN, reciprocal estimates, float-to-int conversion under
//! the rounding mode) are deliberately absent: kernels use compare + select.
//!
//! `unsafe` here: loads and stores through raw pointers (the kernels' hot loops), and the
//! targets' square-root instructions.
#![allow(unsafe_code)]

/// A vector of `N` f32 lanes and the exactly defined operations on it.
pub trait Lanes: Copy {
    /// Lanes per value.
    const N: usize;
    /// A per-lane truth value, from the compares.
    type Mask: Copy;

    fn splat(x: f32) -> Self;
    /// Reads `N` values from `p`.
    ///
    /// # Safety
    /// `p` must be valid for reading `N` f32.
    unsafe fn load(p: *const f32) -> Self;
    /// Writes `N` values to `p`.
    ///
    /// # Safety
    /// `p` must be valid for writing `N` f32.
    unsafe fn store(self, p: *mut f32);

    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn sqrt(self) -> Self;
    /// `a * b + c`, rounded once.
    fn fma(a: Self, b: Self, c: Self) -> Self;

    /// `self < o` (false where either is NaN).
    fn lt(self, o: Self) -> Self::Mask;
    /// `self <= o` (false where either is NaN).
    fn le(self, o: Self) -> Self::Mask;
    /// Lanes holding NaN.
    fn is_nan(self) -> Self::Mask;
    /// `m ? a : b` per lane.
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;
    fn mask_or(a: Self::Mask, b: Self::Mask) -> Self::Mask;

    /// Bitwise and of each lane's bits with `bits`.
    fn and_bits(self, bits: u32) -> Self;
    /// Bitwise or of each lane's bits with `bits`.
    fn or_bits(self, bits: u32) -> Self;
    /// Bitwise xor of each lane's bits with the other value's.
    fn xor(self, o: Self) -> Self;
    /// Each lane's bits plus `k` (wrapping, as u32).
    fn add_bits(self, k: u32) -> Self;
    /// Each lane's bits shifted left by 23 (an integer in the significand's low bits
    /// becomes an exponent).
    fn shl23(self) -> Self;
    /// Each lane's bits shifted right by 23, zero-filling (the biased exponent).
    fn shr23(self) -> Self;

    /// A hint that the cache line at `p` will be read soon (no effect on any value; a
    /// no-op where the ISA has none).
    #[inline(always)]
    fn prefetch(_p: *const f32) {}
}

/// One f32: the scalar reference every other implementation must match bit for bit.
/// Its [`Lanes::fma`] is the software [`crate::fma::fma`], so it computes the same bits
/// on every CPU and in wasm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scalar(pub f32);

impl Lanes for Scalar {
    const N: usize = 1;
    type Mask = bool;

    #[inline(always)]
    fn splat(x: f32) -> Self {
        Scalar(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller promises `p` is readable.
        Scalar(unsafe { *p })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller promises `p` is writable.
        unsafe { *p = self.0 }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Scalar(self.0 + o.0)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Scalar(self.0 - o.0)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Scalar(self.0 * o.0)
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Scalar(self.0 / o.0)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        Scalar(sqrt(self.0))
    }
    #[inline(always)]
    fn fma(a: Self, b: Self, c: Self) -> Self {
        Scalar(crate::fma::fma(a.0, b.0, c.0))
    }
    #[inline(always)]
    fn lt(self, o: Self) -> bool {
        self.0 < o.0
    }
    #[inline(always)]
    fn le(self, o: Self) -> bool {
        self.0 <= o.0
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        self.0.is_nan()
    }
    #[inline(always)]
    fn select(m: bool, a: Self, b: Self) -> Self {
        if m {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn mask_or(a: bool, b: bool) -> bool {
        a | b
    }
    #[inline(always)]
    fn and_bits(self, bits: u32) -> Self {
        Scalar(f32::from_bits(self.0.to_bits() & bits))
    }
    #[inline(always)]
    fn or_bits(self, bits: u32) -> Self {
        Scalar(f32::from_bits(self.0.to_bits() | bits))
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        Scalar(f32::from_bits(self.0.to_bits() ^ o.0.to_bits()))
    }
    #[inline(always)]
    fn add_bits(self, k: u32) -> Self {
        Scalar(f32::from_bits(self.0.to_bits().wrapping_add(k)))
    }
    #[inline(always)]
    fn shl23(self) -> Self {
        Scalar(f32::from_bits(self.0.to_bits() << 23))
    }
    #[inline(always)]
    fn shr23(self) -> Self {
        Scalar(f32::from_bits(self.0.to_bits() >> 23))
    }
}

/// IEEE-754 square root (correctly rounded on every target: SSE `sqrtss`, NEON `fsqrt`,
/// wasm `f32.sqrt`). `core` has no `f32::sqrt` without `std`, so the targets' own
/// instructions are named here.
#[inline(always)]
pub fn sqrt(x: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_cvtss_f32, _mm_set_ss, _mm_sqrt_ss};
        // SAFETY: SSE is part of the x86_64 baseline.
        unsafe { _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x))) }
    }
    #[cfg(target_arch = "aarch64")]
    {
        use core::arch::aarch64::{vdup_n_f32, vget_lane_f32, vsqrt_f32};
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { vget_lane_f32::<0>(vsqrt_f32(vdup_n_f32(x))) }
    }
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::f32_sqrt(x)
    }
}

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "wasm32"
)))]
compile_error!("inferchain-kernels supports x86_64, aarch64 and wasm32");
