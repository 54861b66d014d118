//! [`Lanes`] over aarch64 NEON (`float32x4_t`, 4 lanes). NEON, its FMA (`fmla`) and its
//! IEEE division and square root are part of the aarch64 baseline.
#![allow(unsafe_code)]

use crate::lanes::Lanes;
use core::arch::aarch64::*;

/// 4 f32 lanes in one NEON register.
#[derive(Clone, Copy)]
pub struct Neon(float32x4_t);

// SAFETY (for every `unsafe` block below): NEON is always present on aarch64; pointer
// arguments are the caller's promise (see `Lanes`).
impl Lanes for Neon {
    const N: usize = 4;
    type Mask = uint32x4_t;

    #[inline(always)]
    fn splat(x: f32) -> Self {
        unsafe { Neon(vdupq_n_f32(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { Neon(vld1q_f32(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { vst1q_f32(p, self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        unsafe { Neon(vaddq_f32(self.0, o.0)) }
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        unsafe { Neon(vsubq_f32(self.0, o.0)) }
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        unsafe { Neon(vmulq_f32(self.0, o.0)) }
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        unsafe { Neon(vdivq_f32(self.0, o.0)) }
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        unsafe { Neon(vsqrtq_f32(self.0)) }
    }
    #[inline(always)]
    fn fma(a: Self, b: Self, c: Self) -> Self {
        // vfmaq_f32(c, a, b) = c + a * b, rounded once.
        unsafe { Neon(vfmaq_f32(c.0, a.0, b.0)) }
    }
    #[inline(always)]
    fn lt(self, o: Self) -> uint32x4_t {
        unsafe { vcltq_f32(self.0, o.0) }
    }
    #[inline(always)]
    fn le(self, o: Self) -> uint32x4_t {
        unsafe { vcleq_f32(self.0, o.0) }
    }
    #[inline(always)]
    fn is_nan(self) -> uint32x4_t {
        unsafe { vmvnq_u32(vceqq_f32(self.0, self.0)) }
    }
    #[inline(always)]
    fn select(m: uint32x4_t, a: Self, b: Self) -> Self {
        unsafe { Neon(vbslq_f32(m, a.0, b.0)) }
    }
    #[inline(always)]
    fn mask_or(a: uint32x4_t, b: uint32x4_t) -> uint32x4_t {
        unsafe { vorrq_u32(a, b) }
    }
    #[inline(always)]
    fn and_bits(self, bits: u32) -> Self {
        unsafe {
            Neon(vreinterpretq_f32_u32(vandq_u32(
                vreinterpretq_u32_f32(self.0),
                vdupq_n_u32(bits),
            )))
        }
    }
    #[inline(always)]
    fn or_bits(self, bits: u32) -> Self {
        unsafe {
            Neon(vreinterpretq_f32_u32(vorrq_u32(
                vreinterpretq_u32_f32(self.0),
                vdupq_n_u32(bits),
            )))
        }
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        unsafe {
            Neon(vreinterpretq_f32_u32(veorq_u32(
                vreinterpretq_u32_f32(self.0),
                vreinterpretq_u32_f32(o.0),
            )))
        }
    }
    #[inline(always)]
    fn add_bits(self, k: u32) -> Self {
        unsafe {
            Neon(vreinterpretq_f32_u32(vaddq_u32(
                vreinterpretq_u32_f32(self.0),
                vdupq_n_u32(k),
            )))
        }
    }
    #[inline(always)]
    fn shl23(self) -> Self {
        unsafe {
            Neon(vreinterpretq_f32_u32(vshlq_n_u32::<23>(
                vreinterpretq_u32_f32(self.0),
            )))
        }
    }
    #[inline(always)]
    fn shr23(self) -> Self {
        unsafe {
            Neon(vreinterpretq_f32_u32(vshrq_n_u32::<23>(
                vreinterpretq_u32_f32(self.0),
            )))
        }
    }
}
