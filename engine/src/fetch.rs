//! Fetching a model the store lacks from a mirror over plain HTTP.
//!
//! A mirror is any HTTP server that serves a model's store folder: `<uri>/manifest.scale`
//! and `<uri>/<file>` for each file the manifest names (`python3 -m http.server` run in
//! a model store serves `http://host:port/<hex id>`). Nothing fetched is trusted: the
//! manifest must hash to the requested id and each file to its manifest entry before the
//! model is imported, so a mirror can be slow or absent but never wrong.
//!
//! Only `http://` is spoken (HTTP/1.1, `Connection: close`, a `Content-Length` or
//! read-to-close body), at addresses [`inferchain_primitives::mirror`] accepts (the
//! registry refuses others). Integrity comes from the hashes, not the transport; an
//! `https://` URI is refused with a message saying to use a plain mirror or import by hand.
//!
//! A mirror is untrusted in time and size too: one fetch has an overall deadline and a
//! total size cap ([`FetchLimits`]), checked before the first byte (the manifest's sizes)
//! and while streaming; files stream to disk through their hash, never whole into memory;
//! each fetch stages in a folder of its own, removed when it ends (one a killed process
//! left is swept when a store is next opened).

use crate::{error::EngineError, store::ModelStore, Result};
use codec::DecodeAll;
use inferchain_primitives::{
    mirror::parse_mirror_uri,
    model::{Manifest, ModelFormat},
    ModelId,
};
use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    path::Path,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// The largest manifest accepted from a mirror.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
/// How long connecting and each read may take (within the fetch's deadline).
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response header accepted.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How long one model fetch may take and how many bytes it may bring, all files together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchLimits {
    pub deadline: Duration,
    pub max_bytes: u64,
}

impl Default for FetchLimits {
    /// 15 minutes and 16 GiB: a large language model over a slow link, not more.
    fn default() -> Self {
        FetchLimits {
            deadline: Duration::from_secs(15 * 60),
            max_bytes: 16 << 30,
        }
    }
}

fn fetch_error(uri: &str, what: impl std::fmt::Display) -> EngineError {
    EngineError::Fetch(format!("{uri}: {what}"))
}

/// `http://host[:port]/path` split into (host, port, path).
fn parse_http(uri: &str) -> Result<(String, u16, String)> {
    if !uri.starts_with("http://") {
        return Err(fetch_error(
            uri,
            "only http:// mirrors are supported; serve the model over plain HTTP (its hashes \
             protect it) or import it with `inferchain model import`",
        ));
    }
    let parsed = parse_mirror_uri(uri.as_bytes())
        .map_err(|e| fetch_error(uri, format!("not a mirror address ({e:?})")))?;
    Ok((parsed.host.into(), parsed.port, parsed.path.into()))
}

/// Where a fetch must end and how many bytes it may still bring.
struct Budget {
    until: Instant,
    bytes_left: u64,
}

impl Budget {
    fn time_left(&self, uri: &str) -> Result<Duration> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(fetch_error(
                uri,
                "the fetch ran past its deadline (a slow or stalling mirror); the model stays \
                 unfetched, import it by hand or fix the mirror",
            ));
        }
        Ok(left)
    }
}

/// GETs `uri` into `sink`; the body must be at most `limit` bytes and arrive within the
/// budget. Returns the body's length.
fn http_get_into(uri: &str, limit: u64, budget: &mut Budget, sink: &mut dyn Write) -> Result<u64> {
    let (host, port, path) = parse_http(uri)?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| fetch_error(uri, e))?
        .next()
        .ok_or_else(|| fetch_error(uri, "host has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT.min(budget.time_left(uri)?))
        .map_err(|e| fetch_error(uri, e))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: inferchain-engine\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fetch_error(uri, e))?;
    let mut chunk = vec![0u8; 64 * 1024];
    let read = |stream: &mut TcpStream, buf: &mut [u8], budget: &Budget| -> Result<usize> {
        stream
            .set_read_timeout(Some(TIMEOUT.min(budget.time_left(uri)?)))
            .map_err(|e| fetch_error(uri, e))?;
        let n = stream.read(buf).map_err(|e| {
            // A read cut short by the deadline says so; other errors (a stall of a
            // whole `TIMEOUT`, a reset) say what they are.
            budget
                .time_left(uri)
                .err()
                .unwrap_or_else(|| fetch_error(uri, e))
        })?;
        // A read that ends past the deadline counts as past it.
        budget.time_left(uri)?;
        Ok(n)
    };
    // The header, up to the blank line.
    let mut head = Vec::new();
    let split = loop {
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if head.len() > MAX_HEADER_BYTES {
            return Err(fetch_error(uri, "the response header is too large"));
        }
        let n = read(&mut stream, &mut chunk, budget)?;
        if n == 0 {
            return Err(fetch_error(uri, "no HTTP response header"));
        }
        head.extend_from_slice(&chunk[..n]);
    };
    let body_start = head.split_off(split + 4);
    let head = String::from_utf8_lossy(&head[..split]).to_string();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| fetch_error(uri, "malformed status line"))?;
    if status != 200 {
        return Err(fetch_error(uri, format!("HTTP status {status}")));
    }
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return Err(fetch_error(uri, "chunked responses are not supported"));
    }
    let declared = header("content-length").and_then(|v| v.parse::<u64>().ok());
    let cap = limit.min(budget.bytes_left);
    if declared.is_some_and(|len| len > cap) {
        return Err(fetch_error(
            uri,
            format!(
                "the mirror announces {} bytes, more than the {cap} allowed",
                declared.unwrap_or(0)
            ),
        ));
    }
    let mut got = 0u64;
    let mut pending: &[u8] = &body_start;
    loop {
        got += pending.len() as u64;
        if got > cap {
            return Err(fetch_error(uri, format!("body exceeds {cap} bytes")));
        }
        budget.bytes_left = budget.bytes_left.saturating_sub(pending.len() as u64);
        sink.write_all(pending).map_err(|e| fetch_error(uri, e))?;
        if declared.is_some_and(|len| got >= len) {
            break;
        }
        let n = read(&mut stream, &mut chunk, budget)?;
        if n == 0 {
            break;
        }
        pending = &chunk[..n];
    }
    if let Some(len) = declared {
        if got != len {
            return Err(fetch_error(
                uri,
                format!("body is {got} bytes, Content-Length says {len}"),
            ));
        }
    }
    Ok(got)
}

/// GETs `uri`; the body must be at most `limit` bytes.
pub fn http_get(uri: &str, limit: u64) -> Result<Vec<u8>> {
    let mut budget = Budget {
        until: Instant::now() + FetchLimits::default().deadline,
        bytes_left: limit,
    };
    let mut body = Vec::new();
    http_get_into(uri, limit, &mut budget, &mut body)?;
    Ok(body)
}

/// A file being written through its blake2-256.
struct HashingFile {
    file: std::fs::File,
    state: blake2b_simd::State,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.state.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Fetches model `id` from the mirror at `uri` into `store`, checking every hash, under
/// the default [`FetchLimits`].
pub fn fetch_model(store: &ModelStore, id: &ModelId, uri: &str) -> Result<Manifest> {
    fetch_model_within(store, id, uri, FetchLimits::default())
}

/// Fetches model `id` from the mirror at `uri` into `store`, checking every hash; the
/// whole fetch must end within `limits`.
pub fn fetch_model_within(
    store: &ModelStore,
    id: &ModelId,
    uri: &str,
    limits: FetchLimits,
) -> Result<Manifest> {
    static FETCHES: AtomicU64 = AtomicU64::new(0);
    let base = uri.trim_end_matches('/');
    let mut budget = Budget {
        until: Instant::now() + limits.deadline,
        bytes_left: limits.max_bytes,
    };
    let mut bytes = Vec::new();
    http_get_into(
        &format!("{base}/manifest.scale"),
        MAX_MANIFEST_BYTES,
        &mut budget,
        &mut bytes,
    )?;
    let found = ModelId::from(inferchain_primitives::blake2_256(&bytes));
    if found != *id {
        return Err(EngineError::ManifestMismatch {
            path: base.into(),
            expected: *id,
            found,
        });
    }
    // Exactly one encoding: trailing bytes would give one manifest many ids.
    let manifest = Manifest::decode_all(&mut &bytes[..]).map_err(|_| {
        fetch_error(
            base,
            "manifest.scale does not decode (or has trailing bytes)",
        )
    })?;
    let total = manifest
        .files
        .iter()
        .fold(0u64, |sum, f| sum.saturating_add(f.size));
    if total > budget.bytes_left {
        return Err(fetch_error(
            base,
            format!(
                "the model is {total} bytes, more than this node fetches ({} bytes); import it by hand",
                budget.bytes_left
            ),
        ));
    }
    // A folder of this fetch's own, created new: two fetches never share one.
    let staging = store.root().join(format!(
        ".fetch-{}-{}-{}",
        std::process::id(),
        FETCHES.fetch_add(1, Ordering::Relaxed),
        hex::encode(&id.0[..8])
    ));
    if let Err(e) = std::fs::create_dir(&staging) {
        // Only a process with our pid before us (a restarted container) could have left
        // this name: its fetch is over.
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(EngineError::io(&staging, e));
        }
        std::fs::remove_dir_all(&staging).map_err(|e| EngineError::io(&staging, e))?;
        std::fs::create_dir(&staging).map_err(|e| EngineError::io(&staging, e))?;
    }
    let result = (|| {
        for file in &manifest.files {
            let name = String::from_utf8(file.name.clone())
                .map_err(|_| fetch_error(base, "a file name is not UTF-8"))?;
            if name.split('/').any(|part| part.is_empty() || part == "..") {
                return Err(fetch_error(
                    base,
                    format!("file name `{name}` leaves the folder"),
                ));
            }
            let dest = staging.join(&name);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| EngineError::io(parent, e))?;
            }
            let mut sink = HashingFile {
                file: std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&dest)
                    .map_err(|e| EngineError::io(&dest, e))?,
                state: blake2b_simd::Params::new().hash_length(32).to_state(),
            };
            let size = http_get_into(&format!("{base}/{name}"), file.size, &mut budget, &mut sink)?;
            sink.flush().map_err(|e| EngineError::io(&dest, e))?;
            let hash = sink.state.finalize();
            if hash.as_bytes() != file.blake2_256 || size != file.size {
                return Err(EngineError::FileHashMismatch {
                    path: format!("{base}/{name}").into(),
                    expected: hex::encode(file.blake2_256),
                    found: hex::encode(hash.as_bytes()),
                });
            }
        }
        let src: &Path = &staging;
        let src = match manifest.format {
            ModelFormat::Onnx => src.join(crate::store::ONNX_FILE),
            ModelFormat::BertEmbedding | ModelFormat::Llm => src.to_path_buf(),
        };
        let imported = store.import(&src, Some(manifest.format), &mut |_| {})?;
        if imported.id() != *id {
            return Err(EngineError::ManifestMismatch {
                path: base.into(),
                expected: *id,
                found: imported.id(),
            });
        }
        Ok(imported)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}
