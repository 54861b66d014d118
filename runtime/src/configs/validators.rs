//! The validator set and its sessions: pallet-validators holds the set governance decides
//! (`RootOrCouncilMajority` adds and removes), pallet-session rotates it in, handing BABE
//! and GRANDPA their new authorities (GRANDPA's set id moves on each change).
//!
//! Sessions end only at BABE epoch boundaries (every 10 slots), and only where one is due
//! ([`rotation_due`]): every `EPOCHS_PER_SESSION` epochs (an hour), or while a change
//! governance made is on its way. pallet-session charges a whole block's weight for a
//! rotation, so a session per epoch would take a block in ten from every user; rotations
//! on demand cost two blocks per validator change. `consensus::EpochsBetweenSessions`
//! starts the epochs no session ends at.

use frame_support::{
    parameter_types,
    traits::{ConstU32, EstimateNextSessionRotation, Get},
    weights::Weight,
};
use sp_runtime::{
    traits::{ConvertInto, OpaqueKeys},
    Permill,
};

use super::{consensus, governance::RootOrCouncilMajority};
use crate::{
    AccountId, Babe, Balance, Balances, BlockNumber, Runtime, RuntimeEvent, SessionKeys,
    Validators, EPOCH_DURATION_IN_SLOTS, UNIT,
};

/// Epochs per session when nothing is pending: an hour of 30-second epochs (session keys
/// a validator changes take effect at the next rotation).
pub const EPOCHS_PER_SESSION: u64 = 120;

parameter_types! {
    /// Held from an account while it has session keys registered (`Session::set_keys`):
    /// keys are state anyone could otherwise fill.
    pub const SessionKeyDeposit: Balance = 10 * UNIT;
}

/// The most validators: BABE's and GRANDPA's `MaxAuthorities`.
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
    /// BABE's: a session ends at an epoch boundary, unless `EpochsBetweenSessions` (which
    /// runs first) started that epoch because no rotation was due.
    type ShouldEndSession = Babe;
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

/// Whether the epoch boundary in this block ends a session: when a change governance
/// decided is not validating yet (pallet-validators' own record: queued at one boundary,
/// enacted at the next), or when the boundary crosses into a new hour of epochs. A
/// validator's `set_keys` does not count, so no validator can force short sessions; new
/// keys wait for the hourly rotation.
///
/// A rotation is also put off while it would queue nobody: pallet-session re-queues the
/// validators whose keys are still registered, and if every one had purged its keys,
/// BABE would announce an epoch nobody can author and the chain would halt for good.
pub fn rotation_due() -> bool {
    let due = pallet_validators::Pallet::<Runtime>::change_pending()
        || consensus::epoch_starting_now() / EPOCHS_PER_SESSION
            != consensus::current_epoch_index() / EPOCHS_PER_SESSION;
    due && rotation_queues_someone()
}

/// Whether a rotation now would queue at least one validator with keys: the set
/// governance changed (handed over only with at least `MinValidators` keyed, else
/// withheld), or else the validators queued now, those that still have keys.
fn rotation_queues_someone() -> bool {
    let keyed = |v: &AccountId| pallet_session::NextKeys::<Runtime>::contains_key(v);
    let handed_over = pallet_validators::Changed::<Runtime>::get() && {
        let set = pallet_validators::Validators::<Runtime>::get();
        let count = set.iter().filter(|v| keyed(v)).count() as u32;
        count > 0 && count >= <Runtime as pallet_validators::Config>::MinValidators::get()
    };
    handed_over
        || pallet_session::QueuedKeys::<Runtime>::get()
            .iter()
            .any(|(v, _)| keyed(v))
}

/// Estimates for pallet-session's users (none in this runtime yet): the next epoch
/// boundary while a change is pending, else the next hourly one. Slots without a block
/// make these upper bounds.
pub struct SessionRotation;

impl SessionRotation {
    const SESSION_SLOTS: u64 = EPOCHS_PER_SESSION * EPOCH_DURATION_IN_SLOTS;

    /// Slots since the chain's first slot.
    fn slots_elapsed() -> u64 {
        let slot = *pallet_babe::CurrentSlot::<Runtime>::get();
        slot.saturating_sub(*pallet_babe::GenesisSlot::<Runtime>::get())
    }
}

impl EstimateNextSessionRotation<BlockNumber> for SessionRotation {
    fn average_session_length() -> BlockNumber {
        Self::SESSION_SLOTS as BlockNumber
    }

    fn estimate_current_session_progress(_now: BlockNumber) -> (Option<Permill>, Weight) {
        // Against the hourly session; a pending change may end it sooner.
        let into = Self::slots_elapsed() % Self::SESSION_SLOTS;
        (
            Some(Permill::from_rational(into + 1, Self::SESSION_SLOTS)),
            <Runtime as frame_system::Config>::DbWeight::get().reads(2),
        )
    }

    fn estimate_next_session_rotation(now: BlockNumber) -> (Option<BlockNumber>, Weight) {
        let period = if pallet_validators::Pallet::<Runtime>::change_pending() {
            EPOCH_DURATION_IN_SLOTS
        } else {
            Self::SESSION_SLOTS
        };
        let slots_left = period - Self::slots_elapsed() % period;
        (
            Some(now.saturating_add(slots_left as BlockNumber)),
            <Runtime as frame_system::Config>::DbWeight::get().reads(4),
        )
    }
}
