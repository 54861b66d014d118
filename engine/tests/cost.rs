//! The cost estimate registered with a model (`engine/src/cost.rs`): a metered dry run at
//! the declared maximum shapes for ONNX graphs, refused where an input's data decides a
//! value's size; a formula over the dimensions for transformers.

use candle_onnx::onnx::{
    tensor_shape_proto::{dimension::Value as DimValue, Dimension},
    type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use inferchain_engine::{cost::MAX_DRY_RUN_INPUT_BYTES, onnx::OnnxModel, spec, EngineError};
use inferchain_primitives::io::IoSpec;
use prost::Message;

/// `Some(n)` a fixed dimension, `None` a dynamic one.
fn value(name: &str, elem_type: i32, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Some(n) => DimValue::DimValue(*n),
                                None => DimValue::DimParam("n".into()),
                            }),
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

fn node(op: &str, input: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: input.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

fn weight(name: &str, dims: &[i64]) -> TensorProto {
    let count: i64 = dims.iter().product();
    TensorProto {
        name: name.into(),
        data_type: 1,
        dims: dims.to_vec(),
        raw_data: (0..count).flat_map(|i| (i as f32).to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn model(
    nodes: Vec<NodeProto>,
    inputs: Vec<ValueInfoProto>,
    weights: Vec<TensorProto>,
    y: ValueInfoProto,
) -> OnnxModel {
    let bytes = ModelProto {
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            node: nodes,
            input: inputs,
            initializer: weights,
            output: vec![y],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    OnnxModel::from_bytes(&bytes).expect("the model loads")
}

/// x [n, 3] · W [3, 5], then Relu: y [n, 5].
fn matmul_relu() -> OnnxModel {
    model(
        vec![node("MatMul", &["x", "w"], "h"), node("Relu", &["h"], "y")],
        vec![value("x", 1, &[None, Some(3)])],
        vec![weight("w", &[3, 5])],
        value("y", 1, &[None, Some(5)]),
    )
}

fn input_spec(m: &OnnxModel, dynamic_max: u32) -> IoSpec {
    let (input, _) = m.io_specs().expect("specs");
    spec::bound_dynamic(input, dynamic_max).expect("a bound")
}

#[test]
fn a_dry_run_counts_products_and_elements_at_the_largest_declared_shape() {
    let m = matmul_relu();
    for n in [1u64, 2, 7] {
        let cost = m.estimate_cost(&input_spec(&m, n as u32)).expect("cost");
        // MatMul: n·5 outputs, each 3 multiply-adds; Relu: n·5 elements.
        assert_eq!(cost.flops, 2 * n * 5 * 3 + n * 5, "n = {n}");
        // Weights (W, and its packed copy for the kernels) are held whatever the
        // request; at the peak h and y ([n, 5] f32 each) are alive, or x and h.
        let weights = m.weight_bytes() as u64;
        assert!(weights >= 60);
        assert_eq!(cost.peak_memory_bytes, weights + 2 * n * 5 * 4, "n = {n}");
    }
}

#[test]
fn the_estimate_is_the_same_on_every_run() {
    let m = matmul_relu();
    let spec = input_spec(&m, 64);
    let first = m.estimate_cost(&spec).expect("cost");
    for _ in 0..3 {
        assert_eq!(m.estimate_cost(&spec).expect("cost"), first);
    }
}

#[test]
fn a_shape_taken_from_an_inputs_data_is_refused_but_one_from_its_shape_is_not() {
    // The hostile graph: an 8-byte input names the shape of a tensor to allocate.
    let bomb = model(
        vec![node("ConstantOfShape", &["shape"], "y")],
        vec![value("shape", 7, &[Some(1)])],
        vec![],
        value("y", 1, &[None]),
    );
    match bomb.estimate_cost(&input_spec(&bomb, 1)) {
        Err(EngineError::UnboundedShape { op, input, .. }) => {
            assert_eq!((op.as_str(), input.as_str()), ("ConstantOfShape", "shape"))
        }
        other => panic!("expected UnboundedShape, got {other:?}"),
    }
    // Through arithmetic on the data, the taint follows.
    let laundered = model(
        vec![
            node("Add", &["shape", "shape"], "twice"),
            node("Expand", &["one", "twice"], "y"),
        ],
        vec![value("shape", 7, &[Some(2)])],
        vec![weight("one", &[1])],
        value("y", 1, &[None, None]),
    );
    assert!(matches!(
        laundered.estimate_cost(&input_spec(&laundered, 1)),
        Err(EngineError::UnboundedShape { op, .. }) if op == "Expand"
    ));
    // A shape read from the input's shape is bounded by the spec: allowed.
    let reshape = model(
        vec![
            node("Shape", &["x"], "s"),
            node("Reshape", &["x", "s"], "y"),
        ],
        vec![value("x", 1, &[None, Some(4)])],
        vec![],
        value("y", 1, &[None, Some(4)]),
    );
    let cost = reshape
        .estimate_cost(&input_spec(&reshape, 8))
        .expect("bounded");
    assert!(cost.peak_memory_bytes >= 8 * 4 * 4);
}

#[test]
fn a_dry_run_larger_than_its_cap_asks_for_tighter_dynamic_dimensions() {
    let m = model(
        vec![node("Relu", &["x"], "y")],
        vec![value("x", 1, &[None, None, None])],
        vec![],
        value("y", 1, &[None, None, None]),
    );
    match m.estimate_cost(&input_spec(&m, 4096)) {
        Err(EngineError::DryRunTooLarge { bytes }) => assert!(bytes > MAX_DRY_RUN_INPUT_BYTES),
        other => panic!("expected DryRunTooLarge, got {other:?}"),
    }
    assert!(m.estimate_cost(&input_spec(&m, 16)).is_ok());
}

fn int_weight(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: 7,
        dims: vec![values.len() as i64],
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// Whether a graph over x [n, 4] whose `ConstantOfShape` size comes out of `arithmetic`
/// (reading `s`, x's shape, and writing `size`) is accepted.
fn shape_arithmetic(arithmetic: Vec<NodeProto>, constants: Vec<TensorProto>) -> Result<(), String> {
    let mut nodes = vec![node("Shape", &["x"], "s")];
    nodes.extend(arithmetic);
    nodes.push(node("ConstantOfShape", &["size"], "y"));
    let m = model(
        nodes,
        vec![value("x", 1, &[None, Some(4)])],
        constants,
        value("y", 1, &[None, None]),
    );
    m.estimate_cost(&input_spec(&m, 8))
        .map(|_| ())
        .map_err(|e| match e {
            EngineError::UnboundedShape { op, .. } => op,
            other => panic!("expected UnboundedShape, got {other:?}"),
        })
}

#[test]
fn shape_arithmetic_that_never_shrinks_is_allowed_and_any_that_may_is_refused() {
    // [n, 4] · 2 and + 1: grows with n.
    assert_eq!(
        shape_arithmetic(
            vec![
                node("Mul", &["s", "two"], "m"),
                node("Add", &["m", "two"], "size"),
            ],
            vec![int_weight("two", &[2, 2])],
        ),
        Ok(())
    );
    // A constant minus the shape, a constant over it, or the shape times a negative
    // number: the smallest input would allocate the most.
    for (op, inputs, c) in [
        ("Sub", ["c", "s"], 1_000_000),
        ("Div", ["c", "s"], 1_000_000),
        ("Mul", ["s", "c"], -1),
    ] {
        assert_eq!(
            shape_arithmetic(
                vec![node(op, &inputs, "size")],
                vec![int_weight("c", &[c, c])]
            ),
            Err("ConstantOfShape".to_string()),
            "{op}"
        );
    }
}

#[test]
fn a_range_starting_at_a_shape_and_a_branch_chosen_by_one_are_refused() {
    let range = model(
        vec![
            node("Shape", &["x"], "s"),
            node("ReduceMax", &["s"], "n"),
            node("Range", &["n", "limit", "one"], "y"),
        ],
        vec![value("x", 1, &[None])],
        vec![int_weight("limit", &[1_000_000]), int_weight("one", &[1])],
        value("y", 7, &[None]),
    );
    assert!(matches!(
        range.estimate_cost(&input_spec(&range, 8)),
        Err(EngineError::UnboundedShape { op, .. }) if op == "Range"
    ));
    let branch = |name: &str| GraphProto {
        node: vec![node("Identity", &["x"], name)],
        output: vec![value(name, 1, &[None])],
        ..Default::default()
    };
    let mut choose = node("If", &["big"], "y");
    for (attr, g) in [("then_branch", branch("a")), ("else_branch", branch("b"))] {
        choose.attribute.push(candle_onnx::onnx::AttributeProto {
            name: attr.into(),
            r#type: candle_onnx::onnx::attribute_proto::AttributeType::Graph as i32,
            g: Some(g),
            ..Default::default()
        });
    }
    let mut cast = node("Cast", &["n"], "big");
    cast.attribute.push(candle_onnx::onnx::AttributeProto {
        name: "to".into(),
        i: 7,
        r#type: candle_onnx::onnx::attribute_proto::AttributeType::Int as i32,
        ..Default::default()
    });
    let by_size = model(
        vec![
            node("Shape", &["x"], "s"),
            node("ReduceMax", &["s"], "n"),
            cast,
            choose,
        ],
        vec![value("x", 1, &[None])],
        vec![],
        value("y", 1, &[None]),
    );
    assert!(matches!(
        by_size.estimate_cost(&input_spec(&by_size, 8)),
        Err(EngineError::UnboundedShape { op, .. }) if op == "If"
    ));
}

#[test]
fn a_sequence_position_taken_from_data_is_refused() {
    // Which of two tensors is picked (and so its shape) is the input's to say.
    let pick = model(
        vec![
            node("SequenceConstruct", &["small", "big"], "seq"),
            node("SequenceAt", &["seq", "i"], "picked"),
            node("Shape", &["picked"], "s"),
            node("ConstantOfShape", &["s"], "y"),
        ],
        vec![value("i", 7, &[])],
        vec![weight("small", &[1]), weight("big", &[64])],
        value("y", 1, &[None]),
    );
    assert!(matches!(
        pick.estimate_cost(&input_spec(&pick, 1)),
        Err(EngineError::UnboundedShape { op, .. }) if op == "SequenceAt"
    ));
}

#[test]
fn a_dry_run_stops_at_its_limit_and_names_what_it_reached() {
    use inferchain_primitives::model::ModelCost;
    let m = matmul_relu();
    let spec = input_spec(&m, 64);
    let full = m.estimate_cost(&spec).expect("cost");
    assert_eq!(
        m.estimate_cost_within(&spec, Some(full))
            .expect("at the limit"),
        full
    );
    // Below the MatMul's products: the run stops after it, before Relu.
    let limit = ModelCost { flops: 100, ..full };
    match m.estimate_cost_within(&spec, Some(limit)) {
        Err(EngineError::CostOverLimit {
            at_least,
            limit: named,
        }) => {
            assert_eq!(named, limit);
            assert_eq!(at_least.flops, 2 * 64 * 5 * 3, "stopped after the MatMul");
        }
        other => panic!("expected CostOverLimit, got {other:?}"),
    }
    let tight_memory = ModelCost {
        peak_memory_bytes: full.peak_memory_bytes - 1,
        ..full
    };
    assert!(matches!(
        m.estimate_cost_within(&spec, Some(tight_memory)),
        Err(EngineError::CostOverLimit { .. })
    ));
}

/// `NonMaxSuppression` over boxes [1, n, 4] and scores [1, 1, n], keeping at most 5 boxes
/// above a 0.5 score, then the selected rows as floats: y [k, 3].
fn non_max_suppression(keep_from_data: bool) -> OnnxModel {
    non_max_suppression_limit(if keep_from_data { "data" } else { "int" })
}

/// [`non_max_suppression`] with the limit from the request's `data`, or a constant stored
/// as an `int` or a `float`.
fn non_max_suppression_limit(keep: &str) -> OnnxModel {
    let mut inputs = vec![
        value("boxes", 1, &[Some(1), None, Some(4)]),
        value("scores", 1, &[Some(1), Some(1), None]),
    ];
    let mut weights = vec![TensorProto {
        name: "threshold".into(),
        data_type: 1,
        dims: vec![1],
        raw_data: 0.5f32.to_le_bytes().to_vec(),
        ..Default::default()
    }];
    match keep {
        "data" => inputs.push(value("keep", 7, &[Some(1)])),
        "float" => weights.push(TensorProto {
            name: "keep".into(),
            data_type: 1,
            dims: vec![1],
            raw_data: 5f32.to_le_bytes().to_vec(),
            ..Default::default()
        }),
        _ => weights.push(int_weight("keep", &[5])),
    }
    weights.push(TensorProto {
        name: "iou".into(),
        data_type: 1,
        dims: vec![1],
        raw_data: 0.5f32.to_le_bytes().to_vec(),
        ..Default::default()
    });
    let mut cast = node("Cast", &["selected"], "y");
    cast.attribute.push(candle_onnx::onnx::AttributeProto {
        name: "to".into(),
        i: 1,
        r#type: 2,
        ..Default::default()
    });
    model(
        vec![
            node(
                "NonMaxSuppression",
                &["boxes", "scores", "keep", "iou", "threshold"],
                "selected",
            ),
            cast,
        ],
        inputs,
        weights,
        value("y", 1, &[None, Some(3)]),
    )
}

#[test]
fn non_max_suppression_is_metered_at_the_most_boxes_it_can_keep() {
    let m = non_max_suppression(false);
    // The dry run's zero scores are under the threshold: a real run on them keeps
    // nothing, but the meter counts the 5 rows the shapes allow (i64 and f32).
    let cost = m.estimate_cost(&input_spec(&m, 8)).expect("cost");
    let weights = m.weight_bytes() as u64;
    let inputs = 8 * 4 * 4 + 8 * 4;
    assert!(
        cost.peak_memory_bytes >= weights + 5 * 3 * (8 + 4),
        "{cost:?} with {weights} bytes of weights and {inputs} of inputs"
    );
    // Fewer boxes than the limit: every box at most.
    let few = m.estimate_cost(&input_spec(&m, 2)).expect("cost");
    assert!(few.peak_memory_bytes < cost.peak_memory_bytes);
    // A limit read from the request's data would let the data size the output.
    let hostile = non_max_suppression(true);
    match hostile.estimate_cost(&input_spec(&hostile, 8)) {
        Err(EngineError::UnboundedShape { op, input, .. }) => {
            assert_eq!((op.as_str(), input.as_str()), ("NonMaxSuppression", "keep"))
        }
        other => panic!("expected UnboundedShape, got {other:?}"),
    }
}

#[test]
fn parsed_trees_count_as_weights() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/zoo/sklearn-random-forest/model.onnx"
    );
    let bytes = std::fs::read(path).expect("the zoo's random forest");
    let proto = ModelProto::decode(bytes.as_slice()).expect("decodes");
    let graph = proto.graph.as_ref().expect("graph");
    let tree_nodes: usize = graph
        .node
        .iter()
        .flat_map(|n| &n.attribute)
        .filter(|a| a.name == "nodes_treeids")
        .map(|a| a.ints.len())
        .sum();
    let initializers: usize = graph
        .initializer
        .iter()
        .map(|t| t.raw_data.len() + 4 * t.float_data.len() + 8 * t.int64_data.len())
        .sum();
    assert!(tree_nodes > 100, "{tree_nodes} tree nodes");
    let m = OnnxModel::from_bytes(&bytes).expect("loads");
    // Each parsed node holds at least its threshold, feature and two child indices.
    assert!(
        m.weight_bytes() >= initializers + tree_nodes * 24,
        "{} bytes of weights for {tree_nodes} tree nodes and {initializers} of initializers",
        m.weight_bytes()
    );
}

#[test]
fn non_max_suppression_is_metered_the_same_whatever_type_its_limit_has() {
    let int_limit = non_max_suppression_limit("int");
    let float_limit = non_max_suppression_limit("float");
    let a = int_limit
        .estimate_cost(&input_spec(&int_limit, 8))
        .expect("cost");
    let b = float_limit
        .estimate_cost(&input_spec(&float_limit, 8))
        .expect("cost");
    assert_eq!(a.flops, b.flops);
    // The comparisons are counted: 8 boxes, 5 kept, 20 operations each.
    assert!(a.flops >= 8 * 5 * 20, "{a:?}");
}

#[test]
fn resize_is_metered_per_pass_with_its_scratch() {
    // x [64, 64] to [1, 4096] by cubic interpolation: the last axis first, so the first
    // pass writes 64 × 4096 values (binary64) before the second shrinks them.
    let scales = TensorProto {
        name: "scales".into(),
        data_type: 1,
        dims: vec![2],
        raw_data: [1.0f32 / 64.0, 64.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        ..Default::default()
    };
    let mut resize = node("Resize", &["x", "", "scales"], "y");
    resize.attribute.push(candle_onnx::onnx::AttributeProto {
        name: "mode".into(),
        s: b"cubic".to_vec(),
        r#type: 3,
        ..Default::default()
    });
    let m = model(
        vec![resize],
        vec![value("x", 1, &[Some(64), Some(64)])],
        vec![scales],
        value("y", 1, &[Some(1), Some(4096)]),
    );
    let cost = m.estimate_cost(&input_spec(&m, 1)).expect("cost");
    assert!(cost.flops >= 2 * 4 * 64 * 4096, "{cost:?}");
    assert!(cost.peak_memory_bytes >= 8 * 64 * 4096, "{cost:?}");
}

#[test]
fn a_value_defined_twice_is_refused_at_load() {
    let twice = ModelProto {
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            node: vec![node("Relu", &["x"], "w"), node("Identity", &["w"], "y")],
            input: vec![value("x", 1, &[Some(4)])],
            initializer: vec![weight("w", &[4])],
            output: vec![value("y", 1, &[Some(4)])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let err = OnnxModel::from_bytes(&twice).err().expect("refused");
    assert!(err.to_string().contains("already defined"), "{err}");
}

/// A node that reads a value only a later node writes is refused at load: a run node by
/// node would fail on it, and a run that fuses nodes (computing a chain at its first
/// node) must not succeed where that one fails.
#[test]
fn a_node_reading_a_later_nodes_value_is_refused_at_load() {
    let model = |nodes: Vec<NodeProto>| {
        ModelProto {
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(GraphProto {
                node: nodes,
                input: vec![value("x", 1, &[Some(4)])],
                initializer: vec![weight("b", &[4])],
                output: vec![value("y", 1, &[Some(4)])],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    };
    let shuffled = model(vec![
        node("Add", &["r", "b"], "y"),
        node("Relu", &["x"], "r"),
    ]);
    match OnnxModel::from_bytes(&shuffled) {
        Err(EngineError::Candle(e)) => {
            assert!(e.to_string().contains("before any node writes it"), "{e}")
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a graph out of order loaded"),
    }
    let ordered = model(vec![
        node("Relu", &["x"], "r"),
        node("Add", &["r", "b"], "y"),
    ]);
    assert!(OnnxModel::from_bytes(&ordered).is_ok());
}
