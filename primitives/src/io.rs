//! The canonical encoding of a model's inputs and outputs, and its validation against
//! the model's declared [`IoSpec`].
//!
//! A [`Payload`] is SCALE-encoded: either a list of tensors (dtype, shape, little-endian
//! data) or UTF-8 text. The bytes a request carries on chain are exactly these; their
//! blake2-256 is the input (or output) hash in a receipt.

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support_free::{BoundedVec, ConstU32};
use scale_info::TypeInfo;

/// Types the runtime bounds are expressed in, without pulling FRAME into this crate.
mod frame_support_free {
    pub use sp_core::ConstU32;
    pub use sp_runtime::BoundedVec;
}

/// The most tensors a model may take or return.
pub const MAX_TENSORS: u32 = 8;
/// The largest rank a tensor may have.
pub const MAX_RANK: u32 = 8;
/// The longest tensor name.
pub const MAX_NAME_LEN: u32 = 64;

/// Element types.
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
pub enum DType {
    F32,
    F64,
    I64,
    I32,
    U8,
}

impl DType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::U8 => 1,
        }
    }

    /// Whether the type can hold NaN or infinities.
    pub const fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
}

/// One dimension of a declared shape.
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
pub enum Dim {
    /// Exactly this size.
    Fixed(u32),
    /// Any size from 1 up to `max`.
    Dynamic { max: u32 },
}

impl Dim {
    /// Whether `size` fits this dimension.
    pub fn admits(self, size: u32) -> bool {
        match self {
            Dim::Fixed(n) => size == n,
            Dim::Dynamic { max } => size >= 1 && size <= max,
        }
    }
}

/// A declared tensor: name, dtype and shape.
#[derive(
    Clone,
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
pub struct TensorSpec {
    /// The graph's name for this input or output.
    pub name: BoundedVec<u8, ConstU32<MAX_NAME_LEN>>,
    pub dtype: DType,
    pub shape: BoundedVec<Dim, ConstU32<MAX_RANK>>,
    /// Whether NaN and infinities are allowed (floats only).
    pub allow_non_finite: bool,
}

/// What a model takes or returns.
#[derive(
    Clone,
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
pub enum IoSpec {
    /// One or more tensors, in this order.
    Tensors(BoundedVec<TensorSpec, ConstU32<MAX_TENSORS>>),
    /// UTF-8 text of at most `max_bytes` bytes.
    Text { max_bytes: u32 },
    /// A text-generation request ([`Payload::Prompt`]): a UTF-8 prompt of at most
    /// `max_bytes` bytes and a `max_new_tokens` between 1 and `max_new_tokens`.
    Prompt { max_bytes: u32, max_new_tokens: u32 },
    /// A text-generation result ([`Payload::Generation`]): at most `max_new_tokens` token
    /// ids and their UTF-8 text of at most `max_text_bytes` bytes.
    Generation {
        max_new_tokens: u32,
        max_text_bytes: u32,
    },
}

/// A concrete tensor value in canonical form.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo, serde::Serialize, serde::Deserialize,
)]
pub struct Tensor {
    pub dtype: DType,
    pub shape: Vec<u32>,
    /// Elements in row-major order, little-endian.
    pub data: Vec<u8>,
}

impl Tensor {
    /// Number of elements the shape describes, if it does not overflow.
    pub fn element_count(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(*d as usize))
    }

    /// An f32 tensor from values.
    pub fn from_f32(shape: Vec<u32>, values: &[f32]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor {
            dtype: DType::F32,
            shape,
            data,
        }
    }

    /// An i64 tensor from values.
    pub fn from_i64(shape: Vec<u32>, values: &[i64]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor {
            dtype: DType::I64,
            shape,
            data,
        }
    }

    /// The elements as f64, for comparison; `None` unless the data length is consistent.
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        let size = self.dtype.size();
        if !self.data.len().is_multiple_of(size) {
            return None;
        }
        let chunks = self.data.chunks_exact(size);
        Some(match self.dtype {
            DType::F32 => chunks
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
            DType::F64 => chunks
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            DType::I64 => chunks
                .map(|c| {
                    i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64
                })
                .collect(),
            DType::I32 => chunks
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
            DType::U8 => chunks.map(|c| c[0] as f64).collect(),
        })
    }
}

/// A model input or output in canonical form.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo, serde::Serialize, serde::Deserialize,
)]
pub enum Payload {
    Tensors(Vec<Tensor>),
    Text(Vec<u8>),
    /// Generate greedily after `text` (UTF-8), at most `max_new_tokens` tokens.
    Prompt {
        text: Vec<u8>,
        max_new_tokens: u32,
    },
    /// The generated token ids (a stop token that ended generation included) and the
    /// text they decode to (special tokens skipped).
    Generation {
        tokens: Vec<u32>,
        text: Vec<u8>,
    },
}

/// Why a payload does not fit its spec. Each variant names one mistake.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub enum IoError {
    /// The bytes are not a SCALE-encoded `Payload`, or have bytes left over.
    Malformed,
    /// Text where tensors were declared, or the other way round.
    KindMismatch,
    /// The payload has `found` tensors; the spec declares `expected`.
    TensorCount { expected: u32, found: u32 },
    /// Tensor `index` has the wrong element type.
    DType { index: u32 },
    /// Tensor `index` has the wrong rank.
    Rank {
        index: u32,
        expected: u32,
        found: u32,
    },
    /// Tensor `index` has a dimension the spec does not admit.
    Shape { index: u32, axis: u32, size: u32 },
    /// Tensor `index`'s data length does not match its shape and dtype.
    DataLength { index: u32 },
    /// Tensor `index` holds NaN or an infinity where the spec forbids them.
    NonFinite { index: u32 },
    /// The text is longer than the spec allows.
    TextTooLong { max: u32, found: u32 },
    /// The text is not valid UTF-8.
    InvalidUtf8,
    /// A prompt's `max_new_tokens` is zero or above the model's cap `max`.
    MaxNewTokens { max: u32, found: u32 },
    /// A generation has more tokens than the model's cap.
    TooManyTokens { max: u32, found: u32 },
}

impl Payload {
    /// How many units a request on this input is priced in (the model's fee is per unit):
    /// a prompt is priced per token, its bytes standing for its tokens (an upper bound for
    /// byte-level tokenizers; the chain cannot tokenize) plus `max_new_tokens`, so a long
    /// request pays for what it costs; any other input is one unit.
    pub fn fee_units(&self) -> u32 {
        match self {
            Payload::Prompt {
                text,
                max_new_tokens,
            } => u32::try_from(text.len())
                .unwrap_or(u32::MAX)
                .saturating_add(*max_new_tokens)
                .max(1),
            _ => 1,
        }
    }

    /// Decodes canonical bytes, rejecting trailing bytes.
    pub fn decode_canonical(mut bytes: &[u8]) -> Result<Self, IoError> {
        let payload = Payload::decode(&mut bytes).map_err(|_| IoError::Malformed)?;
        if !bytes.is_empty() {
            return Err(IoError::Malformed);
        }
        Ok(payload)
    }

    /// Checks the payload against `spec`.
    pub fn validate(&self, spec: &IoSpec) -> Result<(), IoError> {
        match (self, spec) {
            (Payload::Text(text), IoSpec::Text { max_bytes }) => validate_text(text, *max_bytes),
            (
                Payload::Prompt {
                    text,
                    max_new_tokens,
                },
                IoSpec::Prompt {
                    max_bytes,
                    max_new_tokens: cap,
                },
            ) => {
                validate_text(text, *max_bytes)?;
                if *max_new_tokens == 0 || max_new_tokens > cap {
                    return Err(IoError::MaxNewTokens {
                        max: *cap,
                        found: *max_new_tokens,
                    });
                }
                Ok(())
            }
            (
                Payload::Generation { tokens, text },
                IoSpec::Generation {
                    max_new_tokens,
                    max_text_bytes,
                },
            ) => {
                let found = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
                if found > *max_new_tokens {
                    return Err(IoError::TooManyTokens {
                        max: *max_new_tokens,
                        found,
                    });
                }
                validate_text(text, *max_text_bytes)
            }
            (Payload::Tensors(tensors), IoSpec::Tensors(specs)) => {
                if tensors.len() != specs.len() {
                    return Err(IoError::TensorCount {
                        expected: specs.len() as u32,
                        found: u32::try_from(tensors.len()).unwrap_or(u32::MAX),
                    });
                }
                for (i, (tensor, spec)) in tensors.iter().zip(specs.iter()).enumerate() {
                    validate_tensor(i as u32, tensor, spec)?;
                }
                Ok(())
            }
            _ => Err(IoError::KindMismatch),
        }
    }
}

fn validate_text(text: &[u8], max_bytes: u32) -> Result<(), IoError> {
    let found = u32::try_from(text.len()).unwrap_or(u32::MAX);
    if found > max_bytes {
        return Err(IoError::TextTooLong {
            max: max_bytes,
            found,
        });
    }
    core::str::from_utf8(text).map_err(|_| IoError::InvalidUtf8)?;
    Ok(())
}

fn validate_tensor(index: u32, tensor: &Tensor, spec: &TensorSpec) -> Result<(), IoError> {
    if tensor.dtype != spec.dtype {
        return Err(IoError::DType { index });
    }
    if tensor.shape.len() != spec.shape.len() {
        return Err(IoError::Rank {
            index,
            expected: spec.shape.len() as u32,
            found: u32::try_from(tensor.shape.len()).unwrap_or(u32::MAX),
        });
    }
    for (axis, (size, dim)) in tensor.shape.iter().zip(spec.shape.iter()).enumerate() {
        if !dim.admits(*size) {
            return Err(IoError::Shape {
                index,
                axis: axis as u32,
                size: *size,
            });
        }
    }
    let expected_len = tensor
        .element_count()
        .and_then(|n| n.checked_mul(tensor.dtype.size()))
        .ok_or(IoError::DataLength { index })?;
    if tensor.data.len() != expected_len {
        return Err(IoError::DataLength { index });
    }
    if tensor.dtype.is_float() && !spec.allow_non_finite {
        let values = tensor.to_f64_vec().ok_or(IoError::DataLength { index })?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(IoError::NonFinite { index });
        }
    }
    Ok(())
}

/// Decodes `bytes` and validates them against `spec` in one step.
pub fn validate_encoded(bytes: &[u8], spec: &IoSpec) -> Result<Payload, IoError> {
    let payload = Payload::decode_canonical(bytes)?;
    payload.validate(spec)?;
    Ok(payload)
}
