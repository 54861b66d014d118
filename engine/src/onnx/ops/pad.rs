//! `Pad` in `constant` and `edge` modes (candle-onnx's own `Pad` only reflects), with
//! negative pads (cropping), a `constant_value` input and the opset-18 `axes` input.

use super::{attrs, dense};
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;

/// Whether this node is for candle-onnx (`reflect` mode).
pub fn candle_handles(node: &NodeProto) -> bool {
    attrs::string(node, "mode", "constant") == "reflect"
}

/// `Pad(data, pads, constant_value?, axes?)`.
pub fn pad(
    node: &NodeProto,
    x: &Tensor,
    pads: &Tensor,
    value: Option<&Tensor>,
    axes: Option<&Tensor>,
) -> Result<Tensor> {
    let mode = attrs::string(node, "mode", "constant");
    let rank = x.rank();
    let pads = pads
        .flatten_all()?
        .to_dtype(candle_core::DType::I64)?
        .to_vec1::<i64>()?;
    let axes: Vec<usize> = match axes {
        Some(a) => a
            .flatten_all()?
            .to_dtype(candle_core::DType::I64)?
            .to_vec1::<i64>()?
            .into_iter()
            .map(|a| attrs::axis("Pad", a, rank))
            .collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        bail!("Pad: {} pads for {} axes", pads.len(), axes.len())
    }
    let value = match value {
        Some(v) if v.elem_count() > 0 => dense::to_f64(v)?[0],
        _ => 0.0,
    };
    let mut y = x.clone();
    for (i, &axis) in axes.iter().enumerate() {
        let (before, after) = (pads[i], pads[axes.len() + i]);
        // Negative pads crop.
        let len = y.dim(axis)? as i64;
        let (start, end) = ((-before).max(0), len - (-after).max(0));
        if start > end {
            bail!("Pad: pads {before}, {after} crop more than axis {axis} holds ({len})")
        }
        y = y.narrow(axis, start as usize, (end - start) as usize)?;
        let (before, after) = (before.max(0) as usize, after.max(0) as usize);
        if before == 0 && after == 0 {
            continue;
        }
        y = match mode.as_str() {
            "constant" => {
                let block = |n: usize| -> Result<Tensor> {
                    let mut dims = y.dims().to_vec();
                    dims[axis] = n;
                    let count = dims.iter().product();
                    dense::from_f64(vec![value; count], &dims, y.dtype())
                };
                Tensor::cat(&[&block(before)?, &y, &block(after)?], axis)?
            }
            "edge" => {
                if y.dim(axis)? == 0 {
                    bail!("Pad: edge mode on an empty axis {axis}")
                }
                y.pad_with_same(axis, before, after)?
            }
            other => bail!("Pad: mode `{other}` is not supported"),
        };
    }
    Ok(y)
}
