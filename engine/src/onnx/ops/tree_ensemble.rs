//! `ai.onnx.ml` `TreeEnsembleRegressor` and `TreeEnsembleClassifier` (versions 1 and 3):
//! the form scikit-learn's forests and gradient boosting, XGBoost and LightGBM export to.
//!
//! Each row walks every tree from its root: a branch node compares the row's feature with
//! its threshold in f32 (`BRANCH_LEQ` `x <= t`, `BRANCH_LT`, `BRANCH_GTE`, `BRANCH_GT`,
//! `BRANCH_EQ`, `BRANCH_NEQ`; a NaN feature goes the true way where
//! `nodes_missing_value_tracks_true` says so, else wherever its comparison, false, sends
//! it) until a leaf. The leaves' weights are added per target (or class) in tree order,
//! then in the order the weights are listed, each addition rounded in f32; `AVERAGE`
//! divides that sum by the number of trees, `MIN` and `MAX` select; `base_values` are
//! added last. Nothing here depends on the CPU or on threads.
//!
//! The trees are read from the node's attributes and checked once, when the model loads
//! ([`prepare`]; the plan keeps them): every child exists in its tree and each tree has
//! one root (a node no other names as a child); a walk longer than its tree (a cycle) is
//! a named error, never a loop. Nodes may share a child, as LightGBM's categorical splits
//! do. A node whose trees do not check out is left to fail the same way at run time.

use super::{attrs, ml};
use crate::numerics;
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use std::collections::HashMap;

/// Why a tree-ensemble node would not run as the spec defines it, if it would not.
pub fn refusal(node: &NodeProto) -> Option<String> {
    if let Some(a) = node
        .attribute
        .iter()
        .find(|a| a.name.ends_with("_as_tensor"))
    {
        return Some(format!(
            "attribute `{}` (double-precision thresholds or weights) is not supported; \
             export with float thresholds",
            a.name
        ));
    }
    let aggregate = attrs::string(node, "aggregate_function", "SUM");
    if !matches!(aggregate.as_str(), "SUM" | "AVERAGE" | "MIN" | "MAX") {
        return Some(format!("aggregate_function `{aggregate}` is not defined"));
    }
    if node.op_type == "TreeEnsembleRegressor" {
        // Outputs are allocated per target: no more than the weights name.
        let targets = attrs::int(node, "n_targets", 1);
        let weights = attrs::ints(node, "target_ids").map_or(0, <[i64]>::len);
        if targets < 1 || targets as usize > weights.max(1) {
            return Some(format!(
                "n_targets = {targets} with {weights} target weights"
            ));
        }
        return None;
    }
    classifier_form(node).err()
}

/// How a classifier's scores become labels and probabilities (see [`classifier`]).
#[derive(Clone, Copy, Debug, PartialEq)]
enum ClassifierForm {
    /// A score per class; the first highest wins.
    PerClass,
    /// Two classes, weights for the first only: its score is the second's probability.
    BinaryProbability,
    /// Two classes, weights for the first only: its score is a margin.
    BinaryMargin { logistic: bool },
}

/// The form of a `TreeEnsembleClassifier`, or why the engine does not run it as
/// onnxruntime does (whose reading of the two-class forms every exporter relies on).
fn classifier_form(node: &NodeProto) -> std::result::Result<ClassifierForm, String> {
    let labels = attrs::ints(node, "classlabels_int64s").map_or(0, <[i64]>::len);
    let ids = attrs::ints(node, "class_ids").unwrap_or(&[]);
    let base = attrs::floats(node, "base_values").map_or(0, <[f32]>::len);
    let post = attrs::string(node, "post_transform", "NONE");
    if labels < 2 {
        return Err(format!("{labels} integer class labels"));
    }
    if labels > 2 {
        let mut weighed = vec![false; labels];
        for &c in ids {
            if let Some(w) = usize::try_from(c).ok().and_then(|c| weighed.get_mut(c)) {
                *w = true;
            }
        }
        // onnxruntime skips a class no leaf weighs (without a base value) in its argmax.
        if base == 0 && weighed.iter().any(|w| !w) {
            return Err("a class no leaf weighs, without base values".into());
        }
        return Ok(ClassifierForm::PerClass);
    }
    if ids.is_empty() || ids.iter().any(|&c| c != 0) {
        return Err(
            "two classes with weights for the second: only the one-column form (weights \
             for class 0) is supported"
                .into(),
        );
    }
    if base > 1 {
        return Err(format!("{base} base values in the one-column binary form"));
    }
    let probabilities = attrs::floats(node, "class_weights")
        .unwrap_or(&[])
        .iter()
        .all(|&w| w >= 0.0);
    match (post.as_str(), probabilities) {
        ("NONE", true) => Ok(ClassifierForm::BinaryProbability),
        ("NONE", false) => Ok(ClassifierForm::BinaryMargin { logistic: false }),
        ("LOGISTIC", false) => Ok(ClassifierForm::BinaryMargin { logistic: true }),
        (other, _) => Err(format!(
            "post_transform `{other}` in the one-column binary form"
        )),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

#[derive(Clone, Debug)]
struct Node {
    mode: Mode,
    feature: usize,
    threshold: f32,
    missing_goes_true: bool,
    /// Indices into the tree's node list.
    on_true: usize,
    on_false: usize,
    /// (output index, weight) of a leaf, in listed order.
    weights: Vec<(usize, f32)>,
}

impl Node {
    fn bytes(&self) -> usize {
        std::mem::size_of::<Node>() + self.weights.capacity() * std::mem::size_of::<(usize, f32)>()
    }
}

/// A node's trees, parsed and checked.
pub struct Ensemble {
    /// Each tree's nodes; the root is at its `root`.
    trees: Vec<(Vec<Node>, usize)>,
    outputs: usize,
}

impl Ensemble {
    /// The bytes its trees take in memory (nodes and their leaves' weights).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Ensemble>()
            + self
                .trees
                .iter()
                .map(|(nodes, _)| {
                    std::mem::size_of::<(Vec<Node>, usize)>()
                        + nodes.iter().map(Node::bytes).sum::<usize>()
                })
                .sum::<usize>()
    }

    /// `prefix` is `target` (regressor) or `class` (classifier).
    fn parse(node: &NodeProto, prefix: &str, outputs: usize) -> Result<Ensemble> {
        let op = &node.op_type;
        let ints = |name: &str| attrs::ints(node, name).unwrap_or(&[]);
        let tree_ids = ints("nodes_treeids");
        let node_ids = ints("nodes_nodeids");
        let features = ints("nodes_featureids");
        let trues = ints("nodes_truenodeids");
        let falses = ints("nodes_falsenodeids");
        let tracks = ints("nodes_missing_value_tracks_true");
        let values = attrs::floats(node, "nodes_values").unwrap_or(&[]);
        let modes = attrs::strings(node, "nodes_modes");
        let n = tree_ids.len();
        if [node_ids.len(), features.len(), modes.len()]
            .iter()
            .any(|&l| l != n)
            || (!values.is_empty() && values.len() != n)
            || (!tracks.is_empty() && tracks.len() != n)
            || (!trues.is_empty() && trues.len() != n)
            || (!falses.is_empty() && falses.len() != n)
        {
            bail!("{op}: the nodes_* attributes have different lengths")
        }
        // (tree id, node id) → (tree index, index in the tree).
        let mut tree_index: HashMap<i64, usize> = HashMap::new();
        let mut at: HashMap<(i64, i64), (usize, usize)> = HashMap::new();
        let mut trees: Vec<Vec<Node>> = Vec::new();
        let mut links: Vec<Vec<(i64, i64)>> = Vec::new();
        let mut ids_of_trees: Vec<i64> = Vec::new();
        for i in 0..n {
            let t = *tree_index.entry(tree_ids[i]).or_insert_with(|| {
                trees.push(Vec::new());
                links.push(Vec::new());
                ids_of_trees.push(tree_ids[i]);
                trees.len() - 1
            });
            if at
                .insert((tree_ids[i], node_ids[i]), (t, trees[t].len()))
                .is_some()
            {
                bail!(
                    "{op}: node {} of tree {} is listed twice",
                    node_ids[i],
                    tree_ids[i]
                )
            }
            let mode = match modes[i].as_str() {
                "BRANCH_LEQ" => Mode::Leq,
                "BRANCH_LT" => Mode::Lt,
                "BRANCH_GTE" => Mode::Gte,
                "BRANCH_GT" => Mode::Gt,
                "BRANCH_EQ" => Mode::Eq,
                "BRANCH_NEQ" => Mode::Neq,
                "LEAF" => Mode::Leaf,
                other => bail!("{op}: node mode `{other}`"),
            };
            // A leaf's feature id is never read.
            let feature = match usize::try_from(features[i]) {
                Ok(f) => f,
                Err(_) if mode == Mode::Leaf => 0,
                Err(_) => bail!("{op}: feature id {}", features[i]),
            };
            trees[t].push(Node {
                mode,
                feature,
                threshold: values.get(i).copied().unwrap_or(0.0),
                missing_goes_true: tracks.get(i).is_some_and(|&v| v != 0),
                on_true: 0,
                on_false: 0,
                weights: Vec::new(),
            });
            links[t].push((
                trues.get(i).copied().unwrap_or(0),
                falses.get(i).copied().unwrap_or(0),
            ));
        }
        // Children, and the one root of each tree.
        let mut roots = Vec::with_capacity(trees.len());
        for (t, tree) in trees.iter_mut().enumerate() {
            let tree_id = ids_of_trees[t];
            let mut parents = vec![0u32; tree.len()];
            for (k, node) in tree.iter_mut().enumerate() {
                if node.mode == Mode::Leaf {
                    continue;
                }
                let child = |id: i64| -> Result<usize> {
                    match at.get(&(tree_id, id)) {
                        Some(&(ct, ck)) if ct == t => Ok(ck),
                        _ => bail!("{op}: tree {tree_id} has no node {id}"),
                    }
                };
                let (on_true, on_false) = (child(links[t][k].0)?, child(links[t][k].1)?);
                node.on_true = on_true;
                node.on_false = on_false;
                parents[on_true] += 1;
                parents[on_false] += 1;
            }
            let mut root = parents.iter().enumerate().filter(|&(_, &p)| p == 0);
            match (root.next(), root.next()) {
                (Some((r, _)), None) => roots.push(r),
                _ => bail!("{op}: tree {tree_id} does not have exactly one root"),
            }
        }
        // Leaf weights.
        let w_trees = ints(&format!("{prefix}_treeids"));
        let w_nodes = ints(&format!("{prefix}_nodeids"));
        let w_ids = ints(&format!("{prefix}_ids"));
        let w_values = attrs::floats(node, &format!("{prefix}_weights")).unwrap_or(&[]);
        if [w_nodes.len(), w_ids.len(), w_values.len()]
            .iter()
            .any(|&l| l != w_trees.len())
        {
            bail!("{op}: the {prefix}_* attributes have different lengths")
        }
        for i in 0..w_trees.len() {
            let Some(&(t, k)) = at.get(&(w_trees[i], w_nodes[i])) else {
                bail!(
                    "{op}: a weight names node {} of tree {}, which is not listed",
                    w_nodes[i],
                    w_trees[i]
                )
            };
            let output = usize::try_from(w_ids[i])
                .ok()
                .filter(|&o| o < outputs)
                .ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "{op}: {prefix} id {} outside 0..{outputs}",
                        w_ids[i]
                    ))
                })?;
            if trees[t][k].mode != Mode::Leaf {
                bail!(
                    "{op}: a weight is attached to branch node {} of tree {}",
                    w_nodes[i],
                    w_trees[i]
                )
            }
            trees[t][k].weights.push((output, w_values[i]));
        }
        Ok(Ensemble {
            trees: trees.into_iter().zip(roots).collect(),
            outputs,
        })
    }

    /// The leaf `row` reaches in `tree`.
    fn leaf<'a>(tree: &'a [Node], root: usize, row: &[f32]) -> Result<&'a Node> {
        let mut node = &tree[root];
        // A tree of n nodes with one root and one parent per node is a walk of < n steps.
        for _ in 0..=tree.len() {
            if node.mode == Mode::Leaf {
                return Ok(node);
            }
            let Some(&x) = row.get(node.feature) else {
                bail!(
                    "tree ensemble: feature {} of a row of {}",
                    node.feature,
                    row.len()
                )
            };
            let t = node.threshold;
            let goes_true = if x.is_nan() && node.missing_goes_true {
                true
            } else {
                match node.mode {
                    Mode::Leq => x <= t,
                    Mode::Lt => x < t,
                    Mode::Gte => x >= t,
                    Mode::Gt => x > t,
                    Mode::Eq => x == t,
                    Mode::Neq => x != t,
                    Mode::Leaf => true,
                }
            };
            node = &tree[if goes_true {
                node.on_true
            } else {
                node.on_false
            }];
        }
        bail!("tree ensemble: a walk did not end")
    }

    /// Per row, the aggregated leaf weights plus `base`.
    fn scores(&self, x: &Tensor, aggregate: &str, base: &[f32]) -> Result<Vec<f32>> {
        let f = x.dim(1)?;
        let rows = numerics::to_f32_vec("TreeEnsemble", x)?;
        let mut out = Vec::with_capacity(x.dim(0)? * self.outputs);
        let mut acc: Vec<Option<f32>> = vec![None; self.outputs];
        for row in rows.chunks(f.max(1)).take(x.dim(0)?) {
            acc.iter_mut().for_each(|a| *a = None);
            for (tree, root) in &self.trees {
                for &(o, w) in &Self::leaf(tree, *root, row)?.weights {
                    acc[o] = Some(match (acc[o], aggregate) {
                        (None, _) => w,
                        (Some(a), "MIN") => a.min(w),
                        (Some(a), "MAX") => a.max(w),
                        (Some(a), _) => a + w,
                    });
                }
            }
            for (o, a) in acc.iter().enumerate() {
                let mut v = a.unwrap_or(0.0);
                if aggregate == "AVERAGE" {
                    v /= self.trees.len().max(1) as f32;
                }
                out.push(v + base.get(o).copied().unwrap_or(0.0));
            }
        }
        Ok(out)
    }
}

fn base_values(node: &NodeProto, outputs: usize) -> Result<Vec<f32>> {
    match attrs::floats(node, "base_values") {
        None | Some([]) => Ok(vec![0.0; outputs]),
        Some(b) if b.len() == outputs => Ok(b.to_vec()),
        Some(b) => bail!(
            "{}: {} base values for {outputs} outputs",
            node.op_type,
            b.len()
        ),
    }
}

/// The trees of a `TreeEnsembleRegressor` or `TreeEnsembleClassifier` node, parsed and
/// checked: what the plan keeps so that a run does not read them again.
pub fn prepare(node: &NodeProto) -> Result<Ensemble> {
    if node.op_type == "TreeEnsembleRegressor" {
        Ensemble::parse(node, "target", regressor_targets(node)?)
    } else {
        let labels = attrs::ints(node, "classlabels_int64s").map_or(0, <[i64]>::len);
        Ensemble::parse(node, "class", labels)
    }
}

fn regressor_targets(node: &NodeProto) -> Result<usize> {
    let targets = attrs::int(node, "n_targets", 1);
    let weights = attrs::ints(node, "target_ids").map_or(0, <[i64]>::len);
    if targets < 1 || targets as usize > weights.max(1) {
        bail!("TreeEnsembleRegressor: n_targets = {targets} with {weights} target weights")
    }
    Ok(targets as usize)
}

/// `prepared` if the plan has it, else the node's trees parsed now.
fn ensemble<'a>(
    node: &NodeProto,
    prepared: Option<&'a Ensemble>,
    owned: &'a mut Option<Ensemble>,
) -> Result<&'a Ensemble> {
    match prepared {
        Some(e) => Ok(e),
        None => Ok(owned.insert(prepare(node)?)),
    }
}

/// `TreeEnsembleRegressor`: `[N, n_targets]`.
pub fn regressor(node: &NodeProto, x: &Tensor, prepared: Option<&Ensemble>) -> Result<Tensor> {
    let targets = regressor_targets(node)?;
    let mut owned = None;
    let ensemble = ensemble(node, prepared, &mut owned)?;
    let aggregate = attrs::string(node, "aggregate_function", "SUM");
    let scores = ensemble.scores(x, &aggregate, &base_values(node, targets)?)?;
    numerics::tensor(scores, (x.dim(0)?, targets))
}

/// `TreeEnsembleClassifier`: labels `[N]` and scores `[N, classes]` (a class no leaf
/// weighs scores 0).
///
/// Two classes with weights for class 0 only are the one-column binary form
/// (scikit-learn's binary forests and gradient boosting): its sum `s` (plus a single base
/// value) is the positive class's score. With every weight non-negative (a probability)
/// the label is the second class where `s > 0.5` and the scores `[1 - s, s]`; otherwise (a
/// margin) the second class where `s > 0`, the scores `[-s, s]`, or under `LOGISTIC`
/// `[σ(-s), σ(s)]`. This is onnxruntime's reading, which the spec leaves open and every
/// exporter relies on.
pub fn classifier(
    node: &NodeProto,
    x: &Tensor,
    prepared: Option<&Ensemble>,
) -> Result<(Tensor, Tensor)> {
    let form = classifier_form(node)
        .map_err(|why| candle_core::Error::Msg(format!("TreeEnsembleClassifier: {why}")))?;
    let labels = attrs::ints(node, "classlabels_int64s")
        .unwrap_or(&[])
        .to_vec();
    let mut owned = None;
    let ensemble = ensemble(node, prepared, &mut owned)?;
    if form == ClassifierForm::PerClass {
        let scores = ensemble.scores(x, "SUM", &base_values(node, labels.len())?)?;
        let scores = numerics::tensor(scores, (x.dim(0)?, labels.len()))?;
        return ml::classify("TreeEnsembleClassifier", node, &labels, scores);
    }
    let base = attrs::floats(node, "base_values")
        .and_then(|b| b.first().copied())
        .unwrap_or(0.0);
    let sums = ensemble.scores(x, "SUM", &[base, 0.0])?;
    let isa = numerics::isa();
    let mut chosen = Vec::new();
    let mut scores = Vec::new();
    for row in sums.chunks(2) {
        let s = row[0];
        let positive = match form {
            ClassifierForm::BinaryProbability => s > 0.5,
            _ => s > 0.0,
        };
        chosen.push(labels[usize::from(positive)]);
        match form {
            ClassifierForm::BinaryMargin { logistic: true } => {
                let mut pair = [-s, s];
                inferchain_kernels::unary_in_place(
                    isa,
                    inferchain_kernels::Unary::Sigmoid,
                    &mut pair,
                );
                scores.extend(pair);
            }
            ClassifierForm::BinaryMargin { logistic: false } => scores.extend([-s, s]),
            _ => scores.extend([1.0 - s, s]),
        }
    }
    let n = chosen.len();
    Ok((
        Tensor::from_vec(chosen, n, x.device())?,
        numerics::tensor(scores, (n, 2))?,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_onnx::onnx::AttributeProto;

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    fn floats(name: &str, v: &[f32]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            floats: v.to_vec(),
            ..Default::default()
        }
    }

    fn strings(name: &str, v: &[&str]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    /// One tree: node 0 `x[0] <= 0.5` → node 1 (leaf, 10) else node 2 (leaf, 20); `true_of_0`
    /// and `false_of_0` replace node 0's children.
    fn regressor_node(true_of_0: i64, false_of_0: i64, extra: Vec<AttributeProto>) -> NodeProto {
        let mut attribute = vec![
            ints("nodes_treeids", &[0, 0, 0]),
            ints("nodes_nodeids", &[0, 1, 2]),
            ints("nodes_featureids", &[0, 0, 0]),
            floats("nodes_values", &[0.5, 0.0, 0.0]),
            strings("nodes_modes", &["BRANCH_LEQ", "LEAF", "LEAF"]),
            ints("nodes_truenodeids", &[true_of_0, 0, 0]),
            ints("nodes_falsenodeids", &[false_of_0, 0, 0]),
            ints("target_treeids", &[0, 0]),
            ints("target_nodeids", &[1, 2]),
            ints("target_ids", &[0, 0]),
            floats("target_weights", &[10.0, 20.0]),
        ];
        attribute.extend(extra);
        NodeProto {
            op_type: "TreeEnsembleRegressor".into(),
            attribute,
            ..Default::default()
        }
    }

    fn rows(values: &[f32]) -> Tensor {
        Tensor::from_slice(values, (values.len(), 1), &Device::Cpu).unwrap()
    }

    #[test]
    fn a_row_walks_to_its_leaf_and_nan_follows_missing_value_tracks_true() {
        let node = regressor_node(1, 2, vec![]);
        let y = regressor(&node, &rows(&[0.5, 0.6, f32::NAN]), None).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [10.0, 20.0, 20.0]
        );
        let tracks = regressor_node(
            1,
            2,
            vec![ints("nodes_missing_value_tracks_true", &[1, 0, 0])],
        );
        let y = regressor(&tracks, &rows(&[f32::NAN]), None).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [10.0]);
        // Trees parsed at load walk the same way.
        let prepared = prepare(&node).unwrap();
        let y = regressor(&node, &rows(&[0.5, 0.6, f32::NAN]), Some(&prepared)).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [10.0, 20.0, 20.0]
        );
        assert!(prepare(&regressor_node(1, 9, vec![])).is_err());
    }

    #[test]
    fn hostile_trees_are_named_errors_not_loops_or_huge_allocations() {
        // Node 0 names itself twice: nodes 1 and 2 are both roots.
        assert!(regressor(&regressor_node(0, 0, vec![]), &rows(&[0.0]), None).is_err());
        // A child that does not exist.
        assert!(regressor(&regressor_node(1, 9, vec![]), &rows(&[0.0]), None).is_err());
        // A cycle below the root: 0 → 1, and 1 (now a branch) → 0 or 2 ... walks past the
        // tree's size and stops.
        let mut cyclic = regressor_node(1, 2, vec![]);
        for a in cyclic.attribute.iter_mut() {
            match a.name.as_str() {
                "nodes_modes" => a.strings[1] = b"BRANCH_LEQ".to_vec(),
                "nodes_truenodeids" => a.ints[1] = 1,
                "nodes_falsenodeids" => a.ints[1] = 1,
                "target_nodeids" => a.ints[0] = 2,
                _ => {}
            }
        }
        let err = regressor(&cyclic, &rows(&[0.0]), None).unwrap_err();
        assert!(err.to_string().contains("did not end"), "{err}");
        // Outputs beyond what the weights name are refused before any allocation.
        let bomb = regressor_node(
            1,
            2,
            vec![AttributeProto {
                name: "n_targets".into(),
                i: 1 << 40,
                ..Default::default()
            }],
        );
        assert!(refusal(&bomb).is_some());
        assert!(regressor(&bomb, &rows(&[0.0]), None).is_err());
    }

    #[test]
    fn two_class_forms_other_than_one_column_are_refused_at_load() {
        let classifier = |ids: &[i64], post: &str, weights: &[f32]| NodeProto {
            op_type: "TreeEnsembleClassifier".into(),
            attribute: vec![
                ints("classlabels_int64s", &[0, 1]),
                ints("class_ids", ids),
                floats("class_weights", weights),
                AttributeProto {
                    name: "post_transform".into(),
                    s: post.as_bytes().to_vec(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            classifier_form(&classifier(&[0, 0], "NONE", &[0.2, 0.9])),
            Ok(ClassifierForm::BinaryProbability)
        );
        assert_eq!(
            classifier_form(&classifier(&[0, 0], "LOGISTIC", &[-0.2, 0.9])),
            Ok(ClassifierForm::BinaryMargin { logistic: true })
        );
        for (ids, post, weights) in [
            (&[1, 1][..], "NONE", &[0.2, 0.9][..]),
            (&[0, 1][..], "NONE", &[0.2, 0.9][..]),
            (&[0, 0][..], "SOFTMAX", &[0.2, 0.9][..]),
            (&[0, 0][..], "LOGISTIC", &[0.2, 0.9][..]),
        ] {
            assert!(
                refusal(&classifier(ids, post, weights)).is_some(),
                "{ids:?} {post}"
            );
        }
    }
}
