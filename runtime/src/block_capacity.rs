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
}
