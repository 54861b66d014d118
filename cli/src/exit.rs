//! Exit codes that scripts can branch on, and errors that carry one.
//!
//! 0 success; 1 any other error; 2 bad arguments (clap's); and for receipts:
//! [`INVALID`], [`NOT_FINAL`], [`UNREACHABLE`].

/// A receipt check failed: it does not prove what it claims.
pub const INVALID: u8 = 3;
/// Everything proven holds but the request is not final yet: ask again later.
pub const NOT_FINAL: u8 = 4;
/// The node could not be reached or did not answer.
pub const UNREACHABLE: u8 = 5;

/// An error that ends the process with `code`; with `json` it is printed as a JSON
/// object on stdout (`{"error": ..., "exit_code": ...}`) instead of a line on stderr.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
    pub json: bool,
}

impl Exit {
    pub fn new(code: u8, message: impl Into<String>, json: bool) -> Self {
        Exit {
            code,
            message: message.into(),
            json,
        }
    }

    /// `error` with the exit code its kind calls for: a node that cannot be reached is
    /// [`UNREACHABLE`], a node that serves something else or nothing provable [`INVALID`].
    pub fn from_chain(error: anyhow::Error, json: bool) -> Self {
        use inferchain_cli::chain::ChainError;
        let code = match error.downcast_ref::<ChainError>() {
            Some(
                ChainError::Connect { .. } | ChainError::Rpc { .. } | ChainError::Timeout { .. },
            ) => UNREACHABLE,
            Some(_) => INVALID,
            None => match error.downcast_ref::<Exit>() {
                Some(exit) => exit.code,
                None => 1,
            },
        };
        Exit::new(code, format!("{error:#}"), json)
    }
}
