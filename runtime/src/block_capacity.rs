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

    /// The weight of `n` items in full batches of `MaxBatchSize` and one partial batch,
    /// `batch(k)` being one batch of `k`.
    fn in_batches(n: u32, batch: impl Fn(u32) -> u64) -> u64 {
        let size = crate::configs::MaxBatchSize::get();
        u64::from(n / size) * batch(size)
            + if n.is_multiple_of(size) {
                0
            } else {
                batch(n % size)
            }
    }

    /// The weight of `n` requests taken in batches of `MaxBatchSize` tiny-mlp inputs
    /// (24 bytes), extrinsic overhead included.
    fn batched_requests(n: u32) -> u64 {
        type W = pallet_inference::weights::SubstrateWeight<Runtime>;
        let base = RuntimeBlockWeights::get()
            .get(DispatchClass::Normal)
            .base_extrinsic;
        in_batches(n, |k| {
            base.saturating_add(W::request_batch(k))
                .saturating_add(W::request_inference(24 * k))
                .saturating_sub(W::request_inference(0))
                .ref_time()
        })
    }

    /// The weight of the results of `n` requests posted in batches of `MaxBatchSize`
    /// (`submit_results`, tiny-mlp outputs of 24 bytes), extrinsic overhead included.
    fn batched_results(n: u32) -> u64 {
        type W = pallet_inference::weights::SubstrateWeight<Runtime>;
        let base = RuntimeBlockWeights::get()
            .get(DispatchClass::Operational)
            .base_extrinsic;
        in_batches(n, |k| {
            base.saturating_add(W::submit_results(k))
                .saturating_add(W::submit_traced_result(24 * k))
                .saturating_sub(W::submit_traced_result(0))
                .ref_time()
        })
    }

    /// The deadline queue's work over the life of one assignment of `n` requests, and
    /// its result's weight, at their worst: either every attempt is missed (an entry
    /// per miss, then the pruning), or all but the last are and the last is answered
    /// (its execution entry removed; the window's end and the pruning). A single
    /// request is one single entry per stage; a batch one span per stage. Returns
    /// (the larger queue work, that of the answered path, the answered path's result).
    fn life(n: u32, single_result: u64) -> (u64, u64, u64) {
        type W = pallet_inference::weights::SubstrateWeight<Runtime>;
        let attempts = u64::from(crate::configs::MaxAttempts::get());
        if n == 1 {
            let single = W::on_initialize(1).ref_time() - W::on_initialize(0).ref_time();
            return (
                (attempts + 1) * single,
                (attempts + 1) * single,
                single_result,
            );
        }
        let (exe, win, prune) = (
            W::execution_span(n).ref_time(),
            W::window_span(n).ref_time(),
            W::prune_span(n).ref_time(),
        );
        let missed = attempts * exe + prune;
        let answered = (attempts - 1) * exe + win + prune;
        (missed.max(answered), answered, batched_results(n))
    }

    /// The deadline queue keeps up with full blocks, whatever their mix of single
    /// requests and batches. A block's requests take at most `MaxRequestSlotsPerBlock`
    /// slots: one per request and `SlotsPerAssignment` per assignment (a single request
    /// or a batch). Over its life each assignment brings the queue
    /// the queue work of its `life`, and `MaxAttempts + 1` entries at most. So, for
    /// every way of filling a block's slots (batches of any one size, single requests,
    /// full batches topped up with single requests), the queue's budget covers what a
    /// full block brings, block after block, even if every executor misses, with room
    /// to start its largest entry; and that work, the block's requests and their results
    /// fit in one block together. (A request that leaves its batch on its own, through a
    /// hand-back or a game, is handled as a single entry: those are paid moves, each
    /// weighed with its own settlement.)
    #[test]
    fn the_deadline_queue_handles_what_full_blocks_bring() {
        type W = pallet_inference::weights::SubstrateWeight<Runtime>;
        let budget = crate::configs::MaxDeadlinesPerBlock::get();
        let slots = crate::configs::MaxRequestSlotsPerBlock::get();
        let per_assignment = crate::configs::SlotsPerAssignment::get();
        let size = crate::configs::MaxBatchSize::get();
        let weights = RuntimeBlockWeights::get();
        let max_block = weights.max_block.ref_time();
        let normal = weights
            .get(DispatchClass::Normal)
            .max_total
            .unwrap_or(weights.max_block)
            .ref_time();
        let queue_budget = W::on_initialize(budget).ref_time();
        let single_request = weights
            .get(DispatchClass::Normal)
            .base_extrinsic
            .saturating_add(W::request_inference(24))
            .ref_time();
        let single_result = weights
            .get(DispatchClass::Operational)
            .base_extrinsic
            .saturating_add(W::submit_traced_result(24))
            .ref_time();
        let share = |w: u64| w as f64 * 100.0 / max_block as f64;
        let single = W::on_initialize(1).ref_time() - W::on_initialize(0).ref_time();
        let observer =
            <pallet_memory::weights::SubstrateWeight<Runtime> as pallet_memory::WeightInfo>::on_embedding_final()
                .ref_time();
        // The most an entry reserves before it starts: a span of `n` whose requests are
        // all handled alone, each with an observer hook and the largest input and output.
        let largest_bytes =
            crate::configs::MaxInputBytes::get() + crate::configs::MaxOutputBytes::get();
        let per_byte =
            |b: u32| W::request_inference(b).ref_time() - W::request_inference(0).ref_time();
        let reserve = |n: u32| {
            if n == 1 {
                return single + observer;
            }
            [W::execution_span(n), W::window_span(n), W::prune_span(n)]
                .iter()
                .map(|w| w.ref_time())
                .max()
                .unwrap_or(0)
                + u64::from(n) * (single + observer)
                + per_byte(n * largest_bytes)
        };
        // A block's slots filled with `b` batches of `n` and `s` single requests: the
        // requests, then over their lives the queue's work and their results.
        let check = |b: u32, n: u32, s: u32| {
            assert!(b * (n + per_assignment) + s * (1 + per_assignment) <= slots);
            let (b, s) = if n == 1 { (0, b + s) } else { (b, s) };
            let requests = u64::from(b) * batched_requests(n) + u64::from(s) * single_request;
            let (batch_queue, batch_answered, batch_results) = life(n, single_result);
            let (single_queue, single_answered, single_results) = life(1, single_result);
            // The queue's most, and the most of queue and results together.
            let queue = u64::from(b) * batch_queue + u64::from(s) * single_queue;
            let lives = u64::from(b) * batch_queue.max(batch_answered + batch_results)
                + u64::from(s) * single_queue.max(single_answered + single_results);
            let largest = if b > 0 { reserve(n) } else { reserve(1) };
            println!(
                "{b} batches of {n} and {s} single requests ({} requests): requests {:.0}% of \
                 the block; over their lives the queue's work {:.0}% (+{:.0}% to start its \
                 largest entry; budget {:.0}%), queue and results {:.0}%; all {:.0}%",
                b * n + s,
                share(requests),
                share(queue),
                share(largest),
                share(queue_budget),
                share(lives),
                share(requests + lives),
            );
            assert!(
                requests <= normal,
                "{b}x{n} and {s} singles exceed the normal class"
            );
            assert!(
                queue + largest <= queue_budget,
                "{b}x{n} and {s} singles bring the queue more than its budget"
            );
            assert!(
                requests + lives <= max_block,
                "{b}x{n} and {s} singles do not fit: requests {requests}, queue and results \
                 {lives}"
            );
            b * n + s
        };
        // Batches of one size each, as many as fit.
        for n in [1, 2, 4, 8, 16, 32, 64, size] {
            check(slots / (n + per_assignment), n, 0);
        }
        // Full batches topped up with single requests.
        let mut most = 0;
        for b in 0..=slots / (size + per_assignment) {
            let s = (slots - b * (size + per_assignment)) / (1 + per_assignment);
            most = most.max(check(b, size, s));
        }
        println!("a block takes at most {most} requests ({slots} slots)");
        assert!(most >= 1_000, "a block takes fewer than 1,000 requests");
        assert!(
            budget >= (crate::configs::MaxAttempts::get() + 1) * slots / (1 + per_assignment),
            "a block of single requests brings the queue more entries than its budget"
        );
        assert!(
            W::on_initialize(budget + budget / 4).ref_time() <= max_block,
            "both queues at full budget do not fit in a block"
        );
    }
}
