//! [`Call`]: one kernel invocation as data — which kernel, its parameters and its
//! inputs — with a byte encoding and [`Call::eval`], which computes it with the scalar
//! reference. The engine's runs can be recorded as calls ([`crate::trace`]) and replayed
//! anywhere the reference compiles: under a wasm engine (the determinism matrix), and in
//! the runtime's referee (which re-executes one operator).

use crate::{
    elementwise::Unary,
    gemm::{gemm, Bias, MatRef, PackedB, Sequential},
    isa::Isa,
};
use alloc::vec::Vec;

/// A bias of a recorded matrix product.
#[derive(Clone, Debug, PartialEq)]
pub enum CallBias {
    None,
    Row(Vec<f32>),
    Col(Vec<f32>),
}

/// One kernel invocation. Matrices are row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    Unary {
        op: Unary,
        x: Vec<f32>,
    },
    Sum {
        x: Vec<f32>,
    },
    SumSquares {
        x: Vec<f32>,
    },
    Max {
        x: Vec<f32>,
    },
    Softmax {
        x: Vec<f32>,
    },
    LogSoftmax {
        x: Vec<f32>,
    },
    Moments {
        x: Vec<f32>,
        eps: f32,
    },
    LayerNorm {
        x: Vec<f32>,
        scale: Vec<f32>,
        bias: Option<Vec<f32>>,
        eps: f32,
    },
    NormalizeChannel {
        x: Vec<f32>,
        mean: f32,
        rstd: f32,
        scale: f32,
        bias: f32,
    },
    Pow {
        x: Vec<f32>,
        y: Vec<f32>,
    },
    Gemm {
        m: u32,
        n: u32,
        k: u32,
        a: Vec<f32>,
        b: Vec<f32>,
        bias: CallBias,
    },
    WindowAverage {
        values: Vec<f32>,
        divisor: u32,
    },
    WindowMax {
        values: Vec<f32>,
    },
}

impl Call {
    /// The output, computed by the scalar reference ([`Isa::Scalar`]). Scalar results
    /// (sum, max, moments) are returned as one or two values.
    pub fn eval(&self) -> Vec<f32> {
        let isa = Isa::Scalar;
        match self {
            Call::WindowAverage { values, divisor } => {
                alloc::vec![crate::window::average_impl(values, *divisor as usize)]
            }
            Call::WindowMax { values } => alloc::vec![crate::window::max_impl(values)],
            Call::Unary { op, x } => {
                let mut y = alloc::vec![0f32; x.len()];
                crate::dispatch::unary(isa, *op, x, &mut y);
                y
            }
            Call::Sum { x } => alloc::vec![crate::dispatch::sum(isa, x)],
            Call::SumSquares { x } => alloc::vec![crate::dispatch::sum_sq_dev(isa, x, 0.0)],
            Call::Max { x } => alloc::vec![crate::dispatch::max(isa, x)],
            Call::Softmax { x } => {
                let mut y = alloc::vec![0f32; x.len()];
                crate::dispatch::softmax(isa, x, &mut y);
                y
            }
            Call::LogSoftmax { x } => {
                let mut y = alloc::vec![0f32; x.len()];
                crate::dispatch::log_softmax(isa, x, &mut y);
                y
            }
            Call::Moments { x, eps } => {
                let (m, r) = crate::dispatch::moments(isa, x, *eps);
                alloc::vec![m, r]
            }
            Call::LayerNorm {
                x,
                scale,
                bias,
                eps,
            } => {
                let mut y = alloc::vec![0f32; x.len()];
                let (mean, rstd) = crate::dispatch::moments(isa, x, *eps);
                crate::dispatch::normalize_row(isa, x, mean, rstd, scale, bias.as_deref(), &mut y);
                y
            }
            Call::NormalizeChannel {
                x,
                mean,
                rstd,
                scale,
                bias,
            } => {
                let mut y = alloc::vec![0f32; x.len()];
                crate::dispatch::normalize_channel(isa, x, *mean, *rstd, *scale, *bias, &mut y);
                y
            }
            Call::Pow { x, y } => x
                .iter()
                .zip(y)
                .map(|(&a, &b)| crate::math::pow(a, b))
                .collect(),
            Call::Gemm {
                m,
                n,
                k,
                a,
                b,
                bias,
            } => {
                let (m, n, k) = (*m as usize, *n as usize, *k as usize);
                let packed = PackedB::pack(isa, MatRef::row_major(b, k, n));
                let bias = match bias {
                    CallBias::None => Bias::None,
                    CallBias::Row(v) => Bias::Row(v),
                    CallBias::Col(v) => Bias::Col(v),
                };
                let mut c = alloc::vec![0f32; m * n];
                gemm(
                    isa,
                    MatRef::row_major(a, m, k),
                    &packed,
                    bias,
                    &mut c,
                    &Sequential,
                );
                c
            }
        }
    }

    /// The call's data vectors, in field order (an absent bias is not one).
    fn vectors_mut(&mut self) -> Vec<&mut Vec<f32>> {
        match self {
            Call::Unary { x, .. }
            | Call::Sum { x }
            | Call::SumSquares { x }
            | Call::Max { x }
            | Call::Softmax { x }
            | Call::LogSoftmax { x }
            | Call::Moments { x, .. }
            | Call::NormalizeChannel { x, .. } => alloc::vec![x],
            Call::WindowAverage { values, .. } | Call::WindowMax { values } => {
                alloc::vec![values]
            }
            Call::LayerNorm { x, scale, bias, .. } => {
                let mut v = alloc::vec![x, scale];
                if let Some(b) = bias {
                    v.push(b);
                }
                v
            }
            Call::Pow { x, y } => alloc::vec![x, y],
            Call::Gemm { a, b, bias, .. } => {
                let mut v = alloc::vec![a, b];
                match bias {
                    CallBias::None => {}
                    CallBias::Row(r) | CallBias::Col(r) => v.push(r),
                }
                v
            }
        }
    }

    /// This call (a template: its parameters) with its data vectors replaced, in field
    /// order, by `operands`. `None` if the count differs or the sizes do not fit the
    /// parameters (the checks of [`Call::decode`]), so the result is safe to evaluate.
    pub fn with_operands(&self, operands: Vec<Vec<f32>>) -> Option<Call> {
        let mut call = self.clone();
        let mut slots = call.vectors_mut();
        if slots.len() != operands.len() {
            return None;
        }
        for (slot, operand) in slots.iter_mut().zip(operands) {
            **slot = operand;
        }
        Call::decode(&call.encode())
    }

    /// A bound on the call's arithmetic: multiply-adds for a matrix product, elements
    /// otherwise (what a referee caps to keep one step within a block).
    pub fn work(&self) -> u64 {
        match self {
            // An empty dimension still costs the loops over the others.
            Call::Gemm { m, n, k, .. } => u64::from(*m)
                .max(1)
                .saturating_mul(u64::from(*n).max(1))
                .saturating_mul(u64::from(*k).max(1)),
            _ => {
                let mut call = self.clone();
                call.vectors_mut().iter().map(|v| v.len() as u64).sum()
            }
        }
    }

    /// The call as bytes: a tag, then each field (u32 and f32 little-endian; a vector as
    /// its length then its values; an option as 0 or 1 then the value).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            Call::WindowAverage { values, divisor } => {
                w.u8(11);
                w.vec(values);
                w.u32(*divisor);
            }
            Call::WindowMax { values } => {
                w.u8(12);
                w.vec(values);
            }
            Call::Unary { op, x } => {
                w.u8(0);
                w.unary(op);
                w.vec(x);
            }
            Call::Sum { x } => {
                w.u8(1);
                w.vec(x);
            }
            Call::SumSquares { x } => {
                w.u8(2);
                w.vec(x);
            }
            Call::Max { x } => {
                w.u8(3);
                w.vec(x);
            }
            Call::Softmax { x } => {
                w.u8(4);
                w.vec(x);
            }
            Call::LogSoftmax { x } => {
                w.u8(5);
                w.vec(x);
            }
            Call::Moments { x, eps } => {
                w.u8(6);
                w.vec(x);
                w.f32(*eps);
            }
            Call::LayerNorm {
                x,
                scale,
                bias,
                eps,
            } => {
                w.u8(7);
                w.vec(x);
                w.vec(scale);
                match bias {
                    Some(b) => {
                        w.u8(1);
                        w.vec(b);
                    }
                    None => w.u8(0),
                }
                w.f32(*eps);
            }
            Call::NormalizeChannel {
                x,
                mean,
                rstd,
                scale,
                bias,
            } => {
                w.u8(8);
                w.vec(x);
                for v in [mean, rstd, scale, bias] {
                    w.f32(*v);
                }
            }
            Call::Pow { x, y } => {
                w.u8(9);
                w.vec(x);
                w.vec(y);
            }
            Call::Gemm {
                m,
                n,
                k,
                a,
                b,
                bias,
            } => {
                w.u8(10);
                w.u32(*m);
                w.u32(*n);
                w.u32(*k);
                w.vec(a);
                w.vec(b);
                match bias {
                    CallBias::None => w.u8(0),
                    CallBias::Row(v) => {
                        w.u8(1);
                        w.vec(v);
                    }
                    CallBias::Col(v) => {
                        w.u8(2);
                        w.vec(v);
                    }
                }
            }
        }
        w.0
    }

    /// The call encoded in `bytes` (all of them), or `None` if they are not one.
    pub fn decode(bytes: &[u8]) -> Option<Call> {
        Self::decode_checked(bytes, true)
    }

    /// A call template encoded in `bytes`: a call whose data vectors may be empty (their
    /// sizes are checked when [`Call::with_operands`] fills them).
    pub fn decode_template(bytes: &[u8]) -> Option<Call> {
        Self::decode_checked(bytes, false)
    }

    fn decode_checked(bytes: &[u8], sizes: bool) -> Option<Call> {
        let mut r = Reader(bytes);
        let call = match r.u8()? {
            11 => Call::WindowAverage {
                values: r.vec()?,
                divisor: r.u32()?,
            },
            12 => Call::WindowMax { values: r.vec()? },
            0 => Call::Unary {
                op: r.unary()?,
                x: r.vec()?,
            },
            1 => Call::Sum { x: r.vec()? },
            2 => Call::SumSquares { x: r.vec()? },
            3 => Call::Max { x: r.vec()? },
            4 => Call::Softmax { x: r.vec()? },
            5 => Call::LogSoftmax { x: r.vec()? },
            6 => Call::Moments {
                x: r.vec()?,
                eps: r.f32()?,
            },
            7 => {
                let x = r.vec()?;
                let scale = r.vec()?;
                let bias = match r.u8()? {
                    0 => None,
                    1 => Some(r.vec()?),
                    _ => return None,
                };
                let eps = r.f32()?;
                if sizes
                    && (scale.len() != x.len() || bias.as_ref().is_some_and(|b| b.len() != x.len()))
                {
                    return None;
                }
                Call::LayerNorm {
                    x,
                    scale,
                    bias,
                    eps,
                }
            }
            8 => Call::NormalizeChannel {
                x: r.vec()?,
                mean: r.f32()?,
                rstd: r.f32()?,
                scale: r.f32()?,
                bias: r.f32()?,
            },
            9 => {
                let (x, y) = (r.vec()?, r.vec()?);
                if sizes && x.len() != y.len() {
                    return None;
                }
                Call::Pow { x, y }
            }
            10 => {
                let (m, n, k) = (r.u32()?, r.u32()?, r.u32()?);
                let (a, b) = (r.vec()?, r.vec()?);
                let bias = match r.u8()? {
                    0 => CallBias::None,
                    1 => CallBias::Row(r.vec()?),
                    2 => CallBias::Col(r.vec()?),
                    _ => return None,
                };
                let (mu, nu, ku) = (m as usize, n as usize, k as usize);
                let fits = a.len() == mu.checked_mul(ku)?
                    && b.len() == ku.checked_mul(nu)?
                    && match &bias {
                        CallBias::None => true,
                        CallBias::Row(v) => v.len() == mu,
                        CallBias::Col(v) => v.len() == nu,
                    };
                if sizes && !fits {
                    return None;
                }
                Call::Gemm {
                    m,
                    n,
                    k,
                    a,
                    b,
                    bias,
                }
            }
            _ => return None,
        };
        r.0.is_empty().then_some(call)
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn vec(&mut self, v: &[f32]) {
        self.u32(v.len() as u32);
        for x in v {
            self.f32(*x);
        }
    }
    fn unary(&mut self, op: &Unary) {
        let (code, params): (u8, &[f32]) = match op {
            Unary::Exp => (0, &[]),
            Unary::Log => (1, &[]),
            Unary::Tanh => (2, &[]),
            Unary::Sigmoid => (3, &[]),
            Unary::Erf => (4, &[]),
            Unary::Gelu => (5, &[]),
            Unary::GeluTanh => (6, &[]),
            Unary::Silu => (7, &[]),
            Unary::Elu { alpha } => (8, core::slice::from_ref(alpha)),
            Unary::Selu { alpha, gamma } => {
                self.u8(9);
                self.f32(*alpha);
                self.f32(*gamma);
                return;
            }
            Unary::Softplus => (10, &[]),
            Unary::HardSigmoid { alpha, beta } => {
                self.u8(11);
                self.f32(*alpha);
                self.f32(*beta);
                return;
            }
        };
        self.u8(code);
        for p in params {
            self.f32(*p);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn f32(&mut self) -> Option<f32> {
        self.take::<4>().map(f32::from_le_bytes)
    }
    fn vec(&mut self) -> Option<Vec<f32>> {
        let n = self.u32()? as usize;
        if self.0.len() < n.checked_mul(4)? {
            return None;
        }
        (0..n).map(|_| self.f32()).collect()
    }
    fn unary(&mut self) -> Option<Unary> {
        Some(match self.u8()? {
            0 => Unary::Exp,
            1 => Unary::Log,
            2 => Unary::Tanh,
            3 => Unary::Sigmoid,
            4 => Unary::Erf,
            5 => Unary::Gelu,
            6 => Unary::GeluTanh,
            7 => Unary::Silu,
            8 => Unary::Elu { alpha: self.f32()? },
            9 => Unary::Selu {
                alpha: self.f32()?,
                gamma: self.f32()?,
            },
            10 => Unary::Softplus,
            11 => Unary::HardSigmoid {
                alpha: self.f32()?,
                beta: self.f32()?,
            },
            _ => return None,
        })
    }
}

/// The values of a recorded output as bytes (for hashing and comparison).
pub fn output_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_round_trip_and_junk_is_refused() {
        let calls = [
            Call::Unary {
                op: Unary::Selu {
                    alpha: 1.5,
                    gamma: 0.5,
                },
                x: alloc::vec![1.0, -2.0],
            },
            Call::LayerNorm {
                x: alloc::vec![1.0, 2.0, 3.0],
                scale: alloc::vec![1.0; 3],
                bias: Some(alloc::vec![0.5; 3]),
                eps: 1e-5,
            },
            Call::Gemm {
                m: 2,
                n: 1,
                k: 2,
                a: alloc::vec![1.0, 2.0, 3.0, 4.0],
                b: alloc::vec![0.5, 0.25],
                bias: CallBias::Row(alloc::vec![1.0, -1.0]),
            },
        ];
        for call in calls {
            let bytes = call.encode();
            assert_eq!(Call::decode(&bytes), Some(call.clone()));
            assert_eq!(Call::decode(&bytes[..bytes.len() - 1]), None);
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Call::decode(&longer), None);
        }
        // A matrix product whose sizes do not fit its data.
        let bad = Call::Gemm {
            m: 3,
            n: 1,
            k: 2,
            a: alloc::vec![1.0; 4],
            b: alloc::vec![1.0; 2],
            bias: CallBias::None,
        };
        assert_eq!(Call::decode(&bad.encode()), None);
        assert_eq!(Call::decode(&[99]), None);
    }

    #[test]
    fn templates_take_their_operands_in_field_order_and_sizes_are_checked() {
        let template = Call::Gemm {
            m: 2,
            n: 1,
            k: 2,
            a: alloc::vec![],
            b: alloc::vec![],
            bias: CallBias::Row(alloc::vec![]),
        };
        let call = template
            .with_operands(alloc::vec![
                alloc::vec![1.0, 2.0, 3.0, 4.0],
                alloc::vec![0.5, 0.25],
                alloc::vec![1.0, -1.0],
            ])
            .expect("fits");
        assert_eq!(call.eval(), alloc::vec![2.0, 1.5]);
        assert_eq!(call.work(), 4);
        // Too few operands, or a matrix of the wrong size.
        assert_eq!(
            template.with_operands(alloc::vec![alloc::vec![1.0; 4]]),
            None
        );
        assert_eq!(
            template.with_operands(alloc::vec![
                alloc::vec![1.0; 3],
                alloc::vec![0.5, 0.25],
                alloc::vec![1.0, -1.0],
            ]),
            None
        );
    }

    #[test]
    fn eval_is_the_reference() {
        let call = Call::Gemm {
            m: 2,
            n: 1,
            k: 2,
            a: alloc::vec![1.0, 2.0, 3.0, 4.0],
            b: alloc::vec![0.5, 0.25],
            bias: CallBias::Row(alloc::vec![1.0, -1.0]),
        };
        assert_eq!(call.eval(), alloc::vec![2.0, 1.5]);
        let sum = Call::Sum {
            x: alloc::vec![1.0; 40],
        };
        assert_eq!(sum.eval(), alloc::vec![40.0]);
    }
}
