//! The exact GELU as exporters write it, `x · ½ · (1 + erf(x / √2))`, in five nodes
//! (`Div`, `Erf`, `Add` and two `Mul`s, the factor applied last or first), computed in one
//! pass over `x` by a run that records nothing per step ([`super::plan::Plan::run`]).
//!
//! Each element goes through the five nodes' own operations, in their order, each rounded
//! once: `x / c`, the kernels' `erf`, `+ b`, then `(x · a) · h` or `(x · h) · a` as the
//! graph multiplies. So the bits are those of the nodes run one by one (the unit test
//! checks it); a traced or metered run still runs them one by one, since its trace or
//! meter reads every node's output. What it saves is four passes over the activation and
//! four tensors (BERT-base at 128 tokens: 12 × 393,216 values a run).
//!
//! Found at load: the chain's intermediate values must each have exactly one reader, the
//! next node of the chain, and not be graph outputs; `c`, `b` and `h` must be one-value
//! f32 initializers; `x` must not be a weight (a chain over weights alone is a static
//! value, computed once, `super::static_values`).

use crate::numerics;
use candle_core::{Result, Tensor};
use candle_onnx::onnx::GraphProto;
use inferchain_kernels::Unary;
use std::collections::{HashMap, HashSet};

/// Where the chain applies its factor `h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Factor {
    /// `(x · a) · h`: torch's `x * (1 + erf(x / √2)) * 0.5` (two `Mul`s after the `Add`).
    Last,
    /// `(x · h) · a`: `x * 0.5 * (1 + erf(x / √2))`, the `Mul` by `h` a node of its own.
    First,
}

/// One GELU chain of a graph.
#[derive(Clone, Debug)]
pub struct GeluChain {
    /// The chain's node indices, ascending: the first computes the chain, the others are
    /// skipped (their release lists still run).
    pub steps: Vec<usize>,
    /// `x`, the value the chain reads.
    pub input: String,
    /// The last node's output: the chain's result.
    pub output: String,
    divisor: f32,
    addend: f32,
    factor: f32,
    order: Factor,
    /// The most dimensions a constant has: the result has at least as many (leading
    /// ones), as the broadcast of `x` with the constants would.
    constant_rank: usize,
}

/// Values per chunk: a chunk's intermediate stays in L1 between its operations.
const CHUNK: usize = 1024;

impl GeluChain {
    /// `x` through the chain, row-major out.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let isa = numerics::isa();
        let mut dims = vec![1usize; self.constant_rank.saturating_sub(x.rank())];
        dims.extend_from_slice(x.dims());
        let values = numerics::with_f32("Gelu", x, |xs| {
            numerics::zeroed_on_threads(xs.len(), CHUNK, |i, y| {
                let xs = &xs[i * CHUNK..][..y.len()];
                for (y, &x) in y.iter_mut().zip(xs) {
                    *y = x / self.divisor;
                }
                inferchain_kernels::unary_in_place(isa, Unary::Erf, y);
                for (y, &x) in y.iter_mut().zip(xs) {
                    let a = *y + self.addend;
                    *y = match self.order {
                        Factor::Last => (x * a) * self.factor,
                        Factor::First => (x * self.factor) * a,
                    };
                }
            })
        })?;
        numerics::tensor(values, dims)
    }
}

/// Every GELU chain of `graph` (see the module's documentation). `reads[i]` lists what
/// node `i` reads; `returned` the graph's outputs.
pub fn find(
    graph: &GraphProto,
    reads: &[Vec<String>],
    returned: &HashSet<&str>,
    weights: &HashMap<String, Tensor>,
) -> Vec<GeluChain> {
    let readers = super::plan::readers(reads);
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            producer.insert(out.as_str(), i);
        }
    }
    let scalar = |name: &str| -> Option<(f32, usize)> {
        let w = weights.get(name)?;
        if w.elem_count() != 1 || w.dtype() != candle_core::DType::F32 {
            return None;
        }
        let v = w.flatten_all().ok()?.to_vec1::<f32>().ok()?;
        Some((v[0], w.rank()))
    };
    // The one node reading `value` (an intermediate of the chain), if it is `op`.
    let only_reader = |value: &str, op: &str| -> Option<usize> {
        match readers.get(value)?.as_slice() {
            [j] if !returned.contains(value)
                && graph.node[*j].op_type == op
                && graph.node[*j].domain.is_empty()
                && graph.node[*j].output.len() == 1 =>
            {
                Some(*j)
            }
            _ => None,
        }
    };
    // The operand of a two-input node that is not `this`.
    let other = |j: usize, this: &str| -> Option<String> {
        match graph.node[j].input.as_slice() {
            [a, b] if a == this && b != this => Some(b.clone()),
            [a, b] if b == this && a != this => Some(a.clone()),
            _ => None,
        }
    };
    let mut chains = Vec::new();
    for (i, div) in graph.node.iter().enumerate() {
        let (x, c) = match div.input.as_slice() {
            [x, c] if div.op_type == "Div" && div.domain.is_empty() && div.output.len() == 1 => {
                (x, c)
            }
            _ => continue,
        };
        let Some((divisor, c_rank)) = scalar(c) else {
            continue;
        };
        if weights.contains_key(x) || x == c {
            continue;
        }
        let found = (|| {
            let erf = only_reader(&div.output[0], "Erf")?;
            // `Erf` reads `d` and nothing else (run alone, it would ignore a second input
            // and read the first, whatever it is).
            if graph.node[erf].input != [div.output[0].clone()] {
                return None;
            }
            let add = only_reader(&graph.node[erf].output[0], "Add")?;
            let e = &graph.node[erf].output[0];
            let (addend, b_rank) = scalar(&other(add, e)?)?;
            let a = &graph.node[add].output[0];
            let mul = only_reader(a, "Mul")?;
            let with = other(mul, a)?;
            // The chain's nodes, its last node, and the `Mul` by `h` with its other operand.
            let (steps, last, by_factor, factored, order) = if &with == x {
                let m = &graph.node[mul].output[0];
                let last = only_reader(m, "Mul")?;
                (
                    [i, erf, add, mul, last],
                    last,
                    last,
                    m.clone(),
                    Factor::Last,
                )
            } else {
                let first = *producer.get(with.as_str())?;
                let node = &graph.node[first];
                if node.op_type != "Mul"
                    || !node.domain.is_empty()
                    || node.output.len() != 1
                    || only_reader(&with, "Mul") != Some(mul)
                {
                    return None;
                }
                (
                    [first, i, erf, add, mul],
                    mul,
                    first,
                    x.clone(),
                    Factor::First,
                )
            };
            let (factor, h_rank) = scalar(&other(by_factor, &factored)?)?;
            Some((
                steps.to_vec(),
                graph.node[last].output[0].clone(),
                addend,
                factor,
                order,
                b_rank.max(h_rank),
            ))
        })();
        if let Some((mut steps, output, addend, factor, order, rank)) = found {
            steps.sort_unstable();
            chains.push(GeluChain {
                steps,
                input: x.clone(),
                output,
                divisor,
                addend,
                factor,
                order,
                constant_rank: rank.max(c_rank),
            });
        }
    }
    chains
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_onnx::onnx::NodeProto;

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    fn scalar(v: f32) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    fn weights() -> HashMap<String, Tensor> {
        [
            ("c", scalar(std::f32::consts::SQRT_2)),
            ("b", scalar(1.0)),
            ("h", scalar(0.5)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn reads(graph: &GraphProto) -> Vec<Vec<String>> {
        graph.node.iter().map(|n| n.input.clone()).collect()
    }

    /// The two orders exporters write are found and compute GELU (that the bits are the
    /// nodes' run one by one: `engine/tests/onnx_ops.rs`).
    #[test]
    fn both_orders_are_found_and_compute_gelu() {
        let last = GraphProto {
            node: vec![
                node("Div", &["x", "c"], "d"),
                node("Erf", &["d"], "e"),
                node("Add", &["e", "b"], "a"),
                node("Mul", &["x", "a"], "m"),
                node("Mul", &["m", "h"], "y"),
            ],
            ..Default::default()
        };
        let first = GraphProto {
            node: vec![
                node("Mul", &["x", "h"], "xh"),
                node("Div", &["x", "c"], "d"),
                node("Erf", &["d"], "e"),
                node("Add", &["b", "e"], "a"),
                node("Mul", &["xh", "a"], "y"),
            ],
            ..Default::default()
        };
        let x = Tensor::new(&[[-2.0f32, -0.31, 0.0, 0.5, 3.1]], &Device::Cpu).unwrap();
        // x Φ(x), from f64's erf.
        let want = [
            -0.045_500_26f32,
            -0.117_266_95,
            0.0,
            0.345_731_3,
            3.097_000_4,
        ];
        for graph in [last, first] {
            let returned: HashSet<&str> = ["y"].into();
            let chains = find(&graph, &reads(&graph), &returned, &weights());
            assert_eq!(chains.len(), 1);
            assert_eq!(chains[0].steps, [0, 1, 2, 3, 4]);
            assert_eq!(
                (chains[0].input.as_str(), chains[0].output.as_str()),
                ("x", "y")
            );
            let got = chains[0].apply(&x).unwrap().flatten_all().unwrap();
            for (g, w) in got.to_vec1::<f32>().unwrap().iter().zip(want) {
                assert!((g - w).abs() < 1e-5, "{g} against {w}");
            }
        }
    }

    /// No chain where an intermediate has another reader or is returned, `Erf` reads
    /// anything besides `d`, a constant is not one f32 value, or the operand multiplied is
    /// not `x`.
    #[test]
    fn chains_that_would_change_what_others_read_are_not_found() {
        let base = vec![
            node("Div", &["x", "c"], "d"),
            node("Erf", &["d"], "e"),
            node("Add", &["e", "b"], "a"),
            node("Mul", &["x", "a"], "m"),
            node("Mul", &["m", "h"], "y"),
        ];
        let graph = |nodes: Vec<NodeProto>| GraphProto {
            node: nodes,
            ..Default::default()
        };
        let returned: HashSet<&str> = ["y"].into();
        let mut extra_reader = base.clone();
        extra_reader.push(node("Relu", &["e"], "r"));
        let g = graph(extra_reader);
        assert!(find(&g, &reads(&g), &returned, &weights()).is_empty());
        let g = graph(base.clone());
        let returns_a: HashSet<&str> = ["y", "a"].into();
        assert!(find(&g, &reads(&g), &returns_a, &weights()).is_empty());
        let mut wide = weights();
        wide.insert(
            "h".into(),
            Tensor::new(&[0.5f32, 0.5], &Device::Cpu).unwrap(),
        );
        assert!(find(&g, &reads(&g), &returned, &wide).is_empty());
        let mut erf_reads_more = base.clone();
        erf_reads_more[1] = node("Erf", &["x", "d"], "e");
        let g = graph(erf_reads_more);
        assert!(find(&g, &reads(&g), &returned, &weights()).is_empty());
        let mut other_operand = base.clone();
        other_operand[3] = node("Mul", &["z", "a"], "m");
        let g = graph(other_operand);
        assert!(find(&g, &reads(&g), &returned, &weights()).is_empty());
        let g = graph(base);
        assert_eq!(find(&g, &reads(&g), &returned, &weights()).len(), 1);
    }
}
