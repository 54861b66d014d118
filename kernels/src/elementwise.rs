//! Element-wise operators: one [`Unary`] function applied to every element, lane by
//! lane. Lanes are independent, so the SIMD width cannot change a result: the tail of
//! a slice shorter than a register is computed in a zero-padded register.

use crate::{
    lanes::Lanes,
    math::{self, CANONICAL_NAN},
};

/// An element-wise function with its parameters; every definition is in [`crate::math`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    Exp,
    Log,
    Tanh,
    Sigmoid,
    Erf,
    /// `Gelu` with `approximate = "none"`.
    Gelu,
    /// `Gelu` with `approximate = "tanh"`.
    GeluTanh,
    Silu,
    /// `x < 0 ? alpha * (e^x - 1) : x` (`Elu`).
    Elu {
        alpha: f32,
    },
    /// `gamma * (x <= 0 ? alpha * (e^x - 1) : x)`, as `alpha * e^x - alpha` (`Selu`).
    Selu {
        alpha: f32,
        gamma: f32,
    },
    /// `log(e^x + 1)` (`Softplus`).
    Softplus,
    /// `max(0, min(1, alpha * x + beta))` (`HardSigmoid`), one FMA.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
}

/// Replaces any NaN by [`CANONICAL_NAN`].
#[inline(always)]
pub fn canonical<V: Lanes>(y: V) -> V {
    V::select(y.is_nan(), V::splat(CANONICAL_NAN), y)
}

/// `op` on one register of values.
#[inline(always)]
pub fn apply<V: Lanes>(op: Unary, x: V) -> V {
    let y = match op {
        Unary::Exp => math::exp(x),
        Unary::Log => math::log(x),
        Unary::Tanh => math::tanh(x),
        Unary::Sigmoid => math::sigmoid(x),
        Unary::Erf => math::erf(x),
        Unary::Gelu => math::gelu(x),
        Unary::GeluTanh => math::gelu_tanh(x),
        Unary::Silu => math::silu(x),
        Unary::Elu { alpha } => {
            let neg = V::fma(V::splat(alpha), math::exp(x), V::splat(-alpha));
            V::select(x.lt(V::splat(0.0)), neg, x)
        }
        Unary::Selu { alpha, gamma } => {
            let neg = V::fma(V::splat(alpha), math::exp(x), V::splat(-alpha));
            V::select(x.le(V::splat(0.0)), neg, x).mul(V::splat(gamma))
        }
        Unary::Softplus => math::log(math::exp(x).add(V::splat(1.0))),
        Unary::HardSigmoid { alpha, beta } => {
            let y = V::fma(V::splat(alpha), x, V::splat(beta));
            let y = V::select(y.lt(V::splat(0.0)), V::splat(0.0), y);
            V::select(V::splat(1.0).lt(y), V::splat(1.0), y)
        }
    };
    canonical(y)
}

/// `y[i] = op(x[i])`. `x` and `y` have the same length.
#[inline(always)]
pub fn unary<V: Lanes>(op: Unary, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "unary: input and output lengths differ");
    let n = x.len();
    let full = n - n % V::N;
    let mut i = 0;
    while i < full {
        // SAFETY: i + N <= full <= n, for both slices.
        #[allow(unsafe_code)]
        unsafe {
            apply(op, V::load(x.as_ptr().add(i))).store(y.as_mut_ptr().add(i));
        }
        i += V::N;
    }
    if full < n {
        let mut buf = [0f32; 16];
        buf[..n - full].copy_from_slice(&x[full..]);
        // SAFETY: `buf` holds 16 >= N values.
        #[allow(unsafe_code)]
        unsafe {
            apply(op, V::load(buf.as_ptr())).store(buf.as_mut_ptr());
        }
        y[full..].copy_from_slice(&buf[..n - full]);
    }
}

/// `x[i] = op(x[i])`, in place.
#[inline(always)]
pub fn unary_in_place<V: Lanes>(op: Unary, x: &mut [f32]) {
    let n = x.len();
    let full = n - n % V::N;
    let mut i = 0;
    while i < full {
        // SAFETY: i + N <= full <= n.
        #[allow(unsafe_code)]
        unsafe {
            let p = x.as_mut_ptr().add(i);
            apply(op, V::load(p)).store(p);
        }
        i += V::N;
    }
    if full < n {
        let mut buf = [0f32; 16];
        buf[..n - full].copy_from_slice(&x[full..]);
        // SAFETY: `buf` holds 16 >= N values.
        #[allow(unsafe_code)]
        unsafe {
            apply(op, V::load(buf.as_ptr())).store(buf.as_mut_ptr());
        }
        x[full..].copy_from_slice(&buf[..n - full]);
    }
}
