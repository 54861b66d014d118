//! Fetching a missing model from an HTTP mirror on loopback: a faithful mirror fills the
//! store; a mirror serving a tampered file or the wrong manifest fills nothing.

use inferchain_engine::{fetch::fetch_model, EngineError, ModelStore};
use std::{
    collections::HashMap,
    io::{Read, Write},
    net::TcpListener,
    path::PathBuf,
    sync::Arc,
    thread,
};

fn tiny_mlp() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-mlp/model.onnx")
}

fn temp_store(tag: &str) -> ModelStore {
    let dir = std::env::temp_dir().join(format!("inferchain-fetch-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    ModelStore::open(&dir).expect("store opens")
}

/// A one-thread HTTP/1.1 server answering GET `path` from `files` (404 otherwise).
fn serve(files: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let files = Arc::new(files);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let response = match files.get(&path) {
                Some(body) => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(body);
                    r
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// The files of the tiny MLP as its store folder holds them, keyed by URL path.
fn mirror_files(tag: &str) -> (inferchain_primitives::ModelId, HashMap<String, Vec<u8>>) {
    let origin = temp_store(tag);
    let manifest = origin
        .import(&tiny_mlp(), None, &mut |_| {})
        .expect("import");
    let id = manifest.id();
    let folder = origin.root().join(hex::encode(id.0));
    let mut files = HashMap::new();
    for name in ["manifest.scale", "model.onnx"] {
        files.insert(
            format!("/m/{name}"),
            std::fs::read(folder.join(name)).expect("stored file"),
        );
    }
    (id, files)
}

#[test]
fn a_faithful_mirror_fills_the_store() {
    let (id, files) = mirror_files("origin-ok");
    let base = serve(files);
    let store = temp_store("ok");
    assert!(!store.contains(&id));
    let manifest = fetch_model(&store, &id, &format!("{base}/m")).expect("fetches");
    assert_eq!(manifest.id(), id);
    assert!(store.contains(&id));
    store
        .verify(&id, &mut |_| {})
        .expect("the fetched copy verifies");
}

#[test]
fn a_tampered_file_or_wrong_manifest_fills_nothing() {
    let (id, mut files) = mirror_files("origin-bad");
    let onnx = files.get_mut("/m/model.onnx").expect("model file");
    let last = onnx.len() - 1;
    onnx[last] ^= 1;
    let base = serve(files.clone());
    let store = temp_store("bad");
    let err = fetch_model(&store, &id, &format!("{base}/m")).expect_err("tampered");
    assert!(matches!(err, EngineError::FileHashMismatch { .. }), "{err}");
    assert!(!store.contains(&id));

    // Asking for another id than the mirror's manifest.
    let other = inferchain_primitives::ModelId::repeat_byte(7);
    let err = fetch_model(&store, &other, &format!("{base}/m")).expect_err("wrong id");
    assert!(matches!(err, EngineError::ManifestMismatch { .. }), "{err}");

    // Nothing served there, and a scheme we do not speak.
    let err = fetch_model(&store, &id, &format!("{base}/nothing")).expect_err("404");
    assert!(err.to_string().contains("404"), "{err}");
    let err = fetch_model(&store, &id, "https://example.invalid/m").expect_err("https");
    assert!(err.to_string().contains("only http://"), "{err}");
    assert!(store.list().expect("list").is_empty());
}
