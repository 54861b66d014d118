//! Reading a node's attributes, with the ONNX defaults.

use candle_core::{bail, Result};
use candle_onnx::onnx::{AttributeProto, NodeProto};

fn find<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// An integer attribute, or `default`.
pub fn int(node: &NodeProto, name: &str, default: i64) -> i64 {
    find(node, name).map(|a| a.i).unwrap_or(default)
}

/// A float attribute, or `default`.
pub fn float(node: &NodeProto, name: &str, default: f32) -> f32 {
    find(node, name).map(|a| a.f).unwrap_or(default)
}

/// A list-of-integers attribute, if present.
pub fn ints<'a>(node: &'a NodeProto, name: &str) -> Option<&'a [i64]> {
    find(node, name).map(|a| a.ints.as_slice())
}

/// A string attribute, or `default`.
pub fn string(node: &NodeProto, name: &str, default: &str) -> String {
    find(node, name)
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
        .unwrap_or_else(|| default.to_string())
}

/// A list of non-negative integers of length `n` (`default` repeated when absent).
pub fn sizes(node: &NodeProto, name: &str, n: usize, default: usize) -> Result<Vec<usize>> {
    match ints(node, name) {
        None => Ok(vec![default; n]),
        Some(v) if v.len() == n && v.iter().all(|&x| x >= 0) => {
            Ok(v.iter().map(|&x| x as usize).collect())
        }
        Some(v) => bail!(
            "{}: attribute `{name}` is {v:?}, expected {n} non-negative values",
            node.op_type
        ),
    }
}

/// An axis in `-rank..rank` made non-negative.
pub fn axis(op: &str, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        bail!("{op}: axis {axis} is out of range for rank {rank}")
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// A list-of-floats attribute, if present.
pub fn floats<'a>(node: &'a NodeProto, name: &str) -> Option<&'a [f32]> {
    find(node, name).map(|a| a.floats.as_slice())
}

/// A list-of-strings attribute (empty when absent).
pub fn strings(node: &NodeProto, name: &str) -> Vec<String> {
    find(node, name)
        .map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the node has attribute `name`.
pub fn has(node: &NodeProto, name: &str) -> bool {
    find(node, name).is_some()
}
