//! How two outputs of the same model on the same input are compared.
//!
//! The rule is declared per model at registration. `Exact` compares canonical bytes.
//! `Tolerance` compares tensors element by element: `|a - b| <= abs + rel * |b|`, with
//! `abs` and `rel` in fixed point (parts per billion), so the rule itself is an integer
//! that every node reads identically. Comparisons run in off-chain workers and clients,
//! never in block execution.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

use crate::io::Payload;

/// Parts per billion: the fixed-point unit of tolerances.
pub const PPB: f64 = 1_000_000_000.0;

/// A model's comparison rule.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum ComparisonRule {
    /// The encoded outputs must be byte-identical.
    Exact,
    /// Element-wise `|a - b| <= abs + rel * |b|`, `abs` and `rel` in parts per billion.
    Tolerance { abs_ppb: u32, rel_ppb: u32 },
}

impl ComparisonRule {
    /// Whether `candidate` matches `reference` under this rule. Tensor count, dtypes and
    /// shapes must always match exactly; only values get a tolerance. NaN never matches.
    pub fn matches(&self, candidate: &[u8], reference: &[u8]) -> bool {
        match self {
            ComparisonRule::Exact => candidate == reference,
            ComparisonRule::Tolerance { abs_ppb, rel_ppb } => {
                if candidate == reference {
                    return true;
                }
                let (Ok(a), Ok(b)) = (
                    Payload::decode_canonical(candidate),
                    Payload::decode_canonical(reference),
                ) else {
                    return false;
                };
                within_tolerance(&a, &b, *abs_ppb as f64 / PPB, *rel_ppb as f64 / PPB)
            }
        }
    }
}

fn within_tolerance(a: &Payload, b: &Payload, abs: f64, rel: f64) -> bool {
    match (a, b) {
        (Payload::Text(x), Payload::Text(y)) => x == y,
        (Payload::Tensors(xs), Payload::Tensors(ys)) => {
            xs.len() == ys.len()
                && xs.iter().zip(ys).all(|(x, y)| {
                    if x.dtype != y.dtype || x.shape != y.shape {
                        return false;
                    }
                    match (x.to_f64_vec(), y.to_f64_vec()) {
                        (Some(xv), Some(yv)) => {
                            xv.len() == yv.len()
                                && xv
                                    .iter()
                                    .zip(&yv)
                                    .all(|(p, q)| (p - q).abs() <= abs + rel * q.abs())
                        }
                        _ => false,
                    }
                })
        }
        _ => false,
    }
}
