//! A language model's canonical tokenizer: the referee's byte-level BPE
//! (`inferchain_referee::bpe`), built from the model's `tokenizer.json` where that file
//! describes exactly what it computes (GPT-2 style byte-level BPE: no normalizer, the
//! GPT-2 pattern, no dropout or byte fallback, special tokens matched in raw text, a
//! template that only puts special tokens first, the byte-level decoder). Any other
//! tokenizer is run by Hugging Face `tokenizers` instead, and its prompts' ids are not
//! something a block could recompute.

use inferchain_referee::bpe::{BpeTables, ByteLevelBpe};
use serde_json::Value;
use std::collections::HashMap;

/// GPT-2's byte → printable character map (`bytes_to_unicode`), as the byte-level
/// pre-tokenizer spells bytes in the vocabulary.
fn byte_chars() -> [char; 256] {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars = [' '; 256];
    for &b in &printable {
        chars[b as usize] = char::from_u32(b).unwrap_or(' ');
    }
    let mut next = 256;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            chars[b as usize] = char::from_u32(next).unwrap_or(' ');
            next += 1;
            printable.push(b);
        }
    }
    chars
}

fn require(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("not canonical byte-level BPE: {what}"))
    }
}

fn null_or(v: &Value, ok: impl Fn(&Value) -> bool) -> bool {
    v.is_null() || ok(v)
}

/// The canonical tokenizer of `tokenizer.json`, or why it is not one.
pub fn canonical_bpe(json: &[u8]) -> Result<ByteLevelBpe, String> {
    let t: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let model = &t["model"];
    require(model["type"] == "BPE", "model type")?;
    require(model["dropout"].is_null(), "dropout")?;
    require(
        null_or(&model["continuing_subword_prefix"], |v| v == ""),
        "continuing_subword_prefix",
    )?;
    require(
        null_or(&model["end_of_word_suffix"], |v| v == ""),
        "end_of_word_suffix",
    )?;
    require(model["byte_fallback"] != true, "byte_fallback")?;
    require(model["ignore_merges"] != true, "ignore_merges")?;
    require(t["normalizer"].is_null(), "a normalizer")?;
    let pre = &t["pre_tokenizer"];
    require(
        pre["type"] == "ByteLevel" && pre["add_prefix_space"] == false && pre["use_regex"] != false,
        "pre-tokenizer other than ByteLevel (GPT-2 pattern, no prefix space)",
    )?;
    require(t["decoder"]["type"] == "ByteLevel", "decoder")?;

    let vocab: HashMap<String, u32> = model["vocab"]
        .as_object()
        .ok_or("no vocabulary")?
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.as_u64().ok_or("vocabulary id")? as u32)))
        .collect::<Result<_, String>>()?;
    let chars = byte_chars();
    let char_byte: HashMap<char, u8> = chars
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect();

    let mut specials = Vec::new();
    let mut size = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
    for added in t["added_tokens"].as_array().into_iter().flatten() {
        require(added["special"] == true, "a non-special added token")?;
        require(
            added["lstrip"] != true && added["rstrip"] != true && added["single_word"] != true,
            "an added token that strips or matches whole words",
        )?;
        let content = added["content"].as_str().ok_or("added token content")?;
        let id = added["id"].as_u64().ok_or("added token id")? as u32;
        size = size.max(id as usize + 1);
        specials.push((content.as_bytes().to_vec(), id));
    }
    require(size <= 1 << 24, "vocabulary size")?;
    let mut tokens = vec![Vec::new(); size];
    for (piece, &id) in &vocab {
        let bytes: Option<Vec<u8>> = piece.chars().map(|c| char_byte.get(&c).copied()).collect();
        tokens[id as usize] = match bytes {
            Some(b) => b,
            None => piece.as_bytes().to_vec(),
        };
    }
    for (content, id) in &specials {
        tokens[*id as usize] = content.clone();
    }
    let byte_ids = chars
        .iter()
        .map(|c| {
            vocab
                .get(&c.to_string())
                .copied()
                .ok_or("a byte without a token")
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let mut merges = Vec::new();
    for m in model["merges"].as_array().ok_or("no merges")? {
        let (l, r) = match m {
            Value::String(s) => s.split_once(' ').ok_or("merge")?,
            Value::Array(a) if a.len() == 2 => {
                (a[0].as_str().ok_or("merge")?, a[1].as_str().ok_or("merge")?)
            }
            _ => return Err("merge".into()),
        };
        let id = |s: &str| vocab.get(s).copied().ok_or("a merge of unknown tokens");
        merges.push((id(l)?, id(r)?, id(&format!("{l}{r}"))?));
    }
    let prefix = match &t["post_processor"] {
        Value::Null => Vec::new(),
        p if p["type"] == "ByteLevel" => Vec::new(),
        p if p["type"] == "TemplateProcessing" => {
            let single = p["single"].as_array().ok_or("template")?;
            let (last, first) = single.split_last().ok_or("empty template")?;
            require(
                last["Sequence"]["id"] == "A",
                "a template that does not end with the text",
            )?;
            first
                .iter()
                .map(|piece| {
                    let name = piece["SpecialToken"]["id"]
                        .as_str()
                        .ok_or("template piece")?;
                    let ids = p["special_tokens"][name]["ids"]
                        .as_array()
                        .ok_or("template ids")?;
                    ids.iter()
                        .map(|v| {
                            v.as_u64()
                                .map(|v| v as u32)
                                .ok_or_else(|| "template id".to_string())
                        })
                        .collect::<Result<Vec<u32>, String>>()
                })
                .collect::<Result<Vec<Vec<u32>>, String>>()?
                .concat()
        }
        _ => return Err("not canonical byte-level BPE: post-processor".into()),
    };
    ByteLevelBpe::new(BpeTables {
        byte_ids,
        merges,
        tokens,
        specials,
        prefix,
    })
    .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_map_is_gpt2s() {
        let c = byte_chars();
        assert_eq!(c[b'A' as usize], 'A');
        assert_eq!(c[b' ' as usize], 'Ġ');
        assert_eq!(c[b'\n' as usize], 'Ċ');
        let mut sorted = c.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 256, "a bijection");
    }
}
