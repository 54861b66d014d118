//! Layer normalization as exporters write it before opset 17's `LayerNormalization`, in
//! nine nodes over the last axis, computed row by row in one pass by a run that records
//! nothing per step ([`super::plan::Plan::run`]):
//!
//! ```text
//! mean = ReduceMean(x)   d = Sub(x, mean)   var = ReduceMean(Mul(d, d))
//! s = Sqrt(Add(var, eps))   y = Add(Mul(Div(d, s), gamma), beta)
//! ```
//!
//! Each element goes through the nodes' own operations in their order, each rounded once:
//! the two means are the kernels' fixed-order `sum` over the row divided by its length, as
//! `ReduceMean` computes them; `Sqrt` is IEEE's. So the bits are those of the nodes run one
//! by one (`engine/tests/onnx_ops.rs` checks it); a traced or metered run still runs them
//! one by one. What it saves is eight passes over the activation and eight tensors.
//!
//! Found at load: every intermediate is read only inside the chain and is not a graph
//! output; both `ReduceMean`s reduce the last axis only (`axes = [-1]`, an attribute) and
//! keep it; `eps` is a one-value f32 initializer, `gamma` and `beta` one-axis f32
//! initializers of one length, two or more; `x` is not a weight. An `x` whose last axis
//! is one value is normalized per value and widened by `gamma` and `beta`, as the nodes'
//! broadcasting does; any other last axis than `gamma`'s length fails, as the nodes'
//! broadcasting does.

use crate::numerics;
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::{GraphProto, NodeProto};
use std::collections::{HashMap, HashSet};

/// One layer-normalization chain of a graph.
#[derive(Clone, Debug)]
pub struct LayerNormChain {
    /// The chain's node indices, ascending: the first computes the chain.
    pub steps: Vec<usize>,
    /// `x`.
    pub input: String,
    /// The last node's output.
    pub output: String,
    eps: f32,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl LayerNormChain {
    /// `x` through the chain, row-major out.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let len = self.gamma.len();
        match x.dims().last() {
            Some(&last) if last == len => {}
            Some(1) => return self.widened(x),
            _ => bail!(
                "layer normalization: input {:?} does not end in the scale's {len} values \
                 (nor in one value, which the scale would widen)",
                x.dims()
            ),
        }
        let isa = numerics::isa();
        let values = numerics::with_f32("LayerNormalization", x, |xs| {
            numerics::rows_on_threads(xs.len(), len, |first, rows| {
                for (i, y) in rows.chunks_mut(len).enumerate() {
                    let x = &xs[(first + i) * len..][..y.len()];
                    self.normalize_row(isa, x, y);
                }
            })
        })?;
        numerics::tensor(values, x.dims())
    }

    /// One row `x` normalized into `y`: the nodes' operations in their order.
    fn normalize_row(&self, isa: inferchain_kernels::Isa, x: &[f32], y: &mut [f32]) {
        let len = self.gamma.len();
        let mean = inferchain_kernels::sum(isa, x) / len as f32;
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x - mean;
        }
        // `y` holds d; the squares go through a scratch row (a row is short).
        let squares: Vec<f32> = y.iter().map(|d| d * d).collect();
        let var = inferchain_kernels::sum(isa, &squares) / len as f32;
        let s = (var + self.eps).sqrt();
        for ((y, g), b) in y.iter_mut().zip(&self.gamma).zip(&self.beta) {
            *y = *y / s * g + b;
        }
    }
}

impl LayerNormChain {
    /// An `x` whose last axis is one value: each row normalizes to `d / s` of its one
    /// value (the nodes' operations on a row of one), which `gamma` and `beta` widen to
    /// their length, as the nodes' broadcasting does.
    fn widened(&self, x: &Tensor) -> Result<Tensor> {
        let isa = numerics::isa();
        let len = self.gamma.len();
        let mut dims = x.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = len;
        }
        let values = numerics::with_f32("LayerNormalization", x, |xs| {
            let mut out = vec![0f32; xs.len() * len];
            crate::kernel_threads::for_each_row_mut(&mut out, len, |r, y| {
                let v = xs[r];
                let mean = inferchain_kernels::sum(isa, &[v]) / 1.0;
                let d = v - mean;
                let var = inferchain_kernels::sum(isa, &[d * d]) / 1.0;
                let n = d / (var + self.eps).sqrt();
                for ((y, g), b) in y.iter_mut().zip(&self.gamma).zip(&self.beta) {
                    *y = n * g + b;
                }
            });
            out
        })?;
        numerics::tensor(values, dims)
    }
}

/// Every layer-normalization chain of `graph` (see the module's documentation).
pub fn find(
    graph: &GraphProto,
    reads: &[Vec<String>],
    returned: &HashSet<&str>,
    weights: &HashMap<String, Tensor>,
) -> Vec<LayerNormChain> {
    let readers = super::plan::readers(reads);
    let floats = |name: &str| -> Option<Vec<f32>> {
        let w = weights.get(name)?;
        if w.dtype() != candle_core::DType::F32 || w.rank() > 1 {
            return None;
        }
        w.flatten_all().ok()?.to_vec1::<f32>().ok()
    };
    let plain = |j: usize, op: &str, inputs: usize| {
        let n = &graph.node[j];
        n.op_type == op && n.domain.is_empty() && n.input.len() == inputs && n.output.len() == 1
    };
    // The nodes reading `value`, an intermediate of the chain, sorted.
    let read_by = |value: &str| -> Option<&[usize]> {
        (!returned.contains(value))
            .then(|| readers.get(value).map(Vec::as_slice))
            .flatten()
    };
    let only = |value: &str, op: &str, inputs: usize| -> Option<usize> {
        match read_by(value)? {
            [j] if plain(*j, op, inputs) => Some(*j),
            _ => None,
        }
    };
    let last_axis_mean = |node: &NodeProto| {
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
        node.op_type == "ReduceMean"
            && node.domain.is_empty()
            && node.input.len() == 1
            && node.output.len() == 1
            && attr("axes").is_some_and(|a| a.ints == [-1])
            && attr("keepdims").is_none_or(|a| a.i == 1)
    };
    let out = |j: usize| graph.node[j].output[0].as_str();
    let mut chains = Vec::new();
    for (first, mean_node) in graph.node.iter().enumerate() {
        if !last_axis_mean(mean_node) || weights.contains_key(&mean_node.input[0]) {
            continue;
        }
        let x = &mean_node.input[0];
        let found = (|| {
            let sub = only(out(first), "Sub", 2)?;
            if graph.node[sub].input != [x.clone(), out(first).to_string()] {
                return None;
            }
            let d = out(sub);
            let (square, div) = match read_by(d)? {
                [a, b] if plain(*a, "Mul", 2) && plain(*b, "Div", 2) => (*a, *b),
                _ => return None,
            };
            if graph.node[square].input != [d, d] || graph.node[div].input[0] != d {
                return None;
            }
            let var_mean = match read_by(out(square))? {
                [j] if last_axis_mean(&graph.node[*j]) => *j,
                _ => return None,
            };
            let add_eps = only(out(var_mean), "Add", 2)?;
            let eps_name = graph.node[add_eps]
                .input
                .iter()
                .find(|n| n.as_str() != out(var_mean))?;
            let eps = match floats(eps_name)?.as_slice() {
                [eps] => *eps,
                _ => return None,
            };
            let sqrt = only(out(add_eps), "Sqrt", 1)?;
            if only(out(sqrt), "Div", 2) != Some(div) || graph.node[div].input[1] != out(sqrt) {
                return None;
            }
            let scale = only(out(div), "Mul", 2)?;
            let gamma = floats(
                graph.node[scale]
                    .input
                    .iter()
                    .find(|n| n.as_str() != out(div))?,
            )?;
            let shift = only(out(scale), "Add", 2)?;
            let beta = floats(
                graph.node[shift]
                    .input
                    .iter()
                    .find(|n| n.as_str() != out(scale))?,
            )?;
            // Two or more values: an `x` they do not fit fails unfused too.
            if gamma.len() != beta.len() || gamma.len() < 2 {
                return None;
            }
            let mut steps = vec![
                first, sub, square, var_mean, add_eps, sqrt, div, scale, shift,
            ];
            steps.sort_unstable();
            Some(LayerNormChain {
                steps,
                input: x.clone(),
                output: out(shift).to_string(),
                eps,
                gamma,
                beta,
            })
        })();
        chains.extend(found);
    }
    chains
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_onnx::onnx::{attribute_proto::AttributeType, AttributeProto};

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        let mean = op == "ReduceMean";
        NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: mean
                .then(|| AttributeProto {
                    name: "axes".into(),
                    ints: vec![-1],
                    r#type: AttributeType::Ints as i32,
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    fn chain() -> Vec<NodeProto> {
        vec![
            node("ReduceMean", &["x"], "mean"),
            node("Sub", &["x", "mean"], "d"),
            node("Mul", &["d", "d"], "sq"),
            node("ReduceMean", &["sq"], "var"),
            node("Add", &["eps", "var"], "ve"),
            node("Sqrt", &["ve"], "s"),
            node("Div", &["d", "s"], "n"),
            node("Mul", &["gamma", "n"], "g"),
            node("Add", &["g", "beta"], "y"),
        ]
    }

    fn found(nodes: Vec<NodeProto>, gamma_len: usize) -> Vec<LayerNormChain> {
        let graph = GraphProto {
            node: nodes,
            ..Default::default()
        };
        // As the plan lists them: each name once per node.
        let reads: Vec<Vec<String>> = graph
            .node
            .iter()
            .map(|n| {
                let mut r = n.input.clone();
                r.dedup();
                r
            })
            .collect();
        let weights: HashMap<String, Tensor> = [
            ("eps", Tensor::new(1e-5f32, &Device::Cpu).unwrap()),
            (
                "gamma",
                Tensor::ones(gamma_len, candle_core::DType::F32, &Device::Cpu).unwrap(),
            ),
            (
                "beta",
                Tensor::zeros(gamma_len, candle_core::DType::F32, &Device::Cpu).unwrap(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        find(&graph, &reads, &["y"].into(), &weights)
    }

    /// The nine nodes in any operand order of the commutative ones are one chain; a chain
    /// whose intermediate another node reads, whose `Sub` or `Div` is reversed, or whose
    /// scale is one value is not.
    #[test]
    fn the_nine_nodes_are_found_and_near_misses_are_not() {
        let chains = found(chain(), 8);
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].steps, (0..9).collect::<Vec<_>>());
        assert_eq!(
            (chains[0].input.as_str(), chains[0].output.as_str()),
            ("x", "y")
        );
        let mut read_twice = chain();
        read_twice.push(node("Relu", &["var"], "r"));
        assert!(found(read_twice, 8).is_empty());
        let mut reversed = chain();
        reversed[1] = node("Sub", &["mean", "x"], "d");
        assert!(found(reversed, 8).is_empty());
        let mut divided = chain();
        divided[6] = node("Div", &["s", "d"], "n");
        assert!(found(divided, 8).is_empty());
        assert!(found(chain(), 1).is_empty());
    }
}
