//! The spec a model is registered with, derived from its files: what `inferchain model
//! import` prints for governance to review, tighten and register.

use crate::error::{EngineError, Result};
use inferchain_primitives::{
    compare::ComparisonRule,
    io::{DType, Dim, IoSpec, TensorSpec},
    model::{Manifest, ModelCost, ModelFormat, ModelSpec, NumericsProfile, ThreadRule},
};

/// The bound given to a dimension the model leaves open (governance may tighten it).
pub const DEFAULT_DYNAMIC_MAX: u32 = 4096;
/// The text bound given to embedding models by default.
pub const DEFAULT_MAX_TEXT_BYTES: u32 = 2048;
/// The `max_new_tokens` cap given to language models by default (governance may change
/// it), at most half the model's positions.
pub const DEFAULT_MAX_NEW_TOKENS: u32 = 64;

/// The numerics version of this engine: `inferchain-kernels`' version, bumped whenever a
/// kernel's output bits change. A model's `NumericsProfile::engine_version` names the
/// version its results are defined under; the engine refuses any other
/// ([`crate::check_numerics`]; docs/DETERMINISM.md).
pub const NUMERICS_VERSION: u32 = inferchain_kernels::NUMERICS_VERSION;

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

/// The comparison rule a model registers with by default: `Exact`, for every output
/// dtype. The engine's kernels give the same bits on every CPU (docs/DETERMINISM.md), so
/// any difference is a wrong result. `Tolerance` stays available to governance, for a
/// model someone chooses to run on foreign kernels.
pub fn default_comparison(_output: &IoSpec) -> ComparisonRule {
    ComparisonRule::Exact
}

/// Upper bound of the SCALE-encoded size of any payload fitting `spec`.
pub fn max_encoded_bytes(spec: &IoSpec) -> u64 {
    match spec {
        IoSpec::Text { max_bytes } => u64::from(*max_bytes) + 9,
        // variant, compact text length, text, u32
        IoSpec::Prompt { max_bytes, .. } => 1 + 5 + u64::from(*max_bytes) + 4,
        // variant, compact count, u32 ids, compact text length, text
        IoSpec::Generation {
            max_new_tokens,
            max_text_bytes,
        } => 1 + 5 + 4 * u64::from(*max_new_tokens) + 5 + u64::from(*max_text_bytes),
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
    cost: ModelCost,
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
        cost,
    })
}

/// `spec` with every dynamic dimension bounded by `max` instead (tensors only; other
/// specs are returned as they are). `None` for `max = 0`.
pub fn bound_dynamic(spec: IoSpec, max: u32) -> Option<IoSpec> {
    if max == 0 {
        return None;
    }
    Some(match spec {
        IoSpec::Tensors(mut ts) => {
            for t in ts.iter_mut() {
                for d in t.shape.iter_mut() {
                    if let Dim::Dynamic { max: m } = d {
                        *m = max;
                    }
                }
            }
            IoSpec::Tensors(ts)
        }
        other => other,
    })
}

/// The format's name as the CLI spells it.
pub fn format_name(format: ModelFormat) -> &'static str {
    match format {
        ModelFormat::Onnx => "onnx",
        ModelFormat::BertEmbedding => "bert",
        ModelFormat::Llm => "llm",
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
    fn every_output_compares_exactly_by_default() {
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
        assert_eq!(default_comparison(&floats), ComparisonRule::Exact);
    }
}
