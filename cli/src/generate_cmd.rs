//! `inferchain model run <llm> --prompt ...`: local greedy generation, streamed as it is
//! chosen, with the figures a user compares executors by (tokens/s) and the hashes the
//! chain would hold.

use crate::output::hex0x;
use anyhow::Result;
use codec::Encode;
use inferchain_engine::llm::{LlmModel, StopReason};
use inferchain_primitives::{io::Payload, ModelId};
use serde_json::json;
use std::{io::Write, time::Instant};

pub fn run_llm(id: &ModelId, llm: &LlmModel, input: &Payload, json: bool) -> Result<()> {
    let Payload::Prompt {
        text,
        max_new_tokens,
    } = input
    else {
        anyhow::bail!("not a prompt");
    };
    let prompt = std::str::from_utf8(text)?;
    let ids = llm.tokenize(prompt)?;
    let start = Instant::now();
    let mut first_token = None;
    let mut shown = String::new();
    let mut so_far = Vec::new();
    let mut stdout = std::io::stdout();
    if !json {
        print!("{prompt}");
    }
    let generation = llm.generate(&ids, *max_new_tokens as usize, &mut |token| {
        first_token.get_or_insert_with(|| start.elapsed());
        so_far.push(token);
        if json {
            return;
        }
        // Print what the text gained (a token may end inside a UTF-8 character).
        if let Ok(text) = llm.decode(&so_far) {
            if let Some(new) = text.strip_prefix(shown.as_str()) {
                if !new.ends_with('\u{fffd}') {
                    print!("{new}");
                    let _ = stdout.flush();
                    shown = text;
                }
            }
        }
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    let text = llm.decode(&generation.tokens)?;
    let output = Payload::Generation {
        tokens: generation.tokens.clone(),
        text: text.clone().into_bytes(),
    };
    let input_hash = inferchain_primitives::blake2_256(&input.encode());
    let output_hash = inferchain_primitives::blake2_256(&output.encode());
    let n = generation.tokens.len();
    let decode_s = first_token.map_or(0.0, |f| elapsed - f.as_secs_f64());
    let per_s = if n > 1 && decode_s > 0.0 {
        (n - 1) as f64 / decode_s
    } else {
        0.0
    };
    let stop = match generation.stop {
        StopReason::StopToken => "stop token",
        StopReason::MaxNewTokens => "max_new_tokens",
    };
    if json {
        println!(
            "{}",
            json!({
                "model": hex0x(id.as_bytes()),
                "input_hash": hex0x(&input_hash),
                "output_hash": hex0x(&output_hash),
                "prompt_tokens": ids.len(),
                "tokens": generation.tokens,
                "text": text,
                "stop": stop,
                "seconds": elapsed,
                "tokens_per_second": per_s,
                "logits_hash": hex0x(&generation.logits_hash),
            })
        );
    } else {
        if !shown.ends_with('\n') {
            println!();
        }
        eprintln!(
            "{} prompt tokens, {n} generated ({stop}) in {elapsed:.3} s: first token {:.1} ms, {per_s:.1} tokens/s",
            ids.len(),
            first_token.map_or(0.0, |f| f.as_secs_f64() * 1e3),
        );
        println!("model:       {}", hex0x(id.as_bytes()));
        println!("input hash:  {}", hex0x(&input_hash));
        println!("output hash: {}", hex0x(&output_hash));
    }
    Ok(())
}
