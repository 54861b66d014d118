//! Canonical byte-level BPE (GPT-2 style, as Hugging Face `tokenizers` runs it for
//! Llama-3, Qwen2, SmolLM and GPT-2 families): text to token ids and back, in no_std code
//! the engine and the runtime's referee share, so the ids a language model's run starts
//! from, and the text its output ids decode to, are what a block can recompute.
//!
//! Encoding: the special tokens are matched in the raw text first (leftmost, longest
//! first); each stretch between them is split by the GPT-2 pattern
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//! (leftmost-first alternation, as a backtracking regex engine runs it); each piece's
//! bytes start as one symbol per byte and the adjacent pair of lowest merge rank (the
//! leftmost on ties) is merged until no pair has a rank; the template's ids go first.
//! Decoding: the ids' bytes concatenated, special tokens skipped, then UTF-8 with each
//! invalid sequence replaced by U+FFFD (Rust's `from_utf8_lossy`, which `tokenizers`
//! uses too). Letters and numbers come from `unicode_tables.rs` (one Unicode version),
//! White_Space from `char_class.rs`: where a tokenizer built on another Unicode version
//! treats a character differently, this file's answer is the canonical one.

use crate::char_class::{is_letter, is_number, is_white_space};
use alloc::{collections::BTreeMap, string::String, vec::Vec};
use codec::{Decode, Encode};

/// A byte-level BPE tokenizer as data (what a plan step carries as a weight).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BpeTables {
    /// The id of each byte's one-byte token (256 entries).
    pub byte_ids: Vec<u32>,
    /// The merges in rank order: `(left, right, merged)` ids.
    pub merges: Vec<(u32, u32, u32)>,
    /// Every id's bytes, for decoding (a special token's content too).
    pub tokens: Vec<Vec<u8>>,
    /// The special tokens matched in raw text, with their ids (skipped when decoding).
    pub specials: Vec<(Vec<u8>, u32)>,
    /// The ids put before the text (the post-processor's template, e.g. a BOS token).
    pub prefix: Vec<u32>,
}

/// Why tables cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BpeError {
    /// Not 256 byte ids, or an id outside the token list.
    BadTables,
}

/// A byte-level BPE tokenizer ready to run.
#[derive(Clone, Debug)]
pub struct ByteLevelBpe {
    tables: BpeTables,
    /// `(left, right)` → `(rank, merged)`.
    ranks: BTreeMap<(u32, u32), (u32, u32)>,
}

impl ByteLevelBpe {
    pub fn new(tables: BpeTables) -> Result<Self, BpeError> {
        let n = tables.tokens.len() as u64;
        let id_ok = |id: &u32| u64::from(*id) < n;
        if tables.byte_ids.len() != 256
            || !tables.byte_ids.iter().all(id_ok)
            || !tables
                .merges
                .iter()
                .all(|(l, r, m)| id_ok(l) && id_ok(r) && id_ok(m))
            || !tables.specials.iter().all(|(_, id)| id_ok(id))
            || !tables.prefix.iter().all(id_ok)
        {
            return Err(BpeError::BadTables);
        }
        let mut ranks = BTreeMap::new();
        for (rank, &(l, r, m)) in tables.merges.iter().enumerate() {
            // The first (lowest-ranked) occurrence of a pair wins, as in `tokenizers`.
            ranks.entry((l, r)).or_insert((rank as u32, m));
        }
        Ok(ByteLevelBpe { tables, ranks })
    }

    pub fn tables(&self) -> &BpeTables {
        &self.tables
    }

    /// The token ids of `text`, the template's first.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = self.tables.prefix.clone();
        let mut rest = text;
        while !rest.is_empty() {
            match self.next_special(rest) {
                Some((at, len, id)) => {
                    self.encode_plain(&rest[..at], &mut ids);
                    ids.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_plain(rest, &mut ids);
                    break;
                }
            }
        }
        ids
    }

    /// The leftmost special token in `text` (the longest at that position): its byte
    /// offset, length and id.
    fn next_special(&self, text: &str) -> Option<(usize, usize, u32)> {
        let bytes = text.as_bytes();
        (0..bytes.len())
            .filter(|&at| text.is_char_boundary(at))
            .find_map(|at| {
                self.tables
                    .specials
                    .iter()
                    .filter(|(content, _)| !content.is_empty() && bytes[at..].starts_with(content))
                    .max_by_key(|(content, _)| content.len())
                    .map(|(content, id)| (at, content.len(), *id))
            })
    }

    fn encode_plain(&self, text: &str, ids: &mut Vec<u32>) {
        for piece in pre_tokens(text) {
            self.merge_piece(piece.as_bytes(), ids);
        }
    }

    /// BPE on one piece: merge the lowest-ranked adjacent pair (leftmost on ties) until
    /// none has a rank.
    fn merge_piece(&self, bytes: &[u8], ids: &mut Vec<u32>) {
        let mut symbols: Vec<u32> = bytes
            .iter()
            .map(|&b| self.tables.byte_ids[b as usize])
            .collect();
        loop {
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, w)| self.ranks.get(&(w[0], w[1])).map(|&(r, m)| (r, i, m)))
                .min();
            match best {
                Some((_, i, merged)) => {
                    symbols[i] = merged;
                    symbols.remove(i + 1);
                }
                None => break,
            }
        }
        ids.extend(symbols);
    }

    /// The text of `ids`: their bytes, special tokens skipped, as UTF-8 with invalid
    /// sequences replaced by U+FFFD; `None` if an id is outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Option<String> {
        let mut bytes = Vec::new();
        for &id in ids {
            if self.tables.specials.iter().any(|(_, s)| *s == id) {
                continue;
            }
            bytes.extend_from_slice(self.tables.tokens.get(id as usize)?);
        }
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The GPT-2 pattern's pieces of `text`, in order; together they are `text`.
pub fn pre_tokens(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let offset = |k: usize| chars.get(k).map_or(text.len(), |c| c.0);
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let j = piece_end(&chars, i);
        pieces.push(&text[offset(i)..offset(j)]);
        i = j;
    }
    pieces
}

/// Where the piece starting at char `i` ends (exclusive, > `i`).
fn piece_end(chars: &[(usize, char)], i: usize) -> usize {
    let at = |k: usize| chars.get(k).map(|c| c.1);
    let run = |from: usize, pred: &dyn Fn(char) -> bool| {
        let mut k = from;
        while at(k).is_some_and(pred) {
            k += 1;
        }
        k
    };
    // 's 't 're 've 'm 'll 'd
    if at(i) == Some('\'') {
        for suffix in ["s", "t", "re", "ve", "m", "ll", "d"] {
            if suffix
                .chars()
                .enumerate()
                .all(|(n, c)| at(i + 1 + n) == Some(c))
            {
                return i + 1 + suffix.len();
            }
        }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: with the space, else without.
    let classes: [&dyn Fn(char) -> bool; 3] = [&|c| is_letter(c), &|c| is_number(c), &|c| {
        !is_white_space(c) && !is_letter(c) && !is_number(c)
    }];
    for class in classes {
        for from in [i + 1, i] {
            if from == i + 1 && at(i) != Some(' ') {
                continue;
            }
            let end = run(from, class);
            if end > from {
                return end;
            }
        }
    }
    // `\s+(?!\S)`, then `\s+`.
    let end = run(i, &is_white_space);
    if end == chars.len() || end < i + 2 {
        end.max(i + 1)
    } else {
        end - 1
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn the_gpt2_pattern_splits_as_the_regex_does() {
        let cases: [(&str, &[&str]); 8] = [
            ("Hello world", &["Hello", " world"]),
            ("it's 42nd!", &["it", "'s", " 42", "nd", "!"]),
            ("a  b", &["a", " ", " b"]),
            ("end   ", &["end", "   "]),
            ("x\n\ny", &["x", "\n", "\n", "y"]),
            ("  ?!x", &[" ", " ?!", "x"]),
            ("'sea 'Tis", &["'s", "ea", " '", "Tis"]),
            ("über ٣٤ 漢字", &["über", " ٣٤", " 漢字"]),
        ];
        for (text, want) in cases {
            assert_eq!(pre_tokens(text), want.to_vec(), "{text:?}");
        }
        assert!(pre_tokens("").is_empty());
    }

    fn toy() -> ByteLevelBpe {
        // ids 0..256 the bytes; 256 "ab", 257 "abc", 258 the special "<s>".
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        tokens.push(b"ab".to_vec());
        tokens.push(b"abc".to_vec());
        tokens.push(b"<s>".to_vec());
        ByteLevelBpe::new(BpeTables {
            byte_ids: (0..256).collect(),
            merges: vec![(97, 98, 256), (256, 99, 257)],
            tokens,
            specials: vec![(b"<s>".to_vec(), 258)],
            prefix: vec![258],
        })
        .unwrap()
    }

    #[test]
    fn merges_by_rank_with_specials_and_the_template() {
        let bpe = toy();
        assert_eq!(bpe.encode("abcab"), vec![258, 257, 256]);
        assert_eq!(bpe.encode("x<s>abc"), vec![258, 120, 258, 257]);
        assert_eq!(bpe.decode(&[258, 257, 120]).unwrap(), "abcx");
        assert_eq!(bpe.decode(&[0xE2, 0x82]).unwrap(), "\u{fffd}");
        assert_eq!(bpe.decode(&[9999]), None);
        let mut bad = bpe.tables().clone();
        bad.byte_ids.pop();
        assert_eq!(ByteLevelBpe::new(bad).unwrap_err(), BpeError::BadTables);
    }
}
