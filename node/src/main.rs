//! # inferchain-node
//!
//! The node binary: an sc-service full node with BABE block production, GRANDPA finality,
//! ParityDB storage and off-chain workers. It stays thin like the solochain template's node:
//! chain specs name runtime presets (`chain_spec`), the service wires the client
//! (`service`), RPC adds the standard extensions (`rpc`), and the CLI parses
//! (`cli`, `command`). Protocol logic lives in the pallets and the runtime, inference in
//! `inferchain-engine`; nothing here decides what a block contains.

// sc-cli's and sc-service's error types are large, and their APIs (which we implement
// closures for) return them by value.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod cli;
mod command;
mod inference;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
    command::run()
}
