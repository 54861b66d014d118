//! Rotary position embeddings (RoPE): the angles, their cosines and sines, and the
//! rotation, defined here so that the engine, a referee and any client compute the same
//! bits.
//!
//! **The definition.** For head size `d` and base `theta`, pair `i < d/2` turns at
//! `inv_freq[i] = 1 / pow(theta, (2i) / d)` (f32: [`math::pow`](crate::math::pow), one
//! division). At position `p` its angle is the f32 product `p * inv_freq[i]` (one
//! rounding). Its cosine and sine are computed in binary64 from that f32 value with
//! [`cos_sin`] (Cody-Waite reduction by π/2 in three parts, Taylor polynomials to
//! degree 17/18, only `+`, `-`, `*` and `floor`, each exactly rounded) and rounded once to
//! f32. The rotation is on halves (Hugging Face's `rotate_half`): for `j < d/2`,
//! `y[j] = x[j]·cos − x[j+d/2]·sin` and `y[j+d/2] = x[j+d/2]·cos + x[j]·sin`, each product
//! rounded, then the sum rounded (no FMA), a NaN written as the canonical NaN.

use crate::math;
use alloc::vec::Vec;

/// `inv_freq[i] = 1 / theta^(2i/d)` for `i < d/2`.
pub fn inv_freq(head_dim: usize, theta: f32) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| 1.0 / math::pow(theta, (2 * i) as f32 / head_dim as f32))
        .collect()
}

/// `(cos, sin)` of angle `x` (finite, `0 <= x <= 2^20`; larger angles are clamped
/// there, non-finite or negative ones taken as 0), rounded once to f32 from a
/// binary64 computation whose error is far below f32's half ulp in all but the rarest
/// near-ties; the same bits on every IEEE-754 machine.
pub fn cos_sin(x: f32) -> (f32, f32) {
    const TWO_OVER_PI: f64 = core::f64::consts::FRAC_2_PI;
    // π/2 in three parts of 33 bits each (fdlibm's `pio2_1`, `pio2_2`, `pio2_3`), so
    // that `k * part` is exact for k < 2^20.
    const PIO2_1: f64 = f64::from_bits(0x3FF9_21FB_5440_0000);
    const PIO2_2: f64 = f64::from_bits(0x3DD0_B461_1A60_0000);
    const PIO2_3: f64 = f64::from_bits(0x3BA3_198A_2E00_0000);
    let x = if x.is_finite() && x > 0.0 {
        (x as f64).min((1u64 << 20) as f64)
    } else {
        0.0
    };
    let k = floor(x * TWO_OVER_PI + 0.5);
    let r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
    let (c, s) = (cos_poly(r), sin_poly(r));
    let (c, s) = match (k as u64) & 3 {
        0 => (c, s),
        1 => (-s, c),
        2 => (-c, -s),
        _ => (s, -c),
    };
    (c as f32, s as f32)
}

/// `floor` of a non-negative binary64 value below 2^52, by truncation (exact).
fn floor(v: f64) -> f64 {
    (v as u64) as f64
}

/// `sin(r)` for `|r| <= π/4 + ε`: Taylor to degree 17, Horner in `r²`.
fn sin_poly(r: f64) -> f64 {
    let r2 = r * r;
    let mut p = 1.0 / 355_687_428_096_000.0; // 1/17!
    for c in [
        -1.0 / 1_307_674_368_000.0, // 1/15!
        1.0 / 6_227_020_800.0,      // 1/13!
        -1.0 / 39_916_800.0,        // 1/11!
        1.0 / 362_880.0,            // 1/9!
        -1.0 / 5_040.0,             // 1/7!
        1.0 / 120.0,                // 1/5!
        -1.0 / 6.0,                 // 1/3!
    ] {
        p = p * r2 + c;
    }
    r + r * r2 * p
}

/// `cos(r)` for `|r| <= π/4 + ε`: Taylor to degree 18, Horner in `r²`.
fn cos_poly(r: f64) -> f64 {
    let r2 = r * r;
    let mut p = 1.0 / 6_402_373_705_728_000.0; // 1/18!
    for c in [
        -1.0 / 20_922_789_888_000.0, // 1/16!
        1.0 / 87_178_291_200.0,      // 1/14!
        -1.0 / 479_001_600.0,        // 1/12!
        1.0 / 3_628_800.0,           // 1/10!
        -1.0 / 40_320.0,             // 1/8!
        1.0 / 720.0,                 // 1/6!
        -1.0 / 24.0,                 // 1/4!
        0.5,                         // 1/2!, subtracted below
    ] {
        p = p * r2 + c;
    }
    // p ends as 1/2 - r²/24 + …: cos r = 1 - r² p.
    1.0 - r2 * p
}

/// The cosines and sines of `positions` positions: `[p][i]` row-major, `d/2` per row.
pub fn tables(inv_freq: &[f32], positions: usize) -> (Vec<f32>, Vec<f32>) {
    let mut cos = Vec::with_capacity(positions * inv_freq.len());
    let mut sin = Vec::with_capacity(positions * inv_freq.len());
    for p in 0..positions {
        for &f in inv_freq {
            let (c, s) = cos_sin(p as f32 * f);
            cos.push(c);
            sin.push(s);
        }
    }
    (cos, sin)
}

/// Rotates one head vector `x` (length `d`) in place by the angles whose cosines and
/// sines are `cos`, `sin` (length `d/2`).
pub fn rotate(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = x.len() / 2;
    let (lo, hi) = x.split_at_mut(half);
    for j in 0..half.min(cos.len()).min(sin.len()) {
        let (a, b) = (lo[j], hi[j]);
        lo[j] = canonical(a * cos[j] - b * sin[j]);
        hi[j] = canonical(b * cos[j] + a * sin[j]);
    }
}

/// The canonical NaN for any NaN (CPUs and wasm engines differ in the NaN they make).
fn canonical(v: f32) -> f32 {
    if v.is_nan() {
        math::CANONICAL_NAN
    } else {
        v
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cos_sin_match_binary64_libm_to_an_ulp() {
        let mut worst = 0f64;
        for i in 0..200_000u32 {
            let x = i as f32 * 0.0173 + (i % 7) as f32 * 1e-3;
            let (c, s) = cos_sin(x);
            let (ce, se) = ((x as f64).cos(), (x as f64).sin());
            let ulp = |v: f64| (v.abs() as f32).max(f32::MIN_POSITIVE) as f64 * f32::EPSILON as f64;
            worst = worst
                .max((c as f64 - ce).abs() / ulp(ce).max(1e-9))
                .max((s as f64 - se).abs() / ulp(se).max(1e-9));
        }
        assert!(worst <= 1.0, "worst error {worst} ulp");
    }

    #[test]
    fn reduction_quadrants_and_zero() {
        assert_eq!(cos_sin(0.0), (1.0, 0.0));
        let (c, s) = cos_sin(core::f32::consts::FRAC_PI_2);
        assert!(c.abs() < 1e-7 && (s - 1.0).abs() < 1e-7);
        let (c, s) = cos_sin(core::f32::consts::PI);
        assert!((c + 1.0).abs() < 1e-7 && s.abs() < 1e-6);
        // Non-finite and negative angles are defined (as angle 0), never a panic.
        assert_eq!(cos_sin(f32::NAN), (1.0, 0.0));
        assert_eq!(cos_sin(-1.0), (1.0, 0.0));
    }

    #[test]
    fn rotation_is_on_halves() {
        let mut x = [1.0, 2.0, 3.0, 4.0];
        rotate(&mut x, &[0.0, 1.0], &[1.0, 0.0]);
        // pair 0 turned by 90°: (1, 3) -> (-3, 1); pair 1 unturned.
        assert_eq!(x, [-3.0, 2.0, 1.0, 4.0]);
        // inf · 0 - … is NaN: written canonically.
        let mut y = [f32::INFINITY, 1.0];
        rotate(&mut y, &[0.0], &[1.0]);
        assert_eq!(y[0].to_bits(), math::CANONICAL_NAN.to_bits());
    }
}
