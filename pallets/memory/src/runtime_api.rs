//! The runtime API clients recall through. The answer is what
//! `inferchain_primitives::recall` computes over the space's storage, so a client that
//! reads the space's memories (with storage proofs, from any node) computes the same list.

use crate::{pallet::RecallError, SpaceId};
use alloc::vec::Vec;
use inferchain_primitives::recall::Recalled;

sp_api::decl_runtime_apis! {
    /// Agent memory queries.
    pub trait MemoryApi {
        /// The `k` memories of `space` that best match `query` (an embedding by the
        /// space's model, in fixed point: `inferchain_primitives::recall::quantize`), best
        /// first.
        fn recall(space: SpaceId, query: Vec<i16>, k: u32) -> Result<Vec<Recalled>, RecallError>;
    }
}
