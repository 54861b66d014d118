//! A graph's execution plan: its nodes in order, each run either by the engine
//! ([`super::ops`]) or by candle-onnx on a one-node graph, with every intermediate value
//! released after its last reader (candle-onnx alone keeps all of them until the end).

use super::gelu_fusion::{self, GeluChain};
use super::layer_norm_fusion::{self, LayerNormChain};
use super::{
    cost::CostMeter,
    ops::{self, non_max_suppression::Extent, Value},
    static_values::StaticSteps,
};
use candle_core::{bail, DType, Result, Tensor};
use candle_onnx::onnx::{GraphProto, ModelProto, NodeProto, ValueInfoProto};
use inferchain_kernels::PackedB;
use inferchain_primitives::merkle;
use std::collections::{HashMap, HashSet};

struct Step {
    node: NodeProto,
    /// The node alone as a graph, for candle-onnx.
    delegate: ModelProto,
    /// What the node reads: its inputs, and for `If` the outer values its branches use.
    reads: Vec<String>,
    /// Values no later step reads and the graph does not return (their slots).
    release: Vec<usize>,
    /// The slots of the node's inputs, in order (`None` for an omitted one).
    input_slots: Vec<Option<usize>>,
    /// The slots of the node's outputs, in order (`None` for an omitted one).
    output_slots: Vec<Option<usize>>,
    /// Weights packed once, at load, for the kernels' matrix product: B of a `MatMul` or
    /// `Gemm` whose B is a 2-D f32 weight; `Wᵀ` per group of a `Conv` with a weight.
    packed: Vec<PackedB>,
    /// A tree ensemble's trees, parsed and checked once, at load (`None` where they do
    /// not check out: the run then fails with the same named error).
    trees: Option<ops::tree_ensemble::Ensemble>,
    /// A `Conv` whose output only a `Clip` (inputs form), `Relu` or `HardSwish` reads:
    /// the index of that step. A run that records nothing per step computes both there,
    /// at once ([`Plan::run`]).
    fuse_activation: Option<usize>,
    /// On that activation: the index of the `Conv` fused into it.
    fused_conv: Option<usize>,
    /// A `Conv` whose output only an `Add` reads, as one operand ([`ResidualChain`]).
    residual: Option<ResidualChain>,
    /// On the last step of a residual chain: the index of its `Conv`.
    residual_conv: Option<usize>,
    /// A `Conv`, or an operator that keeps the layout, whose output every reader takes
    /// channels last (`crate::channels_last`): it may be stored so.
    channels_last_out: bool,
    /// The first node of a fused chain ([`FusedChain`]): the chain, and the slots of its
    /// input and result. A run that records nothing per step computes the chain here.
    chain: Option<(FusedChain, usize, usize)>,
    /// Another node of a fused chain: that run skips it (its release list still runs).
    in_chain: bool,
    /// A `MatMul` of a packed weight whose output only an `Add` of a one-axis f32 weight
    /// of one value per column reads: that bias, and the `Add`'s output slot. A run that
    /// records nothing per step adds it in the product's last step (the `Add`'s
    /// operation, `acc + bias`) and skips the `Add`.
    bias_add: Option<(Vec<f32>, usize)>,
}

/// The nodes reading each value, by index, ascending (`reads[i]`: what node `i` reads).
pub(super) fn readers(reads: &[Vec<String>]) -> HashMap<&str, Vec<usize>> {
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, names) in reads.iter().enumerate() {
        for name in names {
            readers.entry(name.as_str()).or_default().push(i);
        }
    }
    readers
}

/// Each `MatMul` of a packed 2-D weight whose output is read by one `Add` only (not a
/// graph output) whose other operand is a one-axis f32 weight with a value per column:
/// the `MatMul`'s index, the `Add`'s, and the bias.
fn bias_adds(
    graph: &GraphProto,
    steps: &[Step],
    reads: &[Vec<String>],
    returned: &HashSet<&str>,
    weights: &HashMap<String, Tensor>,
) -> Vec<(usize, usize, Vec<f32>)> {
    let readers = readers(reads);
    let mut found = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let node = &step.node;
        let ([packed], [out]) = (step.packed.as_slice(), node.output.as_slice()) else {
            continue;
        };
        if node.op_type != "MatMul" || !node.domain.is_empty() || returned.contains(out.as_str()) {
            continue;
        }
        let Some(&[j]) = readers.get(out.as_str()).map(Vec::as_slice) else {
            continue;
        };
        let add = &graph.node[j];
        let other = match add.input.as_slice() {
            [a, b] if a == out && b != out => b,
            [a, b] if b == out && a != out => a,
            _ => continue,
        };
        if add.op_type != "Add" || !add.domain.is_empty() || add.output.len() != 1 {
            continue;
        }
        let bias = weights
            .get(other)
            .filter(|w| w.rank() == 1 && w.dtype() == DType::F32);
        if let Some(Ok(bias)) = bias.map(|w| w.to_vec1::<f32>()) {
            if bias.len() == packed.n() {
                found.push((i, j, bias));
            }
        }
    }
    found
}

/// A residual connection after a `Conv`: the `Add` that alone reads the convolution's
/// output (as one operand, not both) as the next node, and the `Relu` or `HardSwish`
/// that alone reads the sum as the node after that, if one does. A run that records nothing per step, when the `Conv` comes up with
/// the `Add`'s other operand already computed and of the convolution's output shape,
/// skips the `Conv` (and the `Add` before an activation) and computes all of it at the
/// chain's last step: the sum and the activation applied to the convolution's values in
/// one pass, by the operators' own operations in their order (`conv::ResidualAdd`).
/// Otherwise each node runs as it is.
#[derive(Clone, Copy, Debug)]
struct ResidualChain {
    /// The `Add`'s step, and which of its inputs (0 or 1) is the other operand.
    add: usize,
    other: usize,
    /// The chain's last step: the activation's, or the `Add`'s.
    last: usize,
}

/// The residual chain after `Conv` step `i` ([`ResidualChain`]), where what it reads
/// stays until its last step: the `Conv`'s inputs released at `i` or read at or after
/// the last step, the other operand released at the `Add` or read at or after the last.
fn residual_chain(
    graph: &GraphProto,
    i: usize,
    reads: &[Vec<String>],
    returned: &HashSet<&str>,
    last_read: &HashMap<&str, usize>,
) -> Option<ResidualChain> {
    let node = &graph.node[i];
    let [out] = node.output.as_slice() else {
        return None;
    };
    if node.op_type != "Conv" || !node.domain.is_empty() || returned.contains(out.as_str()) {
        return None;
    }
    // The one node after `i` reading `name`.
    let only_reader = |name: &String, from: usize| {
        let mut readers = (from + 1..graph.node.len()).filter(|&j| reads[j].contains(name));
        match (readers.next(), readers.next()) {
            (Some(j), None) => Some(j),
            _ => None,
        }
    };
    // The chain's nodes follow one another: the `Conv`'s inputs are held until the
    // chain's last step, and the metered dry run (which fuses nothing) would not see
    // them held across other work.
    let add_at = only_reader(out, i).filter(|&j| j == i + 1)?;
    let add = &graph.node[add_at];
    let other = match add.input.as_slice() {
        [a, b] if a == out && b != out => 1,
        [a, b] if b == out && a != out => 0,
        _ => return None,
    };
    if add.op_type != "Add" || !add.domain.is_empty() || add.output.len() != 1 {
        return None;
    }
    let sum = &add.output[0];
    let activation = (!returned.contains(sum.as_str()))
        .then(|| only_reader(sum, add_at))
        .flatten()
        .filter(|&k| k == add_at + 1)
        .filter(|&k| {
            let act = &graph.node[k];
            act.domain.is_empty()
                && ops::FusedActivation::of(&act.op_type).is_some()
                && act.input.len() == 1
                && act.input[0] == *sum
        });
    let last = activation.unwrap_or(add_at);
    let kept_from = |name: &str, at: usize| {
        last_read
            .get(name)
            .is_none_or(|&read| read == at || read >= last)
    };
    let kept =
        reads[i].iter().all(|name| kept_from(name, i)) && kept_from(&add.input[other], add_at);
    kept.then_some(ResidualChain {
        add: add_at,
        other,
        last,
    })
}

/// Nodes a run that records nothing per step computes in one pass, with their bits.
enum FusedChain {
    Gelu(GeluChain),
    LayerNorm(LayerNormChain),
}

impl FusedChain {
    fn steps(&self) -> &[usize] {
        match self {
            FusedChain::Gelu(c) => &c.steps,
            FusedChain::LayerNorm(c) => &c.steps,
        }
    }

    fn input(&self) -> &str {
        match self {
            FusedChain::Gelu(c) => &c.input,
            FusedChain::LayerNorm(c) => &c.input,
        }
    }

    fn output(&self) -> &str {
        match self {
            FusedChain::Gelu(c) => &c.output,
            FusedChain::LayerNorm(c) => &c.output,
        }
    }

    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            FusedChain::Gelu(c) => c.apply(x),
            FusedChain::LayerNorm(c) => c.apply(x),
        }
    }

    /// Its row in a profile.
    fn name(&self) -> &'static str {
        match self {
            FusedChain::Gelu(_) => "Gelu (5 nodes fused)",
            FusedChain::LayerNorm(_) => "LayerNorm (9 nodes fused)",
        }
    }
}

/// The plan of one graph.
pub struct Plan {
    steps: Vec<Step>,
    outputs: Vec<String>,
    /// The model's opset for the default domain.
    opset: i64,
    /// Steps whose values depend on weights and input shapes only, and what the last
    /// plain run kept of them (`super::static_values`).
    static_steps: StaticSteps,
    /// Every value the graph names (weights, inputs, node outputs, what `If` branches
    /// read), numbered at load: a run keeps its values in a vector by these slots, with
    /// no hashing of names per step (and nothing a graph's choice of names can slow).
    slot_names: Vec<String>,
    slot_of: HashMap<String, usize>,
    /// The initializers by slot, held once: a run reads them here rather than being
    /// handed a copy of each.
    weights: Vec<Option<Value>>,
}

/// What a run reads by slot: the values it was given or computed, then the plan's
/// weights (a graph input may carry an initializer's name; the input is read).
struct Values<'p> {
    computed: Vec<Option<Value>>,
    weights: &'p [Option<Value>],
}

impl Values<'_> {
    fn get(&self, slot: usize) -> Option<&Value> {
        self.computed[slot].as_ref().or(self.weights[slot].as_ref())
    }
}

/// The values that may be stored channels last (`crate::channels_last`): not returned,
/// and every reader takes them as they are stored — a `Conv` reading one as its input
/// `X` only, or an operator that keeps the layout (`keeps_layout`) whose output may be
/// stored so too. Decided from the last node back.
fn channels_last_values<'g>(
    graph: &'g GraphProto,
    reads: &[Vec<String>],
    returned: &HashSet<&str>,
) -> HashSet<&'g str> {
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, names) in reads.iter().enumerate() {
        for name in names {
            readers.entry(name.as_str()).or_default().push(j);
        }
    }
    let mut may: HashSet<&'g str> = HashSet::new();
    for node in graph.node.iter().rev() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            if returned.contains(out.as_str()) {
                continue;
            }
            let Some(by) = readers.get(out.as_str()) else {
                continue;
            };
            let takes = |j: &usize| {
                let r = &graph.node[*j];
                let single_output = match r.output.as_slice() {
                    [o] => may.contains(o.as_str()),
                    _ => false,
                };
                r.domain.is_empty()
                    && match r.op_type.as_str() {
                        "Conv" => r.input.first() == Some(out) && !r.input[1..].contains(out),
                        op => crate::channels_last::keeps_layout(op) && single_output,
                    }
            };
            if by.iter().all(takes) {
                may.insert(out.as_str());
            }
        }
    }
    may
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
        // Every value is defined once (ONNX's single assignment): a node may not write a
        // weight's, a graph input's or another node's name. Release lists, the cost
        // analysis and the static values all key values by name.
        let mut defined: HashSet<&str> = weights.keys().map(String::as_str).collect();
        defined.extend(graph.input.iter().map(|i| i.name.as_str()));
        for node in &graph.node {
            // Nodes come in order (ONNX requires it): what a node reads is a weight, a
            // graph input or an earlier node's output. A run node by node would fail on
            // anything else, and a run that fuses nodes must fail on it too.
            if let Some(name) = node
                .input
                .iter()
                .find(|n| !n.is_empty() && !defined.contains(n.as_str()))
            {
                bail!(
                    "{} node `{}` reads `{name}` before any node writes it: nodes must be \
                     in order, each after the nodes it reads",
                    node.op_type,
                    node.name
                )
            }
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                if !defined.insert(out.as_str()) {
                    bail!(
                        "{} node `{}` writes `{out}`, a value already defined: each value \
                         must be defined once",
                        node.op_type,
                        node.name
                    )
                }
            }
        }
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
        for (i, (node, node_reads)) in graph.node.iter().zip(&reads).enumerate() {
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
                        vec![ops::pack_weight(w, trans_b)?]
                    }
                    _ => Vec::new(),
                },
                ("Conv", Some(w)) => match weights.get(w) {
                    Some(w) if w.rank() >= 3 && w.dtype() == DType::F32 => {
                        ops::pack_conv_weight(node, w)?
                    }
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            let trees = (node.domain == ops::ml::DOMAIN
                && matches!(
                    node.op_type.as_str(),
                    "TreeEnsembleRegressor" | "TreeEnsembleClassifier"
                ))
            .then(|| ops::tree_ensemble::prepare(node).ok())
            .flatten();
            let fuse_activation = match node.output.as_slice() {
                [out]
                    if node.op_type == "Conv"
                        && node.domain.is_empty()
                        && !returned.contains(out.as_str()) =>
                {
                    let mut readers = (i + 1..graph.node.len()).filter(|&j| reads[j].contains(out));
                    match (readers.next(), readers.next()) {
                        (Some(j), None) => {
                            let clip = &graph.node[j];
                            // The `Conv` runs at step j: what it reads must still be
                            // there (released at i, deferred to j, or read after j).
                            let kept = node_reads.iter().all(|name| {
                                last_read
                                    .get(name.as_str())
                                    .is_none_or(|&last| last == i || last >= j)
                            });
                            let fusable = match clip.op_type.as_str() {
                                "Clip" => clip.attribute.is_empty(),
                                op => {
                                    ops::FusedActivation::of(op).is_some() && clip.input.len() == 1
                                }
                            };
                            (kept
                                && fusable
                                && clip.domain.is_empty()
                                && clip.input.first() == Some(out)
                                && !clip.input[1..].contains(out))
                            .then_some(j)
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            steps.push(Step {
                node: node.clone(),
                delegate,
                reads: node_reads.clone(),
                release: Vec::new(),
                input_slots: Vec::new(),
                output_slots: Vec::new(),
                packed,
                trees,
                residual: match fuse_activation {
                    None => residual_chain(graph, i, &reads, &returned, &last_read),
                    Some(_) => None,
                },
                fuse_activation,
                fused_conv: None,
                residual_conv: None,
                channels_last_out: false,
                chain: None,
                in_chain: false,
                bias_add: None,
            });
        }
        let channels_last = channels_last_values(graph, &reads, &returned);
        for step in &mut steps {
            let op = step.node.op_type.as_str();
            step.channels_last_out = (op == "Conv" || crate::channels_last::keeps_layout(op))
                && step.node.domain.is_empty()
                && step
                    .node
                    .output
                    .first()
                    .is_some_and(|o| channels_last.contains(o.as_str()));
        }
        for i in 0..steps.len() {
            if let Some(j) = steps[i].fuse_activation {
                steps[j].fused_conv = Some(i);
            }
            if let Some(chain) = steps[i].residual {
                // One `Conv` per chain end (two `Conv`s cannot both be the step before
                // one `Add`; kept apart if they ever were).
                match steps[chain.last].residual_conv {
                    None => steps[chain.last].residual_conv = Some(i),
                    Some(_) => steps[i].residual = None,
                }
            }
        }
        let bias_adds = bias_adds(graph, &steps, &reads, &returned, weights);
        let chains: Vec<FusedChain> = gelu_fusion::find(graph, &reads, &returned, weights)
            .into_iter()
            .map(FusedChain::Gelu)
            .chain(
                layer_norm_fusion::find(graph, &reads, &returned, weights)
                    .into_iter()
                    .map(FusedChain::LayerNorm),
            )
            .collect();
        // Number every value: weights, graph inputs, then what each node reads and
        // writes, then the graph's outputs.
        let mut slot_names: Vec<String> = Vec::new();
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        let mut slot = |name: &str| -> usize {
            if let Some(&i) = slot_of.get(name) {
                return i;
            }
            slot_names.push(name.to_string());
            slot_of.insert(name.to_string(), slot_names.len() - 1);
            slot_names.len() - 1
        };
        let mut weight_names: Vec<&String> = weights.keys().collect();
        weight_names.sort();
        for name in weight_names {
            slot(name);
        }
        for input in &graph.input {
            slot(&input.name);
        }
        for ((step, node_reads), mut released) in steps.iter_mut().zip(&reads).zip(release) {
            for (names, slots) in [
                (&step.node.input, &mut step.input_slots),
                (&step.node.output, &mut step.output_slots),
            ] {
                *slots = names
                    .iter()
                    .map(|n| (!n.is_empty()).then(|| slot(n)))
                    .collect();
            }
            for name in node_reads {
                slot(name);
            }
            released.sort();
            step.release = released.iter().map(|n| slot(n)).collect();
        }
        for name in &outputs {
            slot(name);
        }
        for (i, add, bias) in bias_adds {
            if steps[i].in_chain || steps[add].in_chain || steps[add].chain.is_some() {
                continue;
            }
            if let Some(&out) = steps[add].node.output.first().and_then(|o| slot_of.get(o)) {
                steps[add].in_chain = true;
                steps[i].bias_add = Some((bias, out));
            }
        }
        for chain in chains {
            let (Some(&first), Some(&input), Some(&output)) = (
                chain.steps().first(),
                slot_of.get(chain.input()),
                slot_of.get(chain.output()),
            ) else {
                continue;
            };
            // A node belongs to one chain at most.
            if chain
                .steps()
                .iter()
                .any(|&j| steps[j].in_chain || steps[j].chain.is_some())
            {
                continue;
            }
            for &j in &chain.steps()[1..] {
                steps[j].in_chain = true;
            }
            steps[first].chain = Some((chain, input, output));
        }
        let mut weight_slots = vec![None; slot_names.len()];
        for (name, w) in weights {
            weight_slots[slot_of[name]] = Some(Value::Tensor(w.clone()));
        }
        let weight_names: HashSet<&str> = weights.keys().map(String::as_str).collect();
        Ok(Plan {
            steps,
            outputs,
            opset,
            static_steps: StaticSteps::of(graph, &weight_names),
            slot_names,
            slot_of,
            weights: weight_slots,
        })
    }

    /// Its number of steps.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// Bytes of the parsed tree ensembles the plan holds (held for the model's life, like
    /// its weights).
    pub fn tree_bytes(&self) -> usize {
        self.steps
            .iter()
            .filter_map(|s| s.trees.as_ref())
            .map(ops::tree_ensemble::Ensemble::bytes)
            .sum()
    }

    /// Bytes of packed weights the plan holds.
    pub fn packed_bytes(&self) -> usize {
        self.steps
            .iter()
            .flat_map(|s| &s.packed)
            .map(PackedB::bytes)
            .sum()
    }

    /// Runs the plan on the graph's inputs and weights; returns the graph's outputs.
    ///
    /// With `trace`, each step's produced values (in the node's output order) are pushed
    /// as leaf hashes of their canonical encoding (see [`step_leaf`]).
    ///
    /// With `meter`, each step's operations and the live intermediate bytes after it are
    /// counted (`super::cost`).
    pub fn run(
        &self,
        inputs: HashMap<String, Value>,
        mut trace: Option<&mut Vec<merkle::Hash>>,
        mut meter: Option<&mut CostMeter>,
    ) -> Result<HashMap<String, Value>> {
        let mut profile = Profile::from_env();
        // A run that records nothing per step fuses each `Conv` into the `Clip`, `Relu` or
        // `HardSwish` that alone reads it: the `Conv` waits (its inputs kept) until that
        // step, where the activated output is computed at once and named as the
        // activation's.
        let fusing = trace.is_none() && meter.is_none();
        // The same run keeps (or reuses) the values computed from weights and input
        // shapes alone (`super::static_values`).
        let static_shapes = fusing.then(|| self.static_steps.shapes(&inputs));
        let kept = static_shapes
            .as_ref()
            .and_then(|s| self.static_steps.kept_for(s));
        let mut values = Values {
            computed: vec![None; self.slot_names.len()],
            weights: &self.weights,
        };
        // Inputs the graph does not name are never read.
        for (name, value) in inputs {
            if let Some(&slot) = self.slot_of.get(&name) {
                values.computed[slot] = Some(value);
            }
        }
        // The `Conv` steps whose residual chain runs at its last step this time, and the
        // `Add`s of those that end in an activation.
        let mut chained = vec![false; self.steps.len()];
        let mut produced_static = Vec::new();
        let mut kept_bytes = 0usize;
        if let Some(kept) = &kept {
            for (name, value) in kept.values.values().flatten() {
                if let Some(&slot) = self.slot_of.get(name) {
                    values.computed[slot] = Some(value.clone());
                }
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            let node = &step.node;
            if fusing && step.fuse_activation.is_some() {
                continue;
            }
            if kept
                .as_ref()
                .is_some_and(|k| self.static_steps.is_static(i) && k.values.contains_key(&i))
            {
                for &slot in &step.release {
                    values.computed[slot] = None;
                }
                continue;
            }
            if fusing && chained[i] {
                // The `Add` of a residual chain that ends in an activation: computed at
                // the activation's step, its release list with it.
                continue;
            }
            if let (true, Some(chain)) = (fusing, step.residual) {
                if residual_fits(step, &self.steps[chain.add], chain, &values) {
                    chained[i] = true;
                    if chain.last != chain.add {
                        chained[chain.add] = true;
                    }
                    continue;
                }
            }
            if fusing && step.in_chain {
                for &slot in &step.release {
                    values.computed[slot] = None;
                }
                continue;
            }
            if let (true, Some((bias, output))) = (fusing, &step.bias_add) {
                let started = profile.start();
                let inputs = gather(step, &values)?;
                let ctx = ops::Context {
                    opset: self.opset,
                    packed: &step.packed,
                    trees: None,
                    clip: None,
                    activation: None,
                    residual: None,
                    bias: Some(bias),
                    extent: Extent::Exact,
                    channels_last: false,
                };
                let result = match ops::run(node, &inputs, &ctx) {
                    Some(result) => result?,
                    None => bail!("MatMul node `{}` did not run", node.name),
                };
                let key = profile.key(node, &inputs);
                drop(inputs);
                values.computed[*output] = result.into_iter().next();
                for &slot in &step.release {
                    values.computed[slot] = None;
                }
                profile.record(key, started);
                continue;
            }
            if let (true, Some((chain, input, output))) = (fusing, &step.chain) {
                let started = profile.start();
                let x = match values.get(*input) {
                    Some(Value::Tensor(x)) => x.clone(),
                    _ => bail!(
                        "{} node `{}`: its input is not a tensor",
                        node.op_type,
                        node.name
                    ),
                };
                let key = profile.named(chain.name(), &x);
                let y = chain.apply(&x)?;
                values.computed[*output] = Some(Value::Tensor(y));
                for &slot in &step.release {
                    values.computed[slot] = None;
                }
                profile.record(key, started);
                continue;
            }
            // A `Conv` computed at this step: the residual chain it ends (when the chain
            // runs fused this time), or the `Clip`, `Relu` or `HardSwish` fused into it.
            let fused_conv = match step.residual_conv.filter(|&c| chained[c]) {
                Some(c) => Some(c),
                None => step.fused_conv,
            };
            if let (true, Some(c)) = (fusing, fused_conv) {
                let conv = &self.steps[c];
                let started = profile.start();
                let chain = conv.residual.filter(|_| chained[c]);
                let (clip, activation) = match (ops::FusedActivation::of(&node.op_type), chain) {
                    // A chain's `Add` step itself: no activation after it.
                    (_, Some(chain)) if chain.last == chain.add => (None, None),
                    (Some(activation), _) => (None, Some(activation)),
                    (None, Some(_)) => bail!(
                        "{} node `{}` ends a residual chain",
                        node.op_type,
                        node.name
                    ),
                    (None, None) => (Some(clip_bounds(step, &values)?), None),
                };
                let inputs = gather(conv, &values)?;
                let (residual, channels_last, add_release) = match chain {
                    Some(chain) => {
                        let add = &self.steps[chain.add];
                        let other = match add.input_slots[chain.other]
                            .and_then(|slot| values.get(slot))
                        {
                            Some(Value::Tensor(t)) => t,
                            _ => bail!("Add node `{}`: its other operand is gone", add.node.name),
                        };
                        let residual = ops::ResidualAdd {
                            other,
                            conv_first: chain.other == 1,
                        };
                        // The `Add`'s release list, where this step is the activation's.
                        let add_release = match chain.last != chain.add {
                            true => &add.release[..],
                            false => &[],
                        };
                        let channels_last = conv.channels_last_out
                            && step.channels_last_out
                            && crate::channels_last::is_channels_last(other);
                        (Some(residual), channels_last, add_release)
                    }
                    None => (None, conv.channels_last_out, &[][..]),
                };
                let ctx = ops::Context {
                    opset: self.opset,
                    packed: &conv.packed,
                    trees: None,
                    clip,
                    activation,
                    residual,
                    bias: None,
                    extent: Extent::Exact,
                    channels_last,
                };
                let result = match ops::run(&conv.node, &inputs, &ctx) {
                    Some(result) => result?,
                    None => bail!("Conv node `{}` did not run", conv.node.name),
                };
                let key = profile.key(&conv.node, &inputs);
                drop(inputs);
                for (slot, value) in step.output_slots.iter().zip(result) {
                    if let Some(slot) = slot {
                        values.computed[*slot] = Some(value);
                    }
                }
                for &slot in conv.release.iter().chain(add_release).chain(&step.release) {
                    values.computed[slot] = None;
                }
                profile.record(key, started);
                continue;
            }
            let started = profile.start();
            let inputs = gather(step, &values)?;
            let ctx = ops::Context {
                opset: self.opset,
                packed: &step.packed,
                trees: step.trees.as_ref(),
                clip: None,
                activation: None,
                residual: None,
                bias: None,
                // The meter measures the longest output a data-dependent size can have.
                extent: if meter.is_some() {
                    Extent::Largest
                } else {
                    Extent::Exact
                },
                // Only where nothing is recorded: a trace leaf or the meter would read the
                // values back in logical order (a strided copy per step).
                channels_last: fusing && step.channels_last_out,
            };
            // What the step produced, by output slot (in the node's output order).
            let produced: Vec<(usize, Value)> = match ops::run(node, &inputs, &ctx) {
                Some(result) => step
                    .output_slots
                    .iter()
                    .zip(result?)
                    .filter_map(|(slot, value)| slot.map(|slot| (slot, value)))
                    .collect(),
                None if !ops::DELEGATED.contains(&node.op_type.as_str())
                    && node.op_type != "If" =>
                {
                    // Refused at load (`ops::check_supported`); never reached.
                    bail!("unsupported op_type {}", node.op_type)
                }
                None => {
                    let mut given: HashMap<String, Tensor> = HashMap::new();
                    for name in &step.reads {
                        let value = self.slot_of.get(name).and_then(|&slot| values.get(slot));
                        match value {
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
                    let mut outputs = candle_onnx::simple_eval(&step.delegate, given)?;
                    node.output
                        .iter()
                        .zip(&step.output_slots)
                        .filter_map(|(name, slot)| {
                            let value = outputs.remove(name)?;
                            Some(((*slot)?, Value::Tensor(value)))
                        })
                        .collect()
                }
            };
            if let Some(trace) = trace.as_deref_mut() {
                for slot in step.output_slots.iter().flatten() {
                    if let Some((_, value)) = produced.iter().find(|(s, _)| s == slot) {
                        trace.push(step_leaf(value)?);
                    }
                }
            }
            if let Some(meter) = meter.as_deref_mut() {
                let outputs: Vec<&Value> = produced.iter().map(|(_, v)| v).collect();
                meter.node(node, &inputs, &outputs);
            }
            // Kept values are copied into storage of their own (a view would pin its whole
            // source) and only while they fit the budget, so a first run holds no more
            // than that beyond what it releases.
            if fusing && kept.is_none() && self.static_steps.is_static(i) {
                let named: Vec<(String, Value)> = produced
                    .iter()
                    .map(|(slot, value)| (self.slot_names[*slot].clone(), value.clone()))
                    .collect();
                if let Some(owned) = self.static_steps.take(&mut kept_bytes, &named)? {
                    produced_static.push((i, owned));
                }
            }
            let key = profile.key(node, &inputs);
            drop(inputs);
            for (slot, value) in produced {
                values.computed[slot] = Some(value);
            }
            if let Some(meter) = meter.as_deref_mut() {
                meter.live(
                    values
                        .computed
                        .iter()
                        .zip(&self.slot_names)
                        .filter_map(|(value, name)| Some((name, value.as_ref()?))),
                );
                if meter.exceeded() {
                    bail!(
                        "the dry run passed its cost limit after {} node `{}`",
                        node.op_type,
                        node.name
                    )
                }
            }
            for &slot in &step.release {
                values.computed[slot] = None;
            }
            profile.record(key, started);
        }
        profile.report();
        if let (Some(shapes), None) = (static_shapes, &kept) {
            self.static_steps
                .keep(shapes, self.read_after_skipping(produced_static));
        }
        self.outputs
            .iter()
            .map(|name| {
                let slot = self.slot_of[name];
                match values.computed[slot].take() {
                    Some(v) => Ok((name.clone(), v)),
                    // A graph may return a weight as it is.
                    None => match &self.weights[slot] {
                        Some(w) => Ok((name.clone(), w.clone())),
                        None => bail!("the graph did not produce its output `{name}`"),
                    },
                }
            })
            .collect()
    }
}

impl Plan {
    /// What the steps `produced` (static steps, with their values) still have to hand on
    /// when a later run skips them: of each step's values, those a step that still runs
    /// reads (every other step, including static ones over the budget, and `If` branches'
    /// outer reads) or the graph returns. The rest (torch.onnx's Shape → Gather →
    /// Unsqueeze → Concat chains end in one shape) are not inserted again on every run.
    fn read_after_skipping(
        &self,
        produced: Vec<(usize, Vec<(String, Value)>)>,
    ) -> Vec<(usize, Vec<(String, Value)>)> {
        let skipped: HashSet<usize> = produced.iter().map(|(i, _)| *i).collect();
        let needed: HashSet<&str> = self
            .steps
            .iter()
            .enumerate()
            .filter(|(i, _)| !skipped.contains(i))
            .flat_map(|(_, step)| step.reads.iter().map(String::as_str))
            .chain(self.outputs.iter().map(String::as_str))
            .collect();
        produced
            .into_iter()
            .map(|(i, values)| {
                let values = values
                    .into_iter()
                    .filter(|(name, _)| needed.contains(name.as_str()))
                    .collect();
                (i, values)
            })
            .collect()
    }
}

/// The leaf hash of one produced value: a tensor's canonical encoding (dtype, shape,
/// little-endian data, canonical NaN; what an output payload holds), or for a sequence
/// `0x01`, its length and each tensor's encoding.
fn step_leaf(value: &Value) -> Result<merkle::Hash> {
    use codec::Encode;
    let canonical = |t: &Tensor| {
        crate::conversion::from_candle(t)
            .map_err(|e| candle_core::Error::Msg(format!("tracing a value: {e}")))
    };
    Ok(match value {
        Value::Tensor(t) => merkle::leaf(&canonical(t)?.encode()),
        Value::Sequence(ts) => {
            let mut bytes = vec![1u8];
            bytes.extend((ts.len() as u32).to_le_bytes());
            for t in ts {
                bytes.extend(canonical(t)?.encode());
            }
            merkle::leaf(&bytes)
        }
    })
}

/// The values `step`'s node reads, in input order (`None` for an omitted optional input).
fn gather<'v>(step: &Step, values: &'v Values<'_>) -> Result<Vec<Option<&'v Value>>> {
    let node = &step.node;
    node.input
        .iter()
        .zip(&step.input_slots)
        .map(|(name, slot)| match slot.map(|slot| values.get(slot)) {
            None => Ok(None),
            Some(Some(v)) => Ok(Some(v)),
            Some(None) => bail!(
                "cannot find {name} for {} node `{}`",
                node.op_type,
                node.name
            ),
        })
        .collect()
}

/// Whether the residual chain `chain` after `Conv` step `conv` runs fused now: the
/// convolution's `X` and `W` and the `Add`'s other operand are tensors already, the
/// operand f32 and of the convolution's output shape.
fn residual_fits(conv: &Step, add: &Step, chain: ResidualChain, values: &Values<'_>) -> bool {
    let tensor = |slot: Option<&Option<usize>>| match slot.copied().flatten().map(|s| values.get(s))
    {
        Some(Some(Value::Tensor(t))) => Some(t),
        _ => None,
    };
    let (Some(x), Some(w), Some(other)) = (
        tensor(conv.input_slots.first()),
        tensor(conv.input_slots.get(1)),
        tensor(add.input_slots.get(chain.other)),
    ) else {
        return false;
    };
    other.dtype() == DType::F32
        && ops::conv_output_dims(&conv.node, x, w).is_some_and(|dims| dims == other.dims())
}

/// The bounds of the `Clip` step `clip` from its `min` and `max` inputs (absent:
/// unbounded).
fn clip_bounds(clip: &Step, values: &Values<'_>) -> Result<(f32, f32)> {
    let mut bounds = [None, None];
    let inputs = clip.node.input.iter().zip(&clip.input_slots).skip(1);
    for (bound, (name, slot)) in bounds.iter_mut().zip(inputs) {
        let Some(slot) = slot else {
            continue;
        };
        match values.get(*slot) {
            Some(Value::Tensor(t)) => *bound = Some(t),
            Some(Value::Sequence(_)) => {
                bail!("Clip node `{}`: `{name}` is a sequence", clip.node.name)
            }
            None => bail!("cannot find {name} for Clip node `{}`", clip.node.name),
        }
    }
    ops::clip_bounds(bounds[0], bounds[1])
}

/// Time per operator type, printed to stderr after each run when `INFERCHAIN_PROFILE`
/// is set (for finding where a model's time goes; costs nothing otherwise);
/// `INFERCHAIN_PROFILE=shapes` splits each type by its input shapes and `group`.
struct Profile {
    totals: Option<HashMap<String, (std::time::Duration, usize)>>,
    by_shape: bool,
}

impl Profile {
    fn from_env() -> Profile {
        let mode = std::env::var_os("INFERCHAIN_PROFILE");
        Profile {
            by_shape: mode.as_deref() == Some("shapes".as_ref()),
            totals: mode.map(|_| HashMap::new()),
        }
    }

    /// The row a node's time is added to (empty when not profiling).
    fn key(&self, node: &NodeProto, inputs: &[Option<&Value>]) -> String {
        if self.totals.is_none() {
            return String::new();
        }
        if !self.by_shape {
            return node.op_type.clone();
        }
        let dims: Vec<String> = inputs
            .iter()
            .map(|v| match v {
                Some(Value::Tensor(t)) => format!("{:?}", t.dims()),
                Some(Value::Sequence(_)) => "seq".into(),
                None => "-".into(),
            })
            .collect();
        let group = node.attribute.iter().find(|a| a.name == "group");
        match group {
            Some(g) => format!("{} {} g{}", node.op_type, dims.join(" "), g.i),
            None => format!("{} {}", node.op_type, dims.join(" ")),
        }
    }

    /// The row a fused computation's time is added to (empty when not profiling).
    fn named(&self, name: &str, input: &Tensor) -> String {
        match (&self.totals, self.by_shape) {
            (None, _) => String::new(),
            (Some(_), false) => name.to_string(),
            (Some(_), true) => format!("{name} {:?}", input.dims()),
        }
    }

    fn start(&self) -> Option<std::time::Instant> {
        self.totals.as_ref().map(|_| std::time::Instant::now())
    }

    fn record(&mut self, key: String, started: Option<std::time::Instant>) {
        if let (Some(totals), Some(t)) = (self.totals.as_mut(), started) {
            let entry = totals.entry(key).or_default();
            entry.0 += t.elapsed();
            entry.1 += 1;
        }
    }

    fn report(&self) {
        let Some(totals) = &self.totals else { return };
        let mut rows: Vec<_> = totals.iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
        let all: f64 = rows.iter().map(|r| r.1 .0.as_secs_f64()).sum();
        for (op, (time, count)) in rows {
            eprintln!(
                "profile {op:<40} {:>9.4} ms {:>5.1}% ({count} nodes)",
                time.as_secs_f64() * 1e3,
                100.0 * time.as_secs_f64() / all.max(1e-12)
            );
        }
    }
}
