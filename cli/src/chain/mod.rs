//! A blocking client for an inferchain node: [`Chain`] connects over WebSocket
//! (jsonrpsee), signs extrinsics with sr25519 keys ([`signing`]), waits for them to land
//! and reads the pallets' storage with the runtime's types ([`state`]); [`receipt`] proves
//! what the chain says about a request (GRANDPA finality, storage proofs).

mod client;
mod error;
pub mod memory;
pub mod receipt;
pub mod signing;
pub mod state;

pub use client::{describe_error, Chain, Included};
pub use error::ChainError;
