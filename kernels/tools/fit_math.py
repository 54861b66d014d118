#!/usr/bin/env python3
"""Fits the polynomial coefficients of inferchain-kernels' math functions (src/math.rs).

Weighted least squares on Chebyshev nodes, refined by a few Lawson iterations towards
minimax, in float64; coefficients are then rounded to float32 (the kernels evaluate in
float32 with FMA). Run it to reproduce the constants: `python3 kernels/tools/fit_math.py`.
The kernels' own tests measure the accuracy of the float32 evaluation (ulp bounds).
"""
import math
import numpy as np

def fit(f, g, basis, lo, hi, deg, weight, iters=60):
    """Coefficients c minimizing max |weight(x) * (g(x) * sum c_i basis(x)^i - f(x))|."""
    n = 4000
    x = 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos(np.pi * (np.arange(n) + 0.5) / n)
    b = basis(x)
    A = np.stack([g(x) * b**i for i in range(deg + 1)], axis=1) * weight(x)[:, None]
    y = f(x) * weight(x)
    w = np.ones(n)
    for _ in range(iters):
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)
        err = np.abs(A @ c - y)
        w = w * err
        w /= w.sum()
    c32 = c.astype(np.float32)
    err32 = np.max(np.abs(A @ c32.astype(np.float64) - y))
    return c32, err32

def show(name, c, err):
    print(f"// {name}: max weighted error {err:.3e} (float64 evaluation, float32 coefficients)")
    print(f"const {name}: [f32; {len(c)}] = [" + ", ".join(f"{float(v)!r}" for v in c) + "];")

erf = np.vectorize(math.erf)
erfc = np.vectorize(math.erfc)
ident = lambda x: x
one = lambda x: np.ones_like(x)

# exp(r) = 1 + r + r^2 * q(r), |r| <= ln2/2.
L = math.log(2) / 2
c, e = fit(lambda r: np.exp(r) - 1 - r, lambda r: r * r, ident, -L, L, 4,
           lambda r: 1 / np.exp(r))
show("EXP_POLY", c, e)

# log(1 + f) = f + f^2 * q(f), sqrt(1/2) - 1 <= f < sqrt(2) - 1.
lo, hi = math.sqrt(0.5) - 1, math.sqrt(2) - 1
c, e = fit(lambda f: np.log1p(f) - f, lambda f: f * f, ident, lo, hi, 8,
           lambda f: 1 / np.maximum(np.abs(np.log1p(f)), 1e-30))
show("LOG_POLY", c, e)

# tanh(x) = x + x^3 * q(x^2), |x| < 0.625.
c, e = fit(lambda x: np.tanh(x) - x, lambda x: x**3, lambda x: x * x, 1e-4, 0.625, 5,
           lambda x: 1 / np.tanh(x))
show("TANH_POLY", c, e)

# erf(x) = x + x * q(x^2), |x| < 1 (q(0) = 2/sqrt(pi) - 1, which float32 holds better
# than 2/sqrt(pi)).
c, e = fit(lambda x: erf(x) - x, ident, lambda x: x * x, 1e-4, 1.0, 7,
           lambda x: 1 / erf(x))
show("ERF_SMALL", c, e)

# erfc(a) = exp(-a^2) * q(a - 2), 1 <= a < 4 (relative error of erfc).
c, e = fit(lambda a: erfc(a) * np.exp(a * a), one, lambda a: a - 2.0, 1.0, 4.0, 12,
           lambda a: 1 / (erfc(a) * np.exp(a * a)))
show("ERFC_MID", c, e)
