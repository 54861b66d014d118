//! The layers of a llama-family decoder, computed on the kernels (`inferchain-kernels`),
//! and the key/value cache they share between steps.
//!
//! Every value a row of the output depends on is computed by the same calls whether the
//! row is one of many (a prompt, or the teacher-forced pass over a whole generation) or
//! alone (one decoding step): matrix products are one FMA chain along K per element
//! whatever the number of rows, and attention is computed per query row over exactly
//! that row's causal prefix. So one pass over prompt + output reproduces, bit for bit,
//! the logits of step-by-step generation (docs/DETERMINISM.md).

use crate::numerics::{self, KernelThreads};
use candle_nn::VarBuilder;
use inferchain_kernels::{gemm, lanes, rotary, Bias, MatRef, PackedB, Sequential, Unary};

/// Below this many multiply-adds a product runs on the calling thread: handing a
/// decoding step's small products to the pool costs more than it saves (measured on
/// tiny-llm: 2 threads were 3x slower than 1 without it). Threads never change bits.
const PARALLEL_MIN_WORK: usize = 1 << 20;

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
            gemm(
                numerics::isa(),
                a,
                &self.weight,
                bias,
                &mut y,
                &KernelThreads,
            );
        } else {
            gemm(numerics::isa(), a, &self.weight, bias, &mut y, &Sequential);
        }
        y
    }

    pub(crate) fn bytes(&self) -> usize {
        self.weight.bytes() + 4 * self.bias.as_ref().map_or(0, Vec::len)
    }
}

/// Linear layers that read the same input (q/k/v, gate/up), packed side by side as one
/// product `[rows, Σ outputs]`. Each output element is the FMA chain it is in its own
/// layer, and a part's bias is added after it with one rounding and the canonical NaN,
/// as the kernels' epilogue adds it: the bits are those of separate products. One
/// product instead of several reads the input once and gives the threads one split of
/// wide columns instead of narrow ones (the 192-column k and v products of a
/// SmolLM-sized model ran at half the speed of the others).
pub(crate) struct StackedLinear {
    weight: PackedB,
    /// `(first column, bias)` of each part that has a bias.
    biases: Vec<(usize, Vec<f32>)>,
    inputs: usize,
    outputs: usize,
}

impl StackedLinear {
    /// `parts`: each layer's weights and bias as [`Linear::load`] reads them, with its
    /// number of outputs.
    pub(crate) fn load(parts: &[(VarBuilder, usize)], inputs: usize) -> candle_core::Result<Self> {
        let outputs = parts.iter().map(|(_, o)| o).sum();
        let mut rows = Vec::with_capacity(outputs * inputs);
        let mut biases = Vec::new();
        let mut first = 0;
        for (vb, out) in parts {
            rows.extend(
                vb.get((*out, inputs), "weight")?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
            if vb.contains_tensor("bias") {
                biases.push((first, vb.get(*out, "bias")?.to_vec1::<f32>()?));
            }
            first += out;
        }
        let weight = PackedB::pack(
            numerics::isa(),
            MatRef::row_major(&rows, outputs, inputs).t(),
        );
        Ok(StackedLinear {
            weight,
            biases,
            inputs,
            outputs,
        })
    }

    /// `rows` rows of `x` in; row `r` of the result is every part's outputs in order.
    pub(crate) fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut y = vec![0f32; rows * self.outputs];
        let a = MatRef::row_major(x, rows, self.inputs);
        if rows * self.inputs * self.outputs >= PARALLEL_MIN_WORK {
            gemm(
                numerics::isa(),
                a,
                &self.weight,
                Bias::None,
                &mut y,
                &KernelThreads,
            );
        } else {
            gemm(
                numerics::isa(),
                a,
                &self.weight,
                Bias::None,
                &mut y,
                &Sequential,
            );
        }
        for row in y.chunks_mut(self.outputs) {
            for (first, bias) in &self.biases {
                for (v, b) in row[*first..][..bias.len()].iter_mut().zip(bias) {
                    *v = canonical(*v + b);
                }
            }
        }
        y
    }

    pub(crate) fn bytes(&self) -> usize {
        self.weight.bytes() + 4 * self.biases.iter().map(|(_, b)| b.len()).sum::<usize>()
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
            crate::kernel_threads::for_each_row_pair(&mut y, n, x, n, |y, x| row((y, x)));
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
    /// q, k and v as one product: per row, `heads` query heads, then `kv_heads` keys,
    /// then `kv_heads` values.
    qkv: StackedLinear,
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
            qkv: StackedLinear::load(
                &[
                    (vb.pp("q_proj"), c.num_heads * d),
                    (vb.pp("k_proj"), c.num_kv_heads * d),
                    (vb.pp("v_proj"), c.num_kv_heads * d),
                ],
                h,
            )?,
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
        let (qs, kvs) = (self.heads * d, self.kv_heads * d);
        let mut qkv = self.qkv.forward(x, rows);
        for (r, row) in qkv.chunks_mut(qs + 2 * kvs).enumerate() {
            let angles: Vec<(f32, f32)> = self
                .inv_freq
                .iter()
                .map(|&f| rotary::cos_sin((start + r) as f32 * f))
                .collect();
            let (cos, sin): (Vec<f32>, Vec<f32>) = angles.into_iter().unzip();
            let (q, kv) = row.split_at_mut(qs);
            let (k, v) = kv.split_at_mut(kvs);
            for head in q.chunks_mut(d) {
                rotary::rotate(head, &cos, &sin);
            }
            for (kv, (head, value)) in k.chunks_mut(d).zip(v.chunks(d)).enumerate() {
                rotary::rotate(head, &cos, &sin);
                cache.store(kv, start + r, head, value);
            }
        }
        let scale = 1.0 / lanes::sqrt(d as f32);
        let group = self.heads / self.kv_heads;
        let mut ctx = vec![0f32; rows * self.heads * d];
        let cache = &*cache;
        let task = |(i, out): (usize, &mut [f32])| {
            let (r, head) = (i / self.heads, i % self.heads);
            let query = &qkv[r * (qs + 2 * kvs) + head * d..][..d];
            cache.attend(head / group, query, start + r, scale, out);
        };
        if rows > 1 {
            crate::kernel_threads::for_each_row_mut(&mut ctx, d, |i, out| task((i, out)));
        } else {
            ctx.chunks_mut(d).enumerate().for_each(task);
        }
        self.o.forward(&ctx, rows)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.qkv.bytes() + self.o.bytes()
    }
}

/// SwiGLU: `down(silu(gate(x)) * up(x))`, SiLU the kernels'.
pub(crate) struct Mlp {
    /// gate and up as one product: per row, `inner` gate outputs then `inner` up outputs.
    gate_up: StackedLinear,
    inner: usize,
    down: Linear,
}

impl Mlp {
    pub(crate) fn load(vb: VarBuilder, hidden: usize, inner: usize) -> candle_core::Result<Self> {
        Ok(Mlp {
            gate_up: StackedLinear::load(
                &[(vb.pp("gate_proj"), inner), (vb.pp("up_proj"), inner)],
                hidden,
            )?,
            inner,
            down: Linear::load(vb.pp("down_proj"), inner, hidden)?,
        })
    }

    pub(crate) fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let n = self.inner;
        let gate_up = self.gate_up.forward(x, rows);
        let mut g = vec![0f32; rows * n];
        // Row by row: SiLU of the gate half (the kernels'), times the up half.
        let row = |(g, gu): (&mut [f32], &[f32])| {
            let (gate, up) = gu.split_at(n);
            g.copy_from_slice(gate);
            inferchain_kernels::unary_in_place(numerics::isa(), Unary::Silu, g);
            g.iter_mut()
                .zip(up)
                .for_each(|(g, u)| *g = canonical(*g * u));
        };
        if g.len() > 1 << 14 {
            crate::kernel_threads::for_each_row_pair(&mut g, n, &gate_up, 2 * n, |g, gu| {
                row((g, gu))
            });
        } else {
            g.chunks_mut(n).zip(gate_up.chunks(2 * n)).for_each(row);
        }
        self.down.forward(&g, rows)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.gate_up.bytes() + self.down.bytes()
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};
    use std::collections::HashMap;

    /// A stacked product gives each part's bits exactly, biases (on some parts only)
    /// included, at one row and at many.
    #[test]
    fn stacked_parts_equal_separate_products_bit_for_bit() -> candle_core::Result<()> {
        let (inputs, parts) = (40, [(24usize, true), (8, false), (8, true)]);
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        let mut tensors = HashMap::new();
        let mut separate = Vec::new();
        for (p, &(outputs, has_bias)) in parts.iter().enumerate() {
            let w: Vec<f32> = (0..outputs * inputs).map(|_| next()).collect();
            let b: Vec<f32> = (0..outputs).map(|_| next()).collect();
            tensors.insert(
                format!("p{p}.weight"),
                Tensor::from_vec(w.clone(), (outputs, inputs), &Device::Cpu)?,
            );
            if has_bias {
                tensors.insert(
                    format!("p{p}.bias"),
                    Tensor::from_vec(b.clone(), outputs, &Device::Cpu)?,
                );
            }
            separate.push(Linear::from_rows(
                &w,
                inputs,
                outputs,
                has_bias.then_some(b),
            ));
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let specs: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(p, &(outputs, _))| (vb.pp(format!("p{p}")), outputs))
            .collect();
        let stacked = StackedLinear::load(&specs, inputs)?;
        for rows in [1, 13] {
            let x: Vec<f32> = (0..rows * inputs).map(|_| next() * 8.0).collect();
            let all = stacked.forward(&x, rows);
            let total: usize = parts.iter().map(|p| p.0).sum();
            let mut first = 0;
            for (linear, &(outputs, _)) in separate.iter().zip(&parts) {
                let alone = linear.forward(&x, rows);
                for r in 0..rows {
                    let a: Vec<u32> = all[r * total + first..][..outputs]
                        .iter()
                        .map(|v| v.to_bits())
                        .collect();
                    let b: Vec<u32> = alone[r * outputs..][..outputs]
                        .iter()
                        .map(|v| v.to_bits())
                        .collect();
                    assert_eq!(a, b, "row {r}, part at column {first}");
                }
                first += outputs;
            }
        }
        Ok(())
    }
}
