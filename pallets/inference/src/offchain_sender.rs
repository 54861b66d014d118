//! How the off-chain worker signs and sends its transactions: with nonces it tracks
//! itself, in the node's persistent off-chain storage.
//!
//! FRAME's sender takes the nonce from the chain state of the block the worker runs on,
//! so a transaction sent after block `b` and not yet included when the worker of `b + 1`
//! runs (or when two workers overlap) gets the same nonce as the next one, and the pool
//! keeps only one of them: a game move could silently replace another. Here each account
//! has a record of the next nonce to use; a send takes the larger of it and the
//! on-chain nonce, under a lock, and advances it. If the on-chain nonce has not moved for
//! `stale_after` blocks while the record is ahead of it, the transactions in between were
//! lost (a dropped pool, a restart), and the record falls back to the chain's so that
//! later transactions do not wait forever behind the gap. The record also keeps when each
//! pending nonce was sent: if the one the chain waits for was sent more than
//! `OffchainRetryBlocks` blocks ago and still has not landed, it was dropped (a pool under
//! spam can lose transactions), and the worker falls back to the chain's nonce at once —
//! otherwise its retries would queue behind the gap until their deadline passed. (Were it
//! only slow, the pool refuses a replacement of equal priority, and the send is retried.)
//! A record made before the node
//! last started ([`NODE_STARTED_KEY`], written by the node at start) is void: the
//! transactions it counted died with the old transaction pool.
//!
//! The pool can also drop a transaction that is not lost to the chain: on a fork, a
//! transaction pool may forget one of a sender's transactions (one that was in a
//! retracted block, or that another of the sender's moves for the same duty displaced),
//! and every later nonce then waits behind the gap until a deadline passes. So each send
//! also keeps its call, and after every block the worker signs and submits again, with
//! the same nonce, each call of its own that was sent in an earlier block and is not yet
//! on chain ([`Pallet::resend_pending`]). A pool that lost one takes the copy back and
//! the moves behind it follow; one that still holds it refuses the copy (the same nonce
//! at no higher priority) or lets it replace the original (the same call, due now and so
//! at a higher priority). A copy that is no longer due lands, fails at dispatch and pays
//! its fee. The copy is refused too where a move's retry under a later nonce holds the
//! same duty's pool tag; that gap closes when the retry's turn comes.

use crate::{pallet::*, LOG_TARGET};
use alloc::vec::Vec;
use codec::{Decode, Encode};
use frame_support::traits::Get;
use frame_system::{
    offchain::{Account, SubmitTransaction},
    pallet_prelude::BlockNumberFor,
};
use sp_runtime::{
    offchain::{
        storage::StorageValueRef,
        storage_lock::{StorageLock, Time},
        Duration,
    },
    traits::{One, Saturating},
};

/// The persistent off-chain storage key under which the node records when it started
/// (milliseconds since the Unix epoch, SCALE `u64`).
pub const NODE_STARTED_KEY: &[u8] = b"inferchain::node-started";

/// What the worker remembers of one account's nonces.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct NonceRecord<Nonce, BlockNumber> {
    /// The node start ([`NODE_STARTED_KEY`]) this record belongs to.
    pub started: u64,
    /// The next nonce to use.
    pub next: Nonce,
    /// The on-chain nonce last seen, and since which block it has been that.
    pub onchain: Nonce,
    pub since: BlockNumber,
    /// The nonces sent and not yet seen on chain, with the block each was sent at (at
    /// most [`MAX_TRACKED_SENDS`], oldest first).
    pub sent: Vec<(Nonce, BlockNumber)>,
}

/// The most sends a record remembers.
pub const MAX_TRACKED_SENDS: usize = 256;

/// The calls of the sends a record counts as pending: nonce and SCALE-encoded call.
type PendingCalls<N> = Vec<(N, Vec<u8>)>;

/// The persistent off-chain storage keys of an account's nonce record, its lock and its
/// pending calls.
fn storage_keys<A: Encode>(account: &A) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (
        (b"inferchain::nonce", account).encode(),
        (b"inferchain::nonce-lock", account).encode(),
        (b"inferchain::nonce-calls", account).encode(),
    )
}

/// The nonce to send with and the record after sending, given the on-chain nonce at
/// block `now`: the record's next nonce, unless the transactions before it were lost —
/// the chain's nonce has not moved for `stale_after` blocks, or the one it waits for was
/// sent more than `lost_after` blocks ago.
pub fn next_nonce<N, B>(
    record: Option<NonceRecord<N, B>>,
    started: u64,
    onchain: N,
    now: B,
    stale_after: B,
    lost_after: B,
) -> (N, NonceRecord<N, B>)
where
    N: Copy + Ord + Saturating + One,
    B: Copy + Ord + Saturating,
{
    let record = record.filter(|r| r.started == started);
    let since = match &record {
        Some(r) if r.onchain == onchain => r.since,
        _ => now,
    };
    let mut sent: Vec<(N, B)> = record.as_ref().map(|r| r.sent.clone()).unwrap_or_default();
    sent.retain(|(n, _)| *n >= onchain);
    let waited_for_lost = sent
        .iter()
        .find(|(n, _)| *n == onchain)
        .is_some_and(|(_, at)| now.saturating_sub(*at) > lost_after);
    let nonce = match &record {
        Some(r)
            if r.next > onchain && now.saturating_sub(since) <= stale_after && !waited_for_lost =>
        {
            r.next
        }
        _ => onchain,
    };
    // Sending from the chain's nonce again replaces whatever was counted after it.
    sent.retain(|(n, _)| *n < nonce);
    sent.push((nonce, now));
    if sent.len() > MAX_TRACKED_SENDS {
        sent.remove(0);
    }
    (
        nonce,
        NonceRecord {
            started,
            next: nonce.saturating_add(One::one()),
            onchain,
            since,
            sent,
        },
    )
}

impl<T: Config> Pallet<T> {
    /// Signs `call` with `account` and hands it to the transaction pool.
    pub(crate) fn send(account: &Account<T>, call: Call<T>) -> Option<()> {
        let (key, lock_key, calls_key) = storage_keys(&account.id);
        let mut lock = StorageLock::<Time>::with_deadline(&lock_key, Duration::from_millis(2_000));
        let _guard = lock.lock();
        let record = StorageValueRef::persistent(&key);
        let stored = record
            .get::<NonceRecord<T::Nonce, BlockNumberFor<T>>>()
            .ok()
            .flatten();
        let onchain = frame_system::Account::<T>::get(&account.id).nonce;
        let now = frame_system::Pallet::<T>::block_number();
        let stale_after = BlockNumberFor::<T>::from(T::OffchainRetryBlocks::get())
            .saturating_mul(2u32.into())
            .saturating_add(One::one());
        let started = StorageValueRef::persistent(NODE_STARTED_KEY)
            .get::<u64>()
            .ok()
            .flatten()
            .unwrap_or_default();
        let lost_after = BlockNumberFor::<T>::from(T::OffchainRetryBlocks::get());
        let (nonce, updated) = next_nonce(
            stored.clone(),
            started,
            onchain,
            now,
            stale_after,
            lost_after,
        );
        if stored.is_some_and(|r| r.started == started && r.next > onchain && nonce == onchain) {
            log::warn!(target: LOG_TARGET, "{:?}: transactions up to nonce {:?} never landed; sending from {nonce:?} again", account.id, updated.next);
        }
        let encoded = call.encode();
        match Self::submit_signed(account, call, nonce) {
            Some(()) => {
                // The calls kept are those of the nonces the record still counts.
                let calls = StorageValueRef::persistent(&calls_key);
                let mut kept: PendingCalls<T::Nonce> =
                    calls.get().ok().flatten().unwrap_or_default();
                kept.retain(|(n, _)| updated.sent.iter().any(|(s, _)| s == n) && *n != nonce);
                kept.push((nonce, encoded));
                calls.set(&kept);
                record.set(&updated);
                Some(())
            }
            None => {
                log::warn!(target: LOG_TARGET, "could not send a transaction for {:?}; retrying next block", account.id);
                None
            }
        }
    }
}

impl<T: Config> Pallet<T> {
    /// Signs `call` as `account` with `nonce` and hands it to the transaction pool.
    fn submit_signed(account: &Account<T>, call: Call<T>, nonce: T::Nonce) -> Option<()> {
        T::create_signed_transaction::<T::AuthorityId>(
            call.into(),
            account.public.clone(),
            account.id.clone(),
            nonce,
        )
        .and_then(|xt| SubmitTransaction::<T, Call<T>>::submit_transaction(xt).ok())
    }

    /// Submits again, each with its own nonce, the calls `account` sent in an earlier
    /// block that are not on chain yet (see the module docs); returns how many the pool
    /// took.
    pub(crate) fn resend_pending(account: &Account<T>) -> usize {
        let (key, lock_key, calls_key) = storage_keys(&account.id);
        let mut lock = StorageLock::<Time>::with_deadline(&lock_key, Duration::from_millis(2_000));
        let _guard = lock.lock();
        let Some(record) = StorageValueRef::persistent(&key)
            .get::<NonceRecord<T::Nonce, BlockNumberFor<T>>>()
            .ok()
            .flatten()
        else {
            return 0;
        };
        let started = StorageValueRef::persistent(NODE_STARTED_KEY)
            .get::<u64>()
            .ok()
            .flatten()
            .unwrap_or_default();
        if record.started != started {
            return 0; // the old pool's transactions died with it
        }
        let onchain = frame_system::Account::<T>::get(&account.id).nonce;
        let now = frame_system::Pallet::<T>::block_number();
        let kept: PendingCalls<T::Nonce> = StorageValueRef::persistent(&calls_key)
            .get()
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut resent = 0;
        for (nonce, at) in &record.sent {
            if *nonce < onchain || *at >= now {
                continue;
            }
            let Some(call) = kept
                .iter()
                .find(|(n, _)| n == nonce)
                .and_then(|(_, bytes)| Call::<T>::decode(&mut &bytes[..]).ok())
            else {
                continue;
            };
            if Self::submit_signed(account, call, *nonce).is_some() {
                resent += 1;
            }
        }
        if resent > 0 {
            log::info!(target: LOG_TARGET, "{:?}: {resent} pending transactions from nonce {onchain:?} submitted again", account.id);
        }
        resent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Record = NonceRecord<u32, u64>;

    #[test]
    fn consecutive_sends_before_inclusion_get_consecutive_nonces() {
        let (first, r) = next_nonce::<u32, u64>(None, 1, 7, 10, 5, 2);
        assert_eq!(first, 7);
        // The next block's worker: the first is not included yet (on-chain still 7).
        let (second, r) = next_nonce(Some(r), 1, 7, 11, 5, 2);
        assert_eq!(second, 8);
        // Both land: the chain is ahead of nothing, the record follows it.
        let (third, _) = next_nonce(Some(r), 1, 9, 12, 5, 2);
        assert_eq!(third, 9);
    }

    #[test]
    fn the_chain_ahead_of_the_record_wins() {
        let r = Record {
            started: 1,
            next: 3,
            onchain: 2,
            since: 1,
            sent: vec![],
        };
        assert_eq!(next_nonce(Some(r), 1, 9, 4, 5, 2).0, 9);
    }

    #[test]
    fn a_gap_that_never_fills_falls_back_to_the_chain() {
        let r = Record {
            started: 1,
            next: 12,
            onchain: 9,
            since: 100,
            sent: vec![],
        };
        // Within the grace period the record stands (the transactions may still land).
        assert_eq!(next_nonce(Some(r.clone()), 1, 9, 105, 5, 2).0, 12);
        // After it, they were lost: start again from the chain's nonce.
        let (nonce, after) = next_nonce(Some(r), 1, 9, 106, 5, 2);
        assert_eq!(nonce, 9);
        assert_eq!(after.next, 10);
        assert_eq!(after.since, 100);
    }

    #[test]
    fn a_send_the_chain_still_waits_for_after_the_retry_period_was_lost() {
        // Block 5: six sends, nonces 20..26. The chain takes 20..24 by block 7; 24 and 25
        // were dropped from the pool.
        let mut r = None;
        for expected in 20..26 {
            let (nonce, after) = next_nonce::<u32, u64>(r, 1, 20, 5, 5, 2);
            assert_eq!(nonce, expected);
            r = Some(after);
        }
        // Block 7, the chain at 24: 24 was sent 2 blocks ago, within the retry period.
        let (nonce, after) = next_nonce(r.clone(), 1, 24, 7, 5, 2);
        assert_eq!(nonce, 26);
        assert_eq!(after.sent.first(), Some(&(24, 5)));
        // Block 8, the retries: 24 is 3 blocks old and not on chain. Lost: send from 24,
        // at once, not behind the gap.
        let (nonce, after) = next_nonce(r, 1, 24, 8, 5, 2);
        assert_eq!(nonce, 24);
        assert_eq!(after.next, 25);
        assert_eq!(after.sent, vec![(24, 8)]);
        let (nonce, _) = next_nonce(Some(after), 1, 24, 8, 5, 2);
        assert_eq!(nonce, 25);
    }

    #[test]
    fn a_record_from_before_the_node_restarted_is_void() {
        let r = Record {
            started: 1,
            next: 12,
            onchain: 9,
            since: 100,
            sent: vec![],
        };
        // The old pool died with the old process: its nonces never land.
        let (nonce, after) = next_nonce(Some(r), 2, 9, 101, 5, 2);
        assert_eq!(nonce, 9);
        assert_eq!(after.started, 2);
    }
}
