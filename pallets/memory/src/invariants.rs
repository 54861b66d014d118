//! `try_state`: the invariants the crate docs list.

use crate::{pallet::*, MemoryState};
use alloc::collections::btree_map::BTreeMap;
use frame_support::ensure;
use pallet_inference::BalanceOf;
use sp_runtime::{traits::Saturating, TryRuntimeError};

impl<T: Config> Pallet<T> {
    /// Checks every invariant of the crate docs.
    pub fn do_try_state() -> Result<(), TryRuntimeError> {
        let mut deposits: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
        for (space, info) in Spaces::<T>::iter() {
            let entry = deposits.entry(info.owner.clone()).or_default();
            *entry = entry.saturating_add(info.deposit);
            let mut count = 0u32;
            for (id, m) in Memories::<T>::iter_prefix(space) {
                count += 1;
                ensure!(
                    id < info.next_memory,
                    "a memory id is not below next_memory"
                );
                if let MemoryState::Embedding { request } = m.state {
                    ensure!(
                        EmbeddingRequests::<T>::get(request) == Some((space, id)),
                        "a pending memory's request does not name it"
                    );
                }
                if m.state == MemoryState::Ready {
                    ensure!(
                        m.embedding.len() == info.dimensions as usize,
                        "a ready memory's embedding has the wrong length"
                    );
                    ensure!(m.ready_at.is_some(), "a ready memory has no ready_at");
                }
                if let Some(newer) = m.superseded_by {
                    ensure!(
                        Memories::<T>::get(space, newer).and_then(|n| n.supersedes) == Some(id),
                        "superseded_by is not mirrored"
                    );
                }
                if let Some(older) = m.supersedes {
                    ensure!(
                        Memories::<T>::get(space, older).and_then(|o| o.superseded_by) == Some(id),
                        "supersedes is not mirrored"
                    );
                }
                let entry = deposits.entry(m.author.clone()).or_default();
                *entry = entry.saturating_add(m.deposit);
            }
            ensure!(count == info.memories, "a space's memory count is wrong");
            ensure!(
                Grants::<T>::iter_prefix(space).count() as u32 == info.grants,
                "a space's grant count is wrong"
            );
        }
        for (request, (space, id)) in EmbeddingRequests::<T>::iter() {
            ensure!(
                Memories::<T>::get(space, id).map(|m| m.state)
                    == Some(MemoryState::Embedding { request }),
                "an embedding request names no pending memory"
            );
        }
        for (_, q) in Questions::<T>::iter() {
            let entry = deposits.entry(q.asker.clone()).or_default();
            *entry = entry.saturating_add(q.deposit);
        }
        for (_, a) in Answers::<T>::iter() {
            let entry = deposits.entry(a.asker.clone()).or_default();
            *entry = entry.saturating_add(a.deposit);
        }
        for (who, expected) in deposits {
            ensure!(
                Self::held(&who) == expected,
                "a memory deposit hold differs from the deposits"
            );
        }
        Ok(())
    }
}
