//! Quantized operators, as CPU deployments ship models (onnxruntime's quantizer writes
//! both forms): the QDQ form (`QuantizeLinear` / `DequantizeLinear` around float
//! operators), the operator form (`QLinearMatMul`, `QLinearConv`), dynamic quantization
//! (`DynamicQuantizeLinear`, `MatMulInteger`, `ConvInteger`). Their numerics are
//! `inferchain_kernels::quantize`'s: integer products, one rounding to nearest-even per
//! element, saturation. Integers are exact, so these agree with onnxruntime to the bit
//! wherever onnxruntime's own float steps are the same (tested on the zoo's quantized
//! models).
//!
//! Quantized values are held as candle holds the types: `uint8` as `U8`, every other
//! integer type as `I64`. The type a node quantizes *to* (uint8, int8, uint16, int16)
//! decides its range, and an `I64` tensor no longer says which it was: [`annotate`] reads
//! it at load, before the tensors are canonicalized, from the node's `output_dtype` or its
//! output zero point's declared type, and writes it on the node as [`OUTPUT_TYPE`].
//! Float8, int4 and the other types are refused there, by name.
//!
//! Scales and zero points are per tensor (one value), per axis (one per index of `axis`)
//! or, from opset 21, per block of `block_size` along `axis`; the matrix products take
//! them per row of A and per column of B, the convolutions per output channel of W.

use super::{attrs, window::Window, Inputs, Value};
use crate::kernel_threads;
use candle_core::{bail, DType, Device, Result, Tensor};
use candle_onnx::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataType, type_proto, AttributeProto, GraphProto,
    NodeProto,
};
use inferchain_kernels::quantize::{self as q, QRange};
use std::collections::HashMap;

/// The operators of this module.
pub const OPS: &[&str] = &[
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "QLinearMatMul",
    "ConvInteger",
    "QLinearConv",
];

/// The most scratch values (tap table entries, im2col values) one integer convolution
/// builds.
const MAX_SCRATCH: usize = 1 << 26;

/// The attribute [`annotate`] writes: the ONNX element type a node's output is quantized to.
pub const OUTPUT_TYPE: &str = "inferchain.quantized_type";

/// The operators whose output type [`annotate`] records, with the input holding their
/// output zero point.
fn output_zero_point(op: &str) -> Option<usize> {
    match op {
        "QuantizeLinear" => Some(2),
        "QLinearMatMul" | "QLinearConv" => Some(7),
        _ => None,
    }
}

/// The range and candle type of an ONNX quantized element type, if the engine has it.
fn range_of(data_type: i32) -> Option<(QRange, DType)> {
    match DataType::try_from(data_type).ok()? {
        DataType::Uint8 => Some((QRange::U8, DType::U8)),
        DataType::Int8 => Some((QRange::I8, DType::I64)),
        DataType::Uint16 => Some((QRange::U16, DType::I64)),
        DataType::Int16 => Some((QRange::I16, DType::I64)),
        _ => None,
    }
}

fn type_name(data_type: i32) -> String {
    DataType::try_from(data_type)
        .map(|t| t.as_str_name().to_lowercase())
        .unwrap_or_else(|_| format!("type {data_type}"))
}

/// Records on every quantizing node of `graph` the type it quantizes to ([`OUTPUT_TYPE`]);
/// run before the tensors are canonicalized (which widens int8 to int64). `Err` names
/// the first node whose type is not one the engine quantizes to, or cannot be known.
pub fn annotate(graph: &mut GraphProto) -> std::result::Result<(), String> {
    // The attribute is the engine's own: one written by the model's author is dropped.
    for node in &mut graph.node {
        node.attribute.retain(|a| a.name != OUTPUT_TYPE);
    }
    let mut types: HashMap<String, i32> = HashMap::new();
    for t in &graph.initializer {
        types.insert(t.name.clone(), t.data_type);
    }
    for s in &graph.sparse_initializer {
        if let Some(v) = &s.values {
            types.insert(v.name.clone(), v.data_type);
        }
    }
    for info in graph.input.iter().chain(&graph.value_info) {
        if let Some(type_proto::Value::TensorType(t)) =
            info.r#type.as_ref().and_then(|t| t.value.as_ref())
        {
            types.entry(info.name.clone()).or_insert(t.elem_type);
        }
    }
    for node in &mut graph.node {
        let op = node.op_type.as_str();
        let default_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        if default_domain && op == "Constant" {
            let declared = node.attribute.iter().find_map(|a| match a.name.as_str() {
                "value" => a.t.as_ref().map(|t| t.data_type),
                "sparse_value" => a
                    .sparse_tensor
                    .as_ref()
                    .and_then(|s| s.values.as_ref())
                    .map(|v| v.data_type),
                "value_int" | "value_ints" => Some(DataType::Int64 as i32),
                "value_float" | "value_floats" => Some(DataType::Float as i32),
                _ => None,
            });
            if let (Some(out), Some(t)) = (node.output.first(), declared) {
                types.insert(out.clone(), t);
            }
            continue;
        }
        if !default_domain {
            continue;
        }
        if op == "Cast" {
            if let Some(out) = node.output.first() {
                types.insert(out.clone(), attrs::int(node, "to", 0) as i32);
            }
            continue;
        }
        if op == "DynamicQuantizeLinear" {
            for (i, out) in node.output.iter().enumerate() {
                let t = if i == 1 {
                    DataType::Float
                } else {
                    DataType::Uint8
                };
                types.insert(out.clone(), t as i32);
            }
            continue;
        }
        let Some(zero_point) = output_zero_point(op) else {
            continue;
        };
        let explicit = attrs::int(node, "output_dtype", 0) as i32;
        let declared = node
            .input
            .get(zero_point)
            .filter(|n| !n.is_empty())
            .map(|n| types.get(n).copied());
        let data_type = match (explicit, declared) {
            (0, None) if op == "QuantizeLinear" => DataType::Uint8 as i32,
            (0, Some(Some(t))) => t,
            (0, _) => {
                return Err(format!(
                    "{op} (its output zero point `{}` has no declared type)",
                    node.input.get(zero_point).cloned().unwrap_or_default()
                ))
            }
            (t, Some(Some(z))) if t != z => {
                return Err(format!(
                    "{op} (output_dtype {} but a zero point of {})",
                    type_name(t),
                    type_name(z)
                ))
            }
            (t, _) => t,
        };
        if range_of(data_type).is_none() {
            return Err(format!("{op} to {}", type_name(data_type)));
        }
        if let Some(out) = node.output.first() {
            types.insert(out.clone(), data_type);
        }
        node.attribute.retain(|a| a.name != OUTPUT_TYPE);
        node.attribute.push(AttributeProto {
            name: OUTPUT_TYPE.into(),
            r#type: AttributeType::Int as i32,
            i: i64::from(data_type),
            ..Default::default()
        });
    }
    Ok(())
}

/// Runs one of [`OPS`].
pub fn run(node: &NodeProto, inputs: &Inputs<'_>) -> Result<Vec<Value>> {
    let op = node.op_type.as_str();
    let required = |i: usize| inputs.required(i);
    let optional = |i: usize| inputs.tensor(i);
    let tensors = match op {
        "QuantizeLinear" => vec![quantize_linear(
            node,
            required(0)?,
            required(1)?,
            optional(2)?,
        )?],
        "DequantizeLinear" => vec![dequantize_linear(
            node,
            required(0)?,
            required(1)?,
            optional(2)?,
        )?],
        "DynamicQuantizeLinear" => dynamic_quantize_linear(required(0)?)?,
        "MatMulInteger" => {
            let a = Operand::new(op, required(0)?, optional(2)?, None)?;
            let b = Operand::new(op, required(1)?, optional(3)?, None)?;
            vec![matmul(op, a, b, None)?]
        }
        "QLinearMatMul" => {
            let a = Operand::new(op, required(0)?, Some(required(2)?), Some(required(1)?))?;
            let b = Operand::new(op, required(3)?, Some(required(5)?), Some(required(4)?))?;
            let y = Output::new(node, required(6)?, required(7)?)?;
            vec![matmul(op, a, b, Some(y))?]
        }
        "ConvInteger" => {
            let x = Operand::new(op, required(0)?, optional(2)?, None)?;
            let w = Operand::new(op, required(1)?, optional(3)?, None)?;
            vec![conv(node, x, w, None, None)?]
        }
        "QLinearConv" => {
            let x = Operand::new(op, required(0)?, Some(required(2)?), Some(required(1)?))?;
            let w = Operand::new(op, required(3)?, Some(required(5)?), Some(required(4)?))?;
            let y = Output::new(node, required(6)?, required(7)?)?;
            vec![conv(node, x, w, optional(8)?, Some(y))?]
        }
        other => bail!("{other} is not a quantized operator"),
    };
    Ok(tensors.into_iter().map(Value::Tensor).collect())
}

/// The integers of an integer tensor, whatever candle type holds them.
fn integers(op: &str, t: &Tensor) -> Result<Vec<i64>> {
    if t.dtype().is_float() {
        bail!("{op}: a {:?} tensor where integers are expected", t.dtype())
    }
    t.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()
}

/// The integers of an operand of an integer product (`MatMulInteger`, `ConvInteger`,
/// `QLinearMatMul`, `QLinearConv`) or its zero point, which the spec types as 8-bit.
/// int8 is held as I64 (as candle-onnx holds it), so the type alone cannot tell; a value
/// no 8-bit type holds (outside -128..=255) is refused, never truncated into the i32
/// accumulators.
fn eight_bit(op: &str, t: &Tensor) -> Result<Vec<i64>> {
    let values = integers(op, t)?;
    if let Some(v) = values.iter().find(|v| !(-128..=255).contains(*v)) {
        bail!("{op}: operand value {v} is not 8-bit (int8 or uint8 expected)")
    }
    Ok(values)
}

fn floats(op: &str, t: &Tensor) -> Result<Vec<f32>> {
    if t.dtype() != DType::F32 {
        bail!(
            "{op}: a {:?} tensor where float32 is expected (the engine quantizes float32)",
            t.dtype()
        )
    }
    t.flatten_all()?.to_vec1::<f32>()
}

/// Scales as f32: float32, or float16 / bfloat16 widened (exactly).
fn scales(op: &str, t: &Tensor) -> Result<Vec<f32>> {
    match t.dtype() {
        DType::F16 | DType::BF16 => t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>(),
        _ => floats(op, t),
    }
}

/// The range and candle type node `node` quantizes to ([`annotate`]).
fn output_type(node: &NodeProto) -> Result<(QRange, DType)> {
    let t = attrs::int(node, OUTPUT_TYPE, -1);
    match range_of(t as i32) {
        Some(r) => Ok(r),
        None => bail!(
            "{}: no quantized output type recorded at load",
            node.op_type
        ),
    }
}

fn quantized_tensor(values: Vec<i32>, dims: &[usize], dtype: DType) -> Result<Tensor> {
    match dtype {
        DType::U8 => Tensor::from_vec(
            values.into_iter().map(|v| v as u8).collect::<Vec<u8>>(),
            dims,
            &Device::Cpu,
        ),
        _ => Tensor::from_vec(
            values.into_iter().map(i64::from).collect::<Vec<i64>>(),
            dims,
            &Device::Cpu,
        ),
    }
}

/// Which scale and zero point each element of a tensor of shape `dims` takes.
struct Spread {
    /// One parameter for every element.
    per_tensor: bool,
    /// One parameter per index of the axis (else per tensor, or per block).
    per_axis: bool,
    /// Elements after the axis (1 for per-tensor).
    inner: usize,
    /// The axis's length (1 for per-tensor).
    axis_len: usize,
    /// Elements per block along the axis (the axis's length when not blocked).
    block: usize,
    /// Blocks along the axis.
    blocks: usize,
}

impl Spread {
    fn new(node: &NodeProto, dims: &[usize], scale: &Tensor) -> Result<Spread> {
        let op = node.op_type.as_str();
        let block = attrs::int(node, "block_size", 0);
        let per_tensor = Spread {
            per_tensor: true,
            per_axis: false,
            inner: 1,
            axis_len: 1,
            block: 1,
            blocks: 1,
        };
        if block == 0 && scale.elem_count() == 1 && scale.rank() <= 1 {
            return Ok(per_tensor);
        }
        let axis = attrs::axis(op, attrs::int(node, "axis", 1), dims.len())?;
        let (axis_len, inner) = (dims[axis], dims[axis + 1..].iter().product::<usize>());
        if block < 0 {
            bail!("{op}: block_size {block} < 0")
        }
        if block == 0 {
            if scale.dims() != [axis_len] {
                bail!(
                    "{op}: scale of shape {:?} for per-axis quantization along axis {axis} of {dims:?}",
                    scale.dims()
                )
            }
            return Ok(Spread {
                per_tensor: false,
                per_axis: true,
                inner,
                axis_len,
                block: axis_len.max(1),
                blocks: 1,
            });
        }
        let block = block as usize;
        let blocks = axis_len.div_ceil(block);
        let mut want = dims.to_vec();
        want[axis] = blocks;
        if scale.dims() != want {
            bail!(
                "{op}: scale of shape {:?} for blocks of {block} along axis {axis} of {dims:?} (expected {want:?})",
                scale.dims()
            )
        }
        Ok(Spread {
            per_tensor: false,
            per_axis: false,
            inner,
            axis_len,
            block,
            blocks,
        })
    }

    /// The parameter index of element `flat`.
    fn index(&self, flat: usize) -> usize {
        let inner_index = flat % self.inner;
        let along = (flat / self.inner) % self.axis_len;
        let outer = flat / (self.inner * self.axis_len);
        if self.per_axis {
            return along;
        }
        if self.per_tensor {
            return 0;
        }
        (outer * self.blocks + along / self.block) * self.inner + inner_index
    }
}

/// Zero points as `i32`, checked against `range`; zeros where there are none.
fn zero_points(op: &str, zp: Option<&Tensor>, count: usize, range: QRange) -> Result<Vec<i32>> {
    let Some(zp) = zp else {
        return Ok(vec![0; count]);
    };
    let values = integers(op, zp)?;
    if values.len() != count {
        bail!("{op}: {} zero points for {count} scales", values.len())
    }
    values
        .into_iter()
        .map(|v| {
            if range.contains(v) {
                Ok(v as i32)
            } else {
                bail!("{op}: zero point {v} is outside its type's range")
            }
        })
        .collect()
}

/// `QuantizeLinear(x, y_scale, y_zero_point?)`.
fn quantize_linear(
    node: &NodeProto,
    x: &Tensor,
    scale: &Tensor,
    zero_point: Option<&Tensor>,
) -> Result<Tensor> {
    let op = "QuantizeLinear";
    let (range, dtype) = output_type(node)?;
    let spread = Spread::new(node, x.dims(), scale)?;
    let scales = floats(op, scale)?;
    let zps = zero_points(op, zero_point, scales.len(), range)?;
    let xs = floats(op, x)?;
    let ys: Vec<i32> = kernel_threads::map_collect(xs.len(), |i| {
        let p = spread.index(i);
        q::quantize(xs[i], scales[p], zps[p], range)
    });
    quantized_tensor(ys, x.dims(), dtype)
}

/// `DequantizeLinear(x, x_scale, x_zero_point?)`: float32 out.
fn dequantize_linear(
    node: &NodeProto,
    x: &Tensor,
    scale: &Tensor,
    zero_point: Option<&Tensor>,
) -> Result<Tensor> {
    let op = "DequantizeLinear";
    let spread = Spread::new(node, x.dims(), scale)?;
    let scales = floats(op, scale)?;
    let zps: Vec<i64> = match zero_point {
        Some(z) => integers(op, z)?,
        None => vec![0; scales.len()],
    };
    if zps.len() != scales.len() {
        bail!(
            "{op}: {} zero points for {} scales",
            zps.len(),
            scales.len()
        )
    }
    let xs = integers(op, x)?;
    let ys: Vec<f32> = kernel_threads::map_collect(xs.len(), |i| {
        let p = spread.index(i);
        q::dequantize(xs[i], zps[p], scales[p])
    });
    Tensor::from_vec(ys, x.dims(), &Device::Cpu)
}

/// `DynamicQuantizeLinear(x)`: (y uint8, y_scale, y_zero_point).
fn dynamic_quantize_linear(x: &Tensor) -> Result<Vec<Tensor>> {
    let op = "DynamicQuantizeLinear";
    let xs = floats(op, x)?;
    let (scale, zp) = q::dynamic_parameters(&xs);
    let ys: Vec<i32> =
        kernel_threads::map_collect(xs.len(), |i| q::quantize(xs[i], scale, zp, QRange::U8));
    Ok(vec![
        quantized_tensor(ys, x.dims(), DType::U8)?,
        Tensor::new(scale, &Device::Cpu)?,
        Tensor::new(zp as u8, &Device::Cpu)?,
    ])
}

/// An integer operand with its zero points (and, for the `QLinear` forms, scales), one
/// value or one per row (A, the output), per column (B) or per output channel (W).
struct Operand<'a> {
    values: &'a Tensor,
    zero_points: Vec<i64>,
    scales: Option<Vec<f32>>,
}

impl<'a> Operand<'a> {
    fn new(
        op: &str,
        values: &'a Tensor,
        zero_point: Option<&Tensor>,
        scale: Option<&Tensor>,
    ) -> Result<Self> {
        let zero_points = match zero_point {
            Some(z) => eight_bit(op, z)?,
            None => vec![0],
        };
        // Each is one value or one per row, column or channel: checked where it is spread.
        let scales = scale.map(|s| scales(op, s)).transpose()?;
        Ok(Operand {
            values,
            zero_points,
            scales,
        })
    }

    /// Zero point `i` of `count` (one shared value, or one per index).
    fn zero_point(&self, op: &str, count: usize) -> Result<Vec<i64>> {
        spread_values(op, "zero points", &self.zero_points, count)
    }

    fn scale(&self, op: &str, count: usize) -> Result<Vec<f32>> {
        match &self.scales {
            Some(s) => spread_values(op, "scales", s, count),
            None => Ok(vec![1.0; count]),
        }
    }
}

/// `values` as `count` values: one repeated, or exactly `count`.
fn spread_values<T: Copy>(op: &str, what: &str, values: &[T], count: usize) -> Result<Vec<T>> {
    match values.len() {
        1 => Ok(vec![values[0]; count]),
        n if n == count => Ok(values.to_vec()),
        n => bail!("{op}: {n} {what} where 1 or {count} are expected"),
    }
}

/// The output of a `QLinear` operator: scale and zero point (per tensor or per row /
/// channel), and its type.
struct Output {
    scales: Vec<f32>,
    zero_points: Vec<i64>,
    range: QRange,
    dtype: DType,
}

impl Output {
    fn new(node: &NodeProto, scale: &Tensor, zero_point: &Tensor) -> Result<Output> {
        let op = node.op_type.as_str();
        let (range, dtype) = output_type(node)?;
        let scales = scales(op, scale)?;
        let zero_points = integers(op, zero_point)?;
        if zero_points.iter().any(|&z| !range.contains(z)) {
            bail!("{op}: an output zero point is outside its type's range")
        }
        Ok(Output {
            scales,
            zero_points,
            range,
            dtype,
        })
    }
}

/// `(A - a_zero) × (B - b_zero)` with numpy's matmul broadcasting: `int32` values (held
/// as `I64`), or requantized to `y`.
fn matmul(op: &str, a: Operand<'_>, b: Operand<'_>, y: Option<Output>) -> Result<Tensor> {
    let (ad, bd) = (a.values.dims().to_vec(), b.values.dims().to_vec());
    if ad.is_empty() || bd.is_empty() {
        bail!("{op}: scalar operands")
    }
    // 1-D operands as numpy promotes them: A [K] → [1, K], B [K] → [K, 1], the added
    // dimension dropped from the result.
    let a2: Vec<usize> = if ad.len() == 1 {
        vec![1, ad[0]]
    } else {
        ad.clone()
    };
    let b2: Vec<usize> = if bd.len() == 1 {
        vec![bd[0], 1]
    } else {
        bd.clone()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != kb {
        bail!("{op}: A {ad:?} and B {bd:?} do not multiply")
    }
    let (a_batch, b_batch) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let batch = broadcast(op, a_batch, b_batch)?;
    let a_zero = a.zero_point(op, m)?;
    let b_zero = b.zero_point(op, n)?;
    let av = eight_bit(op, a.values)?;
    let bv = eight_bit(op, b.values)?;
    let batches = batch
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .and_then(|b| b.checked_mul(m)?.checked_mul(n).map(|_| b))
        .filter(|_| m.checked_mul(k).is_some() && k.checked_mul(n).is_some())
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: A {ad:?} × B {bd:?} overflows")))?;
    let a_offsets = batch_offsets(&batch, a_batch, m * k);
    let b_offsets = batch_offsets(&batch, b_batch, k * n);
    let mut out = vec![0i32; batches * m * n];
    kernel_threads::for_each_row_mut(&mut out, (m * n).max(1), |i, c| {
        let a: Vec<i32> = av[a_offsets[i]..][..m * k]
            .iter()
            .enumerate()
            .map(|(j, &v)| v.wrapping_sub(a_zero[j / k.max(1)]) as i32)
            .collect();
        let b: Vec<i32> = bv[b_offsets[i]..][..k * n]
            .iter()
            .enumerate()
            .map(|(j, &v)| v.wrapping_sub(b_zero[j % n.max(1)]) as i32)
            .collect();
        q::integer_matmul(&a, &b, m, k, n, c);
    });
    let mut dims = batch.clone();
    if ad.len() > 1 {
        dims.push(m);
    }
    if bd.len() > 1 {
        dims.push(n);
    }
    match y {
        None => quantized_tensor(out, &dims, DType::I64),
        Some(y) => {
            let a_scale = a.scale(op, m)?;
            let b_scale = b.scale(op, n)?;
            let y_scale = spread_values(op, "output scales", &y.scales, m)?;
            let y_zero = spread_values(op, "output zero points", &y.zero_points, m)?;
            let values = kernel_threads::map_collect(out.len(), |i| {
                let acc = out[i];
                let (row, col) = ((i / n.max(1)) % m.max(1), i % n.max(1));
                let mult = q::multiplier(a_scale[row], b_scale[col], y_scale[row]);
                q::requantize(acc, mult, y_zero[row] as i32, y.range)
            });
            quantized_tensor(values, &dims, y.dtype)
        }
    }
}

/// The broadcast of two batch shapes (numpy rules).
fn broadcast(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            (x, y) => bail!("{op}: batch dimensions {a:?} and {b:?} do not broadcast ({x} vs {y})"),
        })
        .collect()
}

/// For each batch index of `out` (row-major), the offset of the matrix `own` broadcasts
/// to it, matrices being `matrix` values each.
fn batch_offsets(out: &[usize], own: &[usize], matrix: usize) -> Vec<usize> {
    let count: usize = out.iter().product();
    let skip = out.len() - own.len();
    (0..count)
        .map(|flat| {
            let mut rest = flat;
            let mut index = vec![0usize; out.len()];
            for (i, d) in out.iter().enumerate().rev() {
                index[i] = rest % d;
                rest /= d;
            }
            let mut offset = 0;
            for (j, &d) in own.iter().enumerate() {
                let at = if d == 1 { 0 } else { index[skip + j] };
                offset = offset * d + at;
            }
            offset * matrix
        })
        .collect()
}

/// `ConvInteger` (int32 out) or `QLinearConv` (requantized, with an int32 bias `b`):
/// X [N, C, spatial…], W [M, C/group, kernel…], every `Conv` geometry (pads, `auto_pad`,
/// strides, dilations, groups). Padding reads X's zero point (adds nothing).
fn conv(
    node: &NodeProto,
    x: Operand<'_>,
    w: Operand<'_>,
    bias: Option<&Tensor>,
    y: Option<Output>,
) -> Result<Tensor> {
    let op = node.op_type.as_str();
    let (xd, wd) = (x.values.dims().to_vec(), w.values.dims().to_vec());
    if xd.len() < 3 || wd.len() != xd.len() {
        bail!("{op}: input {xd:?} and weight {wd:?} ranks do not match")
    }
    let group = attrs::int(node, "group", 1).max(1) as usize;
    let (batch, c, m) = (xd[0], xd[1], wd[0]);
    if c != wd[1] * group || m % group != 0 {
        bail!("{op}: {c} input channels, weight {wd:?} and group {group} do not fit")
    }
    let window = Window::of(node, &xd[2..], &wd[2..])?;
    let (cg, mg) = (c / group, m / group);
    let (plane, taps, pixels) = (window.input_len(), window.kernel_len(), window.output_len());
    let k = cg * taps;
    // The tap table (pixels × taps) and each task's `cols` (k × pixels) are scratch the
    // cost meter does not see: bounded here.
    let scratch = |a: usize, b: usize| a.checked_mul(b).filter(|&n| n <= MAX_SCRATCH);
    let outputs = batch.checked_mul(m).and_then(|n| n.checked_mul(pixels));
    if scratch(pixels, taps).is_none() || scratch(k, pixels).is_none() || outputs.is_none() {
        bail!("{op}: {pixels} output positions × {k} products per position is over {MAX_SCRATCH}")
    }
    let x_zero = x.zero_point(op, 1)?[0];
    let w_zero = w.zero_point(op, m)?;
    let xv = eight_bit(op, x.values)?;
    let wv = eight_bit(op, w.values)?;
    let w_offset: Vec<i32> = wv
        .iter()
        .enumerate()
        .map(|(i, &v)| v.wrapping_sub(w_zero[i / k.max(1)]) as i32)
        .collect();
    let bias = match bias {
        Some(b) => {
            let b = integers(op, b)?;
            if b.len() != m {
                bail!("{op}: bias must have {m} values")
            }
            b.into_iter().map(|v| v as i32).collect()
        }
        None => vec![0i32; m],
    };
    let table = window.taps();
    let mut out = vec![0i32; batch * m * pixels];
    kernel_threads::for_each_row_mut(&mut out, (mg * pixels).max(1), |i, dst| {
        let (sample, g) = (i / group, i % group);
        // cols [K, pixels]: row (input channel, tap), padding reading 0 = X - x_zero.
        let mut cols = vec![0i32; k * pixels];
        for ic in 0..cg {
            let src = &xv[(sample * c + g * cg + ic) * plane..][..plane];
            for (p, (offsets, _)) in table.iter().enumerate() {
                for (t, offset) in offsets.iter().enumerate() {
                    if let Some(o) = offset {
                        cols[(ic * taps + t) * pixels + p] = src[*o].wrapping_sub(x_zero) as i32;
                    }
                }
            }
        }
        let weights = &w_offset[g * mg * k..][..mg * k];
        q::integer_matmul(weights, &cols, mg, k, pixels, dst);
        for (oc, row) in dst.chunks_exact_mut(pixels.max(1)).enumerate() {
            let b = bias[g * mg + oc];
            for v in row {
                *v = v.wrapping_add(b);
            }
        }
    });
    let mut dims = vec![batch, m];
    dims.extend(window.output_dims());
    match y {
        None => quantized_tensor(out, &dims, DType::I64),
        Some(y) => {
            let x_scale = x.scale(op, 1)?[0];
            let w_scale = w.scale(op, m)?;
            let y_scale = spread_values(op, "output scales", &y.scales, 1)?[0];
            let y_zero = spread_values(op, "output zero points", &y.zero_points, 1)?[0] as i32;
            let values = kernel_threads::map_collect(out.len(), |i| {
                let acc = out[i];
                let channel = (i / pixels.max(1)) % m.max(1);
                let mult = q::multiplier(x_scale, w_scale[channel], y_scale);
                q::requantize(acc, mult, y_zero, y.range)
            });
            quantized_tensor(values, &dims, y.dtype)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn node(op: &str, attrs: &[(&str, i64)]) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            attribute: attrs
                .iter()
                .map(|(n, i)| AttributeProto {
                    name: n.to_string(),
                    r#type: AttributeType::Int as i32,
                    i: *i,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn spreads_per_tensor_per_axis_and_per_block() {
        let x = [2usize, 4, 3];
        let scalar = Tensor::new(1f32, &Device::Cpu).unwrap();
        let s = Spread::new(&node("QuantizeLinear", &[]), &x, &scalar).unwrap();
        assert!((0..24).all(|i| s.index(i) == 0));
        let per_axis = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        let s = Spread::new(&node("QuantizeLinear", &[]), &x, &per_axis).unwrap();
        assert_eq!(
            (0..12).map(|i| s.index(i)).collect::<Vec<_>>(),
            [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
        );
        // Blocks of 2 along axis 1: scale [2, 2, 3].
        let blocked = Tensor::zeros((2, 2, 3), DType::F32, &Device::Cpu).unwrap();
        let s = Spread::new(&node("QuantizeLinear", &[("block_size", 2)]), &x, &blocked).unwrap();
        // Element (1, 3, 2) = flat 23 → scale (1, 1, 2) = 11.
        assert_eq!(s.index(23), 11);
        // Element (0, 1, 1) = flat 4 → scale (0, 0, 1) = 1.
        assert_eq!(s.index(4), 1);
        let wrong = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        assert!(Spread::new(&node("QuantizeLinear", &[]), &x, &wrong).is_err());
    }

    #[test]
    fn annotation_refuses_types_it_cannot_quantize_to() {
        let mut graph = GraphProto {
            node: vec![NodeProto {
                op_type: "QuantizeLinear".into(),
                input: vec!["x".into(), "s".into(), "z".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            initializer: vec![candle_onnx::onnx::TensorProto {
                name: "z".into(),
                data_type: DataType::Float8e4m3fn as i32,
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = annotate(&mut graph).unwrap_err();
        assert!(e.contains("float8"), "{e}");
        graph.initializer[0].data_type = DataType::Int8 as i32;
        // An author cannot pick the range by writing the engine's attribute.
        graph.node[0].attribute.push(AttributeProto {
            name: OUTPUT_TYPE.into(),
            r#type: AttributeType::Int as i32,
            i: DataType::Uint16 as i64,
            ..Default::default()
        });
        annotate(&mut graph).unwrap();
        assert_eq!(
            graph.node[0]
                .attribute
                .iter()
                .filter(|a| a.name == OUTPUT_TYPE)
                .count(),
            1
        );
        assert_eq!(
            attrs::int(&graph.node[0], OUTPUT_TYPE, 0),
            DataType::Int8 as i64
        );
        // A zero point from nowhere known.
        graph.initializer.clear();
        assert!(annotate(&mut graph)
            .unwrap_err()
            .contains("no declared type"));
        // None at all: uint8.
        graph.node[0].input.truncate(2);
        annotate(&mut graph).unwrap();
        assert_eq!(
            attrs::int(&graph.node[0], OUTPUT_TYPE, 0),
            DataType::Uint8 as i64
        );
    }

    #[test]
    fn integer_products_refuse_operands_wider_than_eight_bits() {
        let op = "MatMulInteger";
        let a = Tensor::from_vec(vec![3i64, 4, 300, 6], (2, 2), &Device::Cpu).unwrap();
        let b = Tensor::from_vec(vec![1i64, -128, 255, 4], (2, 2), &Device::Cpu).unwrap();
        let err = matmul(
            op,
            Operand::new(op, &a, None, None).unwrap(),
            Operand::new(op, &b, None, None).unwrap(),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("300 is not 8-bit"), "{err}");
        // The 8-bit extremes are fine; a wide zero point is not.
        let y = matmul(
            op,
            Operand::new(op, &b, None, None).unwrap(),
            Operand::new(op, &b, None, None).unwrap(),
            None,
        );
        assert!(y.is_ok());
        let zp = Tensor::new(-129i64, &Device::Cpu).unwrap();
        assert!(Operand::new(op, &b, Some(&zp), None).is_err());
    }

    #[test]
    fn integer_matmul_broadcasts_and_offsets() {
        let a = Tensor::from_vec(vec![3u8, 4, 5, 6], (2, 2), &Device::Cpu).unwrap();
        let b = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6, 7, 8], (2, 2, 2), &Device::Cpu).unwrap();
        let azp = Tensor::new(1u8, &Device::Cpu).unwrap();
        let op = "MatMulInteger";
        let y = matmul(
            op,
            Operand::new(op, &a, Some(&azp), None).unwrap(),
            Operand::new(op, &b, None, None).unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(y.dims(), [2, 2, 2]);
        // (A - 1) = [[2, 3], [4, 5]] times each B.
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<i64>().unwrap(),
            [11, 16, 19, 28, 31, 36, 55, 64]
        );
    }
}
