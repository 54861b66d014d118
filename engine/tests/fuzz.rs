//! Bounded mutation fuzzing on stable Rust, run in CI: canonical I/O decoding, manifest
//! decoding, ONNX loading and running from mutated protobufs, and the worker's request
//! boundary. Inputs are derived from real ones (the shipped models, valid payloads) by a
//! seeded mutator, so failures reproduce. The property everywhere: no panic escapes, and
//! every rejection is a named error.

use codec::{Decode, DecodeAll, Encode};
use inferchain_engine::{
    worker::{read_frame, write_frame, ReplyFrame, WorkerLimits, WorkerReply, WorkerRequest},
    worker_pool::{WorkerCommand, WorkerPool},
    Engine, EngineError, ModelStore,
};
use inferchain_primitives::{
    host::{InferenceError, InferenceRunner},
    io::{DType, IoSpec, Payload, Tensor},
    model::{Manifest, NumericsProfile, ThreadRule},
    ModelId,
};
use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::PathBuf,
    process::{Command, Stdio},
};

/// xorshift64*: a small seeded generator, so every case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four mutations of `seed`: bit flips, byte sets to edge values, truncation,
/// insertion and duplication of a slice.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len());
        match rng.below(6) {
            0 if !out.is_empty() => out[at] ^= 1 << rng.below(8),
            1 if !out.is_empty() => out[at] = [0x00, 0xff, 0x7f, 0x80][rng.below(4)],
            2 => out.truncate(at),
            3 => {
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
            4 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                let slice = out[at..end].to_vec();
                out.splice(at..at, slice);
            }
            _ => {
                if let Some(b) = out.get_mut(at) {
                    *b = b.wrapping_add(1);
                }
            }
        }
    }
    out
}

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn numerics() -> NumericsProfile {
    NumericsProfile {
        engine_version: inferchain_engine::spec::NUMERICS_VERSION,
        compute_dtype: DType::F32,
        threads: ThreadRule::Any,
    }
}

#[test]
fn canonical_io_decoding_never_panics_on_mutated_payloads() {
    let seeds: Vec<Vec<u8>> = vec![
        Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &[0.5, -1.0, 2.0, 0.25])]).encode(),
        Payload::Tensors(vec![
            Tensor::from_i64(vec![2], &[3, 4]),
            Tensor::from_f32(vec![2, 1], &[1.0, f32::MIN_POSITIVE]),
        ])
        .encode(),
        Payload::Text(b"hello, world".to_vec()).encode(),
        Payload::Prompt {
            text: b"Once upon".to_vec(),
            max_new_tokens: 8,
        }
        .encode(),
    ];
    let spec = OnnxSpec::tiny_mlp();
    let mut rng = Rng(0x5eed_0001);
    let mut rejected = 0;
    for i in 0..20_000 {
        let bytes = mutate(&mut rng, &seeds[i % seeds.len()]);
        let outcome = catch_unwind(|| {
            let decoded = Payload::decode_canonical(&bytes);
            let validated = inferchain_primitives::io::validate_encoded(&bytes, &spec);
            (decoded.is_ok(), validated.is_ok())
        });
        let (decoded, validated) =
            outcome.unwrap_or_else(|_| panic!("case {i} panicked: {}", hex::encode(&bytes)));
        // Whatever validates also decodes canonically, and re-encodes to the same bytes.
        if validated {
            assert!(decoded);
            let payload = Payload::decode_canonical(&bytes).expect("decoded");
            assert_eq!(
                payload.encode(),
                bytes,
                "case {i}: canonical means one encoding"
            );
        }
        rejected += usize::from(!decoded);
    }
    assert!(
        rejected > 1_000,
        "the mutator reaches the error paths ({rejected})"
    );
}

/// The input spec tiny-mlp declares.
struct OnnxSpec;

impl OnnxSpec {
    fn tiny_mlp() -> IoSpec {
        let bytes = std::fs::read(models().join("tiny-mlp/model.onnx")).expect("tiny-mlp");
        inferchain_engine::onnx::OnnxModel::from_bytes(&bytes)
            .and_then(|m| m.io_specs())
            .expect("specs")
            .0
    }
}

fn temp_store(tag: &str) -> ModelStore {
    let dir = std::env::temp_dir().join(format!("inferchain-fuzz-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    ModelStore::open(&dir).expect("store opens")
}

#[test]
fn mutated_manifests_in_the_store_are_named_errors() {
    let store = temp_store("manifest");
    let src = models().join("tiny-llm");
    let manifest = store.import(&src, None, &mut |_| {}).expect("import");
    let seed = manifest.encode();
    let mut rng = Rng(0x5eed_0002);
    for i in 0..3_000 {
        let bytes = mutate(&mut rng, &seed);
        if bytes == seed {
            continue; // two mutations that cancel out
        }
        let decoded = catch_unwind(|| Manifest::decode_all(&mut bytes.as_slice()).is_ok())
            .unwrap_or_else(|_| panic!("case {i} panicked decoding"));
        // Stored under its own hash, as a mirror or a disk could leave it.
        let id = ModelId::from(inferchain_primitives::blake2_256(&bytes));
        let dir = store.root().join(hex::encode(id.0));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("manifest.scale"), &bytes).expect("write");
        let read = catch_unwind(AssertUnwindSafe(|| store.read_verified(&id, &mut |_| {})))
            .unwrap_or_else(|_| panic!("case {i} panicked reading"));
        match read {
            // The files live in another folder: only a manifest naming none verifies.
            Ok(files) if files.manifest.files.is_empty() => {}
            Ok(f) => panic!(
                "case {i}: a folder without its files verified: {:?}",
                f.manifest
            ),
            Err(
                EngineError::InvalidArtifact(_)
                | EngineError::Io { .. }
                | EngineError::FileHashMismatch { .. },
            ) => {}
            Err(e) => panic!("case {i}: unexpected error kind: {e}"),
        }
        assert!(decoded || store.manifest(&id).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn worker_pool(store: &ModelStore) -> WorkerPool {
    WorkerPool::new(
        WorkerCommand {
            program: env!("CARGO_BIN_EXE_inferchain-inference-worker").into(),
            args: Vec::new(),
        },
        store.root().to_path_buf(),
        WorkerLimits {
            memory_bytes: 1 << 30,
            recycle_bytes: 768 << 20,
            cpu_secs: 20,
            deadline: std::time::Duration::from_secs(20),
        },
        1,
    )
}

#[test]
fn mutated_onnx_models_load_and_run_to_a_named_error_in_and_out_of_process() {
    let store = temp_store("onnx");
    let engine = Engine::new(store.clone(), 1 << 28);
    let pool = worker_pool(&store);
    let seeds: Vec<Vec<u8>> = ["tiny-mlp", "tiny-cnn"]
        .iter()
        .map(|m| std::fs::read(models().join(m).join("model.onnx")).expect("model"))
        .collect();
    let input = Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &[0.5, -1.0, 2.0, 0.25])]);
    let spec = OnnxSpec::tiny_mlp();
    let mut rng = Rng(0x5eed_0003);
    let (mut loaded, mut crashed) = (0, 0);
    let cases = 300;
    for i in 0..cases {
        let bytes = mutate(&mut rng, &seeds[i % seeds.len()]);
        let path = store.root().join(format!("case-{i}.onnx"));
        std::fs::write(&path, &bytes).expect("write");
        let id = store.import(&path, None, &mut |_| {}).expect("import").id();
        let _ = std::fs::remove_file(&path);
        // In process: loading and running return, they never unwind.
        let outcome = catch_unwind(AssertUnwindSafe(|| engine.run(&id, &input, None)))
            .unwrap_or_else(|_| panic!("case {i} panicked: {}", hex::encode(&bytes)));
        loaded += usize::from(outcome.is_ok());
        // Through the worker: an answer or a named host error, and the pool goes on.
        match pool.run(id, &input.encode(), &spec, &numerics(), None) {
            Ok(_) | Err(InferenceError::Failed | InferenceError::InvalidInput) => {}
            Err(e) if e.is_limit() => crashed += 1,
            Err(e) => panic!("case {i}: unexpected host error {e:?}"),
        }
    }
    assert!(loaded < cases, "the mutator reaches the error paths");
    assert!(pool.status().is_ok(), "the pool still answers");
    eprintln!("{cases} mutated models: {loaded} ran in process, {crashed} stopped a worker");
}

#[test]
fn the_worker_answers_garbage_frames_with_malformed_and_stays_up() {
    let store = temp_store("frames");
    let mut child = Command::new(env!("CARGO_BIN_EXE_inferchain-inference-worker"))
        .args(inferchain_engine::worker::worker_args(
            store.root(),
            &WorkerLimits::default(),
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("worker starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let seed = WorkerRequest::Run {
        model: ModelId::repeat_byte(1),
        input: vec![1, 2, 3],
        spec: OnnxSpec::tiny_mlp(),
        numerics: numerics(),
    }
    .encode();
    let mut rng = Rng(0x5eed_0004);
    for i in 0..2_000 {
        let frame = mutate(&mut rng, &seed);
        write_frame(&mut stdin, &frame).expect("the worker reads");
        let reply = read_frame(&mut stdout)
            .expect("the worker answers")
            .unwrap_or_else(|| panic!("case {i}: the worker died on {}", hex::encode(&frame)));
        let reply = ReplyFrame::decode(&mut reply.as_slice())
            .expect("a reply")
            .reply;
        match (WorkerRequest::decode(&mut frame.as_slice()), reply) {
            (_, WorkerReply::Malformed) => {}
            // A request that still decodes names a model the store lacks, or bad input.
            (Ok(_), WorkerReply::Run(Err(_)) | WorkerReply::Trace(Err(_))) => {}
            (Ok(WorkerRequest::Status), WorkerReply::Status(_)) => {}
            (request, reply) => panic!("case {i}: {request:?} answered {reply:?}"),
        }
    }
    write_frame(&mut stdin, &WorkerRequest::Status.encode()).expect("write");
    let reply = read_frame(&mut stdout).expect("read").expect("a frame");
    assert!(matches!(
        ReplyFrame::decode(&mut reply.as_slice()).map(|f| f.reply),
        Ok(WorkerReply::Status(_))
    ));
    drop(stdin);
    assert!(
        child.wait().expect("exits").success(),
        "a clean exit at end of input"
    );
}
