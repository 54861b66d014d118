//! The validator set and its sessions: pallet-validators holds the set governance decides
//! (`RootOrCouncilMajority` adds and removes), pallet-session rotates it in, handing Aura
//! and GRANDPA their new authorities (GRANDPA's set id moves on each change).
//!
//! Sessions rotate on demand ([`SessionRotation`]): every `SessionPeriod` blocks, or at
//! the next `ChangePeriod` boundary while a change is on its way. pallet-session charges a
//! whole block's weight for a rotation, so fixed short sessions would take a block in
//! ten from every user; rotations on demand cost two blocks per validator change.

use frame_support::{
    parameter_types,
    traits::{ConstU32, EstimateNextSessionRotation},
    weights::Weight,
};
use sp_runtime::{
    traits::{ConvertInto, OpaqueKeys},
    Permill,
};

use super::governance::RootOrCouncilMajority;
use crate::{
    AccountId, Balance, Balances, BlockNumber, Runtime, RuntimeEvent, SessionKeys, Validators, UNIT,
};

parameter_types! {
    /// The longest session: one hour of 3-second blocks (session keys a validator
    /// changes take effect at the next rotation).
    pub const SessionPeriod: BlockNumber = 1200;
    /// While a set change is on its way, sessions end at every multiple of this: a change
    /// governance makes is queued at the next boundary and enacted at the one after, so
    /// it takes effect within 20 blocks (one minute).
    pub const ChangePeriod: BlockNumber = 10;
    /// Held from an account while it has session keys registered (`Session::set_keys`):
    /// keys are state anyone could otherwise fill.
    pub const SessionKeyDeposit: Balance = 10 * UNIT;
}

/// The most validators: Aura's and GRANDPA's `MaxAuthorities`.
pub type MaxValidators = ConstU32<32>;

/// Accounts with session keys (pallet-session's `NextKeys`).
pub struct SessionKeysRegistered;

impl frame_support::traits::Contains<AccountId> for SessionKeysRegistered {
    fn contains(who: &AccountId) -> bool {
        // The benchmarks add accounts that cannot hold real keys; the read is still made.
        let registered = pallet_session::NextKeys::<Runtime>::contains_key(who);
        cfg!(feature = "runtime-benchmarks") || registered
    }
}

impl pallet_validators::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type ValidatorOrigin = RootOrCouncilMajority;
    type KeysRegistered = SessionKeysRegistered;
    type MaxValidators = MaxValidators;
    /// The development chain runs one validator.
    type MinValidators = ConstU32<1>;
    type WeightInfo = pallet_validators::weights::SubstrateWeight<Runtime>;
}

impl pallet_session::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type ValidatorId = AccountId;
    type ValidatorIdOf = ConvertInto;
    type ShouldEndSession = SessionRotation;
    type NextSessionRotation = SessionRotation;
    type SessionManager = Validators;
    type SessionHandler = <SessionKeys as OpaqueKeys>::KeyTypeIdProviders;
    type Keys = SessionKeys;
    /// No offence reporting yet: nobody is disabled mid-session.
    type DisablingStrategy = ();
    type WeightInfo = pallet_session::weights::SubstrateWeight<Runtime>;
    type Currency = Balances;
    type KeyDeposit = SessionKeyDeposit;
}

/// Ends a session every `SessionPeriod` blocks, and every `ChangePeriod` blocks while a
/// change governance decided is not validating yet (pallet-validators' own record: a
/// validator's `set_keys`, which sets pallet-session's `QueuedChanged`, does not count,
/// so no validator can force short sessions; key changes wait for the hourly rotation).
pub struct SessionRotation;

impl SessionRotation {
    fn change_pending() -> bool {
        pallet_validators::Pallet::<Runtime>::change_pending()
    }
}

impl pallet_session::ShouldEndSession<BlockNumber> for SessionRotation {
    fn should_end_session(now: BlockNumber) -> bool {
        now.is_multiple_of(SessionPeriod::get())
            || (now.is_multiple_of(ChangePeriod::get()) && Self::change_pending())
    }
}

impl EstimateNextSessionRotation<BlockNumber> for SessionRotation {
    fn average_session_length() -> BlockNumber {
        SessionPeriod::get()
    }

    fn estimate_current_session_progress(now: BlockNumber) -> (Option<Permill>, Weight) {
        // Against the longest session; a pending change may end it sooner.
        let period = SessionPeriod::get();
        (
            Some(Permill::from_rational(now % period + 1, period)),
            Weight::zero(),
        )
    }

    fn estimate_next_session_rotation(now: BlockNumber) -> (Option<BlockNumber>, Weight) {
        let period = if Self::change_pending() {
            ChangePeriod::get()
        } else {
            SessionPeriod::get()
        };
        let next = now.saturating_add(period - now % period);
        (
            Some(next),
            <Runtime as frame_system::Config>::DbWeight::get().reads(2),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pallet_session::ShouldEndSession;
    use sp_runtime::BuildStorage;

    fn ext() -> sp_io::TestExternalities {
        frame_system::GenesisConfig::<Runtime>::default()
            .build_storage()
            .expect("system genesis builds")
            .into()
    }

    #[test]
    fn sessions_rotate_hourly_and_at_the_next_short_boundary_while_a_change_is_pending() {
        ext().execute_with(|| {
            let ends = |n| SessionRotation::should_end_session(n);
            // Nothing pending: only the hourly rotation (each costs a block's weight).
            assert!((1..SessionPeriod::get()).all(|n| !ends(n)));
            assert!(ends(SessionPeriod::get()));
            assert_eq!(
                SessionRotation::estimate_next_session_rotation(5).0,
                Some(SessionPeriod::get())
            );
            // Governance changed the set: the next two short boundaries end sessions
            // (queue, then enact), and no other block does.
            pallet_validators::Changed::<Runtime>::put(true);
            assert!(!ends(ChangePeriod::get() - 1));
            assert!(ends(ChangePeriod::get()));
            assert_eq!(
                SessionRotation::estimate_next_session_rotation(5).0,
                Some(ChangePeriod::get())
            );
            pallet_validators::Changed::<Runtime>::put(false);
            pallet_validators::Planned::<Runtime>::put(2);
            assert!(ends(2 * ChangePeriod::get()));
            pallet_validators::Planned::<Runtime>::kill();
            // A validator's new keys (pallet-session's QueuedChanged) force nothing.
            pallet_session::QueuedChanged::<Runtime>::put(true);
            assert!(!ends(3 * ChangePeriod::get()));
        });
    }
}
