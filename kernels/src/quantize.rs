//! Linear quantization (ONNX `QuantizeLinear`, `DequantizeLinear`, `DynamicQuantizeLinear`
//! and the requantizing step of `QLinearMatMul` / `QLinearConv`), defined here so that
//! every CPU computes the same integers.
//!
//! * **Quantize** `q = saturate(round(x / scale) + zero_point)`: one exactly rounded
//!   division; rounding to the nearest integer, ties to even ([`round_ties_even`], by
//!   adding and subtracting 2²³, no platform call); saturation to the type's range. A NaN
//!   quotient gives the range's minimum, as onnxruntime's x86 kernels do; ±∞ saturate.
//! * **Dequantize** `x = f32(q - zero_point) * scale`: the difference is exact in `i64`,
//!   converted once (exact below 2²⁴), then one multiplication.
//! * **Requantize** an `i32` accumulator: `saturate(round(f32(acc) * multiplier) + zero_point)`
//!   with `multiplier = (a_scale * b_scale) / y_scale`, each rounded once, in that order
//!   ([`multiplier`]): the form onnxruntime uses.
//! * **Integer products** accumulate `(a - a_zero) * (b - b_zero)` in `i32` with wrapping
//!   addition (exact for any K below 2¹⁶ with 8-bit operands; beyond, the wrap onnxruntime's
//!   32-bit accumulators also make), in any order: integer addition is associative.
//! * **Dynamic parameters** (`DynamicQuantizeLinear`, uint8): `lo = min(0, min x)`,
//!   `hi = max(0, max x)` over the non-NaN values; `scale = (hi - lo) / 255`, or `1` when
//!   `hi == lo`; `zero_point = round(clamp(0 - lo / scale, 0, 255))`.

/// The integers a quantized type holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QRange {
    pub min: i32,
    pub max: i32,
}

impl QRange {
    pub const U8: QRange = QRange { min: 0, max: 255 };
    pub const I8: QRange = QRange {
        min: -128,
        max: 127,
    };
    pub const U16: QRange = QRange {
        min: 0,
        max: 65_535,
    };
    pub const I16: QRange = QRange {
        min: -32_768,
        max: 32_767,
    };

    /// Whether `v` is one of the type's values.
    pub fn contains(self, v: i64) -> bool {
        (i64::from(self.min)..=i64::from(self.max)).contains(&v)
    }
}

/// 2²³: from here on every f32 is an integer.
const TWO_POW_23: f32 = 8_388_608.0;

/// `v` rounded to the nearest integer, ties to even (NaN and ±∞ returned as they are).
pub fn round_ties_even(v: f32) -> f32 {
    let magnitude = f32::from_bits(v.to_bits() & 0x7fff_ffff);
    // NaN, ±∞ and everything at and above 2²³ (all integers) stay as they are.
    if magnitude.is_nan() || magnitude >= TWO_POW_23 {
        return v;
    }
    // In [2²³, 2²⁴) the spacing is 1: the addition rounds to an integer (ties to even),
    // the subtraction is exact.
    let rounded = (magnitude + TWO_POW_23) - TWO_POW_23;
    f32::from_bits(rounded.to_bits() | (v.to_bits() & 0x8000_0000))
}

/// `saturate(round(v) + zero_point)`; a NaN `v` gives `range.min`.
pub fn saturate_rounded(v: f32, zero_point: i32, range: QRange) -> i32 {
    if v.is_nan() {
        return range.min;
    }
    let r = round_ties_even(v);
    // Clamped while a float (|r| may exceed any integer type); the bounds are exact.
    let lo = (range.min - zero_point) as f32;
    let hi = (range.max - zero_point) as f32;
    let r = if r < lo {
        lo
    } else if r > hi {
        hi
    } else {
        r
    };
    (r as i32 + zero_point).clamp(range.min, range.max)
}

/// `QuantizeLinear` of one value.
pub fn quantize(x: f32, scale: f32, zero_point: i32, range: QRange) -> i32 {
    saturate_rounded(x / scale, zero_point, range)
}

/// `DequantizeLinear` of one value.
pub fn dequantize(q: i64, zero_point: i64, scale: f32) -> f32 {
    (q.wrapping_sub(zero_point)) as f32 * scale
}

/// The factor from an integer product to the output's scale: `(a_scale * b_scale) / y_scale`.
pub fn multiplier(a_scale: f32, b_scale: f32, y_scale: f32) -> f32 {
    (a_scale * b_scale) / y_scale
}

/// An accumulator requantized to the output type.
pub fn requantize(acc: i32, multiplier: f32, zero_point: i32, range: QRange) -> i32 {
    saturate_rounded(acc as f32 * multiplier, zero_point, range)
}

/// `DynamicQuantizeLinear`'s scale and zero point for `x` (uint8).
pub fn dynamic_parameters(x: &[f32]) -> (f32, i32) {
    let (mut lo, mut hi) = (0.0f32, 0.0f32);
    for &v in x {
        if v < lo {
            lo = v;
        }
        if v > hi {
            hi = v;
        }
    }
    let range = QRange::U8;
    let scale = if hi == lo {
        1.0
    } else {
        (hi - lo) / (range.max - range.min) as f32
    };
    let initial = range.min as f32 - lo / scale;
    // NaN (from a -∞ input: -∞ / ∞) clamps to the maximum, as onnxruntime's
    // `max(qmin, min(qmax, v))` gives.
    let clamped = if initial.is_nan() {
        range.max as f32
    } else if initial < range.min as f32 {
        range.min as f32
    } else if initial > range.max as f32 {
        range.max as f32
    } else {
        initial
    };
    (scale, saturate_rounded(clamped, 0, range))
}

/// `C[m][n] = Σ_k (A[m][k] - a_zero[m]) * (B[k][n] - b_zero[n])` with `A` [M, K] and `B`
/// [K, N] row-major, already offset: the callers pass `a - a_zero` and `b - b_zero`.
/// Wrapping `i32` sums (see the module's doc).
pub fn integer_matmul(a: &[i32], b: &[i32], m: usize, k: usize, n: usize, c: &mut [i32]) {
    assert!(
        a.len() == m * k && b.len() == k * n && c.len() == m * n,
        "integer_matmul: lengths differ"
    );
    for (row, out) in c.chunks_exact_mut(n.max(1)).enumerate().take(m) {
        out.fill(0);
        for (kk, &av) in a[row * k..][..k].iter().enumerate() {
            if av == 0 {
                continue;
            }
            for (o, &bv) in out.iter_mut().zip(&b[kk * n..][..n]) {
                *o = o.wrapping_add(av.wrapping_mul(bv));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_ties_to_even_at_every_magnitude() {
        for (v, r) in [
            (0.5, 0.0),
            (1.5, 2.0),
            (2.5, 2.0),
            (-2.5, -2.0),
            (-3.5, -4.0),
            (0.49999997, 0.0),
            (8_388_607.5, 8_388_608.0),
            (1e10, 1e10),
            (-0.4, -0.0),
        ] {
            assert_eq!(round_ties_even(v).to_bits(), f32::to_bits(r), "{v}");
        }
        assert!(round_ties_even(f32::NAN).is_nan());
        assert_eq!(round_ties_even(f32::INFINITY), f32::INFINITY);
        // Every half-integer in a range, against the definition.
        for i in -2000i32..2000 {
            let v = i as f32 + 0.5;
            let want = if i % 2 == 0 { i } else { i + 1 };
            assert_eq!(round_ties_even(v), want as f32, "{v}");
        }
    }

    #[test]
    fn quantizes_saturates_and_sends_nan_to_the_minimum() {
        // onnxruntime 1.23's outputs for these inputs (scale 1).
        let xs = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            2.5,
            3.5,
            -2.5,
            1e10,
            -0.5,
            0.5,
            1.5,
        ];
        let u8s: [i32; 10] = [0, 255, 0, 12, 14, 8, 255, 10, 10, 12];
        let i8s: [i32; 10] = [-128, 127, -128, -1, 1, -5, 127, -3, -3, -1];
        for ((x, u), i) in xs.iter().zip(u8s).zip(i8s) {
            assert_eq!(quantize(*x, 1.0, 10, QRange::U8), u, "{x} as uint8");
            assert_eq!(quantize(*x, 1.0, -3, QRange::I8), i, "{x} as int8");
        }
        // A zero scale divides to ±∞ or NaN.
        assert_eq!(quantize(2.5, 0.0, -3, QRange::I8), 127);
        assert_eq!(quantize(-0.5, 0.0, -3, QRange::I8), -128);
        assert_eq!(quantize(0.0, 0.0, -3, QRange::I8), -128);
    }

    #[test]
    fn dequantizes_and_requantizes() {
        assert_eq!(dequantize(200, 128, 0.5), 36.0);
        assert_eq!(dequantize(-128, 0, 0.25), -32.0);
        let m = multiplier(0.1, 0.2, 0.05);
        assert_eq!(m, (0.1f32 * 0.2f32) / 0.05f32);
        assert_eq!(requantize(1000, 0.01, 5, QRange::U8), 15);
        assert_eq!(requantize(-100_000, 0.01, 5, QRange::U8), 0);
        assert_eq!(requantize(i32::MAX, 1.0, 0, QRange::I8), 127);
    }

    #[test]
    fn dynamic_parameters_match_onnxruntime() {
        // onnxruntime 1.23's (scale, zero point) for these inputs.
        assert_eq!(dynamic_parameters(&[0.0; 4]), (1.0, 0));
        let (s, z) = dynamic_parameters(&[1.0, 2.0, 3.0, f32::NAN]);
        assert_eq!((s, z), (3.0 / 255.0, 0));
        assert_eq!(quantize(2.0, s, z, QRange::U8), 170);
        assert_eq!(quantize(f32::NAN, s, z, QRange::U8), 0);
        assert_eq!(dynamic_parameters(&[-3.0, -1.0]), (3.0 / 255.0, 255));
        let (s, z) = dynamic_parameters(&[-1.0, 0.5, 2.0, f32::INFINITY]);
        assert_eq!((s, z), (f32::INFINITY, 0));
        assert_eq!(quantize(2.0, s, z, QRange::U8), 0);
        assert_eq!(dynamic_parameters(&[f32::NEG_INFINITY, 1.0]).1, 255);
    }

    #[test]
    fn integer_products_offset_and_wrap() {
        let (a, b) = ([1, -2, 3, 4], [5, 6, -7, 8]);
        let mut c = [0; 4];
        integer_matmul(&a, &b, 2, 2, 2, &mut c);
        assert_eq!(c, [19, -10, -13, 50]);
        let mut c = [0; 1];
        integer_matmul(&[i32::MAX, 1], &[2, 2], 1, 2, 1, &mut c);
        assert_eq!(c, [i32::MAX.wrapping_mul(2).wrapping_add(2)]);
    }
}
