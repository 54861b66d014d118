//! # inferchain-primitives
//!
//! The `no_std` vocabulary every other inferchain crate shares: identifiers
//! ([`ModelId`], [`RequestId`]), the canonical encoding of model inputs and outputs
//! ([`io`]), what governance registers about a model ([`model`]) and how two outputs are
//! compared ([`compare`]), where a model's mirror may be ([`mirror`]), agent-memory retrieval ([`recall`]), and the commitments and proofs of the dispute game ([`dispute`],
//! [`merkle`], [`tensor_tree`], [`trace_tree`]).
//!
//! What it must not do: depend on FRAME pallets, the engine or anything `std`-only.
//! The runtime, the engine and the clients all decode the same bytes with these types,
//! so a change here is a protocol change.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod compare;
pub mod dispute;
pub mod host;
pub mod io;
pub mod merkle;
pub mod mirror;
pub mod model;
pub mod recall;
pub mod tensor_tree;
pub mod trace_tree;

pub use sp_core::H256;

/// A model's identity: the blake2-256 hash of its canonical manifest, which covers every
/// byte the model needs to run (see `inferchain-engine`'s `ModelStore`).
pub type ModelId = H256;

/// A request's identity: a counter the inference pallet increments.
pub type RequestId = u64;

/// blake2-256, the hash used for model ids, input and output hashes, Merkle trees and
/// tensor chunks. Inside the runtime it is the host's native hashing (`sp_io`), not
/// blake2 compiled to wasm: a step or chunk proof hashes hundreds of KiB in 32-byte
/// chunks, and the host function is several times faster there. Natively it is the same
/// function either way.
pub fn blake2_256(data: &[u8]) -> [u8; 32] {
    sp_io::hashing::blake2_256(data)
}

#[cfg(test)]
mod tests;
