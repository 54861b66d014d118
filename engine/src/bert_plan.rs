//! The dispute plan of a BERT sentence embedder (all-MiniLM-L6-v2 and its family): the
//! canonical tokenizer a plan starts from, and the encoder written in the referee's step
//! language, padded to the tokenizer's sequence limit so that one plan (one registered
//! plan root) serves every input length.
//!
//! Padding keeps the engine's bits: every row-wise step (products by a weight,
//! LayerNorm, GELU, residual sums) computes a real row from that row alone; attention
//! masks the padded keys (`MaskedSoftmax`: their probability is +0, and a +0 term leaves
//! an FMA chain's sum as it was), and pooling averages the real rows only. So the plan's
//! output is the engine's embedding of the same ids; `DisputePlan::run` checks it on
//! every traced run.
//!
//! What it must not do: accept a tokenizer the canonical one would not reproduce (a
//! `tokenizer.json` other than BERT's normalizer, pre-tokenizer, WordPiece and
//! `[CLS] … [SEP]` template is refused, and the engine tokenizes such a model with
//! `tokenizers` and offers no plan for it).

use crate::{
    dispute_plan::DisputePlan,
    error::{EngineError, Result},
    spec::DEFAULT_MAX_TEXT_BYTES,
    store::VerifiedFiles,
};
use candle_core::{DType as CDType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use codec::Encode;
use inferchain_kernels::{call::Call, Unary};
use inferchain_primitives::dispute::{PlanStep, Read};
use inferchain_referee::{
    wordpiece::{Vocab, WordPiece},
    Binary, Step,
};
use serde_json::Value as Json;

fn unsupported(what: impl Into<String>) -> EngineError {
    EngineError::UnsupportedOp {
        op: format!("BERT dispute plan: {}", what.into()),
    }
}

/// The canonical tokenizer of a BERT model: its WordPiece settings and its vocabulary
/// as the plan commits it.
#[derive(Clone, Debug)]
pub struct CanonicalTokenizer {
    pub spec: WordPiece,
    /// Tokens in id order, each ended by `\n`.
    pub vocab: Vec<u8>,
}

impl CanonicalTokenizer {
    /// From a `tokenizer.json`, for a model with `positions` position embeddings.
    pub fn from_tokenizer_json(bytes: &[u8], positions: usize) -> Result<Self> {
        let json: Json = serde_json::from_slice(bytes)
            .map_err(|e| EngineError::Tokenizer(format!("tokenizer.json: {e}")))?;
        let str_at = |v: &Json, key: &str| v.get(key).and_then(Json::as_str).map(str::to_owned);
        let model = json
            .get("model")
            .ok_or_else(|| unsupported("no tokenizer model"))?;
        if str_at(model, "type").as_deref() != Some("WordPiece")
            || str_at(model, "continuing_subword_prefix").as_deref() != Some("##")
        {
            return Err(unsupported(
                "a tokenizer other than WordPiece with ## continuations",
            ));
        }
        let normalizer = json
            .get("normalizer")
            .ok_or_else(|| unsupported("no normalizer"))?;
        let lowercase = normalizer.get("lowercase").and_then(Json::as_bool);
        let strip = normalizer.get("strip_accents");
        let canonical_normalizer = str_at(normalizer, "type").as_deref() == Some("BertNormalizer")
            && normalizer.get("clean_text").and_then(Json::as_bool) == Some(true)
            && normalizer
                .get("handle_chinese_chars")
                .and_then(Json::as_bool)
                == Some(true)
            && lowercase.is_some()
            && strip.is_none_or(|s| s.is_null() || s.as_bool() == lowercase);
        if !canonical_normalizer {
            return Err(unsupported(
                "a normalizer other than BERT's (accents stripped iff lowercased)",
            ));
        }
        let pre = json.get("pre_tokenizer").and_then(|p| str_at(p, "type"));
        if pre.as_deref() != Some("BertPreTokenizer") {
            return Err(unsupported("a pre-tokenizer other than BERT's"));
        }
        let vocab_map = model
            .get("vocab")
            .and_then(Json::as_object)
            .ok_or_else(|| unsupported("no vocabulary"))?;
        let mut tokens: Vec<Option<&str>> = vec![None; vocab_map.len()];
        for (token, id) in vocab_map {
            let slot = id
                .as_u64()
                .and_then(|id| tokens.get_mut(id as usize))
                .ok_or_else(|| unsupported("vocabulary ids are not 0..n"))?;
            if token.contains('\n') || token.is_empty() || slot.replace(token).is_some() {
                return Err(unsupported(
                    "a vocabulary token is empty, repeated or has a newline",
                ));
            }
        }
        let mut vocab = Vec::new();
        for token in &tokens {
            vocab.extend_from_slice(
                token
                    .ok_or_else(|| unsupported("vocabulary ids are not 0..n"))?
                    .as_bytes(),
            );
            vocab.push(b'\n');
        }
        let id_of = |token: &str| -> Result<u32> {
            vocab_map
                .get(token)
                .and_then(Json::as_u64)
                .map(|id| id as u32)
                .ok_or_else(|| unsupported(format!("{token} is not in the vocabulary")))
        };
        // `[CLS] $A [SEP]` and nothing else around a single sequence.
        let post = json
            .get("post_processor")
            .ok_or_else(|| unsupported("no post-processor"))?;
        let (cls, sep) = match str_at(post, "type").as_deref() {
            Some("TemplateProcessing") => {
                let single = post
                    .get("single")
                    .and_then(Json::as_array)
                    .ok_or_else(|| unsupported("no single-sequence template"))?;
                let special = |v: &Json| v.get("SpecialToken").and_then(|s| str_at(s, "id"));
                let is_a = |v: &Json| {
                    v.get("Sequence").and_then(|s| str_at(s, "id")).as_deref() == Some("A")
                };
                match &single[..] {
                    [first, a, last] if is_a(a) => {
                        let (Some(c), Some(s)) = (special(first), special(last)) else {
                            return Err(unsupported("a template other than [CLS] $A [SEP]"));
                        };
                        (id_of(&c)?, id_of(&s)?)
                    }
                    _ => return Err(unsupported("a template other than [CLS] $A [SEP]")),
                }
            }
            Some("BertProcessing") => {
                let name = |key: &str| {
                    post.get(key)
                        .and_then(|v| v.get(0))
                        .and_then(Json::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| unsupported(format!("no {key} token")))
                };
                (id_of(&name("cls")?)?, id_of(&name("sep")?)?)
            }
            _ => return Err(unsupported("a post-processor other than BERT's")),
        };
        let mut specials = Vec::new();
        for added in json
            .get("added_tokens")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let flag = |key: &str| added.get(key).and_then(Json::as_bool).unwrap_or(false);
            let content = str_at(added, "content").unwrap_or_default();
            if !flag("special")
                || flag("normalized")
                || flag("lstrip")
                || flag("rstrip")
                || flag("single_word")
            {
                return Err(unsupported(format!(
                    "added token {content:?} is not a plain special token"
                )));
            }
            let id = id_of(&content)?;
            if added.get("id").and_then(Json::as_u64) != Some(u64::from(id)) {
                return Err(unsupported(format!(
                    "added token {content:?} has another id"
                )));
            }
            specials.push(id);
        }
        let unk = id_of(&str_at(model, "unk_token").unwrap_or_else(|| "[UNK]".into()))?;
        let pad = json
            .get("padding")
            .and_then(|p| p.get("pad_id"))
            .and_then(Json::as_u64)
            .map_or_else(|| id_of("[PAD]"), |id| Ok(id as u32))?;
        let max_tokens = json
            .get("truncation")
            .and_then(|t| t.get("max_length"))
            .and_then(Json::as_u64)
            .map_or(positions, |m| (m as usize).min(positions));
        let spec = WordPiece {
            max_tokens: max_tokens as u32,
            cls,
            sep,
            unk,
            pad,
            specials,
            max_word_chars: model
                .get("max_input_chars_per_word")
                .and_then(Json::as_u64)
                .unwrap_or(100) as u32,
            lowercase: lowercase.unwrap_or(true),
        };
        if spec.max_tokens < 3 {
            return Err(unsupported("a sequence limit under 3 tokens"));
        }
        Ok(CanonicalTokenizer { spec, vocab })
    }

    /// The ids of `text`, `[CLS]` and `[SEP]` included, truncated canonically.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let vocab = Vocab::parse(&self.vocab).ok_or_else(|| {
            EngineError::Tokenizer("the canonical vocabulary is malformed".into())
        })?;
        self.spec.tokenize(text, &vocab).ok_or_else(|| {
            EngineError::Tokenizer("a special token is missing from the vocabulary".into())
        })
    }
}

/// Builds the plan step by step, committing weights as it goes.
pub(crate) struct PlanBuilder {
    pub(crate) plan: DisputePlan,
}

impl PlanBuilder {
    pub(crate) fn weight(&mut self, values: &[f32]) -> Read {
        self.plan
            .weights
            .push(values.iter().flat_map(|v| v.to_le_bytes()).collect());
        Read::Weight(self.plan.weights.len() as u32 - 1)
    }

    /// A weight of raw bytes (a tokenizer's tables).
    pub(crate) fn raw_weight(&mut self, bytes: Vec<u8>) -> Read {
        self.plan.weights.push(bytes);
        Read::Weight(self.plan.weights.len() as u32 - 1)
    }

    /// Pushes a step and returns how later steps read it.
    pub(crate) fn step(&mut self, op: Step, reads: Vec<Read>, output_bytes: usize) -> Read {
        self.plan.steps.push(PlanStep {
            op: op.encode(),
            reads,
            output_bytes: output_bytes as u32,
        });
        Read::Step {
            index: self.plan.steps.len() as u32 - 1,
            bytes: output_bytes as u32,
        }
    }
}

fn tensor(vb: &VarBuilder, dims: &[usize], name: &str) -> Result<Vec<f32>> {
    Ok(vb.get(dims, name)?.flatten_all()?.to_vec1::<f32>()?)
}

impl DisputePlan {
    /// The plan of a BERT embedding model's files (already checked against its
    /// manifest): canonical tokenization, the encoder padded to the tokenizer's sequence
    /// limit, mean pooling and L2 normalization; output `[1, hidden]` f32.
    pub fn compile_bert(files: &VerifiedFiles) -> Result<DisputePlan> {
        let config: Config = serde_json::from_slice(
            files
                .get("config.json")
                .ok_or_else(|| EngineError::InvalidArtifact("config.json missing".into()))?,
        )
        .map_err(|e| EngineError::InvalidArtifact(format!("config.json: {e}")))?;
        let tokenizer = CanonicalTokenizer::from_tokenizer_json(
            files
                .get("tokenizer.json")
                .ok_or_else(|| EngineError::InvalidArtifact("tokenizer.json missing".into()))?,
            config.max_position_embeddings,
        )?;
        let act = match config.hidden_act {
            HiddenAct::Gelu => Unary::Gelu,
            HiddenAct::GeluApproximate => Unary::GeluTanh,
            HiddenAct::Relu => return Err(unsupported("a ReLU encoder")),
        };
        let (h, heads, inter) = (
            config.hidden_size,
            config.num_attention_heads,
            config.intermediate_size,
        );
        if heads == 0 || !h.is_multiple_of(heads) {
            return Err(EngineError::InvalidArtifact(
                "config.json: hidden_size is not a multiple of num_attention_heads".into(),
            ));
        }
        let d = h / heads;
        let p = tokenizer.spec.max_tokens as usize;
        let weights = files
            .get("model.safetensors")
            .ok_or_else(|| EngineError::InvalidArtifact("model.safetensors missing".into()))?;
        let vb =
            VarBuilder::from_buffered_safetensors(weights.to_vec(), CDType::F32, &Device::Cpu)?;
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let eps = (config.layer_norm_eps as f32).to_bits();
        let mut b = PlanBuilder {
            plan: DisputePlan::default(),
        };
        let rows = p * h * 4;

        // Tokens, then embeddings.
        // The tokenizer step is proven whole: the vocabulary and the longest text must fit
        // the referee's operand cap, or a dispute at step 0 could not be settled.
        let longest_input = DEFAULT_MAX_TEXT_BYTES as usize + 8;
        if tokenizer.vocab.len() + longest_input > inferchain_referee::MAX_OPERAND_BYTES {
            return Err(unsupported(format!(
                "a vocabulary of {} bytes with texts of {DEFAULT_MAX_TEXT_BYTES} bytes is over \
                 the referee's {}-byte operand cap",
                tokenizer.vocab.len(),
                inferchain_referee::MAX_OPERAND_BYTES
            )));
        }
        b.plan.weights.push(tokenizer.vocab.clone());
        let vocab = Read::Weight(0);
        let ids = b.step(
            Step::WordPiece(tokenizer.spec.clone()),
            vec![Read::Input, vocab],
            4 * (1 + p),
        );
        let e = vb.pp("embeddings");
        let word = b.weight(&tensor(
            &e.pp("word_embeddings"),
            &[config.vocab_size, h],
            "weight",
        )?);
        let positions = tensor(
            &e.pp("position_embeddings"),
            &[config.max_position_embeddings, h],
            "weight",
        )?;
        let position = b.weight(&positions[..p * h]);
        let types = tensor(
            &e.pp("token_type_embeddings"),
            &[config.type_vocab_size, h],
            "weight",
        )?;
        let token_type = b.weight(&types[..h]);
        let embedded = b.step(
            Step::Embed {
                tokens: p as u32,
                hidden: h as u32,
            },
            vec![ids, word, position, token_type],
            rows,
        );
        let norm = |b: &mut PlanBuilder, vb: VarBuilder, x: Read| -> Result<Read> {
            let scale = b.weight(&tensor(&vb, &[h], "weight")?);
            let bias = b.weight(&tensor(&vb, &[h], "bias")?);
            Ok(b.step(
                Step::LayerNormRows {
                    rows: p as u32,
                    cols: h as u32,
                    eps,
                },
                vec![x, scale, bias],
                rows,
            ))
        };
        let linear =
            |b: &mut PlanBuilder, vb: VarBuilder, x: Read, k: usize, n: usize| -> Result<Read> {
                // The stored weight is `n × k`: the step's Bᵀ as it is.
                let w = b.weight(&tensor(&vb, &[n, k], "weight")?);
                let bias = b.weight(&tensor(&vb, &[n], "bias")?);
                Ok(b.step(
                    Step::GemmBt {
                        m: p as u32,
                        n: n as u32,
                        k: k as u32,
                        bias: true,
                    },
                    vec![x, w, bias],
                    p * n * 4,
                ))
            };
        let mut x = norm(&mut b, e.pp("LayerNorm"), embedded)?;

        let split = |perm: Vec<u32>| Step::Permute {
            dims: vec![p as u32, heads as u32, d as u32],
            perm,
        };
        let divisor = inferchain_kernels::lanes::sqrt(d as f32).to_bits();
        for layer in 0..config.num_hidden_layers {
            let vl = vb.pp("encoder").pp(format!("layer.{layer}"));
            let va = vl.pp("attention");
            let vs = va.pp("self");
            let q = linear(&mut b, vs.pp("query"), x, h, h)?;
            let k = linear(&mut b, vs.pp("key"), x, h, h)?;
            let v = linear(&mut b, vs.pp("value"), x, h, h)?;
            // Per head: Q_h [p, d], K_h [p, d] (K_hᵀ's transpose), V_hᵀ [d, p].
            let qh = b.step(split(vec![1, 0, 2]), vec![q], rows);
            let kh = b.step(split(vec![1, 0, 2]), vec![k], rows);
            let vt = b.step(split(vec![1, 2, 0]), vec![v], rows);
            let scores = b.step(
                Step::BatchGemmBt {
                    batch: heads as u32,
                    m: p as u32,
                    n: p as u32,
                    k: d as u32,
                },
                vec![qh, kh],
                heads * p * p * 4,
            );
            let probs = b.step(
                Step::MaskedSoftmax {
                    rows: (heads * p) as u32,
                    cols: p as u32,
                    divisor,
                },
                vec![scores, ids],
                heads * p * p * 4,
            );
            let context = b.step(
                Step::BatchGemmBt {
                    batch: heads as u32,
                    m: p as u32,
                    n: d as u32,
                    k: p as u32,
                },
                vec![probs, vt],
                rows,
            );
            let merged = b.step(
                Step::Permute {
                    dims: vec![heads as u32, p as u32, d as u32],
                    perm: vec![1, 0, 2],
                },
                vec![context],
                rows,
            );
            let attended = linear(&mut b, va.pp("output").pp("dense"), merged, h, h)?;
            let residual = b.step(Step::Binary(Binary::Add), vec![attended, x], rows);
            let hidden = norm(&mut b, va.pp("output").pp("LayerNorm"), residual)?;
            let widened = linear(&mut b, vl.pp("intermediate").pp("dense"), hidden, h, inter)?;
            let activated = b.step(
                Step::Kernel {
                    template: Call::Unary {
                        op: act,
                        x: Vec::new(),
                    }
                    .encode(),
                },
                vec![widened],
                p * inter * 4,
            );
            let narrowed = linear(&mut b, vl.pp("output").pp("dense"), activated, inter, h)?;
            let residual = b.step(Step::Binary(Binary::Add), vec![narrowed, hidden], rows);
            x = norm(&mut b, vl.pp("output").pp("LayerNorm"), residual)?;
        }
        let pooled = b.step(
            Step::MeanRows {
                tokens: p as u32,
                hidden: h as u32,
            },
            vec![x, ids],
            h * 4,
        );
        let normalized = b.step(Step::L2Normalize, vec![pooled], h * 4);
        let shape = vec![1, h as u32];
        let payload = inferchain_primitives::io::Payload::Tensors(vec![
            inferchain_primitives::io::Tensor::from_f32(shape.clone(), &vec![0.0; h]),
        ])
        .encode()
        .len();
        b.step(Step::Output { shape }, vec![normalized], payload);
        b.plan.check_refereeable()?;
        Ok(b.plan)
    }
}
