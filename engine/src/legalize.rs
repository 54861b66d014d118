//! A load-time rewrite of operators candle-onnx lacks (or handles only in a later opset's
//! form) into exact compositions of operators it has. Each rewrite is the operator's ONNX
//! definition written out; none approximates. Only the top-level graph is rewritten.
//!
//! | operator | rewritten as |
//! | --- | --- |
//! | `Softplus(x)` | `Log(Exp(x) + 1)` |
//! | `Elu(x; alpha)` | `Where(x > 0, x, (Exp(x) - 1) * alpha)` |
//! | `Max(a, b, …)` | `-Min(-a, -b, …)` |
//! | `Shrink(x; bias, lambd)` | `Where(x < -lambd, x + bias, Where(x > lambd, x - bias, x * 0))` |
//! | `Clip(x; min, max)` (opset < 11 attributes) | `Clip(x, min, max)` with constant inputs |
//! | `Pad(x; pads, mode, value)` (opset < 11 attributes) | `Pad(x, pads, value)` with constant inputs |
//! | `Slice(x; starts, ends, axes)` (opset < 10 attributes) | `Slice(x, starts, ends, axes)` with constant inputs |
//! | `Split(x; split)` (opset < 13 attribute) | `Split(x, split)` with a constant input |
//! | `Squeeze(x; axes)` (opset < 13 attribute) | `Squeeze(x, axes)` with a constant input |
//!
//! What no composition expresses exactly is computed by the engine itself
//! ([`crate::onnx`]'s operators).

use candle_onnx::onnx::{AttributeProto, GraphProto, NodeProto, TensorProto};

/// ONNX `TensorProto.DataType` codes used for constants.
const FLOAT: i32 = 1;
const INT64: i32 = 7;

struct Rewriter {
    nodes: Vec<NodeProto>,
    constants: Vec<TensorProto>,
    counter: usize,
}

impl Rewriter {
    fn fresh(&mut self) -> String {
        self.counter += 1;
        format!("__inferchain_legal_{}", self.counter)
    }

    fn scalar(&mut self, value: f32) -> String {
        let name = self.fresh();
        self.constants.push(TensorProto {
            name: name.clone(),
            data_type: FLOAT,
            float_data: vec![value],
            ..Default::default()
        });
        name
    }

    fn ints(&mut self, values: &[i64]) -> String {
        let name = self.fresh();
        self.constants.push(TensorProto {
            name: name.clone(),
            data_type: INT64,
            dims: vec![values.len() as i64],
            int64_data: values.to_vec(),
            ..Default::default()
        });
        name
    }

    /// Emits `op(inputs)` and returns its output name (or writes to `output`).
    fn emit(&mut self, op: &str, inputs: &[&str], output: Option<&str>) -> String {
        let out = output.map(str::to_string).unwrap_or_else(|| self.fresh());
        self.nodes.push(NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            ..Default::default()
        });
        out
    }
}

fn float_attr(node: &NodeProto, name: &str) -> Option<f32> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.f)
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// Rewrites `graph` in place; returns how many nodes were rewritten.
pub fn legalize(graph: &mut GraphProto) -> usize {
    let mut r = Rewriter {
        nodes: Vec::with_capacity(graph.node.len()),
        constants: Vec::new(),
        counter: 0,
    };
    let mut rewritten = 0;
    for node in std::mem::take(&mut graph.node) {
        let (Some(x), Some(y)) = (node.input.first().cloned(), node.output.first().cloned()) else {
            r.nodes.push(node);
            continue;
        };
        match node.op_type.as_str() {
            "Softplus" => {
                let one = r.scalar(1.0);
                let e = r.emit("Exp", &[&x], None);
                let s = r.emit("Add", &[&e, &one], None);
                r.emit("Log", &[&s], Some(&y));
            }
            "Elu" => {
                let alpha = r.scalar(float_attr(&node, "alpha").unwrap_or(1.0));
                let (zero, one) = (r.scalar(0.0), r.scalar(1.0));
                let positive = r.emit("Greater", &[&x, &zero], None);
                let e = r.emit("Exp", &[&x], None);
                let em1 = r.emit("Sub", &[&e, &one], None);
                let negative = r.emit("Mul", &[&em1, &alpha], None);
                r.emit("Where", &[&positive, &x, &negative], Some(&y));
            }
            "Max" if !node.input.is_empty() => {
                let negs: Vec<String> = node
                    .input
                    .iter()
                    .map(|i| r.emit("Neg", &[i], None))
                    .collect();
                let refs: Vec<&str> = negs.iter().map(String::as_str).collect();
                let m = r.emit("Min", &refs, None);
                r.emit("Neg", &[&m], Some(&y));
            }
            "Shrink" => {
                let lambd = float_attr(&node, "lambd").unwrap_or(0.5);
                let bias = r.scalar(float_attr(&node, "bias").unwrap_or(0.0));
                let (low, high, zero) = (r.scalar(-lambd), r.scalar(lambd), r.scalar(0.0));
                let below = r.emit("Less", &[&x, &low], None);
                let above = r.emit("Greater", &[&x, &high], None);
                let plus = r.emit("Add", &[&x, &bias], None);
                let minus = r.emit("Sub", &[&x, &bias], None);
                let zeros = r.emit("Mul", &[&x, &zero], None);
                let inner = r.emit("Where", &[&above, &minus, &zeros], None);
                r.emit("Where", &[&below, &plus, &inner], Some(&y));
            }
            "Clip"
                if node.input.len() == 1
                    && (attr(&node, "min").is_some() || attr(&node, "max").is_some()) =>
            {
                let min = r.scalar(float_attr(&node, "min").unwrap_or(f32::MIN));
                let max = r.scalar(float_attr(&node, "max").unwrap_or(f32::MAX));
                r.emit("Clip", &[&x, &min, &max], Some(&y));
            }
            "Pad" if node.input.len() == 1 && attr(&node, "pads").is_some() => {
                let pads = attr(&node, "pads")
                    .map(|a| a.ints.clone())
                    .unwrap_or_default();
                let pads = r.ints(&pads);
                let mut input = vec![x, pads];
                if let Some(value) = float_attr(&node, "value") {
                    input.push(r.scalar(value));
                }
                let mut pad = NodeProto {
                    op_type: "Pad".into(),
                    input,
                    output: vec![y],
                    ..Default::default()
                };
                pad.attribute = node
                    .attribute
                    .iter()
                    .filter(|a| a.name == "mode")
                    .cloned()
                    .collect();
                r.nodes.push(pad);
            }
            "Slice" if node.input.len() == 1 && attr(&node, "starts").is_some() => {
                let list = |name: &str| attr(&node, name).map(|a| a.ints.clone());
                let mut input = vec![x];
                for name in ["starts", "ends", "axes"] {
                    if let Some(values) = list(name) {
                        input.push(r.ints(&values));
                    }
                }
                let slice = NodeProto {
                    op_type: "Slice".into(),
                    input,
                    output: vec![y],
                    ..Default::default()
                };
                r.nodes.push(slice);
            }
            "Split" if node.input.len() == 1 && attr(&node, "split").is_some() => {
                let sizes = attr(&node, "split")
                    .map(|a| a.ints.clone())
                    .unwrap_or_default();
                let sizes = r.ints(&sizes);
                let mut split = node.clone();
                split.input.push(sizes);
                split.attribute.retain(|a| a.name != "split");
                r.nodes.push(split);
            }
            "Squeeze" if node.input.len() == 1 && attr(&node, "axes").is_some() => {
                let axes = attr(&node, "axes")
                    .map(|a| a.ints.clone())
                    .unwrap_or_default();
                let axes = r.ints(&axes);
                let mut squeeze = node.clone();
                squeeze.input.push(axes);
                squeeze.attribute.retain(|a| a.name != "axes");
                r.nodes.push(squeeze);
            }
            _ => {
                r.nodes.push(node);
                continue;
            }
        }
        rewritten += 1;
    }
    graph.node = r.nodes;
    graph.initializer.extend(r.constants);
    rewritten
}
