//! Element-wise operators whose bits a math library would decide: `Exp`, `Log`, `Tanh`,
//! `Sigmoid`, `Erf`, `Gelu`, `Elu`, `Selu`, `Softplus`, `HardSigmoid` (the kernels'
//! [`Unary`] functions) and `Pow` (the kernels' scalar `pow`), on f32.

use super::attrs;
use crate::{channels_last, numerics};
use candle_core::{bail, DType, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use inferchain_kernels::Unary;
use rayon::prelude::*;

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

/// `x`'s f32 values in storage order, as a new vector, and the layout they have
/// (`crate::channels_last`): an element-wise result keeps its input's layout.
fn values_in_layout(op: &str, x: &Tensor) -> Result<(Vec<f32>, bool)> {
    match channels_last::with_dense(x, <[f32]>::to_vec) {
        Some(values) => Ok((values, channels_last::is_channels_last(x))),
        None => Ok((numerics::to_f32_vec(op, x)?, false)),
    }
}

/// `values` (from [`values_in_layout`]) as a tensor of `x`'s shape.
fn in_layout(values: Vec<f32>, x: &Tensor, channels_last: bool) -> Result<Tensor> {
    if channels_last {
        channels_last::tensor(values, x.dims())
    } else {
        numerics::tensor(values, x.dims())
    }
}

/// `op` applied to every element of `x`.
pub fn apply(op: Unary, x: &Tensor) -> Result<Tensor> {
    let isa = numerics::isa();
    let (mut out, layout) = values_in_layout(&format!("{op:?}"), x)?;
    out.par_chunks_mut(CHUNK)
        .for_each(|chunk| inferchain_kernels::unary_in_place(isa, op, chunk));
    in_layout(out, x, layout)
}

/// `Relu(x)` on f32: `x > 0 ? x : +0`. A NaN gives +0, as candle's `max(x, 0)` (IEEE
/// maxNum) did when it ran this operator, and −0 gives +0 on every CPU (maxNum leaves
/// the sign of a zero open).
pub fn relu(x: &Tensor) -> Result<Tensor> {
    let (mut out, layout) = values_in_layout("Relu", x)?;
    out.par_chunks_mut(CHUNK).for_each(|c| {
        c.iter_mut()
            .for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 })
    });
    in_layout(out, x, layout)
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
    let (mut out, layout) = values_in_layout("Clip", x)?;
    out.par_chunks_mut(CHUNK)
        .for_each(|c| inferchain_kernels::clamp_slice(c, bounds));
    in_layout(out, x, layout)
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
