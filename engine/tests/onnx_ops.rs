//! The operators the engine computes itself (`engine/src/onnx/ops`), on cases the ONNX
//! backend data does not reach: padding counted or not in averages, `ceil_mode`, cropping
//! pads, global pooling, sequences in and out of tensors, and the errors for values of
//! the wrong kind.

use candle_core::{Device, Tensor};
use candle_onnx::onnx::{
    attribute_proto::AttributeType, AttributeProto, GraphProto, ModelProto, NodeProto,
    ValueInfoProto,
};
use inferchain_engine::{onnx::OnnxModel, EngineError};
use prost::Message;
use std::collections::HashMap;

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: values.to_vec(),
        r#type: AttributeType::Ints as i32,
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: value,
        r#type: AttributeType::Int as i32,
        ..Default::default()
    }
}

fn node(op: &str, input: &[&str], output: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: input.iter().map(|s| s.to_string()).collect(),
        output: output.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

/// Runs `nodes` as a graph on `inputs`; returns output `y`.
fn run(nodes: Vec<NodeProto>, inputs: &[(&str, Tensor)]) -> Result<Tensor, EngineError> {
    run_at(None, nodes, inputs)
}

/// [`run`] in a model that imports `opset` for the default domain.
fn run_at(
    opset: Option<i64>,
    nodes: Vec<NodeProto>,
    inputs: &[(&str, Tensor)],
) -> Result<Tensor, EngineError> {
    let mut out = run_outputs(opset, nodes, inputs, &["y"])?;
    Ok(out.remove("y").expect("output y"))
}

/// [`run_at`] with the graph outputs `outputs`.
fn run_outputs(
    opset: Option<i64>,
    nodes: Vec<NodeProto>,
    inputs: &[(&str, Tensor)],
    outputs: &[&str],
) -> Result<HashMap<String, Tensor>, EngineError> {
    let model = OnnxModel::from_bytes(&model_bytes(opset, nodes, inputs, outputs))?;
    model.run_named(named(inputs))
}

fn named(inputs: &[(&str, Tensor)]) -> HashMap<String, Tensor> {
    inputs
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

/// `nodes` as a model with graph inputs `inputs` and outputs `outputs`.
fn model_bytes(
    opset: Option<i64>,
    nodes: Vec<NodeProto>,
    inputs: &[(&str, Tensor)],
    outputs: &[&str],
) -> Vec<u8> {
    let value = |name: &str| ValueInfoProto {
        name: name.into(),
        ..Default::default()
    };
    ModelProto {
        graph: Some(GraphProto {
            node: nodes,
            input: inputs.iter().map(|(n, _)| value(n)).collect(),
            output: outputs.iter().map(|n| value(n)).collect(),
            ..Default::default()
        }),
        opset_import: opset
            .map(|version| candle_onnx::onnx::OperatorSetIdProto {
                domain: String::new(),
                version,
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn row(values: &[f32]) -> Tensor {
    Tensor::from_slice(values, (1, 1, values.len()), &Device::Cpu).expect("tensor")
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_vec1())
        .expect("f32 values")
}

#[test]
fn average_pool_counts_padding_only_when_asked() {
    let x = row(&[1.0, 2.0, 3.0, 4.0]);
    let pool = |include: i64| {
        let attrs = vec![
            ints("kernel_shape", &[3]),
            ints("pads", &[1, 1]),
            int("count_include_pad", include),
        ];
        run(
            vec![node("AveragePool", &["x"], &["y"], attrs)],
            &[("x", x.clone())],
        )
        .expect("runs")
    };
    assert_eq!(values(&pool(0)), [1.5, 2.0, 3.0, 3.5]);
    let included = values(&pool(1));
    let expected = [1.0, 2.0, 3.0, 7.0 / 3.0];
    for (a, b) in included.iter().zip(expected) {
        assert!((a - b).abs() < 1e-6, "{included:?}");
    }
}

#[test]
fn max_pool_ceil_mode_keeps_the_partial_window() {
    let x = row(&[1.0, 5.0, 2.0, 4.0, 3.0]);
    let pool = |ceil: i64| {
        let attrs = vec![
            ints("kernel_shape", &[2]),
            ints("strides", &[2]),
            int("ceil_mode", ceil),
        ];
        values(
            &run(
                vec![node("MaxPool", &["x"], &["y"], attrs)],
                &[("x", x.clone())],
            )
            .expect("runs"),
        )
    };
    assert_eq!(pool(0), [5.0, 4.0]);
    assert_eq!(pool(1), [5.0, 4.0, 3.0]);
}

#[test]
fn negative_pads_crop_and_constant_pads_fill() {
    let x = Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).expect("x");
    let pads = Tensor::new(&[-1i64, 2], &Device::Cpu).expect("pads");
    let fill = Tensor::new(9f32, &Device::Cpu).expect("value");
    let y = run(
        vec![node("Pad", &["x", "pads", "value"], &["y"], vec![])],
        &[("x", x), ("pads", pads), ("value", fill)],
    )
    .expect("runs");
    assert_eq!(values(&y), [2.0, 3.0, 9.0, 9.0]);
}

#[test]
fn global_average_pool_averages_each_plane() {
    let x = Tensor::from_slice(
        &[1f32, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0],
        (1, 2, 2, 2),
        &Device::Cpu,
    )
    .expect("x");
    let y = run(
        vec![node("GlobalAveragePool", &["x"], &["y"], vec![])],
        &[("x", x)],
    )
    .expect("runs");
    assert_eq!(y.dims(), [1, 2, 1, 1]);
    assert_eq!(values(&y), [2.5, 25.0]);
}

#[test]
fn a_tensor_split_into_a_sequence_and_stacked_back_is_unchanged() {
    let x = Tensor::from_slice(&[1f32, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), &Device::Cpu).expect("x");
    let y = run(
        vec![
            node(
                "SplitToSequence",
                &["x"],
                &["s"],
                vec![int("axis", 1), int("keepdims", 0)],
            ),
            node(
                "ConcatFromSequence",
                &["s"],
                &["y"],
                vec![int("axis", 1), int("new_axis", 1)],
            ),
        ],
        &[("x", x.clone())],
    )
    .expect("runs");
    assert_eq!(y.dims(), [2, 3]);
    assert_eq!(values(&y), values(&x));
}

#[test]
fn sequences_given_where_tensors_belong_are_named_errors() {
    let x = row(&[1.0, 2.0]);
    // A sequence as the graph's output.
    let err = run(
        vec![node("SequenceConstruct", &["x"], &["y"], vec![])],
        &[("x", x.clone())],
    )
    .expect_err("a sequence output");
    assert!(
        matches!(&err, EngineError::UnsupportedDType(m) if m.contains("sequence")),
        "{err}"
    );
    // A sequence into a tensor operator candle-onnx runs.
    let err = run(
        vec![
            node("SequenceConstruct", &["x"], &["s"], vec![]),
            node("Relu", &["s"], &["y"], vec![]),
        ],
        &[("x", x.clone())],
    )
    .expect_err("Relu of a sequence");
    assert!(err.to_string().contains("sequence"), "{err}");
    // A tensor where a sequence operator wants a sequence.
    let at = Tensor::new(0i64, &Device::Cpu).expect("position");
    let err = run(
        vec![node("SequenceAt", &["x", "at"], &["y"], vec![])],
        &[("x", x), ("at", at)],
    )
    .expect_err("SequenceAt of a tensor");
    assert!(err.to_string().contains("expected a sequence"), "{err}");
}

#[test]
fn layer_normalization_normalizes_from_its_axis_to_the_end() {
    let x = Tensor::from_slice(
        &[1f32, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0],
        (2, 2, 2),
        &Device::Cpu,
    )
    .expect("x");
    let scale = Tensor::from_slice(&[2f32, 2.0, 2.0, 2.0], (2, 2), &Device::Cpu).expect("scale");
    let bias = Tensor::from_slice(&[0.5f32, 0.5, 0.5, 0.5], (2, 2), &Device::Cpu).expect("bias");
    let y = run(
        vec![node(
            "LayerNormalization",
            &["x", "scale", "bias"],
            &["y"],
            vec![int("axis", 1)],
        )],
        &[("x", x), ("scale", scale), ("bias", bias)],
    )
    .expect("runs");
    assert_eq!(y.dims(), [2, 2, 2]);
    // Each sample's four values: mean 2.5 / var 1.25, and mean 11 / var 3.
    let expected =
        |v: f64, mean: f64, var: f64| ((v - mean) / (var + 1e-5).sqrt() * 2.0 + 0.5) as f32;
    let want: Vec<f32> = [1.0, 2.0, 3.0, 4.0]
        .iter()
        .map(|&v| expected(v, 2.5, 1.25))
        .chain(
            [10.0, 10.0, 10.0, 14.0]
                .iter()
                .map(|&v| expected(v, 11.0, 3.0)),
        )
        .collect();
    for (a, b) in values(&y).iter().zip(&want) {
        assert!((a - b).abs() < 1e-5, "{:?} vs {want:?}", values(&y));
    }
}

#[test]
fn squeeze_with_axes_as_an_attribute_removes_exactly_those_axes() {
    // Opset 11 gives the axes as an attribute; candle-onnx reads only the input form,
    // so the load rewrites one into the other.
    let x = Tensor::zeros((1, 3, 1), candle_core::DType::F32, &Device::Cpu).expect("zeros");
    let y = run_at(
        Some(11),
        vec![node("Squeeze", &["x"], &["y"], vec![ints("axes", &[0])])],
        &[("x", x.clone())],
    )
    .expect("squeeze runs");
    assert_eq!(y.dims(), &[3, 1]);
    let y = run_at(
        Some(11),
        vec![node("Squeeze", &["x"], &["y"], vec![ints("axes", &[-1])])],
        &[("x", x)],
    )
    .expect("squeeze runs");
    assert_eq!(y.dims(), &[1, 3]);
}

#[test]
fn operators_outside_the_allow_list_are_refused_at_load_with_their_version() {
    let x = row(&[1.0, 2.0]);
    let err = run_at(
        Some(15),
        vec![node("Shape", &["x"], &["y"], vec![int("start", 1)])],
        &[("x", x.clone())],
    )
    .expect_err("Shape with start is refused");
    assert!(
        matches!(&err, EngineError::UnsupportedOperator { op, version: 15, .. } if op == "Shape"),
        "{err}"
    );
    let mut gelu = node("Gelu", &["x"], &["y"], vec![]);
    gelu.domain = "com.microsoft".into();
    let err = run_at(Some(17), vec![gelu], &[("x", x)]).expect_err("another domain is refused");
    assert!(
        matches!(&err, EngineError::UnsupportedOperator { op, .. } if op == "com.microsoft.Gelu"),
        "{err}"
    );
}

fn i64s(values: &[i64]) -> Tensor {
    Tensor::from_slice(values, values.len(), &Device::Cpu).expect("i64 tensor")
}

#[test]
fn unsqueeze_puts_every_axis_where_the_output_rank_says() {
    let x = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).expect("zeros");
    for (axes, want) in [
        (vec![1, 2], vec![2, 1, 1, 3]),
        (vec![0, 3], vec![1, 2, 3, 1]),
        (vec![-1, -2], vec![2, 3, 1, 1]),
        (vec![3, 0], vec![1, 2, 3, 1]),
    ] {
        let y = run(
            vec![node("Unsqueeze", &["x", "axes"], &["y"], vec![])],
            &[("x", x.clone()), ("axes", i64s(&axes))],
        )
        .expect("unsqueeze");
        assert_eq!(y.dims(), &want[..], "axes {axes:?}");
    }
    let twice = run(
        vec![node("Unsqueeze", &["x", "axes"], &["y"], vec![])],
        &[("x", x), ("axes", i64s(&[1, 1]))],
    );
    assert!(twice.is_err(), "a repeated axis must be an error");
}

#[test]
fn trilu_zeroes_outside_its_triangle_even_where_values_are_infinite() {
    let inf = f32::NEG_INFINITY;
    let x = Tensor::from_slice(&[inf, inf, inf, inf], (2, 2), &Device::Cpu).expect("x");
    let upper = run(
        vec![node("Trilu", &["x", "k"], &["y"], vec![int("upper", 1)])],
        &[("x", x.clone()), ("k", i64s(&[1]))],
    )
    .expect("trilu");
    assert_eq!(values(&upper)[..2], [0.0, inf]);
    assert_eq!(values(&upper)[2..], [0.0, 0.0]);
    let lower = run(
        vec![node("Trilu", &["x"], &["y"], vec![int("upper", 0)])],
        &[("x", x)],
    )
    .expect("trilu");
    assert_eq!(values(&lower), vec![inf, 0.0, inf, inf]);
}

#[test]
fn tile_repeats_each_axis_and_a_zero_empties_it() {
    let x = row(&[1.0, 2.0]);
    let y = run(
        vec![node("Tile", &["x", "r"], &["y"], vec![])],
        &[("x", x.clone()), ("r", i64s(&[1, 2, 2]))],
    )
    .expect("tile");
    assert_eq!(y.dims(), &[1, 2, 4]);
    assert_eq!(values(&y), vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    let empty = run(
        vec![node("Tile", &["x", "r"], &["y"], vec![])],
        &[("x", x), ("r", i64s(&[1, 0, 3]))],
    )
    .expect("tile");
    assert_eq!(empty.dims(), &[1, 0, 6]);
}

#[test]
fn reduce_max_with_an_empty_axes_input_reduces_every_axis() {
    let x = row(&[3.0, -1.0, 7.0, 2.0]);
    let y = run_at(
        Some(18),
        vec![node("ReduceMax", &["x", "axes"], &["y"], vec![])],
        &[("x", x.clone()), ("axes", i64s(&[]))],
    )
    .expect("reduce");
    assert_eq!(y.dims(), &[1, 1, 1]);
    assert_eq!(values(&y), vec![7.0]);
    let y = run_at(
        Some(18),
        vec![node(
            "ReduceMin",
            &["x", "axes"],
            &["y"],
            vec![int("keepdims", 0)],
        )],
        &[("x", x.clone()), ("axes", i64s(&[]))],
    )
    .expect("reduce");
    assert_eq!(values(&y), vec![-1.0]);
    // With noop_with_empty_axes the input comes back as it is.
    let y = run_at(
        Some(18),
        vec![node(
            "ReduceMax",
            &["x", "axes"],
            &["y"],
            vec![int("noop_with_empty_axes", 1)],
        )],
        &[("x", x), ("axes", i64s(&[]))],
    )
    .expect("reduce");
    assert_eq!(y.dims(), &[1, 1, 4]);
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: value,
        r#type: AttributeType::Float as i32,
        ..Default::default()
    }
}

fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: value.as_bytes().to_vec(),
        r#type: AttributeType::String as i32,
        ..Default::default()
    }
}

fn i64_values(t: &Tensor) -> Vec<i64> {
    t.flatten_all()
        .and_then(|t| t.to_vec1())
        .expect("i64 values")
}

#[test]
fn top_k_orders_nan_first_then_equal_values_by_index_at_every_opset() {
    let x = Tensor::from_slice(&[1.0f32, 3.0, 3.0, f32::NAN, 2.0], (1, 5), &Device::Cpu)
        .expect("test tensor");
    let largest = run_outputs(
        Some(11),
        vec![node("TopK", &["x", "k"], &["y", "i"], vec![])],
        &[("x", x.clone()), ("k", i64s(&[3]))],
        &["y", "i"],
    )
    .expect("runs");
    let y = values(&largest["y"]);
    assert!(y[0].is_nan());
    assert_eq!(y[1..], [3.0, 3.0]);
    assert_eq!(i64_values(&largest["i"]), [3, 1, 2]);
    let smallest = run_outputs(
        Some(11),
        vec![node(
            "TopK",
            &["x", "k"],
            &["y", "i"],
            vec![int("largest", 0)],
        )],
        &[("x", x.clone()), ("k", i64s(&[2]))],
        &["y", "i"],
    )
    .expect("runs");
    assert_eq!(values(&smallest["y"]), [1.0, 2.0]);
    assert_eq!(i64_values(&smallest["i"]), [0, 4]);
    // Opset 1 takes k as an attribute.
    let v1 = run_outputs(
        Some(9),
        vec![node("TopK", &["x"], &["y", "i"], vec![int("k", 2)])],
        &[("x", x.clone())],
        &["y", "i"],
    )
    .expect("runs");
    assert_eq!(i64_values(&v1["i"]), [3, 1]);
    let err = run_outputs(
        Some(11),
        vec![node("TopK", &["x", "k"], &["y", "i"], vec![])],
        &[("x", x), ("k", i64s(&[6]))],
        &["y", "i"],
    )
    .expect_err("k over the axis");
    assert!(err.to_string().contains("TopK"), "{err}");
}

#[test]
fn group_normalization_scales_per_group_at_18_and_per_channel_at_21() {
    let x = Tensor::arange(0f32, 24.0, &Device::Cpu)
        .and_then(|t| t.reshape((1, 4, 2, 3)))
        .and_then(|t| t.sqr())
        .expect("test tensor");
    let norm = |opset: i64, scale: &[f32], bias: &[f32]| {
        let v = |s: &[f32]| Tensor::from_slice(s, s.len(), &Device::Cpu).expect("test tensor");
        run_at(
            Some(opset),
            vec![node(
                "GroupNormalization",
                &["x", "s", "b"],
                &["y"],
                vec![int("num_groups", 2), float("epsilon", 1e-3)],
            )],
            &[("x", x.clone()), ("s", v(scale)), ("b", v(bias))],
        )
    };
    let per_group = norm(18, &[2.0, 0.5], &[1.0, -1.0]).expect("opset 18");
    let per_channel = norm(21, &[2.0, 2.0, 0.5, 0.5], &[1.0, 1.0, -1.0, -1.0]).expect("opset 21");
    let bits = |t: &Tensor| values(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&per_group), bits(&per_channel));
    // Each group of 2 channels × 6 positions has mean 0 and variance 1 before the scale.
    let y = values(&per_channel);
    for (g, (scale, bias)) in [(2.0f32, 1.0f32), (0.5, -1.0)].iter().enumerate() {
        let group: Vec<f32> = y[g * 12..(g + 1) * 12]
            .iter()
            .map(|v| (v - bias) / scale)
            .collect();
        let mean = group.iter().sum::<f32>() / 12.0;
        let var = group.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 12.0;
        assert!(
            mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-2,
            "group {g}: {mean} {var}"
        );
    }
    // The wrong count for the opset is a named error, not a broadcast.
    assert!(norm(21, &[2.0, 0.5], &[1.0, -1.0]).is_err());
    assert!(norm(18, &[2.0, 2.0, 0.5, 0.5], &[1.0, 1.0, -1.0, -1.0]).is_err());
}

#[test]
fn space_to_depth_and_back_is_the_identity_in_both_modes() {
    let x = Tensor::arange(0f32, 32.0, &Device::Cpu)
        .and_then(|t| t.reshape((1, 2, 4, 4)))
        .expect("test tensor");
    for mode in ["DCR", "CRD"] {
        let y = run_at(
            Some(28),
            vec![
                node(
                    "SpaceToDepth",
                    &["x"],
                    &["d"],
                    vec![int("blocksize", 2), string("mode", mode)],
                ),
                node(
                    "DepthToSpace",
                    &["d"],
                    &["y"],
                    vec![int("blocksize", 2), string("mode", mode)],
                ),
            ],
            &[("x", x.clone())],
        )
        .expect("runs");
        assert_eq!(y.dims(), x.dims());
        assert_eq!(values(&y), values(&x), "{mode}");
    }
    // DCR puts a block's first channel-row first: depth 8 = 2 channels × 2 × 2.
    let d = run_at(
        Some(13),
        vec![node(
            "SpaceToDepth",
            &["x"],
            &["y"],
            vec![int("blocksize", 2)],
        )],
        &[("x", x)],
    )
    .expect("runs");
    assert_eq!(d.dims(), [1, 8, 2, 2]);
    assert_eq!(values(&d)[..4], [0.0, 2.0, 8.0, 10.0]);
}

#[test]
fn sum_mean_and_max_broadcast_and_mean_divides_exactly() {
    let a = row(&[1.0, 2.0, 10.0]);
    let b = Tensor::from_slice(&[0.1f32], (1, 1, 1), &Device::Cpu).expect("test tensor");
    let c = row(&[-1.0, 5.0, 0.2]);
    let inputs = [("a", a), ("b", b), ("c", c)];
    let run_op = |op: &str| {
        values(
            &run_at(
                Some(13),
                vec![node(op, &["a", "b", "c"], &["y"], vec![])],
                &inputs,
            )
            .expect("test tensor"),
        )
    };
    let sum = run_op("Sum");
    let want: Vec<f32> = [1.0f32, 2.0, 10.0]
        .iter()
        .zip([-1.0f32, 5.0, 0.2])
        .map(|(a, c)| (a + 0.1) + c)
        .collect();
    assert_eq!(sum, want);
    let mean = run_op("Mean");
    assert_eq!(mean, want.iter().map(|s| s / 3.0).collect::<Vec<_>>());
    assert_eq!(run_op("Max"), [1.0, 5.0, 10.0]);
}

/// A `Constant` node writing `name`: a scalar of ONNX element type `data_type` with
/// `int32_data` (or `float_data` for float).
fn scalar_constant(name: &str, data_type: i32, value: f64) -> NodeProto {
    use candle_onnx::onnx::{tensor_proto::DataType, TensorProto};
    let float = data_type == DataType::Float as i32;
    let tensor = TensorProto {
        data_type,
        float_data: if float { vec![value as f32] } else { vec![] },
        int32_data: if float { vec![] } else { vec![value as i32] },
        ..Default::default()
    };
    let mut constant = node("Constant", &[], &[name], vec![]);
    constant.attribute.push(AttributeProto {
        name: "value".into(),
        t: Some(tensor),
        r#type: AttributeType::Tensor as i32,
        ..Default::default()
    });
    constant
}

#[test]
fn quantize_linear_rounds_ties_to_even_saturates_and_dequantizes_back() {
    use candle_onnx::onnx::tensor_proto::DataType;
    let x = row(&[-300.0, -2.5, -0.5, 0.5, 1.5, 2.5, 1000.0, f32::NAN]);
    let nodes = vec![
        scalar_constant("scale", DataType::Float as i32, 1.0),
        scalar_constant("zero", DataType::Int8 as i32, -3.0),
        node("QuantizeLinear", &["x", "scale", "zero"], &["q"], vec![]),
        node("DequantizeLinear", &["q", "scale", "zero"], &["y"], vec![]),
    ];
    let out = run_outputs(Some(13), nodes, &[("x", x)], &["q", "y"]).expect("runs");
    // int8: round(x) - 3 in [-128, 127]; NaN to the minimum (onnxruntime's choice).
    let q: Vec<i64> = out["q"]
        .flatten_all()
        .expect("tensor")
        .to_vec1()
        .expect("tensor");
    assert_eq!(q, [-128, -5, -3, -3, -1, -1, 127, -128]);
    assert_eq!(
        values(&out["y"]),
        [-125.0, -2.0, 0.0, 0.0, 2.0, 2.0, 130.0, -125.0]
    );
}

#[test]
fn quantizing_to_float8_or_at_another_precision_is_refused_at_load() {
    let x = row(&[1.0]);
    // TensorProto.DataType 17: FLOAT8E4M3FN.
    let err = run_at(
        Some(21),
        vec![
            scalar_constant("scale", 1, 1.0),
            node(
                "QuantizeLinear",
                &["x", "scale"],
                &["y"],
                vec![int("output_dtype", 17)],
            ),
        ],
        &[("x", x.clone())],
    )
    .expect_err("float8 is refused");
    assert!(
        matches!(&err, EngineError::UnsupportedOp { op } if op.contains("float8e4m3fn")),
        "{err}"
    );
    // TensorProto.DataType 10: FLOAT16.
    let err = run_at(
        Some(23),
        vec![
            scalar_constant("scale", 1, 1.0),
            node(
                "QuantizeLinear",
                &["x", "scale"],
                &["y"],
                vec![int("precision", 10)],
            ),
        ],
        &[("x", x)],
    )
    .expect_err("a float16 precision is refused");
    assert!(
        matches!(&err, EngineError::UnsupportedOperator { op, .. } if op == "QuantizeLinear"),
        "{err}"
    );
}

#[test]
fn qlinear_matmul_requantizes_per_column_and_conv_integer_pads_with_the_zero_point() {
    use candle_onnx::onnx::tensor_proto::DataType;
    // A [1, 2] uint8 (zero point 2), B [2, 2] uint8 (zero point 0), per-column B scales.
    let a = Tensor::from_slice(&[4u8, 6], (1, 2), &Device::Cpu).expect("tensor");
    let b = Tensor::from_slice(&[1u8, 2, 3, 4], (2, 2), &Device::Cpu).expect("tensor");
    let b_scale = Tensor::from_slice(&[0.5f32, 0.25], 2, &Device::Cpu).expect("tensor");
    let nodes = vec![
        scalar_constant("a_scale", DataType::Float as i32, 1.0),
        scalar_constant("a_zero", DataType::Uint8 as i32, 2.0),
        scalar_constant("b_zero", DataType::Uint8 as i32, 0.0),
        scalar_constant("y_scale", DataType::Float as i32, 1.0),
        scalar_constant("y_zero", DataType::Uint8 as i32, 10.0),
        node(
            "QLinearMatMul",
            &[
                "a", "a_scale", "a_zero", "b", "b_scale", "b_zero", "y_scale", "y_zero",
            ],
            &["y"],
            vec![],
        ),
    ];
    let y = run_at(Some(13), nodes, &[("a", a), ("b", b), ("b_scale", b_scale)]).expect("runs");
    // (A - 2) = [2, 4]; × B = [14, 20]; × [0.5, 0.25] = [7, 5]; + 10.
    assert_eq!(y.dtype(), candle_core::DType::U8);
    assert_eq!(
        y.flatten_all()
            .expect("tensor")
            .to_vec1::<u8>()
            .expect("tensor"),
        [17, 15]
    );

    // ConvInteger: a 3×3 input of 5s with zero point 5 padded by one: every window sums
    // zeros, whatever the weights; an input of 6s counts the taps inside the image.
    for (fill, want) in [(5u8, [0i64; 9]), (6, [4, 6, 4, 6, 9, 6, 4, 6, 4])] {
        let x = Tensor::from_slice(&[fill; 9], (1, 1, 3, 3), &Device::Cpu).expect("tensor");
        let w = Tensor::from_slice(&[1u8; 9], (1, 1, 3, 3), &Device::Cpu).expect("tensor");
        let nodes = vec![
            scalar_constant("x_zero", DataType::Uint8 as i32, 5.0),
            node(
                "ConvInteger",
                &["x", "w", "x_zero"],
                &["y"],
                vec![ints("pads", &[1, 1, 1, 1])],
            ),
        ];
        let y = run_at(Some(13), nodes, &[("x", x), ("w", w)]).expect("runs");
        assert_eq!(y.dims(), [1, 1, 3, 3]);
        assert_eq!(
            y.flatten_all()
                .expect("tensor")
                .to_vec1::<i64>()
                .expect("tensor"),
            want
        );
    }
}

#[test]
fn einsum_on_float32_agrees_with_the_elementwise_float64_definition() {
    use candle_onnx::onnx::attribute_proto::AttributeType;
    let cases: [(&str, &[&[usize]]); 11] = [
        ("ij,jk->ik", &[&[3, 4], &[4, 5]]),
        ("bij,bjk->bik", &[&[2, 3, 4], &[2, 4, 2]]),
        ("bhqd,bhkd->bhqk", &[&[1, 2, 3, 4], &[1, 2, 5, 4]]),
        ("ii->i", &[&[4, 4]]),
        ("ii", &[&[4, 4]]),
        ("...ij,...jk", &[&[2, 3, 4], &[2, 4, 3]]),
        ("i,i", &[&[6], &[6]]),
        ("ij->", &[&[3, 5]]),
        ("ijk->kji", &[&[2, 3, 4]]),
        ("ij,jk,kl->il", &[&[2, 3], &[3, 4], &[4, 2]]),
        ("bii,bi->b", &[&[2, 3, 3], &[2, 3]]),
    ];
    for (equation, shapes) in cases {
        let names: Vec<String> = (0..shapes.len()).map(|i| format!("x{i}")).collect();
        let mut einsum = node(
            "Einsum",
            &names.iter().map(String::as_str).collect::<Vec<_>>(),
            &["y"],
            vec![],
        );
        einsum.attribute.push(AttributeProto {
            name: "equation".into(),
            s: equation.as_bytes().to_vec(),
            r#type: AttributeType::String as i32,
            ..Default::default()
        });
        let inputs: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let n: usize = s.iter().product();
                let values: Vec<f32> = (0..n)
                    .map(|k| ((k * 7 + i * 3) % 11) as f32 * 0.25 - 1.0)
                    .collect();
                Tensor::from_vec(values, *s, &Device::Cpu).expect("tensor")
            })
            .collect();
        let run_as = |dtype: candle_core::DType| {
            let named: Vec<(&str, Tensor)> = names
                .iter()
                .zip(&inputs)
                .map(|(n, t)| (n.as_str(), t.to_dtype(dtype).expect("cast")))
                .collect();
            run_at(Some(13), vec![einsum.clone()], &named)
                .unwrap_or_else(|e| panic!("{equation}: {e}"))
        };
        let single = run_as(candle_core::DType::F32);
        let double = run_as(candle_core::DType::F64);
        assert_eq!(single.dims(), double.dims(), "{equation}");
        let single: Vec<f64> = values(&single).into_iter().map(f64::from).collect();
        let double: Vec<f64> = double
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("f64 values");
        for (s, d) in single.iter().zip(&double) {
            assert!(
                (s - d).abs() <= 1e-5 * (1.0 + d.abs()),
                "{equation}: {s} vs {d}"
            );
        }
    }
}

/// A `Conv` with the `Clip` after it, fused in a plain run, gives the bits the two give
/// one after the other (a traced run fuses nothing), for the general, the 1×1 and the
/// depthwise convolution, with a NaN in the input; a `Conv` whose output the graph also
/// returns is not fused, and both outputs are right.
#[test]
fn a_conv_fused_with_its_clip_gives_the_unfused_bits() {
    let seeded = |len: usize, seed: u32| -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let h = (i ^ seed).wrapping_mul(2_654_435_761).rotate_left(11);
                (h as f32 / u32::MAX as f32 - 0.5) * 8.0
            })
            .collect()
    };
    // (channels in, out, kernel, group, stride)
    for (c, m, k, group, stride) in [(4, 6, 3, 1, 1), (8, 5, 1, 1, 1), (6, 6, 3, 6, 2)] {
        let mut x = seeded(c * 20 * 20, 1);
        x[7] = f32::NAN;
        let x = Tensor::from_vec(x, (1, c, 20, 20), &Device::Cpu).expect("x");
        let w = Tensor::from_vec(
            seeded(m * (c / group) * k * k, 2),
            (m, c / group, k, k),
            &Device::Cpu,
        )
        .expect("w");
        let b = Tensor::from_vec(seeded(m, 3), m, &Device::Cpu).expect("b");
        let lo = Tensor::new(-1.5f32, &Device::Cpu).expect("lo");
        let hi = Tensor::new(2.0f32, &Device::Cpu).expect("hi");
        let pads = (k / 2) as i64;
        let conv = node(
            "Conv",
            &["x", "w", "b"],
            &["h"],
            vec![
                int("group", group as i64),
                ints("pads", &[pads; 4]),
                ints("strides", &[stride; 2]),
            ],
        );
        let clip = node("Clip", &["h", "lo", "hi"], &["y"], vec![]);
        let inputs = [("x", x), ("w", w), ("b", b), ("lo", lo), ("hi", hi)];
        let named = named(&inputs);
        let model = |outputs: &[&str]| {
            let bytes = model_bytes(None, vec![conv.clone(), clip.clone()], &inputs, outputs);
            OnnxModel::from_bytes(&bytes).expect("model")
        };
        let bits = |t: &Tensor| values(t).iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
        let fused = model(&["y"]).run_named(named.clone()).expect("fused run");
        let mut trace = Vec::new();
        let unfused = model(&["y"])
            .run_named_traced(named.clone(), Some(&mut trace))
            .expect("traced run");
        assert_eq!(trace.len(), 2, "the traced run computes both nodes");
        assert_eq!(
            bits(&fused["y"]),
            bits(&unfused["y"]),
            "c{c} m{m} k{k} g{group}"
        );
        let both = model(&["h", "y"]).run_named(named).expect("both outputs");
        assert_eq!(bits(&both["y"]), bits(&fused["y"]));
        let clamped: Vec<u32> = values(&both["h"])
            .iter()
            .map(|&v| {
                let v = if v < -1.5 { -1.5 } else { v };
                (if v > 2.0 { 2.0 } else { v }).to_bits()
            })
            .collect();
        assert_eq!(clamped, bits(&fused["y"]));
        assert!(
            values(&fused["y"]).iter().any(|v| v.is_nan()),
            "the NaN stays NaN"
        );
    }
}

/// `len` values in [-4, 4) from `seed`, about one in 41 of them −0.
fn seeded_values(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| {
            let h = (i ^ seed).wrapping_mul(2_654_435_761).rotate_left(11);
            match h % 41 {
                0 => -0.0,
                _ => (h as f32 / u32::MAX as f32 - 0.5) * 8.0,
            }
        })
        .collect()
}

/// A `Relu` or `HardSwish` that alone reads a `Conv` is fused into it in a plain run: the
/// bits of the traced run, which computes the two nodes apart — a NaN channel (Relu gives
/// +0), −0, and every layout the convolution can produce (large planes NCHW, small ones
/// channels last into a following convolution, depthwise and not).
#[test]
fn a_conv_fused_with_its_relu_or_hard_swish_gives_the_unfused_bits() {
    let bits = |t: &Tensor| values(t).iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    // (channels in, out, kernel, group, stride, side)
    for (c, m, k, group, stride, side) in [
        (4, 6, 3, 1, 1, 20),
        (3, 8, 3, 1, 2, 40),
        (8, 5, 1, 1, 1, 6),
        (6, 6, 3, 6, 2, 12),
        (16, 16, 3, 16, 1, 20),
    ] {
        for activation in ["Relu", "HardSwish"] {
            let x = seeded_values(2 * c * side * side, 1);
            let x = Tensor::from_vec(x, (2, c, side, side), &Device::Cpu).expect("x");
            let w = Tensor::from_vec(
                seeded_values(m * (c / group) * k * k, 2),
                (m, c / group, k, k),
                &Device::Cpu,
            )
            .expect("w");
            let mut bias = seeded_values(m, 3);
            let b = Tensor::from_vec(bias.clone(), m, &Device::Cpu).expect("b");
            bias[0] = f32::NAN;
            let nan_b = Tensor::from_vec(bias, m, &Device::Cpu).expect("b");
            let w2 =
                Tensor::from_vec(seeded_values(3 * m, 4), (3, m, 1, 1), &Device::Cpu).expect("w2");
            let pads = (k / 2) as i64;
            let conv = node(
                "Conv",
                &["x", "w", "b"],
                &["h"],
                vec![
                    int("group", group as i64),
                    ints("pads", &[pads; 4]),
                    ints("strides", &[stride; 2]),
                ],
            );
            let act = node(activation, &["h"], &["a"], vec![]);
            // Fused and traced, then the convolution alone: the activation was applied.
            let mut nodes = vec![conv.clone(), act.clone()];
            let inputs = [("x", x.clone()), ("w", w.clone()), ("b", nan_b)];
            let run = |nodes: Vec<NodeProto>, out: &str, traced: bool| {
                let bytes = model_bytes(Some(17), nodes, &inputs, &[out]);
                let model = OnnxModel::from_bytes(&bytes).expect("model");
                let mut trace = Vec::new();
                let outputs = if traced {
                    model.run_named_traced(named(&inputs), Some(&mut trace))
                } else {
                    model.run_named(named(&inputs))
                };
                bits(&outputs.expect("run")[out])
            };
            let fused = run(nodes.clone(), "a", false);
            let what = format!("{activation} c{c} m{m} k{k} g{group} s{stride} side {side}");
            assert_eq!(fused, run(nodes.clone(), "a", true), "{what}");
            assert_ne!(fused, run(vec![conv.clone()], "h", false), "{what} applied");
            let nan_channel = (activation == "Relu").then_some(0u32);
            let first_plane = &fused[..fused.len() / (2 * m)];
            match nan_channel {
                Some(zero) => assert!(first_plane.iter().all(|&v| v == zero), "{what}"),
                None => assert!(first_plane.iter().all(|&v| f32::from_bits(v).is_nan())),
            }
            // A 1×1 convolution after it: where planes are small, `a` is stored channels
            // last between the two.
            nodes.push(node("Conv", &["a", "w2"], &["y"], vec![]));
            let inputs = [("x", x), ("w", w), ("b", b), ("w2", w2)];
            let bytes = model_bytes(Some(17), nodes, &inputs, &["y"]);
            let model = OnnxModel::from_bytes(&bytes).expect("model");
            let fused = model.run_named(named(&inputs)).expect("fused run");
            let mut trace = Vec::new();
            let unfused = model
                .run_named_traced(named(&inputs), Some(&mut trace))
                .expect("traced run");
            assert_eq!(trace.len(), 3, "the traced run computes every node");
            assert_eq!(bits(&fused["y"]), bits(&unfused["y"]), "{what} then 1×1");
        }
    }
}

/// A `Conv` whose output only an `Add` reads (a residual connection), and the `Relu` or
/// `HardSwish` that alone reads the sum if there is one, are computed at once in a plain
/// run: the bits of the traced run, which computes each node apart. Either operand
/// order; a NaN channel from the bias and a NaN in the residual; large planes (NCHW) and
/// small ones (channels last, with a channels-last residual too); and the chains that
/// run node by node (the other operand computed after the `Conv`, or broadcast).
#[test]
fn a_conv_with_its_residual_add_and_activation_gives_the_unfused_bits() {
    let bits = |t: &Tensor| values(t).iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    let tensor = |v: Vec<f32>, dims: &[usize]| Tensor::from_vec(v, dims, &Device::Cpu).expect("t");
    // (channels in, out, kernel, group, stride, side)
    for (c, m, k, group, stride, side) in [
        (4, 6, 3, 1, 1, 20),
        (3, 8, 3, 1, 2, 40),
        (8, 5, 1, 1, 1, 6),
        (6, 6, 3, 6, 2, 12),
        (16, 16, 3, 16, 1, 20),
        // Grouped, not depthwise: NCHW out on a small plane, its residual channels last.
        (4, 6, 3, 2, 1, 6),
    ] {
        let out_side = (side - 1) / stride + 1;
        let plane = out_side * out_side;
        let x = tensor(seeded_values(2 * c * side * side, 1), &[2, c, side, side]);
        let w = tensor(
            seeded_values(m * (c / group) * k * k, 2),
            &[m, c / group, k, k],
        );
        let mut bias = seeded_values(m, 3);
        bias[0] = f32::NAN;
        let b = tensor(bias, &[m]);
        let mut r = seeded_values(2 * m * plane, 5);
        // A NaN of its own in channel 1 (where the convolution's values are numbers).
        r[plane + 1] = f32::from_bits(0x7fc0_1234);
        let r = tensor(r, &[2, m, out_side, out_side]);
        let broadcast = tensor(seeded_values(m, 6), &[1, m, 1, 1]);
        let wr = tensor(seeded_values(m * c, 7), &[m, c, 1, 1]);
        let w2 = tensor(seeded_values(3 * m, 4), &[3, m, 1, 1]);
        let conv = node(
            "Conv",
            &["x", "w", "b"],
            &["h"],
            vec![
                int("group", group as i64),
                ints("pads", &[(k / 2) as i64; 4]),
                ints("strides", &[stride as i64; 2]),
            ],
        );
        for activation in [None, Some("Relu"), Some("HardSwish")] {
            for conv_first in [true, false] {
                for residual in [
                    "input",
                    "later",
                    "broadcast",
                    "channels last",
                    "x read between",
                    "r read between",
                    "own input",
                    "h returned",
                    "sum returned",
                ] {
                    if residual == "own input" && (c != m || stride != 1) {
                        continue;
                    }
                    let operand = match residual {
                        "broadcast" => "rb",
                        // The `Conv`'s own input `x`: fused without an activation; with
                        // one, node by node (`x` is last read at the `Add`, before the
                        // chain's end).
                        "own input" => "x",
                        _ => "r",
                    };
                    let add_inputs = match conv_first {
                        true => ["h", operand],
                        false => [operand, "h"],
                    };
                    let mut nodes = Vec::new();
                    let mut inputs = vec![("x", x.clone()), ("w", w.clone()), ("b", b.clone())];
                    match residual {
                        "input" | "x read between" | "r read between" | "h returned"
                        | "sum returned" => inputs.push(("r", r.clone())),
                        "own input" => {}
                        "broadcast" => inputs.push(("rb", broadcast.clone())),
                        // Computed after the `Conv`, between it and the `Add`: node by node.
                        "later" => inputs.push(("r0", r.clone())),
                        // Another convolution's output, stored channels last where the
                        // planes are small (its only reader, the `Add`, keeps the layout).
                        "channels last" => {
                            inputs.push(("wr", wr.clone()));
                            nodes.push(node(
                                "Conv",
                                &["x", "wr"],
                                &["r"],
                                vec![ints("strides", &[stride as i64; 2])],
                            ));
                        }
                        other => panic!("no residual case {other}"),
                    }
                    nodes.push(conv.clone());
                    match residual {
                        "later" => nodes.push(node("Neg", &["r0"], &["r"], vec![])),
                        // A node between the `Conv` and the `Add` (the last reader of the
                        // `Conv`'s input): node by node.
                        "x read between" => nodes.push(node("Neg", &["x"], &["n"], vec![])),
                        _ => {}
                    }
                    nodes.push(node("Add", &add_inputs, &["s"], vec![]));
                    if residual == "r read between" {
                        // A node between the `Add` and the activation (the other
                        // operand's last reader): the `Conv` and the `Add` fuse, the
                        // activation runs apart.
                        nodes.push(node("Neg", &["r"], &["n"], vec![]));
                    }
                    let mut out = "s";
                    if let Some(activation) = activation {
                        nodes.push(node(activation, &["s"], &["a"], vec![]));
                        out = "a";
                    }
                    if residual == "channels last" {
                        inputs.push(("w2", w2.clone()));
                        nodes.push(node("Conv", &[out, "w2"], &["y"], vec![]));
                        out = "y";
                    }
                    // Values also returned: kept apart from the chain (`n` read between,
                    // `h` the convolution's, `s` the sum).
                    let outputs: &[&str] = match residual {
                        "x read between" | "r read between" => &[out, "n"],
                        "h returned" => &[out, "h"],
                        "sum returned" if out != "s" => &[out, "s"],
                        _ => &[out],
                    };
                    let bytes = model_bytes(Some(17), nodes.clone(), &inputs, outputs);
                    let model = OnnxModel::from_bytes(&bytes).expect("model");
                    let plain = model.run_named(named(&inputs)).expect("run");
                    let fused = bits(&plain[out]);
                    let mut trace = Vec::new();
                    let traced = model
                        .run_named_traced(named(&inputs), Some(&mut trace))
                        .expect("traced run");
                    assert_eq!(
                        trace.len(),
                        nodes.len(),
                        "the traced run computes every node"
                    );
                    // A second plain run of the same model: the same bits.
                    let again = model.run_named(named(&inputs)).expect("second run");
                    for name in outputs {
                        assert_eq!(
                            bits(&plain[*name]),
                            bits(&traced[*name]),
                            "{residual} {name}"
                        );
                        assert_eq!(
                            bits(&again[*name]),
                            bits(&traced[*name]),
                            "{residual} {name}"
                        );
                    }
                    let what = format!(
                        "{activation:?} conv first {conv_first} {residual} c{c} m{m} k{k} g{group} s{stride} side {side}"
                    );
                    assert_eq!(fused, bits(&traced[out]), "{what}");
                    if residual == "input" {
                        let alone = run_outputs(Some(17), vec![conv.clone()], &inputs, &["h"])
                            .expect("the convolution alone");
                        assert_ne!(fused, bits(&alone["h"]), "{what}: the residual was added");
                    }
                }
            }
        }
    }
}

/// The `Clip` a `Conv` is fused into may come later, after the nodes that make its bounds
/// (as torch.onnx writes them); a node in between that is the last to read the `Conv`'s
/// input keeps the two apart. Either way the bits are those of a traced run.
#[test]
fn a_conv_fuses_with_a_later_clip_only_while_its_inputs_are_kept() {
    let scalar = |name: &str, v: f32| NodeProto {
        op_type: "Constant".into(),
        output: vec![name.into()],
        attribute: vec![AttributeProto {
            name: "value".into(),
            r#type: AttributeType::Tensor as i32,
            t: Some(candle_onnx::onnx::TensorProto {
                data_type: 1,
                float_data: vec![v],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let x: Vec<f32> = (0..2 * 9 * 9)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.3)
        .collect();
    let w: Vec<f32> = (0..3 * 2 * 9)
        .map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.25)
        .collect();
    let inputs = [
        (
            "x",
            Tensor::from_vec(x, (1, 2, 9, 9), &Device::Cpu).expect("x"),
        ),
        (
            "w",
            Tensor::from_vec(w, (3, 2, 3, 3), &Device::Cpu).expect("w"),
        ),
    ];
    let conv = node("Conv", &["x", "w"], &["h"], vec![ints("pads", &[1; 4])]);
    let clip = node("Clip", &["h", "lo", "hi"], &["y"], vec![]);
    let between = [
        vec![scalar("lo", -1.0), scalar("hi", 1.5)],
        vec![
            scalar("lo", -1.0),
            node("Neg", &["x"], &["nx"], vec![]),
            scalar("hi", 1.5),
        ],
    ];
    for middle in between {
        let mut nodes = vec![conv.clone()];
        nodes.extend(middle);
        nodes.push(clip.clone());
        let outputs: &[&str] = if nodes.iter().any(|n| n.op_type == "Neg") {
            &["y", "nx"]
        } else {
            &["y"]
        };
        let plain = run_outputs(Some(17), nodes.clone(), &inputs, outputs).expect("run");
        let bytes = model_bytes(Some(17), nodes, &inputs, outputs);
        let mut trace = Vec::new();
        let traced = OnnxModel::from_bytes(&bytes)
            .expect("model")
            .run_named_traced(named(&inputs), Some(&mut trace))
            .expect("traced run");
        let bits = |t: &Tensor| values(t).iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
        assert_eq!(bits(&plain["y"]), bits(&traced["y"]));
        assert!(values(&plain["y"]).iter().all(|v| (-1.0..=1.5).contains(v)));
        assert!(values(&plain["y"]).iter().any(|&v| v != -1.0 && v != 1.5));
    }
}

/// A `Constant` node holding the f32 scalar `value`.
fn float_constant(output: &str, value: f32) -> NodeProto {
    constant(
        output,
        candle_onnx::onnx::TensorProto {
            data_type: 1,
            float_data: vec![value],
            ..Default::default()
        },
    )
}

/// A `Constant` node holding int64 `values` (1-D).
fn int64_constant(output: &str, values: &[i64]) -> NodeProto {
    constant(
        output,
        candle_onnx::onnx::TensorProto {
            data_type: 7,
            dims: vec![values.len() as i64],
            int64_data: values.to_vec(),
            ..Default::default()
        },
    )
}

/// A `Constant` node whose `value` is `tensor`.
fn constant(output: &str, tensor: candle_onnx::onnx::TensorProto) -> NodeProto {
    node(
        "Constant",
        &[],
        &[output],
        vec![AttributeProto {
            name: "value".into(),
            t: Some(tensor),
            r#type: AttributeType::Tensor as i32,
            ..Default::default()
        }],
    )
}

/// torch.onnx's flatten: `Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]))`.
#[test]
fn shape_arithmetic_kept_between_runs_follows_the_input_shapes() {
    let nodes = vec![
        node("Shape", &["x"], &["s"], vec![]),
        int64_constant("zero", &[0]),
        node("Gather", &["s", "zero"], &["n"], vec![]),
        int64_constant("minus_one", &[-1]),
        node(
            "Concat",
            &["n", "minus_one"],
            &["shape"],
            vec![int("axis", 0)],
        ),
        node("Reshape", &["x", "shape"], &["y"], vec![]),
    ];
    let x = |n: usize| {
        Tensor::arange(0f32, (n * 6) as f32, &Device::Cpu)
            .and_then(|t| t.reshape((n, 2, 3)))
            .expect("x")
    };
    let bytes = model_bytes(Some(17), nodes, &[("x", x(2))], &["y"]);
    let model = OnnxModel::from_bytes(&bytes).expect("loads");
    for n in [2usize, 2, 3, 1, 2] {
        let input = x(n);
        let y = model
            .run_named(named(&[("x", input.clone())]))
            .expect("runs")
            .remove("y")
            .expect("y");
        assert_eq!(y.dims(), &[n, 6], "batch {n}");
        assert_eq!(values(&y), values(&input), "batch {n}");
    }
}

/// A later run skips the steps computed from weights and shapes alone and is handed only
/// the values that a step still running reads: here a small constant `a` (kept) that a
/// static step over the budget (`b`, 4.4 MB, run every time) reads, and the shape chain's
/// intermediate values (kept, read by no running step). Every run gives the first one's
/// bits.
#[test]
fn a_value_a_step_over_the_budget_reads_is_handed_on_between_runs() {
    let (rows, cols) = (1100usize, 1000usize);
    assert!(rows * cols * 4 > inferchain_engine::onnx::MAX_KEPT_BYTES);
    let nodes = vec![
        float_constant("a", 0.5),
        int64_constant("big", &[rows as i64, cols as i64]),
        node("Expand", &["a", "big"], &["b"], vec![]),
        node("Shape", &["x"], &["s"], vec![]),
        int64_constant("zero", &[0]),
        node("Gather", &["s", "zero"], &["n"], vec![]),
        int64_constant("minus_one", &[-1]),
        node(
            "Concat",
            &["n", "minus_one"],
            &["shape"],
            vec![int("axis", 0)],
        ),
        node("Add", &["x", "b"], &["sum"], vec![]),
        node("Reshape", &["sum", "shape"], &["y"], vec![]),
    ];
    let x = Tensor::arange(0f32, (rows * cols) as f32, &Device::Cpu)
        .and_then(|t| t.reshape((rows, cols)))
        .expect("x");
    let bytes = model_bytes(Some(17), nodes, &[("x", x.clone())], &["y"]);
    let model = OnnxModel::from_bytes(&bytes).expect("loads");
    let first = values(&model.run_named(named(&[("x", x.clone())])).expect("runs")["y"]);
    assert_eq!(first[3], 3.5);
    for _ in 0..2 {
        let again = model
            .run_named(named(&[("x", x.clone())]))
            .expect("runs again");
        assert_eq!(values(&again["y"]), first);
    }
}

/// The shape of `NonMaxSuppression`'s output depends on the data: what reads it is never
/// kept between runs, even with the same input shapes.
#[test]
fn a_shape_decided_by_data_is_not_kept_between_runs() {
    let nodes = vec![
        int64_constant("keep", &[4]),
        node(
            "NonMaxSuppression",
            &["boxes", "scores", "keep"],
            &["selected"],
            vec![],
        ),
        node("Shape", &["selected"], &["s"], vec![]),
        node("Cast", &["s"], &["y"], vec![int("to", 1)]),
    ];
    let boxes = Tensor::from_vec(
        (0..4)
            .flat_map(|i| [0.0, 10.0 * i as f32, 1.0, 10.0 * i as f32 + 1.0])
            .collect::<Vec<f32>>(),
        (1, 4, 4),
        &Device::Cpu,
    )
    .expect("boxes");
    let scores = |s: [f32; 4]| Tensor::from_vec(s.to_vec(), (1, 1, 4), &Device::Cpu).expect("s");
    let inputs = [("boxes", boxes.clone()), ("scores", scores([0.9; 4]))];
    let model =
        OnnxModel::from_bytes(&model_bytes(Some(11), nodes, &inputs, &["y"])).expect("loads");
    // Without a score threshold every box is kept: 4 rows; boxes that overlap entirely
    // (all the same box) keep one.
    let same =
        Tensor::from_vec([0f32, 0.0, 1.0, 1.0].repeat(4), (1, 4, 4), &Device::Cpu).expect("boxes");
    for (b, rows) in [(&boxes, 4f32), (&same, 1.0), (&boxes, 4.0)] {
        let y = model
            .run_named(named(&[("boxes", b.clone()), ("scores", scores([0.9; 4]))]))
            .expect("runs")
            .remove("y")
            .expect("y");
        assert_eq!(values(&y), [rows, 3.0]);
    }
}

/// Values stored channels last between convolutions (`inferchain_engine::channels_last`)
/// give the bits of the same graph run with every intermediate returned (a returned value
/// is never stored so): 1×1, depthwise and 1×1 again, through Relu, HardSwish and a
/// residual Add, on planes small enough for the channels-last depthwise path.
#[test]
fn channels_last_values_between_convolutions_change_no_bit() {
    let det = |n: usize, seed: u32| -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let h = i
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(97))
                    >> 8;
                (h % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    };
    let t = |dims: &[usize], seed| {
        Tensor::from_vec(det(dims.iter().product(), seed), dims, &Device::Cpu).expect("tensor")
    };
    let (c, m) = (20usize, 6usize);
    let inputs = [
        ("x", t(&[2, 8, 6, 5], 1)),
        ("w1", t(&[c, 8, 1, 1], 2)),
        ("b1", t(&[c], 3)),
        ("w2", t(&[c, 1, 3, 3], 4)),
        ("w3", t(&[c, c, 1, 1], 5)),
        ("b3", t(&[c], 6)),
        ("w4", t(&[m, c, 1, 1], 7)),
    ];
    let nodes = || {
        vec![
            node("Conv", &["x", "w1", "b1"], &["c1"], vec![]),
            node("Relu", &["c1"], &["r1"], vec![]),
            node(
                "Conv",
                &["r1", "w2"],
                &["c2"],
                vec![
                    int("group", c as i64),
                    ints("pads", &[1, 1, 1, 1]),
                    ints("kernel_shape", &[3, 3]),
                ],
            ),
            node("HardSwish", &["c2"], &["h2"], vec![]),
            node("Conv", &["h2", "w3", "b3"], &["c3"], vec![]),
            node("Add", &["c3", "r1"], &["a"], vec![]),
            node("Conv", &["a", "w4"], &["y"], vec![]),
        ]
    };
    let bits = |t: &Tensor| -> Vec<u32> { values(t).iter().map(|v| v.to_bits()).collect() };
    let only_y = run_outputs(Some(17), nodes(), &inputs, &["y"]).expect("runs");
    let every = run_outputs(
        Some(17),
        nodes(),
        &inputs,
        &["y", "c1", "r1", "c2", "h2", "c3", "a"],
    )
    .expect("runs");
    assert_eq!(only_y["y"].dims(), &[2, m, 6, 5]);
    assert_eq!(bits(&only_y["y"]), bits(&every["y"]));
    // And the intermediates are what their operators define (spot checks).
    let r1 = values(&every["r1"]);
    assert!(r1.iter().all(|v| *v >= 0.0));
    let a = values(&every["a"]);
    let c3 = values(&every["c3"]);
    assert!(a
        .iter()
        .zip(c3.iter().zip(&r1))
        .all(|(a, (c, r))| a.to_bits() == (c + r).to_bits()));
}

/// The exact GELU in both orders exporters write (`Div`, `Erf`, `Add`, two `Mul`s),
/// which a plain run computes in one pass (`onnx/gelu_fusion.rs`) and a traced run node
/// by node: both give the same bits, NaN, infinities, signed zeros and subnormals
/// included.
#[test]
fn a_gelu_chain_gives_the_same_bits_fused_and_node_by_node() {
    let scalar = |name: &str, v: f32| float_initializer(name, &[], vec![v]);
    let orders = [
        vec![
            node("Div", &["x", "c"], &["d"], vec![]),
            node("Erf", &["d"], &["e"], vec![]),
            node("Add", &["e", "b"], &["a"], vec![]),
            node("Mul", &["x", "a"], &["m"], vec![]),
            node("Mul", &["m", "h"], &["y"], vec![]),
        ],
        vec![
            node("Mul", &["x", "h"], &["xh"], vec![]),
            node("Div", &["x", "c"], &["d"], vec![]),
            node("Erf", &["d"], &["e"], vec![]),
            node("Add", &["b", "e"], &["a"], vec![]),
            node("Mul", &["xh", "a"], &["y"], vec![]),
        ],
    ];
    let mut xs: Vec<f32> = (0..6000).map(|i| (i as f32 - 3000.0) * 0.0031).collect();
    // Signed zeros, a subnormal, the extremes, NaN.
    xs.extend([-0.0, 0.0, f32::MIN_POSITIVE / 8.0, f32::MAX, f32::MIN]);
    xs.extend([f32::INFINITY, -f32::INFINITY, f32::NAN]);
    let x = Tensor::from_vec(xs.clone(), (1, xs.len()), &Device::Cpu).expect("x");
    let bits = |t: &Tensor| -> Vec<u32> {
        values(t)
            .iter()
            .map(|v| if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() })
            .collect()
    };
    for nodes in orders {
        let weights = vec![
            scalar("c", std::f32::consts::SQRT_2),
            scalar("b", 1.0),
            scalar("h", 0.5),
        ];
        let (plain, traced) = plain_and_traced(nodes, weights, &x);
        assert_eq!(bits(&plain), bits(&traced));
        // And the values are GELU's: x Φ(x) at x = 3.1 and x = -0.31.
        let y = values(&plain);
        assert!((y[4000] - 3.0970).abs() < 1e-3, "{}", y[4000]);
        assert!((y[2900] + 0.1173).abs() < 1e-3, "{}", y[2900]);
    }
}

/// An f32 initializer.
fn float_initializer(name: &str, dims: &[i64], values: Vec<f32>) -> candle_onnx::onnx::TensorProto {
    candle_onnx::onnx::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: candle_onnx::onnx::tensor_proto::DataType::Float as i32,
        float_data: values,
        ..Default::default()
    }
}

/// Output `y` of `nodes` (with `weights`) on input `x`, from a plain run (which fuses
/// what it can) and from a traced run (node by node: the trace has a leaf per node).
fn plain_and_traced(
    nodes: Vec<NodeProto>,
    weights: Vec<candle_onnx::onnx::TensorProto>,
    x: &Tensor,
) -> (Tensor, Tensor) {
    let count = nodes.len();
    let mut model = ModelProto::decode(&model_bytes(None, nodes, &[("x", x.clone())], &["y"])[..])
        .expect("model");
    if let Some(graph) = model.graph.as_mut() {
        graph.initializer = weights;
    }
    let model = OnnxModel::from_bytes(&model.encode_to_vec()).expect("loads");
    let mut plain = model.run_named(named(&[("x", x.clone())])).expect("runs");
    let mut trace = Vec::new();
    let mut traced = model
        .run_named_traced(named(&[("x", x.clone())]), Some(&mut trace))
        .expect("runs traced");
    assert_eq!(trace.len(), count, "the traced run records every node");
    (
        plain.remove("y").expect("y"),
        traced.remove("y").expect("y"),
    )
}

/// Layer normalization in the nine nodes exporters write before opset 17, which a plain
/// run computes row by row in one pass (`onnx/layer_norm_fusion.rs`) and a traced run node
/// by node: both give the same bits, on rows of mixed magnitudes, a constant row (variance
/// zero) and a row with an infinity (NaN out).
#[test]
fn a_layer_norm_chain_gives_the_same_bits_fused_and_node_by_node() {
    let nodes = ln_nodes();
    let width = 384;
    let mut xs: Vec<f32> = (0..width * 6)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 10f32.powi((i % 5) as i32 - 2))
        .collect();
    xs[width * 4..width * 5].fill(2.5);
    xs[width * 5 + 17] = f32::INFINITY;
    let x = Tensor::from_vec(xs.clone(), (2, 3, width), &Device::Cpu).expect("x");
    let (gamma, beta) = ln_scale_and_shift();
    let (plain, traced) = plain_and_traced(nodes, ln_weights(), &x);
    let bits = |t: &Tensor| -> Vec<u32> {
        values(t)
            .iter()
            .map(|v| if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() })
            .collect()
    };
    assert_eq!(plain.dims(), &[2, 3, width]);
    assert_eq!(bits(&plain), bits(&traced));
    let y = values(&plain);
    // A constant row normalizes to beta; the row with an infinity to NaN; the first row,
    // undone by gamma and beta, has mean zero.
    assert_eq!(&y[width * 4..width * 5], &beta[..]);
    assert!(y[width * 5..].iter().all(|v| v.is_nan()));
    let centred: f64 = (0..width)
        .map(|i| f64::from((y[i] - beta[i]) / gamma[i]))
        .sum();
    assert!(centred.abs() < 1e-3, "{centred}");
    // An input whose last axis is one value: each row normalizes to zero (or NaN for an
    // infinity) and gamma and beta widen it, fused as node by node.
    let narrow =
        Tensor::from_vec(vec![1.5f32, -0.0, f32::INFINITY], (3, 1), &Device::Cpu).expect("x");
    let (plain, traced) = plain_and_traced(ln_nodes(), ln_weights(), &narrow);
    assert_eq!(plain.dims(), &[3, width]);
    assert_eq!(traced.dims(), &[3, width]);
    assert_eq!(bits(&plain), bits(&traced));
    assert_eq!(&values(&plain)[..width], &beta[..]);
}

/// A `MatMul` of a weight and the bias `Add` after it: a plain run adds the bias in the
/// product's last step (`onnx/plan.rs`, `bias_add`) and a traced run node by node, with
/// the same bits, the bias on either side of the `Add` and A of rank 3 or 1.
#[test]
fn a_bias_added_in_the_product_gives_the_same_bits_as_the_add_node() {
    let (k, n) = (37, 45);
    let w: Vec<f32> = (0..k * n)
        .map(|i| ((i * 31 % 97) as f32 - 48.0) * 0.013)
        .collect();
    let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.71).cos() * 3.0).collect();
    let weights = || {
        vec![
            float_initializer("w", &[k as i64, n as i64], w.clone()),
            float_initializer("b", &[n as i64], b.clone()),
        ]
    };
    let mut xs: Vec<f32> = (0..2 * 3 * k)
        .map(|i| (i as f32 * 0.37).sin() * 50.0)
        .collect();
    xs[5] = f32::INFINITY;
    xs[k + 2] = -0.0;
    let bits = |t: &Tensor| -> Vec<u32> {
        values(t)
            .iter()
            .map(|v| if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() })
            .collect()
    };
    // Row 1 of the rank-3 A is the rank-1 A: finite, a negative zero among its values.
    for (x, bias_first, at) in [
        (
            Tensor::from_vec(xs.clone(), (2, 3, k), &Device::Cpu).expect("x"),
            false,
            n,
        ),
        (
            Tensor::from_vec(xs[k..2 * k].to_vec(), k, &Device::Cpu).expect("x"),
            true,
            0,
        ),
    ] {
        let add = if bias_first { ["b", "p"] } else { ["p", "b"] };
        let nodes = vec![
            node("MatMul", &["x", "w"], &["p"], vec![]),
            node("Add", &add, &["y"], vec![]),
        ];
        let (plain, traced) = plain_and_traced(nodes, weights(), &x);
        assert_eq!(plain.dims(), traced.dims());
        assert_eq!(bits(&plain), bits(&traced));
        // Column 7 of that row: the product plus b[7]; row 0 of the rank-3 A reads an
        // infinity.
        let y = values(&plain);
        let want: f32 = (0..k).map(|i| xs[k + i] * w[i * n + 7]).sum::<f32>() + b[7];
        assert!(
            (y[at + 7] - want).abs() <= 1e-3 * want.abs().max(1.0),
            "{}",
            y[at + 7]
        );
        assert!(at == 0 || !y[..n].iter().all(|v| v.is_finite()));
    }
}

/// A `MatMul` of two activations (attention's `Q·Kᵀ`): one product per batch entry, the
/// entries on the kernels' threads, each read in place and written once. Every value is
/// its FMA chain (the kernels' reference), a plain and a traced run agree bit for bit,
/// and an empty batch gives an empty output.
#[test]
fn a_batched_product_of_activations_is_each_entrys_chain() {
    let (m, k) = (5, 19);
    let bits = |t: &Tensor| -> Vec<u32> { values(t).iter().map(|v| v.to_bits()).collect() };
    let nodes = || {
        vec![
            node("Transpose", &["x"], &["xt"], vec![ints("perm", &[0, 2, 1])]),
            node("MatMul", &["x", "xt"], &["y"], vec![]),
        ]
    };
    for batches in [3, 1] {
        let xs: Vec<f32> = (0..batches * m * k)
            .map(|i| (i as f32 * 0.37).sin() * 7.0)
            .collect();
        let x = Tensor::from_vec(xs.clone(), (batches, m, k), &Device::Cpu).expect("x");
        let (plain, traced) = plain_and_traced(nodes(), vec![], &x);
        assert_eq!(plain.dims(), &[batches, m, m]);
        assert_eq!(bits(&plain), bits(&traced));
        for b in 0..batches {
            let entry = &xs[b * m * k..][..m * k];
            let a = inferchain_kernels::MatRef::row_major(entry, m, k);
            let mut want = vec![0f32; m * m];
            inferchain_kernels::gemm_reference(a, a.t(), &mut want);
            let got = &values(&plain)[b * m * m..][..m * m];
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "batch entry {b} of {batches}"
            );
        }
    }
    let empty = Tensor::from_vec(Vec::<f32>::new(), (0, m, k), &Device::Cpu).expect("x");
    let (plain, _) = plain_and_traced(nodes(), vec![], &empty);
    assert_eq!(plain.dims(), &[0, m, m]);
}

/// The nine nodes of a layer normalization as exporters write it.
fn ln_nodes() -> Vec<NodeProto> {
    let mean_last = || vec![ints("axes", &[-1]), int("keepdims", 1)];
    vec![
        node("ReduceMean", &["x"], &["mean"], mean_last()),
        node("Sub", &["x", "mean"], &["d"], vec![]),
        node("Mul", &["d", "d"], &["sq"], vec![]),
        node("ReduceMean", &["sq"], &["var"], mean_last()),
        node("Add", &["var", "eps"], &["ve"], vec![]),
        node("Sqrt", &["ve"], &["s"], vec![]),
        node("Div", &["d", "s"], &["n"], vec![]),
        node("Mul", &["n", "gamma"], &["g"], vec![]),
        node("Add", &["beta", "g"], &["y"], vec![]),
    ]
}

/// `gamma` and `beta` of [`ln_nodes`], 384 values each.
fn ln_scale_and_shift() -> (Vec<f32>, Vec<f32>) {
    let gamma: Vec<f32> = (0..384).map(|i| 1.0 + i as f32 * 1e-3).collect();
    let beta: Vec<f32> = (0..384).map(|i| (i as f32 * 0.37).sin()).collect();
    (gamma, beta)
}

/// The weights of [`ln_nodes`].
fn ln_weights() -> Vec<candle_onnx::onnx::TensorProto> {
    let (gamma, beta) = ln_scale_and_shift();
    vec![
        float_initializer("eps", &[], vec![1e-12]),
        float_initializer("gamma", &[384], gamma),
        float_initializer("beta", &[384], beta),
    ]
}
