//! Spans: requests that enter a state together share one deadline-queue entry.
//!
//! A batch taken in one `request_batch` is drawn once and gets consecutive ids; results
//! posted in one `submit_results` open their windows together; a batch that misses its
//! deadline is reassigned together, and one that settles is pruned together. Each such
//! group is scheduled as one entry (`Deadline::*Span { count }`) keyed by its first id,
//! and when the entry comes, the work its requests share — their executor's slash,
//! pools and obligations, the requester's holds — is done once for all of them, while
//! each request still gets its own record, events and settlement. That is what lets a
//! block take and settle a thousand requests: per request, a span costs a record write
//! or two, not the ~20 storage items of a request handled alone.
//!
//! A request can leave its span's state on its own (a game overturns its result, its
//! executor hands it back): a span entry handles only the requests still in exactly the
//! state it was scheduled for (the same status and block), like a single entry, and
//! one of them not shared with the first (another executor or requester) is handled
//! alone. So a span never settles a request twice or early, whatever its members did.

use crate::{pallet::*, service::AssignmentEnd, Deadline, RequestStatus, WeightInfo};
use alloc::vec::Vec;
use codec::Encode;
use frame_support::{pallet_prelude::*, weights::Weight};
use frame_system::pallet_prelude::BlockNumberFor;
use inferchain_primitives::{
    model::{ModelRegistry, ModelStatus},
    RequestId,
};
use sp_runtime::traits::{Saturating, UniqueSaturatedInto, Zero};

/// What a span entry did: requests handled together, requests handled alone (each
/// charged as a single entry), and the input and output bytes it read (charged at
/// `request_inference`'s cost per byte: the span benchmarks use small ones).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct SpanWork {
    pub together: u32,
    pub alone: u32,
    pub bytes: u32,
}

impl<T: Config> Pallet<T> {
    /// Schedules `kind` (`Execution`, `ChallengeWindow` or `Prune`) at `at` for `ids`
    /// (ascending): one entry per run of consecutive ids.
    pub(crate) fn schedule_runs(at: BlockNumberFor<T>, ids: &[RequestId], kind: Deadline) {
        let mut i = 0;
        while i < ids.len() {
            let first = ids[i];
            let mut n = 1usize;
            while ids
                .get(i + n)
                .is_some_and(|id| *id == first.saturating_add(n as RequestId))
            {
                n += 1;
            }
            Self::schedule(at, first, Deadline::covering(kind, n as u32));
            i += n;
        }
    }

    /// The weight of one single queue entry at its worst (the slope of `on_initialize`).
    pub(crate) fn single_entry_weight() -> Weight {
        T::WeightInfo::on_initialize(1).saturating_sub(T::WeightInfo::on_initialize(0))
    }

    /// The weight of a span entry of `kind` over `count` requests, handled together.
    pub(crate) fn span_weight(kind: Deadline, count: u32) -> Weight {
        match kind.kind() {
            Deadline::Execution => T::WeightInfo::execution_span(count),
            Deadline::ChallengeWindow => T::WeightInfo::window_span(count),
            _ => T::WeightInfo::prune_span(count),
        }
    }

    /// The weight of reading `bytes` of requests' inputs and results' outputs.
    fn byte_weight(bytes: u32) -> Weight {
        T::WeightInfo::request_inference(bytes).saturating_sub(T::WeightInfo::request_inference(0))
    }

    /// The most an entry may weigh: a span handled together plus each of its requests
    /// handled alone (the split is only known once it is done), the largest input and
    /// output of each, and the observer's hook for each request it may settle.
    pub(crate) fn entry_reserve(what: Deadline) -> Weight {
        let count = what.count();
        let observer =
            <T::Observer as crate::RequestObserver>::max_weight().saturating_mul(u64::from(count));
        let own = match what {
            Deadline::Execution | Deadline::ChallengeWindow | Deadline::Prune => {
                Self::single_entry_weight()
            }
            span => {
                let largest = T::MaxInputBytes::get().saturating_add(T::MaxOutputBytes::get());
                Self::span_weight(span, count)
                    .saturating_add(Self::single_entry_weight().saturating_mul(u64::from(count)))
                    .saturating_add(Self::byte_weight(largest.saturating_mul(count)))
            }
        };
        own.saturating_add(observer)
    }

    /// What an entry weighed, once done (without the observer's hooks, counted apart).
    pub(crate) fn entry_weight(what: Deadline, work: SpanWork) -> Weight {
        match what {
            Deadline::Execution | Deadline::ChallengeWindow | Deadline::Prune => {
                Self::single_entry_weight()
            }
            span => Self::span_weight(span, span.count())
                .saturating_add(Self::single_entry_weight().saturating_mul(u64::from(work.alone)))
                .saturating_add(Self::byte_weight(work.bytes)),
        }
    }

    /// The span's requests (from `first`, `count` of them) whose status is `status`, and
    /// the input bytes read to find them.
    fn members(
        first: RequestId,
        count: u32,
        status: RequestStatus<BlockNumberFor<T>>,
    ) -> (Vec<(RequestId, RequestOf<T>)>, u32) {
        let mut bytes = 0u32;
        let members = (first..first.saturating_add(RequestId::from(count)))
            .filter_map(|id| Requests::<T>::get(id).map(|r| (id, r)))
            .inspect(|(_, r)| bytes = bytes.saturating_add(r.input.len() as u32))
            .filter(|(_, r)| r.status == status)
            .collect();
        (members, bytes)
    }

    /// The execution deadline `at` of a span passed: its requests still pending with
    /// that deadline were missed. Their executor is slashed for each, once; they are
    /// reassigned together to one newly drawn executor (or expire together).
    pub(crate) fn on_execution_span(
        first: RequestId,
        count: u32,
        at: BlockNumberFor<T>,
        now: BlockNumberFor<T>,
    ) -> SpanWork {
        let (members, bytes) = Self::members(first, count, RequestStatus::Pending { deadline: at });
        let Some((_, lead)) = members.first() else {
            return SpanWork {
                bytes,
                ..Default::default()
            };
        };
        let (executor, model, requester) =
            (lead.executor.clone(), lead.model, lead.requester.clone());
        let answerable = matches!(T::Models::model(&model), Some((_, s)) if s != ModelStatus::Retired)
            && T::Models::commitments(&model).is_some();
        let mut work = SpanWork {
            bytes,
            ..Default::default()
        };
        let mut group = Vec::new();
        for (id, request) in members {
            let shared = request.executor == executor
                && request.model == model
                && request.requester == requester;
            if answerable && shared {
                group.push((id, request));
            } else {
                // The model went away (nobody to blame), or the request went its own
                // way: as a single entry.
                Self::on_execution_deadline(id, at, now);
                work.alone = work.alone.saturating_add(1);
            }
        }
        let k = group.len() as u32;
        if k == 0 {
            return work;
        }
        work.together = k;
        let slash = T::MissedDeadlineSlash::get().saturating_mul(k.into());
        let slashed = Self::debit_bond(&executor, slash, SlashReason::MissedDeadline, now);
        Self::burn_from_hold(HoldReason::ExecutorBond, &executor, slashed);
        Self::end_assignments(
            &executor,
            AssignmentEnd::Missed(at.unique_saturated_into()),
            k,
            now,
        );
        Self::remove_obligations(&executor, k);

        let (again, last): (Vec<_>, Vec<_>) = group
            .into_iter()
            .partition(|(_, r)| r.attempt < T::MaxAttempts::get());
        let to = again.first().and_then(|(id, r)| {
            let subject = (b"assign", *id, r.attempt.saturating_add(1)).encode();
            Self::pick_executor(&model, &subject, core::slice::from_ref(&executor))
        });
        let mut expiring = last;
        match to {
            Some(to) => {
                let deadline = now.saturating_add(T::ExecutionTimeout::get());
                let mut ids = Vec::with_capacity(again.len());
                for (id, mut request) in again {
                    request.executor = to.clone();
                    request.attempt = request.attempt.saturating_add(1);
                    request.status = RequestStatus::Pending { deadline };
                    let attempt = request.attempt;
                    Requests::<T>::insert(id, request);
                    Self::deposit_event(Event::RequestReassigned {
                        id,
                        from: executor.clone(),
                        to: to.clone(),
                        attempt,
                    });
                    ids.push(id);
                }
                let n = ids.len() as u32;
                Self::add_obligations(&to, n);
                Self::start_assignments(&to, n);
                Self::schedule_runs(deadline, &ids, Deadline::Execution);
            }
            None => expiring.extend(again),
        }
        expiring.sort_by_key(|(id, _)| *id);
        Self::expire_together(expiring, now);
        work
    }

    /// Expires requests of one requester together: their fees go back in one release,
    /// each is marked expired (its releases forgiven, the observer told) and they are
    /// pruned together later.
    pub(crate) fn expire_together(
        requests: Vec<(RequestId, RequestOf<T>)>,
        now: BlockNumberFor<T>,
    ) {
        let Some((_, lead)) = requests.first() else {
            return;
        };
        let requester = lead.requester.clone();
        let mut refund = BalanceOf::<T>::zero();
        let mut ids = Vec::with_capacity(requests.len());
        for (id, mut request) in requests {
            if request.requester != requester {
                defensive!("a span's requests have one requester");
                Self::expire(id, request, now);
                continue;
            }
            let refunded = request.fee;
            refund = refund.saturating_add(refunded);
            request.status = RequestStatus::Expired { at: now };
            Requests::<T>::insert(id, request);
            Self::settle_releases(id, false, now);
            Self::deposit_event(Event::RequestExpired { id, refunded });
            let used = <T::Observer as crate::RequestObserver>::on_expired(id);
            ObserverWeight::<T>::mutate(|w| *w = w.saturating_add(used));
            ids.push(id);
        }
        Self::release(HoldReason::RequestFee, &requester, refund);
        Self::schedule_runs(
            now.saturating_add(T::ResultRetention::get()),
            &ids,
            Deadline::Prune,
        );
    }

    /// The challenge window `at` of a span ended: its results with no open game are
    /// final, and their executor is paid for all of them in one transfer.
    pub(crate) fn on_window_span(
        first: RequestId,
        count: u32,
        at: BlockNumberFor<T>,
        now: BlockNumberFor<T>,
    ) -> SpanWork {
        let (members, bytes) =
            Self::members(first, count, RequestStatus::Submitted { window_end: at });
        let Some((_, lead)) = members.first() else {
            return SpanWork {
                bytes,
                ..Default::default()
            };
        };
        let (executor, requester) = (lead.executor.clone(), lead.requester.clone());
        let mut work = SpanWork {
            bytes,
            ..Default::default()
        };
        let mut fees = BalanceOf::<T>::zero();
        let mut ids = Vec::new();
        for (id, request) in members {
            if Self::open_games(id, request.attempt) > 0 {
                continue; // the last game to end in the executor's favour finalizes it
            }
            let result = Results::<T>::get(id);
            if let Some(r) = &result {
                work.bytes = work.bytes.saturating_add(r.output.len() as u32);
            }
            // A request with hand-backs to settle (a slash each) is settled alone, as a
            // single entry reserves for.
            let shared = request.executor == executor
                && request.requester == requester
                && !ReleasedBy::<T>::contains_key(id)
                && ResultTraces::<T>::contains_key(id)
                && result.as_ref().is_some_and(|r| r.executor == executor);
            let Some(result) = result.filter(|_| shared) else {
                Self::on_window_end(id, at, now);
                work.alone = work.alone.saturating_add(1);
                continue;
            };
            fees = fees.saturating_add(request.fee);
            Self::record_finalized(id, request, result.executor, result.output_hash, now);
            ids.push(id);
        }
        let k = ids.len() as u32;
        if k == 0 {
            return work;
        }
        work.together = k;
        let cut = T::ProtocolFee::get() * fees;
        Self::pay_from_hold(
            HoldReason::RequestFee,
            &requester,
            &executor,
            fees.saturating_sub(cut),
        );
        Self::burn_from_hold(HoldReason::RequestFee, &requester, cut);
        Self::remove_obligations(&executor, k);
        Self::schedule_runs(
            now.saturating_add(T::ResultRetention::get()),
            &ids,
            Deadline::Prune,
        );
        work
    }

    /// A span's retention ended: its settled requests are removed and their storage
    /// deposits returned in one release. Only requests settled no later than the span's
    /// first (settled with it) are pruned: one settled later, on its own, waits for its
    /// own entry.
    pub(crate) fn prune_span(first: RequestId, count: u32) -> SpanWork {
        let Some(lead) = Requests::<T>::get(first) else {
            return SpanWork::default();
        };
        let Some(settled) = lead.status.settled_at() else {
            defensive!("a prune span's first request is not settled");
            return SpanWork::default();
        };
        let requester = lead.requester;
        let mut work = SpanWork::default();
        let mut deposits = BalanceOf::<T>::zero();
        for id in first..first.saturating_add(RequestId::from(count)) {
            let Some(request) = Requests::<T>::get(id) else {
                continue;
            };
            work.bytes = work.bytes.saturating_add(request.input.len() as u32);
            if request.status.settled_at().is_none_or(|at| at > settled) {
                continue;
            }
            if request.requester != requester || ReleasedBy::<T>::contains_key(id) {
                Self::prune(id);
                work.alone = work.alone.saturating_add(1);
                continue;
            }
            Requests::<T>::remove(id);
            Results::<T>::remove(id);
            ResultTraces::<T>::remove(id);
            let deposit_returned = RequestDeposits::<T>::take(id).unwrap_or_default();
            deposits = deposits.saturating_add(deposit_returned);
            Self::deposit_event(Event::RequestPruned {
                id,
                deposit_returned,
            });
            work.together = work.together.saturating_add(1);
        }
        Self::release(HoldReason::StorageDeposit, &requester, deposits);
        work
    }
}
