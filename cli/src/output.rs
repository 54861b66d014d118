//! Printing outputs for people and for scripts.

use inferchain_primitives::io::{DType, Payload, Tensor};
use serde_json::{json, Value};

/// A tensor's values as JSON numbers (f32 printed in its shortest round-trip form).
pub fn tensor_values(t: &Tensor) -> Value {
    let size = t.dtype.size();
    let chunks = t.data.chunks_exact(size);
    let values: Vec<Value> = match t.dtype {
        DType::F32 => chunks
            .map(|c| json!(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        DType::F64 => chunks
            .map(|c| {
                json!(f64::from_le_bytes([
                    c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
                ]))
            })
            .collect(),
        DType::I64 => chunks
            .map(|c| {
                json!(i64::from_le_bytes([
                    c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
                ]))
            })
            .collect(),
        DType::I32 => chunks
            .map(|c| json!(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        DType::U8 => chunks.map(|c| json!(c[0])).collect(),
    };
    Value::Array(values)
}

pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::I64 => "i64",
        DType::I32 => "i32",
        DType::U8 => "u8",
    }
}

/// `{dtype, shape, data}` of a tensor.
pub fn tensor_json(t: &Tensor) -> Value {
    json!({ "dtype": dtype_name(t.dtype), "shape": t.shape, "data": tensor_values(t) })
}

/// A short human line for a tensor: dtype, shape and the first values.
pub fn tensor_line(t: &Tensor) -> String {
    const SHOWN: usize = 8;
    let values = tensor_values(t);
    let all = values.as_array().cloned().unwrap_or_default();
    let head: Vec<String> = all.iter().take(SHOWN).map(|v| v.to_string()).collect();
    let more = if all.len() > SHOWN {
        format!(", … {} more", all.len() - SHOWN)
    } else {
        String::new()
    };
    format!(
        "{} {:?} [{}{}]",
        dtype_name(t.dtype),
        t.shape,
        head.join(", "),
        more
    )
}

/// The output tensors of a payload (text outputs have none).
pub fn tensors(p: &Payload) -> &[Tensor] {
    match p {
        Payload::Tensors(ts) => ts,
        Payload::Text(_) | Payload::Prompt { .. } | Payload::Generation { .. } => &[],
    }
}

/// A generation's text and token ids, if `p` is one.
pub fn generation(p: &Payload) -> Option<(&[u32], String)> {
    match p {
        Payload::Generation { tokens, text } => {
            Some((tokens, String::from_utf8_lossy(text).into_owned()))
        }
        _ => None,
    }
}

pub fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}
