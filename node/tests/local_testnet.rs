//! The four-validator local testnet on loopback: it finalizes, keeps finalizing with one
//! validator down, and the restarted validator catches up from its own database.

mod common;

use common::{free_port, node_binary, test_dir, Node};
use std::{path::Path, process::Command, time::Duration};

const VALIDATORS: [&str; 4] = ["alice", "bob", "charlie", "dave"];

/// The libp2p peer id of a node key given as hex.
fn peer_id(dir: &Path, node_key_hex: &str) -> String {
    let file = dir.join(format!("{node_key_hex}.key"));
    std::fs::write(&file, node_key_hex).expect("the node key file can be written");
    let out = Command::new(node_binary())
        .args(["key", "inspect-node-key", "--file"])
        .arg(&file)
        .output()
        .expect("inferchain-node key inspect-node-key runs");
    assert!(
        out.status.success(),
        "inspect-node-key failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("a peer id is ASCII")
        .trim()
        .to_string()
}

struct Validator {
    args: Vec<String>,
    rpc_port: u16,
    p2p_port: u16,
}

#[test]
fn four_validators_survive_one_down_and_restart_catches_up() {
    let dir = test_dir("testnet");
    let p2p_ports: Vec<u16> = VALIDATORS.iter().map(|_| free_port()).collect();
    let node_keys: Vec<String> = (1..=4).map(|i| format!("{i:064x}")).collect();
    let bootnodes: Vec<String> = (0..4)
        .map(|i| {
            format!(
                "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                p2p_ports[i],
                peer_id(&dir, &node_keys[i])
            )
        })
        .collect();

    let validators: Vec<Validator> = VALIDATORS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut args = vec![
                "--chain".to_string(),
                "local".to_string(),
                format!("--{name}"),
                "--validator".to_string(),
                "--base-path".to_string(),
                dir.join(name).display().to_string(),
                "--node-key".to_string(),
                node_keys[i].clone(),
            ];
            for (j, bootnode) in bootnodes.iter().enumerate() {
                if j != i {
                    args.push("--bootnodes".to_string());
                    args.push(bootnode.clone());
                }
            }
            Validator {
                args,
                rpc_port: free_port(),
                p2p_port: p2p_ports[i],
            }
        })
        .collect();

    let start = |i: usize| {
        let v = &validators[i];
        let log = dir.join(format!("{}.log", VALIDATORS[i]));
        Node::start(VALIDATORS[i], &v.args, v.rpc_port, v.p2p_port, &log)
    };
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
