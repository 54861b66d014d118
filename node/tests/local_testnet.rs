//! The four-validator local testnet on loopback: it finalizes, keeps finalizing with one
//! validator down, and the restarted validator catches up from its own database.

mod common;

use common::{local_testnet, test_dir, Node};
use std::time::Duration;

#[test]
fn four_validators_survive_one_down_and_restart_catches_up() {
    let dir = test_dir("testnet");
    let validators = local_testnet(&dir, |_| Vec::new());
    let start = |i: usize| validators[i].start();
    let mut nodes: Vec<Node> = (0..4).map(start).collect();

    for node in &nodes {
        node.wait_finalized(3, Duration::from_secs(180));
    }

    // Dave crashes.
    let dave = 3;
    let dave_finalized = nodes[dave].finalized_number().expect("dave answers");
    let dave_hashes: Vec<(u64, String)> = (1..=dave_finalized)
        .map(|n| {
            (
                n,
                nodes[dave]
                    .block_hash(n)
                    .expect("dave knows his finalized blocks"),
            )
        })
        .collect();
    nodes[dave].kill();

    // The other three (3 of 4 > 2/3) keep finalizing.
    let before = nodes[0].finalized_number().expect("alice answers");
    let after = nodes[0].wait_finalized(before + 3, Duration::from_secs(120));
    assert!(
        after >= before + 3,
        "finality stalled with one validator down: #{before} -> #{after}"
    );

    // Dave restarts from his base path: his old blocks are there before any sync...
    nodes[dave] = start(dave);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut restored = None;
    while restored.is_none() && std::time::Instant::now() < deadline {
        restored = nodes[dave].block_hash(dave_finalized);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        restored.as_ref(),
        Some(&dave_hashes.last().expect("dave had finalized blocks").1),
        "dave's database lost block #{dave_finalized}"
    );
    for (n, hash) in &dave_hashes {
        assert_eq!(
            nodes[dave].block_hash(*n).as_ref(),
            Some(hash),
            "block #{n} changed on dave"
        );
    }

    // ...and he catches up with the others.
    let target = nodes[0].finalized_number().expect("alice answers");
    nodes[dave].wait_finalized(target, Duration::from_secs(120));
    assert_eq!(
        nodes[dave].block_hash(target),
        nodes[0].block_hash(target),
        "dave is on another fork"
    );

    for node in &mut nodes {
        assert!(
            node.stop(Duration::from_secs(30)),
            "{} did not exit cleanly",
            node.name
        );
    }
}
