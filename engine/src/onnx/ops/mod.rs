//! Operators the engine computes itself, and the line between them and candle-onnx.
//!
//! Every operator whose output bits depend on how it is computed (matrix products,
//! convolutions, sums, means, variances, softmax, transcendental functions) runs here,
//! through `inferchain-kernels`, which defines its numerics: `matmul.rs` (MatMul, Gemm),
//! `conv.rs` (Conv, ConvTranspose), `activation.rs` (Exp, Log, Tanh, Sigmoid, Erf,
//! Gelu, Elu, Selu, Softplus, HardSigmoid, Pow), `softmax.rs`, `reduce.rs` (ReduceSum,
//! ReduceMean, CumSum), `norm.rs` (Layer-, Instance-, Group-, BatchNormalization, LRN),
//! `pool.rs`. So do operators candle-onnx lacks or gets wrong: N-d and padded pooling,
//! constant and edge `Pad`, channel-wise `PRelu`, the sequence operators, `Sum` and
//! `Mean` (`variadic.rs`), `TopK` (`topk.rs`), `NonMaxSuppression` (`non_max_suppression.rs`), `Resize` in every mode (`resize.rs`), `Einsum` (`einsum.rs`),
//! exact element-wise compositions
//! (`elementwise.rs`), `DepthToSpace` and `SpaceToDepth` (`layout.rs`), the
//! quantized operators (`quantize.rs`), and the `ai.onnx.ml` domain (`ml.rs`, `tree_ensemble.rs`).
//!
//! `movement.rs` runs the common forms of four delegated operators that only move
//! values (`Reshape`, `Transpose`, `Concat`, `Slice`) without building a graph per call.
//!
//! candle-onnx keeps only [`DELEGATED`]: operators that move, select or compare values,
//! or do one exactly rounded IEEE-754 operation per element (add, sub, mul, div, sqrt,
//! min, max, clip, casts): their bits are the same on every CPU whoever computes them.
//! Anything else is refused at load ([`check_supported`]).

mod activation;
mod attrs;
mod conv;
mod dense;
mod einsum;
mod elementwise;
mod layout;
mod matmul;
pub mod ml;
mod movement;
pub mod non_max_suppression;
mod norm;
mod pad;
mod pool;
pub mod quantize;
mod reduce;
mod resize;
mod sequence;
mod softmax;
mod topk;
pub mod tree_ensemble;
mod variadic;
mod window;

pub use activation::{clip_bounds, Fused as FusedActivation};
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::{GraphProto, NodeProto};
pub use conv::pack_conv_weight;
pub use conv::{output_dims as conv_output_dims, ResidualAdd};
pub use einsum::multiply_adds as einsum_multiply_adds;
pub use matmul::pack_weight;
use matmul::RightOperand;

/// Operators candle-onnx runs: each moves, selects or compares values, or does one
/// exactly rounded IEEE-754 operation per element (or an exact composition of them, like
/// `HardSwish`'s `x * clamp((x + 3) / 6, 0, 1)`), so its bits do not depend on the CPU.
/// `If` is delegated when its branches hold only these.
pub const DELEGATED: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "Cast",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Div",
    "Dropout",
    "Equal",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "Greater",
    "GreaterOrEqual",
    "HardSwish",
    "Identity",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Min",
    "Mul",
    "Neg",
    "Not",
    "OneHot",
    "Or",
    "Pad",
    "Range",
    "ReduceMax",
    "ReduceMin",
    "Relu",
    "Reshape",
    "ScatterND",
    "Shape",
    "Sign",
    "Size",
    "Slice",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tile",
    "Transpose",
    "Trilu",
    "Unsqueeze",
    "Where",
    "Xor",
];

/// Operators this module computes (and [`quantize::OPS`]).
pub const OWN: &[&str] = &[
    "MatMul",
    "Gemm",
    "Conv",
    "ConvTranspose",
    "Exp",
    "Log",
    "Tanh",
    "Sigmoid",
    "Erf",
    "Gelu",
    "Elu",
    "Selu",
    "Softplus",
    "HardSigmoid",
    "Pow",
    "Softmax",
    "LogSoftmax",
    "ReduceSum",
    "ReduceMean",
    "CumSum",
    "LayerNormalization",
    "InstanceNormalization",
    "BatchNormalization",
    "MaxPool",
    "AveragePool",
    "GlobalMaxPool",
    "GlobalAveragePool",
    "PRelu",
    "SequenceEmpty",
    "SequenceConstruct",
    "SequenceInsert",
    "SequenceErase",
    "SequenceAt",
    "SequenceLength",
    "SplitToSequence",
    "ConcatFromSequence",
    "LRN",
    "GroupNormalization",
    "Sum",
    "Mean",
    "TopK",
    "NonMaxSuppression",
    "Reciprocal",
    "Softsign",
    "ThresholdedRelu",
    "Round",
    "Resize",
    "Einsum",
    "DepthToSpace",
    "SpaceToDepth",
];

/// The first operator of `graph` (subgraphs included) the engine cannot run under its
/// numerics: not its own, not delegated, or an `If` whose branches hold such an operator.
pub fn check_supported(graph: &GraphProto) -> std::result::Result<(), String> {
    for node in &graph.node {
        let op = node.op_type.as_str();
        if node.domain == ml::DOMAIN {
            if !ml::OPS.contains(&op) {
                return Err(format!("{}.{op}", ml::DOMAIN));
            }
        } else if op == "If" {
            for attr in &node.attribute {
                for g in attr.g.iter().chain(&attr.graphs) {
                    check_delegated_only(g).map_err(|inner| format!("If (with {inner} inside)"))?;
                }
            }
        } else if !OWN.contains(&op) && !DELEGATED.contains(&op) && !quantize::OPS.contains(&op) {
            return Err(op.to_string());
        }
    }
    Ok(())
}

fn check_delegated_only(graph: &GraphProto) -> std::result::Result<(), String> {
    for node in &graph.node {
        let op = node.op_type.as_str();
        if op == "If" {
            for attr in &node.attribute {
                for g in attr.g.iter().chain(&attr.graphs) {
                    check_delegated_only(g)?;
                }
            }
        } else if !DELEGATED.contains(&op) {
            return Err(op.to_string());
        }
    }
    Ok(())
}

/// What a node needs beyond its inputs.
pub struct Context<'a> {
    /// The model's opset for the default domain (attribute forms and defaults).
    pub opset: i64,
    /// Weights packed at load: B of a `MatMul` or `Gemm` whose B is a weight; `Wᵀ` per
    /// group of a `Conv`. Empty when the operand is not a weight.
    pub packed: &'a [inferchain_kernels::PackedB],
    /// A tree ensemble's trees, parsed at load.
    pub trees: Option<&'a tree_ensemble::Ensemble>,
    /// The bounds of a `Clip` fused into this `Conv` (the plan's `fuse_clip`): its output
    /// is then the clamped one.
    pub clip: Option<(f32, f32)>,
    /// A `Relu` or `HardSwish` fused into this `Conv` the same way.
    pub activation: Option<FusedActivation>,
    /// The residual `Add` fused after this `Conv` (the plan's residual chains): its
    /// other operand, of the output's shape, added before `activation` is applied.
    pub residual: Option<ResidualAdd<'a>>,
    /// A bias added per column to this `MatMul`'s packed product: the `Add` that alone
    /// reads its output, fused by the plan (`acc + bias` in the product's last step, the
    /// `Add`'s operation).
    pub bias: Option<&'a [f32]>,
    /// How long an output whose length depends on the data is: the defined one, or the
    /// longest the shapes allow (the cost meter's dry run, `NonMaxSuppression`).
    pub extent: non_max_suppression::Extent,
    /// This step may store its output channels last (`crate::channels_last`): every
    /// reader takes it so, and the run records nothing per step. Where it may not, the
    /// element-wise operators that keep a layout return row-major values, as they always
    /// did (candle's indexing operators refuse strided inputs).
    pub channels_last: bool,
}

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

/// An element-wise result in its input's layout, or row-major where the plan did not let
/// this step store it channels last ([`Context::channels_last`]).
fn layout_as_planned(t: Tensor, ctx: &Context<'_>) -> Result<Tensor> {
    if ctx.channels_last {
        Ok(t)
    } else {
        crate::channels_last::to_row_major(t)
    }
}

/// Runs `node` here if it is ours to run; `None` hands it to candle-onnx (for the
/// [`DELEGATED`] operators only: the plan refuses anything else).
/// `inputs` follows `node.input` (`None` for an omitted optional input).
pub fn run(
    node: &NodeProto,
    inputs: &[Option<&Value>],
    ctx: &Context<'_>,
) -> Option<Result<Vec<Value>>> {
    let inputs = Inputs {
        op: &node.op_type,
        values: inputs,
    };
    if node.domain == ml::DOMAIN {
        return Some(ml::run(node, &inputs, ctx.trees));
    }
    if quantize::OPS.contains(&node.op_type.as_str()) {
        return Some(quantize::run(node, &inputs));
    }
    if let Some(result) = sequence::run(node, &inputs) {
        return Some(result.map(|v| vec![v]));
    }
    let op = node.op_type.as_str();
    let tensor = |i: usize| inputs.tensor(i);
    let required = |i: usize| inputs.required(i);
    if let Some(unary) = activation::unary_of(node) {
        let result = unary
            .and_then(|f| activation::apply(f, required(0)?))
            .and_then(crate::channels_last::to_row_major);
        return Some(result.map(|t| vec![Value::Tensor(t)]));
    }
    let right = |i: usize| -> Result<RightOperand<'_>> {
        Ok(match ctx.packed.first() {
            Some(p) => RightOperand::Packed(p),
            None => RightOperand::Tensor(required(i)?),
        })
    };
    if op == "LayerNormalization" && node.output.iter().skip(1).any(|o| !o.is_empty()) {
        let result = (|| {
            let x = required(0)?;
            let y = norm::layer_norm(node, x, required(1)?, tensor(2)?)?;
            let (mean, inv_std) = norm::layer_norm_stats(node, x)?;
            Ok(vec![y, mean, inv_std])
        })();
        return Some(result.map(|ts| ts.into_iter().map(Value::Tensor).collect()));
    }
    if op == "TopK" {
        let result = (|| {
            let k = if ctx.opset >= 10 {
                Some(required(1)?)
            } else {
                None
            };
            topk::topk(node, required(0)?, k)
        })();
        return Some(result.map(|(v, i)| vec![Value::Tensor(v), Value::Tensor(i)]));
    }
    if let Some(result) = movement::run(node, &inputs, ctx.opset) {
        return Some(result.map(|t| vec![Value::Tensor(t)]));
    }
    let first_is_f32 = inputs
        .tensor(0)
        .ok()
        .flatten()
        .is_some_and(|x| x.dtype() == candle_core::DType::F32);
    let result = match op {
        "Sum" | "Mean" => (|| {
            let all = (0..inputs.len())
                .map(required)
                .collect::<Result<Vec<_>>>()?;
            variadic::fold(op, &all)
        })(),
        _ if elementwise::computes(op) => required(0).and_then(|x| elementwise::apply(node, x)),
        "LRN" => required(0).and_then(|x| norm::lrn(node, x)),
        "GroupNormalization" => {
            (|| norm::group_norm(node, required(0)?, required(1)?, required(2)?, ctx.opset))()
        }
        "Einsum" => (|| {
            let all = (0..inputs.len())
                .map(required)
                .collect::<Result<Vec<_>>>()?;
            einsum::einsum(node, &all)
        })(),
        "Resize" => (|| {
            let x = required(0)?;
            resize::resize(node, ctx.opset, x, tensor(1)?, tensor(2)?, tensor(3)?)
        })(),
        "NonMaxSuppression" => (|| {
            non_max_suppression::non_max_suppression(
                node,
                required(0)?,
                required(1)?,
                [tensor(2)?, tensor(3)?, tensor(4)?],
                ctx.extent,
            )
        })(),
        "DepthToSpace" | "SpaceToDepth" => {
            required(0).and_then(|x| layout::depth_space(node, x, ctx.opset))
        }
        "MatMul" => (|| matmul::matmul(required(0)?, right(1)?, ctx.bias))(),
        "Gemm" => (|| matmul::gemm_node(node, required(0)?, right(1)?, tensor(2)?))(),
        "Pow" => (|| activation::pow(required(0)?, required(1)?))(),
        // Exact either way; candle's broadcasting clamp is slow, so f32 is done here.
        "Clip" if first_is_f32 => (|| activation::clip(required(0)?, tensor(1)?, tensor(2)?))()
            .and_then(|t| layout_as_planned(t, ctx)),
        // The bits candle's operations gave, in one pass that keeps the layout.
        "Relu" if first_is_f32 => required(0)
            .and_then(activation::relu)
            .and_then(|t| layout_as_planned(t, ctx)),
        "HardSwish" if first_is_f32 => required(0)
            .and_then(activation::hard_swish)
            .and_then(|t| layout_as_planned(t, ctx)),
        // Same shape, same dense layout: element by element, keeping the layout.
        "Add"
            if matches!(
                (inputs.tensor(0), inputs.tensor(1)),
                (Ok(Some(a)), Ok(Some(b))) if crate::channels_last::same_dense_layout(a, b)
            ) =>
        {
            (|| elementwise::add(required(0)?, required(1)?))()
                .and_then(|t| layout_as_planned(t, ctx))
        }
        // Broadcasting f32 arithmetic on the kernels' threads (candle's bits); other
        // dtypes and forms go to candle.
        "Add" | "Sub" | "Mul" | "Div" if first_is_f32 && node.attribute.is_empty() => {
            let arithmetic = elementwise::Arithmetic::of(op)?;
            match (|| elementwise::arithmetic(arithmetic, required(0)?, required(1)?))() {
                Ok(Some(t)) => Ok(t),
                Ok(None) => return None,
                Err(e) => Err(e),
            }
        }
        "Softmax" => (|| softmax::softmax(node, required(0)?, ctx.opset, false))(),
        "LogSoftmax" => (|| softmax::softmax(node, required(0)?, ctx.opset, true))(),
        "ReduceSum" => (|| reduce::reduce(node, required(0)?, tensor(1)?, false))(),
        "ReduceMean" => (|| reduce::reduce(node, required(0)?, tensor(1)?, true))(),
        "CumSum" => (|| reduce::cumsum(node, required(0)?, required(1)?))(),
        "MaxPool" => required(0).and_then(|x| pool::max_pool(node, x)),
        "AveragePool" => required(0).and_then(|x| pool::average_pool(node, x)),
        "GlobalMaxPool" => required(0).and_then(|x| pool::global(x, true)),
        "GlobalAveragePool" => required(0).and_then(|x| pool::global(x, false)),
        "Conv" => (|| conv::conv(node, required(0)?, required(1)?, tensor(2)?, ctx))(),
        "ConvTranspose" => {
            (|| conv::conv_transpose(node, required(0)?, required(1)?, tensor(2)?))()
        }
        "Pad" if !pad::candle_handles(node) => {
            (|| pad::pad(node, required(0)?, required(1)?, tensor(2)?, tensor(3)?))()
        }
        "PRelu" => (|| prelu(required(0)?, required(1)?))(),
        "LayerNormalization" => {
            (|| norm::layer_norm(node, required(0)?, required(1)?, tensor(2)?))()
        }
        "InstanceNormalization" => {
            (|| norm::instance_norm(node, required(0)?, required(1)?, required(2)?))()
        }
        "BatchNormalization" => (|| {
            norm::batch_norm(
                node,
                required(0)?,
                required(1)?,
                required(2)?,
                required(3)?,
                required(4)?,
            )
        })(),
        "Unsqueeze" => (|| layout::unsqueeze(node, required(0)?, tensor(1)?))(),
        "Trilu" => (|| layout::trilu(node, required(0)?, tensor(1)?))(),
        "Tile" => (|| layout::tile(required(0)?, required(1)?))(),
        "ReduceMax" | "ReduceMin"
            if layout::reduces_all_by_empty_axes(node, inputs.tensor(1).ok().flatten()) =>
        {
            (|| layout::reduce_extreme_all(node, required(0)?, op == "ReduceMax"))()
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn own_and_delegated_do_not_overlap() {
        for op in OWN {
            assert!(
                !DELEGATED.contains(op),
                "{op} is both computed here and delegated"
            );
        }
    }

    #[test]
    fn numeric_operators_are_never_delegated() {
        for op in [
            "MatMul",
            "Gemm",
            "Conv",
            "Exp",
            "Softmax",
            "ReduceSum",
            "ReduceMean",
            "Erf",
            "Tanh",
            "CumSum",
            "LSTM",
            "Sin",
        ] {
            assert!(!DELEGATED.contains(&op), "{op} must not go to candle");
        }
    }

    /// An element-wise operator keeps a channels-last input's layout only where the plan
    /// lets its step store it so; elsewhere its result is row-major, as it always was
    /// (candle's indexing operators refuse strided inputs).
    #[test]
    fn element_wise_results_are_channels_last_only_where_planned() {
        let stored: Vec<f32> = (0..2 * 3 * 4).map(|i| i as f32 - 11.5).collect();
        let x = crate::channels_last::tensor(stored, &[1, 3, 2, 4]).unwrap();
        assert!(crate::channels_last::is_channels_last(&x));
        let value = Value::Tensor(x.clone());
        for op in ["Relu", "HardSwish", "Clip", "Add", "Sigmoid"] {
            let node = NodeProto {
                op_type: op.into(),
                input: if op == "Add" {
                    vec!["x".into(), "x".into()]
                } else {
                    vec!["x".into()]
                },
                output: vec!["y".into()],
                ..Default::default()
            };
            let inputs: Vec<Option<&Value>> = node.input.iter().map(|_| Some(&value)).collect();
            for planned in [false, true] {
                let ctx = Context {
                    opset: 17,
                    packed: &[],
                    trees: None,
                    clip: None,
                    activation: None,
                    residual: None,
                    bias: None,
                    extent: non_max_suppression::Extent::Exact,
                    channels_last: planned,
                };
                let out = run(&node, &inputs, &ctx).expect("ours").expect("runs");
                let Value::Tensor(y) = &out[0] else {
                    panic!("{op}: a tensor")
                };
                // Sigmoid never keeps the layout: no plan stores its output so.
                let kept = planned && op != "Sigmoid";
                assert_eq!(
                    crate::channels_last::is_channels_last(y),
                    kept,
                    "{op} {planned}"
                );
                assert_eq!(y.is_contiguous(), !kept, "{op} {planned}");
                assert_eq!(y.dims(), x.dims());
            }
        }
    }
}
