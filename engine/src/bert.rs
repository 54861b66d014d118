//! BERT-family sentence embeddings (e.g. all-MiniLM-L6-v2): text is tokenized with the
//! model's own `tokenizer.json`, run through a BERT encoder written here on the kernels
//! (`inferchain-kernels`: every matrix product, LayerNorm, softmax and GELU is theirs, so
//! the embedding's bits are the same on every CPU), mean-pooled over the tokens and
//! L2-normalised. Output: f32 `[1, hidden_size]`.
//!
//! Canonical choices (part of the numerics profile): tokenization by the canonical BERT
//! tokenizer the dispute referee shares (`inferchain_referee::wordpiece`, see
//! `bert_plan`) where the model's `tokenizer.json` is one it reproduces (`tokenizers`
//! otherwise, and such a model has no dispute plan); no padding (one sequence, so no mask
//! is needed), truncation as the tokenizer declares it (or at the model's position limit),
//! f32 throughout; the order of every operation is the one written in this file.

use crate::{
    bert_plan::CanonicalTokenizer,
    error::{EngineError, Result},
    numerics::{self, KernelThreads},
    spec::{self, DEFAULT_MAX_TEXT_BYTES},
    store::{VerifiedFiles, BERT_POOLING_FILE},
};
use candle_core::{DType as CDType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use inferchain_kernels::{gemm, Bias, MatRef, PackedB, Sequential, Unary};
use inferchain_primitives::{
    io::{DType, Dim, IoSpec, Tensor},
    model::ModelCost,
};
use tokenizers::{Tokenizer, TruncationParams};

/// The sentence-transformers pooling config; only mean pooling is supported.
#[derive(serde::Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// `y = x Wᵀ + b`, W packed once at load.
struct Linear {
    weight: PackedB,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Linear {
    fn load(vb: VarBuilder, inputs: usize, outputs: usize) -> candle_core::Result<Self> {
        let w = vb.get((outputs, inputs), "weight")?;
        let bias = vb.get(outputs, "bias")?.to_vec1::<f32>()?;
        let w = w.flatten_all()?.to_vec1::<f32>()?;
        let weight = PackedB::pack(numerics::isa(), MatRef::row_major(&w, outputs, inputs).t());
        Ok(Linear {
            weight,
            bias,
            inputs,
            outputs,
        })
    }

    /// `rows` rows of `x` in, `rows` rows out.
    fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut y = vec![0f32; rows * self.outputs];
        gemm(
            numerics::isa(),
            MatRef::row_major(x, rows, self.inputs),
            &self.weight,
            Bias::Col(&self.bias),
            &mut y,
            &KernelThreads,
        );
        y
    }

    fn bytes(&self) -> usize {
        self.weight.bytes() + 4 * self.bias.len()
    }
}

/// Per row: `fma((x - mean) * rstd, weight, bias)` (the kernels' `layer_norm`).
struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(LayerNorm {
            weight: vb.get(size, "weight")?.to_vec1::<f32>()?,
            bias: vb.get(size, "bias")?.to_vec1::<f32>()?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let isa = numerics::isa();
        let n = self.weight.len();
        let mut y = vec![0f32; x.len()];
        crate::kernel_threads::for_each_row_pair(&mut y, n, x, n, |y, x| {
            inferchain_kernels::layer_norm(isa, x, &self.weight, Some(&self.bias), self.eps, y)
        });
        y
    }
}

/// `LayerNorm((word[id] + token_type[0]) + position[t])`.
struct Embeddings {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    layer_norm: LayerNorm,
    hidden: usize,
    vocab: usize,
    positions: usize,
}

impl Embeddings {
    fn load(vb: VarBuilder, c: &Config) -> candle_core::Result<Self> {
        let table = |name: &str, rows: usize| -> candle_core::Result<Vec<f32>> {
            vb.pp(name)
                .get((rows, c.hidden_size), "weight")?
                .flatten_all()?
                .to_vec1::<f32>()
        };
        Ok(Embeddings {
            word: table("word_embeddings", c.vocab_size)?,
            position: table("position_embeddings", c.max_position_embeddings)?,
            token_type: table("token_type_embeddings", c.type_vocab_size)?,
            layer_norm: LayerNorm::load(vb.pp("LayerNorm"), c.hidden_size, c.layer_norm_eps)?,
            hidden: c.hidden_size,
            vocab: c.vocab_size,
            positions: c.max_position_embeddings,
        })
    }

    fn forward(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let h = self.hidden;
        if ids.len() > self.positions {
            return Err(EngineError::InvalidArtifact(format!(
                "{} tokens exceed the model's {} positions",
                ids.len(),
                self.positions
            )));
        }
        let mut x = Vec::with_capacity(ids.len() * h);
        for (t, &id) in ids.iter().enumerate() {
            let id = id as usize;
            if id >= self.vocab {
                return Err(EngineError::Tokenizer(format!(
                    "token id {id} is outside the vocabulary ({})",
                    self.vocab
                )));
            }
            let (w, p, ty) = (
                &self.word[id * h..][..h],
                &self.position[t * h..][..h],
                &self.token_type[..h],
            );
            x.extend((0..h).map(|j| (w[j] + ty[j]) + p[j]));
        }
        Ok(self.layer_norm.forward(&x))
    }

    fn bytes(&self) -> usize {
        4 * (self.word.len() + self.position.len() + self.token_type.len())
    }
}

/// Multi-head self-attention without a mask: per head, `softmax(Q Kᵀ / sqrt(d)) V`.
struct SelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    heads: usize,
    head_size: usize,
}

impl SelfAttention {
    fn load(vb: VarBuilder, c: &Config) -> candle_core::Result<Self> {
        let h = c.hidden_size;
        Ok(SelfAttention {
            query: Linear::load(vb.pp("query"), h, h)?,
            key: Linear::load(vb.pp("key"), h, h)?,
            value: Linear::load(vb.pp("value"), h, h)?,
            heads: c.num_attention_heads,
            head_size: h / c.num_attention_heads,
        })
    }

    fn forward(&self, x: &[f32], seq: usize) -> Vec<f32> {
        let (q, k, v) = (
            self.query.forward(x, seq),
            self.key.forward(x, seq),
            self.value.forward(x, seq),
        );
        let (d, hidden) = (self.head_size, self.heads * self.head_size);
        let isa = numerics::isa();
        let scale = inferchain_kernels::lanes::sqrt(d as f32);
        let per_head: Vec<Vec<f32>> = crate::kernel_threads::map_collect(self.heads, |head| {
            let off = head * d;
            let view = |data| head_view(data, off, seq, d, hidden);
            let kt = PackedB::pack(isa, view(&k).t());
            let mut scores = vec![0f32; seq * seq];
            gemm(isa, view(&q), &kt, Bias::None, &mut scores, &Sequential);
            let mut probs = vec![0f32; seq * seq];
            for (p, s) in probs.chunks_mut(seq).zip(scores.chunks_mut(seq)) {
                s.iter_mut().for_each(|x| *x /= scale);
                inferchain_kernels::softmax(isa, s, p);
            }
            let vp = PackedB::pack(isa, view(&v));
            let mut ctx = vec![0f32; seq * d];
            let probs = MatRef::row_major(&probs, seq, seq);
            gemm(isa, probs, &vp, Bias::None, &mut ctx, &Sequential);
            ctx
        });
        let mut out = vec![0f32; seq * hidden];
        for (head, ctx) in per_head.iter().enumerate() {
            for t in 0..seq {
                out[t * hidden + head * d..][..d].copy_from_slice(&ctx[t * d..][..d]);
            }
        }
        out
    }

    fn bytes(&self) -> usize {
        self.query.bytes() + self.key.bytes() + self.value.bytes()
    }
}

/// The feed-forward activation.
#[derive(Clone, Copy)]
enum Activation {
    Kernel(Unary),
    /// `x < 0 ? 0 : x` (exact).
    Relu,
}

/// One head's columns `off..off + d` of a `[seq, hidden]` row-major matrix.
fn head_view(data: &[f32], off: usize, seq: usize, d: usize, hidden: usize) -> MatRef<'_> {
    MatRef {
        data: &data[off..],
        rows: seq,
        cols: d,
        rs: hidden,
        cs: 1,
    }
}

/// One encoder layer: attention, `LayerNorm(dense(attention) + x)`, then
/// `LayerNorm(dense(act(dense(h))) + h)`.
struct Layer {
    attention: SelfAttention,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    act: Activation,
    output: Linear,
    output_norm: LayerNorm,
}

impl Layer {
    fn load(vb: VarBuilder, c: &Config) -> candle_core::Result<Self> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let act = match c.hidden_act {
            HiddenAct::Gelu => Activation::Kernel(Unary::Gelu),
            HiddenAct::GeluApproximate => Activation::Kernel(Unary::GeluTanh),
            HiddenAct::Relu => Activation::Relu,
        };
        let vba = vb.pp("attention");
        Ok(Layer {
            attention: SelfAttention::load(vba.pp("self"), c)?,
            attention_output: Linear::load(vba.pp("output").pp("dense"), h, h)?,
            attention_norm: LayerNorm::load(vba.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
            intermediate: Linear::load(vb.pp("intermediate").pp("dense"), h, i)?,
            act,
            output: Linear::load(vb.pp("output").pp("dense"), i, h)?,
            output_norm: LayerNorm::load(vb.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    fn forward(&self, x: &[f32], seq: usize) -> Vec<f32> {
        let a = self.attention.forward(x, seq);
        let mut h = self.attention_output.forward(&a, seq);
        h.iter_mut().zip(x).for_each(|(h, x)| *h += x);
        let h = self.attention_norm.forward(&h);
        let mut i = self.intermediate.forward(&h, seq);
        match self.act {
            Activation::Relu => i.iter_mut().for_each(|v| {
                if *v < 0.0 {
                    *v = 0.0
                }
            }),
            Activation::Kernel(act) => {
                crate::kernel_threads::for_each_chunk_mut(&mut i, 1 << 14, |_, c| {
                    inferchain_kernels::unary_in_place(numerics::isa(), act, c)
                })
            }
        }
        let mut o = self.output.forward(&i, seq);
        o.iter_mut().zip(&h).for_each(|(o, h)| *o += h);
        self.output_norm.forward(&o)
    }

    fn bytes(&self) -> usize {
        self.attention.bytes()
            + self.attention_output.bytes()
            + self.intermediate.bytes()
            + self.output.bytes()
    }
}

/// The encoder: embeddings, then the layers.
struct Encoder {
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl Encoder {
    fn load(vb: VarBuilder, c: &Config) -> candle_core::Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let layers = (0..c.num_hidden_layers)
            .map(|i| Layer::load(vb.pp("encoder").pp(format!("layer.{i}")), c))
            .collect::<candle_core::Result<_>>()?;
        Ok(Encoder {
            embeddings: Embeddings::load(vb.pp("embeddings"), c)?,
            layers,
        })
    }

    /// The last hidden states, `[tokens, hidden]` row-major.
    fn forward(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut x = self.embeddings.forward(ids)?;
        for layer in &self.layers {
            x = layer.forward(&x, ids.len());
        }
        Ok(x)
    }

    fn bytes(&self) -> usize {
        self.embeddings.bytes() + self.layers.iter().map(Layer::bytes).sum::<usize>()
    }
}

/// A loaded embedding model.
pub struct BertEmbedder {
    encoder: Encoder,
    /// The canonical tokenizer (shared with the referee), where the model's
    /// `tokenizer.json` is one it reproduces; `tokenizer` otherwise.
    canonical: Option<CanonicalTokenizer>,
    tokenizer: Tokenizer,
    hidden_size: usize,
    weight_bytes: usize,
    /// The most tokens one text becomes (its truncation).
    max_tokens: usize,
    dims: crate::cost::TransformerDims,
}

impl BertEmbedder {
    /// Builds the model from files already checked against its manifest.
    pub fn load(files: &mut VerifiedFiles) -> Result<Self> {
        let config_bytes = files
            .get("config.json")
            .ok_or_else(|| EngineError::InvalidArtifact("config.json missing".into()))?;
        let config: Config = serde_json::from_slice(config_bytes)
            .map_err(|e| EngineError::InvalidArtifact(format!("config.json: {e}")))?;
        if let Some(pooling) = files.get(BERT_POOLING_FILE) {
            let pooling: PoolingConfig = serde_json::from_slice(pooling)
                .map_err(|e| EngineError::InvalidArtifact(format!("{BERT_POOLING_FILE}: {e}")))?;
            if !pooling.pooling_mode_mean_tokens
                || pooling.pooling_mode_cls_token
                || pooling.pooling_mode_max_tokens
                || pooling.pooling_mode_mean_sqrt_len_tokens
            {
                return Err(EngineError::InvalidArtifact(format!(
                    "{BERT_POOLING_FILE}: only mean pooling is supported"
                )));
            }
        }
        let tokenizer_json = files
            .get("tokenizer.json")
            .ok_or_else(|| EngineError::InvalidArtifact("tokenizer.json missing".into()))?;
        let canonical =
            CanonicalTokenizer::from_tokenizer_json(tokenizer_json, config.max_position_embeddings)
                .ok();
        let mut tokenizer = Tokenizer::from_bytes(tokenizer_json)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        let limit = config.max_position_embeddings;
        let max_length = tokenizer
            .get_truncation()
            .map(|t| t.max_length.min(limit))
            .unwrap_or(limit);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let weights = files
            .take("model.safetensors")
            .ok_or_else(|| EngineError::InvalidArtifact("model.safetensors missing".into()))?;
        if !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads.max(1))
        {
            return Err(EngineError::InvalidArtifact(
                "config.json: hidden_size is not a multiple of num_attention_heads".into(),
            ));
        }
        let vb = VarBuilder::from_buffered_safetensors(weights, CDType::F32, &Device::Cpu)?;
        let encoder = Encoder::load(vb, &config)?;
        let weight_bytes = encoder.bytes();
        Ok(BertEmbedder {
            encoder,
            canonical,
            tokenizer,
            hidden_size: config.hidden_size,
            weight_bytes,
            max_tokens: max_length,
            dims: crate::cost::TransformerDims {
                layers: config.num_hidden_layers,
                hidden: config.hidden_size,
                intermediate: config.intermediate_size,
                heads: config.num_attention_heads,
                kv_width: config.hidden_size,
                mlp_matrices: 2,
                head_rows: 0,
            },
        })
    }

    /// One request's cost at most: a text of `max_bytes` bytes is at most one token a
    /// byte and the two special tokens, and never more than the truncation.
    pub fn cost(&self, max_bytes: u32) -> ModelCost {
        let tokens = (max_bytes as usize).saturating_add(2).min(self.max_tokens);
        self.dims.cost(tokens, self.weight_bytes)
    }

    /// Bytes of weights held in memory.
    pub fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    /// Text in, `[1, hidden_size]` f32 out.
    pub fn io_specs(&self) -> Result<(IoSpec, IoSpec)> {
        let output = spec::tensor_spec(
            "embedding",
            DType::F32,
            vec![Dim::Fixed(1), Dim::Fixed(self.hidden_size as u32)],
        )?;
        Ok((
            IoSpec::Text {
                max_bytes: DEFAULT_MAX_TEXT_BYTES,
            },
            IoSpec::Tensors(
                vec![output]
                    .try_into()
                    .map_err(|_| EngineError::InvalidArtifact("one output tensor".into()))?,
            ),
        ))
    }

    /// Token ids for `text`, with the special tokens, truncated canonically: the
    /// canonical tokenizer's (`bert_plan`), which the dispute referee recomputes, where
    /// the model has one.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        if let Some(canonical) = &self.canonical {
            return canonical.tokenize(text);
        }
        self.tokenize_with_tokenizers(text)
    }

    /// Whether [`Self::tokenize`] is the canonical tokenizer.
    pub fn has_canonical_tokenizer(&self) -> bool {
        self.canonical.is_some()
    }

    /// Token ids for `text` from Hugging Face `tokenizers` (what the canonical tokenizer
    /// is compared against).
    pub fn tokenize_with_tokenizers(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The embedding of a token sequence: the kernels' 16-lane sum over the tokens per
    /// hidden unit, divided by the token count; then divided by its L2 norm (the square
    /// root of the 16-lane sum of squares).
    pub fn embed_tokens(&self, ids: &[u32]) -> Result<Tensor> {
        if ids.is_empty() {
            return Err(EngineError::Tokenizer("no tokens to embed".into()));
        }
        let hidden = self.encoder.forward(ids)?;
        let (seq, h) = (ids.len(), self.hidden_size);
        let isa = numerics::isa();
        let mut column = vec![0f32; seq];
        let pooled: Vec<f32> = (0..h)
            .map(|j| {
                for (t, c) in column.iter_mut().enumerate() {
                    *c = hidden[t * h + j];
                }
                inferchain_kernels::sum(isa, &column) / seq as f32
            })
            .collect();
        let norm = inferchain_kernels::lanes::sqrt(inferchain_kernels::sum_squares(isa, &pooled));
        let embedding: Vec<f32> = pooled.iter().map(|v| v / norm).collect();
        Ok(Tensor::from_f32(vec![1, h as u32], &embedding))
    }

    /// The embedding of `text`.
    pub fn embed(&self, text: &str) -> Result<Tensor> {
        let ids = self.tokenize(text)?;
        self.embed_tokens(&ids)
    }
}
