//! Decoder-only language models of the llama family (Llama, Qwen2, SmolLM, Mistral
//! without a sliding window), loaded from a Hugging Face folder (`config.json`,
//! `*.safetensors`, `tokenizer.json`, `generation_config.json` if present) and run on the
//! kernels: greedy generation with a key/value cache ([`generate`]) and its verification
//! by one teacher-forced pass ([`verify`]).
//!
//! Canonical choices (part of the numerics profile): f32 throughout (bf16/f16 weights are
//! widened exactly at load); RMSNorm, RoPE and attention as `layers` defines them; the
//! greedy token is the argmax of the logits with ties broken by the lowest id; a NaN
//! logit is an error, never a choice. What the engine does not implement (RoPE scaling,
//! sliding windows, other activations) is refused at load by name.

pub mod config;
pub mod generate;
mod layers;
pub mod plan;
pub mod tokenizer;
pub mod verify;

use crate::{
    error::{EngineError, Result},
    spec,
    store::VerifiedFiles,
};
use candle_core::{DType as CDType, Device};
use candle_nn::VarBuilder;
pub use config::LlmConfig;
pub use generate::{Generation, StopReason};
use inferchain_primitives::{
    io::{IoSpec, Payload},
    model::ModelCost,
};
use inferchain_referee::bpe::ByteLevelBpe;
use layers::{DecoderLayer, LayerCache, Linear, RmsNorm};
use std::collections::HashMap;
use tokenizers::Tokenizer;
pub use verify::{GenerationMismatch, Verdict};

/// The files an LLM folder must have.
pub const LLM_REQUIRED_FILES: [&str; 2] = ["config.json", "tokenizer.json"];
/// The files an LLM folder may have besides its `*.safetensors` weights.
pub const LLM_OPTIONAL_FILES: [&str; 2] = ["generation_config.json", "tokenizer_config.json"];

/// The decoder: embeddings, layers, final norm, the language-model head.
struct Decoder {
    embed: Vec<f32>,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    config: LlmConfig,
}

/// The key/value cache of one sequence.
pub struct KvCache {
    layers: Vec<LayerCache>,
    len: usize,
}

impl Decoder {
    fn load(vb: VarBuilder, c: &LlmConfig) -> candle_core::Result<Self> {
        let vbm = vb.pp("model");
        let embed = vbm
            .pp("embed_tokens")
            .get((c.vocab_size, c.hidden_size), "weight")?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let layers = (0..c.num_layers)
            .map(|i| DecoderLayer::load(vbm.pp(format!("layers.{i}")), c))
            .collect::<candle_core::Result<_>>()?;
        let norm = RmsNorm::load(vbm.pp("norm"), c.hidden_size, c.rms_norm_eps)?;
        let lm_head = if !c.tie_word_embeddings || vb.contains_tensor("lm_head.weight") {
            Linear::load(vb.pp("lm_head"), c.hidden_size, c.vocab_size)?
        } else {
            Linear::from_rows(&embed, c.hidden_size, c.vocab_size, None)
        };
        Ok(Decoder {
            embed,
            layers,
            norm,
            lm_head,
            config: c.clone(),
        })
    }

    fn new_cache(&self, capacity: usize) -> KvCache {
        let c = &self.config;
        KvCache {
            layers: (0..c.num_layers)
                .map(|_| LayerCache::new(c.num_kv_heads, c.head_dim, capacity))
                .collect(),
            len: 0,
        }
    }

    /// Feeds `ids` at positions `cache.len..`, and returns the logits of the rows from
    /// `logits_from` on (`[rows - logits_from, vocab]`).
    fn forward(&self, ids: &[u32], cache: &mut KvCache, logits_from: usize) -> Result<Vec<f32>> {
        let (h, start, rows) = (self.config.hidden_size, cache.len, ids.len());
        let capacity = cache.layers.first().map_or(0, LayerCache::capacity);
        if start + rows > capacity {
            return Err(EngineError::TooManyPositions {
                prompt: start,
                new: rows,
                max: capacity,
            });
        }
        let mut x = Vec::with_capacity(rows * h);
        for &id in ids {
            let row = self
                .embed
                .get(id as usize * h..(id as usize + 1) * h)
                .ok_or_else(|| {
                    EngineError::Tokenizer(format!(
                        "token id {id} is outside the vocabulary ({})",
                        self.config.vocab_size
                    ))
                })?;
            x.extend_from_slice(row);
        }
        for (layer, lc) in self.layers.iter().zip(cache.layers.iter_mut()) {
            layer.forward(&mut x, rows, start, lc);
        }
        cache.len += rows;
        let tail = &x[logits_from.min(rows) * h..];
        let normed = self.norm.forward(tail);
        Ok(self.lm_head.forward(&normed, tail.len() / h))
    }

    fn bytes(&self) -> usize {
        4 * self.embed.len()
            + self.layers.iter().map(DecoderLayer::bytes).sum::<usize>()
            + self.norm.bytes()
            + self.lm_head.bytes()
    }
}

/// A loaded language model.
pub struct LlmModel {
    decoder: Decoder,
    /// The canonical tokenizer (the referee's byte-level BPE), where `tokenizer.json`
    /// describes one; `tokenizer` otherwise.
    canonical: Option<ByteLevelBpe>,
    tokenizer: Tokenizer,
    weight_bytes: usize,
}

impl LlmModel {
    /// Builds the model from files already checked against its manifest.
    pub fn load(files: &mut VerifiedFiles) -> Result<Self> {
        let config = files
            .get("config.json")
            .ok_or_else(|| EngineError::InvalidArtifact("config.json missing".into()))?;
        let config = LlmConfig::parse(config, files.get("generation_config.json"))?;
        let tokenizer = files
            .get("tokenizer.json")
            .ok_or_else(|| EngineError::InvalidArtifact("tokenizer.json missing".into()))?;
        let canonical = tokenizer::canonical_bpe(tokenizer).ok();
        let mut tokenizer =
            Tokenizer::from_bytes(tokenizer).map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let vb = weights(files)?;
        let decoder = Decoder::load(vb, &config)?;
        let weight_bytes = decoder.bytes();
        Ok(LlmModel {
            decoder,
            canonical,
            tokenizer,
            weight_bytes,
        })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.decoder.config
    }

    /// Bytes of weights held in memory.
    pub fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    /// The prompt's token ids, with the special tokens the tokenizer adds: the canonical
    /// tokenizer's where the model has one.
    pub fn tokenize(&self, prompt: &str) -> Result<Vec<u32>> {
        match &self.canonical {
            Some(bpe) => Ok(bpe.encode(prompt)),
            None => self.tokenize_with_tokenizers(prompt),
        }
    }

    /// Whether [`Self::tokenize`] and [`Self::decode`] are the canonical tokenizer's.
    pub fn has_canonical_tokenizer(&self) -> bool {
        self.canonical.is_some()
    }

    /// The prompt's ids from Hugging Face `tokenizers` (what the canonical tokenizer is
    /// compared against).
    pub fn tokenize_with_tokenizers(&self, prompt: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(prompt, true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`, special tokens skipped (the canonical tokenizer's where the
    /// model has one).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.canonical {
            Some(bpe) => bpe.decode(ids).ok_or_else(|| {
                EngineError::Tokenizer(format!(
                    "a token id is outside the vocabulary ({})",
                    bpe.tables().tokens.len()
                ))
            }),
            None => self.decode_with_tokenizers(ids),
        }
    }

    /// The text of `ids` from Hugging Face `tokenizers`.
    pub fn decode_with_tokenizers(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))
    }

    /// The logits of every position of `ids` from `logits_from` on, in one pass
    /// (`[ids.len() - logits_from, vocab]`).
    pub fn logits(&self, ids: &[u32], logits_from: usize) -> Result<Vec<f32>> {
        self.check_positions(ids.len(), 0)?;
        let mut cache = self.decoder.new_cache(ids.len());
        self.decoder.forward(ids, &mut cache, logits_from)
    }

    /// How many tokens may follow a prompt of `prompt` tokens: `max_new`, but never past
    /// the model's last position.
    fn new_tokens_within(&self, prompt: usize, max_new: usize) -> Result<usize> {
        self.check_positions(prompt, 0)?;
        Ok(max_new.min(self.decoder.config.max_positions - prompt))
    }

    fn check_positions(&self, prompt: usize, new: usize) -> Result<()> {
        if prompt == 0 {
            return Err(EngineError::EmptyPrompt);
        }
        let max = self.decoder.config.max_positions;
        if prompt.saturating_add(new) > max {
            return Err(EngineError::TooManyPositions { prompt, new, max });
        }
        Ok(())
    }
}

impl LlmModel {
    /// The longest text one token decodes to, in bytes (tokens decoded one at a time; a
    /// piece of a UTF-8 character counts as the 3 bytes of its replacement character).
    fn max_token_bytes(&self) -> u32 {
        (0..self.decoder.config.vocab_size as u32)
            .map(|id| {
                let piece = self.tokenizer.id_to_token(id).map_or(0, |t| t.len());
                let decoded = self.tokenizer.decode(&[id], false).map_or(0, |t| t.len());
                piece.max(decoded) as u32
            })
            .max()
            .unwrap_or(1)
            .max(1)
            .saturating_mul(3)
    }

    /// How many special tokens the tokenizer adds to a prompt.
    /// One request's cost at most: the prompt at one token a byte plus the tokens
    /// tokenizing adds, and `max_new_tokens` more, within the model's positions.
    pub fn cost(&self, max_prompt_bytes: u32, max_new_tokens: u32) -> ModelCost {
        let c = &self.decoder.config;
        let tokens = (max_prompt_bytes as usize)
            .saturating_add(self.added_tokens() as usize)
            .saturating_add(max_new_tokens as usize)
            .min(c.max_positions);
        crate::cost::TransformerDims {
            layers: c.num_layers,
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            heads: c.num_heads,
            kv_width: c.num_kv_heads * c.head_dim,
            mlp_matrices: 3,
            head_rows: c.vocab_size,
        }
        .cost(tokens, self.weight_bytes)
    }

    fn added_tokens(&self) -> u32 {
        self.tokenize("").map_or(0, |ids| ids.len() as u32)
    }

    /// What the model's files admit: prompts of any size its positions could hold, and
    /// up to `max_positions - 1` new tokens (the registered spec is tighter).
    pub fn io_specs(&self) -> Result<(IoSpec, IoSpec)> {
        let max = self.decoder.config.max_positions as u32;
        let new = max.saturating_sub(1).max(1);
        Ok((
            IoSpec::Prompt {
                max_bytes: max.saturating_mul(self.max_token_bytes()),
                max_new_tokens: new,
            },
            IoSpec::Generation {
                max_new_tokens: new,
                max_text_bytes: new.saturating_mul(self.max_token_bytes()),
            },
        ))
    }

    /// The spec to register by default: `max_new_tokens` up to
    /// [`spec::DEFAULT_MAX_NEW_TOKENS`] (at most half the positions), and prompts short
    /// enough in bytes that their tokens (at most one per byte, plus the special tokens)
    /// and the new tokens always fit the model's positions.
    pub fn registration_specs(&self) -> Result<(IoSpec, IoSpec)> {
        let max = self.decoder.config.max_positions as u32;
        let new = spec::DEFAULT_MAX_NEW_TOKENS.min(max / 2).max(1);
        let prompt_bytes = max.saturating_sub(new).saturating_sub(self.added_tokens());
        if prompt_bytes == 0 {
            return Err(EngineError::InvalidArtifact(format!(
                "max_position_embeddings {max} leaves no room for a prompt"
            )));
        }
        Ok((
            IoSpec::Prompt {
                max_bytes: prompt_bytes,
                max_new_tokens: new,
            },
            IoSpec::Generation {
                max_new_tokens: new,
                max_text_bytes: new.saturating_mul(self.max_token_bytes()),
            },
        ))
    }

    /// Tokenizes `prompt`, generates greedily, and returns the canonical output.
    pub fn complete(&self, prompt: &str, max_new_tokens: usize) -> Result<Payload> {
        let ids = self.tokenize(prompt)?;
        let generation = self.generate(&ids, max_new_tokens, &mut |_| {})?;
        let text = self.decode(&generation.tokens)?;
        Ok(Payload::Generation {
            tokens: generation.tokens,
            text: text.into_bytes(),
        })
    }
}

/// The model's `*.safetensors` tensors (every shard, in name order) as a `VarBuilder`
/// that widens them to f32.
pub(crate) fn weights(files: &VerifiedFiles) -> Result<VarBuilder<'static>> {
    let mut shards: Vec<String> = files
        .manifest
        .files
        .iter()
        .filter_map(|f| String::from_utf8(f.name.clone()).ok())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    shards.sort();
    if shards.is_empty() {
        return Err(EngineError::InvalidArtifact(
            "no *.safetensors weights".into(),
        ));
    }
    let mut tensors = HashMap::new();
    for name in &shards {
        let bytes = files
            .get(name)
            .ok_or_else(|| EngineError::InvalidArtifact(format!("{name} missing")))?;
        for (k, v) in candle_core::safetensors::load_buffer(bytes, &Device::Cpu)? {
            if tensors.insert(k.clone(), v).is_some() {
                return Err(EngineError::InvalidArtifact(format!(
                    "tensor {k} appears in two weight files"
                )));
            }
        }
    }
    Ok(VarBuilder::from_tensors(tensors, CDType::F32, &Device::Cpu))
}

/// The greedy choice: the index of the largest logit, the lowest on ties; NaN is never
/// the largest (a row of NaN gives 0) — the referee's `ArgmaxRows`, so a model that makes
/// NaN is still answered and refereed alike.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in logits.iter().enumerate() {
        if !v.is_nan() && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i as u32)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_lowest_id_on_ties_and_never_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[-0.0, 0.0]), 0, "-0 and +0 tie");
        assert_eq!(argmax(&[f32::NAN, -1.0, 2.0]), 2);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
    }
}
