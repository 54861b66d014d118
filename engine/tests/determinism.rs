//! The determinism matrix: every golden case (tests/golden-hashes.txt: tiny-mlp, tiny-cnn,
//! all-MiniLM-L6-v2 and every ONNX conformance case the engine runs) must give the
//! committed hash in every column:
//!
//! * native, 1, 2 and 8 threads (the fastest kernel path: AVX-512 on the build machine);
//! * native with each slower kernel path this CPU runs forced (`INFERCHAIN_KERNEL_ISA`);
//! * `qemu-x86_64 -cpu Haswell-noTSX` (AVX2 + FMA) and `-cpu Nehalem` (SSE4.2, no FMA: the
//!   scalar reference with the software FMA);
//! * an aarch64 build under `qemu-aarch64` (NEON; built by scripts/build-matrix-targets.sh);
//! * the scalar kernels compiled to wasm32 under wasmtime: each case runs here with its
//!   kernel calls recorded, every call is replayed in the wasm module, and the hash of the
//!   wasm outputs (in call order) must equal the hash of this CPU's.
//!
//! Native, qemu and aarch64 columns run the real `inferchain-golden` binary with `--trace`:
//! besides each output hash, every column must give the same execution trace (the Merkle
//! root over every intermediate value of every ONNX case) as the first. docs/DETERMINISM.md
//! shows the table this prints.

use inferchain_engine::golden::{self, GoldenFile, Outcome};
use inferchain_kernels::{call::output_bytes, trace, Isa};
use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn committed() -> GoldenFile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden-hashes.txt");
    GoldenFile::parse(&std::fs::read_to_string(path).expect("golden-hashes.txt"))
        .expect("golden-hashes.txt parses")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/inferchain/target")
        })
}

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// Runs `inferchain-golden` (through `wrapper`, e.g. qemu) and returns its lines.
fn column(
    label: &str,
    wrapper: &[&str],
    bin: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> Vec<(String, String)> {
    let (minilm, conformance) = golden::default_data();
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.arg("--models")
        .arg(models())
        .arg("--minilm")
        .arg(&minilm)
        .arg("--conformance")
        .arg(&conformance)
        .arg("--trace")
        .args(args)
        .envs(env.iter().copied());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{label}: cannot start {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{label}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// How a column compares with the committed hashes: (cases, mismatches).
fn compare(label: &str, got: &[(String, String)], want: &GoldenFile) -> Vec<String> {
    assert_eq!(got.len(), want.entries.len(), "{label}: number of cases");
    got.iter()
        .zip(&want.entries)
        .filter(|(g, w)| g.0 != w.0 || g.1.split(' ').next() != Some(w.1.as_str()))
        .map(|(g, w)| format!("{label}: {} gave {}, committed {}", g.0, g.1, w.1))
        .collect()
}

/// What a column's lines (`name hash [trace:0x…/N] [cost:F/B]`) say besides the hash,
/// by case: the execution trace and the estimated cost, which must not differ between
/// CPUs either.
fn traces(got: &[(String, String)]) -> Vec<(String, String)> {
    got.iter()
        .filter_map(|(name, rest)| {
            let (_, t) = rest.split_once(' ')?;
            Some((name.clone(), t.to_string()))
        })
        .collect()
}

/// The wasm module exported by inferchain-kernels-wasm, loaded once.
struct WasmKernels {
    store: wasmtime::Store<()>,
    memory: wasmtime::Memory,
    input: wasmtime::TypedFunc<u32, u32>,
    replay: wasmtime::TypedFunc<(u32, u32), u32>,
    output_ptr: wasmtime::TypedFunc<(), u32>,
    output_len: wasmtime::TypedFunc<(), u32>,
}

impl WasmKernels {
    fn load(path: &Path) -> WasmKernels {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::from_file(&engine, path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; build it with scripts/build-matrix-targets.sh",
                path.display()
            )
        });
        let mut store = wasmtime::Store::new(&engine, ());
        let instance =
            wasmtime::Instance::new(&mut store, &module, &[]).expect("the module has no imports");
        let memory = instance
            .get_memory(&mut store, "memory")
            .expect("exports memory");
        WasmKernels {
            input: instance.get_typed_func(&mut store, "input").expect("input"),
            replay: instance
                .get_typed_func(&mut store, "replay")
                .expect("replay"),
            output_ptr: instance
                .get_typed_func(&mut store, "output_ptr")
                .expect("output_ptr"),
            output_len: instance
                .get_typed_func(&mut store, "output_len")
                .expect("output_len"),
            store,
            memory,
        }
    }

    /// The output bytes of one encoded call, computed in wasm.
    fn run(&mut self, call: &[u8]) -> Vec<u8> {
        let ptr = self
            .input
            .call(&mut self.store, call.len() as u32)
            .expect("input");
        self.memory
            .write(&mut self.store, ptr as usize, call)
            .expect("write the call");
        let ok = self
            .replay
            .call(&mut self.store, (ptr, call.len() as u32))
            .expect("replay runs");
        assert_eq!(ok, 1, "the module decodes the call");
        let (p, n) = (
            self.output_ptr.call(&mut self.store, ()).expect("ptr"),
            self.output_len.call(&mut self.store, ()).expect("len"),
        );
        let mut out = vec![0u8; n as usize];
        self.memory
            .read(&self.store, p as usize, &mut out)
            .expect("read the output");
        out
    }
}

#[test]
fn every_cpu_thread_count_and_the_wasm_reference_give_the_committed_hashes() {
    let want = committed();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_inferchain-golden"));
    let mut failures = Vec::new();
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut reference_traces: Option<Vec<(String, String)>> = None;
    let mut check =
        |label: String, got: Vec<(String, String)>, rows: &mut Vec<(String, String)>| {
            let mut bad = compare(&label, &got, &want);
            let mine = traces(&got);
            match &reference_traces {
                None => {
                    assert!(mine.len() >= 130, "{label}: {} traces", mine.len());
                    let costs = mine.iter().filter(|(_, t)| t.contains("cost:")).count();
                    assert!(costs >= 3, "{label}: {costs} model cases report a cost");
                    reference_traces = Some(mine);
                }
                Some(reference) => {
                    if let Some((case, line)) = mine.iter().find(|m| !reference.contains(m)) {
                        bad.push(format!(
                            "{label}: execution traces or estimated costs differ from the first \
                         column ({case}: {line})"
                        ));
                    } else if mine.len() != reference.len() {
                        bad.push(format!(
                            "{label}: {} traces, the first column {}",
                            mine.len(),
                            reference.len()
                        ));
                    }
                }
            }
            let verdict = if bad.is_empty() {
                format!("{} cases, all identical", got.len())
            } else {
                format!("{} of {} DIFFER", bad.len(), got.len())
            };
            rows.push((label, verdict));
            failures.extend(bad);
        };

    // Native: thread counts, then each slower kernel path this CPU runs.
    let best = Isa::detect();
    for threads in ["1", "2", "8"] {
        let got = column("native", &[], &bin, &[], &["--threads", threads]);
        check(
            format!("native {}, {threads} threads", best.name()),
            got,
            &mut rows,
        );
    }
    for isa in Isa::ALL.into_iter().filter(|i| i.available() && *i != best) {
        let got = column(
            "native",
            &[],
            &bin,
            &[("INFERCHAIN_KERNEL_ISA", isa.name())],
            &[],
        );
        check(
            format!("native, {} kernels forced", isa.name()),
            got,
            &mut rows,
        );
    }

    // Emulated x86 CPUs.
    for (cpu, what) in [
        ("Haswell-noTSX", "AVX2 + FMA"),
        ("Nehalem", "SSE4.2, software FMA"),
    ] {
        let got = column(cpu, &["qemu-x86_64", "-cpu", cpu], &bin, &[], &[]);
        check(format!("qemu-x86_64 -cpu {cpu} ({what})"), got, &mut rows);
    }

    // aarch64 (NEON).
    let arm = target_dir().join("aarch64-unknown-linux-gnu/release/inferchain-golden");
    assert!(
        arm.is_file(),
        "{} is missing: build it with scripts/build-matrix-targets.sh",
        arm.display()
    );
    let got = column(
        "aarch64",
        &["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"],
        &arm,
        &[],
        &[],
    );
    check("aarch64 under qemu-aarch64 (NEON)".into(), got, &mut rows);

    // wasm32: every kernel call of every case, replayed on the scalar reference.
    let wasm_path = target_dir().join("wasm32v1-none/release/inferchain_kernels_wasm.wasm");
    let mut wasm = WasmKernels::load(&wasm_path);
    let (minilm, conformance) = golden::default_data();
    let (mut calls, mut cases, mut wasm_failures) = (0usize, 0usize, Vec::new());
    let mut model_rows = Vec::new();
    for case in golden::cases(&models(), Some(&minilm), Some(&conformance)) {
        trace::start();
        let outcome = golden::run(&case);
        let records = trace::finish();
        if !matches!(outcome, Ok(Outcome::Hash(_))) {
            continue;
        }
        cases += 1;
        // Per call: (this CPU's output hash, the wasm output hash). Calls from parallel
        // tasks are recorded in any order, so the trace hash is over the sorted pairs.
        let mut pairs: Vec<([u8; 32], [u8; 32])> = Vec::with_capacity(records.len());
        for record in &records {
            let mine = output_bytes(&record.output);
            let theirs = wasm.run(&record.call.encode());
            pairs.push((
                inferchain_primitives::blake2_256(&mine),
                inferchain_primitives::blake2_256(&theirs),
            ));
            calls += 1;
        }
        pairs.sort();
        let native: Vec<u8> = pairs.iter().flat_map(|p| p.0).collect();
        let replayed: Vec<u8> = pairs.iter().flat_map(|p| p.1).collect();
        let (n, r) = (
            hex::encode(&inferchain_primitives::blake2_256(&native)[..8]),
            hex::encode(&inferchain_primitives::blake2_256(&replayed)[..8]),
        );
        if n != r {
            wasm_failures.push(format!("wasm: {}: trace {r}, native {n}", case.name));
        }
        if case.name.starts_with("model/") {
            model_rows.push(format!(
                "{}: {} kernel calls, trace hash native {n} / wasm {r}",
                case.name,
                records.len()
            ));
        }
    }
    rows.push((
        "wasm32 scalar kernels under wasmtime".into(),
        if wasm_failures.is_empty() {
            format!("{cases} cases, {calls} kernel calls, all identical")
        } else {
            format!("{} of {cases} cases DIFFER", wasm_failures.len())
        },
    ));
    failures.extend(wasm_failures);

    println!("\nDeterminism matrix (numerics version {}):", want.numerics);
    for (label, verdict) in &rows {
        println!("  {label:<48} {verdict}");
    }
    for row in &model_rows {
        println!("  {row}");
    }
    for (name, hash) in want.entries.iter().filter(|(n, _)| n.starts_with("model/")) {
        println!("  {name}: {hash}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(calls > 1000, "the wasm column replayed {calls} calls");
}
