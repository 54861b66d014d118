//! `Conv` where candle's conv1d/conv2d cannot take it (three or more spatial axes,
//! `auto_pad`), and `ConvTranspose` in every form (groups, dilation, asymmetric pads,
//! `output_padding`, `output_shape`, `auto_pad`).
//!
//! Both are direct loops accumulating in f64 in a fixed order (input channel, then
//! kernel row-major), so they give the same bits on every CPU; they are not fast.

use super::{attrs, dense, window::Window};
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;

/// Whether candle-onnx's Conv takes this node (one or two spatial axes, explicit pads).
pub fn candle_handles(node: &NodeProto, w: &Tensor) -> bool {
    matches!(w.rank(), 3 | 4) && attrs::string(node, "auto_pad", "NOTSET") == "NOTSET"
}

/// `Conv(X, W, B?)`: X [N, C, spatial…], W [M, C/group, kernel…], B [M].
pub fn conv(node: &NodeProto, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let (xd, wd) = (x.dims().to_vec(), w.dims().to_vec());
    if xd.len() < 3 || wd.len() != xd.len() {
        bail!("Conv: input {xd:?} and weight {wd:?} ranks do not match")
    }
    let group = attrs::int(node, "group", 1).max(1) as usize;
    let (n, c, m) = (xd[0], xd[1], wd[0]);
    if c != wd[1] * group || m % group != 0 {
        bail!("Conv: {c} input channels, weight {wd:?} and group {group} do not fit")
    }
    let window = Window::of(node, &xd[2..], &wd[2..])?;
    let taps = window.taps();
    let (xv, wv) = (dense::to_f64(x)?, dense::to_f64(w)?);
    let bias = b.map(dense::to_f64).transpose()?;
    let (cg, mg) = (c / group, m / group);
    let (in_len, k_len, out_len) = (window.input_len(), window.kernel_len(), window.output_len());
    let mut out = vec![0f64; n * m * out_len];
    for batch in 0..n {
        for oc in 0..m {
            let g = oc / mg;
            let y = &mut out[(batch * m + oc) * out_len..][..out_len];
            for (o, (offsets, _)) in taps.iter().enumerate() {
                let mut acc = bias.as_ref().map_or(0.0, |b| b[oc]);
                for ic in 0..cg {
                    let plane = &xv[(batch * c + g * cg + ic) * in_len..][..in_len];
                    let kernel = &wv[(oc * cg + ic) * k_len..][..k_len];
                    for (k, offset) in offsets.iter().enumerate() {
                        if let Some(p) = offset {
                            acc += plane[*p] * kernel[k];
                        }
                    }
                }
                y[o] = acc;
            }
        }
    }
    let mut dims = vec![n, m];
    dims.extend(window.output_dims());
    dense::from_f64(out, &dims, x.dtype())
}

/// `ConvTranspose(X, W, B?)`: X [N, C, spatial…], W [C, M/group, kernel…], B [M].
pub fn conv_transpose(
    node: &NodeProto,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> Result<Tensor> {
    let (xd, wd) = (x.dims().to_vec(), w.dims().to_vec());
    if xd.len() < 3 || wd.len() != xd.len() {
        bail!("ConvTranspose: input {xd:?} and weight {wd:?} ranks do not match")
    }
    let s = xd.len() - 2;
    let group = attrs::int(node, "group", 1).max(1) as usize;
    let (n, c) = (xd[0], xd[1]);
    if c != wd[0] || c % group != 0 {
        bail!("ConvTranspose: {c} input channels, weight {wd:?} and group {group} do not fit")
    }
    let (cg, mg) = (c / group, wd[1]);
    let m = mg * group;
    let kernel = &wd[2..];
    let strides = attrs::sizes(node, "strides", s, 1)?;
    let dilations = attrs::sizes(node, "dilations", s, 1)?;
    let out_pad = attrs::sizes(node, "output_padding", s, 0)?;
    let pads = attrs::sizes(node, "pads", 2 * s, 0)?;
    let auto_pad = attrs::string(node, "auto_pad", "NOTSET");
    let output_shape =
        attrs::ints(node, "output_shape").map(|v| v[v.len().saturating_sub(s)..].to_vec());
    let mut begin = vec![0usize; s];
    let mut out_dims = vec![0usize; s];
    for i in 0..s {
        let reach = (kernel[i] - 1) * dilations[i] + 1;
        let full = strides[i] * (xd[2 + i] - 1) + out_pad[i] + reach;
        let target = match (&output_shape, auto_pad.as_str()) {
            (Some(shape), _) => Some(shape[i].max(0) as usize),
            (None, "SAME_UPPER" | "SAME_LOWER") => Some(xd[2 + i] * strides[i]),
            _ => None,
        };
        match target {
            Some(out) => {
                let total = full.checked_sub(out).ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "ConvTranspose: output size {out} is larger than {full}"
                    ))
                })?;
                begin[i] = if auto_pad == "SAME_UPPER" {
                    total / 2
                } else {
                    total - total / 2
                };
                out_dims[i] = out;
            }
            None => {
                begin[i] = pads[i];
                out_dims[i] = full
                    .checked_sub(pads[i] + pads[s + i])
                    .filter(|&o| o > 0)
                    .ok_or_else(|| {
                        candle_core::Error::Msg(
                            "ConvTranspose: pads remove the whole output".into(),
                        )
                    })?;
            }
        }
    }
    let in_len: usize = xd[2..].iter().product();
    let k_len: usize = kernel.iter().product();
    let out_len: usize = out_dims.iter().product();
    let (xv, wv) = (dense::to_f64(x)?, dense::to_f64(w)?);
    let mut out = vec![0f64; n * m * out_len];
    let mut i_idx = vec![0usize; s];
    let mut k_idx = vec![0usize; s];
    for batch in 0..n {
        for ic in 0..c {
            let g = ic / cg;
            let plane = &xv[(batch * c + ic) * in_len..][..in_len];
            for (i, &value) in plane.iter().enumerate() {
                super::window::unravel(i, &xd[2..], &mut i_idx);
                for k in 0..k_len {
                    super::window::unravel(k, kernel, &mut k_idx);
                    let mut offset = 0usize;
                    let mut inside = true;
                    for a in 0..s {
                        let p = (i_idx[a] * strides[a] + k_idx[a] * dilations[a]) as isize
                            - begin[a] as isize;
                        if p < 0 || p as usize >= out_dims[a] {
                            inside = false;
                            break;
                        }
                        offset = offset * out_dims[a] + p as usize;
                    }
                    if !inside {
                        continue;
                    }
                    for oc in 0..mg {
                        let weight = wv[(ic * mg + oc) * k_len + k];
                        out[(batch * m + g * mg + oc) * out_len + offset] += value * weight;
                    }
                }
            }
        }
    }
    if let Some(b) = b {
        let bias = dense::to_f64(b)?;
        for (plane, chunk) in out.chunks_exact_mut(out_len.max(1)).enumerate() {
            let bv = bias[plane % m];
            chunk.iter_mut().for_each(|v| *v += bv);
        }
    }
    let mut dims = vec![n, m];
    dims.extend(out_dims);
    dense::from_f64(out, &dims, x.dtype())
}
