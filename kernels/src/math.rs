//! The kernel crate's own transcendental functions: exp, log, tanh, erf, sigmoid, GELU,
//! SiLU and pow, each a fixed sequence of [`Lanes`] operations (FMA-evaluated
//! polynomials, exactly rounded arithmetic, compare + select, bit operations).
//!
//! They are not correctly rounded (within a few ulp: the tests state the bounds), but they
//! are *defined*: the same inputs give the same bits on every CPU and in wasm, unlike the
//! platform's libm (glibc picks FMA or non-FMA variants at run time; other libms differ
//! outright). The polynomial coefficients come from `kernels/tools/fit_math.py`.
//!
//! NaN inputs give NaN; which NaN is not specified here: the element-wise kernels
//! ([`crate::elementwise`]) replace every NaN they produce by [`CANONICAL_NAN`].

use crate::lanes::{Lanes, Scalar};

/// The one NaN every kernel writes (a positive quiet NaN): NaN payloads and signs differ
/// between x86, ARM and wasm, so none is passed through.
pub const CANONICAL_NAN: f32 = f32::from_bits(0x7fc0_0000);

const LOG2E: f32 = core::f32::consts::LOG2_E;
/// 1.5 * 2^23: adding it rounds a float to an integer (ties to even) held in the low bits.
const SHIFT: f32 = 12_582_912.0;
/// ln 2 rounded to f32; `LN2_LO` is the rest.
const LN2_HI: f32 = core::f32::consts::LN_2;
const LN2_LO: f32 = -1.904_654_2e-9;
const SQRT2: f32 = core::f32::consts::SQRT_2;
pub(crate) const FRAC_1_SQRT_2: f32 = 0.707_106_77;
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

// From kernels/tools/fit_math.py.
// exp(r) = 1 + r + r^2 * EXP_POLY(r), |r| <= ln2/2.
const EXP_POLY: [f32; 5] = [
    0.499_999_94,
    0.166_665_21,
    0.041_668_39,
    0.008_368_71,
    0.001_381_461,
];
// log(1 + f) = f + f^2 * LOG_POLY(f), sqrt(1/2) - 1 <= f < sqrt(2) - 1.
const LOG_POLY: [f32; 9] = [
    -0.499_999_88,
    0.333_333_25,
    -0.250_015_85,
    0.200_019_85,
    -0.166_090_56,
    0.141_816_35,
    -0.132_429_81,
    0.129_055_02,
    -0.076_230_61,
];
// tanh(x) = x + x^3 * TANH_POLY(x^2), |x| < 0.625.
const TANH_POLY: [f32; 6] = [
    -0.333_333_3,
    0.133_332_06,
    -0.053_946_763,
    0.021_700_704,
    -0.008_177_401,
    0.002_142_963_7,
];
// erf(x) = x + x * ERF_SMALL(x^2), |x| < 1.
const ERF_SMALL: [f32; 8] = [
    0.128_379_17,
    -0.376_126_38,
    0.112_837_82,
    -0.026_865_4,
    0.005_220_946,
    -0.000_848_283_8,
    0.000_112_570_09,
    -9.641_678e-6,
];
// erfc(a) = exp(-a^2) * ERFC_MID(a - 2), 1 <= a <= 4.
const ERFC_MID: [f32; 13] = [
    0.255_395_68,
    -0.106_796_466,
    0.041_802_697,
    -0.015_460_587,
    0.005_441_087,
    -0.001_832_044_1,
    0.000_591_764_17,
    -0.000_183_758_54,
    5.605_868e-5,
    -1.733_808_9e-5,
    4.976_602_7e-6,
    -1.020_215_1e-6,
    9.918_165e-8,
];

/// `c[0] + x * (c[1] + x * (...))`, each step one FMA.
#[inline(always)]
fn horner<V: Lanes>(x: V, c: &[f32]) -> V {
    let mut p = V::splat(c[c.len() - 1]);
    for &ci in c[..c.len() - 1].iter().rev() {
        p = V::fma(p, x, V::splat(ci));
    }
    p
}

#[inline(always)]
fn abs<V: Lanes>(x: V) -> V {
    x.and_bits(0x7fff_ffff)
}

#[inline(always)]
fn neg<V: Lanes>(x: V) -> V {
    x.xor(V::splat(-0.0))
}

/// `2^k` for an integer-valued `k` in [-126, 127] held as `k + SHIFT`.
#[inline(always)]
fn pow2_shifted<V: Lanes>(t: V) -> V {
    t.shl23().add_bits(0x3f80_0000)
}

/// e^x. Overflows to +inf above ~88.72, underflows through the subnormals to 0.
#[inline(always)]
pub fn exp<V: Lanes>(x: V) -> V {
    let nan = x.is_nan();
    let xc = V::select(x.lt(V::splat(-104.0)), V::splat(-104.0), x);
    let xc = V::select(V::splat(89.0).lt(xc), V::splat(89.0), xc);
    // x = n ln2 + r, n = round(x / ln2).
    let t = V::fma(xc, V::splat(LOG2E), V::splat(SHIFT));
    let n = t.sub(V::splat(SHIFT));
    let r = V::fma(n, V::splat(-LN2_HI), xc);
    let r = V::fma(n, V::splat(-LN2_LO), r);
    let p = V::fma(r.mul(r), horner(r, &EXP_POLY), r).add(V::splat(1.0));
    // 2^n as 2^n1 * 2^n2 (n in [-150, 128]; each factor normal): the first product is
    // exact, the second rounds once, into the subnormals if it must.
    let t1 = V::fma(n, V::splat(0.5), V::splat(SHIFT));
    let n1 = t1.sub(V::splat(SHIFT));
    let t2 = n.sub(n1).add(V::splat(SHIFT));
    let y = p.mul(pow2_shifted(t1)).mul(pow2_shifted(t2));
    V::select(nan, x, y)
}

/// The natural logarithm: -inf at ±0, NaN below zero, +inf at +inf.
#[inline(always)]
pub fn log<V: Lanes>(x: V) -> V {
    // Subnormals are scaled into the normal range first (2^23 is exact).
    let sub = x.lt(V::splat(f32::MIN_POSITIVE));
    let xs = V::select(sub, x.mul(V::splat(8_388_608.0)), x);
    let bias = V::select(sub, V::splat(150.0), V::splat(127.0));
    // The biased exponent as a float: its 8 bits (sign cleared) in a float's significand.
    let e = abs(xs)
        .shr23()
        .or_bits(0x4b00_0000)
        .sub(V::splat(8_388_608.0));
    let m = xs.and_bits(0x007f_ffff).or_bits(0x3f80_0000);
    let big = V::splat(SQRT2).lt(m);
    let m = V::select(big, m.mul(V::splat(0.5)), m);
    let e = V::select(big, e.add(V::splat(1.0)), e);
    let k = e.sub(bias);
    let f = m.sub(V::splat(1.0));
    let t = f.mul(f).mul(horner(f, &LOG_POLY));
    let t = V::fma(k, V::splat(LN2_LO), t);
    let y = V::fma(k, V::splat(LN2_HI), t.add(f));
    let y = V::select(x.le(V::splat(0.0)), V::splat(f32::NEG_INFINITY), y);
    let y = V::select(x.lt(V::splat(0.0)), V::splat(CANONICAL_NAN), y);
    let y = V::select(V::splat(f32::INFINITY).le(x), x, y);
    V::select(x.is_nan(), x, y)
}

/// The hyperbolic tangent: an odd polynomial below 0.625, `1 - 2 / (e^{2|x|} + 1)` above.
#[inline(always)]
pub fn tanh<V: Lanes>(x: V) -> V {
    let a = abs(x);
    let sign = x.and_bits(0x8000_0000);
    let a2 = a.mul(a);
    let small = V::fma(a.mul(a2), horner(a2, &TANH_POLY), a);
    let e = exp(a.add(a));
    let large = V::splat(1.0).sub(V::splat(2.0).div(e.add(V::splat(1.0))));
    let y = V::select(a.lt(V::splat(0.625)), small, large);
    V::select(x.is_nan(), x, y.xor(sign))
}

/// `erfc(a) = e^{-a^2} q(a - 2)` for `a >= 1` (the polynomial is fitted up to 4 and held at
/// its value there beyond, where the result is far below any ulp that matters).
#[inline(always)]
fn erfc_large<V: Lanes>(a: V) -> V {
    let am = V::select(a.lt(V::splat(4.0)), a, V::splat(4.0));
    exp(neg(a.mul(a))).mul(horner(am.sub(V::splat(2.0)), &ERFC_MID))
}

/// The error function: `x + x q(x^2)` below 1, `1 - erfc(|x|)` above, with the sign of x.
#[inline(always)]
pub fn erf<V: Lanes>(x: V) -> V {
    let a = abs(x);
    let sign = x.and_bits(0x8000_0000);
    let small = V::fma(a, horner(a.mul(a), &ERF_SMALL), a);
    let large = V::splat(1.0).sub(erfc_large(a));
    let y = V::select(a.lt(V::splat(1.0)), small, large);
    V::select(x.is_nan(), x, y.xor(sign))
}

/// `1 / (1 + e^{-x})`.
#[inline(always)]
pub fn sigmoid<V: Lanes>(x: V) -> V {
    V::splat(1.0).div(V::splat(1.0).add(exp(neg(x))))
}

/// SiLU (swish): `x / (1 + e^{-x})`.
#[inline(always)]
pub fn silu<V: Lanes>(x: V) -> V {
    x.div(V::splat(1.0).add(exp(neg(x))))
}

/// GELU as ONNX `Gelu` and BERT define it, `x/2 (1 + erf(x / sqrt 2))`: with
/// `h = x / 2` and `u = x / sqrt 2`, `h + h erf(u)`, or `h erfc(-u)` where `u <= -1` (no
/// cancellation in the left tail).
#[inline(always)]
pub fn gelu<V: Lanes>(x: V) -> V {
    let h = x.mul(V::splat(0.5));
    let u = x.mul(V::splat(FRAC_1_SQRT_2));
    let right = V::fma(h, erf(u), h);
    let left = h.mul(erfc_large(abs(u)));
    V::select(u.le(V::splat(-1.0)), left, right)
}

/// GELU's tanh form (ONNX `Gelu` with `approximate = "tanh"`):
/// `h + h tanh(sqrt(2/pi) (x + 0.044715 x^3))`.
#[inline(always)]
pub fn gelu_tanh<V: Lanes>(x: V) -> V {
    let h = x.mul(V::splat(0.5));
    let inner = V::fma(x.mul(x).mul(x), V::splat(0.044_715), x).mul(V::splat(SQRT_2_OVER_PI));
    V::fma(h, tanh(inner), h)
}

/// `x^y` (scalar only: ONNX `Pow` broadcasts two tensors and is rare on hot paths).
///
/// Exact cases first (`y` = 0, 1, 2, 0.5 (sqrt), -1 (reciprocal), and small integers by
/// repeated multiplication in a fixed order); otherwise `e^{y log|x|}`, negative for a
/// negative `x` and an odd integer `y`, NaN for a negative `x` and a non-integer `y`.
pub fn pow(x: f32, y: f32) -> f32 {
    if y == 0.0 {
        return 1.0;
    }
    if x.is_nan() || y.is_nan() {
        return CANONICAL_NAN;
    }
    if y == 1.0 {
        return x;
    }
    if y == 2.0 {
        return x * x;
    }
    if y == 0.5 {
        return crate::lanes::sqrt(x);
    }
    if y == -1.0 {
        return 1.0 / x;
    }
    let integer = y.abs() >= 8_388_608.0 || (y.abs() + SHIFT) - SHIFT == y.abs();
    if integer && y.abs() <= 64.0 {
        // Square-and-multiply over the bits of |y|, low to high.
        let mut k = y.abs() as u32;
        let (mut base, mut acc) = (x, 1.0f32);
        while k > 0 {
            if k & 1 == 1 {
                acc *= base;
            }
            base *= base;
            k >>= 1;
        }
        return if y < 0.0 { 1.0 / acc } else { acc };
    }
    if x < 0.0 && !integer {
        return CANONICAL_NAN;
    }
    let odd = integer && y.abs() < 16_777_216.0 && (y.abs() as u32) & 1 == 1;
    let magnitude = exp(Scalar(y * log(Scalar(x.abs())).0)).0;
    if x.is_sign_negative() && odd {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f64) -> f64 {
        let b32 = b as f32;
        if a == b32 {
            return 0.0;
        }
        let ulp = f64::from(f32::from_bits(b32.abs().to_bits() + 1)) - f64::from(b32.abs());
        (f64::from(a) - b).abs() / ulp
    }

    /// Max ulp error of `f` against the binary64 reference over a sweep of `[lo, hi]`.
    fn sweep(f: impl Fn(f32) -> f32, reference: impl Fn(f64) -> f64, lo: f32, hi: f32) -> f64 {
        let mut worst = 0f64;
        let steps = 200_000;
        for i in 0..=steps {
            let x = lo + (hi - lo) * (i as f32 / steps as f32);
            let err = ulps(f(x), reference(f64::from(x)));
            if err > worst {
                worst = err;
            }
        }
        worst
    }

    fn s(f: fn(Scalar) -> Scalar) -> impl Fn(f32) -> f32 {
        move |x| f(Scalar(x)).0
    }

    extern crate std;

    #[test]
    fn exp_is_within_two_ulp() {
        let worst = sweep(s(exp), f64::exp, -87.0, 88.7);
        assert!(worst <= 2.0, "exp: {worst} ulp");
        assert!(sweep(s(exp), f64::exp, -1.0, 1.0) <= 2.0);
        assert_eq!(exp(Scalar(0.0)).0, 1.0);
        assert_eq!(exp(Scalar(f32::INFINITY)).0, f32::INFINITY);
        assert_eq!(exp(Scalar(f32::NEG_INFINITY)).0, 0.0);
        assert_eq!(exp(Scalar(89.0)).0, f32::INFINITY);
        assert_eq!(exp(Scalar(-200.0)).0, 0.0);
        assert!(exp(Scalar(f32::NAN)).0.is_nan());
        // Gradual underflow: e^-100 is subnormal, 3.72e-44.
        let sub = exp(Scalar(-100.0)).0;
        assert!(sub > 0.0 && sub < f32::MIN_POSITIVE);
        assert!((f64::from(sub) - (-100f64).exp()).abs() <= f64::from(f32::from_bits(1)));
    }

    #[test]
    fn log_is_within_two_ulp() {
        assert!(sweep(s(log), f64::ln, 1e-30, 1e-29) <= 2.0);
        assert!(sweep(s(log), f64::ln, 0.5, 2.0) <= 2.0);
        assert!(sweep(s(log), f64::ln, 1.0, 1e6) <= 2.0);
        assert!(sweep(s(log), f64::ln, 1e30, 3e38) <= 2.0);
        assert_eq!(log(Scalar(1.0)).0, 0.0);
        assert_eq!(log(Scalar(0.0)).0, f32::NEG_INFINITY);
        assert_eq!(log(Scalar(-0.0)).0, f32::NEG_INFINITY);
        assert!(log(Scalar(-1.0)).0.is_nan());
        assert_eq!(log(Scalar(f32::INFINITY)).0, f32::INFINITY);
        let tiny = f32::from_bits(1);
        assert!(ulps(log(Scalar(tiny)).0, f64::from(tiny).ln()) <= 2.0);
    }

    #[test]
    fn tanh_sigmoid_silu_are_within_four_ulp() {
        assert!(sweep(s(tanh), f64::tanh, -10.0, 10.0) <= 4.0);
        assert!(sweep(s(tanh), f64::tanh, -0.01, 0.01) <= 4.0);
        assert_eq!(tanh(Scalar(50.0)).0, 1.0);
        assert_eq!(tanh(Scalar(-50.0)).0, -1.0);
        assert_eq!(tanh(Scalar(-0.0)).0.to_bits(), (-0.0f32).to_bits());
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        assert!(sweep(s(sigmoid), sig, -80.0, 30.0) <= 4.0);
        assert!(sweep(s(silu), |x| x * sig(x), -80.0, 30.0) <= 4.0);
    }

    fn erf64(x: f64) -> f64 {
        // Maclaurin series below 3, continued fraction of erfc above: ~1e-15.
        if x.abs() < 3.0 {
            let (mut term, mut sum, mut n) = (x, x, 0f64);
            while term.abs() > 1e-17 * sum.abs() {
                n += 1.0;
                term *= -x * x / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / core::f64::consts::PI.sqrt()
        } else {
            let a = x.abs();
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (a + f);
            }
            let erfc = (-a * a).exp() / core::f64::consts::PI.sqrt() / (a + f);
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn erf_and_gelu_are_within_four_ulp() {
        assert!(sweep(s(erf), erf64, -6.0, 6.0) <= 4.0);
        assert!(sweep(s(erf), erf64, -1e-3, 1e-3) <= 4.0);
        assert_eq!(erf(Scalar(10.0)).0, 1.0);
        assert_eq!(erf(Scalar(-10.0)).0, -1.0);
        let gelu64 = |x: f64| 0.5 * x * (1.0 + erf64(x / 2f64.sqrt()));
        assert!(sweep(s(gelu), gelu64, -1.0, 8.0) <= 4.0);
        // Left of -1 the result shrinks fast; bound the relative error. It is dominated by
        // rounding x / sqrt 2 to f32 (erfc's relative slope is 2|u|), ~1e-6 at x = -3.
        // (Beyond x = -4 sqrt 2, where erfc's polynomial is held, |gelu| < 5e-8.)
        for i in 0..10_000 {
            let x = -1.0 - i as f32 * 0.00046;
            let (g, r) = (f64::from(gelu(Scalar(x)).0), gelu64(f64::from(x)));
            assert!((g - r).abs() <= 4e-6 * r.abs(), "gelu({x}) = {g}, want {r}");
        }
        for i in 0..1000 {
            let x = -10.0 + i as f32 * 0.01;
            assert!((f64::from(gelu(Scalar(x)).0) - gelu64(f64::from(x))).abs() < 1e-7);
        }
    }

    #[test]
    fn pow_cases() {
        assert_eq!(pow(3.0, 2.0), 9.0);
        assert_eq!(pow(-2.0, 3.0), -8.0);
        assert_eq!(pow(2.0, -2.0), 0.25);
        assert_eq!(pow(4.0, 0.5), 2.0);
        assert!(pow(-2.0, 0.5).is_nan());
        assert_eq!(pow(f32::NAN, 0.0), 1.0);
        assert_eq!(pow(0.0, -1.5), f32::INFINITY);
        assert_eq!(pow(0.0, 1.5), 0.0);
        let p = pow(1.7, 2.3);
        assert!((f64::from(p) - 1.7f64.powf(2.3)).abs() < 1e-5);
        assert!(pow(-1.5, 101.0) < 0.0);
        assert_eq!(pow(-1.5, 101.0), -pow(1.5, 101.0));
        assert_eq!(pow(-1.5, 100.0), pow(1.5, 100.0));
    }
}
