//! Throughput and latency of inference requests on a running dev chain (see
//! `scripts/bench-chain.sh`, which starts the chain and runs this).
//!
//! Eight dev accounts queue `--requests` tiny-mlp requests at once (consecutive nonces),
//! in `request_batch` transactions of `--batch` inputs (1: one `request_inference`
//! each); the client then watches every block and prints: requests included, results
//! posted and results finalized per block, and p50/p95 latency from submission to the result on chain, to the
//! `ResultFinalized` block and to that block's GRANDPA finality, in seconds as this
//! client observed them and in blocks.

use anyhow::{bail, Context, Result};
use codec::Encode;
use inferchain_cli::chain::Chain;
use inferchain_primitives::io::{Payload, Tensor};
use inferchain_runtime::{dev_models::TINY_MLP, RuntimeCall, RuntimeEvent};
use pallet_inference::Event;
use sp_keyring::Sr25519Keyring;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

struct Args {
    url: String,
    requests: usize,
    batch: usize,
}

fn args() -> Result<Args> {
    let mut args = Args {
        url: "ws://127.0.0.1:9944".into(),
        requests: 240,
        batch: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--url" => args.url = it.next().context("--url needs a value")?,
            "--requests" => {
                args.requests = it.next().context("--requests needs a value")?.parse()?
            }
            "--batch" => args.batch = it.next().context("--batch needs a value")?.parse()?,
            other => bail!("unknown argument {other}; use --url URL --requests N --batch N"),
        }
    }
    Ok(args)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<f64>, unit: &str) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    format!(
        "{name:<34} p50 {:>6.2} {unit}  p95 {:>6.2} {unit}  max {:>6.2} {unit}",
        percentile(&v, 50.0),
        percentile(&v, 95.0),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

fn main() -> Result<()> {
    let args = args()?;
    let chain = Chain::connect(&args.url)?;
    let requesters = [
        Sr25519Keyring::Charlie,
        Sr25519Keyring::Dave,
        Sr25519Keyring::Eve,
        Sr25519Keyring::Ferdie,
        Sr25519Keyring::AliceStash,
        Sr25519Keyring::BobStash,
        Sr25519Keyring::CharlieStash,
        Sr25519Keyring::DaveStash,
    ];
    let fee = chain
        .model(TINY_MLP, None)?
        .context("tiny-mlp is not registered: is this the dev chain?")?
        .spec
        .fee;
    let start_block = chain.best_number()?;

    // Queue everything at once: requester r's k-th request is (r, k).
    let mut submitted_at: HashMap<(usize, usize), Instant> = HashMap::new();
    let per = args.requests.div_ceil(requesters.len());
    let mut queued = 0;
    let mut start_nonces = Vec::new();
    // The requests each transaction of each requester carries, in nonce order.
    let mut sizes: Vec<Vec<usize>> = vec![Vec::new(); requesters.len()];
    let batch = args.batch.max(1);
    for (r, who) in requesters.iter().enumerate() {
        let nonce = chain.next_nonce(&who.to_account_id())?;
        start_nonces.push(nonce);
        let mut k = 0;
        while k < per && queued < args.requests {
            let n = batch.min(per - k).min(args.requests - queued);
            let mut inputs = Vec::with_capacity(n);
            for i in 0..n {
                let x = ((queued + i) % 97) as f32 / 97.0;
                let input =
                    Payload::Tensors(vec![Tensor::from_f32(vec![1, 4], &[x, 1.0 - x, 0.5, -x])])
                        .encode();
                inputs.push(input.try_into().expect("small input"));
            }
            let call = if batch == 1 {
                RuntimeCall::Inference(pallet_inference::Call::request_inference {
                    model_id: TINY_MLP,
                    input: inputs.remove(0),
                    max_fee: fee,
                })
            } else {
                RuntimeCall::Inference(pallet_inference::Call::request_batch {
                    model_id: TINY_MLP,
                    inputs: inputs.try_into().map_err(|_| {
                        anyhow::anyhow!("--batch {batch} is above the runtime's MaxBatchSize")
                    })?,
                    max_fee: fee,
                })
            };
            chain.submit_with_nonce(&who.pair(), call, nonce + sizes[r].len() as u32)?;
            let now = Instant::now();
            for i in 0..n {
                submitted_at.insert((r, k + i), now);
            }
            sizes[r].push(n);
            k += n;
            queued += n;
        }
    }
    eprintln!(
        "[bench] {queued} requests queued from {} accounts at block #{start_block}",
        requesters.len()
    );

    let index_of: HashMap<_, usize> = requesters
        .iter()
        .enumerate()
        .map(|(i, k)| (k.to_account_id(), i))
        .collect();
    let mut seen_per_requester = vec![0usize; requesters.len()];
    let mut key_of: HashMap<u64, (usize, usize)> = HashMap::new();
    let mut included: HashMap<u64, (u32, Instant)> = HashMap::new();
    let mut posted: HashMap<u64, (u32, Instant)> = HashMap::new();
    let mut finalized_block: HashMap<u64, (u32, Instant)> = HashMap::new();
    let mut grandpa: HashMap<u64, Instant> = HashMap::new();
    let mut expired: HashMap<u64, u32> = HashMap::new();
    let mut reassigned = 0usize;
    let mut per_block: Vec<(u32, usize, usize)> = Vec::new();
    let mut settled_per_block: Vec<usize> = Vec::new();
    let mut next = start_block + 1;
    let deadline = Instant::now() + Duration::from_secs(600);
    // Requests refused at dispatch (the block's request cap, or no executor with a free
    // slot): their transactions landed (the nonce moved) without a RequestSubmitted.
    let mut refused = 0usize;
    while grandpa.len() + expired.len() + refused < queued {
        if Instant::now() > deadline {
            bail!(
                "timed out: {} of {queued} requests settled, {refused} refused",
                grandpa.len() + expired.len()
            );
        }

        let best = chain.best_number()?;
        while next <= best {
            let hash = chain.block_hash(next)?.context("best-chain block")?;
            let now = Instant::now();
            let (mut reqs, mut results, mut settled) = (0, 0, 0);
            for event in chain.events(hash)? {
                let RuntimeEvent::Inference(e) = event else {
                    continue;
                };
                match e {
                    Event::RequestSubmitted { id, requester, .. } => {
                        if let Some(r) = index_of.get(&requester) {
                            key_of.insert(id, (*r, seen_per_requester[*r]));
                            seen_per_requester[*r] += 1;
                            included.insert(id, (next, now));
                            reqs += 1;
                        }
                    }
                    Event::ResultSubmitted { id, .. } if key_of.contains_key(&id) => {
                        posted.entry(id).or_insert((next, now));
                        results += 1;
                    }
                    Event::ResultFinalized { id, .. } if key_of.contains_key(&id) => {
                        finalized_block.insert(id, (next, now));
                        settled += 1;
                    }
                    Event::RequestExpired { id, .. } if key_of.contains_key(&id) => {
                        expired.insert(id, next);
                    }
                    Event::RequestReassigned { id, .. } if key_of.contains_key(&id) => {
                        reassigned += 1;
                    }
                    _ => {}
                }
            }
            per_block.push((next, reqs, results));
            settled_per_block.push(settled);
            next += 1;
        }
        // Nonces as of the last block whose events were read.
        let seen_at = chain.block_hash(next - 1)?;
        refused = 0;
        for (r, who) in requesters.iter().enumerate() {
            let landed = chain.account(&who.to_account_id(), seen_at)?.nonce - start_nonces[r];
            let landed: usize = sizes[r].iter().take(landed as usize).sum();
            refused += landed.saturating_sub(seen_per_requester[r]);
        }
        let (fin, _) = chain.finalized()?;
        let now = Instant::now();
        for (id, (block, _)) in &finalized_block {
            if *block <= fin {
                grandpa.entry(*id).or_insert(now);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let since = |id: &u64, t: &Instant| t.duration_since(submitted_at[&key_of[id]]).as_secs_f64();
    let busy: Vec<&(u32, usize, usize)> = per_block.iter().filter(|(_, r, p)| r + p > 0).collect();
    let first = busy.first().map(|b| b.0).unwrap_or(next);
    let last_result = per_block
        .iter()
        .filter(|(_, _, p)| *p > 0)
        .map(|b| b.0)
        .max()
        .unwrap_or(next);
    let span = (last_result - first + 1) as f64;
    let answered = posted.len();
    println!(
        "blocks: 3 s (BABE slot); model: tiny-mlp; {queued} requests from 8 accounts queued at once, {}",
        if batch == 1 {
            "one request_inference each".to_string()
        } else {
            format!("in request_batch transactions of up to {batch}")
        }
    );
    println!(
        "settled: {} final, {} expired (refunded) after missed deadlines; {reassigned} reassignments; \
         {refused} refused at dispatch (MaxRequestSlotsPerBlock, or no executor with a free slot)",
        grandpa.len(),
        expired.len()
    );
    for ((n, reqs, results), settled) in per_block.iter().zip(&settled_per_block) {
        if reqs + results + settled > 0 {
            println!("  #{n}: {reqs} requests included, {results} results posted, {settled} results finalized");
        }
    }
    println!(
        "requests included per block: max {}, results posted per block: max {}, results finalized per block: max {}",
        per_block.iter().map(|b| b.1).max().unwrap_or(0),
        per_block.iter().map(|b| b.2).max().unwrap_or(0),
        settled_per_block.iter().max().copied().unwrap_or(0)
    );
    println!(
        "sustained: {answered} results in {span} blocks (#{first}..=#{last_result}) = {:.1} requests/block = {:.1} requests/s",
        answered as f64 / span,
        answered as f64 / span / 3.0
    );
    println!(
        "{}",
        summary(
            "submit -> result on chain",
            posted.iter().map(|(id, (_, t))| since(id, t)).collect(),
            "s"
        )
    );
    println!(
        "{}",
        summary(
            "submit -> ResultFinalized block",
            finalized_block
                .iter()
                .map(|(id, (_, t))| since(id, t))
                .collect(),
            "s"
        )
    );
    println!(
        "{}",
        summary(
            "submit -> GRANDPA-final",
            grandpa.iter().map(|(id, t)| since(id, t)).collect(),
            "s"
        )
    );
    println!(
        "{}",
        summary(
            "inclusion -> result (blocks)",
            posted
                .iter()
                .map(|(id, (b, _))| (b - included[id].0) as f64)
                .collect(),
            "bl"
        )
    );
    println!(
        "{}",
        summary(
            "inclusion -> final (blocks)",
            finalized_block
                .iter()
                .map(|(id, (b, _))| (b - included[id].0) as f64)
                .collect(),
            "bl"
        )
    );
    Ok(())
}
