//! Canonical BERT tokenization: text to WordPiece token ids, in no_std code the engine
//! and the runtime's referee share, so the ids a traced run of a text model starts from
//! are the ones a block can recompute.
//!
//! It is Hugging Face's `BertNormalizer` (clean text, pad CJK ideographs with spaces,
//! strip accents and lowercase when uncased), `BertPreTokenizer` (split on whitespace,
//! isolate punctuation) and `WordPiece` (greedy longest match, `##` continuations, a word
//! of more than `max_word_chars` characters or with an unmatched piece is `unk`), with the
//! special tokens matched in the raw text first and `[CLS] … [SEP]` around the result,
//! truncated to `max_tokens`. Character classes and lowercase mappings come from
//! `unicode_tables.rs` (generated from one Unicode version) and White_Space from the list
//! below, never from the Rust toolchain's own tables (which follow its Unicode version):
//! the runtime and every executor must tokenize alike whichever compiler built them.
//! Where a tokenizer built on another Unicode version treats a character differently,
//! this file's answer is the canonical one.

use crate::{
    char_class::{in_table, is_white_space},
    unicode_tables::{DECOMPOSED, LOWERCASE, NONSPACING_MARK, OTHER, PUNCTUATION},
};
use alloc::{string::String, vec::Vec};
use codec::{Decode, Encode};

/// A model's tokenization settings (part of its plan step).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct WordPiece {
    /// The most ids of a sequence, `[CLS]` and `[SEP]` included.
    pub max_tokens: u32,
    pub cls: u32,
    pub sep: u32,
    pub unk: u32,
    /// The id padding a sequence to `max_tokens`.
    pub pad: u32,
    /// Ids of the tokens matched literally in the raw text (`[CLS]`, `[MASK]`, ...).
    pub specials: Vec<u32>,
    /// A longer word is `unk` whole.
    pub max_word_chars: u32,
    /// Uncased: strip accents and lowercase.
    pub lowercase: bool,
}

/// A vocabulary as the plan commits it: every token's bytes followed by `\n`, in id
/// order, indexed for lookup (an open-addressing table of FNV-1a hashes, built in one
/// pass).
pub struct Vocab<'a> {
    bytes: &'a [u8],
    /// Token `i` is `bytes[starts[i]..starts[i + 1] - 1]`.
    starts: Vec<u32>,
    table: Vec<u32>,
    /// The longest token's length in bytes.
    longest: usize,
}

const EMPTY: u32 = u32::MAX;

fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

impl<'a> Vocab<'a> {
    /// `None` unless `bytes` is non-empty, ends in `\n` and has no empty or repeated token.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        if bytes.last() != Some(&b'\n') || bytes.len() >= u32::MAX as usize {
            return None;
        }
        let mut starts = alloc::vec![0u32];
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\n' {
                starts.push(i as u32 + 1);
            }
        }
        let count = starts.len() - 1;
        let size = (2 * count).next_power_of_two();
        let longest = starts
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .max()
            .unwrap_or(1)
            - 1;
        let mut vocab = Vocab {
            bytes,
            starts,
            table: alloc::vec![EMPTY; size],
            longest,
        };
        for id in 0..count as u32 {
            let token = vocab.token(id)?;
            if token.is_empty() || vocab.id(token).is_some() {
                return None;
            }
            let mut slot = fnv(token) as usize & (size - 1);
            while vocab.table[slot] != EMPTY {
                slot = (slot + 1) & (size - 1);
            }
            vocab.table[slot] = id;
        }
        Some(vocab)
    }

    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn token(&self, id: u32) -> Option<&'a [u8]> {
        let (start, end) = (
            *self.starts.get(id as usize)?,
            *self.starts.get(id as usize + 1)?,
        );
        self.bytes.get(start as usize..end as usize - 1)
    }

    pub fn id(&self, token: &[u8]) -> Option<u32> {
        let mask = self.table.len() - 1;
        let mut slot = fnv(token) as usize & mask;
        loop {
            let id = self.table[slot];
            if id == EMPTY {
                return None;
            }
            if self.token(id) == Some(token) {
                return Some(id);
            }
            slot = (slot + 1) & mask;
        }
    }
}

/// `c`'s full lowercase mapping, pushed to `out`.
fn push_lowercase(c: char, out: &mut String) {
    match LOWERCASE.binary_search_by_key(&(c as u32), |&(k, _)| k) {
        Ok(i) => {
            for &l in LOWERCASE[i].1.iter().filter(|&&l| l != 0) {
                out.extend(char::from_u32(l));
            }
        }
        Err(_) => out.push(c),
    }
}

fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && in_table(OTHER, c)
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || in_table(PUNCTUATION, c)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B920..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// `c`'s canonical decomposition without nonspacing marks, pushed to `out`.
fn push_stripped(c: char, out: &mut String) {
    const S_BASE: u32 = 0xAC00;
    let cp = c as u32;
    if in_table(NONSPACING_MARK, c) {
        return;
    }
    if (S_BASE..S_BASE + 11_172).contains(&cp) {
        // Hangul syllables decompose arithmetically into two or three jamo.
        let s = cp - S_BASE;
        let (l, v, t) = (0x1100 + s / 588, 0x1161 + (s % 588) / 28, s % 28);
        for j in [l, v].into_iter().chain((t != 0).then_some(0x11A7 + t)) {
            out.extend(char::from_u32(j));
        }
        return;
    }
    match DECOMPOSED.binary_search_by_key(&cp, |&(k, _)| k) {
        Ok(i) => {
            for &d in DECOMPOSED[i].1.iter().filter(|&&d| d != 0) {
                out.extend(char::from_u32(d));
            }
        }
        Err(_) => out.push(c),
    }
}

/// The normalized text of a stretch without special tokens.
fn normalize(text: &str, lowercase: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut stripped = String::new();
    for c in text.chars() {
        if c == '\0' || c == '\u{fffd}' || is_control(c) {
            continue;
        }
        let c = if is_white_space(c) { ' ' } else { c };
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
            continue;
        }
        if !lowercase {
            out.push(c);
            continue;
        }
        stripped.clear();
        push_stripped(c, &mut stripped);
        for s in stripped.chars() {
            push_lowercase(s, &mut out);
        }
    }
    out
}

impl WordPiece {
    /// The ids of one word: greedy longest match, `unk` for the whole word if a piece
    /// does not match or it has more than `max_word_chars` characters.
    fn word(&self, word: &str, vocab: &Vocab, ids: &mut Vec<u32>) {
        if word.chars().count() > self.max_word_chars as usize {
            ids.push(self.unk);
            return;
        }
        let mut pieces = Vec::new();
        let mut start = 0;
        let mut candidate = Vec::with_capacity(word.len() + 2);
        while start < word.len() {
            // No longer candidate can match (the longest token bounds the work).
            let prefix = if start > 0 { 2 } else { 0 };
            let mut end = word.len().min(start + vocab.longest.saturating_sub(prefix));
            while !word.is_char_boundary(end) {
                end -= 1;
            }
            let mut found = None;
            while start < end {
                candidate.clear();
                if start > 0 {
                    candidate.extend_from_slice(b"##");
                }
                candidate.extend_from_slice(&word.as_bytes()[start..end]);
                if let Some(id) = vocab.id(&candidate) {
                    found = Some(id);
                    break;
                }
                // Back one character.
                end -= 1;
                while !word.is_char_boundary(end) {
                    end -= 1;
                }
            }
            let Some(id) = found else {
                ids.push(self.unk);
                return;
            };
            pieces.push(id);
            start = end;
        }
        ids.extend(pieces);
    }

    /// The ids of a stretch of text without special tokens.
    fn stretch(&self, text: &str, vocab: &Vocab, ids: &mut Vec<u32>) {
        let normalized = normalize(text, self.lowercase);
        for chunk in normalized.split(is_white_space) {
            let mut word_start = 0;
            for (i, c) in chunk.char_indices() {
                if is_punctuation(c) {
                    if word_start < i {
                        self.word(&chunk[word_start..i], vocab, ids);
                    }
                    self.word(&chunk[i..i + c.len_utf8()], vocab, ids);
                    word_start = i + c.len_utf8();
                }
            }
            if word_start < chunk.len() {
                self.word(&chunk[word_start..], vocab, ids);
            }
        }
    }

    /// The ids of `text`: `cls`, the text's, `sep`, truncated to `max_tokens` (the
    /// text's ids cut, `sep` kept). `None` if a special token is not in the vocabulary
    /// or `max_tokens` leaves no room for the text.
    pub fn tokenize(&self, text: &str, vocab: &Vocab) -> Option<Vec<u32>> {
        let specials: Vec<(&str, u32)> = self
            .specials
            .iter()
            .map(|&id| Some((core::str::from_utf8(vocab.token(id)?).ok()?, id)))
            .collect::<Option<_>>()?;
        let budget = (self.max_tokens as usize).checked_sub(2)?;
        let mut ids = Vec::new();
        let mut rest = text;
        let mut stretch_start = 0;
        let mut at = 0;
        while at < rest.len() {
            // The longest special token starting here, if any.
            let hit = specials
                .iter()
                .filter(|(s, _)| rest[at..].starts_with(s))
                .max_by_key(|(s, _)| s.len());
            match hit {
                Some(&(s, id)) => {
                    self.stretch(&rest[stretch_start..at], vocab, &mut ids);
                    ids.push(id);
                    rest = &rest[at + s.len()..];
                    (stretch_start, at) = (0, 0);
                }
                None => {
                    at += rest[at..].chars().next().map_or(1, char::len_utf8);
                }
            }
            if ids.len() > budget {
                break;
            }
        }
        self.stretch(&rest[stretch_start..], vocab, &mut ids);
        ids.truncate(budget);
        let mut out = Vec::with_capacity(ids.len() + 2);
        out.push(self.cls);
        out.extend(ids);
        out.push(self.sep);
        Some(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const VOCAB: &[u8] = b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n,\nworld\n!\nun\n##believ\n##able\ncafe\n\xe4\xb8\xad\n";

    fn spec(max_tokens: u32) -> WordPiece {
        WordPiece {
            max_tokens,
            cls: 2,
            sep: 3,
            unk: 1,
            pad: 0,
            specials: alloc::vec![0, 1, 2, 3],
            max_word_chars: 100,
            lowercase: true,
        }
    }

    #[test]
    fn words_punctuation_accents_cjk_and_specials() {
        let vocab = Vocab::parse(VOCAB).unwrap();
        assert_eq!(vocab.len(), 13);
        assert_eq!(vocab.id(b"##able"), Some(10));
        let t = |text: &str| spec(128).tokenize(text, &vocab).unwrap();
        assert_eq!(t("Hello, World!"), [2, 4, 5, 6, 7, 3]);
        assert_eq!(t("unbelievable"), [2, 8, 9, 10, 3]);
        // Accents stripped, case folded; an unknown word is one unk.
        assert_eq!(t("CAFÉ zebra"), [2, 11, 1, 3]);
        // A CJK ideograph is a word of its own; controls vanish.
        assert_eq!(t("hello中\u{7}world"), [2, 4, 12, 6, 3]);
        // Special tokens in the raw text are matched before normalization.
        // Lowercase "[unk]" is text: three unknown words.
        assert_eq!(t("hello[SEP]world [unk]"), [2, 4, 3, 6, 1, 1, 1, 3]);
        // Truncation keeps [CLS] and [SEP].
        assert_eq!(
            spec(4).tokenize("hello world hello", &vocab).unwrap(),
            [2, 4, 6, 3]
        );
        assert_eq!(spec(1).tokenize("hello", &vocab), None);
    }

    #[test]
    fn malformed_vocabularies_are_refused() {
        assert!(Vocab::parse(b"").is_none());
        assert!(Vocab::parse(b"a\nb").is_none());
        assert!(Vocab::parse(b"a\n\nb\n").is_none());
        assert!(Vocab::parse(b"a\nb\na\n").is_none());
        let vocab = Vocab::parse(b"a\nb\n").unwrap();
        assert_eq!((vocab.token(1), vocab.token(2)), (Some(&b"b"[..]), None));
    }
}
