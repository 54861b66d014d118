//! Plan steps computed on the engine's SIMD kernels instead of the referee's scalar
//! code: the matrix products, which dominate a plan's run (software FMA would take
//! seconds for one MiniLM trace). The kernels' products are the scalar reference's bits
//! by their contract (every element one FMA chain along K from +0, then `+ bias`), so
//! the trace is the one the referee would compute; `engine/tests/dispute_plan.rs`
//! checks both ways agree step by step.
//!
//! What it must not do: compute anything but what [`inferchain_referee::Step`] defines,
//! or answer for a step whose operands do not fit it (those go to the referee, which
//! names the mismatch).

use crate::numerics::{self, KernelThreads};
use codec::Decode;
use inferchain_kernels::{gemm, Bias, MatRef, PackedB, Sequential};
use inferchain_referee::Step;

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `step` on `operands` with the fast kernels, or `None` where it is not a product
/// they compute (or the operands do not fit it).
pub fn fast_step(step: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
    let isa = numerics::isa();
    match Step::decode(&mut &step[..]).ok()? {
        Step::GemmBt { m, n, k, bias } => {
            let (m, n, k) = (m as usize, n as usize, k as usize);
            if m == 0 || n == 0 || k == 0 {
                return None;
            }
            let (a, bt, c) = match (operands, bias) {
                ([a, bt], false) => (floats(a), floats(bt), None),
                ([a, bt, c], true) => (floats(a), floats(bt), Some(floats(c))),
                _ => return None,
            };
            if a.len() != m * k || bt.len() != n * k || c.as_ref().is_some_and(|c| c.len() != n) {
                return None;
            }
            let packed = PackedB::pack(isa, MatRef::row_major(&bt, n, k).t());
            let mut out = vec![0f32; m * n];
            let bias = c.as_deref().map_or(Bias::None, Bias::Col);
            gemm(
                isa,
                MatRef::row_major(&a, m, k),
                &packed,
                bias,
                &mut out,
                &KernelThreads,
            );
            Some(to_bytes(&out))
        }
        Step::BatchGemmBt { batch, m, n, k } => {
            let (batch, m, n, k) = (batch as usize, m as usize, n as usize, k as usize);
            let [a, bt] = operands else {
                return None;
            };
            let (a, bt) = (floats(a), floats(bt));
            if batch == 0
                || m == 0
                || n == 0
                || k == 0
                || a.len() != batch * m * k
                || bt.len() != batch * n * k
            {
                return None;
            }
            let mut out = vec![0f32; batch * m * n];
            crate::kernel_threads::for_each_row_mut(&mut out, m * n, |b, out| {
                let packed =
                    PackedB::pack(isa, MatRef::row_major(&bt[b * n * k..][..n * k], n, k).t());
                let a = MatRef::row_major(&a[b * m * k..][..m * k], m, k);
                gemm(isa, a, &packed, Bias::None, out, &Sequential);
            });
            Some(to_bytes(&out))
        }
        _ => None,
    }
}
