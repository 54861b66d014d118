//! ONNX sequence operators (opset 11+): a sequence is a list of tensors that lives only
//! inside a graph; model inputs and outputs stay tensors.

use super::{attrs, Inputs, Value};
use candle_core::{bail, DType, Device, Result, Tensor};
use candle_onnx::onnx::NodeProto;

fn position(op: &str, t: &Tensor, len: usize, insert: bool) -> Result<usize> {
    let p = t.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?;
    let &[p] = p.as_slice() else {
        bail!("{op}: the position must be a scalar")
    };
    let n = len as i64;
    let limit = if insert { n } else { n - 1 };
    if p < -n || p > limit {
        bail!("{op}: position {p} is out of range for a sequence of {len}")
    }
    Ok(if p < 0 { p + n } else { p } as usize)
}

/// Runs sequence operator `node` on its inputs; `None` for an operator that is not one.
pub fn run(node: &NodeProto, inputs: &Inputs) -> Option<Result<Value>> {
    let op = node.op_type.as_str();
    let seq = |i: usize| inputs.sequence(i);
    let tensor = |i: usize| inputs.tensor(i);
    let required = |i: usize| inputs.required(i);
    let result = match op {
        "SequenceEmpty" => Ok(Value::Sequence(Vec::new())),
        "SequenceConstruct" => (0..inputs.len())
            .map(|i| required(i).cloned())
            .collect::<Result<Vec<_>>>()
            .map(Value::Sequence),
        "SequenceInsert" => (|| {
            let mut s = seq(0)?.clone();
            let t = required(1)?.clone();
            let at = match tensor(2)? {
                Some(p) => position(op, p, s.len(), true)?,
                None => s.len(),
            };
            s.insert(at, t);
            Ok(Value::Sequence(s))
        })(),
        "SequenceErase" => (|| {
            let mut s = seq(0)?.clone();
            if s.is_empty() {
                bail!("{op}: the sequence is empty")
            }
            let at = match tensor(1)? {
                Some(p) => position(op, p, s.len(), false)?,
                None => s.len() - 1,
            };
            s.remove(at);
            Ok(Value::Sequence(s))
        })(),
        "SequenceAt" => (|| {
            let s = seq(0)?;
            let at = position(op, required(1)?, s.len(), false)?;
            Ok(Value::Tensor(s[at].clone()))
        })(),
        "SequenceLength" => (|| {
            let len = seq(0)?.len() as i64;
            Ok(Value::Tensor(Tensor::new(len, &Device::Cpu)?))
        })(),
        "ConcatFromSequence" => (|| {
            let s = seq(0)?;
            let Some(first) = s.first() else {
                bail!("{op}: the sequence is empty")
            };
            let new_axis = attrs::int(node, "new_axis", 0) != 0;
            let rank = first.rank() + usize::from(new_axis);
            let axis = attrs::axis(op, attrs::int(node, "axis", 0), rank)?;
            let t = if new_axis {
                Tensor::stack(s, axis)?
            } else {
                Tensor::cat(s, axis)?
            };
            Ok(Value::Tensor(t))
        })(),
        "SplitToSequence" => (|| {
            let x = required(0)?;
            let axis = attrs::axis(op, attrs::int(node, "axis", 0), x.rank())?;
            let len = x.dim(axis)?;
            let keepdims = attrs::int(node, "keepdims", 1) != 0;
            let (sizes, squeeze) = match tensor(1)? {
                None => (vec![1; len], !keepdims),
                Some(split) => {
                    let v = split
                        .flatten_all()?
                        .to_dtype(DType::I64)?
                        .to_vec1::<i64>()?;
                    let sizes = if split.rank() == 0 {
                        let chunk = v[0].max(1) as usize;
                        (0..len)
                            .step_by(chunk)
                            .map(|s| chunk.min(len - s))
                            .collect()
                    } else {
                        v.iter().map(|&x| x.max(0) as usize).collect::<Vec<_>>()
                    };
                    (sizes, false)
                }
            };
            if sizes.iter().sum::<usize>() != len {
                bail!("{op}: split sizes {sizes:?} do not add up to {len}")
            }
            let mut parts = Vec::with_capacity(sizes.len());
            let mut start = 0;
            for size in sizes {
                let part = x.narrow(axis, start, size)?;
                parts.push(if squeeze { part.squeeze(axis)? } else { part });
                start += size;
            }
            Ok(Value::Sequence(parts))
        })(),
        _ => return None,
    };
    Some(result)
}
