//! Helpers for the end-to-end inference tests: model stores, the chain client, waiting
//! and scanning events.

use super::{free_port, Node};
use codec::Encode;
use inferchain_cli::chain::{Chain, Included};
use inferchain_engine::{Engine, ModelStore};
use inferchain_primitives::{io::Payload, ModelId, RequestId};
use inferchain_runtime::{AccountId, Balance, RuntimeCall, RuntimeEvent};
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

pub use inferchain_runtime::dev_models::{MINILM_L6_V2, TINY_MLP, WIDE_MLP};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// all-MiniLM-L6-v2 as `scripts/setup.sh` fetched it.
pub fn minilm_dir() -> PathBuf {
    let cache = std::env::var_os("INFERCHAIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/inferchain")
        });
    let dir = cache.join("models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} missing: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// A model store at `dir` holding the tiny and wide MLPs and, if `minilm`, MiniLM.
pub fn model_store(dir: &Path, minilm: bool) -> PathBuf {
    let store = ModelStore::open(dir).expect("model store opens");
    let tiny = store
        .import(
            &repo().join("models/tiny-mlp/model.onnx"),
            None,
            &mut |_| {},
        )
        .expect("tiny-mlp imports");
    assert_eq!(tiny.id(), TINY_MLP);
    let wide = store
        .import(
            &repo().join("models/wide-mlp/model.onnx"),
            None,
            &mut |_| {},
        )
        .expect("wide-mlp imports");
    assert_eq!(wide.id(), WIDE_MLP);
    if minilm {
        let m = store
            .import(&minilm_dir(), None, &mut |_| {})
            .expect("MiniLM imports");
        assert_eq!(m.id(), MINILM_L6_V2);
    }
    dir.to_path_buf()
}

/// What the engine outputs for `model` on `input`, run here on this CPU.
pub fn expected_output(store: &Path, model: ModelId, input: &[u8]) -> Vec<u8> {
    let registered = inferchain_runtime::dev_models::genesis_models()
        .into_iter()
        .find(|m| m.artifact_hash == model)
        .expect("a genesis model");
    Engine::new(ModelStore::open(store).expect("store"), 1 << 30)
        .run_encoded(&model, input, &registered.input, &registered.numerics)
        .expect("the model runs locally")
}

/// A tiny-mlp input: f32 [1, 4].
pub fn tiny_input(values: [f32; 4]) -> Vec<u8> {
    Payload::Tensors(vec![inferchain_primitives::io::Tensor::from_f32(
        vec![1, 4],
        &values,
    )])
    .encode()
}

/// A MiniLM input.
pub fn text_input(text: &str) -> Vec<u8> {
    Payload::Text(text.as_bytes().to_vec()).encode()
}

/// Connects the chain client to `node`, waiting for its RPC to come up.
pub fn connect(node: &Node) -> Chain {
    let url = format!("ws://127.0.0.1:{}", node.rpc_port);
    wait_until(Duration::from_secs(60), "the node's RPC", || {
        Chain::connect(&url).ok()
    })
}

/// Polls `f` every 250 ms until it returns `Some`; panics naming `what` after `timeout`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The `request_inference` call.
pub fn request_call(model: ModelId, input: Vec<u8>, max_fee: Balance) -> RuntimeCall {
    RuntimeCall::Inference(pallet_inference::Call::request_inference {
        model_id: model,
        input: input.try_into().expect("input within MaxInputBytes"),
        max_fee,
    })
}

/// A fresh dev node (`--dev --tmp`) whose off-chain workers read `store`, started under
/// `dir` and past its first finalized block.
pub fn fresh_dev_node(name: &str, dir: &Path, store: &Path) -> Node {
    let args = vec![
        "--dev".to_string(),
        "--tmp".to_string(),
        "--model-store".to_string(),
        store.display().to_string(),
    ];
    let log = dir.join(format!("{name}.log"));
    let node = Node::start(name, &args, free_port(), free_port(), &log);
    node.wait_finalized(1, Duration::from_secs(120));
    node
}

/// The request id and assigned executor from a `request_inference` inclusion.
pub fn submitted(included: &Included) -> (RequestId, AccountId) {
    included
        .request_submitted()
        .expect("RequestSubmitted in the request's events")
}

/// The fee the signer paid for an included extrinsic.
pub fn tx_fee(included: &Included) -> Balance {
    included
        .events
        .iter()
        .find_map(|e| match e {
            RuntimeEvent::TransactionPayment(
                pallet_transaction_payment::Event::TransactionFeePaid { actual_fee, .. },
            ) => Some(*actual_fee),
            _ => None,
        })
        .expect("TransactionFeePaid in the extrinsic's events")
}

/// Every event of best-chain blocks `from..=to`, with its block number.
pub fn events_between(chain: &Chain, from: u32, to: u32) -> Vec<(u32, RuntimeEvent)> {
    let mut all = Vec::new();
    for n in from..=to {
        let hash = chain
            .block_hash(n)
            .expect("RPC answers")
            .unwrap_or_else(|| panic!("block #{n} exists"));
        for event in chain.events(hash).expect("events decode") {
            all.push((n, event));
        }
    }
    all
}

/// The inference events among `events`.
pub fn inference_events(
    events: &[(u32, RuntimeEvent)],
) -> Vec<(u32, pallet_inference::Event<inferchain_runtime::Runtime>)> {
    events
        .iter()
        .filter_map(|(n, e)| match e {
            RuntimeEvent::Inference(e) => Some((*n, e.clone())),
            _ => None,
        })
        .collect()
}
