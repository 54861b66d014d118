//! The inference worker: a separate process that runs models for the node, so a hostile
//! model or input can exhaust only the worker. The node starts it (`inferchain-node
//! inference-worker ...`, or the engine's `inferchain-inference-worker` binary; both call
//! [`main`]) and talks to it over stdin/stdout with length-prefixed SCALE frames of
//! [`WorkerRequest`] and [`WorkerReply`] ([`crate::worker_pool`] is the node's side).
//!
//! Before it reads a request the worker caps its own address space, turns core files off
//! and denies itself the network ([`crate::sandbox`]); before each request it grants itself
//! [`WorkerLimits::cpu_secs`] more seconds of CPU. The node enforces the wall-clock
//! deadline by killing it. A worker stays up between requests with its models loaded.
//!
//! What it must not do: write anything but reply frames to stdout (logs go to stderr), or
//! fetch (it has no network; the node fetches first). A limit the platform refuses to
//! set is said on stderr and shows in [`WorkerStatus`], which the node logs at start.

use crate::{error::EngineError, host_runner::LocalRunner, Engine, ModelStore};
use codec::{Decode, DecodeAll, Encode};
use inferchain_primitives::{
    host::{InferenceError, InferenceRunner, TraceAnswer, TraceAsk, TraceRun, TracedModel},
    io::IoSpec,
    model::NumericsProfile,
    ModelId,
};
use std::{
    ffi::OsString,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    time::Duration,
};

/// The largest frame either side accepts (a step proof of a large model is a few MiB).
pub const MAX_FRAME_BYTES: usize = 256 << 20;

/// What the node asks of a worker.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum WorkerRequest {
    /// `InferenceRunner::run`.
    Run {
        model: ModelId,
        input: Vec<u8>,
        spec: IoSpec,
        numerics: NumericsProfile,
    },
    /// `InferenceRunner::trace`.
    Trace {
        model: TracedModel,
        input: Vec<u8>,
        run: TraceRun,
        ask: TraceAsk,
    },
    /// The limits in force (the node logs them when a worker starts).
    Status,
}

/// How a worker found its own limits.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct WorkerStatus {
    pub pid: u32,
    /// The address-space cap in force (`None`: none could be set).
    pub memory_limit: Option<u64>,
    /// Whether opening a socket fails in the worker.
    pub network_denied: bool,
    /// Whether the worker's file access is confined to reading the model store.
    pub files_confined: bool,
}

/// What a worker writes back for each request: its answer, and how much address space
/// it holds afterwards (so the node can retire a worker whose heap grew near its cap
/// before it fails an innocent request).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ReplyFrame {
    pub reply: WorkerReply,
    /// Bytes of address space mapped after the request (0 where unknown).
    pub address_space: u64,
}

/// A worker's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum WorkerReply {
    Run(Result<Vec<u8>, InferenceError>),
    Trace(Result<TraceAnswer, InferenceError>),
    Status(WorkerStatus),
    /// The request frame did not decode.
    Malformed,
}

/// The limits on one worker and each of its runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerLimits {
    /// The worker's address-space cap (its loaded models, their runs and its code).
    pub memory_bytes: u64,
    /// CPU seconds (all threads together) one request may use.
    pub cpu_secs: u64,
    /// Wall-clock time one request may take, enforced by the node.
    pub deadline: Duration,
    /// A worker holding more address space than this after a request is retired (its
    /// heap, caches and loaded models near the cap would fail the next request).
    pub recycle_bytes: u64,
}

impl Default for WorkerLimits {
    fn default() -> Self {
        WorkerLimits {
            memory_bytes: 8 << 30,
            recycle_bytes: 6 << 30,
            cpu_secs: 60,
            // Within the chain's execution window (5 blocks of 3 s) with a block to spare
            // for the result's transaction.
            deadline: Duration::from_secs(9),
        }
    }
}

/// Writes one frame: a u32 little-endian length, then the bytes.
pub fn write_frame(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|n| (*n as usize) <= MAX_FRAME_BYTES)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frame too large"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)?;
    out.flush()
}

/// Reads one frame; `None` at a clean end of stream.
pub fn read_frame(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes exceeds {MAX_FRAME_BYTES}"),
        ));
    }
    let mut bytes = vec![0u8; len];
    input.read_exact(&mut bytes)?;
    Ok(Some(bytes))
}

/// The worker's command-line arguments (after the program or subcommand name), as the
/// node's pool writes them: `--model-store DIR --memory-limit-mib N --cpu-limit-secs N`.
pub fn worker_args(store: &std::path::Path, limits: &WorkerLimits) -> Vec<OsString> {
    vec![
        "--model-store".into(),
        store.as_os_str().to_owned(),
        "--memory-limit-mib".into(),
        (limits.memory_bytes >> 20).to_string().into(),
        "--cpu-limit-secs".into(),
        limits.cpu_secs.to_string().into(),
    ]
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<(PathBuf, WorkerLimits), String> {
    let mut store = None;
    let mut limits = WorkerLimits::default();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{} needs a value", flag.to_string_lossy()))?;
        let number = || {
            value
                .to_str()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("{}: not a number", flag.to_string_lossy()))
        };
        match flag.to_str() {
            Some("--model-store") => store = Some(PathBuf::from(&value)),
            Some("--memory-limit-mib") => limits.memory_bytes = number()?.saturating_mul(1 << 20),
            Some("--cpu-limit-secs") => limits.cpu_secs = number()?,
            _ => return Err(format!("unknown argument {}", flag.to_string_lossy())),
        }
    }
    Ok((store.ok_or("--model-store DIR is required")?, limits))
}

/// Whether opening a TCP socket fails here (what [`crate::sandbox::deny_network`] does).
fn network_denied() -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
        Duration::from_millis(100),
    )
    .err()
    .is_some_and(|e| e.kind() == io::ErrorKind::PermissionDenied)
}

/// The worker process's entry point; returns its exit code. `args` are the arguments
/// after the program (or subcommand) name, as [`worker_args`] writes them.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    // A worker process starts here (its own binary, or the node's subcommand), before any
    // thread of its own.
    crate::numerics::keep_candle_on_one_thread();
    let (store, limits) = match parse_args(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("inference worker: {e}");
            return 2;
        }
    };
    match serve(
        store,
        &limits,
        &mut io::stdin().lock(),
        &mut io::stdout().lock(),
    ) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("inference worker: {e}");
            1
        }
    }
}

/// Applies the limits, then answers requests from `input` on `output` until `input`
/// ends (the node closed it or died).
pub fn serve(
    store: PathBuf,
    limits: &WorkerLimits,
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<(), EngineError> {
    let io_err = |e: io::Error| EngineError::Io {
        path: "<inference worker pipe>".into(),
        source: e,
    };
    if let Err(e) = crate::sandbox::limit_memory(limits.memory_bytes) {
        eprintln!("inference worker: no memory limit could be set ({e}); running without one");
    }
    if let Err(e) = crate::sandbox::deny_network() {
        eprintln!("inference worker: the network could not be denied ({e}); running with it");
    }
    // Loaded models take at most half the cap; runs need the rest.
    let cache = (limits.memory_bytes / 2).min(crate::DEFAULT_CACHE_BYTES as u64) as usize;
    let store = ModelStore::open(store)?;
    // Opened (its leftovers swept) first; from here on the worker reads the store and its
    // own /proc entry, and nothing else: not the node's keystore, database or home.
    let files_confined =
        match crate::sandbox::confine_files(&[store.root(), Path::new("/proc/self")]) {
            Ok(_) => true,
            Err(e) => {
                eprintln!(
                    "inference worker: file access could not be confined ({e}); running without it"
                );
                false
            }
        };
    let runner = LocalRunner(Engine::new(store, cache));
    while let Some(frame) = read_frame(input).map_err(io_err)? {
        if let Err(e) = crate::sandbox::cpu_budget(limits.cpu_secs) {
            eprintln!("inference worker: no CPU-time limit could be set ({e})");
        }
        let reply = match WorkerRequest::decode_all(&mut frame.as_slice()) {
            Err(_) => WorkerReply::Malformed,
            Ok(WorkerRequest::Run {
                model,
                input,
                spec,
                numerics,
            }) => WorkerReply::Run(runner.run(model, &input, &spec, &numerics, None)),
            Ok(WorkerRequest::Trace {
                model,
                input,
                run,
                ask,
            }) => WorkerReply::Trace(runner.trace(&model, &input, run, ask)),
            Ok(WorkerRequest::Status) => WorkerReply::Status(WorkerStatus {
                pid: std::process::id(),
                memory_limit: crate::sandbox::memory_limit().ok().flatten(),
                network_denied: network_denied(),
                files_confined,
            }),
        };
        let frame = ReplyFrame {
            reply,
            address_space: crate::sandbox::address_space().unwrap_or(0),
        };
        write_frame(output, &frame.encode()).map_err(io_err)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_oversize_lengths() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"abc").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut r = buf.as_slice();
        assert_eq!(read_frame(&mut r).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_frame(&mut r).unwrap(), Some(Vec::new()));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let huge = ((MAX_FRAME_BYTES + 1) as u32).to_le_bytes();
        assert_eq!(
            read_frame(&mut huge.as_slice()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // A length with fewer bytes behind it than it names.
        let mut short = 10u32.to_le_bytes().to_vec();
        short.extend_from_slice(b"abc");
        assert!(read_frame(&mut short.as_slice()).is_err());
    }

    #[test]
    fn worker_arguments_round_trip_and_bad_ones_are_named() {
        let limits = WorkerLimits {
            memory_bytes: 512 << 20,
            recycle_bytes: 384 << 20,
            cpu_secs: 7,
            deadline: Duration::from_secs(3),
        };
        let (store, parsed) =
            parse_args(worker_args(std::path::Path::new("/tmp/s"), &limits)).unwrap();
        assert_eq!(store, PathBuf::from("/tmp/s"));
        assert_eq!(parsed.memory_bytes, limits.memory_bytes);
        assert_eq!(parsed.cpu_secs, 7);
        assert!(parse_args(["--cpu-limit-secs".into(), "x".into()]).is_err());
        assert!(parse_args(["--bogus".into(), "1".into()]).is_err());
        assert!(parse_args(Vec::<OsString>::new()).is_err());
    }
}
