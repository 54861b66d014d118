//! Greedy generation with a key/value cache.

use super::{argmax, LlmModel};
use crate::error::Result;

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The last token is one of the model's stop tokens.
    StopToken,
    /// `max_new_tokens` tokens were generated without a stop token.
    MaxNewTokens,
}

/// A greedy generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    /// The generated ids (a stop token, if one ended it, included).
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    /// The bits a determinism check compares: blake2-256 over the blake2-256 of each
    /// logits row a token was chosen from, in order (a row hashed as its f32 values
    /// little-endian; per row, so a verifier hashes its rows in parallel).
    pub logits_hash: [u8; 32],
}

pub(crate) fn logits_hasher() -> blake2b_simd::State {
    blake2b_simd::Params::new().hash_length(32).to_state()
}

/// One logits row's blake2-256 (its f32 values little-endian); the logits hash is
/// taken over these.
pub(crate) fn row_digest(row: &[f32]) -> [u8; 32] {
    let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut out = [0u8; 32];
    out.copy_from_slice(
        blake2b_simd::Params::new()
            .hash_length(32)
            .hash(&bytes)
            .as_bytes(),
    );
    out
}

pub(crate) fn hash_row(state: &mut blake2b_simd::State, row: &[f32]) {
    state.update(&row_digest(row));
}

pub(crate) fn finish(state: &blake2b_simd::State) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}

impl LlmModel {
    /// Generates greedily after `prompt` until a stop token, `max_new_tokens` or the
    /// model's last position (the referee's `GreedyCheck` ends there too); `on_token` sees
    /// each token as it is chosen.
    pub fn generate(
        &self,
        prompt: &[u32],
        max_new_tokens: usize,
        on_token: &mut dyn FnMut(u32),
    ) -> Result<Generation> {
        let max_new_tokens = self.new_tokens_within(prompt.len(), max_new_tokens)?;
        let d = &self.decoder;
        let mut state = logits_hasher();
        let mut tokens = Vec::with_capacity(max_new_tokens);
        if max_new_tokens == 0 {
            return Ok(Generation {
                tokens,
                stop: StopReason::MaxNewTokens,
                logits_hash: finish(&state),
            });
        }
        let mut cache = d.new_cache(prompt.len() + max_new_tokens);
        let mut logits = d.forward(prompt, &mut cache, prompt.len() - 1)?;
        loop {
            let token = argmax(&logits);
            hash_row(&mut state, &logits);
            tokens.push(token);
            on_token(token);
            if d.config.stop_tokens.binary_search(&token).is_ok() {
                return Ok(Generation {
                    tokens,
                    stop: StopReason::StopToken,
                    logits_hash: finish(&state),
                });
            }
            if tokens.len() == max_new_tokens {
                return Ok(Generation {
                    tokens,
                    stop: StopReason::MaxNewTokens,
                    logits_hash: finish(&state),
                });
            }
            logits = d.forward(&[token], &mut cache, 0)?;
        }
    }
}
