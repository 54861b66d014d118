//! # inferchain-referee
//!
//! The referee of the bisection game: given one step of a model's plan (a [`Step`]
//! descriptor, registered under the model's plan root) and its operands (already proven
//! by the inference pallet), it computes the step's output with the scalar reference of
//! `inferchain-kernels`, the same bits every honest executor's SIMD kernels produce.
//!
//! A step's operands and output are f32 tensors as little-endian bytes, except the
//! plan's last step ([`Step::Output`]), whose output is the canonical output payload.
//!
//! What it must not do: run a model, allocate beyond its caps ([`MAX_OPERAND_BYTES`],
//! [`MAX_WORK`]) or panic on any input; it runs inside block execution.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::{Decode, Encode};
use inferchain_kernels::{call::Call, math::CANONICAL_NAN};
use inferchain_primitives::{
    dispute::{RefereeError, StepReferee},
    io::{Payload, Tensor},
};

/// The most operand bytes one step may read.
pub const MAX_OPERAND_BYTES: usize = 256 * 1024;
/// The most arithmetic one step may do (multiply-adds of a matrix product, elements
/// otherwise; see `Call::work`): what the `prove_step` weight pays for.
pub const MAX_WORK: u64 = 1 << 21;
/// The most elements one step may write (a matrix product's m·n; other steps write at
/// most what they read).
pub const MAX_OUTPUT_ELEMENTS: u64 = 1 << 16;

/// An element-wise operation on two tensors of one length, one IEEE-754 operation each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

/// One step of a plan, as registered (leaf `i` of the plan root is
/// `merkle::leaf(step.encode())`).
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub enum Step {
    /// A kernel call: `template` is a `Call` encoding whose data vectors are empty; the
    /// operands fill them in field order.
    Kernel { template: Vec<u8> },
    /// An element-wise binary operation of operands 0 and 1.
    Binary(Binary),
    /// `x > 0 ? x : +0` element-wise on operand 0 (NaN gives +0, as `f32::max(x, 0)`).
    Relu,
    /// The plan's last step: operand 0 as the one f32 tensor of the output payload.
    Output { shape: Vec<u32> },
    /// Tensor `index` of the request's input payload (operand 0), as its data bytes:
    /// how a plan's first steps read the input.
    InputTensor { index: u32 },
}

fn floats(bytes: &[u8]) -> Result<Vec<f32>, RefereeError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(RefereeError::OperandMismatch);
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn bytes(values: &[f32]) -> Vec<u8> {
    inferchain_kernels::call::output_bytes(values)
}

/// The runtime's referee.
pub struct KernelReferee;

impl StepReferee for KernelReferee {
    fn evaluate(step: &[u8], operands: &[&[u8]]) -> Result<Vec<u8>, RefereeError> {
        let step = Step::decode(&mut &step[..]).map_err(|_| RefereeError::UnknownStep)?;
        let total: usize = operands.iter().map(|o| o.len()).sum();
        if total > MAX_OPERAND_BYTES {
            return Err(RefereeError::TooLarge);
        }
        match step {
            Step::Kernel { template } => {
                let template = Call::decode_template(&template).ok_or(RefereeError::UnknownStep)?;
                let values = operands
                    .iter()
                    .map(|o| floats(o))
                    .collect::<Result<Vec<_>, _>>()?;
                let call = template
                    .with_operands(values)
                    .ok_or(RefereeError::OperandMismatch)?;
                let written = match &call {
                    Call::Gemm { m, n, .. } => u64::from(*m) * u64::from(*n),
                    _ => 0,
                };
                if call.work() > MAX_WORK || written > MAX_OUTPUT_ELEMENTS {
                    return Err(RefereeError::TooLarge);
                }
                Ok(bytes(&call.eval()))
            }
            Step::Binary(op) => {
                let [a, b] = operands else {
                    return Err(RefereeError::OperandMismatch);
                };
                let (a, b) = (floats(a)?, floats(b)?);
                if a.len() != b.len() {
                    return Err(RefereeError::OperandMismatch);
                }
                let out: Vec<f32> = a
                    .iter()
                    .zip(&b)
                    .map(|(&x, &y)| {
                        let r = match op {
                            Binary::Add => x + y,
                            Binary::Sub => x - y,
                            Binary::Mul => x * y,
                            Binary::Div => x / y,
                        };
                        if r.is_nan() {
                            CANONICAL_NAN
                        } else {
                            r
                        }
                    })
                    .collect();
                Ok(bytes(&out))
            }
            Step::Relu => {
                let [x] = operands else {
                    return Err(RefereeError::OperandMismatch);
                };
                let out: Vec<f32> = floats(x)?
                    .into_iter()
                    .map(|v| if v > 0.0 { v } else { 0.0 })
                    .collect();
                Ok(bytes(&out))
            }
            Step::InputTensor { index } => {
                let [payload] = operands else {
                    return Err(RefereeError::OperandMismatch);
                };
                match Payload::decode_canonical(payload) {
                    Ok(Payload::Tensors(tensors)) => tensors
                        .into_iter()
                        .nth(index as usize)
                        .map(|t| t.data)
                        .ok_or(RefereeError::OperandMismatch),
                    _ => Err(RefereeError::OperandMismatch),
                }
            }
            Step::Output { shape } => {
                let [x] = operands else {
                    return Err(RefereeError::OperandMismatch);
                };
                let values = floats(x)?;
                let elements = shape
                    .iter()
                    .try_fold(1usize, |n, d| n.checked_mul(*d as usize));
                if elements != Some(values.len()) {
                    return Err(RefereeError::OperandMismatch);
                }
                Ok(Payload::Tensors(alloc::vec![Tensor::from_f32(shape, &values)]).encode())
            }
        }
    }

    /// A 128 × 128 by 128 × 128 matrix product with a bias: 2²¹ multiply-adds (the work
    /// cap) on 129 KiB of operands, in software FMA under wasm.
    fn costliest_step() -> (Vec<u8>, Vec<Vec<u8>>) {
        let template = Call::Gemm {
            m: 128,
            n: 128,
            k: 128,
            a: Vec::new(),
            b: Vec::new(),
            bias: inferchain_kernels::call::CallBias::Row(Vec::new()),
        };
        let step = Step::Kernel {
            template: template.encode(),
        };
        let square: Vec<f32> = (0..128 * 128)
            .map(|i| (i % 97) as f32 / 97.0 - 0.5)
            .collect();
        let bias: Vec<f32> = (0..128).map(|i| i as f32 / 128.0).collect();
        (
            step.encode(),
            alloc::vec![bytes(&square), bytes(&square), bytes(&bias)],
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use inferchain_kernels::{call::CallBias, elementwise::Unary};

    fn eval(step: &Step, operands: &[Vec<f32>]) -> Result<Vec<u8>, RefereeError> {
        let ops: Vec<Vec<u8>> = operands.iter().map(|o| bytes(o)).collect();
        let refs: Vec<&[u8]> = ops.iter().map(|o| o.as_slice()).collect();
        KernelReferee::evaluate(&step.encode(), &refs)
    }

    #[test]
    fn a_kernel_step_is_the_scalar_reference_of_its_call() {
        let template = Call::Gemm {
            m: 2,
            n: 2,
            k: 3,
            a: alloc::vec![],
            b: alloc::vec![],
            bias: CallBias::Col(alloc::vec![]),
        };
        let step = Step::Kernel {
            template: template.encode(),
        };
        let (a, b, c) = (
            alloc::vec![0.1f32, -0.2, 0.3, 0.4, 0.5, -0.6],
            alloc::vec![1.5f32, -2.5, 0.25, 3.0, -1.0, 0.125],
            alloc::vec![0.01f32, -0.02],
        );
        let full = template
            .with_operands(alloc::vec![a.clone(), b.clone(), c.clone()])
            .unwrap();
        assert_eq!(
            eval(&step, &[a.clone(), b.clone(), c]),
            Ok(bytes(&full.eval()))
        );
        // A missing operand or a wrong size is a mismatch, never a panic.
        assert_eq!(
            eval(&step, &[a.clone(), b]),
            Err(RefereeError::OperandMismatch)
        );
        assert_eq!(
            eval(&step, &[a.clone(), a.clone(), a]),
            Err(RefereeError::OperandMismatch)
        );

        let gelu = Step::Kernel {
            template: Call::Unary {
                op: Unary::Gelu,
                x: alloc::vec![],
            }
            .encode(),
        };
        let x = alloc::vec![-3.0f32, -0.5, 0.0, 0.7, 10.0];
        let want = Call::Unary {
            op: Unary::Gelu,
            x: x.clone(),
        }
        .eval();
        assert_eq!(eval(&gelu, &[x]), Ok(bytes(&want)));
    }

    #[test]
    fn binary_and_output_steps() {
        let add = Step::Binary(Binary::Add);
        assert_eq!(
            eval(&add, &[alloc::vec![1.0, 2.0], alloc::vec![0.5, -2.0]]),
            Ok(bytes(&[1.5, 0.0]))
        );
        assert_eq!(
            eval(&add, &[alloc::vec![1.0], alloc::vec![0.5, -2.0]]),
            Err(RefereeError::OperandMismatch)
        );
        assert_eq!(
            eval(&Step::Relu, &[alloc::vec![-1.0, 0.5, -0.0, f32::NAN]]),
            Ok(bytes(&[0.0, 0.5, 0.0, 0.0]))
        );
        // 0/0 is the canonical NaN.
        let div = eval(
            &Step::Binary(Binary::Div),
            &[alloc::vec![0.0], alloc::vec![0.0]],
        );
        assert_eq!(div, Ok(0x7fc0_0000u32.to_le_bytes().to_vec()));
        let out = Step::Output {
            shape: alloc::vec![1, 2],
        };
        assert_eq!(
            eval(&out, &[alloc::vec![1.0, 2.0]]),
            Ok(Payload::Tensors(alloc::vec![Tensor::from_f32(
                alloc::vec![1, 2],
                &[1.0, 2.0]
            )])
            .encode())
        );
        assert_eq!(
            eval(&out, &[alloc::vec![1.0, 2.0, 3.0]]),
            Err(RefereeError::OperandMismatch)
        );
        // The input payload's tensor data, as the engine's first step sees it.
        let payload = Payload::Tensors(alloc::vec![Tensor::from_f32(
            alloc::vec![1, 2],
            &[0.5, -1.0]
        )])
        .encode();
        let first = Step::InputTensor { index: 0 }.encode();
        assert_eq!(
            KernelReferee::evaluate(&first, &[&payload]),
            Ok(bytes(&[0.5, -1.0]))
        );
        assert_eq!(
            KernelReferee::evaluate(&Step::InputTensor { index: 1 }.encode(), &[&payload]),
            Err(RefereeError::OperandMismatch)
        );
        assert_eq!(
            KernelReferee::evaluate(&first, &[&payload[1..]]),
            Err(RefereeError::OperandMismatch)
        );
    }

    #[test]
    fn the_costliest_step_is_within_the_caps() {
        let (step, operands) = KernelReferee::costliest_step();
        let refs: Vec<&[u8]> = operands.iter().map(|o| o.as_slice()).collect();
        let out = KernelReferee::evaluate(&step, &refs).expect("within the caps");
        assert_eq!(out.len(), 128 * 128 * 4);
    }

    #[test]
    fn oversize_steps_and_junk_are_refused() {
        assert_eq!(
            KernelReferee::evaluate(&[9, 9, 9], &[]),
            Err(RefereeError::UnknownStep)
        );
        let big = alloc::vec![0u8; MAX_OPERAND_BYTES + 4];
        let step = Step::Binary(Binary::Add).encode();
        assert_eq!(
            KernelReferee::evaluate(&step, &[&big, &big]),
            Err(RefereeError::TooLarge)
        );
        // 256 x 64 times 64 x 256: within the bytes, over the work cap.
        let template = Call::Gemm {
            m: 256,
            n: 256,
            k: 64,
            a: alloc::vec![],
            b: alloc::vec![],
            bias: CallBias::None,
        };
        let step = Step::Kernel {
            template: template.encode(),
        };
        assert_eq!(
            eval(
                &step,
                &[alloc::vec![1.0; 256 * 64], alloc::vec![1.0; 64 * 256]]
            ),
            Err(RefereeError::TooLarge)
        );
        // 1024 x 1 times 1 x 1024: little work, but 4 MiB written.
        let outer = Step::Kernel {
            template: Call::Gemm {
                m: 1024,
                n: 1024,
                k: 1,
                a: alloc::vec![],
                b: alloc::vec![],
                bias: CallBias::None,
            }
            .encode(),
        };
        assert_eq!(
            eval(&outer, &[alloc::vec![1.0; 1024], alloc::vec![1.0; 1024]]),
            Err(RefereeError::TooLarge)
        );
    }
}
