//! # inferchain-engine
//!
//! The executor every inferchain participant runs: it loads a registered model from a
//! content-addressed [`store::ModelStore`] (a model id is the blake2-256 of a manifest
//! covering every byte of its files), runs it on candle, and returns the canonical output
//! ([`inferchain_primitives::io::Payload`]) whose hash goes on chain.
//!
//! Formats: ONNX graphs ([`onnx`]), BERT-family sentence embeddings ([`bert`]), llama-family
//! language models ([`llm`]: greedy generation, verified by one teacher-forced pass). Every
//! floating-point operator whose bits depend on how it is computed runs on
//! `inferchain-kernels` ([`numerics`]), so outputs are the same bits on every CPU;
//! candle is the tensor and loading framework, and computes only what is exact anyway
//! (data movement, single IEEE-754 operations). [`Engine`] caches loaded models (LRU under a
//! byte budget). [`npy`] reads and writes `.npy` for the CLI. [`fetch`] brings a missing
//! model from an HTTP mirror, hash-checked before import. [`dispute_plan`] writes a model in
//! the runtime referee's step language ([`bert_plan`] for BERT embedders, with the
//! canonical tokenizer), [`plan_kernels`] computes its products on the fast kernels, and
//! [`traced_run`] runs it for the bisection game. [`host_runner`] answers the node's
//! inference host function; [`worker`] is the separate process that runs models for the
//! node under [`sandbox`] limits, and [`worker_pool`] the node's side of it.
//!
//! Used by the node (the inference host function, off-chain workers only) and by the
//! `inferchain` CLI (users re-running results).
//!
//! What it must not do: depend on FRAME or anything of the runtime; load a file whose hash
//! was not checked; run an operator whose output is random. Its outputs are protocol data:
//! a change to any kernel's bits bumps [`spec::NUMERICS_VERSION`] (docs/DETERMINISM.md);
//! compute a floating-point reduction or transcendental function outside the kernels.

pub mod bert;
pub mod bert_plan;
pub mod cache;
pub mod channels_last;
pub mod conversion;
pub mod cost;
pub mod dispute_plan;
mod engine;
pub mod error;
pub mod fetch;
pub mod golden;
pub mod host_runner;
pub mod kernel_threads;
pub mod legalize;
pub mod llm;
pub mod npy;
pub mod numerics;
pub mod onnx;
pub mod plan_kernels;
pub mod sandbox;
pub mod spec;
pub mod store;
pub mod traced_run;
pub mod worker;
pub mod worker_pool;

pub use engine::{check_numerics, Engine, LoadedModel, RunOutcome, DEFAULT_CACHE_BYTES};
pub use error::{EngineError, Result};
pub use store::ModelStore;
