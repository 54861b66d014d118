//! A gallery of hostile models and mirrors against a real dev node. Each ends in a named
//! error; the node keeps producing and finalising blocks; no executor is slashed for a
//! model it could not be expected to run.
//!
//! - A graph that allocates 100 GB from an 8-byte input (`ConstantOfShape`) and a
//!   protobuf nested 1,000 deep: refused at registration — the first because its
//!   input's data decides a tensor's size, so no dry run bounds its cost
//!   (`EngineError::UnboundedShape`), the second because it does not decode — so no
//!   executor ever sees them. (The worker process's own handling of both, were they run,
//!   is `engine/tests/worker.rs`.)
//! - A mirror that trickles bytes, one that serves the wrong file, one that serves a
//!   truncated file: the executor's fetch fails with a named error, it hands the request
//!   back, the request expires with a full refund, and the releases are forgiven.
//! - A run that overruns its deadline: the node is started with a 1 ms per-run deadline,
//!   so every run of tiny-mlp overruns it; the worker is killed (`DeadlineExceeded`), the
//!   request is handed back and expires, and nobody is slashed.

mod common;

use common::{
    cli::{json, run},
    free_port,
    inference::{connect, events_between, inference_events, model_store, repo},
    test_dir, Node,
};
use std::{
    collections::HashMap,
    io::{Read, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    sync::Arc,
    thread,
    time::Duration,
};

/// How a hostile mirror answers a path.
#[derive(Clone)]
enum Answer {
    Body(Vec<u8>),
    /// Announces this many bytes, then sends one every 100 ms.
    Trickle(usize),
}

/// A mirror on loopback answering GET `path` from `answers` (404 otherwise).
fn hostile_mirror(answers: HashMap<String, Answer>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let answers = Arc::new(answers);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let answers = answers.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                match answers.get(&path) {
                    Some(Answer::Body(body)) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(body);
                        let _ = stream.write_all(&r);
                    }
                    Some(Answer::Trickle(len)) => {
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
                        let _ = stream.write_all(head.as_bytes());
                        for _ in 0..*len {
                            thread::sleep(Duration::from_millis(100));
                            if stream.write_all(b"x").is_err() {
                                return;
                            }
                        }
                    }
                    None => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// tiny-mlp with an unknown protobuf field appended (ignored by ONNX readers): the same
/// function under a new id, one per `tag`.
fn variant(dir: &Path, tag: u8) -> (PathBuf, Vec<u8>) {
    let mut bytes = std::fs::read(repo().join("models/tiny-mlp/model.onnx")).expect("tiny-mlp");
    bytes.extend_from_slice(&[0x98, 0x06, tag]);
    let path = dir.join(format!("variant-{tag}.onnx"));
    std::fs::write(&path, &bytes).expect("write variant");
    (path, bytes)
}

/// A graph input or output of ONNX element type `elem` (1 f32, 7 i64); `None` dims are
/// dynamic.
fn onnx_value(name: &str, elem: i32, dims: &[Option<i64>]) -> candle_onnx::onnx::ValueInfoProto {
    use candle_onnx::onnx::{
        tensor_shape_proto::{dimension::Value as D, Dimension},
        type_proto, TensorShapeProto, TypeProto, ValueInfoProto,
    };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem,
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

/// The hostile graphs `engine/tests/worker.rs` runs, as files.
fn bomb_and_nest(dir: &Path) -> (PathBuf, PathBuf) {
    use candle_onnx::onnx::{
        attribute_proto::AttributeType, AttributeProto, GraphProto, ModelProto, NodeProto,
        OperatorSetIdProto,
    };
    use prost::Message;
    let shape_in = onnx_value("shape", 7, &[Some(1)]);
    let y = onnx_value("y", 1, &[None]);
    let bomb = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "bomb".into(),
            node: vec![NodeProto {
                op_type: "ConstantOfShape".into(),
                input: vec!["shape".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![shape_in],
            output: vec![y],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut graph = GraphProto::default();
    for _ in 0..1_000 {
        graph = GraphProto {
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
    let nest = ModelProto {
        graph: Some(graph),
        ..Default::default()
    };
    let (b, n) = (dir.join("bomb.onnx"), dir.join("nested.onnx"));
    std::fs::write(&b, bomb.encode_to_vec()).expect("write bomb");
    std::fs::write(&n, nest.encode_to_vec()).expect("write nest");
    (b, n)
}

#[test]
fn hostile_models_and_mirrors_end_in_named_errors_and_nobody_is_slashed() {
    let dir = test_dir("hostile");
    let node_store = model_store(&dir.join("node-models"), false);
    let cli_store = dir.join("cli-models");
    let node = Node::start(
        "hostile",
        &[
            "--dev".into(),
            "--tmp".into(),
            "--model-store".into(),
            node_store.display().to_string(),
            // A trickling mirror is cut off after 4 s.
            "--fetch-deadline-secs".into(),
            "4".into(),
            // Every run overruns a 1 ms deadline: a model that never ends in time.
            "--inference-deadline-ms".into(),
            "1".into(),
        ],
        free_port(),
        free_port(),
        &dir.join("hostile.log"),
    );
    node.wait_finalized(1, Duration::from_secs(120));
    let url = format!("ws://127.0.0.1:{}", node.rpc_port);
    let chain = connect(&node);

    // Refused at registration, with the reason named: nothing reaches an executor.
    let (bomb, nest) = bomb_and_nest(&dir);
    for (file, why) in [
        (&bomb, "depends on the data of input `shape`"),
        (&nest, "not an ONNX model"),
    ] {
        let (ok, out, err) = run(
            &cli_store,
            &[
                "model",
                "register",
                file.to_str().expect("UTF-8"),
                "--name",
                "hostile",
                "--fee",
                "1000",
                "--suri",
                "//Alice",
                "--url",
                &url,
            ],
        );
        assert!(!ok, "a hostile graph was registered: {out}");
        assert!(err.contains(why), "the refusal does not name {why}: {err}");
    }

    // Three variants of tiny-mlp, each registered with a hostile mirror.
    let mut mirrors = Vec::new();
    for (tag, case) in [(1u8, "trickle"), (2, "wrong-file"), (3, "truncated")] {
        let (path, bytes) = variant(&dir, tag);
        let (ok, out, err) = run(
            &cli_store,
            &["model", "import", path.to_str().expect("UTF-8"), "--json"],
        );
        assert!(ok, "import failed: {err}");
        let id = json(&out)["model"].as_str().expect("id").to_string();
        let hex = id.trim_start_matches("0x").to_string();
        let manifest =
            std::fs::read(cli_store.join(&hex).join("manifest.scale")).expect("manifest");
        let file = match case {
            "trickle" => Answer::Trickle(bytes.len()),
            "wrong-file" => Answer::Body(variant(&dir, 9).1),
            _ => Answer::Body(bytes[..bytes.len() / 2].to_vec()),
        };
        let answers = HashMap::from([
            (format!("/{hex}/manifest.scale"), Answer::Body(manifest)),
            (format!("/{hex}/model.onnx"), file),
        ]);
        let uri = format!("{}/{hex}", hostile_mirror(answers));
        let name = format!("hostile-{case}");
        let (ok, _, err) = run(
            &cli_store,
            &[
                "model",
                "register",
                path.to_str().expect("UTF-8"),
                "--name",
                &name,
                "--fee",
                "1000",
                "--uri",
                &uri,
                "--suri",
                "//Alice",
                "--url",
                &url,
            ],
        );
        assert!(ok, "register {name} failed: {err}");
        for suri in ["//Alice", "//Bob"] {
            let (ok, _, err) = run(
                &cli_store,
                &["serve", "--model", &name, "--suri", suri, "--url", &url],
            );
            assert!(ok, "serve {name} failed: {err}");
        }
        mirrors.push(name);
    }
    let x = dir.join("x.npy");
    std::fs::write(
        &x,
        inferchain_engine::npy::write(&inferchain_primitives::io::Tensor::from_f32(
            vec![1, 4],
            &[1.0, 0.0, -1.0, 0.5],
        )),
    )
    .expect("write x.npy");
    let start = chain.best_number().expect("best block");

    // Each request is handed back by both executors and expires, refunded.
    for model in mirrors.iter().map(String::as_str).chain(["tiny-mlp"]) {
        let (ok, out, err) = run(
            &cli_store,
            &[
                "submit",
                "--model",
                model,
                "--input",
                x.to_str().expect("UTF-8"),
                "--url",
                &url,
                "--wait",
            ],
        );
        assert!(!ok, "{model} was answered: {out}");
        assert!(
            err.contains("expired") && err.contains("refunded in full"),
            "{model}: {err}\n{}",
            node.log_tail(40)
        );
    }

    // The named errors, in the node's log.
    let log = std::fs::read_to_string(dir.join("hostile.log")).expect("node log");
    for named in [
        "ran past its deadline",
        "does not match the manifest",
        "DeadlineExceeded",
    ] {
        assert!(log.contains(named), "the node's log never says `{named}`");
    }

    // On chain: the three models nobody could fetch were handed back (`CannotServeModel`)
    // and their releases forgiven when the requests expired; the runs past their deadline
    // were handed back `OverLimits`, the model still served. Nobody was slashed.
    use pallet_inference::{Event as E, ReleaseReason};
    let end = chain.best_number().expect("best block");
    let events = inference_events(&events_between(&chain, start, end));
    let count = |f: &dyn Fn(&E<inferchain_runtime::Runtime>) -> bool| {
        events.iter().filter(|(_, e)| f(e)).count()
    };
    assert_eq!(
        count(&|e| matches!(e, E::ReleasesForgiven { .. })),
        3,
        "{events:?}"
    );
    assert_eq!(
        count(&|e| matches!(e, E::RequestExpired { .. })),
        4,
        "{events:?}"
    );
    assert!(
        count(
            &|e| matches!(e, E::AssignmentReleased { model, reason: ReleaseReason::OverLimits, .. } if *model == inferchain_runtime::dev_models::TINY_MLP)
        ) >= 2,
        "{events:?}"
    );
    assert_eq!(
        count(
            &|e| matches!(e, E::AssignmentReleased { reason: ReleaseReason::OverLimits, model, .. } if *model != inferchain_runtime::dev_models::TINY_MLP)
        ),
        0,
        "a model nobody could fetch was released as over limits: {events:?}"
    );
    let slashed: Vec<_> = events
        .iter()
        .filter(|(_, e)| matches!(e, pallet_inference::Event::Slashed { .. }))
        .collect();
    assert!(
        slashed.is_empty(),
        "honest executors were slashed: {slashed:?}"
    );

    // And the chain went on: blocks keep being produced and finalised.
    let finalized = node.finalized_number().expect("finalized head");
    node.wait_finalized(finalized + 3, Duration::from_secs(60));
}
