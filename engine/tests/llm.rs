#![allow(clippy::unwrap_used)]
//! The llama-family engine on the shipped `models/tiny-llm` (trained by
//! `scripts/make_tiny_llm.py`): tokenizer round trip, generation equal to the
//! teacher-forced pass bit for bit, every kind of bad claim rejected, the canonical
//! payloads through `Engine::run`, and an independent numpy reference
//! (`scripts/reference/llama_numpy.py`).

use inferchain_engine::{
    llm::{GenerationMismatch, LlmModel, StopReason, Verdict},
    Engine, LoadedModel, ModelStore,
};
use inferchain_primitives::{
    io::{IoError, Payload},
    model::ModelFormat,
};
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
};

const PROMPTS: [&str; 3] = [
    "ROMEO.\nWhat light",
    "KING.\nMy lord, ",
    "To be, or not to be",
];

fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-llm")
}

fn temp_store(tag: &str) -> ModelStore {
    let dir = std::env::temp_dir().join(format!("inferchain-llm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    ModelStore::open(&dir).expect("store")
}

/// Imports `dir` (format detected) and loads it.
fn load(dir: &Path, tag: &str) -> (Engine, inferchain_primitives::ModelId, Arc<LoadedModel>) {
    let store = temp_store(tag);
    let manifest = store.import(dir, None, &mut |_| {}).expect("import");
    assert_eq!(manifest.format, ModelFormat::Llm, "detected as an LLM");
    let engine = Engine::new(store, 1 << 30);
    let model = engine.load(&manifest.id(), &mut |_| {}).expect("loads");
    (engine, manifest.id(), model)
}

fn llm(model: &LoadedModel) -> &LlmModel {
    match model {
        LoadedModel::Llm(m) => m,
        _ => panic!("not an LLM"),
    }
}

#[test]
fn tokenizer_round_trips_and_prompts_start_with_bos() {
    let (_, _, loaded) = load(&model_dir(), "tok");
    let m = llm(&loaded);
    for text in PROMPTS
        .iter()
        .chain(&["", "Ünïcödé — and “quotes”.\n\n  spaces  "])
    {
        let ids = m.tokenize(text).expect("tokenizes");
        assert_eq!(
            ids.first(),
            Some(&0),
            "the tokenizer adds <|endoftext|> first"
        );
        assert_eq!(
            &m.decode(&ids).expect("decodes"),
            text,
            "round trip of {text:?}"
        );
    }
}

#[test]
fn generation_equals_the_teacher_forced_pass_bit_for_bit() {
    let (_, _, loaded) = load(&model_dir(), "tf");
    let m = llm(&loaded);
    for prompt in PROMPTS {
        let ids = m.tokenize(prompt).expect("tokenizes");
        let mut streamed = Vec::new();
        let g = m
            .generate(&ids, 40, &mut |t| streamed.push(t))
            .expect("generates");
        assert_eq!(streamed, g.tokens, "every token streamed as chosen");
        assert!(!g.tokens.is_empty());
        match m.verify(&ids, &g.tokens, 40).expect("verifies") {
            Verdict::Valid { logits_hash } => assert_eq!(
                logits_hash, g.logits_hash,
                "the one-pass logits are the step-by-step logits, bit for bit"
            ),
            Verdict::Invalid(e) => panic!("honest generation rejected: {e}"),
        }
        let text = m.decode(&g.tokens).expect("decodes");
        assert_eq!(m.verify_text(&g.tokens, &text).unwrap(), None);
        assert_eq!(
            m.verify_text(&g.tokens, &format!("{text}!")).unwrap(),
            Some(GenerationMismatch::TextMismatch)
        );
        eprintln!("{prompt:?} -> {text:?}");
    }
}

#[test]
fn tampered_truncated_and_overlong_outputs_are_rejected() {
    let (_, _, loaded) = load(&model_dir(), "bad");
    let m = llm(&loaded);
    let ids = m.tokenize(PROMPTS[0]).unwrap();
    let g = m.generate(&ids, 24, &mut |_| {}).unwrap();
    assert_eq!(
        g.stop,
        StopReason::MaxNewTokens,
        "no stop token in 24 tokens"
    );
    let n = g.tokens.len();

    // One token changed in the middle: caught at exactly that position.
    let mut tampered = g.tokens.clone();
    tampered[10] = (tampered[10] + 1) % m.config().vocab_size as u32;
    assert_eq!(
        m.verify(&ids, &tampered, 24).unwrap(),
        Verdict::Invalid(GenerationMismatch::WrongToken {
            position: 10,
            claimed: tampered[10],
            expected: g.tokens[10],
        })
    );
    // An id outside the vocabulary is a wrong token like any other, not an error.
    let mut wild = g.tokens.clone();
    wild[7] = u32::MAX;
    assert_eq!(
        m.verify(&ids, &wild, 24).unwrap(),
        Verdict::Invalid(GenerationMismatch::WrongToken {
            position: 7,
            claimed: u32::MAX,
            expected: g.tokens[7],
        })
    );
    // The last token changed (its row is the pass's last).
    let mut last = g.tokens.clone();
    last[n - 1] = (last[n - 1] + 7) % m.config().vocab_size as u32;
    assert!(matches!(
        m.verify(&ids, &last, 24).unwrap(),
        Verdict::Invalid(GenerationMismatch::WrongToken { position, .. }) if position == n - 1
    ));
    // Truncated: a correct prefix that stops early without a stop token.
    assert_eq!(
        m.verify(&ids, &g.tokens[..n - 3], 24).unwrap(),
        Verdict::Invalid(GenerationMismatch::Truncated {
            len: n - 3,
            max: 24
        })
    );
    assert_eq!(
        m.verify(&ids, &[], 24).unwrap(),
        Verdict::Invalid(GenerationMismatch::Truncated { len: 0, max: 24 })
    );
    // Past max_new_tokens: the honest 24 tokens claimed under a cap of 20.
    assert_eq!(
        m.verify(&ids, &g.tokens, 20).unwrap(),
        Verdict::Invalid(GenerationMismatch::TooLong { len: n, max: 20 })
    );
    // A correct prefix under the cap it was generated to is valid.
    let short = m.generate(&ids, 5, &mut |_| {}).unwrap();
    assert_eq!(short.tokens, g.tokens[..5]);
    assert!(matches!(
        m.verify(&ids, &short.tokens, 5).unwrap(),
        Verdict::Valid { .. }
    ));
}

/// The same weights with the token generated at output position 3 declared a stop token
/// (`generation_config.json`): generation must end there.
#[test]
fn the_stop_rule_is_enforced_both_ways() {
    let (_, _, loaded) = load(&model_dir(), "stop-base");
    let base = llm(&loaded);
    let ids = base.tokenize(PROMPTS[1]).unwrap();
    let full = base.generate(&ids, 16, &mut |_| {}).unwrap();
    let stop = full.tokens[3];
    let first = full.tokens.iter().position(|&t| t == stop).unwrap();

    let dir = std::env::temp_dir().join(format!("inferchain-llm-stopdir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(model_dir().join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("generation_config.json"),
        format!(r#"{{"bos_token_id": 0, "eos_token_id": [0, {stop}]}}"#),
    )
    .unwrap();
    let (_, _, loaded) = load(&dir, "stop");
    let m = llm(&loaded);
    let g = m.generate(&ids, 16, &mut |_| {}).unwrap();
    assert_eq!(g.stop, StopReason::StopToken);
    assert_eq!(g.tokens, full.tokens[..=first], "ends with the stop token");
    assert!(matches!(
        m.verify(&ids, &g.tokens, 16).unwrap(),
        Verdict::Valid { .. }
    ));
    // A claim that runs past the stop token (a missed stop).
    assert_eq!(
        m.verify(&ids, &full.tokens, 16).unwrap(),
        Verdict::Invalid(GenerationMismatch::PastStopToken {
            position: first,
            token: stop
        })
    );
    // A claim that drops the stop token and ends.
    assert!(matches!(
        m.verify(&ids, &g.tokens[..first], 16).unwrap(),
        Verdict::Invalid(GenerationMismatch::Truncated { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn canonical_payloads_run_through_the_engine_and_bad_requests_are_named() {
    let (engine, id, loaded) = load(&model_dir(), "engine");
    let (input_spec, output_spec) = loaded.registration_specs().unwrap();
    let prompt = Payload::Prompt {
        text: PROMPTS[2].as_bytes().to_vec(),
        max_new_tokens: 12,
    };
    let out = engine.run(&id, &prompt, Some(&input_spec)).expect("runs");
    out.output
        .validate(&output_spec)
        .expect("fits the registered output spec");
    let Payload::Generation { tokens, text } = &out.output else {
        panic!("not a generation")
    };
    let m = llm(&loaded);
    assert_eq!(text, m.decode(tokens).unwrap().as_bytes());
    let ids = m.tokenize(PROMPTS[2]).unwrap();
    assert!(matches!(
        m.verify(&ids, tokens, 12).unwrap(),
        Verdict::Valid { .. }
    ));

    let refused = |input: Payload| match engine.run(&id, &input, Some(&input_spec)) {
        Err(inferchain_engine::EngineError::InvalidInput(e)) => e,
        other => panic!("expected an input error, got {other:?}"),
    };
    assert!(matches!(
        refused(Payload::Prompt {
            text: b"x".to_vec(),
            max_new_tokens: 0
        }),
        IoError::MaxNewTokens { found: 0, .. }
    ));
    assert!(matches!(
        refused(Payload::Prompt {
            text: b"x".to_vec(),
            max_new_tokens: 65
        }),
        IoError::MaxNewTokens { max: 64, found: 65 }
    ));
    assert!(matches!(
        refused(Payload::Prompt {
            text: vec![0xff, 0xfe],
            max_new_tokens: 1
        }),
        IoError::InvalidUtf8
    ));
    assert!(matches!(
        refused(Payload::Prompt {
            text: vec![b'a'; 4096],
            max_new_tokens: 1
        }),
        IoError::TextTooLong { .. }
    ));
    assert!(matches!(
        refused(Payload::Text(b"hello".to_vec())),
        IoError::KindMismatch
    ));
}

#[test]
fn logits_and_greedy_tokens_match_an_independent_numpy_reference() {
    let (_, _, loaded) = load(&model_dir(), "ref");
    let m = llm(&loaded);
    let cache = std::env::var_os("INFERCHAIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/inferchain"));
    let python = cache.join("venv/bin/python");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/reference/llama_numpy.py");
    for prompt in PROMPTS {
        let ids = m.tokenize(prompt).unwrap();
        let new_tokens = 16;
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(model_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", python.display()));
        let request = serde_json::json!({"ids": ids, "new_tokens": new_tokens});
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "reference failed");
        let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ref_logits: Vec<f64> = reference["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect();
        let logits = m.logits(&ids, 0).unwrap();
        assert_eq!(logits.len(), ref_logits.len());
        let worst = logits
            .iter()
            .zip(&ref_logits)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0f64, f64::max);
        assert!(worst <= 1e-4, "{prompt:?}: logits differ by {worst:e}");
        let greedy: Vec<u32> = reference["greedy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let g = m.generate(&ids, new_tokens, &mut |_| {}).unwrap();
        assert_eq!(g.tokens, greedy, "{prompt:?}: greedy tokens");
        eprintln!("{prompt:?}: logits within {worst:.2e} of float64");
    }
}

/// splitmix64, for the generated strings.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn the_canonical_tokenizer_agrees_with_hugging_face_tokenizers() {
    let (_, _, loaded) = load(&model_dir(), "canon");
    let m = llm(&loaded);
    assert!(
        m.has_canonical_tokenizer(),
        "tiny-llm's tokenizer is canonical"
    );
    let pool: Vec<&str> = vec![
        "a",
        "Z",
        "the",
        " ",
        "  ",
        "\n",
        "\n\n",
        "\t",
        "\r\n",
        "'s",
        "'t",
        "'re",
        "'ve",
        "'m",
        "'ll",
        "'d",
        "'",
        "''",
        "\"",
        "7",
        "42",
        "3.14",
        "!",
        "?!",
        ",",
        ".",
        "--",
        "...",
        "é",
        "Ü",
        "ß",
        "ﬁ",
        "日本",
        "漢字",
        "٣٤",
        "²",
        "Ⅻ",
        "😀",
        "👍🏽",
        "\u{0301}",
        "\u{00a0}",
        "\u{2028}",
        "\u{3000}",
        "\u{200b}",
        "<|endoftext|>",
        "<|endo",
        "ROMEO.",
        "KING HENRY",
        "[Enter",
        "thou",
        "art",
        " ",
        " ",
        "\u{1f600}x",
        "x\u{0301}",
        "_",
        "@",
        "#",
        "`",
    ];
    let mut state = 20261126u64;
    let mut texts: Vec<String> = PROMPTS.iter().map(|s| s.to_string()).collect();
    for _ in 0..3000 {
        let len = (next(&mut state) % 12) as usize;
        texts.push(
            (0..len)
                .map(|_| pool[(next(&mut state) % pool.len() as u64) as usize])
                .collect(),
        );
    }
    for text in &texts {
        let canonical = m.tokenize(text).unwrap();
        assert_eq!(
            canonical,
            m.tokenize_with_tokenizers(text).unwrap(),
            "tokenizing {text:?}"
        );
        let ids: Vec<u32> = canonical.iter().skip(1).copied().collect();
        assert_eq!(
            m.decode(&ids).unwrap(),
            m.decode_with_tokenizers(&ids).unwrap(),
            "decoding {text:?}"
        );
    }
    // Decoding arbitrary id sequences (cut UTF-8 characters included) agrees too.
    for _ in 0..2000 {
        let len = (next(&mut state) % 8) as usize;
        let ids: Vec<u32> = (0..len)
            .map(|_| (next(&mut state) % m.config().vocab_size as u64) as u32)
            .collect();
        assert_eq!(
            m.decode(&ids).unwrap(),
            m.decode_with_tokenizers(&ids).unwrap(),
            "decoding {ids:?}"
        );
    }
}
