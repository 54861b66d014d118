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
    let value = |name: &str| ValueInfoProto {
        name: name.into(),
        ..Default::default()
    };
    let bytes = ModelProto {
        graph: Some(GraphProto {
            node: nodes,
            input: inputs.iter().map(|(n, _)| value(n)).collect(),
            output: vec![value("y")],
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
    .encode_to_vec();
    let model = OnnxModel::from_bytes(&bytes)?;
    let named: HashMap<String, Tensor> = inputs
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    let mut out = model.run_named(named)?;
    Ok(out.remove("y").expect("output y"))
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
