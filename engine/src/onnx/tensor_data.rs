//! Every way the ONNX spec lets a file store a tensor, read into one form.
//!
//! A `TensorProto` keeps its elements in `raw_data` (little-endian, packed), in the typed
//! field its element type uses (`float_data`; `int32_data` for every type of 16 bits or
//! fewer, `float16`/`bfloat16` as their bit patterns; `int64_data`; `double_data`;
//! `uint64_data` for `uint32` and `uint64`), or in a file beside the model
//! (`data_location = EXTERNAL`, with `location`, `offset` and `length`). A
//! `SparseTensorProto` keeps only the non-zero values and their positions. Exporters use
//! all of these: PyTorch writes weights over 2 GB as external data, scikit-learn
//! converters write typed fields, and old zoo files both.
//!
//! [`canonicalize`] rewrites every tensor of a model (initializers, sparse initializers,
//! node attributes, nested graphs) into the one form the rest of the engine and
//! candle-onnx read: `raw_data` in a candle element type, integers of 32 bits or fewer
//! widened to `int64` (as candle-onnx holds them), sparse tensors made dense, external
//! data read in. `Constant`'s scalar and list attributes (`value_float`, `value_ints`, …)
//! and its `sparse_value` become its `value` tensor. What cannot be read exactly is
//! refused with a named error ([`EngineError::MalformedTensor`],
//! [`EngineError::MissingExternalData`]), never guessed.
//!
//! External files are read only through the caller's lookup: the files of the model's
//! manifest, each already checked against its hash. This module never opens a path.

use crate::error::{EngineError, Result};
use candle_onnx::onnx::{
    attribute_proto::AttributeType,
    tensor_proto::{DataLocation, DataType},
    AttributeProto, GraphProto, ModelProto, SparseTensorProto, TensorProto,
};
use std::borrow::Cow;

/// The most bytes a model's sparse tensors may expand to, all together: their dense form
/// is what the engine holds, and a few stored values must not ask for more memory than
/// any model gets.
pub const MAX_DENSE_BYTES: u64 = 1 << 32;

/// The bytes of the model's file called `name` (a path inside the model's folder), if
/// the model has one.
pub type ExternalFiles<'a> = &'a dyn Fn(&str) -> Option<&'a [u8]>;

/// Rewrites every tensor in `model` into `raw_data` form (see the module docs).
pub fn canonicalize(model: &mut ModelProto, external: ExternalFiles<'_>) -> Result<()> {
    let mut dense_budget = MAX_DENSE_BYTES;
    if let Some(graph) = model.graph.as_mut() {
        canonicalize_graph(graph, external, &mut dense_budget)?;
    }
    Ok(())
}

/// The external data files `model` refers to, each named once in first-use order, with
/// the first tensor stored in it. Refuses a location that leaves the model's folder.
pub fn external_files(model: &ModelProto) -> Result<Vec<(String, String)>> {
    let mut names = Vec::new();
    if let Some(graph) = &model.graph {
        collect_external(graph, &mut names)?;
    }
    Ok(names)
}

fn collect_external(graph: &GraphProto, names: &mut Vec<(String, String)>) -> Result<()> {
    fn note(t: &TensorProto, names: &mut Vec<(String, String)>) -> Result<()> {
        if t.data_location == DataLocation::External as i32 {
            let location = external_location(t)?;
            if !names.iter().any(|(file, _)| *file == location) {
                names.push((location, t.name.clone()));
            }
        }
        Ok(())
    }
    for t in graph.initializer.iter() {
        note(t, names)?;
    }
    for s in &graph.sparse_initializer {
        for t in s.values.iter().chain(&s.indices) {
            note(t, names)?;
        }
    }
    for node in &graph.node {
        for attr in &node.attribute {
            for t in attr.t.iter().chain(&attr.tensors) {
                note(t, names)?;
            }
            for s in attr.sparse_tensor.iter().chain(&attr.sparse_tensors) {
                for t in s.values.iter().chain(&s.indices) {
                    note(t, names)?;
                }
            }
            for g in attr.g.iter().chain(&attr.graphs) {
                collect_external(g, names)?;
            }
        }
    }
    Ok(())
}

/// Whether `name` names a file inside a model's folder: relative, no `..`, no empty part.
pub fn stays_in_folder(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != ".." && part != ".")
}

fn canonicalize_graph(
    graph: &mut GraphProto,
    external: ExternalFiles<'_>,
    dense_budget: &mut u64,
) -> Result<()> {
    for t in graph.initializer.iter_mut() {
        canonicalize_tensor(t, external)?;
    }
    for sparse in std::mem::take(&mut graph.sparse_initializer) {
        graph
            .initializer
            .push(densify(&sparse, external, dense_budget)?);
    }
    for node in graph.node.iter_mut() {
        let context = |attr: &str| format!("attribute `{attr}` of node `{}`", node.name);
        for attr in node.attribute.iter_mut() {
            let here = context(&attr.name);
            if let Some(t) = attr.t.as_mut() {
                name_if_unnamed(t, &here);
                canonicalize_tensor(t, external)?;
            }
            for t in attr.tensors.iter_mut() {
                name_if_unnamed(t, &here);
                canonicalize_tensor(t, external)?;
            }
            if let Some(s) = attr.sparse_tensor.take() {
                let mut dense = densify(&s, external, dense_budget)?;
                name_if_unnamed(&mut dense, &here);
                attr.t = Some(dense);
                attr.r#type = AttributeType::Tensor as i32;
            }
            if !attr.sparse_tensors.is_empty() {
                for s in std::mem::take(&mut attr.sparse_tensors) {
                    attr.tensors.push(densify(&s, external, dense_budget)?);
                }
                attr.r#type = AttributeType::Tensors as i32;
            }
            for g in attr.g.iter_mut().chain(attr.graphs.iter_mut()) {
                canonicalize_graph(g, external, dense_budget)?;
            }
        }
        if node.op_type == "Constant" && (node.domain.is_empty() || node.domain == "ai.onnx") {
            constant_value_as_tensor(&mut node.attribute, &node.name)?;
        }
    }
    Ok(())
}

fn name_if_unnamed(t: &mut TensorProto, context: &str) {
    if t.name.is_empty() {
        t.name = context.to_string();
    }
}

/// `Constant`'s one value attribute as a `value` tensor (a `sparse_value` is already
/// dense and called `sparse_value` here).
fn constant_value_as_tensor(attrs: &mut [AttributeProto], node: &str) -> Result<()> {
    let Some(attr) = attrs.iter_mut().find(|a| a.name != "value") else {
        return Ok(());
    };
    let name = format!("attribute `{}` of Constant `{node}`", attr.name);
    let (data_type, dims, raw): (DataType, Vec<i64>, Vec<u8>) = match attr.name.as_str() {
        "value_float" => (DataType::Float, vec![], attr.f.to_le_bytes().to_vec()),
        "value_floats" => (
            DataType::Float,
            vec![attr.floats.len() as i64],
            attr.floats.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        "value_int" => (DataType::Int64, vec![], attr.i.to_le_bytes().to_vec()),
        "value_ints" => (
            DataType::Int64,
            vec![attr.ints.len() as i64],
            attr.ints.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        "sparse_value" => {
            attr.name = "value".into();
            return Ok(());
        }
        "value_string" | "value_strings" => {
            return Err(EngineError::MalformedTensor {
                tensor: name,
                reason: "string constants are not supported".into(),
            })
        }
        _ => return Ok(()),
    };
    *attr = AttributeProto {
        name: "value".into(),
        r#type: AttributeType::Tensor as i32,
        t: Some(TensorProto {
            name,
            dims,
            data_type: data_type as i32,
            raw_data: raw,
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(())
}

/// One element type as stored, and how the engine holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Element {
    F32,
    F64,
    F16,
    Bf16,
    I64,
    /// A signed integer of this many bytes, held as i64.
    Signed(usize),
    /// `uint16`, held as i64.
    U16,
    U8,
    Bool,
    U32,
    /// `uint64`, held as i64 when every value fits.
    U64,
}

impl Element {
    fn of(data_type: i32) -> std::result::Result<Self, String> {
        Ok(match DataType::try_from(data_type) {
            Ok(DataType::Float) => Element::F32,
            Ok(DataType::Double) => Element::F64,
            Ok(DataType::Float16) => Element::F16,
            Ok(DataType::Bfloat16) => Element::Bf16,
            Ok(DataType::Int64) => Element::I64,
            Ok(DataType::Int32) => Element::Signed(4),
            Ok(DataType::Int16) => Element::Signed(2),
            Ok(DataType::Int8) => Element::Signed(1),
            Ok(DataType::Uint16) => Element::U16,
            Ok(DataType::Uint8) => Element::U8,
            Ok(DataType::Bool) => Element::Bool,
            Ok(DataType::Uint32) => Element::U32,
            Ok(DataType::Uint64) => Element::U64,
            Ok(other) => return Err(format!("element type {other:?} is not supported")),
            Err(_) => return Err(format!("element type {data_type} is not supported")),
        })
    }

    /// Bytes per element as stored in `raw_data`.
    fn width(self) -> usize {
        match self {
            Element::F64 | Element::I64 | Element::U64 => 8,
            Element::F32 | Element::U32 => 4,
            Element::F16 | Element::Bf16 | Element::U16 => 2,
            Element::U8 | Element::Bool => 1,
            Element::Signed(w) => w,
        }
    }

    /// The element type the canonical form stores.
    fn canonical(self) -> DataType {
        match self {
            Element::F32 => DataType::Float,
            Element::F64 => DataType::Double,
            Element::F16 => DataType::Float16,
            Element::Bf16 => DataType::Bfloat16,
            Element::I64 | Element::Signed(_) | Element::U16 | Element::U64 => DataType::Int64,
            Element::U8 => DataType::Uint8,
            Element::Bool => DataType::Bool,
            Element::U32 => DataType::Uint32,
        }
    }
}

fn malformed(t: &TensorProto, reason: impl Into<String>) -> EngineError {
    EngineError::MalformedTensor {
        tensor: t.name.clone(),
        reason: reason.into(),
    }
}

/// The number of elements `dims` holds, refusing negative or overflowing dimensions.
fn element_count(t: &TensorProto, dims: &[i64]) -> Result<u64> {
    dims.iter().try_fold(1u64, |n, &d| {
        let d = u64::try_from(d).map_err(|_| malformed(t, format!("dimension {d} < 0")))?;
        n.checked_mul(d)
            .ok_or_else(|| malformed(t, format!("shape {dims:?} overflows")))
    })
}

fn external_location(t: &TensorProto) -> Result<String> {
    let location = t
        .external_data
        .iter()
        .find(|e| e.key == "location")
        .map(|e| e.value.clone())
        .ok_or_else(|| malformed(t, "external data without a `location`"))?;
    if !stays_in_folder(&location) {
        return Err(malformed(
            t,
            format!("external data location `{location}` leaves the model's folder"),
        ));
    }
    if location == crate::store::ONNX_FILE || location == crate::store::MANIFEST_FILE {
        return Err(malformed(
            t,
            format!("external data location `{location}` is a name the store keeps for itself"),
        ));
    }
    Ok(location)
}

/// The stored elements of `t` as little-endian bytes in its own element type.
fn stored_bytes<'t, 'e: 't>(
    t: &'t TensorProto,
    element: Element,
    count: u64,
    external: ExternalFiles<'e>,
) -> Result<Cow<'t, [u8]>> {
    if t.segment.is_some() {
        return Err(malformed(t, "segmented tensors are not supported"));
    }
    let bytes: Cow<'t, [u8]> = if t.data_location == DataLocation::External as i32 {
        let location = external_location(t)?;
        let file = external(&location).ok_or_else(|| EngineError::MissingExternalData {
            tensor: t.name.clone(),
            file: location.clone(),
        })?;
        let number =
            |key: &str| -> Result<Option<u64>> {
                match t.external_data.iter().find(|e| e.key == key) {
                    None => Ok(None),
                    Some(e) => e.value.parse().map(Some).map_err(|_| {
                        malformed(t, format!("external data `{key}` is `{}`", e.value))
                    }),
                }
            };
        let offset = number("offset")?.unwrap_or(0);
        let len = file.len() as u64;
        let length = number("length")?.unwrap_or(len.saturating_sub(offset));
        let end = offset.checked_add(length).filter(|&e| e <= len).ok_or_else(|| {
            malformed(
                t,
                format!("external data at {offset}+{length} passes the end of `{location}` ({len} bytes)"),
            )
        })?;
        Cow::Borrowed(&file[offset as usize..end as usize])
    } else if t.data_location != DataLocation::Default as i32 {
        return Err(malformed(
            t,
            format!("data location {} is not defined", t.data_location),
        ));
    } else if !t.raw_data.is_empty() || count == 0 {
        Cow::Borrowed(t.raw_data.as_slice())
    } else {
        Cow::Owned(typed_bytes(t, element)?)
    };
    let want = count
        .checked_mul(element.width() as u64)
        .ok_or_else(|| malformed(t, "size overflows"))?;
    if bytes.len() as u64 != want {
        return Err(malformed(
            t,
            format!(
                "holds {} bytes; shape {:?} of {element:?} needs {want}",
                bytes.len(),
                t.dims
            ),
        ));
    }
    Ok(bytes)
}

/// The typed field `element` is stored in, as little-endian bytes of `element`'s width.
fn typed_bytes(t: &TensorProto, element: Element) -> Result<Vec<u8>> {
    let narrow = |v: i64, lo: i64, hi: i64| -> Result<i64> {
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(malformed(
                t,
                format!("value {v} does not fit its element type {element:?}"),
            ))
        }
    };
    let ints = || t.int32_data.iter().map(|&v| v as i64);
    let mut out = Vec::new();
    match element {
        Element::F32 => out.extend(t.float_data.iter().flat_map(|v| v.to_le_bytes())),
        Element::F64 => out.extend(t.double_data.iter().flat_map(|v| v.to_le_bytes())),
        Element::I64 => out.extend(t.int64_data.iter().flat_map(|v| v.to_le_bytes())),
        Element::Signed(4) => out.extend(t.int32_data.iter().flat_map(|v| v.to_le_bytes())),
        Element::Signed(2) => {
            for v in ints() {
                out.extend((narrow(v, i16::MIN.into(), i16::MAX.into())? as i16).to_le_bytes());
            }
        }
        Element::Signed(_) => {
            for v in ints() {
                out.extend((narrow(v, i8::MIN.into(), i8::MAX.into())? as i8).to_le_bytes());
            }
        }
        Element::U16 | Element::F16 | Element::Bf16 => {
            for v in ints() {
                out.extend((narrow(v, 0, u16::MAX.into())? as u16).to_le_bytes());
            }
        }
        Element::U8 => {
            for v in ints() {
                out.push(narrow(v, 0, u8::MAX.into())? as u8);
            }
        }
        Element::Bool => {
            for v in ints() {
                out.push(narrow(v, 0, 1)? as u8);
            }
        }
        Element::U32 => {
            for &v in &t.uint64_data {
                let v = u32::try_from(v)
                    .map_err(|_| malformed(t, format!("value {v} does not fit uint32")))?;
                out.extend(v.to_le_bytes());
            }
        }
        Element::U64 => out.extend(t.uint64_data.iter().flat_map(|v| v.to_le_bytes())),
    }
    Ok(out)
}

/// `bytes` of `element` in the canonical form's element type.
fn canonical_bytes(t: &TensorProto, element: Element, bytes: &[u8]) -> Result<Vec<u8>> {
    let widen = |w: usize, signed: bool| -> Vec<u8> {
        bytes
            .chunks_exact(w)
            .flat_map(|c| {
                let v: i64 = match (w, signed) {
                    (4, true) => i32::from_le_bytes([c[0], c[1], c[2], c[3]]).into(),
                    (2, true) => i16::from_le_bytes([c[0], c[1]]).into(),
                    (1, true) => (c[0] as i8).into(),
                    _ => u16::from_le_bytes([c[0], c[1]]).into(),
                };
                v.to_le_bytes()
            })
            .collect()
    };
    Ok(match element {
        Element::Signed(w) => widen(w, true),
        Element::U16 => widen(2, false),
        Element::U64 => {
            for c in bytes.chunks_exact(8) {
                let v = u64::from_le_bytes(c.try_into().unwrap_or_default());
                if i64::try_from(v).is_err() {
                    return Err(malformed(
                        t,
                        format!("uint64 value {v} is over the largest the engine holds (2^63 - 1)"),
                    ));
                }
            }
            bytes.to_vec()
        }
        Element::Bool => {
            if let Some(v) = bytes.iter().find(|&&b| b > 1) {
                return Err(malformed(t, format!("bool value {v}")));
            }
            bytes.to_vec()
        }
        _ => bytes.to_vec(),
    })
}

/// `t` in the canonical form, in place. A tensor already in it is left untouched.
fn canonicalize_tensor(t: &mut TensorProto, external: ExternalFiles<'_>) -> Result<()> {
    let element = Element::of(t.data_type).map_err(|why| malformed(t, why))?;
    let already = t.data_location == DataLocation::Default as i32
        && t.segment.is_none()
        && element.canonical() as i32 == t.data_type
        && !matches!(element, Element::U64 | Element::Bool);
    let count = element_count(t, &t.dims)?;
    let raw = {
        let bytes = stored_bytes(t, element, count, external)?;
        if already && matches!(bytes, Cow::Borrowed(_)) {
            return Ok(());
        }
        canonical_bytes(t, element, &bytes)?
    };
    *t = TensorProto {
        name: std::mem::take(&mut t.name),
        dims: std::mem::take(&mut t.dims),
        data_type: element.canonical() as i32,
        raw_data: raw,
        doc_string: std::mem::take(&mut t.doc_string),
        ..Default::default()
    };
    Ok(())
}

/// A sparse tensor as a dense one in the canonical form: zeros but at `indices`, which are
/// either linear positions (`[NNZ]`) or coordinates (`[NNZ, rank]`), each position once.
fn densify(
    sparse: &SparseTensorProto,
    external: ExternalFiles<'_>,
    dense_budget: &mut u64,
) -> Result<TensorProto> {
    let empty = TensorProto::default();
    let values = sparse.values.as_ref().unwrap_or(&empty);
    let name = values.name.clone();
    let refuse = |reason: String| EngineError::MalformedTensor {
        tensor: name.clone(),
        reason: format!("sparse tensor: {reason}"),
    };
    let mut values = values.clone();
    canonicalize_tensor(&mut values, external)?;
    let mut indices = sparse.indices.clone().unwrap_or_default();
    if indices.name.is_empty() {
        indices.name = format!("{name} (indices)");
    }
    canonicalize_tensor(&mut indices, external)?;
    if indices.data_type != DataType::Int64 as i32 {
        return Err(refuse("indices must be integers".into()));
    }
    let element = Element::of(values.data_type).map_err(refuse)?;
    let width = element.width();
    let count = element_count(&values, &sparse.dims)?;
    let bytes = count
        .checked_mul(width as u64)
        .filter(|&b| b <= *dense_budget)
        .ok_or_else(|| {
            refuse(format!(
                "shape {:?} takes the model's sparse tensors over {MAX_DENSE_BYTES} bytes dense",
                sparse.dims
            ))
        })?;
    *dense_budget -= bytes;
    let nnz = values.raw_data.len() / width;
    if values.dims.len() != 1 {
        return Err(refuse(format!(
            "values have shape {:?}, not [NNZ]",
            values.dims
        )));
    }
    let positions: Vec<i64> = indices
        .raw_data
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();
    let rank = sparse.dims.len();
    let linear: Vec<u64> = match indices.dims.as_slice() {
        [n] if *n as usize == nnz => positions
            .iter()
            .map(|&p| u64::try_from(p).map_err(|_| refuse(format!("index {p} < 0"))))
            .collect::<Result<_>>()?,
        [n, r] if *n as usize == nnz && *r as usize == rank => positions
            .chunks_exact(rank.max(1))
            .map(|coords| {
                coords
                    .iter()
                    .zip(&sparse.dims)
                    .try_fold(0u64, |at, (&c, &d)| {
                        if c < 0 || c >= d {
                            return Err(refuse(format!("coordinate {c} outside [0, {d})")));
                        }
                        Ok(at * d as u64 + c as u64)
                    })
            })
            .collect::<Result<_>>()?,
        other => {
            return Err(refuse(format!(
                "indices have shape {other:?}; {nnz} values need [{nnz}] or [{nnz}, {rank}]"
            )))
        }
    };
    if linear.len() != nnz {
        return Err(refuse(format!(
            "{} positions for {nnz} values",
            linear.len()
        )));
    }
    let mut dense = vec![0u8; bytes as usize];
    let mut previous: Option<u64> = None;
    for (k, &at) in linear.iter().enumerate() {
        if at >= count {
            return Err(refuse(format!("position {at} outside {count} elements")));
        }
        if previous.is_some_and(|p| at <= p) {
            return Err(refuse(
                "indices must be strictly increasing (each position once)".into(),
            ));
        }
        previous = Some(at);
        let (from, to) = (k * width, at as usize * width);
        dense[to..to + width].copy_from_slice(&values.raw_data[from..from + width]);
    }
    Ok(TensorProto {
        name,
        dims: sparse.dims.clone(),
        data_type: values.data_type,
        raw_data: dense,
        ..Default::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn canonical(mut t: TensorProto) -> Result<TensorProto> {
        canonicalize_tensor(&mut t, &|_| None)?;
        Ok(t)
    }

    fn tensor(data_type: DataType, dims: &[i64]) -> TensorProto {
        TensorProto {
            name: "t".into(),
            dims: dims.to_vec(),
            data_type: data_type as i32,
            ..Default::default()
        }
    }

    fn i64s(t: &TensorProto) -> Vec<i64> {
        t.raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn typed_fields_become_raw_data_and_narrow_integers_widen() {
        let t = canonical(TensorProto {
            float_data: vec![1.5, -2.0],
            ..tensor(DataType::Float, &[2])
        })
        .unwrap();
        assert_eq!(
            t.raw_data,
            [1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat()
        );
        assert!(t.float_data.is_empty());
        for (ty, values) in [
            (DataType::Int32, vec![-7, 70000]),
            (DataType::Int16, vec![-7, 300]),
            (DataType::Int8, vec![-7, 100]),
            (DataType::Uint16, vec![7, 65535]),
        ] {
            let t = canonical(TensorProto {
                int32_data: values.clone(),
                ..tensor(ty, &[1, 2])
            })
            .unwrap();
            assert_eq!(t.data_type, DataType::Int64 as i32, "{ty:?}");
            assert_eq!(t.dims, [1, 2]);
            assert_eq!(
                i64s(&t),
                values.iter().map(|&v| v as i64).collect::<Vec<_>>()
            );
        }
        // Raw int32 widens the same way.
        let t = canonical(TensorProto {
            raw_data: [(-3i32).to_le_bytes(), 9i32.to_le_bytes()].concat(),
            ..tensor(DataType::Int32, &[2])
        })
        .unwrap();
        assert_eq!(i64s(&t), [-3, 9]);
    }

    #[test]
    fn a_value_outside_its_type_or_a_wrong_count_is_malformed() {
        for t in [
            TensorProto {
                int32_data: vec![200],
                ..tensor(DataType::Int8, &[1])
            },
            TensorProto {
                int32_data: vec![2],
                ..tensor(DataType::Bool, &[1])
            },
            TensorProto {
                float_data: vec![1.0, 2.0, 3.0],
                ..tensor(DataType::Float, &[2])
            },
            TensorProto {
                raw_data: vec![0; 7],
                ..tensor(DataType::Float, &[2])
            },
            tensor(DataType::Float, &[-1]),
            tensor(DataType::Float, &[i64::MAX, i64::MAX]),
            TensorProto {
                uint64_data: vec![u64::MAX],
                ..tensor(DataType::Uint64, &[1])
            },
            tensor(DataType::String, &[0]),
        ] {
            match canonical(t.clone()) {
                Err(EngineError::MalformedTensor { tensor, .. }) => assert_eq!(tensor, "t"),
                other => panic!("{t:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn external_data_is_read_at_its_offset_and_length_from_the_lookup_only() {
        let file: Vec<u8> = (0u8..32).collect();
        let lookup = |name: &str| (name == "weights.bin").then_some(file.as_slice());
        let entry = |key: &str, value: &str| candle_onnx::onnx::StringStringEntryProto {
            key: key.into(),
            value: value.into(),
        };
        let ext = |entries: Vec<candle_onnx::onnx::StringStringEntryProto>| TensorProto {
            data_location: DataLocation::External as i32,
            external_data: entries,
            ..tensor(DataType::Uint8, &[4])
        };
        let mut t = ext(vec![
            entry("location", "weights.bin"),
            entry("offset", "8"),
            entry("length", "4"),
        ]);
        canonicalize_tensor(&mut t, &lookup).unwrap();
        assert_eq!(t.raw_data, [8, 9, 10, 11]);
        assert!(t.external_data.is_empty());
        assert_eq!(t.data_location, DataLocation::Default as i32);

        let mut missing = ext(vec![entry("location", "other.bin")]);
        match canonicalize_tensor(&mut missing, &lookup) {
            Err(EngineError::MissingExternalData { file, .. }) => assert_eq!(file, "other.bin"),
            other => panic!("{other:?}"),
        }
        for entries in [
            vec![entry("location", "../weights.bin")],
            vec![entry("location", "model.onnx")],
            vec![entry("location", "/etc/passwd")],
            vec![entry("location", "weights.bin"), entry("offset", "30")],
            vec![entry("location", "weights.bin"), entry("offset", "x")],
            vec![entry("offset", "0")],
        ] {
            let mut t = ext(entries.clone());
            assert!(
                matches!(
                    canonicalize_tensor(&mut t, &lookup),
                    Err(EngineError::MalformedTensor { .. })
                ),
                "{entries:?}"
            );
        }
    }

    #[test]
    fn sparse_tensors_densify_from_linear_or_coordinate_indices() {
        let values = TensorProto {
            name: "s".into(),
            float_data: vec![5.0, 6.0],
            ..tensor(DataType::Float, &[2])
        };
        let f32s = |t: &TensorProto| -> Vec<f32> {
            t.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        let linear = SparseTensorProto {
            values: Some(values.clone()),
            indices: Some(TensorProto {
                int64_data: vec![1, 5],
                ..tensor(DataType::Int64, &[2])
            }),
            dims: vec![2, 3],
        };
        let dense = densify(&linear, &|_| None, &mut MAX_DENSE_BYTES.clone()).unwrap();
        assert_eq!(dense.name, "s");
        assert_eq!(dense.dims, [2, 3]);
        assert_eq!(f32s(&dense), [0.0, 5.0, 0.0, 0.0, 0.0, 6.0]);
        let coords = SparseTensorProto {
            indices: Some(TensorProto {
                int64_data: vec![0, 1, 1, 2],
                ..tensor(DataType::Int64, &[2, 2])
            }),
            ..linear.clone()
        };
        assert_eq!(
            f32s(&densify(&coords, &|_| None, &mut MAX_DENSE_BYTES.clone()).unwrap()),
            f32s(&dense)
        );
        for (indices, dims) in [
            (vec![5, 1], vec![2]),          // not increasing
            (vec![1, 6], vec![2]),          // outside
            (vec![1, 1], vec![2]),          // twice
            (vec![-1, 1], vec![2]),         // negative
            (vec![0, 3, 1, 0], vec![2, 2]), // coordinate outside its dimension
        ] {
            let bad = SparseTensorProto {
                indices: Some(TensorProto {
                    int64_data: indices.clone(),
                    ..tensor(DataType::Int64, &dims)
                }),
                ..linear.clone()
            };
            assert!(
                matches!(
                    densify(&bad, &|_| None, &mut MAX_DENSE_BYTES.clone()),
                    Err(EngineError::MalformedTensor { .. })
                ),
                "{indices:?}"
            );
        }
        let bomb = SparseTensorProto {
            dims: vec![1 << 20, 1 << 20],
            ..linear
        };
        assert!(matches!(
            densify(&bomb, &|_| None, &mut MAX_DENSE_BYTES.clone()),
            Err(EngineError::MalformedTensor { .. })
        ));
    }

    #[test]
    fn sparse_tensors_share_one_budget() {
        let sparse = |name: &str| SparseTensorProto {
            values: Some(TensorProto {
                name: name.into(),
                float_data: vec![1.0],
                ..tensor(DataType::Float, &[1])
            }),
            indices: Some(TensorProto {
                int64_data: vec![0],
                ..tensor(DataType::Int64, &[1])
            }),
            dims: vec![1024],
        };
        // Each is 4 KiB dense; a budget just under 8 KiB takes the first, not the second.
        let mut budget = 2 * 4096 - 1;
        let mut graph = GraphProto {
            sparse_initializer: vec![sparse("a"), sparse("b"), sparse("c")],
            ..Default::default()
        };
        match canonicalize_graph(&mut graph, &|_| None, &mut budget) {
            Err(EngineError::MalformedTensor { tensor, .. }) => assert_eq!(tensor, "b"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn constant_scalar_and_list_attributes_become_its_value_tensor() {
        let mut attrs = vec![AttributeProto {
            name: "value_ints".into(),
            ints: vec![3, -4],
            r#type: AttributeType::Ints as i32,
            ..Default::default()
        }];
        constant_value_as_tensor(&mut attrs, "c").unwrap();
        let t = attrs[0].t.as_ref().unwrap();
        assert_eq!(attrs[0].name, "value");
        assert_eq!(
            (t.dims.as_slice(), t.data_type),
            (&[2i64][..], DataType::Int64 as i32)
        );
        assert_eq!(i64s(t), [3, -4]);
        let mut attrs = vec![AttributeProto {
            name: "value_float".into(),
            f: 0.25,
            r#type: AttributeType::Float as i32,
            ..Default::default()
        }];
        constant_value_as_tensor(&mut attrs, "c").unwrap();
        let t = attrs[0].t.as_ref().unwrap();
        assert!(t.dims.is_empty());
        assert_eq!(t.raw_data, 0.25f32.to_le_bytes());
    }

    #[test]
    fn folder_rule_refuses_paths_that_leave_it() {
        for ok in ["w.bin", "weights/w.bin", "model.onnx.data"] {
            assert!(stays_in_folder(ok), "{ok}");
        }
        for bad in ["", "/w", "../w", "a/../w", "a//w", "./w", "a\\w"] {
            assert!(!stays_in_folder(bad), "{bad}");
        }
    }
}
