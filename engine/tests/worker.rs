//! The inference worker process under hostile models: a graph that allocates 100 GB from
//! an 8-byte input, one that runs past its deadline, one that burns its CPU budget, a
//! protobuf nested past any sane depth. Each ends in a named error, the pool's next call
//! is answered by a fresh worker, and an honest model's bits through the worker are the
//! in-process engine's.

use candle_onnx::onnx::{
    tensor_proto::DataType, tensor_shape_proto, type_proto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use codec::Encode;
use inferchain_engine::{
    host_runner::LocalRunner,
    onnx::OnnxModel,
    spec::NUMERICS_VERSION,
    worker::WorkerLimits,
    worker_pool::{WorkerCommand, WorkerPool},
    Engine, EngineError, ModelStore,
};
use inferchain_primitives::{
    host::{InferenceError, InferenceRunner},
    io::{DType, IoSpec, Payload, Tensor},
    model::{NumericsProfile, ThreadRule},
    ModelId,
};
use prost::Message;
use std::{path::PathBuf, time::Duration};

fn store(tag: &str) -> ModelStore {
    let dir = std::env::temp_dir().join(format!("inferchain-worker-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    ModelStore::open(&dir).expect("store opens")
}

fn pool(store: &ModelStore, limits: WorkerLimits) -> WorkerPool {
    WorkerPool::new(
        WorkerCommand {
            program: env!("CARGO_BIN_EXE_inferchain-inference-worker").into(),
            args: Vec::new(),
        },
        store.root().to_path_buf(),
        limits,
        1,
    )
}

fn numerics() -> NumericsProfile {
    NumericsProfile {
        engine_version: NUMERICS_VERSION,
        compute_dtype: DType::F32,
        threads: ThreadRule::Any,
    }
}

fn value(name: &str, elem: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    use tensor_shape_proto::{dimension::Value as D, Dimension};
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Some(n) => D::DimValue(*n),
                                None => D::DimParam("n".into()),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            denotation: String::new(),
        }),
        ..Default::default()
    }
}

fn node(op: &str, input: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: input.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

/// A graph from an i64 `shape` input of `rank` elements: zeros of that shape
/// (`ConstantOfShape`), then `matmuls` products of the result with itself.
fn shape_bomb(rank: i64, matmuls: usize) -> Vec<u8> {
    let mut nodes = vec![node("ConstantOfShape", &["shape"], "z0")];
    for i in 0..matmuls {
        nodes.push(node(
            "MatMul",
            &[&format!("z{i}"), "z0"],
            &format!("z{}", i + 1),
        ));
    }
    nodes.push(node("Identity", &[&format!("z{matmuls}")], "y"));
    let out_dims = vec![None; rank as usize];
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "hostile".into(),
            node: nodes,
            input: vec![value("shape", DataType::Int64, &[Some(rank)])],
            output: vec![value("y", DataType::Float, &out_dims)],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Imports an ONNX graph; returns its id and input spec.
fn import(store: &ModelStore, tag: &str, bytes: &[u8]) -> (ModelId, IoSpec) {
    let path = std::env::temp_dir().join(format!("inferchain-{tag}-{}.onnx", std::process::id()));
    std::fs::write(&path, bytes).expect("write");
    let id = store
        .import(&path, None, &mut |_| {})
        .expect("imports")
        .id();
    let _ = std::fs::remove_file(path);
    let spec = OnnxModel::from_bytes(bytes)
        .and_then(|m| m.io_specs())
        .expect("specs")
        .0;
    (id, spec)
}

fn shape_input(dims: &[i64]) -> Vec<u8> {
    Payload::Tensors(vec![Tensor::from_i64(vec![dims.len() as u32], dims)]).encode()
}

fn tiny_mlp() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-mlp/model.onnx")
}

/// tiny-mlp through `runner`: (id, its output).
fn tiny_mlp_run(store: &ModelStore, runner: &dyn InferenceRunner) -> Vec<u8> {
    let id = store
        .import(&tiny_mlp(), None, &mut |_| {})
        .expect("import")
        .id();
    let bytes = std::fs::read(tiny_mlp()).expect("tiny-mlp");
    let spec = OnnxModel::from_bytes(&bytes)
        .and_then(|m| m.io_specs())
        .expect("specs")
        .0;
    let input =
        Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &[0.5, -1.0, 2.0, 0.25])]).encode();
    runner
        .run(id, &input, &spec, &numerics(), None)
        .expect("tiny-mlp runs")
}

#[test]
fn a_worker_reports_its_limits_and_runs_models_bit_for_bit_as_the_engine() {
    let store = store("status");
    let limits = WorkerLimits {
        memory_bytes: 2 << 30,
        ..WorkerLimits::default()
    };
    let pool = pool(&store, limits);
    let status = pool.status().expect("a worker answers");
    assert_ne!(status.pid, std::process::id(), "a separate process");
    assert_eq!(status.memory_limit, Some(2 << 30));
    assert!(status.network_denied, "the worker cannot open a socket");
    if inferchain_engine::sandbox::landlock_abi().is_some() {
        assert!(
            status.files_confined,
            "the worker reads nothing but the store"
        );
    }
    let isolated = tiny_mlp_run(&store, &pool);
    let local = LocalRunner(Engine::new(store.clone(), 1 << 30));
    assert_eq!(isolated, tiny_mlp_run(&store, &local));
    // Warm: the same worker answers the next call.
    assert_eq!(pool.status().expect("answers").pid, status.pid);
}

#[test]
fn a_graph_that_allocates_100_gb_from_a_small_input_kills_only_its_worker() {
    let store = store("oom");
    let (bomb, spec) = import(&store, "bomb", &shape_bomb(1, 0));
    let pool = pool(
        &store,
        WorkerLimits {
            memory_bytes: 1 << 30,
            ..WorkerLimits::default()
        },
    );
    let before = pool.status().expect("a worker").pid;
    // 25e9 f32 zeros: 100 GB.
    let err = pool
        .run(
            bomb,
            &shape_input(&[25_000_000_000]),
            &spec,
            &numerics(),
            None,
        )
        .expect_err("refused");
    assert_eq!(err, InferenceError::OutOfMemory);
    assert!(err.is_limit());
    // The node's side goes on: a fresh worker answers an honest model.
    let after = pool.status().expect("a fresh worker").pid;
    assert_ne!(after, before);
    assert!(!tiny_mlp_run(&store, &pool).is_empty());
}

#[test]
fn a_run_past_its_deadline_is_killed_and_named() {
    let store = store("deadline");
    // 96 products of 2048 x 2048 matrices: minutes of work.
    let (slow, spec) = import(&store, "slow", &shape_bomb(2, 96));
    let pool = pool(
        &store,
        WorkerLimits {
            deadline: Duration::from_secs(2),
            ..WorkerLimits::default()
        },
    );
    let started = std::time::Instant::now();
    let err = pool
        .run(slow, &shape_input(&[2048, 2048]), &spec, &numerics(), None)
        .expect_err("refused");
    assert_eq!(err, InferenceError::DeadlineExceeded);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "killed at its deadline"
    );
    assert!(!tiny_mlp_run(&store, &pool).is_empty());
}

#[test]
fn a_run_past_its_cpu_budget_is_stopped_and_named() {
    let store = store("cpu");
    let (slow, spec) = import(&store, "slow-cpu", &shape_bomb(2, 96));
    let pool = pool(
        &store,
        WorkerLimits {
            cpu_secs: 1,
            deadline: Duration::from_secs(300),
            ..WorkerLimits::default()
        },
    );
    let err = pool
        .run(slow, &shape_input(&[2048, 2048]), &spec, &numerics(), None)
        .expect_err("refused");
    assert_eq!(err, InferenceError::CpuTimeExceeded);
    assert!(!tiny_mlp_run(&store, &pool).is_empty());
}

#[test]
fn a_protobuf_nested_past_any_sane_depth_is_a_named_error_not_a_stack_overflow() {
    use candle_onnx::onnx::{attribute_proto::AttributeType, AttributeProto};
    // An `If` whose branch holds an `If` whose branch holds ... 1,000 deep (the decoder's
    // limit is 100).
    let mut graph = GraphProto {
        name: "leaf".into(),
        ..Default::default()
    };
    for _ in 0..1_000 {
        graph = GraphProto {
            name: "g".into(),
            node: vec![NodeProto {
                op_type: "If".into(),
                input: vec!["c".into()],
                output: vec!["y".into()],
                attribute: vec![AttributeProto {
                    name: "then_branch".into(),
                    r#type: AttributeType::Graph as i32,
                    g: Some(graph),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
    }
    let bytes = ModelProto {
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec();
    match OnnxModel::from_bytes(&bytes) {
        Err(EngineError::InvalidArtifact(msg)) => {
            assert!(msg.contains("not an ONNX model"), "{msg}")
        }
        Err(e) => panic!("a named artifact error, got {e}"),
        Ok(_) => panic!("refused"),
    }
}

#[test]
fn a_worker_grown_past_its_recycle_mark_is_retired_and_replaced() {
    let store = store("recycle");
    let pool = pool(
        &store,
        WorkerLimits {
            // Any worker holds more than 1 MiB: each is retired after one request.
            recycle_bytes: 1 << 20,
            ..WorkerLimits::default()
        },
    );
    let first = pool.status().expect("a worker").pid;
    let output = tiny_mlp_run(&store, &pool);
    let second = pool.status().expect("a fresh worker").pid;
    assert_ne!(first, second, "the grown worker was retired");
    // Retiring is not failing: the answers are the engine's.
    assert_eq!(tiny_mlp_run(&store, &pool), output);
    // A generous mark keeps the worker warm.
    let warm = pool_with_mark(&store, 64 << 30);
    let pid = warm.status().expect("a worker").pid;
    tiny_mlp_run(&store, &warm);
    assert_eq!(warm.status().expect("the same worker").pid, pid);
}

fn pool_with_mark(store: &ModelStore, recycle_bytes: u64) -> WorkerPool {
    pool(
        store,
        WorkerLimits {
            recycle_bytes,
            ..WorkerLimits::default()
        },
    )
}
