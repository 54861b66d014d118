//! `Reshape`, `Transpose`, `Concat` and `Slice` in their common forms, run with candle's
//! tensor operations instead of through candle-onnx, which builds and evaluates a one-node
//! graph per call: on the few thousand values of a small network's channel shuffle that
//! costs more than the move itself.
//!
//! They only move values, so the bits are the same whoever moves them. Any form outside
//! the common one (`Slice` with a step other than 1 or before opset 10, `Reshape` before
//! opset 5 or with a shape it cannot resolve, empty inputs, mismatched dtypes, out-of-range
//! axes) gives `None` and stays with candle-onnx, which computes it or names the error as
//! before. (A `Transpose` without `perm` is refused at load, `op_versions.rs`, since
//! candle-onnx swaps only the last two axes; here it would reverse every axis, as the spec
//! says.) Results are row-major (`contiguous`): candle's indexing operators downstream
//! refuse strided inputs.

use super::{attrs, Inputs};
use candle_core::{DType, Result, Tensor};
use candle_onnx::onnx::NodeProto;

/// Runs `node` here if it is one of these operators in a common form.
pub fn run(node: &NodeProto, inputs: &Inputs<'_>, opset: i64) -> Option<Result<Tensor>> {
    let tensor = |i: usize| inputs.tensor(i).ok().flatten();
    match node.op_type.as_str() {
        "Reshape" if opset >= 5 => reshape(node, tensor(0)?, tensor(1)?),
        "Transpose" => transpose(node, tensor(0)?),
        "Concat" => {
            let all: Option<Vec<&Tensor>> = (0..inputs.len()).map(tensor).collect();
            concat(node, &all?)
        }
        "Slice" if opset >= 10 => {
            let optional = |i: usize| inputs.tensor(i).ok();
            slice(
                tensor(0)?,
                tensor(1)?,
                tensor(2)?,
                optional(3)?,
                optional(4)?,
            )
        }
        _ => None,
    }
}

/// A 1-D (or scalar) integer tensor's values; `None` for anything else.
fn ints(t: &Tensor) -> Option<Vec<i64>> {
    if t.rank() > 1 || !matches!(t.dtype(), DType::I64 | DType::U32 | DType::U8) {
        return None;
    }
    t.flatten_all()
        .and_then(|t| t.to_dtype(DType::I64))
        .and_then(|t| t.to_vec1::<i64>())
        .ok()
}

/// `Reshape(data, shape)`: `0` copies the input's size at that index (unless
/// `allowzero`), one `-1` takes what is left.
fn reshape(node: &NodeProto, x: &Tensor, shape: &Tensor) -> Option<Result<Tensor>> {
    let allowzero = attrs::int(node, "allowzero", 0) != 0;
    let listed = ints(shape)?;
    let mut dims = Vec::with_capacity(listed.len());
    let mut inferred = None;
    for (i, &d) in listed.iter().enumerate() {
        match d {
            -1 if inferred.is_none() => {
                inferred = Some(i);
                dims.push(1);
            }
            0 if !allowzero => dims.push(*x.dims().get(i)?),
            d if d >= 0 => dims.push(usize::try_from(d).ok()?),
            _ => return None,
        }
    }
    let count = x.elem_count();
    if let Some(i) = inferred {
        let known: usize = dims.iter().product();
        if known == 0 || !count.is_multiple_of(known) {
            return None;
        }
        dims[i] = count / known;
    }
    if dims.iter().product::<usize>() != count || count == 0 {
        return None;
    }
    Some(x.contiguous().and_then(|x| x.reshape(dims)))
}

/// `Transpose(data)` by `perm` (reversed axes when absent).
fn transpose(node: &NodeProto, x: &Tensor) -> Option<Result<Tensor>> {
    let rank = x.rank();
    let perm: Vec<usize> = match attrs::ints(node, "perm") {
        Some(p) => p
            .iter()
            .map(|&a| usize::try_from(a).ok())
            .collect::<Option<_>>()?,
        None => (0..rank).rev().collect(),
    };
    let mut seen = vec![false; rank];
    for &a in &perm {
        if a >= rank || std::mem::replace(&mut seen[a], true) {
            return None;
        }
    }
    if perm.len() != rank || x.elem_count() == 0 {
        return None;
    }
    if x.dtype() == DType::F32 && x.elem_count() >= PARALLEL_TRANSPOSE && rank > 1 {
        return Some(transpose_f32(x, &perm));
    }
    Some(x.permute(perm).and_then(|t| t.contiguous()))
}

/// Values from which an f32 `Transpose` moves its values on the kernels' threads (below
/// it, candle's copy on this thread costs less than handing out tasks).
const PARALLEL_TRANSPOSE: usize = 1 << 14;

/// `x` with its axes permuted, row-major, written output row by output row on the
/// kernels' threads (a row along the output's last axis reads the input at that axis's
/// stride: in place where it is 1).
fn transpose_f32(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let dims = x.dims();
    let mut in_strides = vec![1usize; dims.len()];
    for a in (0..dims.len().saturating_sub(1)).rev() {
        in_strides[a] = in_strides[a + 1] * dims[a + 1];
    }
    let out_dims: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
    let strides: Vec<usize> = perm.iter().map(|&a| in_strides[a]).collect();
    let (Some((&row, outer)), Some((&step, outer_strides))) =
        (out_dims.split_last(), strides.split_last())
    else {
        candle_core::bail!("Transpose: rank 0")
    };
    let values = crate::numerics::with_f32("Transpose", x, |xs| {
        crate::numerics::rows_on_threads(xs.len(), row, |first, rows| {
            for (i, dst) in rows.chunks_mut(row.max(1)).enumerate() {
                let (mut at, mut rest) = (0, first + i);
                for (&len, &stride) in outer.iter().zip(outer_strides).rev() {
                    at += rest % len * stride;
                    rest /= len;
                }
                if step == 1 {
                    dst.copy_from_slice(&xs[at..at + dst.len()]);
                } else {
                    for (i, d) in dst.iter_mut().enumerate() {
                        *d = xs[at + i * step];
                    }
                }
            }
        })
    })?;
    crate::numerics::tensor(values, out_dims)
}

/// `Concat(inputs…)` along `axis`: same rank, dtype and sizes off the axis.
fn concat(node: &NodeProto, all: &[&Tensor]) -> Option<Result<Tensor>> {
    let first = all.first()?;
    let rank = first.rank();
    let axis = attrs::axis("Concat", attrs::int(node, "axis", i64::MIN), rank).ok()?;
    let fits = |t: &&Tensor| {
        t.rank() == rank
            && t.dtype() == first.dtype()
            && t.elem_count() > 0
            && (0..rank).all(|a| a == axis || t.dims()[a] == first.dims()[a])
    };
    if !all.iter().all(fits) {
        return None;
    }
    Some(Tensor::cat(all, axis).and_then(|t| t.contiguous()))
}

/// `Slice(data, starts, ends, axes?, steps?)` (opset 10 on) with every step 1: per axis,
/// `[start, end)` with negative bounds counted from the end and both clamped to the axis.
fn slice(
    x: &Tensor,
    starts: &Tensor,
    ends: &Tensor,
    axes: Option<&Tensor>,
    steps: Option<&Tensor>,
) -> Option<Result<Tensor>> {
    let (starts, ends) = (ints(starts)?, ints(ends)?);
    let rank = x.rank();
    let axes: Vec<usize> = match axes {
        Some(a) => ints(a)?
            .into_iter()
            .map(|a| attrs::axis("Slice", a, rank).ok())
            .collect::<Option<_>>()?,
        None => (0..starts.len()).collect(),
    };
    if let Some(steps) = steps {
        let steps = ints(steps)?;
        if steps.len() != starts.len() || steps.iter().any(|&s| s != 1) {
            return None;
        }
    }
    if ends.len() != starts.len() || axes.len() != starts.len() || x.elem_count() == 0 {
        return None;
    }
    let mut seen = vec![false; rank];
    let mut out = x.clone();
    for ((&axis, &start), &end) in axes.iter().zip(&starts).zip(&ends) {
        if axis >= rank || std::mem::replace(&mut seen[axis], true) {
            return None;
        }
        let d = x.dims()[axis] as i128;
        let bound = |v: i64| {
            let v = v as i128;
            (if v < 0 { v + d } else { v }).clamp(0, d) as usize
        };
        let (start, end) = (bound(start), bound(end));
        let len = end.saturating_sub(start);
        if len == 0 {
            return None;
        }
        out = match out.narrow(axis, start, len) {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
    }
    Some(out.contiguous())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::onnx::ops::Value;
    use candle_core::Device;
    use candle_onnx::onnx::{attribute_proto::AttributeType, AttributeProto};
    use std::collections::HashMap;

    fn node(op: &str, inputs: usize, attributes: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            input: (0..inputs).map(|i| format!("in{i}")).collect(),
            output: vec!["out".into()],
            attribute: attributes,
            ..Default::default()
        }
    }

    fn ints_attr(name: &str, values: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            ints: values.to_vec(),
            r#type: AttributeType::Ints as i32,
            ..Default::default()
        }
    }

    fn int_attr(name: &str, value: i64) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            i: value,
            r#type: AttributeType::Int as i32,
            ..Default::default()
        }
    }

    fn list(values: &[i64]) -> Tensor {
        Tensor::new(values, &Device::Cpu).unwrap()
    }

    /// candle-onnx's result for `node` over `given`, as the plan delegates it.
    fn delegated(node: &NodeProto, given: &[Tensor]) -> Tensor {
        let graph = candle_onnx::onnx::GraphProto {
            node: vec![node.clone()],
            input: node
                .input
                .iter()
                .map(|n| candle_onnx::onnx::ValueInfoProto {
                    name: n.clone(),
                    ..Default::default()
                })
                .collect(),
            output: vec![candle_onnx::onnx::ValueInfoProto {
                name: "out".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let model = candle_onnx::onnx::ModelProto {
            graph: Some(graph),
            opset_import: vec![candle_onnx::onnx::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            ..Default::default()
        };
        let inputs: HashMap<String, Tensor> = node
            .input
            .iter()
            .cloned()
            .zip(given.iter().cloned())
            .collect();
        candle_onnx::simple_eval(&model, inputs)
            .unwrap()
            .remove("out")
            .unwrap()
    }

    fn here(node: &NodeProto, given: &[Tensor]) -> Option<Tensor> {
        let values: Vec<Value> = given.iter().cloned().map(Value::Tensor).collect();
        let refs: Vec<Option<&Value>> = values.iter().map(Some).collect();
        let inputs = Inputs {
            op: &node.op_type,
            values: &refs,
        };
        run(node, &inputs, 17).map(|r| r.unwrap())
    }

    fn same(a: &Tensor, b: &Tensor) -> bool {
        let bits = |t: &Tensor| {
            t.flatten_all()
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        a.dims() == b.dims() && a.is_contiguous() && bits(a) == bits(b)
    }

    fn values(dims: &[usize]) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.25).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    /// A ShuffleNet's channel shuffle (Concat, Reshape, Transpose, Reshape, Slice), each
    /// step computed here equal to candle-onnx's, in shape and every value.
    #[test]
    fn common_forms_match_candle_onnx() {
        let (a, b) = (
            values(&[2, 3, 4, 5]),
            values(&[2, 3, 4, 5]).affine(2.0, 1.0).unwrap(),
        );
        let concat = node("Concat", 2, vec![int_attr("axis", 1)]);
        let joined = here(&concat, &[a.clone(), b.clone()]).unwrap();
        assert!(same(&joined, &delegated(&concat, &[a.clone(), b.clone()])));
        let negative = node("Concat", 2, vec![int_attr("axis", -1)]);
        let got = here(&negative, &[a.clone(), b.clone()]).unwrap();
        assert!(same(&got, &delegated(&negative, &[a.clone(), b])));
        let reshape = node("Reshape", 2, vec![]);
        for shape in [&[2, 2, 3, 4, 5][..], &[0, 2, -1, 4, 5], &[2, -1], &[-1]] {
            let s = list(shape);
            let got = here(&reshape, &[joined.clone(), s.clone()]).unwrap();
            assert!(
                same(&got, &delegated(&reshape, &[joined.clone(), s])),
                "{shape:?}"
            );
        }
        let split = here(&reshape, &[joined.clone(), list(&[2, 2, 3, 4, 5])]).unwrap();
        let transpose = node("Transpose", 1, vec![ints_attr("perm", &[0, 2, 1, 3, 4])]);
        let shuffled = here(&transpose, std::slice::from_ref(&split)).unwrap();
        assert!(same(
            &shuffled,
            &delegated(&transpose, std::slice::from_ref(&split))
        ));
        // Without `perm` the spec reverses every axis (candle-onnx swapped the last two).
        let reversed = node("Transpose", 1, vec![]);
        let got = here(&reversed, std::slice::from_ref(&split)).unwrap();
        let want = split
            .permute(vec![4, 3, 2, 1, 0])
            .unwrap()
            .contiguous()
            .unwrap();
        assert!(same(&got, &want));
        assert_eq!(got.dims(), &[5, 4, 3, 2, 2]);
        let slice = node("Slice", 5, vec![]);
        let cases: [[&[i64]; 4]; 5] = [
            [&[0], &[3], &[1], &[1]],
            [&[3], &[i64::MAX], &[1], &[1]],
            [&[-2, 1], &[i64::MAX, -1], &[-1, 2], &[1, 1]],
            [&[-100], &[2], &[0], &[1]],
            [&[1], &[100], &[3], &[1]],
        ];
        for [starts, ends, axes, steps] in cases {
            let given = [
                joined.clone(),
                list(starts),
                list(ends),
                list(axes),
                list(steps),
            ];
            let got = here(&slice, &given).unwrap();
            assert!(
                same(&got, &delegated(&slice, &given)),
                "{starts:?} {ends:?}"
            );
        }
    }

    /// Transposes large enough for the kernels' threads give candle's `permute` values,
    /// for every permutation of a rank-4 tensor (an attention head split among them) and
    /// a row longer than one task.
    #[test]
    fn parallel_transposes_match_candles_permute() {
        let x = values(&[2, 16, 12, 48]);
        assert!(x.elem_count() >= PARALLEL_TRANSPOSE);
        let perms: Vec<[usize; 4]> = (0..256usize)
            .map(|i| [i & 3, i >> 2 & 3, i >> 4 & 3, i >> 6 & 3])
            .filter(|p| {
                let mut sorted = *p;
                sorted.sort();
                sorted == [0, 1, 2, 3]
            })
            .collect();
        assert_eq!(perms.len(), 24);
        for perm in perms {
            let p: Vec<i64> = perm.iter().map(|&a| a as i64).collect();
            let transpose = node("Transpose", 1, vec![ints_attr("perm", &p)]);
            let got = here(&transpose, std::slice::from_ref(&x)).unwrap();
            let want = x.permute(perm.to_vec()).unwrap().contiguous().unwrap();
            assert!(same(&got, &want), "{perm:?}");
        }
        let long = values(&[2, 20_000]);
        let transpose = node("Transpose", 1, vec![ints_attr("perm", &[1, 0])]);
        let got = here(&transpose, std::slice::from_ref(&long)).unwrap();
        let want = long.t().unwrap().contiguous().unwrap();
        assert!(same(&got, &want));
    }

    /// Forms outside the common ones are left to candle-onnx: a step other than 1, an
    /// empty result, a shape that does not fit, a repeated axis, a bad permutation.
    #[test]
    fn uncommon_forms_stay_delegated() {
        let x = values(&[2, 6, 3]);
        let slice = node("Slice", 5, vec![]);
        let refused: [[&[i64]; 4]; 3] = [
            [&[0], &[6], &[1], &[2]],
            [&[4], &[2], &[1], &[1]],
            [&[0, 0], &[1, 1], &[1, 1], &[1, 1]],
        ];
        for [starts, ends, axes, steps] in refused {
            let given = [x.clone(), list(starts), list(ends), list(axes), list(steps)];
            assert!(here(&slice, &given).is_none(), "{starts:?} {steps:?}");
        }
        let reshape = node("Reshape", 2, vec![]);
        for shape in [&[5, -1][..], &[-1, -1], &[4, 0, 0, 0], &[-2, 18]] {
            assert!(
                here(&reshape, &[x.clone(), list(shape)]).is_none(),
                "{shape:?}"
            );
        }
        let allowzero = node("Reshape", 2, vec![int_attr("allowzero", 1)]);
        assert!(here(&allowzero, &[x.clone(), list(&[0, -1])]).is_none());
        for perm in [&[0, 1][..], &[0, 1, 1], &[0, 1, 3]] {
            let transpose = node("Transpose", 1, vec![ints_attr("perm", perm)]);
            assert!(
                here(&transpose, std::slice::from_ref(&x)).is_none(),
                "{perm:?}"
            );
        }
        let concat = node("Concat", 2, vec![int_attr("axis", 1)]);
        assert!(here(&concat, &[x.clone(), values(&[3, 6, 3])]).is_none());
        assert!(here(&concat, &[x.clone(), values(&[2, 0, 3])]).is_none());
    }
}
