//! A llama-family model's `config.json` (Llama, Qwen2, SmolLM, Mistral without a sliding
//! window) and `generation_config.json`, with everything the engine does not implement
//! refused by name rather than run approximately.

use crate::error::{EngineError, Result};
use serde::Deserialize;

/// `eos_token_id`: one id or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default)]
    head_dim: Option<usize>,
    max_position_embeddings: usize,
    rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    rope_theta: f64,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    hidden_act: Option<String>,
    #[serde(default)]
    tie_word_embeddings: Option<bool>,
    #[serde(default)]
    bos_token_id: Option<u32>,
    #[serde(default)]
    eos_token_id: Option<TokenIds>,
    #[serde(default)]
    use_sliding_window: Option<bool>,
    #[serde(default)]
    sliding_window: Option<serde_json::Value>,
    #[serde(default)]
    attention_bias: Option<bool>,
    #[serde(default)]
    mlp_bias: Option<bool>,
}

fn default_theta() -> f64 {
    10_000.0
}

#[derive(Deserialize, Default)]
struct RawGenerationConfig {
    #[serde(default)]
    bos_token_id: Option<u32>,
    #[serde(default)]
    eos_token_id: Option<TokenIds>,
}

/// The architectures (`model_type`) this engine runs.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["llama", "qwen2", "mistral"];
/// The most layers, heads, head size, hidden size or positions the engine accepts
/// (bounds that keep a hostile config from asking for absurd allocations).
const MAX_DIM: usize = 1 << 16;
const MAX_POSITIONS: usize = 1 << 20;

/// What the engine needs of a decoder-only llama-family model.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmConfig {
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub max_positions: usize,
    pub rms_norm_eps: f32,
    pub rope_theta: f32,
    pub tie_word_embeddings: bool,
    /// Prepended to a prompt whose tokenizer does not add it.
    pub bos_token_id: Option<u32>,
    /// Generation stops after emitting one of these (sorted, deduplicated).
    pub stop_tokens: Vec<u32>,
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidArtifact(format!("config.json: {}", msg.into()))
}

impl LlmConfig {
    /// Parses `config.json` (and `generation_config.json` where the model has one).
    pub fn parse(config: &[u8], generation: Option<&[u8]>) -> Result<Self> {
        let raw: RawConfig = serde_json::from_slice(config).map_err(|e| invalid(e.to_string()))?;
        let generation: RawGenerationConfig = match generation {
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| {
                EngineError::InvalidArtifact(format!("generation_config.json: {e}"))
            })?,
            None => RawGenerationConfig::default(),
        };
        let model_type = raw.model_type.clone().unwrap_or_else(|| "llama".into());
        if !SUPPORTED_MODEL_TYPES.contains(&model_type.as_str()) {
            return Err(EngineError::UnsupportedArchitecture(format!(
                "model_type `{model_type}` (supported: {})",
                SUPPORTED_MODEL_TYPES.join(", ")
            )));
        }
        if let Some(scaling) = raw.rope_scaling.as_ref().filter(|v| !v.is_null()) {
            return Err(EngineError::UnsupportedArchitecture(format!(
                "rope_scaling {scaling} (only plain RoPE is implemented)"
            )));
        }
        if raw.use_sliding_window == Some(true)
            || (model_type == "mistral"
                && raw.sliding_window.as_ref().is_some_and(|v| !v.is_null()))
        {
            return Err(EngineError::UnsupportedArchitecture(
                "sliding-window attention".into(),
            ));
        }
        if raw.mlp_bias == Some(true) {
            return Err(EngineError::UnsupportedArchitecture("mlp_bias".into()));
        }
        if raw.attention_bias == Some(true) && model_type == "llama" {
            // Qwen2 always has q/k/v biases, which the loader finds by name; llama's
            // `attention_bias` adds them to o_proj as well.
            return Err(EngineError::UnsupportedArchitecture(
                "llama attention_bias".into(),
            ));
        }
        match raw.hidden_act.as_deref() {
            None | Some("silu") | Some("swish") => {}
            Some(other) => {
                return Err(EngineError::UnsupportedArchitecture(format!(
                    "hidden_act `{other}` (only silu)"
                )))
            }
        }
        let heads = raw.num_attention_heads;
        let kv_heads = raw.num_key_value_heads.unwrap_or(heads);
        let head_dim = raw
            .head_dim
            .unwrap_or(raw.hidden_size.checked_div(heads).unwrap_or(0));
        for (name, v) in [
            ("vocab_size", raw.vocab_size),
            ("hidden_size", raw.hidden_size),
            ("intermediate_size", raw.intermediate_size),
            ("num_hidden_layers", raw.num_hidden_layers),
            ("num_attention_heads", heads),
            ("num_key_value_heads", kv_heads),
            ("head_dim", head_dim),
        ] {
            if v == 0 || v > MAX_DIM * 16 {
                return Err(invalid(format!("{name} = {v} is out of range")));
            }
        }
        if raw.num_hidden_layers > MAX_DIM || heads > MAX_DIM {
            return Err(invalid("too many layers or heads"));
        }
        if !heads.is_multiple_of(kv_heads) {
            return Err(invalid(format!(
                "num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"
            )));
        }
        if !head_dim.is_multiple_of(2) {
            return Err(invalid(format!("head_dim {head_dim} is odd (RoPE pairs)")));
        }
        if raw.max_position_embeddings == 0 || raw.max_position_embeddings > MAX_POSITIONS {
            return Err(invalid(format!(
                "max_position_embeddings {} is out of range (1..={MAX_POSITIONS})",
                raw.max_position_embeddings
            )));
        }
        if !(raw.rms_norm_eps.is_finite() && raw.rms_norm_eps >= 0.0) {
            return Err(invalid("rms_norm_eps must be finite and non-negative"));
        }
        if !(raw.rope_theta.is_finite() && raw.rope_theta > 1.0) {
            return Err(invalid("rope_theta must be finite and above 1"));
        }
        let mut stop_tokens: Vec<u32> = generation
            .eos_token_id
            .as_ref()
            .or(raw.eos_token_id.as_ref())
            .map(TokenIds::to_vec)
            .unwrap_or_default();
        stop_tokens.sort_unstable();
        stop_tokens.dedup();
        if let Some(bad) = stop_tokens.iter().find(|&&t| t as usize >= raw.vocab_size) {
            return Err(invalid(format!(
                "eos_token_id {bad} is outside the vocabulary"
            )));
        }
        let bos_token_id = generation.bos_token_id.or(raw.bos_token_id);
        if bos_token_id.is_some_and(|b| b as usize >= raw.vocab_size) {
            return Err(invalid("bos_token_id is outside the vocabulary"));
        }
        Ok(LlmConfig {
            model_type,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads: heads,
            num_kv_heads: kv_heads,
            head_dim,
            max_positions: raw.max_position_embeddings,
            rms_norm_eps: raw.rms_norm_eps as f32,
            rope_theta: raw.rope_theta as f32,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            bos_token_id,
            stop_tokens,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn config(overrides: Value) -> Vec<u8> {
        let mut c = json!({"model_type":"llama","vocab_size":100,"hidden_size":16,
            "intermediate_size":32,"num_hidden_layers":2,"num_attention_heads":4,
            "num_key_value_heads":2,"max_position_embeddings":64,"rms_norm_eps":1e-5,
            "eos_token_id":[7,3,7]});
        for (k, v) in overrides.as_object().unwrap() {
            c[k] = v.clone();
        }
        serde_json::to_vec(&c).unwrap()
    }

    #[test]
    fn parses_and_derives_head_dim_and_stop_tokens() {
        let c = LlmConfig::parse(&config(json!({})), None).unwrap();
        assert_eq!((c.head_dim, c.num_kv_heads), (4, 2));
        assert_eq!(c.stop_tokens, vec![3, 7]);
        let c = LlmConfig::parse(&config(json!({})), Some(br#"{"eos_token_id": 5}"#)).unwrap();
        assert_eq!(c.stop_tokens, vec![5], "generation_config.json wins");
    }

    #[test]
    fn refuses_what_it_does_not_implement_by_name() {
        for o in [
            json!({"rope_scaling": {"type": "linear", "factor": 2.0}}),
            json!({"use_sliding_window": true}),
            json!({"hidden_act": "gelu"}),
            json!({"mlp_bias": true}),
            json!({"model_type": "gpt2"}),
        ] {
            assert!(
                matches!(
                    LlmConfig::parse(&config(o.clone()), None),
                    Err(EngineError::UnsupportedArchitecture(_))
                ),
                "{o}"
            );
        }
    }

    #[test]
    fn refuses_inconsistent_shapes() {
        for o in [
            json!({"num_key_value_heads": 3}),
            json!({"head_dim": 5}),
            json!({"max_position_embeddings": 0}),
            json!({"eos_token_id": 100}),
            json!({"hidden_size": 0}),
        ] {
            assert!(
                matches!(
                    LlmConfig::parse(&config(o.clone()), None),
                    Err(EngineError::InvalidArtifact(m)) if m.starts_with("config.json: ") && !m.contains("invalid type")
                ),
                "{o}"
            );
        }
    }
}
