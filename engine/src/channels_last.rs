//! Activations kept channels last between convolutions.
//!
//! A convolution's products come out pixel by pixel with the channels side by side
//! ([pixels, channels]), and the depthwise and 1×1 convolutions that follow read them
//! best that way. Transposing every such output into NCHW and back cost more than the
//! products of a small network. So a convolution whose every reader takes it as well
//! (another convolution, or an element-wise operator that keeps the layout; the plan
//! decides, [`keeps_layout`]) returns its output as candle's strided view of NHWC storage:
//! the tensor's shape, its values and every bit of them are the NCHW ones; only where the
//! values lie in memory differs. Everything that reads a tensor as a row-major slice
//! (`crate::numerics::with_f32`) gets it transposed into NCHW first, and a trace or an
//! output encodes the logical values, so no result, trace leaf or cost changes.
//!
//! This module must not compute: it moves values, and decides nothing a result depends on.

use candle_core::{CpuStorage, DType, Result, Storage, Tensor};
use std::mem::MaybeUninit;

/// The operators that return a channels-last input channels last (element-wise, on one
/// tensor or on two of one shape and layout), so a convolution read only through them may
/// write its output that way.
pub fn keeps_layout(op_type: &str) -> bool {
    matches!(op_type, "Clip" | "Relu" | "HardSwish" | "Add")
}

/// The permutation that views NHWC storage (`[N, spatial…, C]`) as NCHW.
fn to_logical(rank: usize) -> Vec<usize> {
    let mut perm = vec![0, rank - 1];
    perm.extend(1..rank - 1);
    perm
}

/// The permutation that views an NCHW-shaped tensor in storage order when it is channels
/// last.
fn to_storage(rank: usize) -> Vec<usize> {
    let mut perm = vec![0];
    perm.extend(2..rank);
    perm.push(1);
    perm
}

/// Whether `t` is an f32 tensor of rank ≥ 3 whose storage holds it densely as NHWC (its
/// channels one apart) and that is not also row-major NCHW (a tensor of one channel or
/// one pixel is both; it counts as row-major).
pub fn is_channels_last(t: &Tensor) -> bool {
    t.dtype() == DType::F32
        && t.rank() >= 3
        && !t.is_contiguous()
        && t.permute(to_storage(t.rank()))
            .is_ok_and(|s| s.is_contiguous())
}

/// Calls `f` with `t`'s values in NHWC order, without copying, when `t` is stored channels
/// last; `None` otherwise.
pub fn with_storage<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    if !is_channels_last(t) {
        return None;
    }
    stored_values(t, f)
}

/// Calls `f` with the `t.elem_count()` f32 values `t`'s storage holds from its start
/// (its values in storage order, for a dense layout); `None` for other dtypes.
fn stored_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(CpuStorage::F32(values)) => {
            let start = layout.start_offset();
            Some(f(&values[start..start + t.elem_count()]))
        }
        _ => None,
    }
}

/// A tensor of logical shape `dims` ([N, C, spatial…]) over `values` stored NHWC.
pub fn tensor(values: Vec<f32>, dims: &[usize]) -> Result<Tensor> {
    let rank = dims.len();
    let mut stored = vec![dims[0]];
    stored.extend(&dims[2..]);
    stored.push(dims[1]);
    Tensor::from_vec(values, stored, &candle_core::Device::Cpu)?.permute(to_logical(rank))
}

/// A tensor of `like`'s shape and layout (row-major, or channels last as `like` is) over
/// `values`, which are in `like`'s storage order.
pub fn tensor_like(values: Vec<f32>, like: &Tensor) -> Result<Tensor> {
    if is_channels_last(like) {
        tensor(values, like.dims())
    } else {
        Tensor::from_vec(values, like.dims(), &candle_core::Device::Cpu)
    }
}

/// Calls `f` with `t`'s f32 values in storage order when they are stored densely, row-major
/// or channels last (`None` for any other layout or dtype): for an operator that treats
/// every element alike and returns `t`'s layout ([`tensor_like`]).
pub fn with_dense<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    if t.dtype() != DType::F32 {
        return None;
    }
    if !t.is_contiguous() {
        return with_storage(t, f);
    }
    stored_values(t, f)
}

/// Whether `a` and `b` have one shape and one dense layout (both row-major, or both
/// channels last), so an element-wise operator may pair their storages element by element.
pub fn same_dense_layout(a: &Tensor, b: &Tensor) -> bool {
    a.dims() == b.dims()
        && a.dtype() == DType::F32
        && b.dtype() == DType::F32
        && ((a.is_contiguous() && b.is_contiguous())
            || (is_channels_last(a) && is_channels_last(b)))
}

/// Side of the square blocks the transposes move (values of one block stay in cache
/// lines already read).
const BLOCK: usize = 16;

/// `src` [rows, cols] row-major into `dst` [cols, rows] row-major.
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    debug_assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    for r0 in (0..rows).step_by(BLOCK) {
        let r1 = (r0 + BLOCK).min(rows);
        for c0 in (0..cols).step_by(BLOCK) {
            let c1 = (c0 + BLOCK).min(cols);
            for r in r0..r1 {
                let row = &src[r * cols..][c0..c1];
                for (c, &v) in (c0..c1).zip(row) {
                    dst[c * rows + r] = v;
                }
            }
        }
    }
}

/// `src`, `samples` blocks of [pixels, channels] row-major, into `dst` as `samples`
/// blocks of [channels, pixels] (NCHW), written without zeroing first: `dst`'s rows
/// (one channel of one sample each) split over the kernels' threads, or on this one
/// where `parallel` is false. Returns `dst`, every value written.
pub fn transposed_into<'a>(
    src: &[f32],
    (samples, pixels, channels): (usize, usize, usize),
    dst: &'a mut [MaybeUninit<f32>],
    parallel: bool,
) -> &'a mut [f32] {
    let len = samples * pixels * channels;
    assert!(
        src.len() == len && dst.len() == len,
        "transposed_into: {} values in, {} out, for {samples}×{pixels}×{channels}",
        src.len(),
        dst.len()
    );
    let pixels_len = pixels.max(1);
    // Rows `first..` of dst (row r: sample r / channels, channel r % channels), BLOCK rows
    // of one sample at a time, so each line of `src` read serves BLOCK of them.
    let write_rows = |first: usize, rows: &mut [MaybeUninit<f32>]| {
        let count = rows.len() / pixels_len;
        let mut r = 0;
        while r < count {
            let (s, c) = ((first + r) / channels, (first + r) % channels);
            let n = BLOCK.min(count - r).min(channels - c);
            let block = &mut rows[r * pixels..][..n * pixels];
            let from = &src[s * pixels * channels..][..pixels * channels];
            for px in 0..pixels {
                let line = &from[px * channels + c..][..n];
                for (i, &v) in line.iter().enumerate() {
                    block[i * pixels + px].write(v);
                }
            }
            r += n;
        }
    };
    if parallel && len > 0 {
        let per_task = crate::kernel_threads::rows_per_task(samples * channels);
        crate::kernel_threads::for_each_chunk_mut(dst, per_task * pixels_len, |t, rows| {
            write_rows(t * per_task, rows)
        });
    } else if len > 0 {
        write_rows(0, dst);
    }
    #[allow(unsafe_code)]
    // SAFETY: the rows cover `dst` (samples × channels rows of `pixels`), and each row's
    // every pixel was written above (a panic in a task is raised by `for_each_chunk_mut`
    // before this point).
    unsafe {
        &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32])
    }
}

/// NHWC storage of `n` samples, `c` channels, `pixels` per plane, as row-major NCHW.
/// Written once (not zeroed first), on the kernels' threads where it is large enough to
/// pay for waking them.
pub fn to_nchw(src: &[f32], n: usize, c: usize, pixels: usize) -> Vec<f32> {
    let len = n * c * pixels;
    crate::numerics::written_in_parts(1, len, |_, dst| {
        transposed_into(&src[..len], (n, pixels, c), dst, len >= PARALLEL_VALUES)
    })
}

/// Values from which a transpose runs on the kernels' threads (below, waking them costs
/// more than the pass). Either way the same values land in the same places.
const PARALLEL_VALUES: usize = 1 << 16;

/// Calls `f` with `t`'s f32 values in row-major (NCHW) order when `t` is stored channels
/// last: transposed with [`to_nchw`] rather than candle's element-by-element strided copy.
pub fn with_row_major<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    let dims = t.dims();
    let (n, c) = (*dims.first()?, *dims.get(1)?);
    let pixels = dims.get(2..)?.iter().product();
    with_storage(t, |values| to_nchw(values, n, c, pixels)).map(|v| f(&v))
}

/// `t` in row-major storage: a copy, transposed block by block, when it is stored channels
/// last; `t` itself otherwise.
pub fn to_row_major(t: Tensor) -> Result<Tensor> {
    if !is_channels_last(&t) {
        return Ok(t);
    }
    let dims = t.dims().to_vec();
    match with_row_major(&t, <[f32]>::to_vec) {
        Some(values) => Tensor::from_vec(values, dims, &candle_core::Device::Cpu),
        None => t.contiguous(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn nchw(n: usize, c: usize, h: usize, w: usize) -> Tensor {
        let values: Vec<f32> = (0..n * c * h * w).map(|i| i as f32 * 0.5 - 3.0).collect();
        Tensor::from_vec(values, (n, c, h, w), &Device::Cpu).unwrap()
    }

    #[test]
    fn a_channels_last_tensor_holds_the_same_logical_values() {
        for (n, c, h, w) in [(2, 5, 3, 4), (1, 33, 17, 2), (3, 1, 4, 4), (2, 6, 1, 1)] {
            let x = nchw(n, c, h, w);
            // NHWC storage built by hand.
            let logical = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let mut stored = vec![0f32; logical.len()];
            for s in 0..n {
                for ch in 0..c {
                    for p in 0..h * w {
                        stored[(s * h * w + p) * c + ch] = logical[(s * c + ch) * h * w + p];
                    }
                }
            }
            let t = tensor(stored.clone(), &[n, c, h, w]).unwrap();
            assert_eq!(t.dims(), &[n, c, h, w]);
            assert_eq!(
                t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                logical,
                "{n}x{c}x{h}x{w}"
            );
            // Only a tensor that is not also row-major counts as channels last.
            assert_eq!(is_channels_last(&t), c > 1 && h * w > 1);
            if is_channels_last(&t) {
                assert_eq!(with_storage(&t, <[f32]>::to_vec), Some(stored.clone()));
                assert_eq!(with_row_major(&t, <[f32]>::to_vec), Some(logical.clone()));
                assert!(!same_dense_layout(&t, &x));
                let again = tensor_like(stored.clone(), &t).unwrap();
                assert!(same_dense_layout(&t, &again));
            }
            assert!(!is_channels_last(&x));
            assert_eq!(with_storage(&x, |_| ()), None);
        }
    }

    #[test]
    fn the_blocked_transpose_moves_every_value() {
        for (rows, cols) in [(1, 1), (3, 40), (17, 16), (33, 65)] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut dst = vec![0f32; rows * cols];
            transpose(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * rows + r], src[r * cols + c]);
                }
            }
        }
    }

    /// Samples of [pixels, channels] into [channels, pixels], on the threads or not:
    /// every value lands where the per-sample transpose puts it, across channel blocks
    /// that end inside a sample and tasks that end inside a block; no pixels or no
    /// channels is an empty output.
    #[test]
    fn the_threaded_transpose_writes_every_value_once() {
        for (samples, pixels, channels) in [
            (1, 1, 1),
            (3, 7, 40),
            (2, 49, 17),
            (5, 300, 33),
            (8, 3025, 64),
            (2, 0, 5),
            (2, 5, 0),
        ] {
            let len = samples * pixels * channels;
            let src: Vec<f32> = (0..len).map(|i| i as f32 - 7.5).collect();
            let mut want = vec![0f32; len];
            if len > 0 {
                for (s, d) in src
                    .chunks_exact(pixels * channels)
                    .zip(want.chunks_exact_mut(pixels * channels))
                {
                    transpose(s, pixels, channels, d);
                }
            }
            for parallel in [false, true] {
                let mut dst = vec![MaybeUninit::new(f32::NAN); len];
                let got = transposed_into(&src, (samples, pixels, channels), &mut dst, parallel);
                assert_eq!(
                    got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{samples}×{pixels}×{channels} parallel={parallel}"
                );
            }
            assert_eq!(to_nchw(&src, samples, channels, pixels), want);
        }
    }
}
