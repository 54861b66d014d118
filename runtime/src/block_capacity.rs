//! How many inference requests fit in one block, from the benchmarked weights and the
//! block length limit. `cargo test --release -p inferchain-runtime block_capacity --
//! --nocapture` prints the figures.

#[cfg(test)]
mod tests {
    use crate::{configs::RuntimeBlockWeights, Runtime};
    use frame_support::dispatch::DispatchClass;
    use pallet_inference::WeightInfo;

    /// Requests that fit in a block's normal class for an input of `input_len` bytes,
    /// by weight and by length (a signed extrinsic adds ~110 bytes of address, signature
    /// and extensions to the call's `model (32) + input + max_fee (16)`).
    fn capacity(input_len: u32) -> (u64, u64) {
        let weights = RuntimeBlockWeights::get();
        let normal = weights.get(DispatchClass::Normal);
        let budget = normal.max_total.unwrap_or(weights.max_block);
        let per_call =
            normal
                .base_extrinsic
                .saturating_add(
                    pallet_inference::weights::SubstrateWeight::<Runtime>::request_inference(
                        input_len,
                    ),
                );
        let by_weight = budget.ref_time() / per_call.ref_time().max(1);
        let length = crate::configs::RuntimeBlockLength::get();
        let max_len = *length.max.get(DispatchClass::Normal) as u64;
        let by_length = max_len / (110 + 32 + 16 + input_len as u64);
        (by_weight, by_length)
    }

    #[test]
    fn block_capacity_for_inference_requests() {
        for (what, len) in [
            ("tiny-mlp input (1x4 f32)", 24),
            ("MiniLM text, 512 B", 515),
            ("max input, 64 KiB", 65_536),
        ] {
            let (by_weight, by_length) = capacity(len);
            println!(
                "{what}: {} requests per block (weight allows {by_weight}, length {by_length})",
                by_weight.min(by_length)
            );
            assert!(
                by_weight.min(by_length) >= 1,
                "not even one request fits for {what}"
            );
        }
        let (w, l) = capacity(24);
        assert!(w.min(l) >= 100, "fewer than 100 small requests per block");
    }

    /// Every call that keeps caller-chosen bytes in state is charged for each of them:
    /// its weight grows with the bytes (a call priced flat for its size would let cheap
    /// transactions fill state).
    #[test]
    fn every_call_that_stores_bytes_pays_for_each_byte() {
        type W = pallet_inference::weights::SubstrateWeight<Runtime>;
        let grows = |f: fn(u32) -> frame_support::weights::Weight, what: &str| {
            for (small, large) in [(1u32, 2u32), (1_000, 1_001), (65_000, 65_001)] {
                assert!(
                    f(large).ref_time() > f(small).ref_time(),
                    "{what}: {large} bytes weigh no more than {small}"
                );
            }
        };
        grows(W::request_inference, "request_inference (input)");
        grows(W::submit_traced_result, "submit_traced_result (output)");
        grows(W::open_game, "open_game (output)");
        // Declarations: each more model served costs more.
        grows(W::serve, "serve (models)");
    }

    /// The weight of `n` requests taken in batches of `MaxBatchSize` tiny-mlp inputs
    /// (24 bytes), extrinsic overhead included.
    fn batched_requests(n: u32) -> u64 {
        type W = pallet_inference::weights::SubstrateWeight<Runtime>;
        let weights = RuntimeBlockWeights::get();
        let base = weights.get(DispatchClass::Normal).base_extrinsic;
        let size = crate::configs::MaxBatchSize::get();
        let batch = |k: u32| {
            base.saturating_add(W::request_batch(k))
                .saturating_add(W::request_inference(24 * k))
                .saturating_sub(W::request_inference(0))
                .ref_time()
        };
        u64::from(n / size) * batch(size)
            + if n.is_multiple_of(size) {
                0
            } else {
                batch(n % size)
            }
    }

    /// The deadline queue keeps up with full blocks. A block takes at most
    /// `MaxRequestsPerBlock` requests. The entries a request has handled over its life are
    /// its missed execution deadlines (at most `MaxAttempts`, each scheduling the next
    /// attempt's) and then its window's end and pruning, or pruning alone after the last
    /// miss: an answered attempt's deadline entry is removed when it answers. (A game
    /// that convicts an executor re-runs the request, but costs the convicted 200 INFER.)
    /// So a budget of `MaxAttempts + 1` entries per request handles, block after block,
    /// everything full blocks bring, even if every executor misses. That budget's work, a
    /// full block of batched requests and their results fit in one block together; so
    /// does the work of both queues (requests' and games') at full budget.
    #[test]
    fn the_deadline_queue_handles_what_full_blocks_bring() {
        type W = pallet_inference::weights::SubstrateWeight<Runtime>;
        let budget = crate::configs::MaxDeadlinesPerBlock::get();
        let per_block = crate::configs::MaxRequestsPerBlock::get();
        let weights = RuntimeBlockWeights::get();
        let max_block = weights.max_block.ref_time();
        let normal = weights
            .get(DispatchClass::Normal)
            .max_total
            .unwrap_or(weights.max_block)
            .ref_time();
        let queue = W::on_initialize(budget).ref_time();
        let requests = batched_requests(per_block);
        let result = weights
            .get(DispatchClass::Operational)
            .base_extrinsic
            .saturating_add(W::submit_traced_result(64))
            .ref_time();
        let results = u64::from(per_block) * result;
        let share = |w: u64| w as f64 * 100.0 / max_block as f64;
        println!(
            "a full block: {per_block} requests in batches {:.0}% of the block, their results \
             {:.0}%, the queue at its budget of {budget} entries {:.0}% (both queues {:.0}%); \
             by weight alone the normal class would take {} batched requests or {} single",
            share(requests),
            share(results),
            share(queue),
            share(W::on_initialize(2 * budget).ref_time()),
            normal
                / (batched_requests(crate::configs::MaxBatchSize::get())
                    / u64::from(crate::configs::MaxBatchSize::get()))
                .max(1),
            capacity(24).0,
        );
        let per_request = crate::configs::MaxAttempts::get() + 1;
        // The most requests per block these weights sustain, for the record.
        let fits = |r: u32| {
            let b = per_request * r;
            W::on_initialize(b).ref_time() + batched_requests(r) + u64::from(r) * result
                <= max_block
                && W::on_initialize(2 * b).ref_time() <= max_block
        };
        let sustainable = (1..=4_096u32).take_while(|r| fits(*r)).last().unwrap_or(0);
        println!(
            "the weights sustain {sustainable} requests per block (queue budget {} entries)",
            per_request * sustainable
        );
        assert!(
            budget >= per_request * per_block,
            "{per_block} requests per block bring {} queue entries, the budget is {budget}",
            per_request * per_block
        );
        assert!(
            requests <= normal,
            "a block cannot take MaxRequestsPerBlock requests"
        );
        assert!(
            queue + requests + results <= max_block,
            "a fully loaded block does not fit: queue {queue}, requests {requests}, results {results}"
        );
        assert!(
            W::on_initialize(2 * budget).ref_time() <= max_block,
            "both queues at full budget do not fit in a block"
        );
    }
}
