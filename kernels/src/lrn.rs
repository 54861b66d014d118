//! Local response normalization (ONNX `LRN`, as AlexNet and GoogLeNet use it), defined
//! here so that every CPU computes the same bits.
//!
//! For channel `c` of one sample, at every position: `s = Σ x[c']²` over the channels
//! `c' = c - ⌊(size-1)/2⌋ ..= c + ⌈(size-1)/2⌉` that exist, summed in ascending `c'`, each
//! square rounded then added (no fused multiply-add); then
//! `y = x / (bias + (alpha / size) · s)^beta`, the power by [`crate::math::pow`]. Scalar
//! on every ISA: the channel window is short and the power dominates.

use crate::math;

/// LRN of one sample laid out as `channels` planes of `plane` values each (NCHW order):
/// `x` and `y` hold `channels * plane` values.
#[allow(clippy::too_many_arguments)]
pub fn lrn(
    x: &[f32],
    channels: usize,
    plane: usize,
    size: usize,
    alpha: f32,
    beta: f32,
    bias: f32,
    y: &mut [f32],
) {
    assert!(
        x.len() == channels * plane && y.len() == x.len(),
        "lrn: lengths differ"
    );
    let before = (size.max(1) - 1) / 2;
    let after = size.max(1) - 1 - before;
    let scale = alpha / size.max(1) as f32;
    for c in 0..channels {
        let first = c.saturating_sub(before);
        let last = (c + after).min(channels.saturating_sub(1));
        for p in 0..plane {
            let mut s = 0.0f32;
            for other in first..=last {
                let v = x[other * plane + p];
                let square = v * v;
                s += square;
            }
            let at = c * plane + p;
            y[at] = x[at] / math::pow(bias + scale * s, beta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_channel_is_divided_by_its_window_of_squares() {
        // Three channels of one value: windows {0,1}, {0,1,2}, {1,2} for size 3.
        let x = [1.0f32, 2.0, 3.0];
        let mut y = [0.0f32; 3];
        lrn(&x, 3, 1, 3, 0.75, 1.0, 1.0, &mut y);
        let want = [
            1.0 / (1.0 + 0.25 * 5.0),
            2.0 / (1.0 + 0.25 * 14.0),
            3.0 / (1.0 + 0.25 * 13.0),
        ];
        assert_eq!(y, want);
    }

    #[test]
    fn an_even_size_reaches_further_after_than_before() {
        // size 2: window c..=c+1.
        let x = [1.0f32, 2.0, 3.0];
        let mut y = [0.0f32; 3];
        lrn(&x, 3, 1, 2, 2.0, 1.0, 0.0, &mut y);
        assert_eq!(y, [1.0 / 5.0, 2.0 / 13.0, 3.0 / 9.0]);
    }
}
