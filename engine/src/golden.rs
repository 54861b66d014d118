//! Golden output hashes: the output hash of every model under `models/`, of
//! all-MiniLM-L6-v2, and of every ONNX backend conformance case the engine runs, on fixed
//! inputs. `engine/tests/golden-hashes.txt` commits them for the current numerics
//! version: a kernel or dependency change that moves one bit fails the tests unless
//! `NUMERICS_VERSION` is bumped on purpose; the determinism matrix checks that every CPU,
//! thread count and the wasm reference give these same hashes (docs/DETERMINISM.md).
//!
//! A hash is blake2-256 of the SCALE-encoded output payload (what the chain records),
//! concatenated over a conformance case's data sets.
//!
//! A model case also reports the cost the engine estimates for it at the input spec it
//! would be registered with ([`Engine::estimate_cost`]): a registered model's cost is
//! consensus data (governance registers it, every executor checks its runs against it),
//! so the matrix checks it is the same on every CPU too.

use crate::{
    conversion,
    error::{EngineError, Result},
    onnx::OnnxModel,
    store::ModelStore,
    Engine, LoadedModel,
};
use candle_core::Tensor as CTensor;
use candle_onnx::onnx::TensorProto;
use codec::Encode;
use inferchain_primitives::{
    io::{Payload, Tensor},
    merkle,
    model::ModelCost,
};
use prost::Message;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

/// The conformance folders of the onnx wheel's backend test data.
pub const CONFORMANCE_FOLDERS: [&str; 3] = ["pytorch-converted", "pytorch-operator", "simple"];

/// The prompt the tiny-llm case continues, and how far.
pub const LLM_PROMPT: &str = "ROMEO.\nBut soft, what light";
pub const LLM_NEW_TOKENS: usize = 12;

/// The text the MiniLM case embeds.
pub const MINILM_TEXT: &str = "Verifiable inference: anyone can re-run this on their own CPU.";

/// One case: a name (`model/<name>` or `onnx/<folder>/<case>`) and what to run.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    /// An ONNX file with one fixed input.
    Onnx { path: PathBuf, input: Vec<Tensor> },
    /// A BERT embedding model folder and a text.
    Bert { dir: PathBuf, text: String },
    /// A conformance case folder (`model.onnx`, `test_data_set_*/input_*.pb`).
    Conformance { dir: PathBuf },
    /// A language model folder, a prompt and `max_new_tokens`: the hash covers the
    /// output payload (token ids and text) and the hash of every logit row the tokens
    /// were chosen from.
    Llm {
        dir: PathBuf,
        prompt: String,
        max_new_tokens: usize,
    },
}

/// What a case gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The output hash, `0x…`.
    Hash(String),
    /// The engine refuses the case by name (an operator or dtype it does not support).
    Unsupported(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Hash(h) => f.write_str(h),
            Outcome::Unsupported(_) => f.write_str("unsupported"),
        }
    }
}

/// The fixed input of `models/tiny-cnn`: f32 [1, 3, 16, 16], `((i * 37) mod 101) / 50 - 1`.
pub fn tiny_cnn_input() -> Tensor {
    let values: Vec<f32> = (0..3 * 16 * 16)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    Tensor::from_f32(vec![1, 3, 16, 16], &values)
}

/// Every case: the models under `models` (tiny-mlp, tiny-cnn), MiniLM from `minilm` and
/// the conformance cases under `conformance`, when given; sorted by name.
pub fn cases(models: &Path, minilm: Option<&Path>, conformance: Option<&Path>) -> Vec<Case> {
    let mut cases = vec![
        Case {
            name: "model/tiny-mlp".into(),
            source: Source::Onnx {
                path: models.join("tiny-mlp/model.onnx"),
                input: vec![Tensor::from_f32(vec![1, 4], &[0.5, -1.0, 2.0, 0.25])],
            },
        },
        Case {
            name: "model/tiny-cnn".into(),
            source: Source::Onnx {
                path: models.join("tiny-cnn/model.onnx"),
                input: vec![tiny_cnn_input()],
            },
        },
        Case {
            name: "model/tiny-llm".into(),
            source: Source::Llm {
                dir: models.join("tiny-llm"),
                prompt: LLM_PROMPT.into(),
                max_new_tokens: LLM_NEW_TOKENS,
            },
        },
    ];
    if let Some(dir) = minilm {
        cases.push(Case {
            name: "model/all-MiniLM-L6-v2".into(),
            source: Source::Bert {
                dir: dir.to_path_buf(),
                text: MINILM_TEXT.into(),
            },
        });
    }
    if let Some(root) = conformance {
        for folder in CONFORMANCE_FOLDERS {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(folder))
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.join("model.onnx").is_file())
                        .collect()
                })
                .unwrap_or_default();
            dirs.sort();
            for dir in dirs {
                let case = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                cases.push(Case {
                    name: format!("onnx/{folder}/{case}"),
                    source: Source::Conformance { dir },
                });
            }
        }
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// Runs one case; an error is a failure (not a named refusal).
pub fn run(case: &Case) -> Result<Outcome> {
    run_with(case, None, &mut None)
}

/// An ONNX case's execution trace: the Merkle root over the leaf hash of every value its
/// plan produced (all data sets, in order), and how many there were.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub root: merkle::Hash,
    pub steps: usize,
}

impl std::fmt::Display for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "trace:0x{}/{}", hex::encode(self.root), self.steps)
    }
}

/// [`run`], and for ONNX cases the execution trace (BERT models have no plan: `None`);
/// for model cases (not conformance cases), the cost the engine estimates at the input
/// spec the model would be registered with.
pub fn run_traced(case: &Case) -> Result<(Outcome, Option<Trace>, Option<ModelCost>)> {
    let (mut leaves, mut cost) = (Vec::new(), None);
    let outcome = run_with(case, Some(&mut leaves), &mut cost)?;
    let trace = match (&case.source, &outcome) {
        (Source::Bert { .. } | Source::Llm { .. }, _) | (_, Outcome::Unsupported(_)) => None,
        _ => Some(Trace {
            root: merkle::root(&leaves),
            steps: leaves.len(),
        }),
    };
    Ok((outcome, trace, cost))
}

/// A cost as the golden runner prints it: `cost:<flops>/<peak memory bytes>`.
pub fn cost_token(cost: &ModelCost) -> String {
    format!("cost:{}/{}", cost.flops, cost.peak_memory_bytes)
}

fn run_with(
    case: &Case,
    mut trace: Option<&mut Vec<merkle::Hash>>,
    cost: &mut Option<ModelCost>,
) -> Result<Outcome> {
    let mut bytes = Vec::new();
    match &case.source {
        Source::Onnx { path, input } => {
            let model = OnnxModel::from_bytes(&read(path)?)?;
            bytes.extend(Payload::Tensors(model.run_traced(input, trace)?).encode());
            *cost = Some(model.estimate_cost(&model.io_specs()?.0)?);
        }
        Source::Bert { dir, text } => {
            let out = with_temp_store(case, |store| {
                let id = store.import(dir, None, &mut |_| {})?.id();
                let engine = Engine::new(store.clone(), 1 << 30);
                let model = engine.load(&id, &mut |_| {})?;
                *cost = Some(model.estimate_cost(&model.registration_specs()?.0, None)?);
                engine.run(&id, &Payload::Text(text.as_bytes().to_vec()), None)
            });
            bytes.extend(out?.output.encode());
        }
        Source::Llm {
            dir,
            prompt,
            max_new_tokens,
        } => {
            let files = with_temp_store(case, |store| {
                let manifest = store.import(dir, None, &mut |_| {})?;
                store.read_verified(&manifest.id(), &mut |_| {})
            });
            // Loaded as the engine loads it, so the cost is the engine's own estimate at
            // the registration spec (the same call as for the other kinds).
            let loaded = LoadedModel::Llm(Box::new(crate::llm::LlmModel::load(&mut files?)?));
            *cost = Some(loaded.estimate_cost(&loaded.registration_specs()?.0, None)?);
            let LoadedModel::Llm(model) = loaded else {
                return Err(EngineError::InvalidArtifact(
                    "the LLM case did not load as an LLM".into(),
                ));
            };
            let ids = model.tokenize(prompt)?;
            let generation = model.generate(&ids, *max_new_tokens, &mut |_| {})?;
            let text = model.decode(&generation.tokens)?;
            bytes.extend(
                Payload::Generation {
                    tokens: generation.tokens,
                    text: text.into_bytes(),
                }
                .encode(),
            );
            bytes.extend(generation.logits_hash);
        }
        Source::Conformance { dir } => {
            let model = match OnnxModel::from_bytes(&read(&dir.join("model.onnx"))?) {
                Ok(m) => m,
                Err(
                    e @ (EngineError::UnsupportedOp { .. }
                    | EngineError::UnsupportedOperator { .. }
                    | EngineError::UnsupportedOpset { .. }
                    | EngineError::NondeterministicOp { .. }),
                ) => return Ok(Outcome::Unsupported(e.to_string())),
                Err(e) => return Err(e),
            };
            let (input_names, output_names) = (model.input_names(), model.output_names());
            let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| EngineError::io(dir, e))?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            sets.sort();
            for set in sets {
                let mut inputs = HashMap::new();
                for (i, path) in numbered(&set, "input_").iter().enumerate() {
                    let (name, t) = match read_tensor(path) {
                        Ok(x) => x,
                        Err(e) => return Ok(Outcome::Unsupported(e)),
                    };
                    let name = if input_names.contains(&name) {
                        name
                    } else {
                        input_names.get(i).cloned().unwrap_or(name)
                    };
                    inputs.insert(name, t);
                }
                let mut outputs = match model.run_named_traced(inputs, trace.as_deref_mut()) {
                    Ok(o) => o,
                    Err(
                        e @ (EngineError::UnsupportedOp { .. } | EngineError::UnsupportedDType(_)),
                    ) => return Ok(Outcome::Unsupported(e.to_string())),
                    Err(e) => return Err(e),
                };
                let mut tensors = Vec::new();
                for name in &output_names {
                    let t = outputs
                        .remove(name)
                        .ok_or_else(|| EngineError::MissingOutput(name.clone()))?;
                    match conversion::from_candle(&t) {
                        Ok(t) => tensors.push(t),
                        Err(e @ EngineError::UnsupportedDType(_)) => {
                            return Ok(Outcome::Unsupported(e.to_string()))
                        }
                        Err(e) => return Err(e),
                    }
                }
                bytes.extend(Payload::Tensors(tensors).encode());
            }
        }
    }
    Ok(Outcome::Hash(format!(
        "0x{}",
        hex::encode(inferchain_primitives::blake2_256(&bytes))
    )))
}

/// Runs `f` on a fresh store of its own (removed afterwards).
fn with_temp_store<T>(case: &Case, f: impl FnOnce(&ModelStore) -> Result<T>) -> Result<T> {
    let root = std::env::temp_dir().join(format!(
        "inferchain-golden-{}-{}",
        std::process::id(),
        case.name.replace('/', "-")
    ));
    let _ = std::fs::remove_dir_all(&root);
    let out = ModelStore::open(&root).and_then(|store| f(&store));
    let _ = std::fs::remove_dir_all(&root);
    out
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| EngineError::io(path, e))
}

/// A conformance data set's tensor file, as candle reads it.
pub fn read_tensor(path: &Path) -> std::result::Result<(String, CTensor), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let proto = TensorProto::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
    let dims: Vec<usize> = proto.dims.iter().map(|d| *d as usize).collect();
    let t = candle_onnx::eval::get_tensor(&proto, &proto.name).map_err(|e| e.to_string())?;
    // get_tensor flattens int32 data; put the declared shape back.
    let t = if t.dims() != dims.as_slice() {
        t.reshape(dims).map_err(|e| e.to_string())?
    } else {
        t
    };
    Ok((proto.name, t))
}

/// `prefix0.pb`, `prefix1.pb`, … in `dir`, in numeric order.
pub fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name
                        .strip_prefix(prefix)?
                        .strip_suffix(".pb")?
                        .parse()
                        .ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// The committed golden file: the numerics version it was made under and a hash (or
/// `unsupported`) per case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoldenFile {
    pub numerics: u32,
    pub entries: Vec<(String, String)>,
}

impl GoldenFile {
    pub fn parse(text: &str) -> Option<GoldenFile> {
        let mut numerics = None;
        let mut entries = Vec::new();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("# numerics ") {
                numerics = v.trim().parse().ok();
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let (name, hash) = line.split_once(' ')?;
                entries.push((name.to_string(), hash.trim().to_string()));
            }
        }
        Some(GoldenFile {
            numerics: numerics?,
            entries,
        })
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "# Golden output hashes of inferchain-engine (engine/src/golden.rs).\n\
             # A change that moves one bit must bump NUMERICS_VERSION; then regenerate with\n\
             # INFERCHAIN_BLESS=1 cargo test --release --workspace --test golden\n\
             # numerics {}\n",
            self.numerics
        );
        for (name, hash) in &self.entries {
            out.push_str(&format!("{name} {hash}\n"));
        }
        out
    }
}

/// Where scripts/setup.sh puts MiniLM and the conformance data.
pub fn default_data() -> (PathBuf, PathBuf) {
    let cache = std::env::var_os("INFERCHAIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/inferchain")
        });
    (
        cache.join("models/all-MiniLM-L6-v2"),
        cache.join("onnx-backend-data"),
    )
}
