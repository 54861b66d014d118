//! The library half of the `inferchain` client: [`chain`] talks to a node over
//! JSON-RPC — signed extrinsics built with the runtime's own types, typed reads of the
//! pallets' storage, events. The binary's commands and the node's end-to-end tests use it.
//!
//! What it must not do: hold protocol logic. It builds, signs, sends and decodes; every
//! rule is the runtime's.

pub mod chain;
