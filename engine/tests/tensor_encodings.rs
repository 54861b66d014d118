//! Every tensor encoding the ONNX spec allows gives the same bits as `raw_data`:
//! typed fields (`float_data`, `int32_data` for narrow integers), sparse initializers,
//! `Constant`'s list attributes and external data files beside the model, which the store
//! imports, hashes and hands back like every other file.

#![allow(clippy::unwrap_used)]

use candle_onnx::onnx::{
    attribute_proto::AttributeType,
    tensor_proto::{DataLocation, DataType},
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    SparseTensorProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use inferchain_engine::{onnx::OnnxModel, Engine, EngineError, ModelStore};
use inferchain_primitives::io::{Payload, Tensor};
use prost::Message;
use std::{collections::HashMap, path::PathBuf};

const W: [f32; 12] = [
    0.5, -1.0, 2.0, 0.25, 1.5, -0.75, -2.0, 0.125, 1.0, 3.0, -0.5, 0.0625,
];
const B: [f32; 3] = [0.1, -0.2, 0.3];
const K: [i64; 3] = [2, -1, 0];
const SPARSE_AT: i64 = 2;
const SPARSE_VALUE: f32 = 4.0;
const FILL: f32 = 0.5;

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn float_tensor(name: &str, dims: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        ..Default::default()
    }
}

fn node(op: &str, input: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: input.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| candle_onnx::onnx::tensor_shape_proto::Dimension {
                            value: Some(
                                candle_onnx::onnx::tensor_shape_proto::dimension::Value::DimValue(
                                    d,
                                ),
                            ),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// How the test model stores its tensors.
#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    /// `raw_data` everywhere: the form every other encoding must match.
    Raw,
    /// Typed fields, a sparse initializer, `Constant` list attributes.
    Typed,
    /// [`Encoding::Typed`], with `W` in `weights.bin` after 16 bytes of something else.
    External,
}

/// `y = x·W + b + cast(k) + s + fill`, `x` `[1, 4]`: `W` `[4, 3]`, `b` `[3]`, `k` int8
/// `[3]`, `s` zeros but `SPARSE_VALUE` at `SPARSE_AT`, `fill` `ConstantOfShape([1, 3])`.
fn model(encoding: Encoding) -> Vec<u8> {
    let raw = encoding == Encoding::Raw;
    let w = match encoding {
        Encoding::Raw => TensorProto {
            raw_data: f32_bytes(&W),
            ..float_tensor("W", &[4, 3])
        },
        Encoding::Typed => TensorProto {
            float_data: W.to_vec(),
            ..float_tensor("W", &[4, 3])
        },
        Encoding::External => TensorProto {
            data_location: DataLocation::External as i32,
            external_data: [
                ("location", "weights.bin"),
                ("offset", "16"),
                ("length", "48"),
            ]
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
            ..float_tensor("W", &[4, 3])
        },
    };
    let b = if raw {
        TensorProto {
            raw_data: f32_bytes(&B),
            ..float_tensor("b", &[3])
        }
    } else {
        TensorProto {
            float_data: B.to_vec(),
            ..float_tensor("b", &[3])
        }
    };
    let k = TensorProto {
        name: "k".into(),
        dims: vec![3],
        data_type: DataType::Int8 as i32,
        raw_data: if raw {
            K.iter().map(|&v| v as i8 as u8).collect()
        } else {
            vec![]
        },
        int32_data: if raw {
            vec![]
        } else {
            K.iter().map(|&v| v as i32).collect()
        },
        ..Default::default()
    };
    let mut dense_s = [0f32; 3];
    dense_s[SPARSE_AT as usize] = SPARSE_VALUE;
    let (initializer_s, sparse_s) = if raw {
        (
            Some(TensorProto {
                raw_data: f32_bytes(&dense_s),
                ..float_tensor("s", &[3])
            }),
            None,
        )
    } else {
        (
            None,
            Some(SparseTensorProto {
                values: Some(TensorProto {
                    float_data: vec![SPARSE_VALUE],
                    ..float_tensor("s", &[1])
                }),
                indices: Some(TensorProto {
                    name: "s_indices".into(),
                    dims: vec![1],
                    data_type: DataType::Int64 as i32,
                    int64_data: vec![SPARSE_AT],
                    ..Default::default()
                }),
                dims: vec![3],
            }),
        )
    };
    let shape_constant = if raw {
        AttributeProto {
            name: "value".into(),
            r#type: AttributeType::Tensor as i32,
            t: Some(TensorProto {
                name: "shape".into(),
                dims: vec![2],
                data_type: DataType::Int64 as i32,
                raw_data: [1i64, 3].iter().flat_map(|v| v.to_le_bytes()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    } else {
        AttributeProto {
            name: "value_ints".into(),
            r#type: AttributeType::Ints as i32,
            ints: vec![1, 3],
            ..Default::default()
        }
    };
    let fill = AttributeProto {
        name: "value".into(),
        r#type: AttributeType::Tensor as i32,
        t: Some(if raw {
            TensorProto {
                raw_data: f32_bytes(&[FILL]),
                ..float_tensor("fill_value", &[1])
            }
        } else {
            TensorProto {
                float_data: vec![FILL],
                ..float_tensor("fill_value", &[1])
            }
        }),
        ..Default::default()
    };
    let cast_to_float = AttributeProto {
        name: "to".into(),
        r#type: AttributeType::Int as i32,
        i: DataType::Float as i64,
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "encodings".into(),
            node: vec![
                node("MatMul", &["x", "W"], "xw", vec![]),
                node("Add", &["xw", "b"], "xwb", vec![]),
                node("Cast", &["k"], "kf", vec![cast_to_float]),
                node("Add", &["xwb", "kf"], "xwbk", vec![]),
                node("Add", &["xwbk", "s"], "xwbks", vec![]),
                node("Constant", &[], "shape", vec![shape_constant]),
                node("ConstantOfShape", &["shape"], "fill", vec![fill]),
                node("Add", &["xwbks", "fill"], "y", vec![]),
            ],
            initializer: [Some(w), Some(b), Some(k), initializer_s]
                .into_iter()
                .flatten()
                .collect(),
            sparse_initializer: sparse_s.into_iter().collect(),
            input: vec![value_info("x", &[1, 4])],
            output: vec![value_info("y", &[1, 3])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn weights_file() -> Vec<u8> {
    let mut file = vec![0xEEu8; 16];
    file.extend(f32_bytes(&W));
    file
}

const X: [f32; 4] = [1.0, -2.0, 0.5, 3.0];

fn run(model: &OnnxModel) -> Vec<f32> {
    let x = candle_core::Tensor::from_slice(&X, (1, 4), &candle_core::Device::Cpu).unwrap();
    let mut out = model
        .run_named(HashMap::from([("x".to_string(), x)]))
        .expect("runs");
    out.remove("y")
        .expect("y")
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

fn expected() -> Vec<f32> {
    (0..3)
        .map(|j| {
            let xw: f32 = (0..4).map(|i| X[i] * W[i * 3 + j]).sum();
            let s = if j as i64 == SPARSE_AT {
                SPARSE_VALUE
            } else {
                0.0
            };
            xw + B[j] + K[j] as f32 + s + FILL
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn typed_fields_sparse_initializers_and_constant_lists_run_like_raw_data() {
    let raw = run(&OnnxModel::from_bytes(&model(Encoding::Raw)).expect("raw loads"));
    for (got, want) in raw.iter().zip(expected()) {
        assert!((got - want).abs() < 1e-5, "{raw:?} vs {:?}", expected());
    }
    let typed = run(&OnnxModel::from_bytes(&model(Encoding::Typed)).expect("typed loads"));
    assert_eq!(bits(&typed), bits(&raw));
}

#[test]
fn external_data_runs_like_raw_data_and_is_missing_without_its_file() {
    let bytes = model(Encoding::External);
    let file = weights_file();
    let lookup = |name: &str| (name == "weights.bin").then_some(file.as_slice());
    let external = run(&OnnxModel::from_files(&bytes, &lookup).expect("loads"));
    let raw = run(&OnnxModel::from_bytes(&model(Encoding::Raw)).expect("raw loads"));
    assert_eq!(bits(&external), bits(&raw));
    match OnnxModel::from_bytes(&bytes) {
        Err(EngineError::MissingExternalData { tensor, file }) => {
            assert_eq!((tensor.as_str(), file.as_str()), ("W", "weights.bin"))
        }
        other => panic!("expected MissingExternalData, got {:?}", other.err()),
    }
    // A file too short for the declared offset and length.
    let short = &file[..40];
    let lookup = |name: &str| (name == "weights.bin").then_some(short);
    assert!(matches!(
        OnnxModel::from_files(&bytes, &lookup),
        Err(EngineError::MalformedTensor { .. })
    ));
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("inferchain-encodings-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_store_imports_external_data_beside_the_model_and_checks_its_hash() {
    let src = temp_dir("src");
    std::fs::write(src.join("model.onnx"), model(Encoding::External)).unwrap();
    let root = temp_dir("store");
    let store = ModelStore::open(&root).expect("store opens");
    // Without the weights beside it, the import names the missing file.
    match store.import(&src.join("model.onnx"), None, &mut |_| {}) {
        Err(EngineError::MissingExternalData { file, .. }) => assert_eq!(file, "weights.bin"),
        other => panic!("expected MissingExternalData, got {other:?}"),
    }
    std::fs::write(src.join("weights.bin"), weights_file()).unwrap();
    let manifest = store
        .import(&src.join("model.onnx"), None, &mut |_| {})
        .expect("imports with its weights");
    let names: Vec<String> = manifest
        .files
        .iter()
        .map(|f| String::from_utf8(f.name.clone()).unwrap())
        .collect();
    assert_eq!(names, ["model.onnx", "weights.bin"]);
    // The same model imported from its folder is the same model.
    assert_eq!(
        store.import(&src, None, &mut |_| {}).expect("folder").id(),
        manifest.id()
    );
    let id = manifest.id();
    let engine = Engine::new(store.clone(), 1 << 20);
    let input = Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &X)]);
    let out = engine.run(&id, &input, None).expect("runs from the store");
    let Payload::Tensors(tensors) = out.output else {
        panic!("tensor output")
    };
    let raw = run(&OnnxModel::from_bytes(&model(Encoding::Raw)).unwrap());
    let raw: Vec<f64> = raw.iter().map(|&v| v as f64).collect();
    assert_eq!(tensors[0].to_f64_vec().expect("numbers"), raw);

    // A stored weights file changed on disk is never loaded.
    let stored = root.join(hex::encode(id.as_bytes())).join("weights.bin");
    let mut tampered = std::fs::read(&stored).unwrap();
    tampered[20] ^= 1;
    std::fs::write(&stored, tampered).unwrap();
    let engine = Engine::new(store.clone(), 1 << 20);
    assert!(matches!(
        engine.run(&id, &input, None),
        Err(EngineError::FileHashMismatch { .. })
    ));
    let _ = std::fs::remove_dir_all(src);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn an_external_location_outside_the_model_folder_is_refused_at_import() {
    // The model's folder inside a folder of this test's own, which holds the weights.
    let outer = temp_dir("escape");
    let src = outer.join("model");
    std::fs::create_dir_all(&src).unwrap();
    let mut proto = ModelProto::decode(model(Encoding::External).as_slice()).unwrap();
    let w = &mut proto.graph.as_mut().unwrap().initializer[0];
    w.external_data[0].value = "../weights.bin".into();
    std::fs::write(src.join("model.onnx"), proto.encode_to_vec()).unwrap();
    std::fs::write(src.parent().unwrap().join("weights.bin"), weights_file()).unwrap();
    let root = temp_dir("escape-store");
    let store = ModelStore::open(&root).unwrap();
    assert!(matches!(
        store.import(&src, None, &mut |_| {}),
        Err(EngineError::MalformedTensor { .. })
    ));
    let _ = std::fs::remove_dir_all(outer);
    let _ = std::fs::remove_dir_all(root);
}
