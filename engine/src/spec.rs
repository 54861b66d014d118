//! The spec a model is registered with, derived from its files: what `inferchain model
//! import` prints for governance to review, tighten and register.

use crate::error::{EngineError, Result};
use inferchain_primitives::{
    compare::ComparisonRule,
    io::{DType, Dim, IoSpec, TensorSpec},
    model::{Manifest, ModelFormat, ModelSpec, NumericsProfile, ThreadRule},
};

/// The bound given to a dimension the model leaves open (governance may tighten it).
pub const DEFAULT_DYNAMIC_MAX: u32 = 4096;
/// The text bound given to embedding models by default.
pub const DEFAULT_MAX_TEXT_BYTES: u32 = 2048;

/// The numerics version of this engine: bumped whenever a kernel's output bits change.
/// A model's `NumericsProfile::engine_version` names the version its results are defined
/// under (see docs/DETERMINISM.md).
pub const NUMERICS_VERSION: u32 = 2;

/// A tensor spec with bounds checked.
pub fn tensor_spec(name: &str, dtype: DType, shape: Vec<Dim>) -> Result<TensorSpec> {
    Ok(TensorSpec {
        name: name.as_bytes().to_vec().try_into().map_err(|_| {
            EngineError::InvalidArtifact(format!("tensor name `{name}` is too long"))
        })?,
        dtype,
        shape: shape.try_into().map_err(|_| {
            EngineError::InvalidArtifact(format!("tensor `{name}` has too many dimensions"))
        })?,
        allow_non_finite: false,
    })
}

/// The default comparison rule per format (docs/DETERMINISM.md says why): float outputs
/// get a tolerance, since matrix kernels differ across CPU feature levels; graphs whose
/// outputs are all integers compare exactly.
pub fn default_comparison(output: &IoSpec) -> ComparisonRule {
    let all_integer =
        matches!(output, IoSpec::Tensors(ts) if ts.iter().all(|t| !t.dtype.is_float()));
    if all_integer {
        ComparisonRule::Exact
    } else {
        // 1e-5 absolute + 1e-4 relative.
        ComparisonRule::Tolerance {
            abs_ppb: 10_000,
            rel_ppb: 100_000,
        }
    }
}

/// Upper bound of the SCALE-encoded size of any payload fitting `spec`.
pub fn max_encoded_bytes(spec: &IoSpec) -> u64 {
    match spec {
        IoSpec::Text { max_bytes } => u64::from(*max_bytes) + 9,
        IoSpec::Tensors(ts) => {
            9 + ts
                .iter()
                .map(|t| {
                    let elems: u64 = t
                        .shape
                        .iter()
                        .map(|d| match d {
                            Dim::Fixed(n) => u64::from(*n),
                            Dim::Dynamic { max } => u64::from(*max),
                        })
                        .fold(1u64, |a, b| a.saturating_mul(b));
                    1 + 9
                        + 5 * t.shape.len() as u64
                        + 9
                        + elems.saturating_mul(t.dtype.size() as u64)
                })
                .fold(0u64, |a, b| a.saturating_add(b))
        }
    }
}

/// The spec to register for `manifest` with the given I/O, a fee of `fee` and the
/// default comparison rule and numerics profile.
pub fn registration_template(
    name: &str,
    manifest: &Manifest,
    input: IoSpec,
    output: IoSpec,
    fee: u128,
) -> Result<ModelSpec<u128>> {
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let mut name_bytes = name.as_bytes().to_vec();
    name_bytes.truncate(inferchain_primitives::model::MAX_MODEL_NAME_LEN as usize);
    Ok(ModelSpec {
        name: name_bytes
            .try_into()
            .map_err(|_| EngineError::InvalidArtifact("model name too long".into()))?,
        format: manifest.format,
        artifact_hash: manifest.id(),
        max_input_bytes: clamp(max_encoded_bytes(&input)),
        max_output_bytes: clamp(max_encoded_bytes(&output)),
        comparison: default_comparison(&output),
        numerics: NumericsProfile {
            engine_version: NUMERICS_VERSION,
            compute_dtype: DType::F32,
            threads: ThreadRule::Any,
        },
        input,
        output,
        fee,
        artifact_uri: None,
    })
}

/// The format's name as the CLI spells it.
pub fn format_name(format: ModelFormat) -> &'static str {
    match format {
        ModelFormat::Onnx => "onnx",
        ModelFormat::BertEmbedding => "bert",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::Encode;
    use inferchain_primitives::io::{Payload, Tensor};

    #[test]
    fn max_encoded_bytes_bounds_a_full_payload() {
        let spec = IoSpec::Tensors(
            vec![tensor_spec(
                "x",
                DType::F32,
                vec![Dim::Fixed(2), Dim::Dynamic { max: 3 }],
            )
            .expect("valid")]
            .try_into()
            .expect("one"),
        );
        let full = Payload::Tensors(vec![Tensor::from_f32(vec![2, 3], &[0.0; 6])]);
        assert!(full.validate(&spec).is_ok());
        assert!((full.encode().len() as u64) <= max_encoded_bytes(&spec));
        let text = IoSpec::Text { max_bytes: 300 };
        let p = Payload::Text(vec![b'a'; 300]);
        assert!((p.encode().len() as u64) <= max_encoded_bytes(&text));
    }

    #[test]
    fn integer_outputs_compare_exactly_float_outputs_with_tolerance() {
        let ints = IoSpec::Tensors(
            vec![tensor_spec("i", DType::I64, vec![Dim::Fixed(1)]).expect("valid")]
                .try_into()
                .expect("one"),
        );
        assert_eq!(default_comparison(&ints), ComparisonRule::Exact);
        let floats = IoSpec::Tensors(
            vec![tensor_spec("f", DType::F32, vec![Dim::Fixed(1)]).expect("valid")]
                .try_into()
                .expect("one"),
        );
        assert!(matches!(
            default_comparison(&floats),
            ComparisonRule::Tolerance { .. }
        ));
    }
}
