//! The model store: ids are manifest hashes, imports are idempotent, and nothing corrupt
//! or unknown is ever loaded.

use inferchain_engine::{Engine, EngineError, ModelStore};
use inferchain_primitives::{
    io::{IoError, Payload, Tensor},
    model::ModelFormat,
    ModelId,
};
use std::path::PathBuf;

fn tiny_mlp() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-mlp/model.onnx")
}

fn temp_store(tag: &str) -> (PathBuf, ModelStore) {
    let dir = std::env::temp_dir().join(format!("inferchain-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = ModelStore::open(&dir).expect("store opens");
    (dir, store)
}

#[test]
fn import_gives_the_manifest_id_and_is_idempotent() {
    let (dir, store) = temp_store("idempotent");
    let a = store
        .import(&tiny_mlp(), None, &mut |_| {})
        .expect("imports");
    assert_eq!(a.format, ModelFormat::Onnx);
    let b = store
        .import(&tiny_mlp(), Some(ModelFormat::Onnx), &mut |_| {})
        .expect("again");
    assert_eq!(a.id(), b.id());
    assert_eq!(store.list().expect("lists"), vec![a.id()]);
    // The id hashes the manifest, which hashes the bytes.
    let bytes = std::fs::read(tiny_mlp()).expect("read");
    assert_eq!(
        a.files[0].blake2_256,
        inferchain_primitives::blake2_256(&bytes)
    );
    assert_eq!(
        store.verify(&a.id(), &mut |_| {}).expect("intact").id(),
        a.id()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_corrupted_file_is_never_loaded() {
    let (dir, store) = temp_store("corrupt");
    let id = store
        .import(&tiny_mlp(), None, &mut |_| {})
        .expect("imports")
        .id();
    let file = dir.join(hex::encode(id.as_bytes())).join("model.onnx");
    let mut bytes = std::fs::read(&file).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).expect("write");
    let engine = Engine::new(store.clone(), 1 << 20);
    let input = Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &[0.1, 0.2, 0.3, 0.4])]);
    match engine.run(&id, &input, None) {
        Err(EngineError::FileHashMismatch { .. }) => {}
        other => panic!("expected FileHashMismatch, got {other:?}"),
    }
    assert!(matches!(
        store.verify(&id, &mut |_| {}),
        Err(EngineError::FileHashMismatch { .. })
    ));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unknown_models_and_bad_inputs_get_named_errors() {
    let (dir, store) = temp_store("errors");
    let id = store
        .import(&tiny_mlp(), None, &mut |_| {})
        .expect("imports")
        .id();
    let engine = Engine::new(store, 1 << 20);
    let unknown = ModelId::repeat_byte(7);
    let input = Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &[0.1, 0.2, 0.3, 0.4])]);
    assert!(
        matches!(engine.run(&unknown, &input, None), Err(EngineError::NotInStore(i)) if i == unknown)
    );
    let wrong_shape = Payload::Tensors(vec![Tensor::from_f32(vec![1, 5], &[0.0; 5])]);
    assert!(matches!(
        engine.run(&id, &wrong_shape, None),
        Err(EngineError::InvalidInput(IoError::Shape {
            index: 0,
            axis: 1,
            size: 5
        }))
    ));
    let nan = Payload::Tensors(vec![Tensor::from_f32(
        vec![1, 4],
        &[0.0, f32::NAN, 0.0, 0.0],
    )]);
    assert!(matches!(
        engine.run(&id, &nan, None),
        Err(EngineError::InvalidInput(IoError::NonFinite { index: 0 }))
    ));
    let text = Payload::Text(b"hello".to_vec());
    assert!(matches!(
        engine.run(&id, &text, None),
        Err(EngineError::InvalidInput(IoError::KindMismatch))
    ));
    let numerics = inferchain_primitives::model::NumericsProfile {
        engine_version: inferchain_engine::spec::NUMERICS_VERSION,
        compute_dtype: inferchain_primitives::io::DType::F32,
        threads: inferchain_primitives::model::ThreadRule::Any,
    };
    let text_spec = inferchain_primitives::io::IoSpec::Text { max_bytes: 4 };
    assert!(matches!(
        engine.run_encoded(&id, &[1, 2, 3], &text_spec, &numerics),
        Err(EngineError::InvalidInput(IoError::Malformed))
    ));
    // A model registered under numerics this engine does not implement is refused by
    // name, before anything runs: an older kernel version, or another compute dtype.
    let old = inferchain_primitives::model::NumericsProfile {
        engine_version: 2,
        ..numerics
    };
    assert!(matches!(
        engine.run_encoded(&id, &[1, 2, 3], &text_spec, &old),
        Err(EngineError::UnsupportedNumerics {
            registered: 2,
            implemented: inferchain_engine::spec::NUMERICS_VERSION
        })
    ));
    let f64_profile = inferchain_primitives::model::NumericsProfile {
        compute_dtype: inferchain_primitives::io::DType::F64,
        ..numerics
    };
    assert!(matches!(
        engine.run_encoded(&id, &[1, 2, 3], &text_spec, &f64_profile),
        Err(EngineError::UnsupportedComputeDType { .. })
    ));
    // A good input runs: softmax over 3 classes sums to 1.
    let out = engine.run(&id, &input, None).expect("runs");
    let Payload::Tensors(ts) = &out.output else {
        panic!("tensor output")
    };
    assert_eq!(ts[0].shape, vec![1, 3]);
    let sum: f64 = ts[0].to_f64_vec().expect("f32").iter().sum();
    assert!((sum - 1.0).abs() < 1e-6, "softmax sums to {sum}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn random_operators_and_garbage_are_refused_at_load() {
    assert!(matches!(
        inferchain_engine::onnx::OnnxModel::from_bytes(b"definitely not protobuf \xff\xff"),
        Err(EngineError::InvalidArtifact(_))
    ));
    let (dir, store) = temp_store("format");
    let missing = dir.join("no-such-dir");
    assert!(matches!(
        store.import(&missing, None, &mut |_| {}),
        Err(EngineError::UnknownFormat { .. })
    ));
    let bert_dir = dir.join("half-bert");
    std::fs::create_dir_all(&bert_dir).expect("mkdir");
    std::fs::write(bert_dir.join("config.json"), "{}").expect("write");
    assert!(matches!(
        store.import(&bert_dir, None, &mut |_| {}),
        Err(EngineError::MissingFile {
            file: "model.safetensors",
            ..
        })
    ));
    let _ = std::fs::remove_dir_all(dir);
}

/// A one-node graph `y = OP(x)` over f32 [1, 4].
fn one_node_graph(op: &str) -> Vec<u8> {
    use candle_onnx::onnx::{
        tensor_shape_proto::{dimension, Dimension},
        type_proto, GraphProto, ModelProto, NodeProto, TensorShapeProto, TypeProto, ValueInfoProto,
    };
    use prost::Message;
    let value = |name: &str| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: [1, 4]
                        .iter()
                        .map(|d| Dimension {
                            value: Some(dimension::Value::DimValue(*d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    ModelProto {
        graph: Some(GraphProto {
            node: vec![NodeProto {
                op_type: op.into(),
                input: vec!["x".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![value("x")],
            output: vec![value("y")],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn unsupported_and_random_operators_are_named_never_a_panic() {
    let input = Tensor::from_f32(vec![1, 4], &[0.1, 0.2, 0.3, 0.4]);
    // Sanity: the same graph with a supported op runs.
    let relu =
        inferchain_engine::onnx::OnnxModel::from_bytes(&one_node_graph("Relu")).expect("loads");
    assert_eq!(
        relu.run(std::slice::from_ref(&input)).expect("runs")[0].shape,
        vec![1, 4]
    );
    // Refused at load, by name: an operator nobody implements, and operators candle
    // implements with CPU-dependent bits (platform libm, its own matrix kernels) that the
    // engine's kernels do not define yet.
    for op in ["Unique", "Sin", "Cos", "LSTM", "RNN"] {
        match inferchain_engine::onnx::OnnxModel::from_bytes(&one_node_graph(op)) {
            Err(EngineError::UnsupportedOp { op: named }) => assert_eq!(named, op),
            Err(other) => panic!("{op}: expected UnsupportedOp, got {other:?}"),
            Ok(_) => panic!("{op} was accepted"),
        }
    }
    match inferchain_engine::onnx::OnnxModel::from_bytes(&one_node_graph("RandomNormalLike")) {
        Err(EngineError::NondeterministicOp { op }) => assert_eq!(op, "RandomNormalLike"),
        Err(other) => panic!("expected NondeterministicOp, got {other:?}"),
        Ok(_) => panic!("a random operator was accepted"),
    }
}
