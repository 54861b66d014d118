//! Challenges, jury votes (commit, then reveal) and verdicts, with their slashes.

use crate::{
    pallet::*, Ballot, Deadline, Dispute, Judgement, RequestStatus, Verdict, Vote, LOG_TARGET,
};
use alloc::vec::Vec;
use codec::Encode;
use frame_support::pallet_prelude::*;
use frame_system::pallet_prelude::BlockNumberFor;
use inferchain_primitives::{blake2_256, RequestId, H256};
use sp_runtime::traits::{Saturating, Zero};

/// One slash taken in a dispute: `amount` was taken from `from`'s `hold`, of which
/// `left` is still there to pay the jury's share from (the rest of it is burned).
struct Slash<T: Config> {
    from: T::AccountId,
    hold: HoldReason,
    amount: BalanceOf<T>,
    left: BalanceOf<T>,
}

/// The commitment a juror sends for `vote` with `salt`.
pub fn vote_commitment<AccountId: Encode>(
    id: RequestId,
    juror: &AccountId,
    vote: &Vote,
    salt: &[u8; 32],
) -> H256 {
    H256(blake2_256(&(id, juror, vote, salt).encode()))
}

impl<T: Config> Pallet<T> {
    pub(crate) fn do_challenge(
        who: T::AccountId,
        id: RequestId,
        output: BoundedVec<u8, T::MaxOutputBytes>,
    ) -> DispatchResult {
        let mut request = Requests::<T>::get(id).ok_or(Error::<T>::UnknownRequest)?;
        ensure!(
            matches!(request.status, RequestStatus::Submitted { .. }),
            Error::<T>::NotChallengeable
        );
        let result = Results::<T>::get(id).ok_or(Error::<T>::NotChallengeable)?;
        ensure!(who != result.executor, Error::<T>::CannotChallengeSelf);
        ensure!(
            ActiveExecutors::<T>::get().contains(&who),
            Error::<T>::NotActiveExecutor
        );
        ensure!(output != result.output, Error::<T>::SameOutput);
        Self::check_output(&request.model, &output)?;
        // A result posted with a trace is disputed by games only (a result posted before
        // its model's commitments were set keeps the jury).
        ensure!(!ResultTraces::<T>::contains_key(id), Error::<T>::UseGame);

        let jury = Self::draw_jury(
            &(b"jury", id).encode(),
            &[who.clone(), result.executor.clone()],
            T::JurySize::get(),
        )
        .ok_or(Error::<T>::NotEnoughJurors)?;
        Self::hold(HoldReason::ChallengeBond, &who, T::ChallengeBond::get())?;

        let now = frame_system::Pallet::<T>::block_number();
        let commit_end = now.saturating_add(T::CommitPeriod::get());
        let reveal_end = commit_end.saturating_add(T::RevealPeriod::get());
        let seats: BoundedVec<(T::AccountId, Ballot), T::JurySize> = jury
            .iter()
            .map(|j| (j.clone(), Ballot::Waiting))
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|_| Error::<T>::NotEnoughJurors)?;
        let named: BoundedVec<T::AccountId, T::JurySize> = jury
            .clone()
            .try_into()
            .map_err(|_| Error::<T>::NotEnoughJurors)?;

        Self::add_obligation(&who);
        for juror in &jury {
            Self::add_obligation(juror);
        }
        Disputes::<T>::insert(
            id,
            Dispute {
                challenger: who.clone(),
                challenger_output: output,
                jury: seats,
                commit_end,
                reveal_end,
            },
        );
        request.status = RequestStatus::Disputed;
        Requests::<T>::insert(id, request);
        Self::schedule(reveal_end, id, Deadline::Reveal);
        Self::deposit_event(Event::Challenged {
            id,
            challenger: who,
            jury: named,
        });
        Ok(())
    }

    pub(crate) fn do_commit_vote(
        who: T::AccountId,
        id: RequestId,
        commitment: H256,
    ) -> DispatchResult {
        Disputes::<T>::try_mutate(id, |maybe| -> DispatchResult {
            let dispute = maybe.as_mut().ok_or(Error::<T>::NoDispute)?;
            let now = frame_system::Pallet::<T>::block_number();
            ensure!(now <= dispute.commit_end, Error::<T>::WrongPhase);
            let seat = dispute
                .jury
                .iter_mut()
                .find(|(j, _)| *j == who)
                .ok_or(Error::<T>::NotJuror)?;
            ensure!(seat.1 == Ballot::Waiting, Error::<T>::AlreadyVoted);
            seat.1 = Ballot::Committed(commitment);
            Ok(())
        })?;
        Self::deposit_event(Event::VoteCommitted { id, juror: who });
        Ok(())
    }

    pub(crate) fn do_reveal_vote(
        who: T::AccountId,
        id: RequestId,
        vote: Vote,
        salt: [u8; 32],
    ) -> DispatchResult {
        let now = frame_system::Pallet::<T>::block_number();
        let all_revealed = Disputes::<T>::try_mutate(id, |maybe| -> Result<bool, DispatchError> {
            let dispute = maybe.as_mut().ok_or(Error::<T>::NoDispute)?;
            ensure!(
                now > dispute.commit_end && now <= dispute.reveal_end,
                Error::<T>::WrongPhase
            );
            let seat = dispute
                .jury
                .iter_mut()
                .find(|(j, _)| *j == who)
                .ok_or(Error::<T>::NotJuror)?;
            let commitment = match seat.1 {
                Ballot::Committed(c) => c,
                Ballot::Revealed(_) => return Err(Error::<T>::AlreadyVoted.into()),
                Ballot::Waiting => return Err(Error::<T>::NotCommitted.into()),
            };
            ensure!(
                vote_commitment(id, &who, &vote, &salt) == commitment,
                Error::<T>::BadReveal
            );
            seat.1 = Ballot::Revealed(vote);
            Ok(dispute
                .jury
                .iter()
                .all(|(_, b)| matches!(b, Ballot::Revealed(_))))
        })?;
        Self::deposit_event(Event::VoteRevealed {
            id,
            juror: who,
            vote,
        });
        if all_revealed {
            Self::resolve(id, now);
        }
        Ok(())
    }

    /// The reveal period of request `id`'s dispute ended.
    pub(crate) fn on_reveal_end(id: RequestId, at: BlockNumberFor<T>, now: BlockNumberFor<T>) {
        let live = Disputes::<T>::get(id).is_some_and(|d| d.reveal_end == at);
        if live {
            Self::resolve(id, now);
        }
    }

    /// Counts the revealed votes of a jury of `jury_size` into a verdict.
    ///
    /// Quorum: more than half of the jury revealed, else both sides are `Unclear`. Each
    /// side is `Right` or `Wrong` by a strict majority of the revealed votes; a tie is
    /// `Unclear` (it convicts nobody and confirms nothing).
    pub fn verdict(jury_size: u32, votes: &[Vote]) -> Verdict {
        let revealed = votes.len() as u32;
        if revealed.saturating_mul(2) <= jury_size {
            return Verdict {
                executor: Judgement::Unclear,
                challenger: Judgement::Unclear,
            };
        }
        let judge = |ok: u32| {
            let not_ok = revealed.saturating_sub(ok);
            if ok.saturating_mul(2) > revealed {
                Judgement::Right
            } else if not_ok.saturating_mul(2) > revealed {
                Judgement::Wrong
            } else {
                Judgement::Unclear
            }
        };
        Verdict {
            executor: judge(votes.iter().filter(|v| v.executor_ok).count() as u32),
            challenger: judge(votes.iter().filter(|v| v.challenger_ok).count() as u32),
        }
    }

    /// Whether a juror's vote agrees with every side the jury found clearly.
    fn with_majority(vote: &Vote, verdict: &Verdict) -> bool {
        let agrees = |ok: bool, j: Judgement| match j {
            Judgement::Right => ok,
            Judgement::Wrong => !ok,
            Judgement::Unclear => true,
        };
        let clear =
            verdict.executor != Judgement::Unclear || verdict.challenger != Judgement::Unclear;
        clear
            && agrees(vote.executor_ok, verdict.executor)
            && agrees(vote.challenger_ok, verdict.challenger)
    }

    /// Decides the dispute on request `id`, moves the funds and settles the request:
    ///
    /// * each side found `Wrong` is slashed (executor: `ResultSlash` from its bond;
    ///   challenger: its `ChallengeBond`); a side not found wrong loses nothing;
    /// * executor `Right`: its result is final and paid;
    /// * otherwise challenger `Right`: the requester is refunded and the challenger's
    ///   output is final;
    /// * otherwise the request is reassigned to an executor other than the two parties
    ///   (or expires with a refund after `MaxAttempts`).
    pub(crate) fn resolve(id: RequestId, now: BlockNumberFor<T>) {
        let (Some(dispute), Some(request), Some(result)) = (
            Disputes::<T>::take(id),
            Requests::<T>::get(id),
            Results::<T>::get(id),
        ) else {
            log::error!(target: LOG_TARGET, "resolve: records of request {id} are missing");
            return;
        };
        let votes: Vec<Vote> = dispute
            .jury
            .iter()
            .filter_map(|(_, b)| {
                if let Ballot::Revealed(v) = b {
                    Some(*v)
                } else {
                    None
                }
            })
            .collect();
        let verdict = Self::verdict(dispute.jury.len() as u32, &votes);
        let majority: Vec<T::AccountId> = dispute
            .jury
            .iter()
            .filter(|(_, b)| matches!(b, Ballot::Revealed(v) if Self::with_majority(v, &verdict)))
            .map(|(j, _)| j.clone())
            .collect();
        // Everything slashed in this dispute. The jury's share of each slash is paid out
        // of what is left of it on hold and the rest is burned.
        let mut slashed: Vec<Slash<T>> = Vec::new();

        for (juror, ballot) in dispute.jury.iter() {
            Self::remove_obligation(juror);
            if !matches!(ballot, Ballot::Revealed(_)) {
                let taken = Self::debit_bond(
                    juror,
                    T::MissedVoteSlash::get(),
                    SlashReason::MissedVote,
                    now,
                );
                slashed.push(Slash {
                    from: juror.clone(),
                    hold: HoldReason::ExecutorBond,
                    amount: taken,
                    left: taken,
                });
            }
        }
        Self::remove_obligation(&dispute.challenger);

        if verdict.challenger == Judgement::Wrong {
            let bond = T::ChallengeBond::get()
                .min(Self::held(HoldReason::ChallengeBond, &dispute.challenger));
            Self::deposit_event(Event::Slashed {
                who: dispute.challenger.clone(),
                amount: bond,
                reason: SlashReason::WrongChallenge,
            });
            slashed.push(Slash {
                from: dispute.challenger.clone(),
                hold: HoldReason::ChallengeBond,
                amount: bond,
                left: bond,
            });
        } else {
            Self::release(
                HoldReason::ChallengeBond,
                &dispute.challenger,
                T::ChallengeBond::get(),
            );
        }
        if verdict.executor == Judgement::Wrong {
            let taken = Self::debit_bond(
                &result.executor,
                T::ResultSlash::get(),
                SlashReason::WrongResult,
                now,
            );
            let mut rest = taken;
            if verdict.challenger == Judgement::Right {
                let to_challenger = T::ChallengeReward::get() * taken;
                Self::pay_from_hold(
                    HoldReason::ExecutorBond,
                    &result.executor,
                    &dispute.challenger,
                    to_challenger,
                );
                rest = rest.saturating_sub(to_challenger);
            }
            let to_requester = T::RequesterCompensation::get() * taken;
            Self::pay_from_hold(
                HoldReason::ExecutorBond,
                &result.executor,
                &request.requester,
                to_requester,
            );
            rest = rest.saturating_sub(to_requester);
            slashed.push(Slash {
                from: result.executor.clone(),
                hold: HoldReason::ExecutorBond,
                amount: taken,
                left: rest,
            });
        }

        for Slash {
            from,
            hold: reason,
            amount,
            left,
        } in slashed
        {
            let pot = (T::JuryReward::get() * amount).min(left);
            let mut paid = BalanceOf::<T>::zero();
            if !majority.is_empty() {
                let each = pot / BalanceOf::<T>::from(majority.len() as u32);
                for juror in &majority {
                    Self::pay_from_hold(reason, &from, juror, each);
                    paid = paid.saturating_add(each);
                }
            }
            Self::burn_from_hold(reason, &from, left.saturating_sub(paid));
        }

        Self::deposit_event(Event::DisputeResolved { id, verdict });
        if verdict.executor == Judgement::Right {
            Results::<T>::mutate(id, |r| {
                if let Some(r) = r {
                    r.challenged = true;
                }
            });
            Self::finalize_paid(id, now);
        } else if verdict.challenger == Judgement::Right {
            Self::replace_with_challenger(id, request, dispute, now);
        } else {
            let exclude = [result.executor.clone(), dispute.challenger.clone()];
            Self::reassign_or_expire(id, &exclude, now);
        }
    }

    /// The executor was wrong and the challenger right: refund the requester in full and
    /// make the challenger's output the final result.
    fn replace_with_challenger(
        id: RequestId,
        request: crate::pallet::RequestOf<T>,
        dispute: crate::pallet::DisputeOf<T>,
        now: BlockNumberFor<T>,
    ) {
        Self::release(HoldReason::RequestFee, &request.requester, request.fee);
        Self::remove_obligation(&request.executor);
        let output_hash = H256(blake2_256(&dispute.challenger_output));
        Results::<T>::insert(
            id,
            crate::InferenceResult {
                executor: dispute.challenger.clone(),
                output: dispute.challenger_output,
                output_hash,
                posted_at: now,
                challenged: true,
            },
        );
        Self::mark_finalized(id, request, dispute.challenger, output_hash, now);
    }
}
