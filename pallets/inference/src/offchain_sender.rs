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
//! on chain ([`Pallet::resend_pending`]; each call a storage value of its own,
//! [`call_key`], and at most [`MAX_RESENDS_PER_BLOCK`] a block, the lowest nonces
//! first). A pool that lost one takes the copy back and
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

/// The most pending sends submitted again after one block: the lowest nonces, those the
/// chain takes next (the one it waits for among them, unless more than
/// [`MAX_TRACKED_SENDS`] were pending and the record forgot it). A later one the pool lost is submitted again once the chain nears
/// it; until then it would wait behind the earlier ones anyway. (Each resubmission is a
/// signature and a pool validation.)
pub const MAX_RESENDS_PER_BLOCK: usize = 8;

/// The persistent off-chain storage keys of an account's nonce record and its lock.
pub(crate) fn storage_keys<A: Encode>(account: &A) -> (Vec<u8>, Vec<u8>) {
    (
        (b"inferchain::nonce", account).encode(),
        (b"inferchain::nonce-lock", account).encode(),
    )
}

/// The persistent off-chain storage key of the SCALE-encoded call an account sent with
/// `nonce`, kept while the record counts the send as pending: one value per send, so
/// that a resubmission reads only the calls it sends, and a large one (a batch's results,
/// a step's proof) is never read again with all the others.
pub fn call_key<A: Encode, N: Encode>(account: &A, nonce: N) -> Vec<u8> {
    (b"inferchain::nonce-call", account, nonce).encode()
}

/// Where an earlier version kept all of an account's pending calls in one value (cleared
/// by every send).
fn legacy_calls_key<A: Encode>(account: &A) -> Vec<u8> {
    (b"inferchain::nonce-calls", account).encode()
}

/// The nonces to submit again at block `now`, given the record's pending sends and the
/// on-chain nonce: those the chain has not reached, sent in an earlier block, lowest
/// first, at most [`MAX_RESENDS_PER_BLOCK`].
pub fn due_for_resend<N: Copy + Ord, B: Copy + Ord>(sent: &[(N, B)], onchain: N, now: B) -> Vec<N> {
    let mut due: Vec<N> = sent
        .iter()
        .filter(|(n, at)| *n >= onchain && *at < now)
        .map(|(n, _)| *n)
        .collect();
    due.sort();
    due.truncate(MAX_RESENDS_PER_BLOCK);
    due
}

/// The nonces whose kept calls go when a record's pending sends change from `before` to
/// `after`: those it no longer counts (on chain now, or dropped by a fall back to the
/// chain's nonce). A nonce sent again keeps its key, which the new call overwrites.
pub fn dropped_sends<N: Copy + PartialEq, B>(before: &[(N, B)], after: &[(N, B)]) -> Vec<N> {
    before
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !after.iter().any(|(a, _)| a == n))
        .collect()
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
        let (key, lock_key) = storage_keys(&account.id);
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
        if stored
            .as_ref()
            .is_some_and(|r| r.started == started && r.next > onchain && nonce == onchain)
        {
            log::warn!(target: LOG_TARGET, "{:?}: transactions up to nonce {:?} never landed; sending from {nonce:?} again", account.id, updated.next);
        }
        let encoded = call.encode();
        match Self::submit_signed(account, call, nonce) {
            Some(()) => {
                // The calls kept are those of the nonces the record still counts; a
                // record from before the node started counts none of its own.
                let before = match stored {
                    Some(r) if r.started == started => r.sent,
                    Some(void) => {
                        for (n, _) in void.sent {
                            StorageValueRef::persistent(&call_key(&account.id, n)).clear();
                        }
                        Vec::new()
                    }
                    None => Vec::new(),
                };
                // An earlier version's one value of all pending calls (a runtime upgrade
                // need not restart the node): its sends fall back to the chain's nonce
                // as lost ones did before.
                StorageValueRef::persistent(&legacy_calls_key(&account.id)).clear();
                for n in dropped_sends(&before, &updated.sent) {
                    StorageValueRef::persistent(&call_key(&account.id, n)).clear();
                }
                StorageValueRef::persistent(&call_key(&account.id, nonce)).set(&encoded);
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
    /// block that are not on chain yet, the lowest nonces first and at most
    /// [`MAX_RESENDS_PER_BLOCK`] (see the module docs); returns how many the pool took.
    pub(crate) fn resend_pending(account: &Account<T>) -> usize {
        let (key, lock_key) = storage_keys(&account.id);
        let mut lock = StorageLock::<Time>::with_deadline(&lock_key, Duration::from_millis(2_000));
        let _guard = lock.lock();
        let record_ref = StorageValueRef::persistent(&key);
        let Some(mut record) = record_ref
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
        // The calls of sends the chain has taken go now, not at the account's next send
        // (which may never come: a key removed, an executor gone), and the record forgets
        // those sends as that send would, so each is cleared once.
        if record.sent.iter().any(|(n, _)| *n < onchain) {
            for (nonce, _) in record.sent.iter().filter(|(n, _)| *n < onchain) {
                StorageValueRef::persistent(&call_key(&account.id, *nonce)).clear();
            }
            record.sent.retain(|(n, _)| *n >= onchain);
            record_ref.set(&record);
        }
        let mut resent = 0;
        for nonce in due_for_resend(&record.sent, onchain, now) {
            let Some(call) = StorageValueRef::persistent(&call_key(&account.id, nonce))
                .get::<Vec<u8>>()
                .ok()
                .flatten()
                .and_then(|bytes| Call::<T>::decode(&mut &bytes[..]).ok())
            else {
                continue;
            };
            if Self::submit_signed(account, call, nonce).is_some() {
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
    fn the_lowest_pending_nonces_are_resent_at_most_eight_a_block() {
        // Twelve sends: nonces 3..15, the first ten at block 5, the last two at block 6.
        let sent: Vec<(u32, u64)> = (3..15).map(|n| (n, if n < 13 { 5 } else { 6 })).collect();
        // At block 6, with the chain at nonce 4: the eight lowest pending from block 5.
        assert_eq!(due_for_resend(&sent, 4, 6), (4..12).collect::<Vec<_>>());
        // Nothing sent in this block is due yet, and nothing the chain has passed.
        assert_eq!(due_for_resend(&sent, 13, 6), Vec::<u32>::new());
        assert_eq!(due_for_resend(&sent, 12, 6), vec![12]);
        assert_eq!(due_for_resend(&sent, 11, 7), vec![11, 12, 13, 14]);
        // Whatever the order the record lists them in.
        let mut shuffled = sent.clone();
        shuffled.reverse();
        assert_eq!(due_for_resend(&shuffled, 4, 6), (4..12).collect::<Vec<_>>());
        assert_eq!(MAX_RESENDS_PER_BLOCK, 8);
    }

    #[test]
    fn a_send_drops_the_calls_of_nonces_its_record_no_longer_counts() {
        let before: Vec<(u32, u64)> = vec![(3, 1), (4, 1), (5, 2)];
        // The chain took 3; 6 was sent.
        let after: Vec<(u32, u64)> = vec![(4, 1), (5, 2), (6, 3)];
        assert_eq!(dropped_sends(&before, &after), vec![3]);
        // A fall back to the chain's nonce 4: 5 is no longer counted, 4 is sent again
        // (its key is overwritten, not dropped).
        let fallback: Vec<(u32, u64)> = vec![(4, 3)];
        assert_eq!(dropped_sends(&before, &fallback), vec![3, 5]);
        assert_eq!(dropped_sends::<u32, u64>(&[], &after), Vec::<u32>::new());
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
