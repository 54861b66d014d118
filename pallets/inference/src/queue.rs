//! The deadline queue: timeouts, window ends and pruning, keyed by block
//! (game moves have a queue of their own, drained after it within the same budget).
//!
//! Entries are written when a request enters a state with a deadline and read back in
//! `on_initialize`. A request has at most one live entry; older entries for it are left
//! in place and recognised as stale when their block comes (the request's state no
//! longer names that deadline), which keeps every transition O(1). At most
//! `MaxDeadlinesPerBlock` entries are handled per block; the rest wait for the next
//! block, so no block's work depends on how many requests exist.

use crate::{pallet::*, Deadline, WeightInfo};
use frame_support::{pallet_prelude::*, weights::Weight};
use frame_system::pallet_prelude::BlockNumberFor;
use inferchain_primitives::RequestId;
use sp_runtime::traits::{One, Saturating};

/// A queue key holds the entry's kind in its top two bits, above the request id (0
/// execution, 1 window's end, 2 pruning), so that entries of different kinds for one
/// request (or one span's first request) at one block never overwrite each other. Keys
/// written before kinds were kept there have zero bits, as execution keys do; the
/// entry's value names its kind either way.
const KIND_SHIFT: u32 = 62;

/// The queue key of an entry of `what`'s kind for request `id`.
pub(crate) fn queue_key(id: RequestId, what: Deadline) -> u64 {
    let kind: u64 = match what.kind() {
        Deadline::Execution => 0,
        Deadline::ChallengeWindow => 1,
        _ => 2,
    };
    id | (kind << KIND_SHIFT)
}

/// The request id of queue key `key`.
pub(crate) fn key_id(key: u64) -> RequestId {
    key & ((1 << KIND_SHIFT) - 1)
}

impl<T: Config> Pallet<T> {
    /// Records that `what` happens to request `id` (or the span from it) at block `at`.
    /// An entry of the same kind already there is merged into one span covering both:
    /// each request is handled by its own state when the entry comes, so a wider span
    /// loses nothing.
    pub(crate) fn schedule(at: BlockNumberFor<T>, id: RequestId, what: Deadline) {
        DeadlineQueue::<T>::mutate(at, queue_key(id, what), |entry| {
            *entry = Some(match *entry {
                Some(old) if old.kind() == what.kind() => {
                    Deadline::covering(what, old.count().max(what.count()))
                }
                _ => what,
            });
        });
    }

    /// Removes the execution entry of request `id` at `at` if it is its own (not a
    /// span's, which other requests still need); returns whether it was.
    pub(crate) fn unschedule_execution(at: BlockNumberFor<T>, id: RequestId) -> bool {
        let key = queue_key(id, Deadline::Execution);
        let own = DeadlineQueue::<T>::get(at, key) == Some(Deadline::Execution);
        if own {
            DeadlineQueue::<T>::remove(at, key);
        }
        own
    }

    /// Handles the queue entries due at or before `now`, within the per-block budget:
    /// at most `MaxDeadlinesPerBlock` entries, and no more work than that many single
    /// entries weigh (a span entry counts what it did: `spans.rs`).
    pub(crate) fn process_deadlines(now: BlockNumberFor<T>) -> Weight {
        let budget = T::MaxDeadlinesPerBlock::get();
        let mut handled = 0u32;
        // The queue's own weight so far, beyond `on_initialize(0)`.
        let mut used = Weight::zero();
        let mut cursor = QueueCursor::<T>::get();
        // Empty blocks are skipped cheaply but still bounded, so a long gap (e.g. after a
        // runtime upgrade that sets the cursor far back) costs at most this per block.
        let mut empty_steps = 0u32;
        while cursor <= now && handled < budget && empty_steps < budget {
            let mut drained_all = true;
            let entries: alloc::vec::Vec<(RequestId, Deadline)> =
                DeadlineQueue::<T>::iter_prefix(cursor)
                    .take((budget - handled) as usize + 1)
                    .collect();
            if entries.is_empty() {
                empty_steps = empty_steps.saturating_add(1);
            }
            for (key, what) in entries {
                let id = key_id(key);
                // The observer's hooks (a memory made ready) run inside settlement: their
                // weight counts against this queue's, so the block never exceeds
                // `on_initialize(budget)` for it however many of them settle here.
                if handled >= budget || !Self::queue_room(used, Self::entry_reserve(what), budget) {
                    drained_all = false;
                    break;
                }
                DeadlineQueue::<T>::remove(cursor, key);
                handled = handled.saturating_add(1);
                let work = Self::handle_entry(id, what, cursor, now);
                used = used.saturating_add(Self::entry_weight(what, work));
            }
            if !drained_all {
                break;
            }
            cursor = cursor.saturating_add(One::one());
        }
        QueueCursor::<T>::put(cursor);
        // Game moves have a quarter of a budget of their own: a full request queue cannot
        // starve them.
        let games = Self::process_game_deadlines(now, budget, used);
        T::WeightInfo::on_initialize(games).saturating_add(used)
    }

    /// Does what entry `what` for request `id` (or the span from it) says at `at`.
    fn handle_entry(
        id: RequestId,
        what: Deadline,
        at: BlockNumberFor<T>,
        now: BlockNumberFor<T>,
    ) -> crate::spans::SpanWork {
        let single = crate::spans::SpanWork {
            together: 0,
            alone: 1,
            bytes: 0,
        };
        match what {
            Deadline::Execution => Self::on_execution_deadline(id, at, now),
            Deadline::ChallengeWindow => Self::on_window_end(id, at, now),
            Deadline::Prune => Self::prune(id),
            Deadline::ExecutionSpan { count } => {
                return Self::on_execution_span(id, count, at, now)
            }
            Deadline::ChallengeWindowSpan { count } => {
                return Self::on_window_span(id, count, at, now)
            }
            Deadline::PruneSpan { count } => return Self::prune_span(id, count),
        }
        single
    }

    /// Whether an entry that may weigh `next` (its own work and its hooks' at most)
    /// fits, the queues' own weight being `used` so far: that, what settlements' side
    /// work (the observer's hooks, release slashes) used so far and `next` stay within
    /// the weight of `limit` single entries. (An entry's release slashes, at most
    /// `MaxAttempts + 1` per request, are not reserved: counted when done, they may take
    /// the block past that weight by that much, once; reserving them would cost every
    /// block that much capacity for settlements that are rare.)
    pub(crate) fn queue_room(used: Weight, next: Weight, limit: u32) -> bool {
        T::WeightInfo::on_initialize(0)
            .saturating_add(used)
            .saturating_add(next)
            .saturating_add(ObserverWeight::<T>::get())
            .all_lte(T::WeightInfo::on_initialize(limit))
    }
}
