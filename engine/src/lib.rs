//! # inferchain-engine
//!
//! The executor every inferchain participant runs: it loads a registered model from a
//! content-addressed [`store::ModelStore`] (a model id is the blake2-256 of a manifest
//! covering every byte of its files), runs it on candle, and returns the canonical output
//! ([`inferchain_primitives::io::Payload`]) whose hash goes on chain.
//!
//! Formats: ONNX graphs through candle-onnx ([`onnx`]), BERT-family sentence embeddings
//! through candle-transformers ([`bert`]). [`Engine`] caches loaded models (LRU under a
//! byte budget). [`npy`] reads and writes `.npy` for the CLI. [`fetch`] brings a missing
//! model from an HTTP mirror, hash-checked before import.
//!
//! Used by the node (the inference host function, off-chain workers only) and by the
//! `inferchain` CLI (users re-running results).
//!
//! What it must not do: depend on FRAME or anything of the runtime; load a file whose hash
//! was not checked; run an operator whose output is random. Its outputs are protocol data:
//! a change to any kernel's bits bumps [`spec::NUMERICS_VERSION`] (docs/DETERMINISM.md).

pub mod bert;
pub mod cache;
pub mod conversion;
mod engine;
pub mod error;
pub mod fetch;
pub mod legalize;
pub mod npy;
pub mod onnx;
pub mod spec;
pub mod store;

pub use engine::{Engine, LoadedModel, RunOutcome, DEFAULT_CACHE_BYTES};
pub use error::{EngineError, Result};
pub use store::ModelStore;
