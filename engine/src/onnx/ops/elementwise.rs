//! Element-wise operators that are exact compositions of IEEE-754 operations (each
//! rounded once, in a fixed order) and that candle-onnx lacks: `Reciprocal` (`1 / x`),
//! `Softsign` (`x / (1 + |x|)`), `ThresholdedRelu` (`x > alpha ? x : 0`) and `Round`
//! (to nearest, ties to even: the kernels' `quantize::round_ties_even`), on f32.
//! (`Shrink` stays `crate::legalize`'s rewrite, whose bits registered models already
//! have: its middle is `x * 0`, a negative zero for negative `x`.)

use super::attrs;
use crate::numerics;
use candle_core::{Result, Tensor};
use candle_onnx::onnx::NodeProto;

/// Whether this module computes `op`.
pub fn computes(op: &str) -> bool {
    matches!(op, "Reciprocal" | "Softsign" | "ThresholdedRelu" | "Round")
}

/// `node` (one of [`computes`]) applied to every element of `x`.
pub fn apply(node: &NodeProto, x: &Tensor) -> Result<Tensor> {
    let op = node.op_type.as_str();
    let mut values = numerics::to_f32_vec(op, x)?;
    match op {
        "Reciprocal" => values.iter_mut().for_each(|v| *v = 1.0 / *v),
        "Softsign" => values.iter_mut().for_each(|v| *v /= 1.0 + v.abs()),
        "Round" => values
            .iter_mut()
            .for_each(|v| *v = inferchain_kernels::quantize::round_ties_even(*v)),
        _ => {
            let alpha = attrs::float(node, "alpha", 1.0);
            values
                .iter_mut()
                .for_each(|v| *v = if *v > alpha { *v } else { 0.0 });
        }
    }
    numerics::tensor(values, x.dims())
}

/// `Add(a, b)` of two f32 tensors of one shape and one dense layout
/// (`crate::channels_last::same_dense_layout`): `a + b` per element, in the inputs'
/// layout.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !crate::channels_last::same_dense_layout(a, b) {
        candle_core::bail!("Add: operands of different shapes or layouts")
    }
    // Chunks of the sum written by their own tasks on the kernels' threads.
    let sum = crate::channels_last::with_dense(a, |xs| {
        crate::channels_last::with_dense(b, |ys| {
            numerics::zeroed_on_threads(xs.len().min(ys.len()), ARITHMETIC_CHUNK, |i, out| {
                let at = i * ARITHMETIC_CHUNK;
                for ((o, x), y) in out.iter_mut().zip(&xs[at..]).zip(&ys[at..]) {
                    *o = x + y;
                }
            })
        })
    });
    match sum.flatten() {
        Some(values) => crate::channels_last::tensor_like(values, a),
        None => candle_core::bail!("Add: an operand's values could not be read"),
    }
}

/// The f32 arithmetic operators [`arithmetic`] computes: one IEEE-754 operation per
/// element, rounded once (the bits candle's broadcasting `+ - * /` give).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arithmetic {
    Add,
    Sub,
    Mul,
    Div,
}

impl Arithmetic {
    /// The operator an ONNX `op_type` names, if it is one of these.
    pub fn of(op: &str) -> Option<Self> {
        match op {
            "Add" => Some(Self::Add),
            "Sub" => Some(Self::Sub),
            "Mul" => Some(Self::Mul),
            "Div" => Some(Self::Div),
            _ => None,
        }
    }

    /// `out[i] = a[i · a_step] ∘ b[i · b_step]`; the steps are 0 (one value, broadcast)
    /// or 1, each case its own loop so the compiler can vectorize it.
    fn apply(self, a: &[f32], a_step: usize, b: &[f32], b_step: usize, out: &mut [f32]) {
        #[inline(always)]
        fn run(
            a: &[f32],
            a_step: usize,
            b: &[f32],
            b_step: usize,
            out: &mut [f32],
            f: impl Fn(f32, f32) -> f32,
        ) {
            match (a_step, b_step) {
                (1, 1) => {
                    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                        *o = f(x, y)
                    }
                }
                (1, _) => {
                    let y = b[0];
                    for (o, &x) in out.iter_mut().zip(a) {
                        *o = f(x, y)
                    }
                }
                (_, 1) => {
                    let x = a[0];
                    for (o, &y) in out.iter_mut().zip(b) {
                        *o = f(x, y)
                    }
                }
                _ => out.fill(f(a[0], b[0])),
            }
        }
        match self {
            Self::Add => run(a, a_step, b, b_step, out, |x, y| x + y),
            Self::Sub => run(a, a_step, b, b_step, out, |x, y| x - y),
            Self::Mul => run(a, a_step, b, b_step, out, |x, y| x * y),
            Self::Div => run(a, a_step, b, b_step, out, |x, y| x / y),
        }
    }
}

/// One axis of a broadcast, after axes of one are dropped and neighbours that broadcast
/// alike are merged: its length, and each operand's stride along it (0: broadcast).
#[derive(Clone, Copy, Debug)]
struct Axis {
    len: usize,
    a_stride: usize,
    b_stride: usize,
}

/// The output shape of `a ∘ b` under numpy broadcasting and its merged axes (the last
/// one innermost); `None` when the shapes do not broadcast.
fn broadcast_axes(a: &[usize], b: &[usize]) -> Option<(Vec<usize>, Vec<Axis>)> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    let mut shape = Vec::with_capacity(rank);
    // (len, a full, b full) per axis longer than one.
    let mut axes: Vec<(usize, bool, bool)> = Vec::new();
    for i in 0..rank {
        let (x, y) = (dim(a, i), dim(b, i));
        let len = match (x, y) {
            _ if x == y => x,
            (1, _) => y,
            (_, 1) => x,
            _ => return None,
        };
        shape.push(len);
        if len == 1 {
            continue;
        }
        let (a_full, b_full) = (x == len, y == len);
        match axes.last_mut() {
            Some(last) if (last.1, last.2) == (a_full, b_full) => last.0 *= len,
            _ => axes.push((len, a_full, b_full)),
        }
    }
    if shape.contains(&0) {
        return Some((shape, Vec::new()));
    }
    // Strides from the innermost axis out; a broadcast axis has stride 0.
    let (mut a_next, mut b_next) = (1usize, 1usize);
    let mut merged = vec![
        Axis {
            len: 1,
            a_stride: 0,
            b_stride: 0
        };
        axes.len()
    ];
    for (axis, &(len, a_full, b_full)) in merged.iter_mut().zip(&axes).rev() {
        *axis = Axis {
            len,
            a_stride: if a_full { a_next } else { 0 },
            b_stride: if b_full { b_next } else { 0 },
        };
        if a_full {
            a_next *= len;
        }
        if b_full {
            b_next *= len;
        }
    }
    Some((shape, merged))
}

/// Output values per task of [`arithmetic`].
const ARITHMETIC_CHUNK: usize = 1 << 14;

/// `a ∘ b` on two f32 tensors under numpy broadcasting, row-major out, computed on the
/// kernels' threads; `Ok(None)` for anything else (another dtype, shapes that do not
/// broadcast), which candle then runs. Each element is the one operation candle's
/// broadcasting operators compute, so the bits are theirs.
pub fn arithmetic(op: Arithmetic, a: &Tensor, b: &Tensor) -> Result<Option<Tensor>> {
    if a.dtype() != candle_core::DType::F32 || b.dtype() != candle_core::DType::F32 {
        return Ok(None);
    }
    let Some((shape, axes)) = broadcast_axes(a.dims(), b.dims()) else {
        return Ok(None);
    };
    let total: usize = shape.iter().product();
    let name = format!("{op:?}");
    let values = numerics::with_f32(&name, a, |xs| {
        numerics::with_f32(&name, b, |ys| {
            let Some((inner, outer)) = axes.split_last().filter(|_| total > 0) else {
                // Every axis has length one (a single value), or none is left.
                let mut out = vec![0f32; total];
                if total > 0 {
                    Arithmetic::apply(op, xs, 0, ys, 0, &mut out);
                }
                return out;
            };
            let row = inner.len;
            // Each task zeroes and writes its own chunk (no zeroing pass on this thread).
            numerics::zeroed_on_threads(total, ARITHMETIC_CHUNK, |task, dst| {
                let mut at = task * ARITHMETIC_CHUNK;
                let mut done = 0;
                while done < dst.len() {
                    let (r, col) = (at / row, at % row);
                    // The row's first value in each operand, from its index over the outer axes.
                    let (mut a_at, mut b_at, mut rest) = (0, 0, r);
                    for axis in outer.iter().rev() {
                        let i = rest % axis.len;
                        rest /= axis.len;
                        a_at += i * axis.a_stride;
                        b_at += i * axis.b_stride;
                    }
                    let n = (row - col).min(dst.len() - done);
                    let (a_step, b_step) = (inner.a_stride.min(1), inner.b_stride.min(1));
                    Arithmetic::apply(
                        op,
                        &xs[a_at + col * a_step..],
                        a_step,
                        &ys[b_at + col * b_step..],
                        b_step,
                        &mut dst[done..done + n],
                    );
                    done += n;
                    at += n;
                }
            })
        })
    })??;
    numerics::tensor(values, shape).map(Some)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::activation::tests::bits;
    use super::*;
    use candle_core::Device;

    /// The engine's same-layout `Add` gives candle's `a + b` bits, row-major or channels
    /// last, and keeps the layout.
    #[test]
    fn add_keeps_candles_bits_and_the_layout() {
        let a: Vec<f32> = (0..2 * 4 * 3 * 5)
            .map(|i| (i as f32 * 0.731).sin() * 1e3)
            .collect();
        let b: Vec<f32> = (0..a.len())
            .map(|i| (i as f32 * 1.37).cos() * 1e-3)
            .collect();
        let dims = [2, 4, 3, 5];
        let (ra, rb) = (
            Tensor::from_vec(a.clone(), &dims, &Device::Cpu).unwrap(),
            Tensor::from_vec(b.clone(), &dims, &Device::Cpu).unwrap(),
        );
        let want = ra.broadcast_add(&rb).unwrap().flatten_all().unwrap();
        let want = want.to_vec1::<f32>().unwrap();
        let row_major = add(&ra, &rb).unwrap();
        assert_eq!(
            row_major.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want
        );
        let (ca, cb) = (
            crate::channels_last::tensor(a, &dims).unwrap(),
            crate::channels_last::tensor(b, &dims).unwrap(),
        );
        let want = ca.broadcast_add(&cb).unwrap().flatten_all().unwrap();
        let got = add(&ca, &cb).unwrap();
        assert!(crate::channels_last::is_channels_last(&got));
        assert_eq!(
            got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want.to_vec1::<f32>().unwrap()
        );
        // Different layouts are not paired element by element.
        assert!(add(&ra, &cb).is_err());
    }

    /// Broadcasting `+ - * /` give candle's bits for every broadcast pattern (scalars,
    /// trailing and leading axes, both operands broadcast, outputs longer than one task),
    /// with NaN, infinities, signed zeros and subnormals among the values; shapes that
    /// do not broadcast and other dtypes are left to candle.
    #[test]
    fn arithmetic_gives_candles_bits_under_broadcasting() {
        let special = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            1e-40,
            -3.0e38,
        ];
        let values = |n: usize, seed: f32| -> Vec<f32> {
            (0..n)
                .map(|i| match i % 11 {
                    k @ 0..=6 if i % 5 == 0 => special[k],
                    _ => (i as f32 * seed).sin() * 10f32.powi((i % 7) as i32 - 3),
                })
                .collect()
        };
        let shapes: &[(&[usize], &[usize])] = &[
            (&[2, 3, 4], &[2, 3, 4]),
            (&[2, 3, 4], &[]),
            (&[], &[2, 3, 4]),
            (&[2, 3, 4], &[4]),
            (&[2, 3, 4], &[3, 1]),
            (&[2, 1, 4], &[1, 3, 1]),
            (&[1, 12, 64, 64], &[1, 1, 1, 64]),
            (&[1, 128, 384], &[1, 128, 1]),
            (&[3, 1], &[1, 5]),
            (&[1], &[1]),
            (&[2, 0, 3], &[3]),
            (&[1, 128, 1536], &[1536]),
            (&[3, 10_000], &[10_000]),
            (&[3, 1, 10_000], &[1, 2, 1]),
        ];
        type CandleOp = fn(&Tensor, &Tensor) -> Result<Tensor>;
        let ops: [(Arithmetic, CandleOp); 4] = [
            (Arithmetic::Add, |a, b| a.broadcast_add(b)),
            (Arithmetic::Sub, |a, b| a.broadcast_sub(b)),
            (Arithmetic::Mul, |a, b| a.broadcast_mul(b)),
            (Arithmetic::Div, |a, b| a.broadcast_div(b)),
        ];
        for &(sa, sb) in shapes {
            let a = Tensor::from_vec(values(sa.iter().product(), 0.37), sa, &Device::Cpu).unwrap();
            let b = Tensor::from_vec(values(sb.iter().product(), 1.91), sb, &Device::Cpu).unwrap();
            for (op, candle) in ops {
                let want = candle(&a, &b).unwrap();
                let got = arithmetic(op, &a, &b).unwrap().unwrap();
                assert_eq!(got.dims(), want.dims(), "{op:?} {sa:?} {sb:?}");
                assert_eq!(bits(&got), bits(&want), "{op:?} {sa:?} {sb:?}");
            }
        }
        let a = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros((4,), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(arithmetic(Arithmetic::Add, &a, &b).unwrap().is_none());
        let ints = Tensor::zeros((2, 3), candle_core::DType::I64, &Device::Cpu).unwrap();
        assert!(arithmetic(Arithmetic::Mul, &ints, &ints).unwrap().is_none());
    }
}
