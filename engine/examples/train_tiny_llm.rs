//! Trains the weights of `models/tiny-llm` (run by `scripts/make_tiny_llm.py`, which makes
//! the corpus, the tokenizer and `config.json` first).
//!
//! A llama-architecture decoder written with candle's autograd ops (RMSNorm, RoPE on
//! halves, grouped-query causal attention, SwiGLU, tied embeddings), trained with AdamW on
//! random windows of the token stream; the initial weights and the windows come from a
//! fixed seed. Writes Hugging Face tensor names, so the engine, candle-transformers' llama
//! and the numpy reference all load the result. Training uses candle's own kernels, not
//! the engine's fixed-order ones: its bits are not reproducible across CPUs (the files are
//! committed), only the trained model's inference is.
//!
//! Usage: train_tiny_llm --config FILE --tokens FILE --steps N --out FILE [--seed S]

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{
    optim::{AdamW, Optimizer, ParamsAdamW},
    Module,
};
use std::{collections::HashMap, time::Instant};

#[derive(serde::Deserialize)]
struct Config {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: usize,
    head_dim: usize,
    max_position_embeddings: usize,
    rms_norm_eps: f64,
    rope_theta: f64,
}

/// splitmix64: the seed's stream of initial weights and window offsets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal value (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The trainable tensors, by their Hugging Face names.
struct Params {
    vars: Vec<(String, Var)>,
}

impl Params {
    fn init(c: &Config, seed: u64) -> Result<Self> {
        let mut rng = Rng(seed);
        let mut vars = Vec::new();
        let mut add = |name: String, shape: (usize, usize), std: f64| -> Result<()> {
            let values: Vec<f32> = (0..shape.0 * shape.1)
                .map(|_| (rng.normal() * std) as f32)
                .collect();
            let t = Tensor::from_vec(values, shape, &Device::Cpu)?;
            vars.push((name, Var::from_tensor(&t)?));
            Ok(())
        };
        let (h, kv, q) = (
            c.hidden_size,
            c.num_key_value_heads * c.head_dim,
            c.num_attention_heads * c.head_dim,
        );
        let residual_std = 0.02 / (2.0 * c.num_hidden_layers as f64).sqrt();
        add("model.embed_tokens.weight".into(), (c.vocab_size, h), 0.02)?;
        for l in 0..c.num_hidden_layers {
            let p = format!("model.layers.{l}");
            add(format!("{p}.self_attn.q_proj.weight"), (q, h), 0.02)?;
            add(format!("{p}.self_attn.k_proj.weight"), (kv, h), 0.02)?;
            add(format!("{p}.self_attn.v_proj.weight"), (kv, h), 0.02)?;
            add(format!("{p}.self_attn.o_proj.weight"), (h, q), residual_std)?;
            add(
                format!("{p}.mlp.gate_proj.weight"),
                (c.intermediate_size, h),
                0.02,
            )?;
            add(
                format!("{p}.mlp.up_proj.weight"),
                (c.intermediate_size, h),
                0.02,
            )?;
            add(
                format!("{p}.mlp.down_proj.weight"),
                (h, c.intermediate_size),
                residual_std,
            )?;
        }
        for l in 0..c.num_hidden_layers {
            for norm in ["input_layernorm", "post_attention_layernorm"] {
                let ones = Tensor::ones(h, DType::F32, &Device::Cpu)?;
                vars.push((
                    format!("model.layers.{l}.{norm}.weight"),
                    Var::from_tensor(&ones)?,
                ));
            }
        }
        let ones = Tensor::ones(h, DType::F32, &Device::Cpu)?;
        vars.push(("model.norm.weight".into(), Var::from_tensor(&ones)?));
        Ok(Params { vars })
    }

    fn get(&self, name: &str) -> Result<&Tensor> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_tensor())
            .with_context(|| format!("no parameter {name}"))
    }

    fn count(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }
}

fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let scale = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    Ok(x.broadcast_mul(&scale)?.broadcast_mul(w)?)
}

/// RoPE on halves (`rotate_half`): `x` is `[b, heads, t, d]`, `cos`/`sin` are `[t, d/2]`.
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let (x1, x2) = (x.narrow(3, 0, d / 2)?, x.narrow(3, d / 2, d / 2)?);
    let a = (x1.broadcast_mul(cos)? - x2.broadcast_mul(sin)?)?;
    let b = (x2.broadcast_mul(cos)? + x1.broadcast_mul(sin)?)?;
    Ok(Tensor::cat(&[a, b], 3)?)
}

fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_matmul(&w.t()?)?)
}

/// Logits `[b, t, vocab]` for ids `[b, t]`.
fn forward(p: &Params, c: &Config, ids: &Tensor) -> Result<Tensor> {
    let (b, t) = ids.dims2()?;
    let (heads, kvh, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
    let embed = p.get("model.embed_tokens.weight")?;
    let mut x = candle_nn::Embedding::new(embed.clone(), c.hidden_size).forward(ids)?;
    let inv: Vec<f32> = (0..hd / 2)
        .map(|i| 1.0 / c.rope_theta.powf(2.0 * i as f64 / hd as f64) as f32)
        .collect();
    let angles: Vec<f32> = (0..t)
        .flat_map(|pos| inv.iter().map(move |f| pos as f32 * f))
        .collect();
    let angles = Tensor::from_vec(angles, (t, hd / 2), &Device::Cpu)?;
    let (cos, sin) = (angles.cos()?, angles.sin()?);
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    let mask = Tensor::from_vec(mask, (t, t), &Device::Cpu)?;
    for l in 0..c.num_hidden_layers {
        let w = |n: &str| p.get(&format!("model.layers.{l}.{n}"));
        let h = rms_norm(&x, w("input_layernorm.weight")?, c.rms_norm_eps)?;
        let q = linear(&h, w("self_attn.q_proj.weight")?)?
            .reshape((b, t, heads, hd))?
            .transpose(1, 2)?;
        let k = linear(&h, w("self_attn.k_proj.weight")?)?
            .reshape((b, t, kvh, hd))?
            .transpose(1, 2)?;
        let v = linear(&h, w("self_attn.v_proj.weight")?)?
            .reshape((b, t, kvh, hd))?
            .transpose(1, 2)?;
        let (q, k) = (rope(&q, &cos, &sin)?, rope(&k, &cos, &sin)?);
        let rep = heads / kvh;
        let k = candle_transformers::utils::repeat_kv(k.contiguous()?, rep)?;
        let v = candle_transformers::utils::repeat_kv(v.contiguous()?, rep)?;
        let scores = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? / (hd as f64).sqrt())?
            .broadcast_add(&mask)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let ctx = probs
            .matmul(&v.contiguous()?)?
            .transpose(1, 2)?
            .reshape((b, t, heads * hd))?;
        x = (x + linear(&ctx, w("self_attn.o_proj.weight")?)?)?;
        let h = rms_norm(&x, w("post_attention_layernorm.weight")?, c.rms_norm_eps)?;
        let gate = linear(&h, w("mlp.gate_proj.weight")?)?.silu()?;
        let up = linear(&h, w("mlp.up_proj.weight")?)?;
        x = (x + linear(&(gate * up)?, w("mlp.down_proj.weight")?)?)?;
    }
    let x = rms_norm(&x, p.get("model.norm.weight")?, c.rms_norm_eps)?;
    linear(&x, embed)
}

struct Args {
    config: String,
    tokens: String,
    out: String,
    steps: usize,
    seed: u64,
    batch: usize,
    seq: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        config: String::new(),
        tokens: String::new(),
        out: String::new(),
        steps: 2500,
        seed: 20261126,
        batch: 16,
        seq: 128,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--config" => a.config = value,
            "--tokens" => a.tokens = value,
            "--out" => a.out = value,
            "--steps" => a.steps = value.parse()?,
            "--seed" => a.seed = value.parse()?,
            "--batch" => a.batch = value.parse()?,
            "--seq" => a.seq = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if a.config.is_empty() || a.tokens.is_empty() || a.out.is_empty() {
        bail!(
            "usage: train_tiny_llm --config FILE --tokens FILE --out FILE [--steps N] [--seed S]"
        );
    }
    Ok(a)
}

fn main() -> Result<()> {
    let a = args()?;
    let c: Config = serde_json::from_slice(&std::fs::read(&a.config)?)?;
    if a.seq > c.max_position_embeddings {
        bail!("--seq {} exceeds max_position_embeddings", a.seq);
    }
    let bytes = std::fs::read(&a.tokens)?;
    let tokens: Vec<u32> = bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32)
        .collect();
    if tokens.len() <= a.seq + 1 {
        bail!("corpus too short");
    }
    let params = Params::init(&c, a.seed)?;
    println!(
        "[train] {} parameters, {} corpus tokens, {} steps of {}x{}",
        params.count(),
        tokens.len(),
        a.steps,
        a.batch,
        a.seq
    );
    let peak_lr = 3e-3;
    let mut opt = AdamW::new(
        params.vars.iter().map(|(_, v)| v.clone()).collect(),
        ParamsAdamW {
            lr: peak_lr,
            weight_decay: 0.01,
            ..Default::default()
        },
    )?;
    let mut rng = Rng(a.seed ^ 0x5eed);
    let start = Instant::now();
    let mut running = 0f64;
    for step in 0..a.steps {
        let warmup = 100.min(a.steps / 10).max(1);
        let lr = if step < warmup {
            peak_lr * (step + 1) as f64 / warmup as f64
        } else {
            let p = (step - warmup) as f64 / (a.steps - warmup).max(1) as f64;
            peak_lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
        };
        opt.set_learning_rate(lr);
        let mut input = Vec::with_capacity(a.batch * a.seq);
        let mut target = Vec::with_capacity(a.batch * a.seq);
        for _ in 0..a.batch {
            let off = (rng.next() % (tokens.len() - a.seq - 1) as u64) as usize;
            input.extend_from_slice(&tokens[off..off + a.seq]);
            target.extend_from_slice(&tokens[off + 1..off + a.seq + 1]);
        }
        let input = Tensor::from_vec(input, (a.batch, a.seq), &Device::Cpu)?;
        let target = Tensor::from_vec(target, a.batch * a.seq, &Device::Cpu)?;
        let logits = forward(&params, &c, &input)?.reshape((a.batch * a.seq, c.vocab_size))?;
        let loss = candle_nn::loss::cross_entropy(&logits, &target)?;
        opt.backward_step(&loss)?;
        let l = loss.to_scalar::<f32>()? as f64;
        running = if step == 0 {
            l
        } else {
            0.95 * running + 0.05 * l
        };
        if step % 50 == 0 || step + 1 == a.steps {
            println!(
                "[train] step {step:>5}/{} loss {running:.3} lr {lr:.2e} {:.0} s",
                a.steps,
                start.elapsed().as_secs_f64()
            );
        }
    }
    let named: HashMap<String, Tensor> = params
        .vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    candle_core::safetensors::save(&named, &a.out)?;
    println!("[train] wrote {}", a.out);
    Ok(())
}
