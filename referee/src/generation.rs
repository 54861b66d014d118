//! The two ends of a generation's plan (docs/LLM.md): the teacher-forced sequence
//! (the request's prompt tokenized canonically, then the claimed output's ids) and the
//! greedy check, whose output is the claimed generation when it is the model's greedy
//! one and otherwise a *witness*: the claim cut at its first fault and corrected there.

use crate::{
    bpe::{BpeTables, ByteLevelBpe},
    encoder::words,
};
use alloc::vec::Vec;
use codec::{Decode, Encode};
use inferchain_primitives::{dispute::RefereeError, io::Payload};

fn tokenizer(tables: &[u8]) -> Result<ByteLevelBpe, RefereeError> {
    let tables = BpeTables::decode(&mut &tables[..]).map_err(|_| RefereeError::OperandMismatch)?;
    ByteLevelBpe::new(tables).map_err(|_| RefereeError::OperandMismatch)
}

/// `(prompt text, max_new_tokens)` of a prompt payload.
fn prompt(payload: &[u8]) -> Result<(Vec<u8>, u32), RefereeError> {
    match Payload::decode_canonical(payload) {
        Ok(Payload::Prompt {
            text,
            max_new_tokens,
        }) => Ok((text, max_new_tokens)),
        _ => Err(RefereeError::OperandMismatch),
    }
}

/// `(tokens, text)` of a generation payload.
fn generation(payload: &[u8]) -> Result<(Vec<u32>, Vec<u8>), RefereeError> {
    match Payload::decode_canonical(payload) {
        Ok(Payload::Generation { tokens, text }) => Ok((tokens, text)),
        _ => Err(RefereeError::OperandMismatch),
    }
}

/// Operand 0 the request's prompt, 1 the claimed output, 2 the tokenizer: u32 words
/// `[c, n, prompt ids (c) ++ claimed ids (n), 0 …]`, `positions` ids in all; a claimed
/// id outside the vocabulary is laid out as 0 (no later step can read past the table,
/// and `GreedyCheck`, which compares the claim itself, convicts it).
pub(crate) fn teacher_forced(
    (positions, vocab): (u32, u32),
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [input, output, tables] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let (text, _) = prompt(input)?;
    let text = core::str::from_utf8(&text).map_err(|_| RefereeError::OperandMismatch)?;
    let ids = tokenizer(tables)?.encode(text);
    let (claimed, _) = generation(output)?;
    if ids.is_empty() || ids.len() as u64 + claimed.len() as u64 > u64::from(positions) {
        return Err(RefereeError::OperandMismatch);
    }
    let mut out = Vec::with_capacity(4 * (2 + positions as usize));
    out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    out.extend_from_slice(&(claimed.len() as u32).to_le_bytes());
    for i in 0..positions as usize {
        let id = match ids.get(i) {
            Some(&id) => id,
            None => claimed
                .get(i - ids.len())
                .copied()
                .filter(|&id| id < vocab)
                .unwrap_or(0),
        };
        out.extend_from_slice(&id.to_le_bytes());
    }
    Ok(out)
}

/// Operand 0 the teacher-forced words, 1 the argmax of every row (u32 per position),
/// 2 the request's prompt, 3 the claimed output, 4 the tokenizer. The greedy generation
/// after `c` prompt tokens has, at output position `i`, the argmax of row `c - 1 + i`; it
/// ends after a stop token or at the request's `max_new_tokens`. Output: the claimed
/// payload if it is that generation with its decoded text; else, at the first fault, a
/// witness: a wrong token replaced by the greedy one (and cut there), a claim running past
/// a stop token cut after it, a claim longer than `max_new_tokens` cut to it, a claim that
/// ends early without a stop token extended by the next greedy token, a wrong text
/// replaced by the decoded one.
pub(crate) fn greedy_check(
    (positions, stop_tokens): (u32, &[u32]),
    operands: &[&[u8]],
) -> Result<Vec<u8>, RefereeError> {
    let [sequence, choices, input, output, tables] = operands else {
        return Err(RefereeError::OperandMismatch);
    };
    let sequence = words(sequence)?;
    let choices = words(choices)?;
    let (c, n) = match sequence.as_slice() {
        [c, n, ..] => (*c as usize, *n as usize),
        _ => return Err(RefereeError::OperandMismatch),
    };
    let (_, max_new) = prompt(input)?;
    let (claimed, text) = generation(output)?;
    if c == 0
        || claimed.len() != n
        || choices.len() != positions as usize
        || sequence.len() != 2 + positions as usize
        || c + n > positions as usize
    {
        return Err(RefereeError::OperandMismatch);
    }
    let greedy = |i: usize| choices.get(c - 1 + i).copied();
    let is_stop = |t: u32| stop_tokens.contains(&t);
    let max = (max_new as usize).min(positions as usize - c);
    let mut tokens: Vec<u32> = Vec::with_capacity(n + 1);
    let mut faulty = false;
    for (i, &token) in claimed.iter().enumerate() {
        if i == max {
            faulty = true; // longer than max_new_tokens
            break;
        }
        let expected = greedy(i).ok_or(RefereeError::OperandMismatch)?;
        tokens.push(expected);
        if token != expected {
            faulty = true;
            break;
        }
        if is_stop(token) {
            faulty = i + 1 < n; // a claim that goes on after a stop token
            break;
        }
    }
    if !faulty && tokens.len() == n && n < max && !tokens.last().is_some_and(|&t| is_stop(t)) {
        // Ended early without a stop token: the next greedy token shows it.
        tokens.push(greedy(n).ok_or(RefereeError::OperandMismatch)?);
        faulty = true;
    }
    let decoded = tokenizer(tables)?
        .decode(&tokens)
        .ok_or(RefereeError::OperandMismatch)?
        .into_bytes();
    if !faulty && decoded == text {
        return Ok(output.to_vec());
    }
    Ok(Payload::Generation {
        tokens,
        text: decoded,
    }
    .encode())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloc::vec;

    fn tables() -> Vec<u8> {
        // Bytes only: id b is byte b; 256 is a stop token "<e>".
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        tokens.push(b"<e>".to_vec());
        BpeTables {
            byte_ids: (0..256).collect(),
            merges: vec![],
            tokens,
            specials: vec![(b"<e>".to_vec(), 256)],
            prefix: vec![256],
        }
        .encode()
    }

    fn prompt_payload(text: &[u8], max: u32) -> Vec<u8> {
        Payload::Prompt {
            text: text.to_vec(),
            max_new_tokens: max,
        }
        .encode()
    }

    fn claim(tokens: &[u32]) -> Vec<u8> {
        let text: Vec<u8> = tokens
            .iter()
            .filter(|&&t| t < 256)
            .map(|&t| t as u8)
            .collect();
        Payload::Generation {
            tokens: tokens.to_vec(),
            text,
        }
        .encode()
    }

    fn le(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// The check of `claimed` when the greedy rows after the 3 prompt ids ("<e>hi")
    /// choose `greedy`, under `max` new tokens, 12 positions.
    fn check(greedy: &[u32], claimed: &[u32], max: u32) -> Payload {
        let (input, output, t) = (prompt_payload(b"hi", max), claim(claimed), tables());
        let seq = teacher_forced((12, 300), &[&input, &output, &t]).unwrap();
        let mut choices = vec![0u32; 12];
        choices[2..2 + greedy.len()].copy_from_slice(greedy);
        let out = greedy_check((12, &[256]), &[&seq, &le(&choices), &input, &output, &t]).unwrap();
        Payload::decode_canonical(&out).unwrap()
    }

    fn gen(tokens: &[u32]) -> Payload {
        Payload::decode_canonical(&claim(tokens)).unwrap()
    }

    #[test]
    fn the_sequence_is_the_prompt_then_the_claim() {
        let (input, output, t) = (prompt_payload(b"hi", 4), claim(&[7, 8]), tables());
        let seq = words(&teacher_forced((8, 300), &[&input, &output, &t]).unwrap()).unwrap();
        assert_eq!(seq, vec![3, 2, 256, 104, 105, 7, 8, 0, 0, 0]);
        // Prompt and claim beyond the positions: refused by name.
        assert_eq!(
            teacher_forced((4, 300), &[&input, &output, &t]),
            Err(RefereeError::OperandMismatch)
        );
    }

    #[test]
    fn an_honest_claim_is_its_own_output_and_every_fault_gets_a_witness() {
        let greedy = [65, 66, 67, 256, 68];
        // Honest: stops at the stop token; or at max_new_tokens.
        assert_eq!(
            check(&greedy, &[65, 66, 67, 256], 8),
            gen(&[65, 66, 67, 256])
        );
        assert_eq!(check(&greedy, &[65, 66], 2), gen(&[65, 66]));
        // A wrong token: cut there, the greedy one in its place.
        assert_eq!(check(&greedy, &[65, 70, 67, 256], 8), gen(&[65, 66]));
        // Past a stop token.
        assert_eq!(check(&[65, 256, 1, 2], &[65, 256, 1], 8), gen(&[65, 256]));
        // Longer than max_new_tokens.
        assert_eq!(check(&greedy, &[65, 66, 67], 2), gen(&[65, 66]));
        // An id outside the vocabulary: laid out as 0, convicted as a wrong token.
        let (input, t) = (prompt_payload(b"hi", 4), tables());
        let wild = claim(&[65, u32::MAX]);
        let seq = words(&teacher_forced((12, 300), &[&input, &wild, &t]).unwrap()).unwrap();
        assert_eq!(seq[2..7], [256, 104, 105, 65, 0]);
        assert_eq!(check(&greedy, &[65, u32::MAX], 8), gen(&[65, 66]));
        // Truncated: the next greedy token.
        assert_eq!(check(&greedy, &[65, 66], 8), gen(&[65, 66, 67]));
        assert_eq!(check(&greedy, &[], 8), gen(&[65]));
        // The right ids with a wrong text.
        let (input, t) = (prompt_payload(b"hi", 2), tables());
        let lying = Payload::Generation {
            tokens: vec![65, 66],
            text: b"XY".to_vec(),
        }
        .encode();
        let seq = teacher_forced((12, 300), &[&input, &lying, &t]).unwrap();
        let mut choices = vec![0u32; 12];
        choices[2..4].copy_from_slice(&[65, 66]);
        let out = greedy_check((12, &[256]), &[&seq, &le(&choices), &input, &lying, &t]).unwrap();
        assert_eq!(Payload::decode_canonical(&out).unwrap(), gen(&[65, 66]));
    }
}
