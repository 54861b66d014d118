//! Test support for running real `inferchain-node` processes on loopback and talking to
//! them over JSON-RPC (plain HTTP POST, so the tests need no RPC client library).

#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

pub mod cli;
pub mod inference;
pub mod mirror;
pub mod tamper;

/// The node binary cargo built for these tests.
pub fn node_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_inferchain-node"))
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out an ephemeral port")
}

/// A running node process; killed (SIGKILL) on drop if still alive.
pub struct Node {
    pub name: String,
    pub child: Option<Child>,
    pub rpc_port: u16,
    pub p2p_port: u16,
    pub log: PathBuf,
}

impl Node {
    /// Starts `inferchain-node` with `args` plus RPC/p2p ports; output goes to `log`.
    pub fn start(name: &str, args: &[String], rpc_port: u16, p2p_port: u16, log: &Path) -> Node {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("the log file can be opened");
        let err = out.try_clone().expect("the log file handle can be cloned");
        let child = Command::new(node_binary())
            .args(args)
            .args([
                "--rpc-port".to_string(),
                rpc_port.to_string(),
                "--port".to_string(),
                p2p_port.to_string(),
                "--no-prometheus".to_string(),
                "--no-telemetry".to_string(),
                "--no-mdns".to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("inferchain-node starts");
        Node {
            name: name.into(),
            child: Some(child),
            rpc_port,
            p2p_port,
            log: log.into(),
        }
    }

    /// Calls `method` with `params`; `None` if the node does not answer (yet).
    pub fn rpc(&self, method: &str, params: Value) -> Option<Value> {
        rpc_call(self.rpc_port, method, params)
    }

    /// The finalized head's block number.
    pub fn finalized_number(&self) -> Option<u64> {
        let hash = self.rpc("chain_getFinalizedHead", json!([]))?;
        let header = self.rpc("chain_getHeader", json!([hash]))?;
        parse_hex_u64(header.get("number")?.as_str()?)
    }

    /// The best block's number.
    pub fn best_number(&self) -> Option<u64> {
        let header = self.rpc("chain_getHeader", json!([]))?;
        parse_hex_u64(header.get("number")?.as_str()?)
    }

    /// The hash of block `n` in this node's database.
    pub fn block_hash(&self, n: u64) -> Option<String> {
        self.rpc("chain_getBlockHash", json!([n]))?
            .as_str()
            .map(str::to_owned)
    }

    /// Waits until the finalized head reaches `target`; panics with the log tail if not.
    pub fn wait_finalized(&self, target: u64, timeout: Duration) -> u64 {
        let start = Instant::now();
        loop {
            if let Some(n) = self.finalized_number() {
                if n >= target {
                    return n;
                }
            }
            if start.elapsed() > timeout {
                panic!(
                    "{}: finalized head did not reach #{target} in {timeout:?} (now {:?}); log tail:\n{}",
                    self.name,
                    self.finalized_number(),
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited with success.
    pub fn stop(&mut self, timeout: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the process outright (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `lines` lines of the node's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One JSON-RPC call over HTTP to 127.0.0.1:`port`.
pub fn rpc_call(port: u16, method: &str, params: Value) -> Option<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, payload) = response.split_once("\r\n\r\n")?;
    let value: Value = serde_json::from_str(payload.trim()).ok()?;
    value.get("result").cloned()
}

/// Parses a `0x`-prefixed hex number.
pub fn parse_hex_u64(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// A fresh directory for one test's logs and base paths.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inferchain-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir can be created");
    dir
}

/// The libp2p peer id of a node key given as hex.
pub fn peer_id(dir: &Path, node_key_hex: &str) -> String {
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

/// How to start one validator of the local testnet.
pub struct Validator {
    pub name: &'static str,
    pub args: Vec<String>,
    pub rpc_port: u16,
    pub p2p_port: u16,
    pub log: PathBuf,
}

impl Validator {
    pub fn start(&self) -> Node {
        Node::start(
            self.name,
            &self.args,
            self.rpc_port,
            self.p2p_port,
            &self.log,
        )
    }
}

/// The four validators of `--chain local` on loopback, each with its own base path under
/// `dir`, fixed node keys and the others as bootnodes; `extra(i)` adds arguments.
pub fn local_testnet(dir: &Path, extra: impl Fn(usize) -> Vec<String>) -> Vec<Validator> {
    const NAMES: [&str; 4] = ["alice", "bob", "charlie", "dave"];
    let p2p_ports: Vec<u16> = NAMES.iter().map(|_| free_port()).collect();
    let node_keys: Vec<String> = (1..=4).map(|i| format!("{i:064x}")).collect();
    let bootnodes: Vec<String> = (0..4)
        .map(|i| {
            format!(
                "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                p2p_ports[i],
                peer_id(dir, &node_keys[i])
            )
        })
        .collect();
    NAMES
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
            args.extend(extra(i));
            Validator {
                name,
                args,
                rpc_port: free_port(),
                p2p_port: p2p_ports[i],
                log: dir.join(format!("{name}.log")),
            }
        })
        .collect()
}
