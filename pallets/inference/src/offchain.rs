//! The off-chain worker: what a node does, for each executor key of [`KEY_TYPE`] in its
//! keystore, after each block it imports.
//!
//! * **Executor**: runs the requests assigned to one of its keys and posts
//!   `submit_result`.
//! * **Watcher**: re-runs results in their challenge window (a `WatchShare` of them) and
//!   `challenge`s those that break the model's comparison rule.
//! * **Game player** (`offchain_game`): for models with dispute commitments, posts
//!   traced results, opens games on traced results it disagrees with, and plays both
//!   sides of its games.
//! * **Juror**: re-runs disputed requests it was drawn for, commits its vote with a
//!   random salt kept in the node's persistent off-chain storage, and reveals it after
//!   the commit period.
//!
//! Work is found through the deadline queue: every open duty (a pending request, a result
//! in its window, a dispute) has a live entry there at a future block, so the worker reads
//! a bounded range of the queue instead of iterating all requests. Each duty takes an
//! off-chain [`StorageLock`] keyed by what it is about; after a transaction was handed to
//! the pool the lock is kept until it expires (`OffchainRetryBlocks`), so no duty is done
//! twice across blocks, nor after a restart; if sending failed, the lock is released and
//! the next block retries. At most `MaxOffchainRuns` models run per block, and no new
//! one starts after `OffchainTimeBudget` milliseconds; slashable duties (answering,
//! voting) come before watching.
//!
//! Models run only through the inference host functions; this module and
//! `offchain_game` are their only callers and run only in the off-chain worker, never in
//! block execution. Transactions go out through `offchain_sender`.

use crate::{pallet::*, Ballot, Deadline, RequestStatus, Vote, LOG_TARGET};
use alloc::vec::Vec;
use codec::{Decode, Encode};
use frame_support::pallet_prelude::*;
use frame_system::{
    offchain::{Account, Signer},
    pallet_prelude::BlockNumberFor,
};
use inferchain_primitives::{
    compare::ComparisonRule,
    host::{inference, InferenceError},
    io::{Payload, Tensor},
    model::ModelRegistry,
    RequestId,
};
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
    /// As executor, post a well-formed but wrong output.
    WrongOutput,
    /// As executor, post nothing (the deadline passes).
    NoOutput,
    /// As juror, neither commit nor reveal.
    NoVote,
    /// As watcher, open a game on every traced result of another executor and never
    /// move in it (the sybil that throws its game).
    ThrowGames,
}

impl Fault {
    /// The flag value naming each fault.
    pub fn name(self) -> &'static str {
        match self {
            Fault::WrongOutput => "wrong-output",
            Fault::NoOutput => "no-output",
            Fault::NoVote => "no-vote",
            Fault::ThrowGames => "throw-games",
        }
    }
}

/// What a juror keeps between its commit and its reveal.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
struct SecretBallot {
    vote: Vote,
    salt: [u8; 32],
}

/// The wrong output a node with [`Fault::WrongOutput`] posts: every value of `output`
/// mapped to `-v - 0.5`, which keeps it well formed and finite but far from the truth.
pub fn corrupt_output(output: &[u8]) -> Option<Vec<u8>> {
    let Payload::Tensors(tensors) = Payload::decode_canonical(output).ok()? else {
        return None;
    };
    let bad: Option<Vec<Tensor>> = tensors
        .into_iter()
        .map(|t| {
            let values: Vec<f32> = t
                .to_f64_vec()?
                .into_iter()
                .map(|v| (-v - 0.5) as f32)
                .collect();
            Some(Tensor::from_f32(t.shape.clone(), &values))
        })
        .collect();
    Some(Payload::Tensors(bad?).encode())
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
        let horizon = T::ExecutionTimeout::get()
            .max(T::ChallengePeriod::get())
            .max(T::CommitPeriod::get().saturating_add(T::RevealPeriod::get()));
        let end = next.saturating_add(horizon);
        // Duties whose neglect is slashed (answering, voting) come first; watching gets
        // what the budget leaves.
        let mut duties: Vec<(BlockNumberFor<T>, RequestId, Deadline)> = Vec::new();
        let mut at = QueueCursor::<T>::get();
        while at <= end {
            duties.extend(DeadlineQueue::<T>::iter_prefix(at).map(|(id, what)| (at, id, what)));
            at = at.saturating_add(One::one());
        }
        duties.sort_by_key(|(_, _, what)| matches!(what, Deadline::ChallengeWindow));
        // Game moves are due within blocks: they come before everything else, and the
        // time they take counts against the budget of what follows.
        let started = sp_io::offchain::timestamp();
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
                Deadline::Execution => Self::execute(id, at, &keys, fault, &mut budget),
                Deadline::ChallengeWindow => Self::watch(id, at, next, &keys, fault, &mut budget),
                Deadline::Reveal => Self::judge(id, at, next, &keys, fault, &mut budget),
                Deadline::Prune => {}
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
        keys: &[Account<T>],
        fault: Option<Fault>,
        budget: &mut u32,
    ) {
        let Some(request) = Requests::<T>::get(id) else {
            return;
        };
        if request.status != (RequestStatus::Pending { deadline }) {
            return;
        }
        let Some(account) = keys.iter().find(|k| k.id == request.executor) else {
            return;
        };
        if fault == Some(Fault::NoOutput) {
            log::warn!(target: LOG_TARGET, "request {id}: not answering (--executor-fault no-output)");
            return;
        }
        let key = (b"inferchain::execute", id, request.attempt).encode();
        if let Some(model) = Self::traced_model(&request) {
            Self::with_lock(&key, || {
                *budget = budget.saturating_sub(1);
                Self::execute_traced(id, &request, &model, account, fault)
            });
            return;
        }
        Self::with_lock(&key, || {
            *budget = budget.saturating_sub(1);
            let (mut output, _) = match Self::run_model(id, &request) {
                Some(run) => run,
                // Logged; retrying soon would not change it.
                None => return Some(()),
            };
            if fault == Some(Fault::WrongOutput) {
                log::warn!(target: LOG_TARGET, "request {id}: posting a wrong output (--executor-fault wrong-output)");
                output = corrupt_output(&output)?;
            }
            let output = Self::bounded_output(id, output)?;
            log::info!(target: LOG_TARGET, "request {id}: posting result as executor {:?}", account.id);
            Self::send(account, Call::submit_result { id, output })
        });
    }

    /// Watcher role: re-run the result of request `id` whose window ends at `window_end`
    /// and challenge it if it breaks the model's comparison rule.
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
            return;
        }
        let Some(result) = Results::<T>::get(id) else {
            return;
        };
        // A node re-running its own result would only repeat itself.
        if keys.iter().any(|k| k.id == result.executor) {
            return;
        }
        // Watchers take turns, one block apart, in an order drawn per request, so that
        // one honest challenge is sent rather than one per watcher (the others would
        // fail and pay fees). The last turn still lands inside the window. A node with
        // several executor keys watches with the one whose turn comes first.
        let active = ActiveExecutors::<T>::get();
        let Some((watcher, turn)) = keys
            .iter()
            .filter(|k| {
                k.id != result.executor && active.contains(&k.id) && Self::sampled(id, &k.id)
            })
            .map(|k| (k, Self::watch_turn(id, &k.id, &result.executor, &active)))
            .min_by_key(|(_, turn)| *turn)
        else {
            return;
        };
        let last_turn = window_end
            .saturating_sub(result.posted_at)
            .saturating_sub(2u32.into());
        let turn_at = result.posted_at.saturating_add(turn.min(last_turn));
        if next <= turn_at {
            return;
        }
        let key = (b"inferchain::watch", id, window_end, &watcher.id).encode();
        Self::with_lock(&key, || {
            *budget = budget.saturating_sub(1);
            let (mine, rule) = match Self::run_model(id, &request) {
                Some(run) => run,
                // Logged; retrying soon would not change it.
                None => return Some(()),
            };
            if rule.matches(&result.output, &mine) {
                log::debug!(target: LOG_TARGET, "request {id}: result checked, it matches");
                return Some(());
            }
            log::warn!(
                target: LOG_TARGET,
                "request {id}: the result of {:?} does not match this node's output; challenging",
                result.executor
            );
            let output = Self::bounded_output(id, mine)?;
            Self::send(watcher, Call::challenge { id, output })
        });
    }

    /// Juror role: commit a vote on the dispute of request `id` (reveal period ending at
    /// `reveal_end`) during the commit period, reveal it after.
    fn judge(
        id: RequestId,
        reveal_end: BlockNumberFor<T>,
        next: BlockNumberFor<T>,
        keys: &[Account<T>],
        fault: Option<Fault>,
        budget: &mut u32,
    ) {
        let Some(dispute) = Disputes::<T>::get(id) else {
            return;
        };
        if dispute.reveal_end != reveal_end {
            return;
        }
        let mine = keys.iter().filter_map(|k| {
            dispute
                .jury
                .iter()
                .find(|(j, _)| *j == k.id)
                .map(|s| (k, s.1))
        });
        let mut my_output: Option<(Vec<u8>, ComparisonRule)> = None;
        for (juror, ballot) in mine {
            if fault == Some(Fault::NoVote) {
                log::warn!(target: LOG_TARGET, "request {id}: not voting (--executor-fault no-vote)");
                continue;
            }
            let secret_key = (b"inferchain::ballot", id, reveal_end, &juror.id).encode();
            match ballot {
                Ballot::Waiting if next <= dispute.commit_end => {
                    let key = (b"inferchain::commit", id, reveal_end, &juror.id).encode();
                    Self::with_lock(&key, || {
                        if my_output.is_none() {
                            let request = Requests::<T>::get(id)?;
                            *budget = budget.saturating_sub(1);
                            // On failure (logged) the lock is kept: retrying soon would
                            // not change it.
                            let Some(run) = Self::run_model(id, &request) else {
                                return Some(());
                            };
                            my_output = Some(run);
                        }
                        let (reference, rule) = my_output.as_ref()?;
                        let result = Results::<T>::get(id)?;
                        let vote = Vote {
                            executor_ok: rule.matches(&result.output, reference),
                            challenger_ok: rule.matches(&dispute.challenger_output, reference),
                        };
                        let salt = sp_io::offchain::random_seed();
                        StorageValueRef::persistent(&secret_key).set(&SecretBallot { vote, salt });
                        let commitment =
                            crate::challenge::vote_commitment(id, &juror.id, &vote, &salt);
                        log::info!(target: LOG_TARGET, "request {id}: committing a vote as juror {:?}", juror.id);
                        Self::send(juror, Call::commit_vote { id, commitment })
                    });
                }
                Ballot::Committed(commitment)
                    if next > dispute.commit_end && next <= dispute.reveal_end =>
                {
                    let key = (b"inferchain::reveal", id, reveal_end, &juror.id).encode();
                    Self::with_lock(&key, || {
                        let Ok(Some(secret)) =
                            StorageValueRef::persistent(&secret_key).get::<SecretBallot>()
                        else {
                            log::error!(target: LOG_TARGET, "request {id}: the salt of this node's vote is lost; it cannot be revealed");
                            return Some(());
                        };
                        if crate::challenge::vote_commitment(
                            id,
                            &juror.id,
                            &secret.vote,
                            &secret.salt,
                        ) != commitment
                        {
                            log::error!(target: LOG_TARGET, "request {id}: the stored vote does not match the commitment on chain");
                            return Some(());
                        }
                        log::info!(target: LOG_TARGET, "request {id}: revealing {:?} as juror {:?}", secret.vote, juror.id);
                        Self::send(
                            juror,
                            Call::reveal_vote {
                                id,
                                vote: secret.vote,
                                salt: secret.salt,
                            },
                        )
                    });
                }
                _ => {}
            }
        }
    }

    /// The position of `watcher` among the active executors other than `executor`,
    /// ordered by `blake2_256((id, account))`: its turn to challenge, in blocks.
    fn watch_turn(
        id: RequestId,
        watcher: &T::AccountId,
        executor: &T::AccountId,
        active: &[T::AccountId],
    ) -> BlockNumberFor<T> {
        let key = |who: &T::AccountId| inferchain_primitives::blake2_256(&(id, who).encode());
        let mine = key(watcher);
        let before = active
            .iter()
            .filter(|a| *a != executor && *a != watcher && key(a) < mine)
            .count() as u32;
        before.into()
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

    /// Runs request `id`'s model through the host function and checks the output.
    fn run_model(id: RequestId, request: &RequestOf<T>) -> Option<(Vec<u8>, ComparisonRule)> {
        let Some((spec, _)) = T::Models::model(&request.model) else {
            log::warn!(target: LOG_TARGET, "request {id}: model {:?} is not registered", request.model);
            return None;
        };
        let uri = spec.artifact_uri.clone().map(|u| u.into_inner());
        match inference::run(
            request.model,
            &request.input,
            spec.input.clone(),
            spec.numerics,
            uri,
        ) {
            Ok(output) => {
                if let Err(e) = Self::check_output(&request.model, &output) {
                    log::error!(target: LOG_TARGET, "request {id}: the engine's output does not fit the model's output spec ({e:?}); not posting it");
                    return None;
                }
                Some((output, spec.comparison))
            }
            Err(InferenceError::ModelUnavailable) => {
                log::warn!(
                    target: LOG_TARGET,
                    "request {id}: model {:?} is not in this node's model store and could not be fetched; \
                     skipping. Import it with `inferchain model import` into the node's --model-store.",
                    request.model
                );
                None
            }
            Err(InferenceError::UnsupportedNumerics) => {
                log::warn!(
                    target: LOG_TARGET,
                    "request {id}: model {:?} is registered under numerics {:?}, which this node's \
                     engine does not implement; skipping. Upgrade the node to an engine that does.",
                    request.model,
                    spec.numerics
                );
                None
            }
            Err(e) => {
                log::warn!(target: LOG_TARGET, "request {id}: the model did not run: {e:?}");
                None
            }
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
