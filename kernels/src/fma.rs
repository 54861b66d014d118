//! Fused multiply-add, correctly rounded, on every CPU.
//!
//! Every dot product of the kernel crate is a chain of `fma(a, b, acc)`: one rounding
//! per step. CPUs with FMA units compute it in one instruction; everywhere else
//! (pre-Haswell x86, wasm32, the runtime's referee) [`fma`] computes the same bits in
//! software. It is slow compared with the instruction, and only meant for verifying.

/// `a * b + c` rounded once, to nearest-even: the IEEE-754 `fusedMultiplyAdd` on
/// binary32, in software.
///
/// How: the product of two binary32 significands (24 bits each) is exact in binary64;
/// the binary64 sum `s = p + c` is rounded, but its error `e` is recovered exactly
/// (Knuth's TwoSum). Rounding `s` to odd (truncate, then set the last bit if anything was
/// lost) and then to binary32 gives the correctly rounded result, because binary64 has
/// more than `2 * 24 + 2` bits (Boldo and Melquiond, "When double rounding is odd").
#[inline]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    let p = f64::from(a) * f64::from(b);
    let cd = f64::from(c);
    let s = p + cd;
    if !s.is_finite() {
        // An infinite or NaN operand (the binary64 sum of finite binary32 values cannot
        // overflow): the sum is already the answer.
        return s as f32;
    }
    let bb = s - p;
    let err = (p - (s - bb)) + (cd - bb);
    if err == 0.0 {
        return s as f32;
    }
    // Round to odd: truncate toward zero, then force the last bit to one.
    let mut bits = s.to_bits();
    if (err < 0.0) != (s < 0.0) {
        // `s` was rounded away from zero: step back toward zero.
        bits -= 1;
    }
    f64::from_bits(bits | 1) as f32
}

#[cfg(test)]
mod tests {
    use super::fma;

    /// A small xorshift generator, so tests need no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 16) as u32
        }
        /// Any bit pattern, with the exponent drawn so that products and sums land in
        /// every interesting range: subnormal, cancellation, near overflow.
        fn float(&mut self) -> f32 {
            let exp = match self.next() % 8 {
                0 => 0,                      // subnormal or zero
                1 => 254 - self.next() % 4,  // near overflow
                2 => 1 + self.next() % 4,    // near underflow
                _ => 100 + self.next() % 56, // ordinary
            };
            f32::from_bits((self.next() & 0x807f_ffff) | (exp << 23))
        }
    }

    fn same(a: f32, b: f32) -> bool {
        (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
    }

    #[test]
    fn special_values() {
        let inf = f32::INFINITY;
        assert!(fma(0.0, inf, 1.0).is_nan());
        assert!(fma(inf, 1.0, -inf).is_nan());
        assert_eq!(fma(inf, 2.0, 1.0), inf);
        assert_eq!(fma(f32::MAX, 2.0, 0.0), inf);
        assert_eq!(fma(f32::MAX, 2.0, -f32::MAX), f32::MAX);
        assert!(fma(f32::NAN, 0.0, 1.0).is_nan());
        // Signed zeros follow IEEE: (+0 * -1) + -0 = -0, (+0 * -1) + +0 = +0.
        assert_eq!(fma(0.0, -1.0, -0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(fma(0.0, -1.0, 0.0).to_bits(), 0.0f32.to_bits());
        // The smallest subnormal, halved: a tie between 0 and 2^-149, to even (0).
        let tiny = f32::from_bits(1);
        assert_eq!(fma(tiny, 0.5, 0.0), 0.0);
        assert_eq!(fma(tiny, 0.75, 0.0), tiny);
    }

    /// A case where rounding the product first gives a different answer: the classic
    /// test that a multiply-add is fused.
    #[test]
    fn is_fused() {
        let a = 1.0 + f32::EPSILON;
        let b = 1.0 - f32::EPSILON;
        // a*b = 1 - eps^2 exactly; fused: 1 - eps^2 rounds to ... then - 1.
        assert_eq!(fma(a, b, -1.0), -(f32::EPSILON * f32::EPSILON));
        assert_eq!(a * b - 1.0, 0.0);
    }

    /// The software FMA against the CPU's FMA instruction (correctly rounded by IEEE-754)
    /// on a million random triples across every exponent range.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[test]
    fn matches_the_hardware_instruction() {
        extern crate std;
        if !std::is_x86_feature_detected!("fma") {
            return;
        }
        #[target_feature(enable = "fma")]
        fn hw(a: f32, b: f32, c: f32) -> f32 {
            use core::arch::x86_64::*;
            _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)))
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for i in 0..1_000_000 {
            let (a, b) = (rng.float(), rng.float());
            // Half of the time, c is close to -a*b: the cancellation cases.
            let c = if i % 2 == 0 {
                -(a * b) * (1.0 + (rng.next() % 16) as f32 * f32::EPSILON)
            } else {
                rng.float()
            };
            // SAFETY: the `fma` feature was detected above.
            #[allow(unsafe_code)]
            let want = unsafe { hw(a, b, c) };
            let got = fma(a, b, c);
            assert!(
                same(got, want),
                "fma({a:e}, {b:e}, {c:e}) = {got:e}, hardware {want:e}"
            );
        }
    }
}
