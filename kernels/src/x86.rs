//! [`Lanes`] over AVX-512 (`__m512`, 16 lanes) and AVX2 + FMA (`__m256`, 8 lanes).
//!
//! Every method is `#[inline(always)]` and is only ever inlined into a function compiled
//! with the matching `#[target_feature]` (the per-ISA entry points in `dispatch.rs`),
//! which the dispatcher calls only after detecting the feature.
#![allow(unsafe_code)]

use crate::lanes::Lanes;
use core::arch::x86_64::*;

/// 16 f32 lanes in one AVX-512 register.
#[derive(Clone, Copy)]
pub struct Avx512(__m512);

/// 8 f32 lanes in one AVX register, with FMA.
#[derive(Clone, Copy)]
pub struct Avx2(__m256);

// SAFETY (for every `unsafe` block below): these methods run only inside functions
// compiled with `avx512f` (Avx512) or `avx2,fma` (Avx2) enabled, reached only after the
// features were detected; pointer arguments are the caller's promise (see `Lanes`).
impl Lanes for Avx512 {
    const N: usize = 16;
    type Mask = __mmask16;

    #[inline(always)]
    fn prefetch(p: *const f32) {
        // A hint only: any address is allowed, nothing is read.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) }
    }

    #[inline(always)]
    fn splat(x: f32) -> Self {
        unsafe { Avx512(_mm512_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { Avx512(_mm512_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_add_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_sub_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_mul_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_div_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        unsafe { Avx512(_mm512_sqrt_ps(self.0)) }
    }
    #[inline(always)]
    fn fma(a: Self, b: Self, c: Self) -> Self {
        unsafe { Avx512(_mm512_fmadd_ps(a.0, b.0, c.0)) }
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn le(self, o: Self) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_LE_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn is_nan(self) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[inline(always)]
    fn select(m: __mmask16, a: Self, b: Self) -> Self {
        unsafe { Avx512(_mm512_mask_blend_ps(m, b.0, a.0)) }
    }
    #[inline(always)]
    fn mask_or(a: __mmask16, b: __mmask16) -> __mmask16 {
        a | b
    }
    #[inline(always)]
    fn and_bits(self, bits: u32) -> Self {
        unsafe {
            Avx512(_mm512_castsi512_ps(_mm512_and_si512(
                _mm512_castps_si512(self.0),
                _mm512_set1_epi32(bits as i32),
            )))
        }
    }
    #[inline(always)]
    fn or_bits(self, bits: u32) -> Self {
        unsafe {
            Avx512(_mm512_castsi512_ps(_mm512_or_si512(
                _mm512_castps_si512(self.0),
                _mm512_set1_epi32(bits as i32),
            )))
        }
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        unsafe {
            Avx512(_mm512_castsi512_ps(_mm512_xor_si512(
                _mm512_castps_si512(self.0),
                _mm512_castps_si512(o.0),
            )))
        }
    }
    #[inline(always)]
    fn add_bits(self, k: u32) -> Self {
        unsafe {
            Avx512(_mm512_castsi512_ps(_mm512_add_epi32(
                _mm512_castps_si512(self.0),
                _mm512_set1_epi32(k as i32),
            )))
        }
    }
    #[inline(always)]
    fn shl23(self) -> Self {
        unsafe {
            Avx512(_mm512_castsi512_ps(_mm512_slli_epi32::<23>(
                _mm512_castps_si512(self.0),
            )))
        }
    }
    #[inline(always)]
    fn shr23(self) -> Self {
        unsafe {
            Avx512(_mm512_castsi512_ps(_mm512_srli_epi32::<23>(
                _mm512_castps_si512(self.0),
            )))
        }
    }
}

impl Lanes for Avx2 {
    const N: usize = 8;
    type Mask = __m256;

    #[inline(always)]
    fn prefetch(p: *const f32) {
        // A hint only: any address is allowed, nothing is read.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) }
    }

    #[inline(always)]
    fn splat(x: f32) -> Self {
        unsafe { Avx2(_mm256_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { Avx2(_mm256_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { _mm256_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_add_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_sub_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_mul_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_div_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        unsafe { Avx2(_mm256_sqrt_ps(self.0)) }
    }
    #[inline(always)]
    fn fma(a: Self, b: Self, c: Self) -> Self {
        unsafe { Avx2(_mm256_fmadd_ps(a.0, b.0, c.0)) }
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn le(self, o: Self) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_LE_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn is_nan(self) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[inline(always)]
    fn select(m: __m256, a: Self, b: Self) -> Self {
        unsafe { Avx2(_mm256_blendv_ps(b.0, a.0, m)) }
    }
    #[inline(always)]
    fn mask_or(a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_or_ps(a, b) }
    }
    #[inline(always)]
    fn and_bits(self, bits: u32) -> Self {
        unsafe {
            Avx2(_mm256_castsi256_ps(_mm256_and_si256(
                _mm256_castps_si256(self.0),
                _mm256_set1_epi32(bits as i32),
            )))
        }
    }
    #[inline(always)]
    fn or_bits(self, bits: u32) -> Self {
        unsafe {
            Avx2(_mm256_castsi256_ps(_mm256_or_si256(
                _mm256_castps_si256(self.0),
                _mm256_set1_epi32(bits as i32),
            )))
        }
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_xor_ps(self.0, o.0)) }
    }
    #[inline(always)]
    fn add_bits(self, k: u32) -> Self {
        unsafe {
            Avx2(_mm256_castsi256_ps(_mm256_add_epi32(
                _mm256_castps_si256(self.0),
                _mm256_set1_epi32(k as i32),
            )))
        }
    }
    #[inline(always)]
    fn shl23(self) -> Self {
        unsafe {
            Avx2(_mm256_castsi256_ps(_mm256_slli_epi32::<23>(
                _mm256_castps_si256(self.0),
            )))
        }
    }
    #[inline(always)]
    fn shr23(self) -> Self {
        unsafe {
            Avx2(_mm256_castsi256_ps(_mm256_srli_epi32::<23>(
                _mm256_castps_si256(self.0),
            )))
        }
    }
}
