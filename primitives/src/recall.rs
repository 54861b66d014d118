//! Agent memory retrieval, defined once for the runtime, its runtime API and every client:
//! embeddings in fixed point, an integer score, exact top-k with ties broken by memory id,
//! and the prompt a memory-backed question is asked with.
//!
//! **Fixed point.** An embedding (the f32 output of a space's embedding model, a verified
//! inference result) is stored as `i16` values: `q = round(x · 2^14)`, ties away from zero,
//! clamped to ±32767, NaN as 0. Multiplying by a power of two is exact in f32, and `y ± 0.5`
//! is computed in f64, where it is exact, so the rounding is one exactly defined step on
//! every machine (numpy: `trunc(float64(x) * 16384 + copysign(0.5, x))`, clamped). A
//! unit-norm embedding keeps ~4 significant digits per component.
//!
//! **Score** = the dot product of two fixed-point vectors in `i64`: integer arithmetic,
//! so exact and independent of the order of summation (384 products of at most 2^30 each
//! stay far below 2^63). A vector shorter than the other is compared on the common prefix
//! (embeddings of one space all have its model's length).
//!
//! **Top-k**: the `k` highest scores; equal scores rank the lower memory id first. Nothing
//! else (no approximate index): anyone holding the space's memories recomputes the same
//! list.

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// A memory's number inside its space.
pub type MemoryId = u32;

/// The fixed-point scale: `q = round(x · 2^FRACTION_BITS)`.
pub const FRACTION_BITS: i32 = 14;

/// One component in fixed point (see the module docs).
pub fn quantize_one(x: f32) -> i16 {
    if x.is_nan() {
        return 0;
    }
    let limit = i16::MAX as f32;
    let y = x * (1u32 << FRACTION_BITS) as f32;
    if y >= limit {
        return i16::MAX;
    }
    if y <= -limit {
        return -i16::MAX;
    }
    // In f64, where adding one half to |y| < 2^15 is exact (in f32 it is not: y just
    // below 0.5 would round up); `as` truncates toward zero.
    let y = y as f64;
    if y >= 0.0 {
        (y + 0.5) as i16
    } else {
        -((-y + 0.5) as i16)
    }
}

/// An embedding in fixed point.
pub fn quantize(values: &[f32]) -> Vec<i16> {
    values.iter().map(|&x| quantize_one(x)).collect()
}

/// The score of a memory for a query: the exact dot product of their fixed-point
/// embeddings.
pub fn score(query: &[i16], memory: &[i16]) -> i64 {
    query
        .iter()
        .zip(memory)
        .map(|(&a, &b)| a as i64 * b as i64)
        .sum()
}

/// A recalled memory and its score.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    TypeInfo,
    MaxEncodedLen,
)]
pub struct Recalled {
    pub memory: MemoryId,
    pub score: i64,
}

/// Whether `a` ranks before `b`: a higher score, or an equal score and a lower id.
fn ranks_before(a: &Recalled, b: &Recalled) -> bool {
    a.score > b.score || (a.score == b.score && a.memory < b.memory)
}

/// The `k` best of `candidates` (each a memory id and its fixed-point embedding) for
/// `query`, best first. One pass, `O(n · k)` comparisons at worst, `k` entries of memory.
pub fn top_k<'a>(
    query: &[i16],
    candidates: impl IntoIterator<Item = (MemoryId, &'a [i16])>,
    k: usize,
) -> Vec<Recalled> {
    let mut best: Vec<Recalled> = Vec::with_capacity(k.saturating_add(1).min(1024));
    if k == 0 {
        return best;
    }
    for (memory, embedding) in candidates {
        let r = Recalled {
            memory,
            score: score(query, embedding),
        };
        if best.len() == k && !best.last().is_some_and(|last| ranks_before(&r, last)) {
            continue;
        }
        let at = best
            .iter()
            .position(|b| ranks_before(&r, b))
            .unwrap_or(best.len());
        best.insert(at, r);
        best.truncate(k);
    }
    best
}

/// The prompt a memory-backed question is asked with: each recalled memory's text on a
/// line of its own after `"Memory: "`, in rank order, then `"Question: "`, the question and
/// `"\nAnswer:"`. Bytes in, bytes out: the texts are whatever the space holds.
pub fn memory_prompt<'a>(memories: impl IntoIterator<Item = &'a [u8]>, question: &[u8]) -> Vec<u8> {
    let mut prompt = Vec::new();
    for text in memories {
        prompt.extend_from_slice(b"Memory: ");
        prompt.extend_from_slice(text);
        prompt.push(b'\n');
    }
    prompt.extend_from_slice(b"Question: ");
    prompt.extend_from_slice(question);
    prompt.extend_from_slice(b"\nAnswer:");
    prompt
}

/// The prompt of a memory-backed question to a model whose prompts hold at most
/// `max_bytes`: the longest prefix of `ranked` (memory texts, best first) whose
/// [`memory_prompt`] fits, and how many memories that is. A memory that does not fit
/// ends the prompt: a shorter, lower-ranked one is not slipped in after it. `None` if
/// even the question alone does not fit.
pub fn fitted_prompt(
    ranked: &[&[u8]],
    question: &[u8],
    max_bytes: u32,
) -> Option<(usize, Vec<u8>)> {
    let fits = |n: usize| {
        memory_prompt(ranked[..n].iter().copied(), question).len() as u64 <= max_bytes as u64
    };
    if !fits(0) {
        return None;
    }
    let mut used = 0;
    while used < ranked.len() && fits(used + 1) {
        used += 1;
    }
    Some((
        used,
        memory_prompt(ranked[..used].iter().copied(), question),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantization_rounds_half_away_from_zero_clamps_and_zeroes_nan() {
        let step = 1.0 / 16384.0;
        assert_eq!(quantize_one(0.0), 0);
        assert_eq!(quantize_one(step), 1);
        assert_eq!(quantize_one(1.5 * step), 2);
        assert_eq!(quantize_one(-1.5 * step), -2);
        assert_eq!(quantize_one(1.4999 * step), 1);
        // Just below half a step: y + 0.5 = 1 - 2^-25 rounds to 1.0 in f32, not in f64.
        let below_half = (0.5 - 1.0 / (1u64 << 25) as f32) * step;
        assert_eq!(quantize_one(below_half), 0);
        assert_eq!(quantize_one(-below_half), 0);
        assert_eq!(quantize_one(0.5), 8192);
        assert_eq!(quantize_one(1.0), 16384);
        assert_eq!(quantize_one(2.5), i16::MAX);
        assert_eq!(quantize_one(-2.5), -i16::MAX);
        assert_eq!(quantize_one(f32::INFINITY), i16::MAX);
        assert_eq!(quantize_one(f32::NEG_INFINITY), -i16::MAX);
        assert_eq!(quantize_one(f32::NAN), 0);
    }

    #[test]
    fn top_k_orders_by_score_then_lower_id_and_keeps_k() {
        let q = [2i16, 1];
        let mems: Vec<(MemoryId, Vec<i16>)> = vec![
            (7, vec![1, 0]),  // 2
            (3, vec![0, 4]),  // 4
            (5, vec![2, 0]),  // 4
            (1, vec![-1, 0]), // -2
            (9, vec![3, 0]),  // 6
        ];
        let got = top_k(&q, mems.iter().map(|(id, e)| (*id, e.as_slice())), 3);
        let ids: Vec<MemoryId> = got.iter().map(|r| r.memory).collect();
        assert_eq!(ids, vec![9, 3, 5]);
        assert_eq!(got[0].score, 6);
        // The same candidates in any order give the same list.
        let got2 = top_k(&q, mems.iter().rev().map(|(id, e)| (*id, e.as_slice())), 3);
        assert_eq!(got, got2);
        assert!(top_k(&q, mems.iter().map(|(id, e)| (*id, e.as_slice())), 0).is_empty());
        assert_eq!(
            top_k(&q, mems.iter().map(|(id, e)| (*id, e.as_slice())), 10).len(),
            5
        );
    }

    #[test]
    fn prompt_lists_memories_in_rank_order_then_the_question() {
        let p = memory_prompt([&b"a"[..], &b"b"[..]], b"why?");
        assert_eq!(p, b"Memory: a\nMemory: b\nQuestion: why?\nAnswer:".to_vec());
    }

    #[test]
    fn the_fitted_prompt_is_the_longest_ranked_prefix_that_fits() {
        let ranked: [&[u8]; 3] = [b"aaaa", b"bbbbbbbbbbbbbbbbbbbb", b"c"];
        let q = b"q?";
        let one = memory_prompt([ranked[0]], q).len() as u32;
        // Room for the first memory only: the short third is not slipped in.
        assert_eq!(fitted_prompt(&ranked, q, one + 10).map(|(n, _)| n), Some(1));
        let all = memory_prompt(ranked, q);
        assert_eq!(
            fitted_prompt(&ranked, q, all.len() as u32),
            Some((3, all.clone()))
        );
        assert_eq!(fitted_prompt(&ranked, q, 5), None);
        assert_eq!(fitted_prompt(&[], q, 100), Some((0, memory_prompt([], q))));
    }
}
