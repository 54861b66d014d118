//! Verification of a claimed generation by one teacher-forced pass: the model reads the
//! prompt and the output except its last token once (the row of each position predicts
//! the next token), and the claim holds only if every output token is the greedy choice
//! at its position, no token follows a stop token, an output shorter than
//! `max_new_tokens` ends with a stop token, and none is longer. Nothing is re-generated;
//! the kernels make this pass's logits the generator's, bit for bit.

use super::{
    argmax,
    generate::{finish, logits_hasher, row_digest},
    LlmModel,
};
use crate::error::Result;

/// Why a claimed generation is not the model's greedy generation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GenerationMismatch {
    #[error("the output has {len} tokens, more than max_new_tokens {max}")]
    TooLong { len: usize, max: usize },
    #[error("the output goes on after stop token {token} at output position {position}")]
    PastStopToken { position: usize, token: u32 },
    #[error("the output ends after {len} tokens, before max_new_tokens {max}, without a stop token (truncated)")]
    Truncated { len: usize, max: usize },
    #[error("output token {position} is {claimed}; the model's greedy choice there is {expected}")]
    WrongToken {
        position: usize,
        claimed: u32,
        expected: u32,
    },
    #[error("the claimed text is not what the token ids decode to")]
    TextMismatch,
}

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The output is the greedy generation; `logits_hash` equals the generator's
    /// [`super::Generation::logits_hash`].
    Valid { logits_hash: [u8; 32] },
    /// The first thing wrong with the claim.
    Invalid(GenerationMismatch),
}

impl LlmModel {
    /// Checks that `output` is the greedy generation after `prompt` under
    /// `max_new_tokens` (at most to the model's last position; errors are the engine's: an
    /// empty prompt or one longer than the positions).
    pub fn verify(&self, prompt: &[u32], output: &[u32], max_new_tokens: usize) -> Result<Verdict> {
        let max_new_tokens = self.new_tokens_within(prompt.len(), max_new_tokens)?;
        let stops = &self.decoder.config.stop_tokens;
        let is_stop = |t: &u32| stops.binary_search(t).is_ok();
        let invalid = |m| Ok(Verdict::Invalid(m));
        if output.len() > max_new_tokens {
            return invalid(GenerationMismatch::TooLong {
                len: output.len(),
                max: max_new_tokens,
            });
        }
        if let Some(position) = output
            .iter()
            .take(output.len().saturating_sub(1))
            .position(is_stop)
        {
            return invalid(GenerationMismatch::PastStopToken {
                position,
                token: output[position],
            });
        }
        if output.len() < max_new_tokens && !output.last().is_some_and(is_stop) {
            return invalid(GenerationMismatch::Truncated {
                len: output.len(),
                max: max_new_tokens,
            });
        }
        let mut state = logits_hasher();
        if output.is_empty() {
            return Ok(Verdict::Valid {
                logits_hash: finish(&state),
            });
        }
        // A claimed id outside the vocabulary is read as 0 (as the plan's `TeacherForced`
        // lays it out); the comparison below is with the claim itself.
        let vocab = self.decoder.config.vocab_size;
        let mut ids = Vec::with_capacity(prompt.len() + output.len() - 1);
        ids.extend_from_slice(prompt);
        ids.extend(
            output[..output.len() - 1]
                .iter()
                .map(|&t| if (t as usize) < vocab { t } else { 0 }),
        );
        let logits = self.logits(&ids, prompt.len() - 1)?;
        for (i, (row, &claimed)) in logits.chunks(vocab).zip(output).enumerate() {
            let expected = argmax(row);
            if expected != claimed {
                return invalid(GenerationMismatch::WrongToken {
                    position: i,
                    claimed,
                    expected,
                });
            }
        }
        // Every row's digest in parallel (most of a large vocabulary's verification time
        // after the products), then the hash over them in order.
        let rows = logits.len().div_ceil(vocab.max(1));
        let digests: Vec<[u8; 32]> = crate::kernel_threads::map_collect(rows, |r| {
            row_digest(&logits[r * vocab..(r * vocab + vocab).min(logits.len())])
        });
        for digest in &digests {
            state.update(digest);
        }
        Ok(Verdict::Valid {
            logits_hash: finish(&state),
        })
    }

    /// Checks that `text` is what `output` decodes to.
    pub fn verify_text(&self, output: &[u32], text: &str) -> Result<Option<GenerationMismatch>> {
        Ok((self.decode(output)? != text).then_some(GenerationMismatch::TextMismatch))
    }
}
