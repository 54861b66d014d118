//! Criterion benchmarks of the engine: the committed tiny-mlp, the generated ResNet-like
//! and BERT-base-like ONNX graphs (`scripts/make_bench_models.py`) at batch 1 and 8, and
//! all-MiniLM-L6-v2 at 128 tokens. Models not on disk are skipped with a note.
//! `scripts/bench-engine.sh` runs the same files through onnxruntime for the ratios.

use criterion::{criterion_group, criterion_main, Criterion};
use inferchain_engine::{bert::BertEmbedder, onnx::OnnxModel, ModelStore};
use inferchain_primitives::{
    io::{DType, Tensor},
    model::ModelFormat,
};
use std::path::PathBuf;

fn cache_dir() -> PathBuf {
    std::env::var_os("INFERCHAIN_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/inferchain")))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A deterministic input filling `shape` with values in [-1, 1).
fn input(shape: &[u32]) -> Tensor {
    let n: u32 = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|i| ((i.wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 24) as f32) * 2.0 - 1.0)
        .collect();
    Tensor::from_f32(shape.to_vec(), &values)
}

fn token_input(shape: &[u32]) -> Tensor {
    let n: u32 = shape.iter().product();
    let values: Vec<i64> = (0..n).map(|i| i64::from(i * 7919 % 30000)).collect();
    let mut t = Tensor::from_i64(shape.to_vec(), &values);
    t.dtype = DType::I64;
    t
}

/// Makes a benchmark input for a batch size.
type InputMaker = Box<dyn Fn(u32) -> Tensor>;

fn onnx_graphs(c: &mut Criterion) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bench_dir = cache_dir().join("bench-models");
    let cases: Vec<(&str, PathBuf, InputMaker)> = vec![
        (
            "tiny-mlp",
            repo.join("models/tiny-mlp/model.onnx"),
            Box::new(|_| input(&[1, 4])),
        ),
        (
            "resnet-like",
            bench_dir.join("resnet-like.onnx"),
            Box::new(|b| input(&[b, 3, 224, 224])),
        ),
        (
            "bert-base-like",
            bench_dir.join("bert-base-like.onnx"),
            Box::new(|b| token_input(&[b, 128])),
        ),
    ];
    for (name, path, make_input) in cases {
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!(
                "skipping {name}: {} missing (run scripts/make_bench_models.py)",
                path.display()
            );
            continue;
        };
        let model = OnnxModel::from_bytes(&bytes).expect("bench model loads");
        let batches: &[u32] = if name == "tiny-mlp" { &[1] } else { &[1, 8] };
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        for &batch in batches {
            let x = make_input(batch);
            group.bench_function(format!("batch{batch}"), |b| {
                b.iter(|| model.run(std::slice::from_ref(&x)).expect("runs"))
            });
        }
        group.finish();
    }
}

fn minilm(c: &mut Criterion) {
    let dir = cache_dir().join("models/all-MiniLM-L6-v2");
    if !dir.join("model.safetensors").is_file() {
        eprintln!("skipping MiniLM: run scripts/setup.sh");
        return;
    }
    let tmp = std::env::temp_dir().join(format!("inferchain-bench-store-{}", std::process::id()));
    let store = ModelStore::open(&tmp).expect("store");
    let manifest = store
        .import(&dir, Some(ModelFormat::BertEmbedding), &mut |_| {})
        .expect("imports");
    let mut files = store
        .read_verified(&manifest.id(), &mut |_| {})
        .expect("verified");
    let model = BertEmbedder::load(&mut files).expect("loads");
    // 128 tokens: [CLS] + 126 word pieces + [SEP].
    let ids: Vec<u32> = std::iter::once(101)
        .chain((0..126).map(|i| 2000 + i * 37 % 20000))
        .chain(std::iter::once(102))
        .collect();
    let mut group = c.benchmark_group("all-MiniLM-L6-v2");
    group.sample_size(10);
    group.bench_function("tokens128", |b| {
        b.iter(|| model.embed_tokens(&ids).expect("runs"))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&tmp);
}

criterion_group!(benches, onnx_graphs, minilm);
criterion_main!(benches);
