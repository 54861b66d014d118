//! Reductions and the operators built on them (softmax, normalizations), in one fixed
//! order that no CPU property changes.
//!
//! **The sum of `n` values** is defined with 16 partial sums: element `i` is added, in
//! index order, to partial `i % 16` (each starting at +0); the partials are then combined
//! as a fixed tree: `p[j] += p[j + 8]` for `j < 8`, then `p[j] += p[j + 4]`, then
//! `p[j] += p[j + 2]`, then `p[0] + p[1]`. AVX-512 holds the 16 partials in one
//! register, AVX2 in two, NEON in four, the scalar reference in an array: the same sums.
//!
//! A sum of squared deviations accumulates `fma(d, d, p[i % 16])` the same way.

use crate::{
    elementwise::canonical,
    lanes::{Lanes, Scalar},
    math::{self, CANONICAL_NAN},
};

/// The partials of a 16-lane reduction, as registers of `V`.
struct Partials<V: Lanes> {
    regs: [V; 16],
}

impl<V: Lanes> Partials<V> {
    const REGS: usize = 16 / V::N;

    #[inline(always)]
    fn new() -> Self {
        Partials {
            regs: [V::splat(0.0); 16],
        }
    }

    /// The 16 partials, with the tail `xs[i]` (for the elements after the last full
    /// group of 16, in index order) added to partial `i`, then combined by the tree.
    #[inline(always)]
    fn finish(self, tail: impl Fn(usize, f32) -> f32, tail_len: usize) -> f32 {
        let mut p = [0f32; 16];
        for r in 0..Self::REGS {
            // SAFETY: REGS * N = 16 values fit `p`.
            #[allow(unsafe_code)]
            unsafe {
                self.regs[r].store(p.as_mut_ptr().add(r * V::N))
            };
        }
        for (i, lane) in p.iter_mut().enumerate().take(tail_len) {
            *lane = tail(i, *lane);
        }
        tree(p)
    }
}

/// The fixed combination of 16 partials (a NaN result is the canonical NaN).
#[inline(always)]
fn tree(mut p: [f32; 16]) -> f32 {
    for half in [8, 4, 2] {
        for j in 0..half {
            p[j] += p[j + half];
        }
    }
    canonical(Scalar(p[0] + p[1])).0
}

/// The sum of `x` in the fixed order (module docs).
#[inline(always)]
pub fn sum<V: Lanes>(x: &[f32]) -> f32 {
    let mut acc = Partials::<V>::new();
    let groups = x.len() / 16;
    for g in 0..groups {
        for r in 0..Partials::<V>::REGS {
            // SAFETY: g * 16 + r * N + N <= groups * 16 <= len.
            #[allow(unsafe_code)]
            let v = unsafe { V::load(x.as_ptr().add(g * 16 + r * V::N)) };
            acc.regs[r] = acc.regs[r].add(v);
        }
    }
    let tail = &x[groups * 16..];
    acc.finish(|i, p| p + tail[i], tail.len())
}

/// `sum((x[i] - mean)^2)` in the fixed order, each step `fma(d, d, partial)`.
#[inline(always)]
pub fn sum_sq_dev<V: Lanes>(x: &[f32], mean: f32) -> f32 {
    let mut acc = Partials::<V>::new();
    let m = V::splat(mean);
    let groups = x.len() / 16;
    for g in 0..groups {
        for r in 0..Partials::<V>::REGS {
            // SAFETY: as in `sum`.
            #[allow(unsafe_code)]
            let d = unsafe { V::load(x.as_ptr().add(g * 16 + r * V::N)) }.sub(m);
            acc.regs[r] = V::fma(d, d, acc.regs[r]);
        }
    }
    let tail = &x[groups * 16..];
    acc.finish(
        |i, p| {
            let d = tail[i] - mean;
            crate::fma::fma(d, d, p)
        },
        tail.len(),
    )
}

/// A window maximum per element across `runs`: `out[j]` is `m = v > m ? v : m` over
/// `runs[0][j], runs[1][j], …` in that order from -inf, or the canonical NaN if any of
/// them is NaN: the bits `window::max` gives for those values (signed zeros included:
/// an equal later value never replaces an earlier one). Lanes run across `j`; a last,
/// partial register reads each run in place where it goes on for a register (the
/// extra lanes are dropped), else through a copy.
#[inline(always)]
pub fn window_max_runs<V: Lanes>(runs: &[&[f32]], out: &mut [f32]) {
    let p = out.len();
    assert!(
        runs.iter().all(|r| r.len() >= p),
        "window_max_runs: runs shorter than out"
    );
    // Four registers at a time: four independent chains of compare and select.
    const REGS: usize = 4;
    let none = V::splat(0.0).is_nan();
    let mut j = 0;
    while j + REGS * V::N <= p {
        let mut m = [V::splat(f32::NEG_INFINITY); REGS];
        let mut nan = [none; REGS];
        for run in runs {
            for r in 0..REGS {
                // SAFETY: j + REGS * N <= p <= run.len().
                #[allow(unsafe_code)]
                let v = unsafe { V::load(run.as_ptr().add(j + r * V::N)) };
                nan[r] = V::mask_or(nan[r], v.is_nan());
                m[r] = V::select(m[r].lt(v), v, m[r]);
            }
        }
        for r in 0..REGS {
            let y = V::select(nan[r], V::splat(CANONICAL_NAN), m[r]);
            // SAFETY: as above, for `out`.
            #[allow(unsafe_code)]
            unsafe {
                y.store(out.as_mut_ptr().add(j + r * V::N))
            };
        }
        j += REGS * V::N;
    }
    let mut buf = [0f32; 16];
    while j < p {
        let lanes = V::N.min(p - j);
        let mut m = V::splat(f32::NEG_INFINITY);
        let mut nan = none;
        for run in runs {
            // SAFETY: a full register of the run exists when run.len() >= j + N; else
            // `buf` has 16.
            #[allow(unsafe_code)]
            let v = if run.len() >= j + V::N {
                unsafe { V::load(run.as_ptr().add(j)) }
            } else {
                buf[..lanes].copy_from_slice(&run[j..j + lanes]);
                unsafe { V::load(buf.as_ptr()) }
            };
            nan = V::mask_or(nan, v.is_nan());
            m = V::select(m.lt(v), v, m);
        }
        let y = V::select(nan, V::splat(CANONICAL_NAN), m);
        // SAFETY: `buf` holds 16 >= N values.
        #[allow(unsafe_code)]
        unsafe {
            y.store(buf.as_mut_ptr())
        };
        out[j..j + lanes].copy_from_slice(&buf[..lanes]);
        j += lanes;
    }
}

/// The largest value of `x`; NaN if any is NaN; -inf for an empty slice. (Exact, so
/// its order does not matter; it is written lane-wise for speed.)
#[inline(always)]
pub fn max<V: Lanes>(x: &[f32]) -> f32 {
    let mut m = V::splat(f32::NEG_INFINITY);
    let mut nan = V::splat(0.0);
    let full = x.len() - x.len() % V::N;
    let mut i = 0;
    while i < full {
        // SAFETY: i + N <= full <= len.
        #[allow(unsafe_code)]
        let v = unsafe { V::load(x.as_ptr().add(i)) };
        m = V::select(m.lt(v), v, m);
        nan = V::select(v.is_nan(), V::splat(1.0), nan);
        i += V::N;
    }
    let mut lanes = [0f32; 16];
    let mut flags = [0f32; 16];
    // SAFETY: 16 >= N values.
    #[allow(unsafe_code)]
    unsafe {
        m.store(lanes.as_mut_ptr());
        nan.store(flags.as_mut_ptr());
    }
    let mut best = f32::NEG_INFINITY;
    for (&v, &f) in lanes[..V::N].iter().zip(&flags[..V::N]) {
        if f != 0.0 {
            return CANONICAL_NAN;
        }
        if best < v {
            best = v;
        }
    }
    for &v in &x[full..] {
        if v.is_nan() {
            return CANONICAL_NAN;
        }
        if best < v {
            best = v;
        }
    }
    best
}

/// `y = softmax(x)` over one row: `e = exp(x - max)`, `y = e / sum(e)`.
#[inline(always)]
pub fn softmax<V: Lanes>(x: &[f32], y: &mut [f32]) {
    let m = max::<V>(x);
    exp_shifted::<V>(x, m, y);
    let s = sum::<V>(y);
    div_all::<V>(y, s);
}

/// `y = log_softmax(x)` over one row: `(x - max) - log(sum(exp(x - max)))`.
#[inline(always)]
pub fn log_softmax<V: Lanes>(x: &[f32], y: &mut [f32]) {
    let m = max::<V>(x);
    exp_shifted::<V>(x, m, y);
    let s = sum::<V>(y);
    let log_s = canonical(math::log(Scalar(s))).0;
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = canonical(Scalar((xi - m) - log_s)).0;
    }
}

/// `y[i] = exp(x[i] - m)`.
#[inline(always)]
fn exp_shifted<V: Lanes>(x: &[f32], m: f32, y: &mut [f32]) {
    let mv = V::splat(m);
    let n = x.len();
    let full = n - n % V::N;
    let mut i = 0;
    while i < full {
        // SAFETY: i + N <= full <= n, both slices of length n.
        #[allow(unsafe_code)]
        unsafe {
            let v = V::load(x.as_ptr().add(i)).sub(mv);
            canonical(math::exp(v)).store(y.as_mut_ptr().add(i));
        }
        i += V::N;
    }
    for j in full..n {
        y[j] = canonical(math::exp(Scalar(x[j] - m))).0;
    }
}

/// `y[i] = y[i] / d`.
#[inline(always)]
fn div_all<V: Lanes>(y: &mut [f32], d: f32) {
    let dv = V::splat(d);
    let n = y.len();
    let full = n - n % V::N;
    let mut i = 0;
    while i < full {
        // SAFETY: i + N <= full <= n.
        #[allow(unsafe_code)]
        unsafe {
            let p = y.as_mut_ptr().add(i);
            canonical(V::load(p).div(dv)).store(p);
        }
        i += V::N;
    }
    for v in &mut y[full..] {
        *v = canonical(Scalar(*v / d)).0;
    }
}

/// Mean and `1 / sqrt(var + eps)` of one row: `mean = sum(x) / n`,
/// `var = sum((x - mean)^2) / n`.
#[inline(always)]
pub fn moments<V: Lanes>(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = sum::<V>(x) / n;
    let var = sum_sq_dev::<V>(x, mean) / n;
    (mean, 1.0 / crate::lanes::sqrt(var + eps))
}

/// One row of a normalization: `y[i] = fma((x[i] - mean) * rstd, scale[i], bias[i])`
/// (`LayerNormalization`; BERT's LayerNorm). `scale` and `bias` are per element; without
/// a bias, `y[i] = ((x[i] - mean) * rstd) * scale[i]`.
#[inline(always)]
pub fn normalize_row<V: Lanes>(
    x: &[f32],
    mean: f32,
    rstd: f32,
    scale: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    let n = x.len();
    assert!(scale.len() == n && y.len() == n && bias.is_none_or(|b| b.len() == n));
    let (mv, rv) = (V::splat(mean), V::splat(rstd));
    let full = n - n % V::N;
    let mut i = 0;
    while i < full {
        // SAFETY: i + N <= full <= n for every slice (lengths checked above).
        #[allow(unsafe_code)]
        unsafe {
            let t = V::load(x.as_ptr().add(i)).sub(mv).mul(rv);
            let s = V::load(scale.as_ptr().add(i));
            let r = match bias {
                Some(b) => V::fma(t, s, V::load(b.as_ptr().add(i))),
                None => t.mul(s),
            };
            canonical(r).store(y.as_mut_ptr().add(i));
        }
        i += V::N;
    }
    for j in full..n {
        let t = (x[j] - mean) * rstd;
        let r = match bias {
            Some(b) => crate::fma::fma(t, scale[j], b[j]),
            None => t * scale[j],
        };
        y[j] = canonical(Scalar(r)).0;
    }
}

/// One channel of a normalization with one scale and bias for the whole row
/// (`InstanceNormalization`, `BatchNormalization`): `y[i] = fma((x[i] - mean) * rstd,
/// scale, bias)`.
#[inline(always)]
pub fn normalize_channel<V: Lanes>(
    x: &[f32],
    mean: f32,
    rstd: f32,
    scale: f32,
    bias: f32,
    y: &mut [f32],
) {
    let n = x.len();
    assert_eq!(y.len(), n);
    let (mv, rv, sv, bv) = (
        V::splat(mean),
        V::splat(rstd),
        V::splat(scale),
        V::splat(bias),
    );
    let full = n - n % V::N;
    let mut i = 0;
    while i < full {
        // SAFETY: i + N <= full <= n for both slices.
        #[allow(unsafe_code)]
        unsafe {
            let t = V::load(x.as_ptr().add(i)).sub(mv).mul(rv);
            canonical(V::fma(t, sv, bv)).store(y.as_mut_ptr().add(i));
        }
        i += V::N;
    }
    for j in full..n {
        let t = (x[j] - mean) * rstd;
        y[j] = canonical(Scalar(crate::fma::fma(t, scale, bias))).0;
    }
}
