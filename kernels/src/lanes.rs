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
        // `f32.sqrt` is IEEE-exact in wasm, but `core` does not expose it on stable Rust.
        sqrt_soft(x)
    }
}

/// The correctly rounded square root, in software: Newton's method in binary64 for a
/// candidate, then exact tests against the midpoints to its neighbours (a binary32 midpoint
/// has 25 bits, so its square is exact in binary64; and a square root is never exactly a
/// midpoint, so there are no ties). For targets whose instruction `core` does not expose.
pub fn sqrt_soft(x: f32) -> f32 {
    if x.is_nan() || x == 0.0 || x == f32::INFINITY {
        return x;
    }
    if x < 0.0 {
        return crate::math::CANONICAL_NAN;
    }
    let xd = f64::from(x);
    // A first guess from halving the exponent, then Newton (quadratic convergence).
    let mut g = f64::from_bits((xd.to_bits() >> 1) + (1023u64 << 51));
    for _ in 0..6 {
        g = 0.5 * (g + xd / g);
    }
    let mut y = g as f32;
    let up = f32::from_bits(y.to_bits() + 1);
    let mid = (f64::from(y) + f64::from(up)) * 0.5;
    if xd > mid * mid {
        y = up;
    }
    if y.to_bits() > 0 {
        let down = f32::from_bits(y.to_bits() - 1);
        let mid = (f64::from(y) + f64::from(down)) * 0.5;
        if xd < mid * mid {
            y = down;
        }
    }
    y
}

#[cfg(test)]
mod tests {
    /// The software square root against the SSE instruction on every exponent, with
    /// random significands, subnormals and the largest values.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn sqrt_soft_is_correctly_rounded() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let check = |bits: u32| {
            let x = f32::from_bits(bits);
            let (got, want) = (super::sqrt_soft(x), super::sqrt(x));
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "sqrt({x:e}) = {got:e}, want {want:e}"
            );
        };
        for exp in 0..=255u32 {
            for _ in 0..4000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                check((exp << 23) | (state as u32 & 0x007f_ffff));
            }
        }
        for bits in [
            0,
            1,
            2,
            0x007f_ffff,
            0x0080_0000,
            0x7f7f_ffff,
            0x7f80_0000,
            0x3f80_0000,
        ] {
            check(bits);
            check(bits | 0x8000_0000);
        }
    }
}

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "wasm32"
)))]
compile_error!("inferchain-kernels supports x86_64, aarch64 and wasm32");
