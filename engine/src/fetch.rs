//! Fetching a model the store lacks from a mirror over plain HTTP.
//!
//! A mirror is any HTTP server that serves a model's store folder: `<uri>/manifest.scale`
//! and `<uri>/<file>` for each file the manifest names (`python3 -m http.server` run in
//! a model store serves `http://host:port/<hex id>`). Nothing fetched is trusted: the
//! manifest must hash to the requested id and each file to its manifest entry before the
//! model is imported, so a mirror can be slow or absent but never wrong.
//!
//! Only `http://` is spoken (HTTP/1.1, `Connection: close`, a `Content-Length` or
//! read-to-close body). Integrity comes from the hashes, not the transport; an `https://`
//! URI is refused with a message saying to use a plain mirror or import by hand.

use crate::{error::EngineError, store::ModelStore, Result};
use codec::Decode;
use inferchain_primitives::{
    model::{Manifest, ModelFormat},
    ModelId,
};
use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    path::Path,
    time::Duration,
};

/// The largest manifest accepted from a mirror.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
/// How long connecting and each read may take.
const TIMEOUT: Duration = Duration::from_secs(30);

fn fetch_error(uri: &str, what: impl std::fmt::Display) -> EngineError {
    EngineError::Fetch(format!("{uri}: {what}"))
}

/// `http://host[:port]/path` split into (host, port, path).
fn parse_http(uri: &str) -> Result<(String, u16, String)> {
    let rest = uri.strip_prefix("http://").ok_or_else(|| {
        fetch_error(
            uri,
            "only http:// mirrors are supported; serve the model over plain HTTP (its hashes \
             protect it) or import it with `inferchain model import`",
        )
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>().map_err(|_| fetch_error(uri, "bad port"))?,
        ),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(fetch_error(uri, "no host"));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// GETs `uri`; the body must be at most `limit` bytes.
pub fn http_get(uri: &str, limit: u64) -> Result<Vec<u8>> {
    let (host, port, path) = parse_http(uri)?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| fetch_error(uri, e))?
        .next()
        .ok_or_else(|| fetch_error(uri, "host has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| fetch_error(uri, e))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| fetch_error(uri, e))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: inferchain-engine\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fetch_error(uri, e))?;
    let mut response = Vec::new();
    stream
        .take(limit + 64 * 1024)
        .read_to_end(&mut response)
        .map_err(|e| fetch_error(uri, e))?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| fetch_error(uri, "no HTTP response header"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let body = response[split + 4..].to_vec();
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
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if body.len() != len {
            return Err(fetch_error(
                uri,
                format!("body is {} bytes, Content-Length says {len}", body.len()),
            ));
        }
    }
    if body.len() as u64 > limit {
        return Err(fetch_error(uri, format!("body exceeds {limit} bytes")));
    }
    Ok(body)
}

/// Fetches model `id` from the mirror at `uri` into `store`, checking every hash.
pub fn fetch_model(store: &ModelStore, id: &ModelId, uri: &str) -> Result<Manifest> {
    let base = uri.trim_end_matches('/');
    let bytes = http_get(&format!("{base}/manifest.scale"), MAX_MANIFEST_BYTES)?;
    let found = ModelId::from(inferchain_primitives::blake2_256(&bytes));
    if found != *id {
        return Err(EngineError::ManifestMismatch {
            path: base.into(),
            expected: *id,
            found,
        });
    }
    let manifest = Manifest::decode(&mut &bytes[..])
        .map_err(|_| fetch_error(base, "manifest.scale does not decode"))?;
    let staging = store.root().join(format!(
        ".fetch-{}-{}",
        std::process::id(),
        hex::encode(&id.0[..8])
    ));
    let _ = std::fs::remove_dir_all(&staging);
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
            let body = http_get(&format!("{base}/{name}"), file.size)?;
            let hash = inferchain_primitives::blake2_256(&body);
            if hash != file.blake2_256 || body.len() as u64 != file.size {
                return Err(EngineError::FileHashMismatch {
                    path: format!("{base}/{name}").into(),
                    expected: hex::encode(file.blake2_256),
                    found: hex::encode(hash),
                });
            }
            let dest = staging.join(&name);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| EngineError::io(parent, e))?;
            }
            std::fs::write(&dest, &body).map_err(|e| EngineError::io(&dest, e))?;
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
