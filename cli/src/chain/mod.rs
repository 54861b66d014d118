//! A blocking client for an inferchain node: [`Chain`] connects over WebSocket
//! (jsonrpsee), signs extrinsics with sr25519 keys ([`signing`]), waits for them to land
//! and reads the pallets' storage with the runtime's types ([`state`]); [`receipt`] proves
//! what the chain says about a request (GRANDPA finality across authority-set changes,
//! [`finality`]; storage proofs), from a node ([`receipt_collect`]) or an exported file.

mod client;
mod error;
pub mod finality;
pub mod memory;
pub mod receipt;
pub mod receipt_collect;
pub mod signing;
pub mod state;

pub use client::{describe_error, Chain, Included};
pub use error::ChainError;
