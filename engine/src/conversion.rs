//! Canonical tensors ([`inferchain_primitives::io::Tensor`]: dtype, shape, little-endian
//! bytes) to and from candle tensors. Exact both ways: no value is rounded or cast; a
//! NaN leaving the engine is the canonical NaN.

use crate::error::{EngineError, Result};
use candle_core::{DType as CDType, Device, Tensor as CTensor};
use inferchain_primitives::io::{DType, Tensor};

/// candle's dtype for a canonical one.
pub fn to_candle_dtype(dtype: DType) -> CDType {
    match dtype {
        DType::F32 => CDType::F32,
        DType::F64 => CDType::F64,
        DType::I64 => CDType::I64,
        DType::I32 => CDType::I32,
        DType::U8 => CDType::U8,
    }
}

/// The canonical dtype for a candle one, if there is one.
pub fn from_candle_dtype(dtype: CDType) -> Result<DType> {
    Ok(match dtype {
        CDType::F32 => DType::F32,
        CDType::F64 => DType::F64,
        CDType::I64 => DType::I64,
        CDType::I32 => DType::I32,
        CDType::U8 => DType::U8,
        other => return Err(EngineError::UnsupportedDType(format!("{other:?}"))),
    })
}

/// A candle tensor on the CPU holding exactly `tensor`'s values.
pub fn to_candle(tensor: &Tensor) -> Result<CTensor> {
    let shape: Vec<usize> = tensor.shape.iter().map(|d| *d as usize).collect();
    Ok(CTensor::from_raw_buffer(
        &tensor.data,
        to_candle_dtype(tensor.dtype),
        &shape,
        &Device::Cpu,
    )?)
}

/// The canonical form of a candle tensor. `U32` (candle's index type) becomes `I64`,
/// the ONNX index type; any other dtype without a canonical form is an error.
pub fn from_candle(tensor: &CTensor) -> Result<Tensor> {
    let tensor = if tensor.dtype() == CDType::U32 {
        tensor.to_dtype(CDType::I64)?
    } else {
        tensor.clone()
    };
    let dtype = from_candle_dtype(tensor.dtype())?;
    let shape = tensor
        .dims()
        .iter()
        .map(|d| {
            u32::try_from(*d).map_err(|_| EngineError::InvalidArtifact("dimension over u32".into()))
        })
        .collect::<Result<Vec<u32>>>()?;
    let flat = tensor.flatten_all()?;
    let data: Vec<u8> = match dtype {
        DType::F32 => le_bytes(flat.to_vec1::<f32>()?, |v: f32| {
            canonical_f32(v).to_le_bytes()
        }),
        DType::F64 => le_bytes(flat.to_vec1::<f64>()?, |v: f64| {
            if v.is_nan() { CANONICAL_NAN_F64 } else { v }.to_le_bytes()
        }),
        DType::I64 => le_bytes(flat.to_vec1::<i64>()?, i64::to_le_bytes),
        DType::I32 => le_bytes(flat.to_vec1::<i32>()?, i32::to_le_bytes),
        DType::U8 => flat.to_vec1::<u8>()?,
    };
    Ok(Tensor { dtype, shape, data })
}

/// The one NaN an output carries (NaN signs and payloads differ between x86, ARM and
/// wasm; the kernels write this one, and outputs are canonicalised here too).
const CANONICAL_NAN_F64: f64 = f64::from_bits(0x7ff8_0000_0000_0000);

fn canonical_f32(v: f32) -> f32 {
    if v.is_nan() {
        inferchain_kernels::math::CANONICAL_NAN
    } else {
        v
    }
}

fn le_bytes<T, const N: usize>(values: Vec<T>, f: fn(T) -> [u8; N]) -> Vec<u8> {
    values.into_iter().flat_map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_bit() {
        let values = [1.5f32, -0.0, f32::MIN_POSITIVE, 3.0e38, 1.0e-45];
        let t = Tensor::from_f32(vec![5], &values);
        let back = from_candle(&to_candle(&t).expect("valid")).expect("canonical");
        assert_eq!(back, t);
        let i = Tensor::from_i64(vec![2, 2], &[i64::MIN, -1, 0, i64::MAX]);
        assert_eq!(from_candle(&to_candle(&i).expect("valid")).expect("ok"), i);
    }

    #[test]
    fn nan_outputs_are_canonical() {
        let weird = f32::from_bits(0xffc0_1234);
        let t = CTensor::new(&[weird, 1.0], &Device::Cpu).expect("tensor");
        let out = from_candle(&t).expect("canonical");
        assert_eq!(&out.data[..4], &0x7fc0_0000u32.to_le_bytes());
    }

    #[test]
    fn a_dtype_without_canonical_form_is_named() {
        let t = CTensor::zeros(2, CDType::F16, &Device::Cpu).expect("zeros");
        match from_candle(&t) {
            Err(EngineError::UnsupportedDType(d)) => assert_eq!(d, "F16"),
            other => panic!("expected UnsupportedDType, got {other:?}"),
        }
    }
}
