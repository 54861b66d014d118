//! The layers of a llama-family decoder, computed on the kernels (`inferchain-kernels`),
//! and the key/value cache they share between steps.
//!
//! Every value a row of the output depends on is computed by the same calls whether the
//! row is one of many (a prompt, or the teacher-forced pass over a whole generation) or
//! alone (one decoding step): matrix products are one FMA chain along K per element
//! whatever the number of rows, and attention is computed per query row over exactly
//! that row's causal prefix. So one pass over prompt + output reproduces, bit for bit,
//! the logits of step-by-step generation (docs/DETERMINISM.md).

use crate::numerics::{self, Rayon};
use candle_nn::VarBuilder;
use inferchain_kernels::{gemm, lanes, rotary, Bias, MatRef, PackedB, Sequential, Unary};

/// Below this many multiply-adds a product runs on the calling thread: handing a
/// decoding step's small products to the pool costs more than it saves (measured on
/// tiny-llm: 2 threads were 3x slower than 1 without it). Threads never change bits.
const PARALLEL_MIN_WORK: usize = 1 << 20;
use rayon::prelude::*;

/// The canonical NaN for any NaN: element-wise IEEE operations outside the kernels are
/// written like the kernels write them (and like the referee's steps), since CPUs and
/// wasm engines make different NaNs.
fn canonical(v: f32) -> f32 {
    if v.is_nan() {
        inferchain_kernels::math::CANONICAL_NAN
    } else {
        v
    }
}

/// `y = x Wᵀ (+ b)`, W packed once at load.
pub(crate) struct Linear {
    weight: PackedB,
    bias: Option<Vec<f32>>,
    inputs: usize,
    outputs: usize,
}

impl Linear {
    /// `weight` `[outputs, inputs]`, and `bias` `[outputs]` where the checkpoint has one.
    pub(crate) fn load(vb: VarBuilder, inputs: usize, outputs: usize) -> candle_core::Result<Self> {
        let w = vb
            .get((outputs, inputs), "weight")?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let bias = if vb.contains_tensor("bias") {
            Some(vb.get(outputs, "bias")?.to_vec1::<f32>()?)
        } else {
            None
        };
        Ok(Self::from_rows(&w, inputs, outputs, bias))
    }

    /// From a row-major `[outputs, inputs]` matrix (a tied embedding table).
    pub(crate) fn from_rows(
        w: &[f32],
        inputs: usize,
        outputs: usize,
        bias: Option<Vec<f32>>,
    ) -> Self {
        let weight = PackedB::pack(numerics::isa(), MatRef::row_major(w, outputs, inputs).t());
        Linear {
            weight,
            bias,
            inputs,
            outputs,
        }
    }

    /// `rows` rows of `x` in, `rows` rows out.
    pub(crate) fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut y = vec![0f32; rows * self.outputs];
        let bias = match &self.bias {
            Some(b) => Bias::Col(b),
            None => Bias::None,
        };
        let a = MatRef::row_major(x, rows, self.inputs);
        if rows * self.inputs * self.outputs >= PARALLEL_MIN_WORK {
            gemm(numerics::isa(), a, &self.weight, bias, &mut y, &Rayon);
        } else {
            gemm(numerics::isa(), a, &self.weight, bias, &mut y, &Sequential);
        }
        y
    }

    pub(crate) fn bytes(&self) -> usize {
        self.weight.bytes() + 4 * self.bias.as_ref().map_or(0, Vec::len)
    }
}

/// RMSNorm per row: `ms = sum_squares(x) / n` (the kernels' 16-lane sum),
/// `r = 1 / sqrt(ms + eps)`, `y[j] = w[j] * (x[j] * r)`.
pub(crate) struct RmsNorm {
    weight: Vec<f32>,
    eps: f32,
}

impl RmsNorm {
    pub(crate) fn load(vb: VarBuilder, size: usize, eps: f32) -> candle_core::Result<Self> {
        Ok(RmsNorm {
            weight: vb.get(size, "weight")?.to_vec1::<f32>()?,
            eps,
        })
    }

    pub(crate) fn forward(&self, x: &[f32]) -> Vec<f32> {
        let n = self.weight.len();
        let mut y = vec![0f32; x.len()];
        let row = |(y, x): (&mut [f32], &[f32])| {
            let ms = inferchain_kernels::sum_squares(numerics::isa(), x) / n as f32;
            let r = 1.0 / lanes::sqrt(ms + self.eps);
            for ((y, &x), &w) in y.iter_mut().zip(x).zip(&self.weight) {
                *y = canonical(w * (x * r));
            }
        };
        if x.len() > n {
            y.par_chunks_mut(n).zip(x.par_chunks(n)).for_each(row);
        } else {
            y.chunks_mut(n).zip(x.chunks(n)).for_each(row);
        }
        y
    }

    pub(crate) fn bytes(&self) -> usize {
        4 * self.weight.len()
    }
}

/// One layer's keys and values for positions `0..len`: keys transposed per KV head
/// (`[kv_head][dim][position]`, so a query's scores are one product over `dim`), values
/// per position (`[kv_head][position][dim]`).
pub(crate) struct LayerCache {
    keys_t: Vec<f32>,
    values: Vec<f32>,
    capacity: usize,
    head_dim: usize,
}

impl LayerCache {
    pub(crate) fn new(kv_heads: usize, head_dim: usize, capacity: usize) -> Self {
        LayerCache {
            keys_t: vec![0f32; kv_heads * head_dim * capacity],
            values: vec![0f32; kv_heads * capacity * head_dim],
            capacity,
            head_dim,
        }
    }

    fn store(&mut self, kv_head: usize, pos: usize, key: &[f32], value: &[f32]) {
        let (d, cap) = (self.head_dim, self.capacity);
        for (j, &k) in key.iter().enumerate() {
            self.keys_t[(kv_head * d + j) * cap + pos] = k;
        }
        self.values[(kv_head * cap + pos) * d..][..d].copy_from_slice(value);
    }

    /// `softmax(q · k_j * scale for j <= pos) · v`: one query row of one head over its
    /// causal prefix, written to `out`.
    fn attend(&self, kv_head: usize, q: &[f32], pos: usize, scale: f32, out: &mut [f32]) {
        let isa = numerics::isa();
        let (d, cap) = (self.head_dim, self.capacity);
        let key_rows: Vec<&[f32]> = (0..d)
            .map(|j| &self.keys_t[(kv_head * d + j) * cap..][..pos + 1])
            .collect();
        let mut scores = vec![0f32; pos + 1];
        inferchain_kernels::weighted_slices(isa, &key_rows, q, None, &mut scores);
        scores.iter_mut().for_each(|s| *s *= scale);
        let mut probs = vec![0f32; pos + 1];
        inferchain_kernels::softmax(isa, &scores, &mut probs);
        let value_rows: Vec<&[f32]> = (0..=pos)
            .map(|p| &self.values[(kv_head * cap + p) * d..][..d])
            .collect();
        inferchain_kernels::weighted_slices(isa, &value_rows, &probs, None, out);
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Grouped-query self-attention with RoPE: query head `h` reads KV head
/// `h / (heads / kv_heads)`.
pub(crate) struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    inv_freq: Vec<f32>,
}

impl Attention {
    pub(crate) fn load(vb: VarBuilder, c: &super::config::LlmConfig) -> candle_core::Result<Self> {
        let (h, d) = (c.hidden_size, c.head_dim);
        Ok(Attention {
            q: Linear::load(vb.pp("q_proj"), h, c.num_heads * d)?,
            k: Linear::load(vb.pp("k_proj"), h, c.num_kv_heads * d)?,
            v: Linear::load(vb.pp("v_proj"), h, c.num_kv_heads * d)?,
            o: Linear::load(vb.pp("o_proj"), c.num_heads * d, h)?,
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: d,
            inv_freq: rotary::inv_freq(d, c.rope_theta),
        })
    }

    /// Rows of `x` at positions `start..start + rows`: their keys and values join the
    /// cache, then each row attends over positions `0..=its own`.
    pub(crate) fn forward(
        &self,
        x: &[f32],
        rows: usize,
        start: usize,
        cache: &mut LayerCache,
    ) -> Vec<f32> {
        let d = self.head_dim;
        let mut q = self.q.forward(x, rows);
        let mut k = self.k.forward(x, rows);
        let v = self.v.forward(x, rows);
        for r in 0..rows {
            let angles: Vec<(f32, f32)> = self
                .inv_freq
                .iter()
                .map(|&f| rotary::cos_sin((start + r) as f32 * f))
                .collect();
            let (cos, sin): (Vec<f32>, Vec<f32>) = angles.into_iter().unzip();
            for head in q[r * self.heads * d..][..self.heads * d].chunks_mut(d) {
                rotary::rotate(head, &cos, &sin);
            }
            for (kv, head) in k[r * self.kv_heads * d..][..self.kv_heads * d]
                .chunks_mut(d)
                .enumerate()
            {
                rotary::rotate(head, &cos, &sin);
                let value = &v[(r * self.kv_heads + kv) * d..][..d];
                cache.store(kv, start + r, head, value);
            }
        }
        let scale = 1.0 / lanes::sqrt(d as f32);
        let group = self.heads / self.kv_heads;
        let mut ctx = vec![0f32; rows * self.heads * d];
        let cache = &*cache;
        let task = |(i, out): (usize, &mut [f32])| {
            let (r, head) = (i / self.heads, i % self.heads);
            let query = &q[(r * self.heads + head) * d..][..d];
            cache.attend(head / group, query, start + r, scale, out);
        };
        if rows > 1 {
            ctx.par_chunks_mut(d).enumerate().for_each(task);
        } else {
            ctx.chunks_mut(d).enumerate().for_each(task);
        }
        self.o.forward(&ctx, rows)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.q.bytes() + self.k.bytes() + self.v.bytes() + self.o.bytes()
    }
}

/// SwiGLU: `down(silu(gate(x)) * up(x))`, SiLU the kernels'.
pub(crate) struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Mlp {
    pub(crate) fn load(vb: VarBuilder, hidden: usize, inner: usize) -> candle_core::Result<Self> {
        Ok(Mlp {
            gate: Linear::load(vb.pp("gate_proj"), hidden, inner)?,
            up: Linear::load(vb.pp("up_proj"), hidden, inner)?,
            down: Linear::load(vb.pp("down_proj"), inner, hidden)?,
        })
    }

    pub(crate) fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut g = self.gate.forward(x, rows);
        let u = self.up.forward(x, rows);
        if g.len() > 1 << 14 {
            g.par_chunks_mut(1 << 14)
                .for_each(|c| inferchain_kernels::unary_in_place(numerics::isa(), Unary::Silu, c));
        } else {
            inferchain_kernels::unary_in_place(numerics::isa(), Unary::Silu, &mut g);
        }
        g.iter_mut()
            .zip(&u)
            .for_each(|(g, u)| *g = canonical(*g * u));
        self.down.forward(&g, rows)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.gate.bytes() + self.up.bytes() + self.down.bytes()
    }
}

/// `x + attn(norm(x))`, then `h + mlp(norm(h))`.
pub(crate) struct DecoderLayer {
    input_norm: RmsNorm,
    attention: Attention,
    post_norm: RmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    pub(crate) fn load(vb: VarBuilder, c: &super::config::LlmConfig) -> candle_core::Result<Self> {
        Ok(DecoderLayer {
            input_norm: RmsNorm::load(vb.pp("input_layernorm"), c.hidden_size, c.rms_norm_eps)?,
            attention: Attention::load(vb.pp("self_attn"), c)?,
            post_norm: RmsNorm::load(
                vb.pp("post_attention_layernorm"),
                c.hidden_size,
                c.rms_norm_eps,
            )?,
            mlp: Mlp::load(vb.pp("mlp"), c.hidden_size, c.intermediate_size)?,
        })
    }

    pub(crate) fn forward(&self, x: &mut [f32], rows: usize, start: usize, cache: &mut LayerCache) {
        let a = self
            .attention
            .forward(&self.input_norm.forward(x), rows, start, cache);
        x.iter_mut()
            .zip(&a)
            .for_each(|(x, a)| *x = canonical(*x + a));
        let m = self.mlp.forward(&self.post_norm.forward(x), rows);
        x.iter_mut()
            .zip(&m)
            .for_each(|(x, m)| *x = canonical(*x + m));
    }

    pub(crate) fn bytes(&self) -> usize {
        self.input_norm.bytes() + self.attention.bytes() + self.post_norm.bytes() + self.mlp.bytes()
    }
}
