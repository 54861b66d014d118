//! Block stuffing on a real dev node: a spammer keeps every block full of long remarks
//! at the going fee while a batch of tiny-mlp requests is answered. Every honest result
//! is included before its deadline (results are `Operational` and ordered first by
//! `PrioritizeDuties`), nobody honest is slashed, and the spammer's fee per block rises
//! with the fee multiplier (a constant multiplier would have kept it flat).

mod common;

use common::{
    inference::{
        connect, events_between, inference_events, model_store, tiny_input, wait_until, TINY_MLP,
    },
    test_dir,
};
use inferchain_runtime::{RuntimeCall, RuntimeEvent};
use pallet_inference::{Event, RequestStatus};
use sp_keyring::Sr25519Keyring;
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

/// Each spam transaction: a 128 KiB remark (about 29 fill a block's normal length).
const REMARK_BYTES: usize = 128 * 1024;
/// Spam transactions kept in the pool ahead of inclusion (three blocks' worth).
const AHEAD: u32 = 90;
/// Requests in the batch.
const REQUESTS: u32 = 8;

#[test]
fn a_spammer_filling_blocks_does_not_delay_results_and_pays_more_each_block() {
    let dir = test_dir("block-stuffing");
    let store = model_store(&dir.join("models"), false);
    let node = common::inference::fresh_dev_node("stuffed", &dir, &store);
    let chain = connect(&node);

    // The spammer: Ferdie, keeping AHEAD remarks in the pool until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let spammer = Sr25519Keyring::Ferdie;
    let spam = {
        let stop = stop.clone();
        let url = format!("ws://127.0.0.1:{}", node.rpc_port);
        std::thread::spawn(move || {
            let chain = inferchain_cli::chain::Chain::connect(&url).expect("spammer connects");
            let who = spammer.to_account_id();
            let mut next = chain.next_nonce(&who).expect("nonce");
            let mut sent = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let landed = chain
                    .account(&who, None)
                    .map(|a| a.nonce)
                    .unwrap_or_default();
                while next < landed + AHEAD {
                    let remark = vec![next as u8; REMARK_BYTES];
                    let call = RuntimeCall::System(frame_system::Call::remark { remark });
                    if chain
                        .submit_with_nonce(&spammer.pair(), call, next)
                        .is_err()
                    {
                        break;
                    }
                    next += 1;
                    sent += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            sent
        })
    };

    // Wait until blocks are full of spam.
    let max_len = *inferchain_runtime::configs::RuntimeBlockLength::get()
        .max
        .get(frame_support::dispatch::DispatchClass::Normal) as usize;
    let block_len = |n: u32| -> usize {
        let hash = chain.block_hash(n).expect("RPC").expect("block");
        let block = chain
            .call("chain_getBlock", jsonrpsee::rpc_params![hash])
            .expect("block");
        block["block"]["extrinsics"]
            .as_array()
            .expect("extrinsics")
            .iter()
            .map(|x| x.as_str().map_or(0, |h| (h.len() - 2) / 2))
            .sum()
    };
    let first_full = wait_until(Duration::from_secs(120), "a block full of spam", || {
        let best = chain.best_number().ok()?;
        (block_len(best) * 10 >= max_len * 9).then_some(best)
    });

    // The honest requester: Charlie, one batch of tiny-mlp requests. It waits its turn
    // behind the spam already in the pool (normal transactions are ordered by tip).
    let fee = chain
        .model(TINY_MLP, None)
        .expect("RPC")
        .expect("genesis model")
        .spec
        .fee;
    let inputs: Vec<_> = (0..REQUESTS)
        .map(|i| {
            tiny_input([i as f32, 1.0, -0.5, 0.25])
                .try_into()
                .expect("small")
        })
        .collect();
    let call = RuntimeCall::Inference(pallet_inference::Call::request_batch {
        model_id: TINY_MLP,
        inputs: inputs.try_into().expect("within MaxBatchSize"),
        max_fee: fee,
    });
    let included = chain
        .submit_and_wait(
            &Sr25519Keyring::Charlie.pair(),
            call,
            Duration::from_secs(90),
        )
        .expect("the batch lands");
    let ids: Vec<u64> = included
        .events
        .iter()
        .filter_map(|e| match e {
            RuntimeEvent::Inference(Event::RequestSubmitted { id, .. }) => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), REQUESTS as usize);

    // Every result finalizes; each was posted before its deadline.
    let mut finals = BTreeMap::new();
    for id in &ids {
        let at = wait_until(Duration::from_secs(120), "finalization", || {
            match chain.request(*id, None).ok().flatten()?.status {
                RequestStatus::Finalized { at } => Some(at),
                RequestStatus::Expired { at } => panic!("request {id} expired at #{at}"),
                _ => None,
            }
        });
        finals.insert(*id, at);
    }
    stop.store(true, Ordering::Relaxed);
    let sent = spam.join().expect("the spammer thread ends");
    let last = chain.best_number().expect("best");

    let events = events_between(&chain, first_full, last);
    for (n, e) in inference_events(&events) {
        assert!(
            !matches!(e, Event::Slashed { .. } | Event::RequestReassigned { .. }),
            "honest work suffered under spam: {e:?} in #{n}"
        );
        if let Event::ResultSubmitted { id, .. } = e {
            let posted_len = block_len(n);
            println!("request {id}: result in #{n}, a block of {posted_len} bytes");
        }
    }
    // The results competed with spam: the blocks they landed in carried it (a quarter
    // full or more), or came right after one that did (how full each block is depends on
    // what its author managed to build in its time, which varies with the machine's load:
    // CI once saw a 2.6 MB block take all the spam the pool held an instant before the
    // spammer topped it up again, leaving the next block to the results alone); and at
    // least one result landed in a block that itself carried spam.
    let result_blocks: Vec<u32> = inference_events(&events)
        .into_iter()
        .filter_map(|(n, e)| matches!(e, Event::ResultSubmitted { .. }).then_some(n))
        .collect();
    let spammed = |n: u32| block_len(n) * 4 >= max_len;
    let competed = |n: u32| spammed(n) || (n > 0 && spammed(n - 1));
    assert!(
        result_blocks.iter().any(|&n| spammed(n)),
        "no result landed in a block that carried spam: {:?}",
        result_blocks
            .iter()
            .map(|&n| (n, block_len(n)))
            .collect::<Vec<_>>()
    );
    assert!(
        result_blocks.iter().all(|&n| competed(n)),
        "a result landed in a block without spam, after one without it: {:?}",
        result_blocks
            .iter()
            .map(|&n| (n, block_len(n), block_len(n.saturating_sub(1))))
            .collect::<Vec<_>>()
    );

    // The spammer's fee per remark, in the first full block and in the last.
    let ferdie = spammer.to_account_id();
    let mut per_block: BTreeMap<u32, (u128, u32)> = BTreeMap::new();
    for (n, e) in &events {
        if let RuntimeEvent::TransactionPayment(
            pallet_transaction_payment::Event::TransactionFeePaid {
                who, actual_fee, ..
            },
        ) = e
        {
            if *who == ferdie {
                let entry = per_block.entry(*n).or_default();
                entry.0 += actual_fee;
                entry.1 += 1;
            }
        }
    }
    let full: Vec<(u32, u128, u32)> = per_block
        .into_iter()
        .filter(|(n, _)| block_len(*n) * 10 >= max_len * 9)
        .map(|(n, (fees, count))| (n, fees, count))
        .collect();
    let (first_n, first_fees, first_count) = *full.first().expect("full blocks");
    let (last_n, last_fees, last_count) = *full.last().expect("full blocks");
    let first_each = first_fees / u128::from(first_count);
    let last_each = last_fees / u128::from(last_count);
    // The same remark under the old fees: its weight fee (what the first block's fee
    // has beyond the length fee at a multiplier of ~1) plus 1e-12 INFER per byte.
    let len = (REMARK_BYTES + 150) as f64;
    let byte_fee = inferchain_runtime::configs::TransactionByteFee::get() as f64;
    let old_each = (first_each as f64 - len * byte_fee).max(0.0) + len;
    println!(
        "spam: {sent} remarks of {REMARK_BYTES} B, {} full blocks; the spammer paid {:.4} INFER \
         per block ({first_count} remarks) in #{first_n} and {:.4} INFER ({last_count}) in \
         #{last_n}: {:.4}x per remark. The old fees (a constant multiplier, 1e-12 INFER per \
         byte) charged ~{:.2e} INFER per remark: this block's are {:.0}x that",
        full.len(),
        first_fees as f64 / 1e12,
        last_fees as f64 / 1e12,
        last_each as f64 / first_each as f64,
        old_each / 1e12,
        last_each as f64 / old_each,
    );
    assert!(
        full.len() >= 2 && last_n > first_n,
        "the spam filled fewer than two blocks"
    );
    assert!(
        last_each > first_each,
        "the spammer's fee per remark did not rise: {first_each} then {last_each}"
    );
}
