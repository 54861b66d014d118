//! A language model in the dispute referee's step language: the decoder over a padded
//! sequence of token ids, step for step what `layers.rs` computes, ending in the greedy
//! choice per row. This is the body of a generation's dispute plan (docs/LLM.md: the
//! teacher-forced pass over the claimed output); the tokenizer, the claimed-output read
//! and the greedy check around it come with the game's `Read::Output`.
//!
//! Rows are positions: row `t` of every step is position `t`, and causal attention keeps
//! a padded row from touching any row before it, so the rows of a real sequence carry the
//! engine's bits whatever follows them.

use super::{tokenizer::canonical_bpe, weights, LlmConfig};
use crate::{
    bert_plan::PlanBuilder,
    dispute_plan::DisputePlan,
    error::{EngineError, Result},
    store::VerifiedFiles,
};
use candle_nn::VarBuilder;
use codec::Encode;
use inferchain_kernels::{call::Call, lanes, Unary};
use inferchain_primitives::dispute::Read;
use inferchain_primitives::io::IoSpec;
use inferchain_referee::{Binary, Step};

fn tensor(vb: &VarBuilder, dims: &[usize], name: &str) -> Result<Vec<f32>> {
    Ok(vb.get(dims, name)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Where the decoder's steps are: the last hidden state's logits and the greedy choices.
pub struct DecoderSteps {
    pub logits: Read,
    pub choices: Read,
}

/// Pushes the decoder over `rows` ids (u32 words `offset..` of `ids`) to `b`.
pub(crate) fn push_decoder(
    b: &mut PlanBuilder,
    vb: &VarBuilder,
    c: &LlmConfig,
    (ids, offset): (Read, u32),
    rows: usize,
) -> Result<DecoderSteps> {
    let (h, d, heads, kvh) = (c.hidden_size, c.head_dim, c.num_heads, c.num_kv_heads);
    let r = rows as u32;
    let vbm = vb.pp("model");
    let table = tensor(&vbm.pp("embed_tokens"), &[c.vocab_size, h], "weight")?;
    let table_read = b.weight(&table);
    let mut x = b.step(
        Step::GatherRows {
            rows: r,
            hidden: h as u32,
            offset,
        },
        vec![ids, table_read],
        rows * h * 4,
    );
    let eps = c.rms_norm_eps.to_bits();
    let norm = |b: &mut PlanBuilder, vb: VarBuilder, x: Read| -> Result<Read> {
        let w = b.weight(&tensor(&vb, &[h], "weight")?);
        Ok(b.step(
            Step::RmsNormRows {
                rows: r,
                cols: h as u32,
                eps,
            },
            vec![x, w],
            rows * h * 4,
        ))
    };
    let linear =
        |b: &mut PlanBuilder, vb: VarBuilder, x: Read, k: usize, n: usize| -> Result<Read> {
            // The stored weight is `n × k`: the step's Bᵀ as it is.
            let w = b.weight(&tensor(&vb, &[n, k], "weight")?);
            let mut reads = vec![x, w];
            let bias = vb.contains_tensor("bias");
            if bias {
                reads.push(b.weight(&tensor(&vb, &[n], "bias")?));
            }
            Ok(b.step(
                Step::GemmBt {
                    m: r,
                    n: n as u32,
                    k: k as u32,
                    bias,
                },
                reads,
                rows * n * 4,
            ))
        };
    let rope = |b: &mut PlanBuilder, x: Read, heads: usize| {
        b.step(
            Step::RopeRows {
                rows: r,
                heads: heads as u32,
                head_dim: d as u32,
                theta: c.rope_theta.to_bits(),
            },
            vec![x],
            rows * heads * d * 4,
        )
    };
    // `[rows, kv_heads, d]` → `[kv_heads, rows, d]`: one head's rows contiguous.
    let by_head = |b: &mut PlanBuilder, x: Read| {
        b.step(
            Step::Permute {
                dims: vec![r, kvh as u32, d as u32],
                perm: vec![1, 0, 2],
            },
            vec![x],
            rows * kvh * d * 4,
        )
    };
    let scale = (1.0 / lanes::sqrt(d as f32)).to_bits();
    for layer in 0..c.num_layers {
        let vl = vbm.pp(format!("layers.{layer}"));
        let va = vl.pp("self_attn");
        let normed = norm(b, vl.pp("input_layernorm"), x)?;
        let q = linear(b, va.pp("q_proj"), normed, h, heads * d)?;
        let k = linear(b, va.pp("k_proj"), normed, h, kvh * d)?;
        let v = linear(b, va.pp("v_proj"), normed, h, kvh * d)?;
        let q = rope(b, q, heads);
        let k = rope(b, k, kvh);
        let (k, v) = (by_head(b, k), by_head(b, v));
        let context = b.step(
            Step::CausalAttention {
                rows: r,
                heads: heads as u32,
                kv_heads: kvh as u32,
                head_dim: d as u32,
                scale,
            },
            vec![q, k, v],
            rows * heads * d * 4,
        );
        let attended = linear(b, va.pp("o_proj"), context, heads * d, h)?;
        x = b.step(Step::Binary(Binary::Add), vec![x, attended], rows * h * 4);
        let vm = vl.pp("mlp");
        let normed = norm(b, vl.pp("post_attention_layernorm"), x)?;
        let gate = linear(b, vm.pp("gate_proj"), normed, h, c.intermediate_size)?;
        let up = linear(b, vm.pp("up_proj"), normed, h, c.intermediate_size)?;
        let activated = b.step(
            Step::Kernel {
                template: Call::Unary {
                    op: Unary::Silu,
                    x: Vec::new(),
                }
                .encode(),
            },
            vec![gate],
            rows * c.intermediate_size * 4,
        );
        let product = b.step(
            Step::Binary(Binary::Mul),
            vec![activated, up],
            rows * c.intermediate_size * 4,
        );
        let down = linear(b, vm.pp("down_proj"), product, c.intermediate_size, h)?;
        x = b.step(Step::Binary(Binary::Add), vec![x, down], rows * h * 4);
    }
    let x = norm(b, vbm.pp("norm"), x)?;
    let logits = if !c.tie_word_embeddings || vb.contains_tensor("lm_head.weight") {
        linear(b, vb.pp("lm_head"), x, h, c.vocab_size)?
    } else {
        b.step(
            Step::GemmBt {
                m: r,
                n: c.vocab_size as u32,
                k: h as u32,
                bias: false,
            },
            vec![x, table_read],
            rows * c.vocab_size * 4,
        )
    };
    let choices = b.step(
        Step::ArgmaxRows {
            rows: r,
            cols: c.vocab_size as u32,
        },
        vec![logits],
        rows * 4,
    );
    Ok(DecoderSteps { logits, choices })
}

/// The decoder alone as a plan whose input is the ids (`Payload::Tensors`, one i32
/// tensor of `rows` ids): what the tests and benchmarks check the steps against the
/// engine with. Refused if a step is too large for the referee whole and by chunk.
pub fn decoder_plan(files: &VerifiedFiles, rows: usize) -> Result<(DisputePlan, DecoderSteps)> {
    let config = config(files)?;
    if rows == 0 || rows > config.max_positions {
        return Err(EngineError::TooManyPositions {
            prompt: rows,
            new: 0,
            max: config.max_positions,
        });
    }
    let vb = weights(files)?;
    let mut b = PlanBuilder {
        plan: DisputePlan::default(),
    };
    let ids = b.step(Step::InputTensor { index: 0 }, vec![Read::Input], rows * 4);
    let steps = push_decoder(&mut b, &vb, &config, (ids, 0), rows)?;
    b.plan.check_refereeable()?;
    Ok((b.plan, steps))
}

fn config(files: &VerifiedFiles) -> Result<LlmConfig> {
    LlmConfig::parse(
        files
            .get("config.json")
            .ok_or_else(|| EngineError::InvalidArtifact("config.json missing".into()))?,
        files.get("generation_config.json"),
    )
}

impl DisputePlan {
    /// The plan of a language model's generation (docs/LLM.md): the teacher-forced pass
    /// over the posted output, padded to the model's positions — the prompt tokenized by
    /// the canonical tokenizer and the claimed ids (`TeacherForced`), the decoder, the
    /// argmax of every position, and `GreedyCheck`, which ends in the posted output when
    /// it is the greedy generation and in a witness of its first fault otherwise. A model
    /// whose tokenizer is not the canonical one has no plan.
    pub fn compile_llm(files: &VerifiedFiles) -> Result<DisputePlan> {
        let config = config(files)?;
        let tokenizer = files
            .get("tokenizer.json")
            .ok_or_else(|| EngineError::InvalidArtifact("tokenizer.json missing".into()))?;
        let bpe = canonical_bpe(tokenizer).map_err(EngineError::NoDisputePlan)?;
        if bpe.tables().prefix.is_empty() {
            // An empty prompt would have no token to start from: the engine could not
            // answer it and the plan could not trace it.
            return Err(EngineError::NoDisputePlan(
                "the tokenizer puts no token before a prompt (an empty prompt has none)".into(),
            ));
        }
        let positions = config.max_positions;
        let vb = weights(files)?;
        let mut b = PlanBuilder {
            plan: DisputePlan::default(),
        };
        let tables_bytes = bpe.tables().encode();
        let table_len = tables_bytes.len();
        let tables = b.raw_weight(tables_bytes);
        let p = positions as u32;
        let sequence = b.step(
            Step::TeacherForced {
                positions: p,
                vocab: config.vocab_size as u32,
            },
            vec![Read::Input, Read::Output, tables],
            (2 + positions) * 4,
        );
        let steps = push_decoder(&mut b, &vb, &config, (sequence, 2), positions)?;
        // The longest generation payload: every position a token, each decoding to the
        // longest piece (three bytes a byte when cut UTF-8 is replaced).
        let longest_piece = bpe.tables().tokens.iter().map(Vec::len).max().unwrap_or(1) as u32;
        let output_bytes = crate::spec::max_encoded_bytes(&IoSpec::Generation {
            max_new_tokens: p,
            max_text_bytes: p.saturating_mul(longest_piece.max(1)).saturating_mul(3),
        });
        // Both ends are refereed whole: their operands (the tables, the sequence and the
        // choices, a prompt of at most a byte per position, the longest output) must fit
        // the referee's cap, or a game reaching them could convict nobody.
        let operands =
            table_len as u64 + 8 * (positions as u64 + 1) + 4 * positions as u64 + output_bytes;
        if operands > inferchain_referee::MAX_OPERAND_BYTES as u64 {
            return Err(EngineError::NoDisputePlan(format!(
                "its greedy check would read {operands} bytes, over the referee's {}",
                inferchain_referee::MAX_OPERAND_BYTES
            )));
        }
        b.step(
            Step::GreedyCheck {
                positions: p,
                stop_tokens: config.stop_tokens.clone(),
            },
            vec![sequence, steps.choices, Read::Input, Read::Output, tables],
            output_bytes.min(u64::from(u32::MAX)) as usize,
        );
        b.plan.check_refereeable()?;
        Ok(b.plan)
    }
}
