//! A graph's execution plan: its nodes in order, each run either by the engine
//! ([`super::ops`]) or by candle-onnx on a one-node graph, with every intermediate value
//! released after its last reader (candle-onnx alone keeps all of them until the end).

use super::ops::{self, Value};
use candle_core::{bail, DType, Result, Tensor};
use candle_onnx::onnx::{GraphProto, ModelProto, NodeProto, ValueInfoProto};
use inferchain_kernels::PackedB;
use std::collections::{HashMap, HashSet};

struct Step {
    node: NodeProto,
    /// The node alone as a graph, for candle-onnx.
    delegate: ModelProto,
    /// What the node reads: its inputs, and for `If` the outer values its branches use.
    reads: Vec<String>,
    /// Values no later step reads and the graph does not return.
    release: Vec<String>,
    /// For a `MatMul` or `Gemm` whose B is a 2-D f32 weight: B packed once, at load.
    packed: Option<PackedB>,
}

/// The plan of one graph.
pub struct Plan {
    steps: Vec<Step>,
    outputs: Vec<String>,
    /// The model's opset for the default domain.
    opset: i64,
}

/// Every value name nodes of `graph` (and of its subgraphs) read.
fn subgraph_reads(graph: &GraphProto, out: &mut Vec<String>) {
    for node in &graph.node {
        out.extend(node.input.iter().filter(|n| !n.is_empty()).cloned());
        for attr in &node.attribute {
            attr.g
                .iter()
                .chain(&attr.graphs)
                .for_each(|g| subgraph_reads(g, out));
        }
    }
}

impl Plan {
    /// The plan of `graph`; `weights` are its initializers (B operands among them are
    /// packed for the kernels here, once).
    pub fn new(graph: &GraphProto, weights: &HashMap<String, Tensor>, opset: i64) -> Result<Plan> {
        let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
        let returned: HashSet<&str> = outputs.iter().map(String::as_str).collect();
        let reads: Vec<Vec<String>> = graph
            .node
            .iter()
            .map(|node| {
                let mut reads: Vec<String> = node
                    .input
                    .iter()
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .collect();
                for attr in &node.attribute {
                    attr.g
                        .iter()
                        .chain(&attr.graphs)
                        .for_each(|g| subgraph_reads(g, &mut reads));
                }
                reads.sort();
                reads.dedup();
                reads
            })
            .collect();
        let mut last_read: HashMap<&str, usize> = HashMap::new();
        for (i, names) in reads.iter().enumerate() {
            for name in names {
                last_read.insert(name, i);
            }
        }
        let mut release: Vec<Vec<String>> = vec![Vec::new(); graph.node.len()];
        for (name, &i) in &last_read {
            if !returned.contains(name) {
                release[i].push(name.to_string());
            }
        }
        let mut steps = Vec::with_capacity(graph.node.len());
        for (i, (node, reads)) in graph.node.iter().zip(&reads).enumerate() {
            // Outputs nobody reads later are released right away.
            let needed = |name: &String| {
                returned.contains(name.as_str())
                    || last_read.get(name.as_str()).is_some_and(|&j| j > i)
            };
            for output in node.output.iter().filter(|o| !o.is_empty() && !needed(o)) {
                release[i].push(output.clone());
            }
            let delegate = ModelProto {
                graph: Some(GraphProto {
                    node: vec![node.clone()],
                    output: node
                        .output
                        .iter()
                        .filter(|o| !o.is_empty() && needed(o))
                        .map(|o| ValueInfoProto {
                            name: o.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let trans_b = node.op_type == "Gemm"
                && node
                    .attribute
                    .iter()
                    .any(|a| a.name == "transB" && a.i != 0);
            let packed = match (node.op_type.as_str(), node.input.get(1)) {
                ("MatMul" | "Gemm", Some(b)) => match weights.get(b) {
                    Some(w) if w.rank() == 2 && w.dtype() == DType::F32 => {
                        Some(ops::pack_weight(w, trans_b)?)
                    }
                    _ => None,
                },
                _ => None,
            };
            steps.push(Step {
                node: node.clone(),
                delegate,
                reads: reads.clone(),
                release: std::mem::take(&mut release[i]),
                packed,
            });
        }
        Ok(Plan {
            steps,
            outputs,
            opset,
        })
    }

    /// Bytes of packed weights the plan holds.
    pub fn packed_bytes(&self) -> usize {
        self.steps
            .iter()
            .filter_map(|s| s.packed.as_ref())
            .map(PackedB::bytes)
            .sum()
    }

    /// Runs the plan on the graph's inputs and weights; returns the graph's outputs.
    pub fn run(&self, mut values: HashMap<String, Value>) -> Result<HashMap<String, Value>> {
        for step in &self.steps {
            let node = &step.node;
            let mut inputs = Vec::with_capacity(node.input.len());
            for name in &node.input {
                if name.is_empty() {
                    inputs.push(None);
                } else {
                    match values.get(name) {
                        Some(v) => inputs.push(Some(v)),
                        None => bail!(
                            "cannot find {name} for {} node `{}`",
                            node.op_type,
                            node.name
                        ),
                    }
                }
            }
            let ctx = ops::Context {
                opset: self.opset,
                packed: step.packed.as_ref(),
            };
            let produced: Vec<(String, Value)> = match ops::run(node, &inputs, &ctx) {
                Some(result) => node.output.iter().cloned().zip(result?).collect(),
                None if !ops::DELEGATED.contains(&node.op_type.as_str())
                    && node.op_type != "If" =>
                {
                    // Refused at load (`ops::check_supported`); never reached.
                    bail!("unsupported op_type {}", node.op_type)
                }
                None => {
                    let mut given: HashMap<String, Tensor> = HashMap::new();
                    for name in &step.reads {
                        match values.get(name) {
                            Some(Value::Tensor(t)) => {
                                given.insert(name.clone(), t.clone());
                            }
                            Some(Value::Sequence(_)) => bail!(
                                "{} node `{}` reads the sequence `{name}`; only sequence operators take sequences",
                                node.op_type,
                                node.name
                            ),
                            None => {}
                        }
                    }
                    candle_onnx::simple_eval(&step.delegate, given)?
                        .into_iter()
                        .map(|(name, t)| (name, Value::Tensor(t)))
                        .collect()
                }
            };
            values.extend(produced);
            for name in &step.release {
                values.remove(name);
            }
        }
        self.outputs
            .iter()
            .map(|name| match values.remove(name) {
                Some(v) => Ok((name.clone(), v)),
                None => bail!("the graph did not produce its output `{name}`"),
            })
            .collect()
    }
}
