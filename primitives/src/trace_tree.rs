//! [`TraceTree`]: a party's own trace tree in the bisection game, as the off-chain side
//! holds it: every leaf of a run, from which it answers each move (the commitment, the
//! two children of the node the walk stands on, the path of one leaf). The runtime
//! never builds one; it checks what a party reveals against the hash it stood on.
//!
//! A node at `Position { start, level }` covers leaves `start .. min(start + 2^level,
//! count)` and its hash is [`merkle::root`] over exactly those leaves: `start` is a
//! multiple of `2^level`, so that sub-tree pairs and carries up its nodes as the whole
//! tree does.

use crate::{
    dispute::{Position, TraceCommitment},
    merkle::{self, Hash},
    H256,
};
use alloc::vec::Vec;

/// The leaves of one run's trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceTree {
    leaves: Vec<Hash>,
}

impl TraceTree {
    /// The tree over the outputs of every step of a run, in plan order.
    pub fn from_outputs<O: AsRef<[u8]>>(outputs: &[O]) -> TraceTree {
        TraceTree {
            leaves: outputs
                .iter()
                .map(|o| crate::tensor_tree::tensor_leaf(o.as_ref()))
                .collect(),
        }
    }

    /// The tree over a tensor's chunks (`tensor_tree`): what the element-level walk
    /// descends, with the same node arithmetic as a trace.
    pub fn of_chunks(tensor: &[u8]) -> TraceTree {
        TraceTree {
            leaves: crate::tensor_tree::chunk_leaves(tensor),
        }
    }

    pub fn leaves(&self) -> &[Hash] {
        &self.leaves
    }

    /// What a result or a game is posted with.
    pub fn commitment(&self) -> TraceCommitment {
        TraceCommitment {
            root: H256(merkle::root(&self.leaves)),
            leaves: self.leaves.len() as u32,
        }
    }

    /// The hash of the node at `at`, or `None` if the tree has no leaf there.
    pub fn node(&self, at: Position) -> Option<Hash> {
        let start = at.start as usize;
        if start >= self.leaves.len() {
            return None;
        }
        let end = start
            .saturating_add(1usize.checked_shl(u32::from(at.level))?)
            .min(self.leaves.len());
        Some(merkle::root(&self.leaves[start..end]))
    }

    /// What the owner reveals standing at `at`: the hashes of its two children.
    pub fn children(&self, at: Position) -> Option<(Hash, Hash)> {
        let (left, right) = at.children(self.leaves.len() as u32)?;
        Some((self.node(left)?, self.node(right)?))
    }

    /// The Merkle path of leaf `index`.
    pub fn path(&self, index: u32) -> Option<Vec<Hash>> {
        merkle::proof(&self.leaves, index as usize)
    }

    /// The path of the last leaf: the output a result is posted with.
    pub fn output_path(&self) -> Option<Vec<Hash>> {
        self.path(self.leaves.len().checked_sub(1)? as u32)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dispute::{descend, reveals};

    fn tree(n: usize, salt: u8) -> TraceTree {
        let outputs: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8, salt]).collect();
        TraceTree::from_outputs(&outputs)
    }

    #[test]
    fn every_node_of_the_walk_is_revealed_consistently_with_the_root() {
        for n in 1..=40usize {
            let t = tree(n, 0);
            let c = t.commitment();
            assert_eq!(t.node(Position::root(n as u32)), Some(c.root.0), "n = {n}");
            let path = t.output_path().expect("a leaf");
            assert!(merkle::verify(
                &c.root.0,
                &t.leaves()[n - 1],
                n - 1,
                n,
                &path
            ));
            // Walk down to every leaf: each reveal opens the node above it.
            for target in 0..n {
                let mut other: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8, 0]).collect();
                other[target] = vec![0xee];
                let o = TraceTree::from_outputs(&other);
                let mut at = Position::root(n as u32);
                let (mut mine, mut theirs) = (t.node(at).unwrap(), o.node(at).unwrap());
                while !at.is_leaf() {
                    let (a, b) = (t.children(at).unwrap(), o.children(at).unwrap());
                    assert!(reveals(&mine, &a.0, &a.1));
                    assert!(reveals(&theirs, &b.0, &b.1));
                    (at, mine, theirs) = descend(at, n as u32, a, b).unwrap();
                }
                assert_eq!(at.start as usize, target);
                assert_eq!(mine, t.leaves()[target]);
            }
        }
    }

    #[test]
    fn positions_outside_the_tree_have_no_node() {
        let t = tree(5, 1);
        assert_eq!(t.node(Position { start: 5, level: 0 }), None);
        assert_eq!(
            t.node(Position {
                start: 0,
                level: 200
            }),
            None
        );
        assert!(t.children(Position { start: 4, level: 0 }).is_none());
        assert!(t.path(5).is_none());
        assert!(TraceTree::from_outputs::<Vec<u8>>(&[])
            .output_path()
            .is_none());
    }
}
