//! Operators the engine computes itself, for what candle-onnx lacks or gets wrong:
//! N-d and padded pooling, 3-D convolution, `ConvTranspose`, constant/edge `Pad`,
//! channel-wise `PRelu`, `ReduceSum` with attribute or negative axes,
//! `InstanceNormalization`, `LayerNormalization`, global pooling and the sequence
//! operators.
//!
//! [`run`] answers `None` for a node candle-onnx runs as it is; the plan then hands the
//! node to candle-onnx. The code here uses fixed-order plain loops or candle's own
//! kernels, never anything whose bits depend on the CPU or the thread count.

mod attrs;
mod conv;
mod dense;
mod norm;
mod pad;
mod pool;
mod sequence;
mod window;

use candle_core::{bail, DType, Result, Tensor};
use candle_onnx::onnx::NodeProto;

/// A value inside a graph: a tensor, or a sequence of tensors.
#[derive(Debug, Clone)]
pub enum Value {
    Tensor(Tensor),
    Sequence(Vec<Tensor>),
}

/// A node's inputs by position, read with errors that name the operator.
pub struct Inputs<'a> {
    op: &'a str,
    values: &'a [Option<&'a Value>],
}

impl<'a> Inputs<'a> {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    fn value(&self, i: usize) -> Option<&'a Value> {
        self.values.get(i).copied().flatten()
    }

    /// Input `i` as a tensor; `None` when it is omitted.
    pub fn tensor(&self, i: usize) -> Result<Option<&'a Tensor>> {
        match self.value(i) {
            Some(Value::Tensor(t)) => Ok(Some(t)),
            Some(Value::Sequence(_)) => {
                bail!("{}: input {i} is a sequence, expected a tensor", self.op)
            }
            None => Ok(None),
        }
    }

    /// Input `i` as a tensor that must be there.
    pub fn required(&self, i: usize) -> Result<&'a Tensor> {
        match self.tensor(i)? {
            Some(t) => Ok(t),
            None => bail!("{}: input {i} is missing", self.op),
        }
    }

    /// Input `i` as a sequence that must be there.
    pub fn sequence(&self, i: usize) -> Result<&'a Vec<Tensor>> {
        match self.value(i) {
            Some(Value::Sequence(s)) => Ok(s),
            Some(Value::Tensor(_)) => {
                bail!("{}: input {i} is a tensor, expected a sequence", self.op)
            }
            None => bail!("{}: input {i} is missing", self.op),
        }
    }
}

/// Runs `node` here if it is ours to run; `None` hands it to candle-onnx.
/// `inputs` follows `node.input` (`None` for an omitted optional input).
pub fn run(node: &NodeProto, inputs: &[Option<&Value>]) -> Option<Result<Vec<Value>>> {
    let inputs = Inputs {
        op: &node.op_type,
        values: inputs,
    };
    if let Some(result) = sequence::run(node, &inputs) {
        return Some(result.map(|v| vec![v]));
    }
    let op = node.op_type.as_str();
    let tensor = |i: usize| inputs.tensor(i);
    let required = |i: usize| inputs.required(i);
    let result = match op {
        "MaxPool" if !pool::candle_handles(node) => {
            required(0).and_then(|x| pool::max_pool(node, x))
        }
        "AveragePool" if !pool::candle_handles(node) => {
            required(0).and_then(|x| pool::average_pool(node, x))
        }
        "GlobalMaxPool" => required(0).and_then(|x| pool::global(x, true)),
        "GlobalAveragePool" => required(0).and_then(|x| pool::global(x, false)),
        "Conv" => {
            let w = match required(1) {
                Ok(w) => w,
                Err(e) => return Some(Err(e)),
            };
            let x = match required(0) {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            if conv::takes_gemm_path(node, x, w) {
                (|| conv::conv2d_gemm(node, x, w, tensor(2)?))()
            } else if conv::candle_handles(node, w) {
                return None;
            } else {
                (|| conv::conv(node, x, w, tensor(2)?))()
            }
        }
        "ConvTranspose" => {
            (|| conv::conv_transpose(node, required(0)?, required(1)?, tensor(2)?))()
        }
        "Pad" if !pad::candle_handles(node) => {
            (|| pad::pad(node, required(0)?, required(1)?, tensor(2)?, tensor(3)?))()
        }
        "PRelu" => (|| prelu(required(0)?, required(1)?))(),
        "ReduceSum" => (|| reduce_sum(node, required(0)?, tensor(1)?))(),
        "LayerNormalization" => {
            (|| norm::layer_norm(node, required(0)?, required(1)?, tensor(2)?))()
        }
        "InstanceNormalization" => {
            (|| norm::instance_norm(node, required(0)?, required(1)?, required(2)?))()
        }
        _ => return None,
    };
    Some(result.map(|t| vec![Value::Tensor(t)]))
}

/// `PRelu(x, slope)`: `x < 0 ? x * slope : x`. The slope broadcasts to `x` (numpy
/// rules); a 1-D slope of one value per channel (dimension 1), as opset 6 and PyTorch
/// exports write it, is laid along the channel axis.
fn prelu(x: &Tensor, slope: &Tensor) -> Result<Tensor> {
    let channel_wise = slope.rank() == 1
        && x.rank() > 2
        && slope.dim(0)? == x.dim(1)?
        && slope.dim(0)? != x.dim(x.rank() - 1)?;
    let slope = if channel_wise {
        let mut dims = vec![1usize; x.rank() - 1];
        dims[0] = slope.dim(0)?;
        slope.reshape(dims)?
    } else {
        slope.clone()
    };
    let scaled = x.broadcast_mul(&slope)?;
    let x = x.broadcast_as(scaled.shape())?;
    let negative = x.lt(&x.zeros_like()?)?;
    negative.where_cond(&scaled, &x)
}

/// `ReduceSum(data, axes?)` (opset 13+) or with an `axes` attribute (before); negative
/// axes count from the end; `noop_with_empty_axes`.
fn reduce_sum(node: &NodeProto, x: &Tensor, axes: Option<&Tensor>) -> Result<Tensor> {
    let listed: Option<Vec<i64>> = match axes {
        Some(a) => Some(a.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?),
        None => attrs::ints(node, "axes").map(<[i64]>::to_vec),
    };
    let rank = x.rank();
    let mut axes: Vec<usize> = match listed {
        Some(v) if !v.is_empty() => v
            .into_iter()
            .map(|a| attrs::axis("ReduceSum", a, rank))
            .collect::<Result<_>>()?,
        _ if attrs::int(node, "noop_with_empty_axes", 0) != 0 => return Ok(x.clone()),
        _ => (0..rank).collect(),
    };
    axes.sort_unstable();
    axes.dedup();
    let mut y = x.sum_keepdim(axes.clone())?;
    if attrs::int(node, "keepdims", 1) == 0 {
        for &axis in axes.iter().rev() {
            y = y.squeeze(axis)?;
        }
    }
    Ok(y)
}
