//! `.npy` files (NumPy format 1.0/2.0/3.0, C order, little-endian) to and from canonical
//! tensors, for the CLI's `--input` and `--output`.

use crate::error::{EngineError, Result};
use inferchain_primitives::io::{DType, Tensor};

const MAGIC: &[u8] = b"\x93NUMPY";

fn descr(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::I64 => "<i8",
        DType::I32 => "<i4",
        DType::U8 => "|u1",
    }
}

fn dtype_of(descr: &str) -> Result<DType> {
    Ok(match descr {
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        "<i8" => DType::I64,
        "<i4" => DType::I32,
        "|u1" | "<u1" | "|b1" => DType::U8,
        other => {
            return Err(EngineError::Npy(format!(
                "dtype `{other}` is not supported; use float32, float64, int64, int32 or uint8 (little-endian)"
            )))
        }
    })
}

/// Parses a `.npy` file.
pub fn read(bytes: &[u8]) -> Result<Tensor> {
    let bad = |m: &str| EngineError::Npy(m.to_string());
    if bytes.len() < 10 || bytes.get(..6) != Some(MAGIC) {
        return Err(bad("not a .npy file (bad magic)"));
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            let b = bytes.get(8..12).ok_or_else(|| bad("truncated header"))?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => {
            return Err(EngineError::Npy(format!(
                "format version {v} is not supported"
            )))
        }
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let field = |key: &str| -> Result<&str> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| EngineError::Npy(format!("header has no `{key}`")))?;
        let rest = &header[at + key.len() + 2..];
        let colon = rest.find(':').ok_or_else(|| bad("malformed header"))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr_field = field("descr")?;
    let descr_str = descr_field
        .strip_prefix('\'')
        .and_then(|s| s.split('\'').next())
        .ok_or_else(|| bad("malformed descr"))?;
    let dtype = dtype_of(descr_str)?;
    if field("fortran_order")?.starts_with("True") {
        return Err(bad(
            "Fortran-order arrays are not supported; save with np.ascontiguousarray",
        ));
    }
    let shape_field = field("shape")?;
    let inner = shape_field
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("malformed shape"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| bad("shape is not a tuple of sizes"))
        })
        .collect::<Result<Vec<u32>>>()?;
    let data = bytes[start + header_len..].to_vec();
    let tensor = Tensor { dtype, shape, data };
    let expected = tensor
        .element_count()
        .and_then(|n| n.checked_mul(dtype.size()))
        .ok_or_else(|| bad("shape overflows"))?;
    if tensor.data.len() != expected {
        return Err(EngineError::Npy(format!(
            "data is {} bytes, shape and dtype need {expected}",
            tensor.data.len()
        )));
    }
    Ok(tensor)
}

/// Serialises a tensor as a `.npy` (format 1.0).
pub fn write(tensor: &Tensor) -> Vec<u8> {
    let dims: Vec<String> = tensor.shape.iter().map(u32::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr(tensor.dtype)
    );
    // Pad so that magic + version + length + header + '\n' is a multiple of 64.
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(unpadded + 64 + tensor.data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&tensor.data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_is_identity() {
        for t in [
            Tensor::from_f32(vec![2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5]),
            Tensor::from_i64(vec![4], &[1, -2, 3, i64::MAX]),
            Tensor::from_f32(vec![], &[7.0]),
        ] {
            let bytes = write(&t);
            assert_eq!((bytes.len() - t.data.len()) % 64, 0);
            assert_eq!(read(&bytes).expect("valid npy"), t);
        }
    }

    #[test]
    fn malformed_files_are_named() {
        assert!(matches!(read(b"hello world"), Err(EngineError::Npy(m)) if m.contains("magic")));
        let mut bytes = write(&Tensor::from_f32(vec![4], &[1.0; 4]));
        bytes.truncate(bytes.len() - 4);
        assert!(matches!(read(&bytes), Err(EngineError::Npy(m)) if m.contains("need 16")));
        let mut big_endian = write(&Tensor::from_f32(vec![1], &[1.0]));
        let at = big_endian
            .windows(3)
            .position(|w| w == b"<f4")
            .expect("descr in header");
        big_endian[at] = b'>';
        assert!(matches!(read(&big_endian), Err(EngineError::Npy(m)) if m.contains(">f4")));
    }
}
