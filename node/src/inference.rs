//! The node's side of inference: `inferchain-engine` over the node's model store, plugged
//! into off-chain workers as an `InferenceExt` extension (fetching missing models from
//! their registered mirror, running them in worker processes under limits); the dev
//! executor keys; the test-only executor fault.

use codec::Encode;
use inferchain_engine::{
    fetch::FetchLimits,
    host_runner::{FetchingRunner, LocalRunner},
    worker::WorkerLimits,
    worker_pool::{WorkerCommand, WorkerPool},
    Engine, EngineError, ModelStore, DEFAULT_CACHE_BYTES,
};
use inferchain_primitives::{host::InferenceRunner, ModelId};
use pallet_inference::offchain::{Fault, FAULT_KEY, KEY_TYPE, NODE_STARTED_KEY};
use sc_service::{ChainType, Configuration, Error as ServiceError};
use sp_core::offchain::{OffchainStorage, STORAGE_PREFIX};
use sp_keystore::KeystorePtr;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

/// Log target for everything the node's inference side says.
const LOG_TARGET: &str = "inferchain::inference";

/// What the node's executors need: where models live, how they run, and, in tests, how
/// to misbehave.
pub struct ExecutorOptions {
    pub model_store: PathBuf,
    pub fault: Option<Fault>,
    pub isolation: Isolation,
    pub fetch: FetchLimits,
}

/// Where models run.
#[derive(Clone, Debug)]
pub enum Isolation {
    /// In up to `max_workers` worker processes (this binary's `inference-worker`), each
    /// under `limits`.
    Workers {
        max_workers: usize,
        limits: WorkerLimits,
    },
    /// Inside the node, with no limits (`--inference-workers 0`).
    InProcess,
}

impl From<&crate::cli::InferenceLimitArgs> for Isolation {
    fn from(args: &crate::cli::InferenceLimitArgs) -> Self {
        if args.inference_workers == 0 {
            return Isolation::InProcess;
        }
        Isolation::Workers {
            max_workers: args.inference_workers,
            limits: WorkerLimits {
                memory_bytes: args.inference_memory_mib.saturating_mul(1 << 20),
                // Retired at three quarters of its cap, before it fails a request.
                recycle_bytes: args.inference_memory_mib.saturating_mul(3 << 18),
                cpu_secs: args.inference_cpu_secs,
                deadline: std::time::Duration::from_millis(args.inference_deadline_ms),
            },
        }
    }
}

/// The runner the host function calls: models fetched into the store at `store` when
/// missing or corrupt, then run as `isolation` says.
pub fn engine_runner(
    store: PathBuf,
    isolation: &Isolation,
    fetch: FetchLimits,
) -> Result<Arc<dyn InferenceRunner>, EngineError> {
    let store = ModelStore::open(store)?;
    log::info!(target: LOG_TARGET, "model store: {}", store.root().display());
    Ok(match isolation {
        Isolation::InProcess => {
            log::warn!(target: LOG_TARGET, "models run inside the node, with no memory, CPU or time limit (--inference-workers 0)");
            let engine = Engine::new(store.clone(), DEFAULT_CACHE_BYTES);
            Arc::new(FetchingRunner::new(store, fetch, LocalRunner(engine)))
        }
        Isolation::Workers {
            max_workers,
            limits,
        } => {
            // This very binary, even if an upgrade replaced the file on disk since.
            let program = Some(PathBuf::from("/proc/self/exe"))
                .filter(|p| p.exists())
                .map_or_else(std::env::current_exe, Ok)
                .map_err(|e| EngineError::Io {
                    path: "<the node's own binary>".into(),
                    source: e,
                })?;
            let pool = WorkerPool::new(
                WorkerCommand {
                    program,
                    args: vec!["inference-worker".into()],
                },
                store.root().to_path_buf(),
                limits.clone(),
                *max_workers,
            );
            log::info!(
                target: LOG_TARGET,
                "models run in up to {max_workers} worker processes, each capped at {} MiB, {} CPU-seconds and {:?} per run",
                limits.memory_bytes >> 20,
                limits.cpu_secs,
                limits.deadline
            );
            // What the chain requires of executors (this runtime's constant; an upgrade
            // may change it): a worker capped below it will hand such requests back.
            let required = inferchain_runtime::configs::MaxModelCost::get();
            if limits.memory_bytes < required.peak_memory_bytes {
                log::warn!(
                    target: LOG_TARGET,
                    "the chain admits models needing {} MiB at their peak, over this node's {} MiB worker cap: raise --inference-memory-mib, or requests for them will be handed back",
                    required.peak_memory_bytes >> 20,
                    limits.memory_bytes >> 20
                );
            }
            let runner = Arc::new(FetchingRunner::new(store, fetch, pool));
            // Start one worker now (warm for the first request) and say what limits it
            // could set on itself.
            let probe = runner.clone();
            std::thread::spawn(move || match probe.inner().status() {
                Ok(status) => {
                    if status.memory_limit.is_none()
                        || !status.network_denied
                        || !status.files_confined
                    {
                        log::warn!(target: LOG_TARGET, "inference worker {} runs with fewer limits than asked: memory cap {:?}, network denied: {}, files confined to the store: {} (see its stderr above)", status.pid, status.memory_limit, status.network_denied, status.files_confined);
                    } else {
                        log::info!(target: LOG_TARGET, "inference worker {} is up: memory capped, network denied, files confined to the store", status.pid);
                    }
                }
                Err(e) => {
                    log::error!(target: LOG_TARGET, "the first inference worker did not answer ({e:?}): requests will be handed back until one does")
                }
            });
            runner
        }
    })
}

/// A genesis model shipped in the repository's `models/` and carried by the node: its
/// name, its files (name, bytes) and its id.
type ShippedModel = (
    &'static str,
    &'static [(&'static str, &'static [u8])],
    ModelId,
);

/// The genesis models shipped in the repository's `models/`, carried by the node.
const SHIPPED_MODELS: [ShippedModel; 3] = [
    (
        "tiny-mlp",
        &[(
            "model.onnx",
            include_bytes!("../../models/tiny-mlp/model.onnx"),
        )],
        inferchain_runtime::dev_models::TINY_MLP,
    ),
    (
        "wide-mlp",
        &[(
            "model.onnx",
            include_bytes!("../../models/wide-mlp/model.onnx"),
        )],
        inferchain_runtime::dev_models::WIDE_MLP,
    ),
    (
        "tiny-llm",
        &[
            (
                "config.json",
                include_bytes!("../../models/tiny-llm/config.json"),
            ),
            (
                "generation_config.json",
                include_bytes!("../../models/tiny-llm/generation_config.json"),
            ),
            (
                "model.safetensors",
                include_bytes!("../../models/tiny-llm/model.safetensors"),
            ),
            (
                "tokenizer.json",
                include_bytes!("../../models/tiny-llm/tokenizer.json"),
            ),
        ],
        inferchain_runtime::dev_models::TINY_LLM,
    ),
];

/// On a dev or local chain, puts every genesis model missing from the store at
/// `store_root` there: the shipped ONNX models from the node's own copy, MiniLM from
/// where `scripts/setup.sh` fetches it (`$INFERCHAIN_CACHE`, else ~/.cache/inferchain).
/// So a node started with no flags serves the genesis models; one it cannot provide is
/// named in the log with what to do. Never on a live chain.
pub fn provide_genesis_models(config: &Configuration, store_root: &Path) {
    if !matches!(
        config.chain_spec.chain_type(),
        ChainType::Development | ChainType::Local
    ) {
        return;
    }
    let store = match ModelStore::open(store_root) {
        Ok(store) => store,
        Err(e) => {
            log::error!(target: LOG_TARGET, "model store {}: {e}", store_root.display());
            return;
        }
    };
    let import = |name: &str, src: &Path, id: &ModelId| match store.import(src, None, &mut |_| {}) {
        Ok(manifest) if manifest.id() == *id => {
            log::info!(target: LOG_TARGET, "genesis model {name} ({id:?}) imported into the model store");
        }
        Ok(manifest) => log::error!(
            target: LOG_TARGET,
            "{} is not genesis model {name}: its id is {:?}, not {id:?}",
            src.display(),
            manifest.id()
        ),
        Err(e) => {
            log::error!(target: LOG_TARGET, "importing genesis model {name} from {}: {e}", src.display())
        }
    };
    for (name, files, id) in SHIPPED_MODELS {
        if store.contains(&id) {
            continue;
        }
        // Staged inside the store's own folder, in a folder created new (never through a
        // link), each file created new.
        let dir = store
            .root()
            .join(format!(".genesis-{name}-{}", std::process::id()));
        let written = std::fs::create_dir(&dir).and_then(|()| {
            files.iter().try_for_each(|(file, bytes)| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(dir.join(file))
                    .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
            })
        });
        // A one-file model is imported as its file (ONNX), a folder as what it holds.
        let src = match files {
            [(file, _)] => dir.join(file),
            _ => dir.clone(),
        };
        match written {
            Ok(()) => import(name, &src, &id),
            Err(e) => log::error!(target: LOG_TARGET, "writing {}: {e}", dir.display()),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let minilm = inferchain_runtime::dev_models::MINILM_L6_V2;
    if !store.contains(&minilm) {
        let cache = std::env::var_os("INFERCHAIN_CACHE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/inferchain"))
            })
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = cache.join("models/all-MiniLM-L6-v2");
        if dir.join("model.safetensors").is_file() {
            import("all-MiniLM-L6-v2", &dir, &minilm);
        } else {
            log::warn!(
                target: LOG_TARGET,
                "genesis model all-MiniLM-L6-v2 is not in the model store {} and not in {}: run \
                 scripts/setup.sh (it fetches it) or `inferchain model import DIR`. Until then \
                 this node's executors hand its requests back.",
                store.root().display(),
                dir.display()
            );
        }
    }
}

/// On the dev chain, the dev executors' keys (Alice and Bob, the genesis executors); on a
/// local testnet, the key of the `--alice`/`--bob`/… seed. Never on a live chain.
pub fn insert_dev_executor_keys(
    config: &Configuration,
    keystore: &KeystorePtr,
) -> Result<(), ServiceError> {
    let seeds: Vec<String> = match config.chain_spec.chain_type() {
        ChainType::Development => vec!["//Alice".into(), "//Bob".into()],
        ChainType::Local => config.dev_key_seed.clone().into_iter().collect(),
        _ => Vec::new(),
    };
    for seed in seeds {
        let public = keystore
            .sr25519_generate_new(KEY_TYPE, Some(&seed))
            .map_err(|e| ServiceError::Other(format!("inserting the executor key {seed}: {e}")))?;
        log::info!(target: LOG_TARGET, "executor key {seed} ({public}) in the keystore");
    }
    Ok(())
}

/// `--executor-fault` makes a node's executors cheat: only on development and local
/// chains, where a test runs them.
pub fn refuse_fault_outside_test_chains(
    config: &Configuration,
    fault: Fault,
) -> Result<(), ServiceError> {
    match config.chain_spec.chain_type() {
        ChainType::Development | ChainType::Local => Ok(()),
        other => Err(ServiceError::Other(format!(
            "--executor-fault {} is a test mode for development and local chains; this chain ({}) is {other:?}. Start the node without it",
            fault.name(),
            config.chain_spec.name()
        ))),
    }
}

/// Records when this node started and `--executor-fault` (or clears it) where the
/// off-chain worker reads them.
pub fn record_offchain_settings<B: sc_client_api::Backend<inferchain_runtime::opaque::Block>>(
    backend: &B,
    fault: Option<Fault>,
) -> Result<(), ServiceError> {
    let Some(mut storage) = backend.offchain_storage() else {
        return Ok(());
    };
    // A new transaction pool: the nonces the workers counted before are void.
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    storage.set(STORAGE_PREFIX, NODE_STARTED_KEY, &started.encode());
    match fault {
        Some(fault) => {
            log::warn!(
                target: LOG_TARGET,
                "TEST MODE: --executor-fault {}: this node's executors misbehave and will be slashed",
                fault.name()
            );
            storage.set(STORAGE_PREFIX, FAULT_KEY, &fault.encode());
        }
        None => storage.remove(STORAGE_PREFIX, FAULT_KEY),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::Encode;
    use inferchain_primitives::{
        host::{InferenceError, TraceAnswer, TraceAsk, TraceRun, TracedModel},
        io::{Payload, Tensor},
        model::NumericsProfile,
    };

    #[test]
    fn the_host_function_runs_a_stored_model_only_with_the_extension() {
        let dir =
            std::env::temp_dir().join(format!("inferchain-node-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ModelStore::open(&dir).expect("store");
        let onnx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-mlp/model.onnx");
        let id = store.import(&onnx, None, &mut |_| {}).expect("import").id();
        let runner = engine_runner(dir.clone(), &Isolation::InProcess, FetchLimits::default())
            .expect("runner");
        let registered = inferchain_runtime::dev_models::genesis_models()
            .into_iter()
            .find(|m| m.artifact_hash == id)
            .expect("tiny-mlp is a genesis model");
        let (spec, numerics) = (registered.input, registered.numerics);
        let input =
            Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &[0.1, 0.2, 0.3, 0.4])]).encode();

        // Block execution: no extension, no model run.
        let mut block = sp_io::TestExternalities::default();
        block.execute_with(|| {
            assert_eq!(
                inferchain_primitives::host::inference::run(
                    id,
                    &input,
                    spec.clone(),
                    numerics,
                    None
                ),
                Err(InferenceError::NotOffchain)
            );
        });
        // Off-chain worker: the extension runs the engine.
        let mut offchain = sp_io::TestExternalities::default();
        offchain.register_extension(inferchain_primitives::host::InferenceExt(runner));
        offchain.execute_with(|| {
            let out = inferchain_primitives::host::inference::run(
                id,
                &input,
                spec.clone(),
                numerics,
                None,
            )
            .expect("runs");
            let Payload::Tensors(ts) = Payload::decode_canonical(&out).expect("canonical") else {
                panic!("tensor output")
            };
            assert_eq!(ts[0].shape, vec![1, 3]);
            assert_eq!(
                inferchain_primitives::host::inference::run(
                    ModelId::repeat_byte(9),
                    &input,
                    spec.clone(),
                    numerics,
                    None
                ),
                Err(InferenceError::ModelUnavailable)
            );
            assert_eq!(
                inferchain_primitives::host::inference::run(
                    id,
                    &[0xff],
                    spec.clone(),
                    numerics,
                    None
                ),
                Err(InferenceError::InvalidInput)
            );
            // A model registered under numerics this engine does not implement.
            let old = NumericsProfile {
                engine_version: 2,
                ..numerics
            };
            assert_eq!(
                inferchain_primitives::host::inference::run(id, &input, spec.clone(), old, None),
                Err(InferenceError::UnsupportedNumerics)
            );
        });
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Where `scripts/setup.sh` puts what it fetches (MiniLM among it).
    fn setup_cache() -> PathBuf {
        std::env::var("INFERCHAIN_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/inferchain")
            })
    }

    #[test]
    fn the_genesis_costs_are_the_engines_estimates_at_the_registered_inputs() {
        let cache = setup_cache();
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = std::env::temp_dir().join(format!("inferchain-node-cost-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ModelStore::open(&dir).expect("store");
        let engine = inferchain_engine::Engine::new(store.clone(), 0);
        let mut estimated = Vec::new();
        for path in [
            repo.join("models/tiny-mlp/model.onnx"),
            repo.join("models/wide-mlp/model.onnx"),
            repo.join("models/tiny-llm"),
            cache.join("models/all-MiniLM-L6-v2"),
        ] {
            let id = store
                .import(&path, None, &mut |_| {})
                .unwrap_or_else(|e| {
                    panic!("{}: {e} (scripts/setup.sh fetches MiniLM)", path.display())
                })
                .id();
            let spec = inferchain_runtime::dev_models::genesis_models()
                .into_iter()
                .find(|m| m.artifact_hash == id)
                .expect("a genesis model");
            let model = engine.load(&id, &mut |_| {}).expect("loads");
            let cost = model
                .estimate_cost(&spec.input, None)
                .expect("a bounded cost");
            assert!(
                cost.fits_within(&inferchain_runtime::configs::MaxModelCost::get()),
                "{}: {cost:?} is over the chain's cap",
                path.display()
            );
            estimated.push((
                String::from_utf8_lossy(&spec.name).into_owned(),
                spec.cost,
                cost,
            ));
        }
        for (name, registered, cost) in &estimated {
            assert_eq!(
                registered, cost,
                "runtime/src/dev_models.rs must carry {name}'s cost as the engine estimates it: {estimated:#?}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_genesis_commitments_of_minilm_are_the_engines_plan() {
        use inferchain_runtime::dev_models::{genesis_commitments, MINILM_L6_V2};
        let cache = setup_cache();
        let dir =
            std::env::temp_dir().join(format!("inferchain-node-minilm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ModelStore::open(&dir).expect("store");
        let manifest = store
            .import(
                &cache.join("models/all-MiniLM-L6-v2"),
                Some(inferchain_primitives::model::ModelFormat::BertEmbedding),
                &mut |_| {},
            )
            .expect("MiniLM (scripts/setup.sh fetches it)");
        assert_eq!(manifest.id(), MINILM_L6_V2);
        let files = store
            .read_verified(&MINILM_L6_V2, &mut |_| {})
            .expect("verified");
        let plan =
            inferchain_engine::dispute_plan::DisputePlan::compile_bert(&files).expect("compiles");
        assert_eq!(
            genesis_commitments()
                .into_iter()
                .find(|(id, _)| *id == MINILM_L6_V2)
                .map(|(_, c)| c),
            Some(plan.commitments()),
            "runtime/src/dev_models.rs must carry MiniLM's commitments as the engine computes them"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_genesis_commitments_of_tiny_llm_are_the_engines_plan() {
        use inferchain_runtime::dev_models::{genesis_commitments, TINY_LLM};
        let dir = std::env::temp_dir().join(format!("inferchain-node-llm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ModelStore::open(&dir).expect("store");
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-llm");
        assert_eq!(
            store.import(&src, None, &mut |_| {}).expect("import").id(),
            TINY_LLM
        );
        let files = store
            .read_verified(&TINY_LLM, &mut |_| {})
            .expect("verified");
        let plan = inferchain_engine::dispute_plan::DisputePlan::compile(&files).expect("compiles");
        assert_eq!(
            genesis_commitments()
                .into_iter()
                .find(|(id, _)| *id == TINY_LLM)
                .map(|(_, c)| c),
            Some(plan.commitments()),
            "runtime/src/dev_models.rs must carry tiny-llm's commitments as the engine computes them"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_genesis_commitments_of_tiny_mlp_are_the_engines_plan_and_traces_are_served() {
        use inferchain_runtime::dev_models::{genesis_commitments, genesis_models, TINY_MLP};
        let onnx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-mlp/model.onnx");
        let plan = inferchain_engine::dispute_plan::DisputePlan::compile_onnx(
            &std::fs::read(&onnx).expect("tiny-mlp"),
        )
        .expect("compiles");
        let commitments = genesis_commitments()
            .into_iter()
            .find(|(id, _)| *id == TINY_MLP)
            .expect("tiny-mlp has genesis commitments")
            .1;
        assert_eq!(
            plan.commitments(),
            commitments,
            "runtime/src/dev_models.rs must carry the commitments the engine computes"
        );
        let wide = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/wide-mlp/model.onnx");
        let wide_plan = inferchain_engine::dispute_plan::DisputePlan::compile_onnx(
            &std::fs::read(&wide).expect("wide-mlp"),
        )
        .expect("compiles");
        assert_eq!(
            genesis_commitments()
                .into_iter()
                .find(|(id, _)| *id == inferchain_runtime::dev_models::WIDE_MLP)
                .map(|(_, c)| c),
            Some(wide_plan.commitments()),
            "runtime/src/dev_models.rs must carry wide-mlp's commitments as the engine computes them"
        );

        let dir =
            std::env::temp_dir().join(format!("inferchain-node-trace-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ModelStore::open(&dir).expect("store");
        store.import(&onnx, None, &mut |_| {}).expect("import");
        let runner = engine_runner(dir.clone(), &Isolation::InProcess, FetchLimits::default())
            .expect("runner");
        let spec = genesis_models()
            .into_iter()
            .find(|m| m.artifact_hash == TINY_MLP)
            .expect("tiny-mlp");
        let traced = TracedModel {
            model: TINY_MLP,
            spec: spec.input.clone(),
            numerics: spec.numerics,
            commitments,
            uri: None,
        };
        let input =
            Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &[0.5, -1.0, 2.0, 0.25])]).encode();
        let plain = runner
            .run(TINY_MLP, &input, &spec.input, &spec.numerics, None)
            .expect("runs");
        let mut offchain = sp_io::TestExternalities::default();
        offchain.register_extension(inferchain_primitives::host::InferenceExt(runner));
        offchain.execute_with(|| {
            use inferchain_primitives::host::inference;
            let Ok(TraceAnswer::Commit { output, trace, .. }) =
                inference::trace(traced.clone(), &input, TraceRun::Honest, TraceAsk::Commit)
            else {
                panic!("a commit")
            };
            assert_eq!(output, plain, "a traced result is the plain run's output");
            assert_eq!(trace.leaves, 6);
            let Ok(TraceAnswer::Commit { output: bad, .. }) = inference::trace(
                traced.clone(),
                &input,
                TraceRun::Corrupted { step: 3 },
                TraceAsk::Commit,
            ) else {
                panic!("a commit")
            };
            assert_ne!(bad, plain);
            assert_eq!(
                inference::trace(traced.clone(), &[0xff], TraceRun::Honest, TraceAsk::Commit),
                Err(InferenceError::InvalidInput)
            );
            let wrong = TracedModel {
                commitments: inferchain_primitives::dispute::ModelCommitments {
                    steps: 7,
                    ..commitments
                },
                ..traced.clone()
            };
            assert_eq!(
                inference::trace(wrong, &input, TraceRun::Honest, TraceAsk::Commit),
                Err(InferenceError::NoDisputePlan)
            );
        });
        let _ = std::fs::remove_dir_all(dir);
    }
}
