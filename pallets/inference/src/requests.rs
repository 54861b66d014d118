//! Requests and results: taking a request, posting a result, finalizing, reassigning
//! after a missed deadline, expiring and pruning.

use crate::{
    pallet::*, service::AssignmentEnd, Deadline, InferenceResult, Request, RequestStatus,
    LOG_TARGET,
};
use codec::Encode;
use frame_support::pallet_prelude::*;
use frame_system::pallet_prelude::BlockNumberFor;
use inferchain_primitives::{
    blake2_256,
    dispute::TraceCommitment,
    io::{validate_encoded, IoError},
    model::{ModelRegistry, ModelSpec, ModelStatus},
    ModelId, RequestId, H256,
};
use sp_runtime::traits::{Saturating, UniqueSaturatedInto, Zero};

impl<T: Config> Pallet<T> {
    fn input_error(e: IoError) -> Error<T> {
        match e {
            IoError::Malformed => Error::<T>::MalformedInput,
            IoError::NonFinite { .. } => Error::<T>::NonFiniteInput,
            IoError::InvalidUtf8 => Error::<T>::InvalidUtf8Input,
            IoError::TextTooLong { .. } => Error::<T>::InputTooLarge,
            IoError::MaxNewTokens { .. } => Error::<T>::MaxNewTokensOutOfRange,
            IoError::TooManyTokens { .. }
            | IoError::KindMismatch
            | IoError::TensorCount { .. }
            | IoError::DType { .. }
            | IoError::Rank { .. }
            | IoError::Shape { .. }
            | IoError::DataLength { .. } => Error::<T>::InputSpecMismatch,
        }
    }

    /// The weight of a batch: per input as benchmarked (`request_batch`, small inputs),
    /// plus each input byte at `request_inference`'s cost per byte.
    pub(crate) fn request_batch_weight(
        inputs: &[BoundedVec<u8, T::MaxInputBytes>],
    ) -> frame_support::weights::Weight {
        use crate::WeightInfo;
        let bytes = inputs
            .iter()
            .fold(0u32, |acc, i| acc.saturating_add(i.len() as u32));
        let per_byte = T::WeightInfo::request_inference(bytes)
            .saturating_sub(T::WeightInfo::request_inference(0));
        T::WeightInfo::request_batch(inputs.len() as u32).saturating_add(per_byte)
    }

    /// Checks an output against the model of request `model`.
    pub(crate) fn check_output(model: &ModelId, output: &[u8]) -> DispatchResult {
        let (spec, status) = T::Models::model(model).ok_or(Error::<T>::UnknownModel)?;
        ensure!(status != ModelStatus::Retired, Error::<T>::ModelRetired);
        ensure!(
            output.len() <= spec.max_output_bytes as usize,
            Error::<T>::OutputTooLarge
        );
        validate_encoded(output, &spec.output).map_err(|_| Error::<T>::MalformedOutput)?;
        Ok(())
    }

    /// Takes a request of `model` on `input` for `requester`, who pays its fee and
    /// deposit, exactly as `request_inference` does: for pallets that open requests on
    /// their users' behalf (agent memory). Weigh it as
    /// `WeightInfo::request_inference(input.len())`.
    pub fn do_request(
        requester: T::AccountId,
        model: ModelId,
        input: BoundedVec<u8, T::MaxInputBytes>,
        max_fee: BalanceOf<T>,
    ) -> Result<RequestId, DispatchError> {
        let ids = Self::do_request_batch(requester, model, alloc::vec![input], max_fee)?;
        ids.first()
            .copied()
            .ok_or_else(|| Error::<T>::EmptyBatch.into())
    }

    /// Requests of `model`, one per input, all or none (`request_batch`, and
    /// `request_inference` as a batch of one): drawn once,
    /// to one executor, with consecutive ids; their fees and deposits are held in one go
    /// and their deadline is one queue entry (`spans.rs`).
    pub(crate) fn do_request_batch(
        requester: T::AccountId,
        model: ModelId,
        inputs: alloc::vec::Vec<BoundedVec<u8, T::MaxInputBytes>>,
        max_fee: BalanceOf<T>,
    ) -> Result<alloc::vec::Vec<RequestId>, DispatchError> {
        ensure!(!inputs.is_empty(), Error::<T>::EmptyBatch);
        let spec = Self::requestable(&model)?;
        let n = inputs.len() as u32;
        // A batch goes to one executor: it is never more work than the costliest single
        // request executors must run in time.
        ensure!(
            spec.cost.flops.saturating_mul(n.into()) <= T::MaxRequestCost::get().flops,
            Error::<T>::BatchTooCostly
        );
        let (mut fees, mut deposits) = (BalanceOf::<T>::zero(), BalanceOf::<T>::zero());
        let mut priced = alloc::vec::Vec::with_capacity(inputs.len());
        for input in inputs {
            let (fee, deposit) = Self::price(&spec, &input, max_fee)?;
            fees = fees.saturating_add(fee);
            deposits = deposits.saturating_add(deposit);
            priced.push((input, fee, deposit));
        }
        Self::take_block_room(n)?;
        let first = NextRequestId::<T>::get();
        let executor = Self::pick_executor(&model, &(b"assign", first, 1u32).encode(), &[])
            .ok_or(Error::<T>::NoExecutors)?;
        Self::hold(HoldReason::RequestFee, &requester, fees)?;
        if !deposits.is_zero() {
            Self::hold(HoldReason::StorageDeposit, &requester, deposits)?;
        }
        let now = frame_system::Pallet::<T>::block_number();
        let deadline = now.saturating_add(T::ExecutionTimeout::get());
        let ids: alloc::vec::Vec<RequestId> = (first..first.saturating_add(n.into())).collect();
        for (id, (input, fee, deposit)) in ids.iter().copied().zip(priced) {
            if !deposit.is_zero() {
                RequestDeposits::<T>::insert(id, deposit);
            }
            let input_hash = H256(blake2_256(&input));
            Requests::<T>::insert(
                id,
                Request {
                    model,
                    requester: requester.clone(),
                    executor: executor.clone(),
                    input,
                    input_hash,
                    fee,
                    status: RequestStatus::Pending { deadline },
                    attempt: 1,
                    submitted_at: now,
                },
            );
            Self::deposit_event(Event::RequestSubmitted {
                id,
                model,
                requester: requester.clone(),
                executor: executor.clone(),
            });
        }
        NextRequestId::<T>::put(first.saturating_add(n.into()));
        Self::add_obligations(&executor, n);
        Self::start_assignments(&executor, n);
        Self::schedule_runs(deadline, &ids, Deadline::Execution);
        Ok(ids)
    }

    /// The request slots `call` takes if it opens requests (see `take_block_room`).
    pub fn request_slots(call: &Call<T>) -> Option<u32> {
        let requests = match call {
            Call::request_inference { .. } => 1,
            Call::request_batch { inputs, .. } => inputs.len() as u32,
            _ => return None,
        };
        Some(requests.saturating_add(T::SlotsPerAssignment::get()))
    }

    /// Takes the block's slots for one assignment of `requests` requests: one each and
    /// `SlotsPerAssignment` for the assignment (`MaxRequestSlotsPerBlock`).
    fn take_block_room(requests: u32) -> DispatchResult {
        let taken = RequestsInBlock::<T>::get()
            .saturating_add(requests)
            .saturating_add(T::SlotsPerAssignment::get());
        ensure!(
            taken <= T::MaxRequestSlotsPerBlock::get(),
            Error::<T>::BlockRequestLimit
        );
        RequestsInBlock::<T>::put(taken);
        Ok(())
    }

    /// Checks `input` against `spec` and prices it: the model's fee per unit of
    /// `Payload::fee_units` (per token for a language model), at most `max_fee`, and the
    /// storage deposit for the bytes the request and its result may keep in state.
    fn price(
        spec: &ModelSpec<BalanceOf<T>>,
        input: &[u8],
        max_fee: BalanceOf<T>,
    ) -> Result<(BalanceOf<T>, BalanceOf<T>), DispatchError> {
        ensure!(
            input.len() <= spec.max_input_bytes as usize,
            Error::<T>::InputTooLarge
        );
        let payload = validate_encoded(input, &spec.input).map_err(Self::input_error)?;
        let fee = spec.fee.saturating_mul(payload.fee_units().into());
        ensure!(fee <= max_fee, Error::<T>::FeeAboveMax);
        let stored = input.len().saturating_add(spec.max_output_bytes as usize) as u32;
        let deposit = T::RequestDepositBase::get()
            .saturating_add(T::DepositPerByte::get().saturating_mul(stored.into()));
        Ok((fee, deposit))
    }

    /// The spec of `model` if it takes requests.
    fn requestable(model: &ModelId) -> Result<ModelSpec<BalanceOf<T>>, DispatchError> {
        let (spec, status) = T::Models::model(model).ok_or(Error::<T>::UnknownModel)?;
        ensure!(status == ModelStatus::Active, Error::<T>::ModelNotActive);
        // What an executor cannot be expected to run is refused here, before anything is
        // held, never discovered by an executor at run time.
        ensure!(
            spec.cost.fits_within(&T::MaxRequestCost::get()),
            Error::<T>::ModelTooCostly
        );
        // A result nobody could dispute would be trusted blindly: no commitments, no
        // requests.
        ensure!(
            T::Models::commitments(model).is_some(),
            Error::<T>::NoCommitments
        );
        Ok(spec)
    }

    pub(crate) fn do_submit_result(
        who: T::AccountId,
        id: RequestId,
        output: BoundedVec<u8, T::MaxOutputBytes>,
        trace: TraceCommitment,
        output_path: crate::game::PathOf,
    ) -> Result<bool, DispatchError> {
        let now = frame_system::Pallet::<T>::block_number();
        let window_end = now.saturating_add(T::ChallengePeriod::get());
        let deadline = Self::accept_result(&who, id, output, trace, output_path, window_end)?;
        Self::end_assignment(&who, AssignmentEnd::Answered, now);
        // Its execution deadline needs no handling any more (unless it is a batch's).
        let own = Self::unschedule_execution(deadline, id);
        Self::schedule(window_end, id, Deadline::ChallengeWindow);
        Ok(own)
    }

    /// Checks `who`'s result for pending request `id` and records it, its window ending
    /// at `window_end`; returns the request's execution deadline.
    fn accept_result(
        who: &T::AccountId,
        id: RequestId,
        output: BoundedVec<u8, T::MaxOutputBytes>,
        trace: TraceCommitment,
        output_path: crate::game::PathOf,
        window_end: BlockNumberFor<T>,
    ) -> Result<BlockNumberFor<T>, DispatchError> {
        let mut request = Requests::<T>::get(id).ok_or(Error::<T>::UnknownRequest)?;
        let RequestStatus::Pending { deadline } = request.status else {
            return Err(Error::<T>::NotPending.into());
        };
        ensure!(request.executor == *who, Error::<T>::NotAssignedExecutor);
        // The deadline is enforced here, not only by the queue: a queue running behind
        // must not let a late result escape its slash.
        let now = frame_system::Pallet::<T>::block_number();
        ensure!(now < deadline, Error::<T>::ResultTooLate);
        Self::check_output(&request.model, &output)?;
        Self::check_trace(&request.model, &output, &trace, &output_path)?;
        let output_hash = H256(blake2_256(&output));
        request.status = RequestStatus::Submitted { window_end };
        Requests::<T>::insert(id, request);
        Results::<T>::insert(
            id,
            InferenceResult {
                executor: who.clone(),
                output,
                output_hash,
                posted_at: now,
                challenged: false,
            },
        );
        ResultTraces::<T>::insert(id, trace);
        Self::deposit_event(Event::ResultSubmitted {
            id,
            executor: who.clone(),
            output_hash,
            window_end,
        });
        Ok(deadline)
    }

    /// The weight of `submit_results`: per result as benchmarked (small outputs), plus
    /// each output byte at `submit_traced_result`'s cost per byte.
    pub(crate) fn submit_results_weight(
        results: &[crate::pallet::BatchResultOf<T>],
    ) -> frame_support::weights::Weight {
        use crate::WeightInfo;
        let bytes = results
            .iter()
            .fold(0u32, |acc, r| acc.saturating_add(r.1.len() as u32));
        let per_byte = T::WeightInfo::submit_traced_result(bytes)
            .saturating_sub(T::WeightInfo::submit_traced_result(0));
        T::WeightInfo::submit_results(results.len() as u32).saturating_add(per_byte)
    }

    /// Results for several of `who`'s assigned requests at once (`submit_results`), each
    /// checked as [`Self::do_submit_result`] checks one: their windows open together (one
    /// queue entry per run of consecutive ids), `who`'s service is updated once, and the
    /// execution entry of each run they answer whole is removed. Returns whether they
    /// answered whole execution entries only (a batch split over several posts brings
    /// the queue more entries: those posts pay).
    pub(crate) fn do_submit_results(
        who: T::AccountId,
        results: alloc::vec::Vec<crate::pallet::BatchResultOf<T>>,
    ) -> Result<bool, DispatchError> {
        ensure!(!results.is_empty(), Error::<T>::EmptyBatch);
        ensure!(
            results.windows(2).all(|w| w[0].0 < w[1].0),
            Error::<T>::UnsortedResults
        );
        let now = frame_system::Pallet::<T>::block_number();
        let window_end = now.saturating_add(T::ChallengePeriod::get());
        let mut answered = alloc::vec::Vec::with_capacity(results.len());
        for (id, output, trace, output_path) in results {
            let deadline = Self::accept_result(&who, id, output, trace, output_path, window_end)?;
            answered.push((id, deadline));
        }
        Self::end_assignments(&who, AssignmentEnd::Answered, answered.len() as u32, now);
        // An execution entry covering only answered requests needs no handling any more.
        let mut whole = true;
        let mut i = 0;
        while let Some(&(first, deadline)) = answered.get(i) {
            let key = crate::queue::queue_key(first, Deadline::Execution);
            let count = DeadlineQueue::<T>::get(deadline, key)
                .filter(|what| what.kind() == Deadline::Execution)
                .map(|what| what.count() as usize);
            let covered = count.is_some_and(|count| {
                answered.get(i..i + count).is_some_and(|run| {
                    run.iter().enumerate().all(|(k, (id, d))| {
                        *id == first.saturating_add(k as RequestId) && *d == deadline
                    })
                })
            });
            if covered {
                DeadlineQueue::<T>::remove(deadline, key);
            } else {
                whole = false;
            }
            i += count.filter(|_| covered).unwrap_or(1);
        }
        let ids: alloc::vec::Vec<RequestId> = answered.iter().map(|(id, _)| *id).collect();
        Self::schedule_runs(window_end, &ids, Deadline::ChallengeWindow);
        Ok(whole)
    }

    /// The result stands: pay the executor (less the protocol fee, burned) and finalize.
    pub(crate) fn finalize_paid(id: RequestId, now: BlockNumberFor<T>) {
        let (Some(request), Some(result)) = (Requests::<T>::get(id), Results::<T>::get(id)) else {
            log::error!(target: LOG_TARGET, "finalize: request {id} or its result is missing");
            return;
        };
        let cut = T::ProtocolFee::get() * request.fee;
        Self::pay_from_hold(
            HoldReason::RequestFee,
            &request.requester,
            &result.executor,
            request.fee.saturating_sub(cut),
        );
        Self::burn_from_hold(HoldReason::RequestFee, &request.requester, cut);
        Self::remove_obligation(&request.executor);
        Self::mark_finalized(id, request, result.executor, result.output_hash, now);
    }

    /// Records that `request`'s result, computed by `executor`, is final: the request is
    /// settled, its pruning is scheduled and `ResultFinalized` is emitted.
    pub(crate) fn mark_finalized(
        id: RequestId,
        request: crate::pallet::RequestOf<T>,
        executor: T::AccountId,
        output_hash: H256,
        now: BlockNumberFor<T>,
    ) {
        Self::record_finalized(id, request, executor, output_hash, now);
        Self::schedule(
            now.saturating_add(T::ResultRetention::get()),
            id,
            Deadline::Prune,
        );
    }

    /// [`Self::mark_finalized`] but for scheduling the pruning (a span schedules its
    /// requests' together).
    pub(crate) fn record_finalized(
        id: RequestId,
        mut request: crate::pallet::RequestOf<T>,
        executor: T::AccountId,
        output_hash: H256,
        now: BlockNumberFor<T>,
    ) {
        request.status = RequestStatus::Finalized { at: now };
        Requests::<T>::insert(id, request);
        Self::settle_releases(id, true, now);
        Self::deposit_event(Event::ResultFinalized {
            id,
            executor,
            output_hash,
        });
        let used = <T::Observer as crate::RequestObserver>::on_finalized(id);
        ObserverWeight::<T>::mutate(|w| *w = w.saturating_add(used));
    }

    /// Gives the request to another executor, excluding `exclude`, or expires it if
    /// `MaxAttempts` is reached or nobody is left. The current executor's duty ends.
    pub(crate) fn reassign_or_expire(
        id: RequestId,
        exclude: &[T::AccountId],
        now: BlockNumberFor<T>,
    ) {
        let Some(mut request) = Requests::<T>::get(id) else {
            return;
        };
        Self::remove_obligation(&request.executor);
        Results::<T>::remove(id);
        ResultTraces::<T>::remove(id);
        let model_active =
            matches!(T::Models::model(&request.model), Some((_, s)) if s != ModelStatus::Retired);
        let next = if request.attempt < T::MaxAttempts::get() && model_active {
            let attempt = request.attempt.saturating_add(1);
            Self::pick_executor(&request.model, &(b"assign", id, attempt).encode(), exclude)
                .map(|e| (e, attempt))
        } else {
            None
        };
        match next {
            Some((to, attempt)) => {
                let from = core::mem::replace(&mut request.executor, to.clone());
                let deadline = now.saturating_add(T::ExecutionTimeout::get());
                request.attempt = attempt;
                request.status = RequestStatus::Pending { deadline };
                Requests::<T>::insert(id, request);
                Self::add_obligation(&to);
                Self::start_assignment(&to);
                Self::schedule(deadline, id, Deadline::Execution);
                Self::deposit_event(Event::RequestReassigned {
                    id,
                    from,
                    to,
                    attempt,
                });
            }
            None => Self::expire(id, request, now),
        }
    }

    /// Refunds the fee in full and marks the request expired.
    pub(crate) fn expire(
        id: RequestId,
        mut request: crate::pallet::RequestOf<T>,
        now: BlockNumberFor<T>,
    ) {
        Self::release(HoldReason::RequestFee, &request.requester, request.fee);
        request.status = RequestStatus::Expired { at: now };
        let refunded = request.fee;
        Requests::<T>::insert(id, request);
        Self::settle_releases(id, false, now);
        Self::schedule(
            now.saturating_add(T::ResultRetention::get()),
            id,
            Deadline::Prune,
        );
        Self::deposit_event(Event::RequestExpired { id, refunded });
        let used = <T::Observer as crate::RequestObserver>::on_expired(id);
        ObserverWeight::<T>::mutate(|w| *w = w.saturating_add(used));
    }

    /// The assigned executor missed its deadline.
    pub(crate) fn on_execution_deadline(
        id: RequestId,
        at: BlockNumberFor<T>,
        now: BlockNumberFor<T>,
    ) {
        let Some(request) = Requests::<T>::get(id) else {
            return;
        };
        if request.status != (RequestStatus::Pending { deadline: at }) {
            return; // stale entry: the result came in time
        }
        let retired =
            !matches!(T::Models::model(&request.model), Some((_, s)) if s != ModelStatus::Retired);
        // A request taken before requests needed commitments (runtime 100) cannot be
        // answered now (only traced results are): nobody is to blame for it either.
        let unanswerable = T::Models::commitments(&request.model).is_none();
        if retired || unanswerable {
            // Nobody is to blame: the model went away under the request.
            Self::end_assignment(&request.executor, AssignmentEnd::Void, now);
            Self::remove_obligation(&request.executor);
            Self::expire(id, request, now);
            return;
        }
        let slashed = Self::debit_bond(
            &request.executor,
            T::MissedDeadlineSlash::get(),
            SlashReason::MissedDeadline,
            now,
        );
        Self::burn_from_hold(HoldReason::ExecutorBond, &request.executor, slashed);
        Self::end_assignment(
            &request.executor,
            AssignmentEnd::Missed(at.unique_saturated_into()),
            now,
        );
        let exclude = [request.executor.clone()];
        Self::reassign_or_expire(id, &exclude, now);
    }

    /// The challenge window of request `id` ended.
    pub(crate) fn on_window_end(id: RequestId, at: BlockNumberFor<T>, now: BlockNumberFor<T>) {
        let Some(request) = Requests::<T>::get(id) else {
            return;
        };
        if request.status != (RequestStatus::Submitted { window_end: at }) {
            return; // stale entry: settled or reassigned meanwhile
        }
        if Self::open_games(id, request.attempt) > 0 {
            return; // the last game to end in the executor's favour finalizes it
        }
        if !ResultTraces::<T>::contains_key(id) {
            // An untraced result posted before runtime 101 could not be disputed after
            // it: it is not paid for; the request expires with a refund.
            Self::remove_obligation(&request.executor);
            Results::<T>::remove(id);
            Self::expire(id, request, now);
            return;
        }
        Self::finalize_paid(id, now);
    }

    /// Removes a settled request's records.
    pub(crate) fn prune(id: RequestId) {
        let Some(request) = Requests::<T>::get(id).filter(|r| !r.status.holds_fee()) else {
            return;
        };
        Requests::<T>::remove(id);
        Results::<T>::remove(id);
        ResultTraces::<T>::remove(id);
        if ReleasedBy::<T>::contains_key(id) {
            defensive!("a settled request kept its releases");
            ReleasedBy::<T>::remove(id);
        }
        let deposit_returned = RequestDeposits::<T>::take(id).unwrap_or_default();
        if !deposit_returned.is_zero() {
            Self::release(
                HoldReason::StorageDeposit,
                &request.requester,
                deposit_returned,
            );
        }
        Self::deposit_event(Event::RequestPruned {
            id,
            deposit_returned,
        });
    }
}
