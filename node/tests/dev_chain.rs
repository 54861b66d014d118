//! `inferchain-node --dev` produces and finalizes blocks, and stops cleanly on SIGTERM.

mod common;

use common::{free_port, test_dir, Node};
use std::time::Duration;

#[test]
fn dev_chain_finalizes_and_stops_cleanly() {
    let dir = test_dir("dev");
    let args = vec!["--dev".to_string(), "--tmp".to_string()];
    let mut node = Node::start("dev", &args, free_port(), free_port(), &dir.join("dev.log"));

    let finalized = node.wait_finalized(3, Duration::from_secs(120));
    assert!(finalized >= 3, "finalized head {finalized} < 3");
    let best = node
        .best_number()
        .expect("the node answers chain_getHeader");
    assert!(
        best >= finalized,
        "best #{best} is behind finalized #{finalized}"
    );

    // The runtime is ours, not some other chain's.
    let version = node
        .rpc("state_getRuntimeVersion", serde_json::json!([]))
        .expect("the node answers state_getRuntimeVersion");
    assert_eq!(version["specName"], "inferchain");

    assert!(
        node.stop(Duration::from_secs(30)),
        "node did not exit cleanly:\n{}",
        node.log_tail(30)
    );
}
