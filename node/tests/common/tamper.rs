//! A WebSocket JSON-RPC proxy that forwards everything to a node and rewrites the
//! answers of one method: the dishonest RPC node a receipt must not trust.

use serde_json::Value;
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::Arc,
    thread,
};

/// Rewrites the `result` of answers to one method.
pub type Rewrite = Arc<dyn Fn(&mut Value) + Send + Sync>;

/// Starts the proxy in front of `127.0.0.1:upstream`; returns its `ws://` URL. Answers
/// to `method` get `rewrite` applied to their `result`.
pub fn start(upstream: u16, method: &'static str, rewrite: Rewrite) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let rewrite = rewrite.clone();
            thread::spawn(move || {
                let _ = serve(client, upstream, method, rewrite);
            });
        }
    });
    format!("ws://127.0.0.1:{port}")
}

fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    Ok(head)
}

fn serve(
    mut client: TcpStream,
    upstream: u16,
    method: &'static str,
    rewrite: Rewrite,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
    // The upgrade request, without compression so frames stay readable.
    let head = String::from_utf8_lossy(&read_head(&mut client)?).to_string();
    let head: String = head
        .split("\r\n")
        .filter(|l| {
            !l.to_ascii_lowercase()
                .starts_with("sec-websocket-extensions")
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    server.write_all(head.as_bytes())?;
    let answer = read_head(&mut server)?;
    client.write_all(&answer)?;

    // Requests: remember which ids ask for `method`; pass them on untouched.
    let ids = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let (mut c_read, mut s_write) = (client.try_clone()?, server.try_clone()?);
    let seen = ids.clone();
    thread::spawn(move || -> std::io::Result<()> {
        loop {
            let (raw, opcode, payload) = read_frame(&mut c_read, true)?;
            if opcode == 1 {
                if let Ok(v) = serde_json::from_slice::<Value>(&payload) {
                    if v["method"] == method {
                        seen.lock().expect("lock").push(v["id"].clone());
                    }
                }
            }
            s_write.write_all(&raw)?;
        }
    });
    // Answers: rewrite those to `method`.
    loop {
        let (raw, opcode, payload) = read_frame(&mut server, false)?;
        if opcode == 1 {
            if let Ok(mut v) = serde_json::from_slice::<Value>(&payload) {
                let hit = ids.lock().expect("lock").contains(&v["id"]);
                if hit && !v["result"].is_null() {
                    rewrite(&mut v["result"]);
                    client.write_all(&text_frame(v.to_string().as_bytes()))?;
                    continue;
                }
            }
        }
        client.write_all(&raw)?;
    }
}

/// One frame: (its raw bytes, opcode, unmasked payload).
fn read_frame(stream: &mut TcpStream, masked: bool) -> std::io::Result<(Vec<u8>, u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    let mut raw = head.to_vec();
    let opcode = head[0] & 0x0f;
    let mut len = (head[1] & 0x7f) as u64;
    if len == 126 {
        let mut b = [0u8; 2];
        stream.read_exact(&mut b)?;
        raw.extend_from_slice(&b);
        len = u16::from_be_bytes(b) as u64;
    } else if len == 127 {
        let mut b = [0u8; 8];
        stream.read_exact(&mut b)?;
        raw.extend_from_slice(&b);
        len = u64::from_be_bytes(b);
    }
    let mut mask = [0u8; 4];
    if masked {
        stream.read_exact(&mut mask)?;
        raw.extend_from_slice(&mask);
    }
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload)?;
    raw.extend_from_slice(&payload);
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok((raw, opcode, payload))
}

/// An unmasked, final text frame (server to client).
fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(n as u8),
        n if n <= u16::MAX as usize => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}
