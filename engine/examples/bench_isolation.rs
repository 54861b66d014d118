//! The cost of running models in a worker process: the latency of the host call an
//! executor makes per request (`trace` → `Commit`: the traced run it posts), in process
//! (`LocalRunner`) and through a warm worker (`WorkerPool`), interleaved in one run on the
//! same inputs. Each call gets a new input, so neither side answers from its trace cache.
//!   bench_isolation WORKER_BINARY [--runs N]      (scripts/bench-isolation.sh runs it)

use codec::Encode;
use inferchain_engine::{
    dispute_plan::DisputePlan,
    host_runner::LocalRunner,
    worker::WorkerLimits,
    worker_pool::{WorkerCommand, WorkerPool},
    Engine, ModelStore,
};
use inferchain_primitives::{
    host::{InferenceRunner, TraceAsk, TraceRun, TracedModel},
    io::{DType, Payload, Tensor},
    model::{NumericsProfile, ThreadRule},
};
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let worker = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: bench_isolation WORKER_BINARY [--runs N]"))?,
    );
    let mut runs = 200usize;
    while let Some(a) = args.next() {
        if a == "--runs" {
            runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(runs);
        }
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root =
        std::env::temp_dir().join(format!("inferchain-bench-isolation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let store = ModelStore::open(&root)?;
    let mut models = vec![("tiny-mlp", repo.join("models/tiny-mlp/model.onnx"))];
    let minilm = std::env::var_os("INFERCHAIN_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/inferchain")))
        .map(|c| c.join("models/all-MiniLM-L6-v2"));
    match minilm {
        Some(dir) if dir.join("model.safetensors").is_file() => {
            models.push(("all-MiniLM-L6-v2", dir))
        }
        _ => eprintln!(
            "[bench-isolation] all-MiniLM-L6-v2 not fetched (scripts/setup.sh); tiny-mlp only"
        ),
    }
    let local = LocalRunner(Engine::new(store.clone(), 1 << 30));
    let pool = WorkerPool::new(
        WorkerCommand {
            program: worker,
            args: Vec::new(),
        },
        root.clone(),
        WorkerLimits::default(),
        1,
    );
    let numerics = NumericsProfile {
        engine_version: inferchain_engine::spec::NUMERICS_VERSION,
        compute_dtype: DType::F32,
        threads: ThreadRule::Any,
    };
    println!(
        "{:<18} {:>5} {:>14} {:>14} {:>14} {:>14} {:>8}",
        "model", "runs", "in-process p50", "worker p50", "in-process p95", "worker p95", "ratio"
    );
    for (name, src) in models {
        let id = store.import(&src, None, &mut |_| {})?.id();
        let files = store.read_verified(&id, &mut |_| {})?;
        let commitments = DisputePlan::compile(&files)?.commitments();
        let spec = local.0.load(&id, &mut |_| {})?.registration_specs()?.0;
        let model = TracedModel {
            model: id,
            spec,
            numerics,
            commitments,
            uri: None,
        };
        let input = |i: usize| -> Vec<u8> {
            let x = i as f32 * 1e-3;
            match name {
                "tiny-mlp" => {
                    Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &[x, 1.0 - x, 0.5, -x])])
                }
                _ => {
                    Payload::Text(format!("request number {i}: how far is the moon?").into_bytes())
                }
            }
            .encode()
        };
        // Warm both: the worker started, the model loaded and its plan compiled on each side.
        for runner in [&local as &dyn InferenceRunner, &pool] {
            runner
                .trace(
                    &model,
                    &input(usize::MAX / 2),
                    TraceRun::Honest,
                    TraceAsk::Commit,
                )
                .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
        }
        let (mut in_process, mut isolated) = (Vec::new(), Vec::new());
        for i in 0..runs {
            let x = input(i);
            for (runner, times) in [
                (&local as &dyn InferenceRunner, &mut in_process),
                (&pool, &mut isolated),
            ] {
                let t = Instant::now();
                runner
                    .trace(&model, &x, TraceRun::Honest, TraceAsk::Commit)
                    .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
                times.push(t.elapsed());
            }
        }
        in_process.sort();
        isolated.sort();
        let (a, b) = (percentile(&in_process, 0.5), percentile(&isolated, 0.5));
        println!(
            "{:<18} {:>5} {:>14?} {:>14?} {:>14?} {:>14?} {:>7.2}x",
            name,
            runs,
            a,
            b,
            percentile(&in_process, 0.95),
            percentile(&isolated, 0.95),
            b.as_secs_f64() / a.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
