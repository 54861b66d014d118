//! The per-ISA entry points: each generic kernel instantiated with the ISA's [`Lanes`]
//! inside a function compiled with that ISA's target features, and the `match` that
//! calls the one for an [`Isa`].
//!
//! Calling a path the CPU lacks would be undefined behaviour, so an [`Isa`] the CPU
//! does not run falls back to the scalar reference (same bits, only slower).
#![allow(unsafe_code)]

use crate::{
    elementwise::{self, Unary},
    gemm::{self, Task},
    isa::Isa,
    lanes::Scalar,
    reduce,
};

/// Declares the kernels that have SIMD paths, once; expands to one module per ISA.
macro_rules! simd_kernels {
    ($( fn $name:ident <$V:ident> ( $($arg:ident : $ty:ty),* ) $(-> $ret:ty)? = $body:expr; )*) => {
        #[cfg(target_arch = "x86_64")]
        mod avx512 {
            use super::*;
            use crate::x86::Avx512;
            $(
                #[target_feature(enable = "avx512f")]
                pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    type $V = Avx512;
                    $body
                }
            )*
        }
        #[cfg(target_arch = "x86_64")]
        mod avx2 {
            use super::*;
            use crate::x86::Avx2;
            $(
                #[target_feature(enable = "avx2,fma")]
                pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    type $V = Avx2;
                    $body
                }
            )*
        }
        #[cfg(target_arch = "aarch64")]
        mod neon {
            use super::*;
            use crate::neon::Neon;
            $(
                pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    type $V = Neon;
                    $body
                }
            )*
        }
        mod scalar {
            use super::*;
            $(
                pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    type $V = Scalar;
                    $body
                }
            )*
        }
        $(
            /// Dispatches to the ISA's instance (see the module docs).
            pub(crate) fn $name(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
                let isa = if isa.available() { isa } else { Isa::Scalar };
                // SAFETY: `isa` is available on this CPU (checked above), and each
                // instance's own preconditions are those of the safe generic kernel it
                // wraps, except `gemm_task` (see its caller).
                unsafe {
                    match isa {
                        #[cfg(target_arch = "x86_64")]
                        Isa::Avx512 => avx512::$name($($arg),*),
                        #[cfg(target_arch = "x86_64")]
                        Isa::Avx2 => avx2::$name($($arg),*),
                        #[cfg(target_arch = "aarch64")]
                        Isa::Neon => neon::$name($($arg),*),
                        _ => scalar::$name($($arg),*),
                    }
                }
            }
        )*
    };
}

simd_kernels! {
    fn unary<V>(op: Unary, x: &[f32], y: &mut [f32]) = elementwise::unary::<V>(op, x, y);
    fn unary_in_place<V>(op: Unary, x: &mut [f32]) = elementwise::unary_in_place::<V>(op, x);
    fn sum<V>(x: &[f32]) -> f32 = reduce::sum::<V>(x);
    fn max<V>(x: &[f32]) -> f32 = reduce::max::<V>(x);
    fn window_max_runs<V>(runs: &[&[f32]], out: &mut [f32]) = reduce::window_max_runs::<V>(runs, out);
    fn sum_sq_dev<V>(x: &[f32], mean: f32) -> f32 = reduce::sum_sq_dev::<V>(x, mean);
    fn softmax<V>(x: &[f32], y: &mut [f32]) = reduce::softmax::<V>(x, y);
    fn log_softmax<V>(x: &[f32], y: &mut [f32]) = reduce::log_softmax::<V>(x, y);
    fn moments<V>(x: &[f32], eps: f32) -> (f32, f32) = reduce::moments::<V>(x, eps);
    fn normalize_row<V>(x: &[f32], mean: f32, rstd: f32, scale: &[f32], bias: Option<&[f32]>, y: &mut [f32])
        = reduce::normalize_row::<V>(x, mean, rstd, scale, bias, y);
    fn normalize_channel<V>(x: &[f32], mean: f32, rstd: f32, scale: f32, bias: f32, y: &mut [f32])
        = reduce::normalize_channel::<V>(x, mean, rstd, scale, bias, y);
    fn gemm_task<V>(t: &Task<'_>) = gemm_instance::<V>(t);
    fn weighted_rows<V>(rows: &[f32], w: &[f32], bias: Option<f32>, out: &mut [f32])
        = gemm::weighted_rows::<V>(rows, w, bias, out);
    fn weighted_slices<V>(rows: &[&[f32]], w: &[f32], bias: Option<f32>, bounds: Option<(f32, f32)>, out: &mut [f32])
        = gemm::weighted_slices::<V>(rows, w, bias, bounds, out);
    fn weighted_slices_rows<V>(rows: &[&[f32]], w: &[f32], epilogue: gemm::LanesEpilogue<'_>, m: usize, out: &mut [f32])
        = gemm::weighted_slices_rows::<V>(rows, w, epilogue, m, out);
    fn weighted_lanes<V>(x: &[f32], at: &[u32], w: &[f32], epilogue: gemm::LanesEpilogue<'_>, c: usize, out: &mut [f32])
        = gemm::weighted_lanes::<V>(x, at, w, epilogue, c, out);
    fn weighted_grid<V>(x: &[f32], grid: (&[u32], &[u32]), w: &[f32], epilogue: gemm::LanesEpilogue<'_>, c: usize, out: &mut [f32])
        = gemm::weighted_grid::<V>(x, grid, w, epilogue, c, out);
}

/// The tile shape per ISA: `MR` rows by `NV` registers.
trait TileShape {
    /// # Safety
    /// As [`gemm::run_task`].
    unsafe fn run(t: &Task<'_>);
}

#[cfg(target_arch = "x86_64")]
impl TileShape for crate::x86::Avx512 {
    #[inline(always)]
    unsafe fn run(t: &Task<'_>) {
        // Six rows by four registers (24 accumulators): each step loads 4 registers of
        // B and broadcasts 6 values of A per 24 FMAs. Measured against 12×2 and 8×3
        // (same bits: the tile never changes a chain): ResNet-like 5% and
        // bert-base-like 4% faster than 12×2 at batch 1, 2 threads.
        // SAFETY: forwarded.
        unsafe { gemm::run_task::<Self, 6, 4>(t) }
    }
}

#[cfg(target_arch = "x86_64")]
impl TileShape for crate::x86::Avx2 {
    #[inline(always)]
    unsafe fn run(t: &Task<'_>) {
        // SAFETY: forwarded.
        unsafe { gemm::run_task::<Self, 6, 2>(t) }
    }
}

#[cfg(target_arch = "aarch64")]
impl TileShape for crate::neon::Neon {
    #[inline(always)]
    unsafe fn run(t: &Task<'_>) {
        // SAFETY: forwarded.
        unsafe { gemm::run_task::<Self, 6, 4>(t) }
    }
}

impl TileShape for Scalar {
    #[inline(always)]
    unsafe fn run(t: &Task<'_>) {
        // SAFETY: forwarded.
        unsafe { gemm::run_task::<Self, 4, 16>(t) }
    }
}

#[inline(always)]
fn gemm_instance<V: TileShape>(t: &Task<'_>) {
    // SAFETY: `gemm::gemm` hands each task a disjoint rectangle of C.
    unsafe { V::run(t) }
}
