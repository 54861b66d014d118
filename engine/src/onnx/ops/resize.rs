//! `Resize` (opsets 11 to 19) in every mode the spec defines: `nearest` (each
//! `nearest_mode`), `linear` and `cubic` (`cubic_coeff_a`, `exclude_outside`), under every
//! `coordinate_transformation_mode` (`half_pixel`, `half_pixel_symmetric`,
//! `pytorch_half_pixel`, `align_corners`, `asymmetric`, opset 11's
//! `tf_half_pixel_for_nn`, `tf_crop_and_resize` with its
//! `roi` and `extrapolation_value`), sized by `scales` or `sizes`, over all axes or the
//! `axes` listed (opset 18). `antialias` and aspect-ratio policies other than `stretch` are
//! refused at load (`super::super::op_versions`).
//!
//! The numerics follow the onnx reference implementation, which defines the operator:
//! per axis and output index, the input coordinate `x_original` (binary64), the `n`
//! neighbours nearest to it (2 for linear, 4 for cubic; ties to the smaller index; the
//! input's edge repeated beyond it) and their coefficients; the axes are interpolated one
//! after the other, the last axis first, each output value `Σ_k c_k · p_k` summed in
//! neighbour order from +0 in binary64 (no fused multiply-add), and rounded to f32 once at
//! the end. Nothing depends on the CPU. `nearest` selects one input value (any element
//! type, copied as it is); `linear` and `cubic` take f32. `nearest` with `floor` and
//! `asymmetric`, by `sizes` or whole-number scales, keeps the index candle-onnx computed
//! for it (`floor(o · in / out)`), the one form the engine ran before, so that registered
//! models keep their bits.

use super::attrs;
use candle_core::{bail, DType, Device, Result, Tensor};
use candle_onnx::onnx::NodeProto;

/// The largest output a Resize computes (scales are constants, but a hostile one could
/// ask for a tensor no executor can hold before any meter sees it).
const MAX_OUTPUT_ELEMENTS: usize = 1 << 30;

/// The longest output axis (each output index of a resized axis keeps its neighbours).
const MAX_AXIS: usize = 1 << 24;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

/// What one output index along one axis reads: `(input index, coefficient)` pairs, or the
/// extrapolation value (`tf_crop_and_resize` outside the input).
enum Taps {
    Read(Vec<(usize, f64)>),
    Outside,
}

/// `Resize(X, roi?, scales?, sizes?)`.
pub fn resize(
    node: &NodeProto,
    x: &Tensor,
    roi: Option<&Tensor>,
    scales: Option<&Tensor>,
    sizes: Option<&Tensor>,
) -> Result<Tensor> {
    let op = "Resize";
    let dims = x.dims().to_vec();
    let rank = dims.len();
    let mode = match attrs::string(node, "mode", "nearest").as_str() {
        "nearest" => Mode::Nearest,
        "linear" => Mode::Linear,
        "cubic" => Mode::Cubic,
        other => bail!("{op}: mode `{other}`"),
    };
    let axes: Vec<usize> = match attrs::ints(node, "axes") {
        Some(a) => a
            .iter()
            .map(|&a| attrs::axis(op, a, rank))
            .collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    let listed = |t: &Tensor| -> Result<Vec<f64>> {
        let t = t.to_dtype(DType::F64)?.flatten_all()?;
        t.to_vec1::<f64>()
    };
    let scales = scales.filter(|s| s.elem_count() > 0);
    let sizes = sizes.filter(|s| s.elem_count() > 0);
    // Per axis: the scale and the output length.
    let mut scale = vec![1.0f64; rank];
    let mut out_dims = dims.clone();
    match (scales, sizes) {
        (Some(_), Some(_)) => bail!("{op}: both scales and sizes are given"),
        (Some(s), None) => {
            let s = listed(s)?;
            if s.len() != axes.len() {
                bail!("{op}: {} scales for {} axes", s.len(), axes.len())
            }
            for (&a, &v) in axes.iter().zip(&s) {
                if v.is_nan() || v <= 0.0 || v.is_infinite() {
                    bail!("{op}: scale {v} must be positive")
                }
                scale[a] = v;
                out_dims[a] = (dims[a] as f64 * v).floor() as usize;
            }
        }
        (None, Some(s)) => {
            let s = listed(s)?;
            if s.len() != axes.len() {
                bail!("{op}: {} sizes for {} axes", s.len(), axes.len())
            }
            for (&a, &v) in axes.iter().zip(&s) {
                if v < 0.0 || v.fract() != 0.0 {
                    bail!("{op}: size {v}")
                }
                if dims[a] == 0 {
                    bail!("{op}: an empty axis cannot be resized")
                }
                out_dims[a] = v as usize;
                scale[a] = v / dims[a] as f64;
            }
            // `not_larger` / `not_smaller` (opset 18): one scale for every listed axis,
            // the smallest or largest, and each length rounded from it.
            let policy = attrs::string(node, "keep_aspect_ratio_policy", "stretch");
            if policy != "stretch" {
                let listed_scales = axes.iter().map(|&a| scale[a]);
                let one = match policy.as_str() {
                    "not_larger" => listed_scales.fold(f64::INFINITY, f64::min),
                    "not_smaller" => listed_scales.fold(0.0, f64::max),
                    other => bail!("{op}: keep_aspect_ratio_policy `{other}`"),
                };
                for &a in &axes {
                    scale[a] = one;
                    out_dims[a] = (one * dims[a] as f64).round_ties_even() as usize;
                }
            }
        }
        (None, None) => bail!("{op}: neither scales nor sizes is given"),
    }
    let elements = out_dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_OUTPUT_ELEMENTS);
    if elements.is_none() || out_dims.iter().any(|&d| d > MAX_AXIS) {
        bail!(
            "{op}: an output of {out_dims:?} is over {MAX_OUTPUT_ELEMENTS} elements or \
             {MAX_AXIS} along an axis"
        )
    }
    if elements == Some(0) {
        return Tensor::zeros(out_dims, x.dtype(), &Device::Cpu);
    }
    let coordinates = attrs::string(node, "coordinate_transformation_mode", "half_pixel");
    let roi = match roi.filter(|r| r.elem_count() > 0) {
        Some(r) if coordinates == "tf_crop_and_resize" => {
            let r = listed(r)?;
            if r.len() != 2 * axes.len() {
                bail!("{op}: roi of {} values for {} axes", r.len(), axes.len())
            }
            let mut full = vec![(0.0, 1.0); rank];
            for (i, &a) in axes.iter().enumerate() {
                full[a] = (r[i], r[axes.len() + i]);
            }
            full
        }
        _ => vec![(0.0, 1.0); rank],
    };
    let nearest = attrs::string(node, "nearest_mode", "round_prefer_floor");
    let cubic_a = f64::from(attrs::float(node, "cubic_coeff_a", -0.75));
    // Only cubic's weights reach outside the input (onnxruntime ignores it elsewhere;
    // for nearest, zeroing both weights would read index 0).
    let exclude_outside = mode == Mode::Cubic && attrs::int(node, "exclude_outside", 0) != 0;
    let extrapolation = f64::from(attrs::float(node, "extrapolation_value", 0.0));
    let mut plan: Vec<Option<Vec<Taps>>> = Vec::with_capacity(rank);
    for a in 0..rank {
        if out_dims[a] == dims[a] && scale[a] == 1.0 && coordinates != "tf_crop_and_resize" {
            // Every mode maps an unscaled axis onto itself.
            plan.push(None);
            continue;
        }
        let axis = Axis {
            input: dims[a],
            output: out_dims[a],
            scale: scale[a],
            roi: roi[a],
        };
        let candle_form = sizes.is_some() || (scale[a] >= 1.0 && scale[a].fract() == 0.0);
        if mode == Mode::Nearest && nearest == "floor" && coordinates == "asymmetric" && candle_form
        {
            // The form candle-onnx ran before (by sizes, or by whole-number scales; the
            // registered models' bits): the input index by the size ratio,
            // `floor(o · (in / out))`, the spec's `floor(o / scale)` but at rare exact
            // ties of a size ratio. Other scales take the spec's path below.
            let ratio = dims[a] as f64 / out_dims[a] as f64;
            let last = dims[a].saturating_sub(1);
            let taps = (0..out_dims[a])
                .map(|o| Taps::Read(vec![(((o as f64 * ratio) as usize).min(last), 1.0)]))
                .collect();
            plan.push(Some(taps));
            continue;
        }
        let taps = (0..out_dims[a])
            .map(|o| axis.taps(o, &coordinates, mode, &nearest, cubic_a, exclude_outside))
            .collect::<Result<Vec<_>>>()?;
        plan.push(Some(taps));
    }
    if mode == Mode::Nearest && coordinates != "tf_crop_and_resize" {
        return gather(x, &dims, &out_dims, &plan);
    }
    if x.dtype() != DType::F32 {
        bail!(
            "{op}: {:?} input; linear, cubic and tf_crop_and_resize take float32",
            x.dtype()
        )
    }
    // Axes are interpolated last-first: every intermediate must fit the cap too.
    for a in 0..rank {
        let intermediate = dims[..a]
            .iter()
            .chain(&out_dims[a..])
            .try_fold(1usize, |n, &d| n.checked_mul(d));
        if intermediate.is_none_or(|n| n > MAX_OUTPUT_ELEMENTS) {
            bail!("{op}: an intermediate of more than {MAX_OUTPUT_ELEMENTS} elements")
        }
    }
    let mut values: Vec<f64> = x
        .flatten_all()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(f64::from)
        .collect();
    let mut shape = dims.clone();
    for a in (0..rank).rev() {
        let Some(taps) = &plan[a] else { continue };
        let outer: usize = shape[..a].iter().product();
        let inner: usize = shape[a + 1..].iter().product();
        let (len_in, len_out) = (shape[a], out_dims[a]);
        let mut next = vec![0f64; outer * len_out * inner];
        for o in 0..outer {
            let src = &values[o * len_in * inner..][..len_in * inner];
            let dst = &mut next[o * len_out * inner..][..len_out * inner];
            for (j, tap) in taps.iter().enumerate() {
                let row = &mut dst[j * inner..][..inner];
                match tap {
                    Taps::Outside => row.fill(extrapolation),
                    Taps::Read(read) => {
                        for (i, v) in row.iter_mut().enumerate() {
                            let mut sum = 0.0f64;
                            for &(k, c) in read {
                                sum += c * src[k * inner + i];
                            }
                            *v = sum;
                        }
                    }
                }
            }
        }
        values = next;
        shape[a] = len_out;
    }
    let out: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
    Tensor::from_vec(out, out_dims, &Device::Cpu)
}

/// `nearest` without extrapolation: one input element per output element, copied.
fn gather(
    x: &Tensor,
    dims: &[usize],
    out_dims: &[usize],
    plan: &[Option<Vec<Taps>>],
) -> Result<Tensor> {
    let rank = dims.len();
    // Per axis, the input index of each output index.
    let mut pick: Vec<Vec<usize>> = Vec::with_capacity(rank);
    for a in 0..rank {
        pick.push(match &plan[a] {
            None => (0..dims[a]).collect(),
            Some(taps) => taps
                .iter()
                .map(|t| match t {
                    Taps::Read(r) => r.iter().find(|(_, c)| *c != 0.0).map_or(0, |(k, _)| *k),
                    Taps::Outside => 0,
                })
                .collect(),
        });
    }
    let count: usize = out_dims.iter().product();
    let mut strides = vec![1usize; rank];
    for a in (0..rank.saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * dims[a + 1];
    }
    let mut index = Vec::with_capacity(count);
    let mut at = vec![0usize; rank];
    for _ in 0..count {
        index.push(
            (0..rank)
                .map(|a| pick[a][at[a]] * strides[a])
                .sum::<usize>() as u32,
        );
        for a in (0..rank).rev() {
            at[a] += 1;
            if at[a] < out_dims[a] {
                break;
            }
            at[a] = 0;
        }
    }
    let index = Tensor::from_vec(index, count, &Device::Cpu)?;
    x.flatten_all()?.index_select(&index, 0)?.reshape(out_dims)
}

/// One axis's geometry.
struct Axis {
    input: usize,
    output: usize,
    scale: f64,
    roi: (f64, f64),
}

impl Axis {
    /// The input coordinate of output index `o` (`None`: outside, extrapolated).
    fn original(&self, o: usize, coordinates: &str) -> Result<Option<f64>> {
        let x = o as f64;
        let input = self.input as f64;
        // The reference's output length: the scale times the input (not rounded).
        let width = self.scale * input;
        Ok(Some(match coordinates {
            "half_pixel" => (x + 0.5) / self.scale - 0.5,
            "half_pixel_symmetric" => {
                let adjustment = self.output as f64 / width;
                let center = input / 2.0;
                let offset = center * (1.0 - adjustment);
                offset + (x + 0.5) / self.scale - 0.5
            }
            "pytorch_half_pixel" => {
                if width == 1.0 {
                    -0.5
                } else {
                    (x + 0.5) / self.scale - 0.5
                }
            }
            "align_corners" => {
                if width == 1.0 {
                    0.0
                } else {
                    x * (input - 1.0) / (width - 1.0)
                }
            }
            "asymmetric" => x / self.scale,
            // Opset 11 only.
            "tf_half_pixel_for_nn" => (x + 0.5) / self.scale,
            "tf_crop_and_resize" => {
                let (start, end) = self.roi;
                let v = if width == 1.0 {
                    (end - start) * (input - 1.0) / 2.0
                } else {
                    x * (end - start) * (input - 1.0) / (width - 1.0)
                } + start * (input - 1.0);
                if v < 0.0 || v > input - 1.0 {
                    return Ok(None);
                }
                v
            }
            other => bail!("Resize: coordinate_transformation_mode `{other}`"),
        }))
    }

    fn taps(
        &self,
        o: usize,
        coordinates: &str,
        mode: Mode,
        nearest: &str,
        cubic_a: f64,
        exclude_outside: bool,
    ) -> Result<Taps> {
        let Some(x) = self.original(o, coordinates)? else {
            return Ok(Taps::Outside);
        };
        if !x.is_finite() {
            bail!("Resize: input coordinate {x} for output index {o}")
        }
        // An integral coordinate reads itself as the last of the lower neighbours
        // (ratio 1), as the reference has it.
        let (floor, ratio) = if x.fract() == 0.0 {
            (x - 1.0, 1.0)
        } else {
            (x.floor(), x - x.floor())
        };
        let mut coefficients: Vec<f64> = match mode {
            Mode::Nearest => {
                let upper = match nearest {
                    _ if ratio == 1.0 => true,
                    "round_prefer_floor" => ratio > 0.5,
                    "round_prefer_ceil" => ratio >= 0.5,
                    "floor" => false,
                    "ceil" => true,
                    other => bail!("Resize: nearest_mode `{other}`"),
                };
                if upper {
                    vec![0.0, 1.0]
                } else {
                    vec![1.0, 0.0]
                }
            }
            Mode::Linear => vec![1.0 - ratio, ratio],
            Mode::Cubic => cubic_coefficients(ratio, cubic_a).to_vec(),
        };
        let n = coefficients.len() as i64;
        // The first of the n nearest indexes (ties to the smaller).
        let first = floor as i64 - n / 2 + 1;
        let last = self.input as i64 - 1;
        if exclude_outside {
            for (k, c) in coefficients.iter_mut().enumerate() {
                let i = first + k as i64;
                if i < 0 || i > last {
                    *c = 0.0;
                }
            }
            let total: f64 = coefficients.iter().sum();
            if total != 0.0 {
                coefficients.iter_mut().for_each(|c| *c /= total);
            }
        }
        Ok(Taps::Read(
            coefficients
                .into_iter()
                .enumerate()
                .map(|(k, c)| ((first + k as i64).clamp(0, last) as usize, c))
                .collect(),
        ))
    }
}

/// Keys' cubic convolution coefficients for the four neighbours at distances
/// `1 + r`, `r`, `1 - r`, `2 - r`.
fn cubic_coefficients(r: f64, a: f64) -> [f64; 4] {
    let s = 1.0 - r;
    [
        ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
        ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
        ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0,
        ((a * (s + 1.0) - 5.0 * a) * (s + 1.0) + 8.0 * a) * (s + 1.0) - 4.0 * a,
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn node(strings: &[(&str, &str)]) -> NodeProto {
        NodeProto {
            op_type: "Resize".into(),
            attribute: strings
                .iter()
                .map(|(name, value)| candle_onnx::onnx::AttributeProto {
                    name: name.to_string(),
                    s: value.as_bytes().to_vec(),
                    r#type: 3,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn nearest_floor_asymmetric_keeps_the_indices_candle_onnx_computed() {
        let x = Tensor::arange(0f32, 36.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 6, 6))
            .unwrap();
        let node = node(&[
            ("mode", "nearest"),
            ("nearest_mode", "floor"),
            ("coordinate_transformation_mode", "asymmetric"),
        ]);
        for size in [4i64, 9, 10, 13] {
            let sizes = Tensor::new(&[1i64, 1, size, size], &Device::Cpu).unwrap();
            let y = resize(&node, &x, None, None, Some(&sizes)).unwrap();
            let want = x.upsample_nearest2d(size as usize, size as usize).unwrap();
            assert_eq!(
                y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                "{size}"
            );
        }
    }

    #[test]
    fn linear_half_pixel_interpolates_between_neighbours_and_clamps_at_edges() {
        let x = Tensor::new(&[[[[0f32, 4.0]]]], &Device::Cpu).unwrap();
        let scales = Tensor::new(&[1f32, 1.0, 1.0, 2.0], &Device::Cpu).unwrap();
        let node = node(&[("mode", "linear")]);
        let y = resize(&node, &x, None, Some(&scales), None).unwrap();
        // x_original = (o + 0.5) / 2 - 0.5: -0.25, 0.25, 0.75, 1.25 (edges clamp).
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [0.0, 1.0, 3.0, 4.0]
        );
    }

    #[test]
    fn a_hostile_scale_is_a_named_error_not_an_allocation() {
        let x = Tensor::zeros((1, 1, 1000, 1000), DType::F32, &Device::Cpu).unwrap();
        let scales = Tensor::new(&[1f32, 1.0, 1e5, 1e5], &Device::Cpu).unwrap();
        let err = resize(&node(&[]), &x, None, Some(&scales), None).unwrap_err();
        assert!(err.to_string().contains("elements"), "{err}");
    }

    #[test]
    fn a_shrinking_axis_after_a_growing_one_is_bounded_in_between() {
        let x = Tensor::zeros((1024, 1024), DType::F32, &Device::Cpu).unwrap();
        let scales = Tensor::new(&[1.0f32 / 1024.0, 16384.0], &Device::Cpu).unwrap();
        let err = resize(&node(&[("mode", "linear")]), &x, None, Some(&scales), None).unwrap_err();
        assert!(err.to_string().contains("intermediate"), "{err}");
    }

    #[test]
    fn nearest_ignores_exclude_outside() {
        let x = Tensor::new(&[[1f32, 2.0]], &Device::Cpu).unwrap();
        let scales = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let mut n = node(&[("mode", "nearest"), ("nearest_mode", "ceil")]);
        n.attribute.push(candle_onnx::onnx::AttributeProto {
            name: "exclude_outside".into(),
            i: 1,
            r#type: 2,
            ..Default::default()
        });
        let y = resize(&n, &x, None, Some(&scales), None).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [1.0, 2.0, 2.0, 2.0]
        );
    }

    #[test]
    fn cubic_coefficients_sum_to_one_and_an_integral_coordinate_reads_itself() {
        for r in [0.1, 0.25, 0.5, 0.9, 1.0] {
            let c = cubic_coefficients(r, -0.75);
            assert!((c.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{r}: {c:?}");
        }
        assert_eq!(cubic_coefficients(1.0, -0.75), [0.0, 0.0, 1.0, 0.0]);
        let axis = Axis {
            input: 4,
            output: 4,
            scale: 1.0,
            roi: (0.0, 1.0),
        };
        let Taps::Read(taps) = axis
            .taps(2, "asymmetric", Mode::Cubic, "", -0.75, false)
            .unwrap()
        else {
            panic!("inside")
        };
        assert_eq!(taps, [(0, 0.0), (1, 0.0), (2, 1.0), (3, 0.0)]);
    }
}
