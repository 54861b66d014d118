//! Binary Merkle trees over blake2-256, for commitments a dispute can open one leaf of:
//! an execution trace (the hash of every intermediate tensor of a model run, in its
//! plan's canonical order), and later a model's weight tensors.
//!
//! Leaves and inner nodes are domain-separated (`0x00 ‖ data`, `0x01 ‖ left ‖ right`) so a
//! node can never pass for a leaf; an odd node at the end of a level is carried up
//! unchanged (not paired with itself, which would let two different leaf lists share a
//! root). The root of no leaves is `blake2_256([0x02])`.

use crate::blake2_256;
use alloc::vec::Vec;

/// A tree node or leaf hash.
pub type Hash = [u8; 32];

/// The leaf hash of `data`.
pub fn leaf(data: &[u8]) -> Hash {
    let mut bytes = Vec::with_capacity(1 + data.len());
    bytes.push(0);
    bytes.extend_from_slice(data);
    blake2_256(&bytes)
}

/// The inner node over `left` and `right`.
pub fn node(left: &Hash, right: &Hash) -> Hash {
    let mut bytes = [0u8; 65];
    bytes[0] = 1;
    bytes[1..33].copy_from_slice(left);
    bytes[33..].copy_from_slice(right);
    blake2_256(&bytes)
}

fn up(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => node(l, r),
            [single] => *single,
            _ => unreachable!("chunks(2) yields one or two; qed"),
        })
        .collect()
}

/// The root over `leaves` (already leaf hashes).
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return blake2_256(&[2]);
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = up(&level);
    }
    level[0]
}

/// The sibling hashes from leaf `index` to the root (a level where the node has no
/// sibling contributes nothing), or `None` for an index out of range.
pub fn proof(leaves: &[Hash], mut index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        let sibling = index ^ 1;
        if sibling < level.len() {
            path.push(level[sibling]);
        }
        level = up(&level);
        index /= 2;
    }
    Some(path)
}

/// Whether `path` proves `leaf` at `index` of a tree of `count` leaves under `root`. The
/// count is part of the commitment (a proof cannot tell a promoted node from a pair), so
/// whoever commits a root commits its leaf count with it.
pub fn verify(
    root_hash: &Hash,
    leaf_hash: &Hash,
    mut index: usize,
    count: usize,
    path: &[Hash],
) -> bool {
    if index >= count {
        return false;
    }
    let (mut hash, mut width, mut used) = (*leaf_hash, count, 0usize);
    while width > 1 {
        let sibling = index ^ 1;
        if sibling < width {
            let Some(s) = path.get(used) else {
                return false;
            };
            used += 1;
            hash = if index.is_multiple_of(2) {
                node(&hash, s)
            } else {
                node(s, &hash)
            };
        }
        index /= 2;
        width = width.div_ceil(2);
    }
    used == path.len() && hash == *root_hash
}

/// The proof that leaves `first ..= last` are those of a tree: per level, bottom up, the
/// left neighbour of the range if the range starts on a right child, then the right
/// neighbour if it ends on a left child that has one. `None` for an empty or
/// out-of-range span.
pub fn range_proof(leaves: &[Hash], mut first: usize, mut last: usize) -> Option<Vec<Hash>> {
    if first > last || last >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        if first % 2 == 1 {
            path.push(level[first - 1]);
        }
        if last.is_multiple_of(2) && last + 1 < level.len() {
            path.push(level[last + 1]);
        }
        level = up(&level);
        first /= 2;
        last /= 2;
    }
    Some(path)
}

/// Whether `range` (consecutive leaf hashes from index `first`) are leaves of the tree of
/// `count` leaves under `root_hash`, by `path` as [`range_proof`] makes it.
pub fn verify_range(
    root_hash: &Hash,
    range: &[Hash],
    mut first: usize,
    count: usize,
    path: &[Hash],
) -> bool {
    if range.is_empty() || first.saturating_add(range.len()) > count {
        return false;
    }
    let mut last = first + range.len() - 1;
    let (mut nodes, mut width) = (range.to_vec(), count);
    let mut path = path.iter();
    while width > 1 {
        let mut span = Vec::with_capacity(nodes.len() + 2);
        if first % 2 == 1 {
            let Some(left) = path.next() else {
                return false;
            };
            span.push(*left);
        }
        span.extend_from_slice(&nodes);
        if last.is_multiple_of(2) && last + 1 < width {
            let Some(right) = path.next() else {
                return false;
            };
            span.push(*right);
        }
        // `span` starts on a left child; an odd one out at its end is the level's last
        // node, carried up unchanged.
        nodes = up(&span);
        first /= 2;
        last /= 2;
        width = width.div_ceil(2);
    }
    path.next().is_none() && nodes.len() == 1 && nodes[0] == *root_hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_of_every_size_proves_and_tampering_fails() {
        for n in 1..=21 {
            let ls = leaves(n);
            let r = root(&ls);
            for first in 0..n {
                for last in first..n {
                    let p = range_proof(&ls, first, last).expect("in range");
                    let range = &ls[first..=last];
                    assert!(
                        verify_range(&r, range, first, n, &p),
                        "n={n} {first}..={last}"
                    );
                    if first > 0 {
                        assert!(!verify_range(&r, range, first - 1, n, &p));
                    }
                    let mut bad = range.to_vec();
                    bad[range.len() / 2] = leaf(b"other");
                    assert!(!verify_range(&r, &bad, first, n, &p));
                    if let Some((_, short)) = p.split_last() {
                        assert!(!verify_range(&r, range, first, n, short));
                    }
                    let mut long = p.clone();
                    long.push(r);
                    assert!(!verify_range(&r, range, first, n, &long));
                    // A range proof of one leaf is its ordinary path.
                    if first == last {
                        assert_eq!(Some(p), proof(&ls, first));
                    }
                }
            }
            assert!(range_proof(&ls, 0, n).is_none());
            assert!(!verify_range(&r, &[], 0, n, &[]));
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf(&(i as u32).to_le_bytes())).collect()
    }

    #[test]
    fn every_leaf_of_every_size_proves_and_nothing_else_does() {
        for n in 1..=33 {
            let ls = leaves(n);
            let r = root(&ls);
            for i in 0..n {
                let p = proof(&ls, i).expect("in range");
                assert!(verify(&r, &ls[i], i, n, &p), "n={n} i={i}");
                // The wrong leaf, the wrong index, a wrong count or a cut path fail.
                let other = leaf(b"other");
                assert!(!verify(&r, &other, i, n, &p));
                if n > 1 {
                    assert!(!verify(&r, &ls[i], (i + 1) % n, n, &p));
                }
                if let Some((_, short)) = p.split_last() {
                    assert!(!verify(&r, &ls[i], i, n, short));
                }
            }
            assert!(proof(&ls, n).is_none());
            assert!(!verify(&r, &ls[0], n, n, &[]));
        }
    }

    #[test]
    fn a_node_is_not_a_leaf_and_odd_levels_are_not_duplicated() {
        let ls = leaves(2);
        // The root of two leaves is not the leaf hash of their concatenation.
        let mut cat = ls[0].to_vec();
        cat.extend(ls[1]);
        assert_ne!(root(&ls), leaf(&cat));
        // [a, b, c] and [a, b, c, c] differ (no self-pairing).
        let three = leaves(3);
        let mut four = three.clone();
        four.push(three[2]);
        assert_ne!(root(&three), root(&four));
        assert_eq!(root(&[]), blake2_256(&[2]));
    }
}
