//! The arithmetic of sliding-window operators whose geometry the engine works out:
//! pooling windows and transposed convolutions. Plain IEEE-754 binary64 arithmetic in a
//! fixed order, rounded once to binary32 — no SIMD, so nothing a CPU could reorder.

use crate::math::CANONICAL_NAN;
use alloc::vec::Vec;

/// The average of a pooling window: the values summed in binary64 in window order
/// (kernel row-major), divided by `divisor` (the count inside the input, or inside the
/// padded input with `count_include_pad`), rounded once.
pub fn average(values: &[f32], divisor: usize) -> f32 {
    let y = average_impl(values, divisor);
    crate::record(
        || crate::call::Call::WindowAverage {
            values: values.to_vec(),
            divisor: divisor as u32,
        },
        &[y],
    );
    y
}

pub(crate) fn average_impl(values: &[f32], divisor: usize) -> f32 {
    let sum = values.iter().fold(0f64, |s, &v| s + f64::from(v));
    let y = (sum / divisor.max(1) as f64) as f32;
    if y.is_nan() {
        CANONICAL_NAN
    } else {
        y
    }
}

/// The largest value of a window; the canonical NaN if any is NaN; -inf if empty.
pub fn max(values: &[f32]) -> f32 {
    let y = max_impl(values);
    crate::record(
        || crate::call::Call::WindowMax {
            values: values.to_vec(),
        },
        &[y],
    );
    y
}

pub(crate) fn max_impl(values: &[f32]) -> f32 {
    let mut m = f32::NEG_INFINITY;
    for &v in values {
        if v.is_nan() {
            return CANONICAL_NAN;
        }
        m = if v > m { v } else { m };
    }
    m
}

/// A transposed convolution's geometry (per spatial axis: input size, kernel, stride,
/// dilation, the padding cut from the start, and the output size).
pub struct TransposedConv<'a> {
    pub batch: usize,
    pub channels: usize,
    pub group: usize,
    /// Output channels per group.
    pub out_per_group: usize,
    pub input: &'a [usize],
    pub kernel: &'a [usize],
    pub strides: &'a [usize],
    pub dilations: &'a [usize],
    pub begin: &'a [usize],
    pub output: &'a [usize],
}

/// `ConvTranspose`: X [N, C, input…], W [C, M/group, kernel…], bias [M] → [N, M, output…].
/// Each output accumulates, in binary64, from +0 in this order: batch, input channel,
/// input position (row-major), kernel position (row-major); then `+ bias`; then one
/// rounding to binary32.
pub fn conv_transpose(
    t: &TransposedConv<'_>,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let s = t.input.len();
    let (cg, mg) = (t.channels / t.group.max(1), t.out_per_group);
    let m = mg * t.group;
    let in_len: usize = t.input.iter().product();
    let k_len: usize = t.kernel.iter().product();
    let out_len: usize = t.output.iter().product();
    let mut out = alloc::vec![0f64; t.batch * m * out_len];
    let mut i_idx = alloc::vec![0usize; s];
    let mut k_idx = alloc::vec![0usize; s];
    for batch in 0..t.batch {
        for ic in 0..t.channels {
            let g = ic / cg.max(1);
            let plane = &x[(batch * t.channels + ic) * in_len..][..in_len];
            for (i, &value) in plane.iter().enumerate() {
                unravel(i, t.input, &mut i_idx);
                for k in 0..k_len {
                    unravel(k, t.kernel, &mut k_idx);
                    let mut offset = 0usize;
                    let mut inside = true;
                    for a in 0..s {
                        let p = (i_idx[a] * t.strides[a] + k_idx[a] * t.dilations[a]) as isize
                            - t.begin[a] as isize;
                        if p < 0 || p as usize >= t.output[a] {
                            inside = false;
                            break;
                        }
                        offset = offset * t.output[a] + p as usize;
                    }
                    if !inside {
                        continue;
                    }
                    for oc in 0..mg {
                        let weight = f64::from(w[(ic * mg + oc) * k_len + k]);
                        out[(batch * m + g * mg + oc) * out_len + offset] +=
                            f64::from(value) * weight;
                    }
                }
            }
        }
    }
    if let Some(b) = bias {
        for (plane, chunk) in out.chunks_exact_mut(out_len.max(1)).enumerate() {
            let bv = f64::from(b[plane % m]);
            chunk.iter_mut().for_each(|v| *v += bv);
        }
    }
    out.into_iter()
        .map(|v| {
            let y = v as f32;
            if y.is_nan() {
                CANONICAL_NAN
            } else {
                y
            }
        })
        .collect()
}

/// Row-major multi-index of `flat` in `dims`.
fn unravel(mut flat: usize, dims: &[usize], out: &mut [usize]) {
    for (i, &d) in dims.iter().enumerate().rev() {
        out[i] = flat % d;
        flat /= d;
    }
}
