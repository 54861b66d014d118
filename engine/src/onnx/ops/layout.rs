//! Operators that only move or mask elements, where candle-onnx's own forms differ from
//! the spec: `Unsqueeze` with several axes (candle inserts them from the highest, so
//! `[a, b]` with axes `[1, 2]` came out `[a, 1, b, 1]`), `Trilu` (candle multiplies by a
//! 0/1 mask, so an infinite value outside the kept triangle became NaN instead of 0),
//! `Tile` with a repeat of 0 (ignored by candle; the spec empties the axis), and
//! `ReduceMax`/`ReduceMin` given an empty `axes` input (the spec reduces every axis);
//! and ones candle-onnx lacks: `DepthToSpace`, `SpaceToDepth`.

use super::attrs;
use candle_core::{bail, DType, Result, Tensor};
use candle_onnx::onnx::NodeProto;

fn ints_of(op: &str, t: &Tensor) -> Result<Vec<i64>> {
    if t.rank() > 1 {
        bail!(
            "{op}: expected a 1-D list of integers, got rank {}",
            t.rank()
        )
    }
    t.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()
}

/// `Unsqueeze(x, axes)`: each axis counts in the output's rank; inserted in ascending
/// order so each lands where the spec puts it.
pub fn unsqueeze(node: &NodeProto, x: &Tensor, axes: Option<&Tensor>) -> Result<Tensor> {
    let listed = match axes {
        Some(t) => ints_of("Unsqueeze", t)?,
        None => match attrs::ints(node, "axes") {
            Some(a) => a.to_vec(),
            None => bail!("Unsqueeze: no axes"),
        },
    };
    let rank = x.rank() + listed.len();
    let mut axes = listed
        .iter()
        .map(|&a| attrs::axis("Unsqueeze", a, rank))
        .collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        bail!("Unsqueeze: an axis is listed twice")
    }
    let mut y = x.clone();
    for axis in axes {
        y = y.unsqueeze(axis)?;
    }
    Ok(y)
}

/// `Trilu(x, k)`: keeps the upper (`upper = 1`) or lower triangle of each matrix in the
/// last two axes, from diagonal `k`; every other element is exactly zero.
pub fn trilu(node: &NodeProto, x: &Tensor, k: Option<&Tensor>) -> Result<Tensor> {
    let k = match k {
        Some(t) => match ints_of("Trilu", t)?.as_slice() {
            [k] => *k,
            other => bail!("Trilu: k must be one integer, got {} values", other.len()),
        },
        None => 0,
    };
    let upper = attrs::int(node, "upper", 1) != 0;
    let dims = x.dims();
    if dims.len() < 2 {
        bail!("Trilu: input rank {} < 2", dims.len())
    }
    let (n, m) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let mut keep = vec![0u8; n * m];
    for i in 0..n {
        for j in 0..m {
            let (i, j) = (i as i64, j as i64);
            keep[i as usize * m + j as usize] =
                u8::from(if upper { j >= i + k } else { j <= i + k });
        }
    }
    let keep = Tensor::from_vec(keep, (n, m), x.device())?.broadcast_as(dims)?;
    let zeros = x.zeros_like()?;
    keep.where_cond(x, &zeros)
}

/// `Tile(x, repeats)`: each axis repeated; a repeat of 0 empties the axis.
pub fn tile(x: &Tensor, repeats: &Tensor) -> Result<Tensor> {
    let repeats = ints_of("Tile", repeats)?;
    if repeats.len() != x.rank() {
        bail!(
            "Tile: {} repeats for an input of rank {}",
            repeats.len(),
            x.rank()
        )
    }
    let mut y = x.clone();
    for (axis, &r) in repeats.iter().enumerate() {
        match r {
            r if r < 0 => bail!("Tile: negative repeat {r}"),
            0 => y = y.narrow(axis, 0, 0)?,
            1 => {}
            r => y = Tensor::cat(&vec![y.clone(); r as usize], axis)?,
        }
    }
    Ok(y)
}

/// Whether a `ReduceMax`/`ReduceMin` node is given an empty `axes` input and must reduce
/// every axis (candle-onnx would leave the input as it is).
pub fn reduces_all_by_empty_axes(node: &NodeProto, axes: Option<&Tensor>) -> bool {
    axes.is_some_and(|a| a.elem_count() == 0) && attrs::int(node, "noop_with_empty_axes", 0) == 0
}

/// `ReduceMax` (`max = true`) or `ReduceMin` over every axis.
pub fn reduce_extreme_all(node: &NodeProto, x: &Tensor, max: bool) -> Result<Tensor> {
    if x.elem_count() == 0 {
        bail!("{}: reduction over zero-size tensor", node.op_type)
    }
    let flat = x.flatten_all()?;
    let y = if max { flat.max(0)? } else { flat.min(0)? };
    if attrs::int(node, "keepdims", 1) != 0 {
        y.reshape(vec![1usize; x.rank()])
    } else {
        Ok(y)
    }
}

/// `DepthToSpace` (`mode` DCR, the default, or CRD) and `SpaceToDepth` (DCR; CRD from
/// opset 28): blocks of `blocksize²` channels moved to and from `blocksize × blocksize`
/// spatial blocks of a 4-D NCHW tensor, as the spec's reshape–transpose–reshape.
pub fn depth_space(node: &NodeProto, x: &Tensor, opset: i64) -> Result<Tensor> {
    let op = node.op_type.as_str();
    let (b, c, h, w) = match x.dims() {
        &[b, c, h, w] => (b, c, h, w),
        other => bail!("{op}: input of shape {other:?}, expected 4-D NCHW"),
    };
    let bs = attrs::int(node, "blocksize", 0);
    if bs <= 0 {
        bail!("{op}: attribute `blocksize` must be positive, got {bs}")
    }
    let bs = bs as usize;
    let Some(block) = bs.checked_mul(bs) else {
        bail!("{op}: blocksize {bs} is too large")
    };
    // `mode` exists from DepthToSpace 11 and SpaceToDepth 28.
    let has_mode = opset >= if op == "DepthToSpace" { 11 } else { 28 };
    let mode = if has_mode {
        attrs::string(node, "mode", "DCR")
    } else {
        "DCR".to_string()
    };
    let crd = match mode.as_str() {
        "DCR" => false,
        "CRD" => true,
        other => bail!("{op}: unknown mode `{other}`"),
    };
    if op == "DepthToSpace" {
        if c % block != 0 {
            bail!("{op}: {c} channels are not a multiple of blocksize² = {block}")
        }
        let depth = c / block;
        let (split, order) = if crd {
            (vec![b, depth, bs, bs, h, w], vec![0, 1, 4, 2, 5, 3])
        } else {
            (vec![b, bs, bs, depth, h, w], vec![0, 3, 4, 1, 5, 2])
        };
        x.reshape(split)?
            .permute(order)?
            .contiguous()?
            .reshape((b, depth, h * bs, w * bs))
    } else {
        if h % bs != 0 || w % bs != 0 {
            bail!("{op}: spatial size {h}×{w} is not a multiple of blocksize {bs}")
        }
        let order = if crd {
            vec![0, 1, 3, 5, 2, 4]
        } else {
            vec![0, 3, 5, 1, 2, 4]
        };
        x.reshape(vec![b, c, h / bs, bs, w / bs, bs])?
            .permute(order)?
            .contiguous()?
            .reshape((b, c * block, h / bs, w / bs))
    }
}
