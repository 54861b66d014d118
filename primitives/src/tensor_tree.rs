//! Tensor commitments that open piece by piece: how a step output or a weight tensor is
//! a leaf of a trace or of a model's weights root, such that a few elements of it can be
//! proven without the rest (the second, element-level walk of the game).
//!
//! A tensor's bytes are cut into [`CHUNK_BYTES`]-byte chunks (the last may be shorter);
//! its **chunk root** is the Merkle root over the chunks' leaf hashes; its **tensor leaf**
//! is `blake2_256(0x03 ‖ len as u32 LE ‖ chunk root)`, domain-separated from Merkle leaves
//! (`0x00`) and nodes (`0x01`), and binding the length so that the chunk count is known.
//! A [`ChunkRange`] proves the chunks covering a byte range against a chunk root.

use crate::{
    blake2_256,
    merkle::{self, Hash},
};
use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode};
use scale_info::TypeInfo;

/// Bytes per chunk: eight f32 values.
pub const CHUNK_BYTES: usize = 32;

/// How many chunks a tensor of `len` bytes has.
pub fn chunk_count(len: u32) -> u32 {
    len.div_ceil(CHUNK_BYTES as u32)
}

/// The leaf hashes of `bytes`' chunks.
pub fn chunk_leaves(bytes: &[u8]) -> Vec<Hash> {
    bytes.chunks(CHUNK_BYTES).map(merkle::leaf).collect()
}

/// The Merkle root over `bytes`' chunks.
pub fn chunk_root(bytes: &[u8]) -> Hash {
    merkle::root(&chunk_leaves(bytes))
}

/// The tensor leaf of a tensor of `len` bytes whose chunk root is `root`.
pub fn tensor_leaf_of(len: u32, root: &Hash) -> Hash {
    let mut bytes = [0u8; 37];
    bytes[0] = 3;
    bytes[1..5].copy_from_slice(&len.to_le_bytes());
    bytes[5..].copy_from_slice(root);
    blake2_256(&bytes)
}

/// The tensor leaf of `bytes`: what a trace or a weights root holds for a tensor.
pub fn tensor_leaf(bytes: &[u8]) -> Hash {
    tensor_leaf_of(bytes.len() as u32, &chunk_root(bytes))
}

/// The chunks of a tensor that cover one byte range, with their proof.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct ChunkRange {
    /// The covering chunks' bytes, from the chunk holding the range's first byte.
    pub data: Vec<u8>,
    /// `merkle::range_proof` of those chunks.
    pub proof: Vec<Hash>,
}

impl ChunkRange {
    /// The proof of bytes `start .. start + len` of `tensor`; `None` if out of range or
    /// empty.
    pub fn of(tensor: &[u8], start: u32, len: u32) -> Option<ChunkRange> {
        let (first, last) = covering(tensor.len() as u32, start, len)?;
        let leaves = chunk_leaves(tensor);
        let from = first as usize * CHUNK_BYTES;
        let to = ((last as usize + 1) * CHUNK_BYTES).min(tensor.len());
        Some(ChunkRange {
            data: tensor.get(from..to)?.to_vec(),
            proof: merkle::range_proof(&leaves, first as usize, last as usize)?,
        })
    }

    /// Bytes `start .. start + len` of the tensor of `tensor_len` bytes under `root`, if
    /// this proves them.
    pub fn open(&self, root: &Hash, tensor_len: u32, start: u32, len: u32) -> Option<&[u8]> {
        let (first, last) = covering(tensor_len, start, len)?;
        let from = first as usize * CHUNK_BYTES;
        let to = ((last as usize + 1) * CHUNK_BYTES).min(tensor_len as usize);
        if self.data.len() != to - from {
            return None;
        }
        let leaves = chunk_leaves(&self.data);
        merkle::verify_range(
            root,
            &leaves,
            first as usize,
            chunk_count(tensor_len) as usize,
            &self.proof,
        )
        .then_some(())?;
        let offset = start as usize - from;
        self.data.get(offset..offset + len as usize)
    }
}

/// The first and last chunks covering bytes `start .. start + len` of a `tensor_len`-byte
/// tensor.
fn covering(tensor_len: u32, start: u32, len: u32) -> Option<(u32, u32)> {
    let end = start.checked_add(len)?;
    if len == 0 || end > tensor_len {
        return None;
    }
    let chunk = CHUNK_BYTES as u32;
    Some((start / chunk, (end - 1) / chunk))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_range_opens_and_only_against_its_tensor() {
        for len in [1u32, 31, 32, 33, 64, 100, 257] {
            let tensor: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let root = chunk_root(&tensor);
            assert_eq!(tensor_leaf(&tensor), tensor_leaf_of(len, &root));
            for start in (0..len).step_by(5) {
                for n in [1u32, 4, 32, 40] {
                    let Some(range) = ChunkRange::of(&tensor, start, n) else {
                        assert!(start + n > len);
                        continue;
                    };
                    assert_eq!(
                        range.open(&root, len, start, n),
                        Some(&tensor[start as usize..(start + n) as usize]),
                        "len {len} start {start} n {n}"
                    );
                    // Another root or other bytes: nothing opens. (The length is bound by
                    // the tensor leaf, which commits to it with the root.)
                    assert!(range.open(&chunk_root(b"other"), len, start, n).is_none());
                    let mut bad = range.clone();
                    bad.data[0] ^= 1;
                    assert!(bad.open(&root, len, start, n).is_none());
                }
            }
            assert!(ChunkRange::of(&tensor, len, 1).is_none());
            assert!(ChunkRange::of(&tensor, 0, 0).is_none());
        }
    }

    #[test]
    fn the_length_is_bound_and_tensor_leaves_are_not_merkle_leaves() {
        let a = [1u8; 32];
        assert_ne!(tensor_leaf(&a), merkle::leaf(&a));
        assert_ne!(tensor_leaf(&a), tensor_leaf_of(33, &chunk_root(&a)));
        assert_eq!(chunk_count(0), 0);
        assert_eq!(chunk_count(33), 2);
    }
}
