//! What other pallets learn about requests they opened: a request's result became final,
//! or it expired without one. The agent-memory pallet stores a memory's embedding when the
//! request that computes it is final; anything else built on inference results can do the
//! same without polling.
//!
//! The hooks run inside settlement (the deadline queue in `on_initialize`, or a game's last
//! move), so they must be cheap and bounded: each returns the weight it used, at most
//! [`RequestObserver::max_weight`]. `on_initialize` adds what they used to its own weight;
//! the calls that can settle a request declare `max_weight` on top of theirs.

use frame_support::weights::Weight;
use inferchain_primitives::RequestId;

/// Told when a request settles. `()` observes nothing.
pub trait RequestObserver {
    /// Request `id`'s result is final (it is in `Results` until the request is pruned).
    fn on_finalized(id: RequestId) -> Weight;
    /// Request `id` expired without a result; its fee was refunded.
    fn on_expired(id: RequestId) -> Weight;
    /// The most either hook uses.
    fn max_weight() -> Weight;
}

impl RequestObserver for () {
    fn on_finalized(_: RequestId) -> Weight {
        Weight::zero()
    }
    fn on_expired(_: RequestId) -> Weight {
        Weight::zero()
    }
    fn max_weight() -> Weight {
        Weight::zero()
    }
}
