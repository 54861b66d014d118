//! What can go wrong talking to a node.

/// A failure of the chain client, saying what to check next.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("cannot connect to {url}: {reason}. Is a node running there (e.g. `scripts/dev.sh`)?")]
    Connect { url: String, reason: String },
    #[error("RPC {method} failed: {reason}")]
    Rpc { method: String, reason: String },
    #[error("cannot decode {what} read from the node: is it an inferchain node of this version?")]
    Decode { what: String },
    #[error("the node rejected the transaction: {0}")]
    Rejected(String),
    /// What the node served does not prove a receipt (or the request cannot be proven).
    #[error("{0}")]
    Unprovable(String),
    #[error("the extrinsic failed in block #{block}: {error}")]
    Failed { block: u32, error: String },
    #[error("the node runs runtime spec version {node_spec} (transaction version {node_tx}), but this inferchain was built for {built_spec} ({built_tx}): a call signed here could mean something else there. Use the inferchain built from the same release as the node's runtime")]
    RuntimeMismatch {
        node_spec: u32,
        node_tx: u32,
        built_spec: u32,
        built_tx: u32,
    },
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
}

/// Shorthand for client results.
pub type Result<T> = core::result::Result<T, ChainError>;
