//! `Resize` (opsets 11 to 19) in every mode the spec defines: `nearest` (each
//! `nearest_mode`), `linear` and `cubic` (`cubic_coeff_a`, `exclude_outside`), under every
//! `coordinate_transformation_mode` (`half_pixel`, `half_pixel_symmetric`,
//! `pytorch_half_pixel`, `align_corners`, `asymmetric`, opset 11's
//! `tf_half_pixel_for_nn`, `tf_crop_and_resize` with its
//! `roi` and `extrapolation_value`), sized by `scales` or `sizes`, over all axes or the
//! `axes` listed (opset 18), with `antialias` (opset 18: linear and cubic filters stretched
//! by `1 / scale` when downsampling, as the reference's `_linear_coeffs_antialias` and
//! `_cubic_coeffs_antialias` define them, every coefficient divided by their sum).
//! Antialiased `nearest` is refused at load (`super::super::op_versions`).
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

/// The most (input index, coefficient) pairs one axis's plan may hold: an antialiased
/// filter reads `~2 / scale` neighbours per output index.
const MAX_AXIS_TAPS: usize = 1 << 28;

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
    opset: i64,
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
    // The spec forbids repeating an axis (`-1` and `rank - 1` are one axis).
    if let Some((i, &a)) = axes
        .iter()
        .enumerate()
        .find(|(i, a)| axes[..*i].contains(a))
    {
        bail!("{op}: axis {a} is listed twice in `axes` (at {i})")
    }
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
    // The attribute exists from opset 18; nearest with it is refused at load.
    let antialias = opset >= 18 && mode != Mode::Nearest && attrs::int(node, "antialias", 0) != 0;
    // Only cubic's weights, and antialiased linear ones, reach outside the input
    // (onnxruntime ignores it for plain linear; for nearest, zeroing both weights would
    // read index 0).
    let reaches_outside = mode == Mode::Cubic || (mode == Mode::Linear && antialias);
    let exclude_outside = reaches_outside && attrs::int(node, "exclude_outside", 0) != 0;
    let extrapolation = f64::from(attrs::float(node, "extrapolation_value", 0.0));
    let mut plan: Vec<Option<Vec<Taps>>> = Vec::with_capacity(rank);
    for a in 0..rank {
        if out_dims[a] == dims[a] && scale[a] == 1.0 && coordinates != "tf_crop_and_resize" {
            // Every mode maps an unscaled axis onto itself.
            plan.push(None);
            continue;
        }
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
        let filter = if antialias {
            Filter::Antialiased(scale[a])
        } else {
            Filter::Plain
        };
        let axis = Axis {
            input: dims[a],
            output: out_dims[a],
            scale: scale[a],
            roi: roi[a],
            filter,
        };
        let width = filter.taps(mode);
        if width.saturating_mul(out_dims[a]) > MAX_AXIS_TAPS {
            bail!(
                "{op}: an antialiased filter of {width} taps for {} outputs along axis {a} \
                 is over {MAX_AXIS_TAPS}",
                out_dims[a]
            )
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

/// Which coefficients linear and cubic interpolation take.
#[derive(Clone, Copy)]
enum Filter {
    /// Two (linear) or four (cubic) neighbours.
    Plain,
    /// Stretched by `1 / min(scale, 1)` (the scale given), normalized to sum to one.
    Antialiased(f64),
}

impl Filter {
    /// The first neighbour's offset from the coordinate's floor (`start` in the
    /// reference), for a filter reaching `support` input steps at scale 1.
    fn start(support: f64, scale: f64) -> i64 {
        (-support / scale.min(1.0)).floor() as i64 + 1
    }

    /// How many neighbours each output index reads.
    fn taps(self, mode: Mode) -> usize {
        let support = match mode {
            Mode::Nearest | Mode::Linear => 1.0,
            Mode::Cubic => 2.0,
        };
        match self {
            Filter::Plain => 2 * support as usize,
            Filter::Antialiased(scale) => (2 - 2 * Filter::start(support, scale)) as usize,
        }
    }
}

/// The reference's `_linear_coeffs_antialias`: a triangle stretched by `1 / scale`.
fn linear_antialiased(ratio: f64, scale: f64) -> Vec<f64> {
    let scale = scale.min(1.0);
    let start = Filter::start(1.0, scale);
    let coefficients = (start..2 - start)
        .map(|i| (1.0 - ((i as f64 - ratio) * scale).abs()).clamp(0.0, 1.0))
        .collect();
    normalized(coefficients)
}

/// The reference's `_cubic_coeffs_antialias`: Keys' kernel stretched by `1 / scale`.
fn cubic_antialiased(ratio: f64, scale: f64, a: f64) -> Vec<f64> {
    let scale = scale.min(1.0);
    let start = Filter::start(2.0, scale);
    let kernel = |x: f64| {
        let x = x.abs();
        let x2 = x * x;
        let x3 = x * x2;
        if x <= 1.0 {
            (a + 2.0) * x3 - (a + 3.0) * x2 + 1.0
        } else if x < 2.0 {
            a * x3 - 5.0 * a * x2 + 8.0 * a * x - 4.0 * a
        } else {
            0.0
        }
    };
    let coefficients = (start..2 - start)
        .map(|i| kernel(scale * (i as f64 - ratio)))
        .collect();
    normalized(coefficients)
}

/// Each coefficient divided by their sum (summed in order from +0, as Python's `sum`).
fn normalized(mut coefficients: Vec<f64>) -> Vec<f64> {
    let total = coefficients.iter().fold(0.0f64, |s, &c| s + c);
    coefficients.iter_mut().for_each(|c| *c /= total);
    coefficients
}

/// One axis's geometry.
struct Axis {
    input: usize,
    output: usize,
    scale: f64,
    roi: (f64, f64),
    filter: Filter,
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
            Mode::Linear => match self.filter {
                Filter::Plain => vec![1.0 - ratio, ratio],
                Filter::Antialiased(scale) => linear_antialiased(ratio, scale),
            },
            Mode::Cubic => match self.filter {
                Filter::Plain => cubic_coefficients(ratio, cubic_a).to_vec(),
                Filter::Antialiased(scale) => cubic_antialiased(ratio, scale, cubic_a),
            },
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
            let y = resize(&node, 19, &x, None, None, Some(&sizes)).unwrap();
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
        let y = resize(&node, 19, &x, None, Some(&scales), None).unwrap();
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
        let err = resize(&node(&[]), 19, &x, None, Some(&scales), None).unwrap_err();
        assert!(err.to_string().contains("elements"), "{err}");
    }

    #[test]
    fn a_shrinking_axis_after_a_growing_one_is_bounded_in_between() {
        let x = Tensor::zeros((1024, 1024), DType::F32, &Device::Cpu).unwrap();
        let scales = Tensor::new(&[1.0f32 / 1024.0, 16384.0], &Device::Cpu).unwrap();
        let err = resize(
            &node(&[("mode", "linear")]),
            19,
            &x,
            None,
            Some(&scales),
            None,
        )
        .unwrap_err();
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
        let y = resize(&n, 19, &x, None, Some(&scales), None).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [1.0, 2.0, 2.0, 2.0]
        );
    }

    fn antialiased(mode: &str) -> NodeProto {
        let mut n = node(&[("mode", mode)]);
        n.attribute.push(candle_onnx::onnx::AttributeProto {
            name: "antialias".into(),
            i: 1,
            r#type: 2,
            ..Default::default()
        });
        n
    }

    /// Bits from the onnx reference in setup's venv (`ReferenceEvaluator`, opset 18) for
    /// `x = arange(16) ** 1.5` as 4×4, scales 0.6 on both axes.
    #[test]
    fn antialiased_downsampling_gives_the_references_bits() {
        let x = Tensor::from_vec(
            (0..16).map(|i| (i as f32).powf(1.5)).collect::<Vec<_>>(),
            (1, 1, 4, 4),
            &Device::Cpu,
        )
        .unwrap();
        let scales = Tensor::new(&[1f32, 1.0, 0.6, 0.6], &Device::Cpu).unwrap();
        for (mode, want) in [
            (
                "linear",
                [0x406b9f80u32, 0x40ec2587, 0x41c9a1ec, 0x42021df4],
            ),
            ("cubic", [0x400809f7, 0x40c16a0a, 0x41cb3648, 0x420672fa]),
        ] {
            let n = antialiased(mode);
            let y = resize(&n, 18, &x, None, Some(&scales), None).unwrap();
            assert_eq!(y.dims(), &[1, 1, 2, 2]);
            let got: Vec<u32> = y
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            // Linear: within one unit in the last place (this reference interpolates the
            // axes first to last, the engine, as the reference it was written against,
            // last to first). Cubic: within 2e-5, because this reference evaluates
            // Keys' kernel in float32 (its `cubic_coeff_a` is a NumPy float32, which
            // NumPy 2 keeps narrow); the engine keeps binary64 throughout.
            for (g, w) in got.iter().zip(want) {
                let (g, w) = (f32::from_bits(*g), f32::from_bits(w));
                let close = match mode {
                    "linear" => g.to_bits().abs_diff(w.to_bits()) <= 1,
                    _ => ((g - w) / w).abs() <= 2e-5,
                };
                assert!(close, "{mode}: {got:x?} against {want:x?}");
            }
            // Before opset 18 the attribute does not exist: plain interpolation.
            let plain = resize(&n, 13, &x, None, Some(&scales), None).unwrap();
            assert_ne!(
                plain.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0].to_bits(),
                want[0]
            );
        }
        // Upsampling keeps the plain filter's width; a tiny scale's filter is bounded.
        assert_eq!(Filter::Antialiased(2.0).taps(Mode::Linear), 2);
        assert_eq!(Filter::Antialiased(2.0).taps(Mode::Cubic), 4);
        assert_eq!(Filter::Antialiased(0.25).taps(Mode::Linear), 8);
        let long = Tensor::zeros((1, 1, 1, 1 << 20), DType::F32, &Device::Cpu).unwrap();
        let tiny = Tensor::new(&[1f32, 1.0, 1.0, 1e-6], &Device::Cpu).unwrap();
        let n = antialiased("linear");
        let y = resize(&n, 18, &long, None, Some(&tiny), None).unwrap();
        assert_eq!(y.dims(), &[1, 1, 1, 1]);
    }

    #[test]
    fn an_axis_listed_twice_is_refused() {
        let x = Tensor::zeros((1, 1, 4, 4), DType::F32, &Device::Cpu).unwrap();
        let mut n = node(&[("mode", "linear")]);
        n.attribute.push(candle_onnx::onnx::AttributeProto {
            name: "axes".into(),
            ints: vec![3, -1],
            r#type: 7,
            ..Default::default()
        });
        let scales = Tensor::new(&[2f32, 0.5], &Device::Cpu).unwrap();
        let err = resize(&n, 18, &x, None, Some(&scales), None).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
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
            filter: Filter::Plain,
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
