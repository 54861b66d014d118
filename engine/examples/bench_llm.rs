//! Language-model figures for `scripts/bench-llm.sh`, all in one process on the same
//! weights: greedy generation tokens/s of the engine (fixed-order kernels) and of
//! candle-transformers' own llama, and the verification speed-up (time to generate N
//! tokens / time to verify them with one teacher-forced pass).
//!
//! Usage: bench_llm MODEL_DIR [--tokens N] [--runs R]   (threads: RAYON_NUM_THREADS)

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama::{Cache, Llama, LlamaConfig};
use inferchain_engine::{
    llm::{LlmModel, Verdict},
    ModelStore,
};
use std::{path::PathBuf, time::Instant};

const PROMPT: &str = "KING HENRY.\nNow, lords, ";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .context("usage: bench_llm MODEL_DIR [--tokens N] [--runs R]")?,
    );
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
        "threads {threads}: engine {:.1} tokens/s ({:.2} ms/token), candle-transformers {:.1} tokens/s ({:.2} ms/token): engine/candle speed {:.2}x; \
         verify {n} tokens in {:.2} ms: generation/verification {:.1}x; tokens agree with candle for {agree}/{n}",
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
