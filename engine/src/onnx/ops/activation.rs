//! Element-wise operators whose bits a math library would decide: `Exp`, `Log`, `Tanh`,
//! `Sigmoid`, `Erf`, `Gelu`, `Elu`, `Selu`, `Softplus`, `HardSigmoid` (the kernels'
//! [`Unary`] functions) and `Pow` (the kernels' scalar `pow`), on f32.

use super::attrs;
use crate::{channels_last, numerics};
use candle_core::{bail, DType, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use inferchain_kernels::Unary;

/// The kernel function of an element-wise node, if it is one.
pub fn unary_of(node: &NodeProto) -> Option<Result<Unary>> {
    let f = |name, default| attrs::float(node, name, default);
    Some(Ok(match node.op_type.as_str() {
        "Exp" => Unary::Exp,
        "Log" => Unary::Log,
        "Tanh" => Unary::Tanh,
        "Sigmoid" => Unary::Sigmoid,
        "Erf" => Unary::Erf,
        "Gelu" => match attrs::string(node, "approximate", "none").as_str() {
            "none" => Unary::Gelu,
            "tanh" => Unary::GeluTanh,
            other => {
                return Some(Err(candle_core::Error::Msg(format!(
                    "Gelu: unknown approximate `{other}`"
                ))))
            }
        },
        "Elu" => Unary::Elu {
            alpha: f("alpha", 1.0),
        },
        "Selu" => Unary::Selu {
            alpha: f("alpha", 1.673_263_2),
            gamma: f("gamma", 1.050_701),
        },
        "Softplus" => Unary::Softplus,
        "HardSigmoid" => Unary::HardSigmoid {
            alpha: f("alpha", 0.2),
            beta: f("beta", 0.5),
        },
        _ => return None,
    }))
}

/// Elements per parallel task: large enough to amortise a task, any value gives the
/// same bits (elements are independent).
const CHUNK: usize = 1 << 14;

/// `x`'s f32 values in storage order, each `CHUNK` copied into fresh storage and then
/// transformed in place by `f` on its own task (no pass over memory on the calling
/// thread): an element-wise result keeps its input's layout
/// (`crate::channels_last::tensor_like` gives it back).
fn mapped_in_layout(op: &str, x: &Tensor, f: impl Fn(&mut [f32]) + Sync) -> Result<Vec<f32>> {
    let map = |xs: &[f32]| {
        numerics::written_on_threads(xs.len(), CHUNK, |i, part| {
            let len = part.len();
            let mut copy = numerics::Filling::new(part);
            copy.put(&xs[i * CHUNK..][..len]);
            let values = copy.done();
            f(values);
            values
        })
    };
    match channels_last::with_dense(x, map) {
        Some(values) => Ok(values),
        None => numerics::with_f32(op, x, map),
    }
}

/// `op` applied to every element of `x`.
pub fn apply(op: Unary, x: &Tensor) -> Result<Tensor> {
    let isa = numerics::isa();
    let out = mapped_in_layout(&format!("{op:?}"), x, |chunk| {
        inferchain_kernels::unary_in_place(isa, op, chunk)
    })?;
    channels_last::tensor_like(out, x)
}

/// `HardSwish(x)` on f32, as the same sequence of IEEE-754 operations candle's
/// `x * hard_sigmoid(x)` was when it ran this operator (so registered models keep their
/// bits): `s = (x · 1 + 3) · f32(1/6) + 0`, then `s < 0 ? 0 : s`, then `s > 1 ? 1 : s`
/// (a NaN passes both), then `x · s`; each operation rounded once.
pub fn hard_swish(x: &Tensor) -> Result<Tensor> {
    let out = mapped_in_layout("HardSwish", x, |c| Fused::HardSwish.apply(c))?;
    channels_last::tensor_like(out, x)
}

/// `Relu(x)` on f32: `x > 0 ? x : +0`. A NaN gives +0, as candle's `max(x, 0)` (IEEE
/// maxNum) did when it ran this operator, and −0 gives +0 on every CPU (maxNum leaves
/// the sign of a zero open).
pub fn relu(x: &Tensor) -> Result<Tensor> {
    let out = mapped_in_layout("Relu", x, |c| Fused::Relu.apply(c))?;
    channels_last::tensor_like(out, x)
}

/// An activation the plan fuses into the `Conv` whose output only it reads (in a run
/// that records nothing per step): applied to the convolution's values before they
/// become a tensor, by the operator's own per-element operations ([`relu`],
/// [`hard_swish`]), so the bits are the unfused ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fused {
    Relu,
    HardSwish,
}

impl Fused {
    /// The activation a node of type `op` (default domain) computes, if fusable.
    pub fn of(op: &str) -> Option<Fused> {
        match op {
            "Relu" => Some(Fused::Relu),
            "HardSwish" => Some(Fused::HardSwish),
            _ => None,
        }
    }

    /// Every value replaced by the activation of it.
    pub fn apply(self, values: &mut [f32]) {
        const SIXTH: f32 = (1.0f64 / 6.0) as f32;
        match self {
            Fused::Relu => values
                .iter_mut()
                .for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 }),
            Fused::HardSwish => values.iter_mut().for_each(|v| {
                let s = (*v * 1.0 + 3.0) * SIXTH + 0.0;
                let s = if s < 0.0 { 0.0 } else { s };
                let s = if s > 1.0 { 1.0 } else { s };
                *v *= s;
            }),
        }
    }
}

/// `Pow(X, Y)`, numpy broadcasting; the result has X's dtype (f32). An integer exponent
/// tensor is taken as f32 (exactly, for the exponents where it matters).
pub fn pow(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    if x.dtype() != DType::F32 {
        bail!(
            "Pow: {:?} base; the engine's kernels compute in f32",
            x.dtype()
        )
    }
    let y = if y.dtype() == DType::F32 {
        y.clone()
    } else {
        y.to_dtype(DType::F32)?
    };
    let shape = x.shape().broadcast_shape_binary_op(y.shape(), "Pow")?;
    let xs = numerics::to_f32_vec("Pow", &x.broadcast_as(&shape)?)?;
    let ys = numerics::to_f32_vec("Pow", &y.broadcast_as(&shape)?)?;
    let mut out = vec![0f32; xs.len()];
    inferchain_kernels::pow(&xs, &ys, &mut out);
    numerics::tensor(out, shape)
}

/// `Clip(x, min?, max?)` on f32: `x < min ? min : x`, then `> max ? max : …` (NaN stays
/// NaN). Exact: it selects, it does not round.
pub fn clip(x: &Tensor, min: Option<&Tensor>, max: Option<&Tensor>) -> Result<Tensor> {
    let bounds = clip_bounds(min, max)?;
    let out = mapped_in_layout("Clip", x, |c| inferchain_kernels::clamp_slice(c, bounds))?;
    channels_last::tensor_like(out, x)
}

/// `Clip`'s bounds from its optional `min` and `max` inputs (absent: unbounded).
pub fn clip_bounds(min: Option<&Tensor>, max: Option<&Tensor>) -> Result<(f32, f32)> {
    let bound = |t: Option<&Tensor>, default: f32| -> Result<f32> {
        match t {
            Some(t) => Ok(t
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?
                .first()
                .copied()
                .unwrap_or(default)),
            None => Ok(default),
        }
    };
    Ok((bound(min, f32::NEG_INFINITY)?, bound(max, f32::INFINITY)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use super::*;
    use candle_core::Device;

    /// Values around every threshold of the operators below, the specials, and a sweep.
    fn edge_values() -> Vec<f32> {
        let mut v = vec![
            0.0,
            -0.0,
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            1e-45,
            -1e-45,
            3.0,
            -3.0,
            f32::MAX,
            f32::MIN,
        ];
        for t in [-3.0f32, 3.0, 0.0] {
            let mut up = t;
            let mut down = t;
            for _ in 0..8 {
                up = f32::from_bits(if up >= 0.0 {
                    up.to_bits() + 1
                } else {
                    up.to_bits() - 1
                });
                down = f32::from_bits(if down > 0.0 {
                    down.to_bits() - 1
                } else {
                    (-down.abs()).to_bits() + 1
                });
                v.extend([up, down]);
            }
        }
        v.extend((0..4000).map(|i| (i as f32 - 2000.0) * 0.00371));
        v
    }

    /// `t`'s f32 bits, every NaN as one canonical NaN (outputs are canonicalised).
    pub(in crate::onnx::ops) fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() })
            .collect()
    }

    /// The engine's HardSwish and Relu give the bits candle's operations gave when
    /// candle-onnx ran them (NaNs compared as NaN), in either layout.
    #[test]
    fn hard_swish_and_relu_keep_candles_bits() {
        let values = edge_values();
        let n = values.len();
        let x = Tensor::from_vec(values, (1, n), &Device::Cpu).unwrap();
        // candle_nn's `hard_sigmoid`, spelled out: ((x + 3) / 6).clamp(0, 1), then x · it.
        let sigmoid = ((&x + 3.0).unwrap() / 6.0)
            .unwrap()
            .clamp(0f32, 1f32)
            .unwrap();
        let candle_swish = (&x * &sigmoid).unwrap();
        assert_eq!(bits(&hard_swish(&x).unwrap()), bits(&candle_swish));
        let candle_relu = x.relu().unwrap();
        let relu_bits = bits(&relu(&x).unwrap());
        assert_eq!(relu_bits, bits(&candle_relu));
        // −0 and NaN give +0.
        assert_eq!(&relu_bits[..4], &[0, 0, 0, 0]);
        // Channels last in, channels last out, the same logical values.
        let stored: Vec<f32> = (0..2 * 5 * 6).map(|i| i as f32 * 0.37 - 11.0).collect();
        let t = channels_last::tensor(stored, &[2, 5, 2, 3]).unwrap();
        let row_major = t.contiguous().unwrap();
        for (got, want) in [
            (hard_swish(&t).unwrap(), hard_swish(&row_major).unwrap()),
            (relu(&t).unwrap(), relu(&row_major).unwrap()),
            (
                clip(&t, None, Some(&Tensor::new(1.5f32, &Device::Cpu).unwrap())).unwrap(),
                clip(
                    &row_major,
                    None,
                    Some(&Tensor::new(1.5f32, &Device::Cpu).unwrap()),
                )
                .unwrap(),
            ),
        ] {
            assert!(channels_last::is_channels_last(&got));
            assert_eq!(bits(&got), bits(&want));
        }
    }
}
