//! `inferchain-golden`: prints the output hash of every golden case (models, MiniLM, ONNX
//! conformance cases; `inferchain_engine::golden`), one `<case> <hash>` line each, so
//! that the same cases can be hashed on any CPU, under emulators and on other
//! architectures, and compared with `engine/tests/golden-hashes.txt`.
//!
//! ```text
//! inferchain-golden [--models DIR] [--minilm DIR] [--conformance DIR] [--threads N] [--only PREFIX] [--trace]
//! ```
//! `--trace` adds, for ONNX cases, the Merkle root over the hash of every intermediate
//! value and their count (`trace:0x…/N`), and for model cases the cost the engine
//! estimates at the model's registration input spec (`cost:<flops>/<peak bytes>`).
//! `INFERCHAIN_KERNEL_ISA` picks a slower kernel path (the same bits). Exit code 1 if a
//! case fails to run.

use inferchain_engine::golden::{self, Outcome};
use std::path::PathBuf;

fn main() {
    inferchain_engine::numerics::keep_candle_on_one_thread();
    let (default_minilm, default_conformance) = golden::default_data();
    let mut models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models");
    let (mut minilm, mut conformance) = (Some(default_minilm), Some(default_conformance));
    let mut only: Option<String> = None;
    let mut traced = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next().unwrap_or_else(|| {
                eprintln!("{arg} needs a value");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--models" => models = value().into(),
            "--minilm" => minilm = Some(value().into()).filter(|p: &PathBuf| p.as_os_str() != "-"),
            "--conformance" => {
                conformance = Some(value().into()).filter(|p: &PathBuf| p.as_os_str() != "-")
            }
            "--only" => only = Some(value()),
            "--trace" => traced = true,
            "--threads" => {
                let n: usize = value().parse().unwrap_or(0);
                if rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build_global()
                    .is_err()
                {
                    eprintln!("could not set {n} threads");
                }
            }
            other => {
                eprintln!(
                    "unknown argument {other}; usage: inferchain-golden [--models DIR] \
                     [--minilm DIR|-] [--conformance DIR|-] [--threads N] [--only PREFIX] [--trace]"
                );
                std::process::exit(2)
            }
        }
    }
    let minilm = minilm.filter(|p| p.join("model.safetensors").is_file());
    let conformance = conformance.filter(|p| p.join("simple").is_dir());
    let mut failed = false;
    for case in golden::cases(&models, minilm.as_deref(), conformance.as_deref()) {
        if only
            .as_ref()
            .is_some_and(|p| !case.name.starts_with(p.as_str()))
        {
            continue;
        }
        match golden::run_traced(&case) {
            Ok((outcome @ (Outcome::Hash(_) | Outcome::Unsupported(_)), trace, cost)) => {
                let mut line = format!("{} {outcome}", case.name);
                if traced {
                    for token in [
                        trace.map(|t| t.to_string()),
                        cost.as_ref().map(golden::cost_token),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        line.push(' ');
                        line.push_str(&token);
                    }
                }
                println!("{line}");
            }
            Err(e) => {
                println!("{} failed", case.name);
                eprintln!("{}: {e}", case.name);
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1)
    }
}
