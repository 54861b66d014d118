//! The off-chain worker: what a node does, for each executor key of [`KEY_TYPE`] in its
//! keystore, after each block it imports.
//!
//! * **Executor**: runs the requests assigned to one of its keys and posts
//!   `submit_traced_result` (`offchain_game`).
//! * **Watcher**: re-runs results in their challenge window (a `WatchShare` of them) and
//!   opens its own bisection game on those it disagrees with (`offchain_game`).
//! * **Game player** (`offchain_game`): plays both sides of its games.
//!
//! Work is found through the deadline queue: every open duty (a pending request, a result
//! in its window) has a live entry there at a future block, so the worker reads a bounded
//! range of the queue instead of iterating all requests. Each duty takes an off-chain
//! [`StorageLock`] keyed by what it is about; after a transaction was handed to the pool
//! the lock is kept until it expires (`OffchainRetryBlocks`), so no duty is done twice
//! across blocks, nor after a restart; if sending failed, the lock is released and the
//! next block retries. At most `MaxOffchainRuns` models run per block, and no new one
//! starts after `OffchainTimeBudget` milliseconds; game moves and answering (slashable)
//! come before watching.
//!
//! Models run only through the inference host functions; `offchain_game` is their only
//! caller and runs only in the off-chain worker, never in block execution. Transactions
//! go out through `offchain_sender`.

use crate::{pallet::*, Deadline, RequestStatus, LOG_TARGET};
use alloc::vec::Vec;
use codec::{Decode, Encode};
use frame_support::pallet_prelude::*;
use frame_system::{
    offchain::{Account, Signer},
    pallet_prelude::BlockNumberFor,
};
use inferchain_primitives::RequestId;
use sp_runtime::{
    offchain::{
        storage::StorageValueRef,
        storage_lock::{BlockAndTime, StorageLock},
        Duration,
    },
    traits::{One, Saturating},
    KeyTypeId,
};

/// The keystore key type of executor keys: an executor's account is its sr25519 key.
pub const KEY_TYPE: KeyTypeId = KeyTypeId(*b"infr");

/// Executor keys (sr25519) and their binding to the runtime's `MultiSigner` accounts.
pub mod crypto {
    use super::KEY_TYPE;
    use sp_runtime::{
        app_crypto::{app_crypto, sr25519},
        MultiSignature, MultiSigner,
    };
    app_crypto!(sr25519, KEY_TYPE);

    /// What `frame_system::offchain::Signer` signs executor transactions with.
    pub struct ExecutorAuthId;

    impl frame_system::offchain::AppCrypto<MultiSigner, MultiSignature> for ExecutorAuthId {
        type RuntimeAppPublic = Public;
        type GenericSignature = sp_core::sr25519::Signature;
        type GenericPublic = sp_core::sr25519::Public;
    }
}

/// The persistent off-chain storage key under which a node started with
/// `--executor-fault` records how to misbehave. For tests only: an honest node never
/// writes it.
pub const FAULT_KEY: &[u8] = b"inferchain::executor-fault";

pub use crate::offchain_sender::NODE_STARTED_KEY;

/// A deliberate misbehaviour, so that end-to-end tests can run a real cheater.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Fault {
    /// As executor, post a well-formed but wrong output (with a trace corrupted at the
    /// plan's middle step) and defend it.
    #[codec(index = 0)]
    WrongOutput,
    /// As executor, post nothing (the deadline passes).
    #[codec(index = 1)]
    NoOutput,
    /// As watcher, open a game on every traced result of another executor and never
    /// move in it (the sybil that throws its game). (Index 2 was the jury's `NoVote`.)
    #[codec(index = 3)]
    ThrowGames,
}

impl Fault {
    /// The flag value naming each fault.
    pub fn name(self) -> &'static str {
        match self {
            Fault::WrongOutput => "wrong-output",
            Fault::NoOutput => "no-output",
            Fault::ThrowGames => "throw-games",
        }
    }
}

/// A span entry of the execution queue: `count` requests from `first`, due by `deadline`.
struct Span<BlockNumber> {
    first: RequestId,
    count: u32,
    deadline: BlockNumber,
}

impl<T: Config> Pallet<T> {
    /// One off-chain worker run after block `now` was imported.
    pub(crate) fn offchain_work(now: BlockNumberFor<T>) {
        let keys: Vec<Account<T>> = Signer::<T, T::AuthorityId>::keystore_accounts().collect();
        if keys.is_empty() {
            return;
        }
        let fault = Self::local_fault();
        let mut budget = T::MaxOffchainRuns::get();
        // Transactions sent now land in `now + 1` at the earliest.
        let next = now.saturating_add(One::one());
        let horizon = T::ExecutionTimeout::get().max(T::ChallengePeriod::get());
        let end = next.saturating_add(horizon);
        // Duties whose neglect is slashed (answering) come first; watching gets
        // what the budget leaves.
        let mut duties: Vec<(BlockNumberFor<T>, RequestId, Deadline)> = Vec::new();
        let mut at = QueueCursor::<T>::get();
        while at <= end {
            duties.extend(
                DeadlineQueue::<T>::iter_prefix(at)
                    .map(|(key, what)| (at, crate::queue::key_id(key), what)),
            );
            at = at.saturating_add(One::one());
        }
        duties.sort_by_key(|(_, _, what)| what.kind() == Deadline::ChallengeWindow);
        // Game moves are due within blocks: they come before everything else, and the
        // time they take counts against the budget of what follows.
        let started = sp_io::offchain::timestamp();
        // Whatever the pool lost of this node's earlier sends goes back first: a move
        // behind a nonce gap cannot land.
        for key in &keys {
            Self::resend_pending(key);
        }
        Self::play_games(next, &keys, fault, &mut budget);
        for (at, id, what) in duties {
            let spent = sp_io::offchain::timestamp().diff(&started).millis();
            if budget == 0 || spent >= T::OffchainTimeBudget::get() {
                log::info!(
                    target: LOG_TARGET,
                    "off-chain worker: {} model runs in {spent} ms after block {now:?}; the rest waits",
                    T::MaxOffchainRuns::get() - budget
                );
                break;
            }
            match what {
                Deadline::Execution => Self::execute(id, at, next, &keys, fault, &mut budget),
                Deadline::ExecutionSpan { count } => {
                    let span = Span {
                        first: id,
                        count,
                        deadline: at,
                    };
                    Self::execute_span(span, next, &keys, fault, &mut budget, started)
                }
                Deadline::ChallengeWindow => Self::watch(id, at, next, &keys, fault, &mut budget),
                Deadline::ChallengeWindowSpan { count } => {
                    for member in id..id.saturating_add(RequestId::from(count)) {
                        if budget == 0 {
                            break;
                        }
                        Self::watch(member, at, next, &keys, fault, &mut budget);
                    }
                }
                Deadline::Prune | Deadline::PruneSpan { .. } => {}
            }
        }
    }

    /// The fault this node was started with, if any (tests only).
    fn local_fault() -> Option<Fault> {
        StorageValueRef::persistent(FAULT_KEY)
            .get::<Fault>()
            .ok()
            .flatten()
    }

    /// Executor role: answer request `id` if one of `keys` is assigned and its deadline
    /// is `deadline`.
    fn execute(
        id: RequestId,
        deadline: BlockNumberFor<T>,
        next: BlockNumberFor<T>,
        keys: &[Account<T>],
        fault: Option<Fault>,
        budget: &mut u32,
    ) {
        // A result landing in `deadline` or later is refused (`ResultTooLate`).
        if next >= deadline {
            return;
        }
        let Some((request, k, model)) = Self::assigned_to(id, deadline, keys, fault) else {
            return;
        };
        let key = (b"inferchain::execute", id, request.attempt).encode();
        Self::with_lock(&key, || {
            *budget = budget.saturating_sub(1);
            Self::execute_traced(id, &request, &model, &keys[k], fault)
        });
    }

    /// Request `id` if it is pending with `deadline` and assigned to one of `keys`, and
    /// this node answers it: the request, the key's index and the traced model.
    fn assigned_to(
        id: RequestId,
        deadline: BlockNumberFor<T>,
        keys: &[Account<T>],
        fault: Option<Fault>,
    ) -> Option<(
        RequestOf<T>,
        usize,
        inferchain_primitives::host::TracedModel,
    )> {
        let request = Requests::<T>::get(id)?;
        if request.status != (RequestStatus::Pending { deadline }) {
            return None;
        }
        let k = keys.iter().position(|k| k.id == request.executor)?;
        if fault == Some(Fault::NoOutput) {
            log::warn!(target: LOG_TARGET, "request {id}: not answering (--executor-fault no-output)");
            return None;
        }
        let Some(model) = Self::traced_model(&request) else {
            // Not requestable without commitments; a request from before they were
            // required cannot be answered verifiably.
            log::warn!(target: LOG_TARGET, "request {id}: model {:?} has no dispute commitments; not answering", request.model);
            return None;
        };
        Some((request, k, model))
    }

    /// Executor role for a span (a batch): answer its requests pending with `deadline`
    /// that one of `keys` is assigned, each under its own duty lock (the one
    /// [`Self::execute`] takes), and post their results in one `submit_results` per
    /// key. If a post cannot be sent, its requests' locks are released for a retry.
    /// The run budget and the time budget (from `started`) are checked before each
    /// request: what is left is answered after a later block, its results posted then.
    fn execute_span(
        span: Span<BlockNumberFor<T>>,
        next: BlockNumberFor<T>,
        keys: &[Account<T>],
        fault: Option<Fault>,
        budget: &mut u32,
        started: sp_runtime::offchain::Timestamp,
    ) {
        let Span {
            first,
            count,
            deadline,
        } = span;
        if next >= deadline {
            return;
        }
        let mut posts: Vec<(usize, crate::pallet::BatchResultOf<T>, Vec<u8>)> = Vec::new();
        for id in first..first.saturating_add(RequestId::from(count)) {
            let spent = sp_io::offchain::timestamp().diff(&started).millis();
            if *budget == 0 || spent >= T::OffchainTimeBudget::get() {
                break;
            }
            let Some((request, k, model)) = Self::assigned_to(id, deadline, keys, fault) else {
                continue;
            };
            let lock = (b"inferchain::execute", id, request.attempt).encode();
            let mut post = None;
            Self::with_lock(&lock, || {
                *budget = budget.saturating_sub(1);
                match Self::traced_answer(id, &request, &model, &keys[k], fault) {
                    crate::offchain_game::Answer::Post(result) => {
                        post = Some(result);
                        Some(())
                    }
                    crate::offchain_game::Answer::Done(done) => done,
                }
            });
            if let Some(result) = post {
                posts.push((k, result, lock));
            }
        }
        let mut senders: Vec<usize> = posts.iter().map(|(k, _, _)| *k).collect();
        senders.sort_unstable();
        senders.dedup();
        for k in senders {
            let (results, locks): (Vec<_>, Vec<_>) = posts
                .iter()
                .filter(|(by, _, _)| *by == k)
                .map(|(_, result, lock)| (result.clone(), lock.clone()))
                .unzip();
            let n = results.len();
            let sent = BoundedVec::try_from(results).ok().and_then(|results| {
                log::info!(target: LOG_TARGET, "requests {first}..: posting {n} traced results as executor {:?}", keys[k].id);
                Self::send(&keys[k], Call::submit_results { results })
            });
            if sent.is_none() {
                for lock in locks {
                    StorageValueRef::persistent(&lock).clear();
                }
            }
        }
    }

    /// Watcher role: re-run the result of request `id` whose window ends at `window_end`
    /// and open a game on it if this node's traced run disagrees.
    fn watch(
        id: RequestId,
        window_end: BlockNumberFor<T>,
        next: BlockNumberFor<T>,
        keys: &[Account<T>],
        fault: Option<Fault>,
        budget: &mut u32,
    ) {
        // `on_initialize` of `window_end` finalizes the result before any transaction.
        if next >= window_end {
            return;
        }
        let Some(request) = Requests::<T>::get(id) else {
            return;
        };
        if request.status != (RequestStatus::Submitted { window_end }) {
            return;
        }
        if ResultTraces::<T>::contains_key(id) {
            if let Some(model) = Self::traced_model(&request) {
                Self::watch_traced(id, &request, &model, keys, fault, budget);
            }
        }
    }

    /// Whether this watcher re-checks request `id`: a `WatchShare` of requests, drawn
    /// from the request id and the watcher, so that different watchers cover different
    /// requests.
    pub(crate) fn sampled(id: RequestId, watcher: &T::AccountId) -> bool {
        let share = T::WatchShare::get();
        if share == sp_runtime::Perbill::one() {
            return true;
        }
        let draw = u32::from_le_bytes(
            inferchain_primitives::blake2_256(&(id, watcher).encode())[..4]
                .try_into()
                .unwrap_or_default(),
        ) % 1_000_000_000;
        draw < share.deconstruct()
    }

    /// Runs `f` under the lock named `key`. If `f` returns `Some` (done, or nothing to
    /// do), the lock is kept until it expires so later blocks skip the duty; if `None`
    /// (failed), it is released so the next block retries.
    pub(crate) fn with_lock(key: &[u8], f: impl FnOnce() -> Option<()>) {
        Self::with_lock_for(key, T::OffchainRetryBlocks::get(), f)
    }

    /// [`Self::with_lock`] with a lock held for `blocks` blocks.
    pub(crate) fn with_lock_for(key: &[u8], blocks: u32, f: impl FnOnce() -> Option<()>) {
        let mut lock =
            StorageLock::<BlockAndTime<frame_system::Pallet<T>>>::with_block_and_time_deadline(
                key,
                blocks,
                Duration::from_millis(0),
            );
        let Ok(guard) = lock.try_lock() else {
            return;
        };
        if f().is_some() {
            guard.forget();
        }
    }

    pub(crate) fn bounded_output(
        id: RequestId,
        output: Vec<u8>,
    ) -> Option<BoundedVec<u8, T::MaxOutputBytes>> {
        let len = output.len();
        output
            .try_into()
            .map_err(|_| {
                log::error!(target: LOG_TARGET, "request {id}: output of {len} bytes exceeds MaxOutputBytes");
            })
            .ok()
    }
}
