//! BERT-family sentence embeddings (e.g. all-MiniLM-L6-v2): text is tokenized with the
//! model's own `tokenizer.json`, run through candle-transformers' BERT encoder, mean-pooled
//! over the tokens and L2-normalised. Output: f32 `[1, hidden_size]`.
//!
//! Canonical choices (part of the numerics profile): no padding (one sequence, so no mask
//! is needed), truncation as the tokenizer declares it (or at the model's position limit),
//! f32 throughout.

use crate::{
    error::{EngineError, Result},
    spec::{self, DEFAULT_MAX_TEXT_BYTES},
    store::{VerifiedFiles, BERT_POOLING_FILE},
};
use candle_core::{DType as CDType, Device, Tensor as CTensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use inferchain_primitives::io::{DType, Dim, IoSpec, Tensor};
use tokenizers::{Tokenizer, TruncationParams};

/// The sentence-transformers pooling config; only mean pooling is supported.
#[derive(serde::Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// A loaded embedding model.
pub struct BertEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    hidden_size: usize,
    weight_bytes: usize,
}

impl BertEmbedder {
    /// Builds the model from files already checked against its manifest.
    pub fn load(files: &mut VerifiedFiles) -> Result<Self> {
        let config_bytes = files
            .get("config.json")
            .ok_or_else(|| EngineError::InvalidArtifact("config.json missing".into()))?;
        let config: Config = serde_json::from_slice(config_bytes)
            .map_err(|e| EngineError::InvalidArtifact(format!("config.json: {e}")))?;
        if let Some(pooling) = files.get(BERT_POOLING_FILE) {
            let pooling: PoolingConfig = serde_json::from_slice(pooling)
                .map_err(|e| EngineError::InvalidArtifact(format!("{BERT_POOLING_FILE}: {e}")))?;
            if !pooling.pooling_mode_mean_tokens
                || pooling.pooling_mode_cls_token
                || pooling.pooling_mode_max_tokens
                || pooling.pooling_mode_mean_sqrt_len_tokens
            {
                return Err(EngineError::InvalidArtifact(format!(
                    "{BERT_POOLING_FILE}: only mean pooling is supported"
                )));
            }
        }
        let mut tokenizer = Tokenizer::from_bytes(
            files
                .get("tokenizer.json")
                .ok_or_else(|| EngineError::InvalidArtifact("tokenizer.json missing".into()))?,
        )
        .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        let limit = config.max_position_embeddings;
        let max_length = tokenizer
            .get_truncation()
            .map(|t| t.max_length.min(limit))
            .unwrap_or(limit);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let weights = files
            .take("model.safetensors")
            .ok_or_else(|| EngineError::InvalidArtifact("model.safetensors missing".into()))?;
        let weight_bytes = weights.len();
        let vb = VarBuilder::from_buffered_safetensors(weights, CDType::F32, &Device::Cpu)?;
        let model = BertModel::load(vb, &config)?;
        Ok(BertEmbedder {
            model,
            tokenizer,
            hidden_size: config.hidden_size,
            weight_bytes,
        })
    }

    /// Bytes of weights held in memory.
    pub fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    /// Text in, `[1, hidden_size]` f32 out.
    pub fn io_specs(&self) -> Result<(IoSpec, IoSpec)> {
        let output = spec::tensor_spec(
            "embedding",
            DType::F32,
            vec![Dim::Fixed(1), Dim::Fixed(self.hidden_size as u32)],
        )?;
        Ok((
            IoSpec::Text {
                max_bytes: DEFAULT_MAX_TEXT_BYTES,
            },
            IoSpec::Tensors(
                vec![output]
                    .try_into()
                    .map_err(|_| EngineError::InvalidArtifact("one output tensor".into()))?,
            ),
        ))
    }

    /// Token ids for `text`, with the special tokens, truncated canonically.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The embedding of a token sequence.
    pub fn embed_tokens(&self, ids: &[u32]) -> Result<Tensor> {
        let input_ids = CTensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
        let token_type_ids = input_ids.zeros_like()?;
        let hidden = self.model.forward(&input_ids, &token_type_ids, None)?;
        // Mean over the tokens, then L2-normalise.
        let pooled = hidden.mean(1)?;
        let norm = pooled.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        let embedding = pooled.broadcast_div(&norm)?;
        crate::conversion::from_candle(&embedding)
    }

    /// The embedding of `text`.
    pub fn embed(&self, text: &str) -> Result<Tensor> {
        let ids = self.tokenize(text)?;
        self.embed_tokens(&ids)
    }
}
