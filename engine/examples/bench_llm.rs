//! Language-model figures for `scripts/bench-llm.sh`, all in one process on the same
//! weights: greedy generation tokens/s of the engine (fixed-order kernels) and of
//! candle-transformers' own llama, and the verification speed-up (time to generate N
//! tokens / time to verify them with one teacher-forced pass).
//!
//! Usage: bench_llm MODEL_DIR [--tokens N] [--runs R]   (threads: RAYON_NUM_THREADS)
//!        bench_llm --write-smollm-135m-shape DIR
//!
//! The second form writes a model folder with SmolLM-135M's architecture (576 hidden, 30
//! layers, 9 query / 3 key-value heads, 1,536 MLP, 49,152 vocabulary, tied: 134.5 M
//! parameters, 538 MB of f32) and seeded uniform weights, with tiny-llm's tokenizer (its
//! ids are a subset of the vocabulary). Real checkpoints cannot be fetched on these
//! machines; this one has a real model's shape, which is what the timing depends on:
//! unlike tiny-llm (5.8 MB, held in cache) its weights are read from memory once per
//! generated token, as every deployed LLM's are.

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama::{Cache, Llama, LlamaConfig};
use inferchain_engine::{
    llm::{LlmModel, Verdict},
    ModelStore,
};
use std::{collections::HashMap, path::Path, path::PathBuf, time::Instant};

const PROMPT: &str = "KING HENRY.\nNow, lords, ";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Uniform values in `[-scale, scale]` from a splitmix64 stream.
fn seeded(len: usize, scale: f32, seed: &mut u64) -> Vec<f32> {
    (0..len)
        .map(|_| {
            *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn write_smollm_135m_shape(dir: &Path) -> Result<()> {
    let (hidden, inner, layers, heads, kv_heads, vocab) = (576, 1536, 30, 9, 3, 49152);
    let head_dim = hidden / heads;
    std::fs::create_dir_all(dir)?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-llm");
    std::fs::copy(root.join("tokenizer.json"), dir.join("tokenizer.json"))?;
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": inner,
        "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "head_dim": head_dim,
        "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "hidden_act": "silu", "tie_word_embeddings": true,
        "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float32",
    });
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    // std 0.02 like the usual initialisation: uniform in ±0.02·√3.
    let scale = 0.02 * 3f32.sqrt();
    let mut seed = 135;
    let mut tensors = HashMap::new();
    let mut put = |name: String, shape: &[usize], values: Vec<f32>| -> Result<()> {
        tensors.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
        Ok(())
    };
    let kv = kv_heads * head_dim;
    put(
        "model.embed_tokens.weight".into(),
        &[vocab, hidden],
        seeded(vocab * hidden, scale, &mut seed),
    )?;
    put("model.norm.weight".into(), &[hidden], vec![1.0; hidden])?;
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        for (name, out, inp) in [
            ("self_attn.q_proj", hidden, hidden),
            ("self_attn.k_proj", kv, hidden),
            ("self_attn.v_proj", kv, hidden),
            ("self_attn.o_proj", hidden, hidden),
            ("mlp.gate_proj", inner, hidden),
            ("mlp.up_proj", inner, hidden),
            ("mlp.down_proj", hidden, inner),
        ] {
            let values = seeded(out * inp, scale, &mut seed);
            put(format!("{p}.{name}.weight"), &[out, inp], values)?;
        }
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            put(format!("{p}.{norm}.weight"), &[hidden], vec![1.0; hidden])?;
        }
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    println!("wrote {}", dir.display());
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let first = args
        .next()
        .context("usage: bench_llm MODEL_DIR [--tokens N] [--runs R]")?;
    if first == "--write-smollm-135m-shape" {
        return write_smollm_135m_shape(Path::new(&args.next().context("output folder")?));
    }
    let dir = PathBuf::from(first);
    let (mut tokens, mut runs) = (64usize, 5usize);
    while let Some(flag) = args.next() {
        let v: usize = args.next().context("flag value")?.parse()?;
        match flag.as_str() {
            "--tokens" => tokens = v,
            "--runs" => runs = v,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    let store_dir =
        std::env::temp_dir().join(format!("inferchain-bench-llm-{}", std::process::id()));
    let store = ModelStore::open(&store_dir)?;
    let manifest = store.import(&dir, None, &mut |_| {})?;
    let mut files = store.read_verified(&manifest.id(), &mut |_| {})?;
    let model = LlmModel::load(&mut files)?;
    let _ = std::fs::remove_dir_all(&store_dir);
    let prompt = model.tokenize(PROMPT)?;
    // No stop tokens may end a timed run early: time exactly `tokens` steps.
    let threads = rayon::current_num_threads();

    // The engine: generation and verification.
    let mut gen_times = Vec::new();
    let mut ver_times = Vec::new();
    let mut generated = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let g = model.generate(&prompt, tokens, &mut |_| {})?;
        gen_times.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let verdict = model.verify(&prompt, &g.tokens, tokens)?;
        ver_times.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(
            verdict
                == Verdict::Valid {
                    logits_hash: g.logits_hash
                },
            "verification disagrees with generation"
        );
        generated = g.tokens;
    }
    let n = generated.len();

    // candle-transformers' llama on the same safetensors.
    let config: LlamaConfig = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)?;
    let config = config.into_config(false);
    let weights = std::fs::read(dir.join("model.safetensors"))?;
    let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)?;
    let llama = Llama::load(vb, &config)?;
    let mut candle_times = Vec::new();
    let mut candle_tokens = Vec::new();
    for _ in 0..runs {
        let mut cache = Cache::new(true, DType::F32, &config, &Device::Cpu)?;
        let t = Instant::now();
        let mut ids = prompt.clone();
        let mut out = Vec::with_capacity(n);
        let mut pos = 0;
        let mut input = Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        for _ in 0..n {
            let logits = llama.forward(&input, pos, &mut cache)?.squeeze(0)?;
            let next = logits.argmax(0)?.to_scalar::<u32>()?;
            pos += input.dim(1)?;
            ids.push(next);
            out.push(next);
            input = Tensor::new(&[next], &Device::Cpu)?.unsqueeze(0)?;
        }
        candle_times.push(t.elapsed().as_secs_f64());
        candle_tokens = out;
    }
    let agree = generated
        .iter()
        .zip(&candle_tokens)
        .take_while(|(a, b)| a == b)
        .count();
    let (g, v, c) = (median(gen_times), median(ver_times), median(candle_times));
    println!(
        "{} ({:.1} MB of weights), threads {threads}: engine {:.1} tokens/s ({:.2} ms/token), candle-transformers {:.1} tokens/s ({:.2} ms/token): engine/candle speed {:.2}x; \
         verify {n} tokens in {:.2} ms: generation/verification {:.1}x; tokens agree with candle for {agree}/{n}",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        model.weight_bytes() as f64 / 1e6,
        n as f64 / g,
        g * 1e3 / n as f64,
        n as f64 / c,
        c * 1e3 / n as f64,
        c / g,
        v * 1e3,
        g / v,
    );
    Ok(())
}
