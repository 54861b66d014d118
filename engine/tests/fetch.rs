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

/// A server that answers every GET with a 200 announcing `len` bytes, then sends one byte
/// every `every` (a mirror that trickles).
fn serve_trickle(len: usize, every: std::time::Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for _ in 0..len {
                    thread::sleep(every);
                    if stream.write_all(b"x").is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn staging_folders(store: &ModelStore) -> Vec<String> {
    std::fs::read_dir(store.root())
        .expect("store root")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn a_trickling_mirror_is_cut_off_at_the_fetch_deadline() {
    use inferchain_engine::fetch::{fetch_model_within, FetchLimits};
    let base = serve_trickle(10_000, std::time::Duration::from_millis(50));
    let store = temp_store("trickle");
    let id = inferchain_primitives::ModelId::repeat_byte(3);
    let started = std::time::Instant::now();
    let err = fetch_model_within(
        &store,
        &id,
        &format!("{base}/m"),
        FetchLimits {
            deadline: std::time::Duration::from_secs(1),
            max_bytes: 1 << 30,
        },
    )
    .expect_err("cut off");
    assert!(matches!(err, EngineError::Fetch(_)), "{err}");
    assert!(err.to_string().contains("deadline"), "{err}");
    // Per-read timeouts alone would have waited the full 500 s of trickle.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(store.list().expect("list").is_empty());
    assert!(staging_folders(&store).is_empty());
}

#[test]
fn a_model_larger_than_the_fetch_cap_or_a_truncated_file_fills_nothing() {
    use inferchain_engine::fetch::{fetch_model_within, FetchLimits};
    let (id, mut files) = mirror_files("origin-cap");
    let size = files["/m/model.onnx"].len() as u64;
    let base = serve(files.clone());
    let store = temp_store("cap");
    // The manifest's sizes are over the cap: refused before any file is asked for.
    let err = fetch_model_within(
        &store,
        &id,
        &format!("{base}/m"),
        FetchLimits {
            deadline: std::time::Duration::from_secs(60),
            max_bytes: size / 2,
        },
    )
    .expect_err("over the cap");
    assert!(
        err.to_string().contains("more than this node fetches"),
        "{err}"
    );
    // A mirror serving a truncated file (with a matching Content-Length).
    files
        .get_mut("/m/model.onnx")
        .expect("file")
        .truncate(size as usize / 3);
    let base = serve(files);
    let err = fetch_model(&store, &id, &format!("{base}/m")).expect_err("truncated");
    assert!(matches!(err, EngineError::FileHashMismatch { .. }), "{err}");
    assert!(store.list().expect("list").is_empty());
    assert!(staging_folders(&store).is_empty());
}

#[test]
fn concurrent_fetches_of_one_model_do_not_share_a_staging_folder() {
    let (id, files) = mirror_files("origin-concurrent");
    let base = serve(files);
    let store = temp_store("concurrent");
    let fetches: Vec<_> = (0..4)
        .map(|_| {
            let (store, uri) = (store.clone(), format!("{base}/m"));
            thread::spawn(move || fetch_model(&store, &id, &uri).map(|m| m.id()))
        })
        .collect();
    for f in fetches {
        assert_eq!(f.join().expect("no panic").expect("fetches"), id);
    }
    store.verify(&id, &mut |_| {}).expect("intact");
    assert!(staging_folders(&store).is_empty());
}

#[test]
fn a_corrupt_store_copy_is_moved_aside_and_fetched_again() {
    use inferchain_engine::{
        fetch::FetchLimits,
        host_runner::{FetchingRunner, LocalRunner},
        Engine,
    };
    use inferchain_primitives::host::InferenceRunner;
    let (id, files) = mirror_files("origin-corrupt");
    let base = serve(files);
    let store = temp_store("corrupt");
    store
        .import(&tiny_mlp(), None, &mut |_| {})
        .expect("import");
    // The stored file is cut short (a disk error, an interrupted copy).
    let file = store.root().join(hex::encode(id.0)).join("model.onnx");
    let bytes = std::fs::read(&file).expect("stored");
    std::fs::write(&file, &bytes[..bytes.len() / 2]).expect("truncate");
    assert!(store.verify(&id, &mut |_| {}).is_err());
    let runner = FetchingRunner::new(
        store.clone(),
        FetchLimits::default(),
        LocalRunner(Engine::new(store.clone(), 1 << 30)),
    );
    let spec = inferchain_engine::onnx::OnnxModel::from_bytes(&bytes)
        .and_then(|m| m.io_specs())
        .expect("specs")
        .0;
    let numerics = inferchain_primitives::model::NumericsProfile {
        engine_version: inferchain_engine::spec::NUMERICS_VERSION,
        compute_dtype: inferchain_primitives::io::DType::F32,
        threads: inferchain_primitives::model::ThreadRule::Any,
    };
    let input = codec::Encode::encode(&inferchain_primitives::io::Payload::Tensors(vec![
        inferchain_primitives::io::Tensor::from_f32(vec![1, 4], &[1.0, 2.0, 3.0, 4.0]),
    ]));
    let uri = format!("{base}/m");
    runner
        .run(id, &input, &spec, &numerics, Some(uri.as_bytes()))
        .expect("runs after the fetch repairs the store");
    store.verify(&id, &mut |_| {}).expect("repaired");
    assert!(staging_folders(&store).is_empty());
}
