//! Governance: the model council.
//!
//! A council (pallet-collective, instance 1) whose members pallet-membership keeps
//! registers, deprecates and retires models and sets their fees by motion: a member
//! proposes the call, members vote, and `close` dispatches it once more than half of the
//! council voted aye. Membership itself changes by two thirds of the council (or Root).
//! Sudo keeps Root on the development chain only (the local testnet's genesis has no
//! sudo key). A runtime upgrade takes two thirds of the council (pallet-upgrades
//! authorizes the code's hash; anyone then applies the code).

use frame_support::{parameter_types, traits::EitherOfDiverse};
use frame_system::EnsureRoot;
use sp_runtime::Perbill;

use super::{RuntimeBlockWeights, MINUTES};
use crate::{AccountId, BlockNumber, Runtime, RuntimeCall, RuntimeEvent, RuntimeOrigin};

/// The model council's instance of pallet-collective.
pub type CouncilInstance = pallet_collective::Instance1;
/// The instance of pallet-membership that keeps the council's members.
pub type CouncilMembershipInstance = pallet_membership::Instance1;

/// More than half of the council, by motion.
pub type CouncilMajority =
    pallet_collective::EnsureProportionMoreThan<AccountId, CouncilInstance, 1, 2>;
/// Root (Sudo on the development chain, or a runtime upgrade's migration) or the council's
/// majority: who registers models and sets their fees and status.
pub type RootOrCouncilMajority = EitherOfDiverse<EnsureRoot<AccountId>, CouncilMajority>;
/// At least two thirds of the council, by motion.
pub type CouncilTwoThirds =
    pallet_collective::EnsureProportionAtLeast<AccountId, CouncilInstance, 2, 3>;
/// Root or two thirds of the council: who authorizes a runtime upgrade (it can change
/// every rule, so it takes more than a bare majority).
pub type RootOrCouncilTwoThirds = EitherOfDiverse<EnsureRoot<AccountId>, CouncilTwoThirds>;

parameter_types! {
    /// How long a motion stays open for votes: 30 minutes of 3-second blocks.
    pub const CouncilMotionDuration: BlockNumber = 30 * MINUTES;
    /// Motions open at once.
    pub const CouncilMaxProposals: u32 = 32;
    /// Council seats.
    pub const CouncilMaxMembers: u32 = 16;
    /// The heaviest call a motion may dispatch: half a block.
    pub CouncilMaxProposalWeight: frame_support::weights::Weight =
        Perbill::from_percent(50) * RuntimeBlockWeights::get().max_block;
}

impl pallet_collective::Config<CouncilInstance> for Runtime {
    type RuntimeOrigin = RuntimeOrigin;
    type Proposal = RuntimeCall;
    type RuntimeEvent = RuntimeEvent;
    type MotionDuration = CouncilMotionDuration;
    type MaxProposals = CouncilMaxProposals;
    type MaxMembers = CouncilMaxMembers;
    /// Members who did not vote by the end count as nay: a motion passes only on ayes
    /// actually cast (with a prime's default vote, one prime's aye plus silence would
    /// carry even a runtime upgrade).
    type DefaultVote = AbstentionsAreNay;
    type WeightInfo = pallet_collective::weights::SubstrateWeight<Runtime>;
    /// Membership goes through pallet-membership, not `set_members` directly.
    type SetMembersOrigin = EnsureRoot<AccountId>;
    type MaxProposalWeight = CouncilMaxProposalWeight;
    type DisapproveOrigin = RootOrCouncilMajority;
    type KillOrigin = RootOrCouncilMajority;
    /// Proposals cost their transaction fee; `MaxProposals` bounds the open ones.
    type Consideration = ();
}

impl pallet_upgrades::Config for Runtime {
    type UpgradeOrigin = RootOrCouncilTwoThirds;
    type WeightInfo = pallet_upgrades::weights::SubstrateWeight<Runtime>;
}

/// Abstentions count as nay, whatever the prime member voted.
pub struct AbstentionsAreNay;
impl pallet_collective::DefaultVote for AbstentionsAreNay {
    fn default_vote(_prime: Option<bool>, _yes: u32, _no: u32, _len: u32) -> bool {
        false
    }
}

/// Membership changes take two thirds, like an upgrade: otherwise a bare majority could
/// remove the others (or reset the council to itself) and then hold two thirds.
impl pallet_membership::Config<CouncilMembershipInstance> for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type AddOrigin = RootOrCouncilTwoThirds;
    type RemoveOrigin = RootOrCouncilTwoThirds;
    type SwapOrigin = RootOrCouncilTwoThirds;
    type ResetOrigin = RootOrCouncilTwoThirds;
    type PrimeOrigin = RootOrCouncilTwoThirds;
    type MembershipInitialized = crate::Council;
    type MembershipChanged = crate::Council;
    type MaxMembers = CouncilMaxMembers;
    type WeightInfo = pallet_membership::weights::SubstrateWeight<Runtime>;
}

/// Batches: a motion that registers a model with its dispute commitments is one
/// `batch_all`, so the council votes once and either both land or neither.
impl pallet_utility::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type RuntimeCall = RuntimeCall;
    type PalletsOrigin = crate::OriginCaller;
    type WeightInfo = pallet_utility::weights::SubstrateWeight<Runtime>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use frame_support::traits::EnsureOrigin;
    use pallet_collective::DefaultVote;

    /// The origin a council motion dispatches with: `yes` ayes of `of` members.
    fn motion(yes: u32, of: u32) -> RuntimeOrigin {
        pallet_collective::RawOrigin::<AccountId, CouncilInstance>::Members(yes, of).into()
    }

    #[test]
    fn upgrades_and_membership_take_two_thirds_and_silence_is_nay() {
        let upgrade =
            |o| <Runtime as pallet_upgrades::Config>::UpgradeOrigin::try_origin(o).is_ok();
        let reset = |o| {
            <Runtime as pallet_membership::Config<CouncilMembershipInstance>>::ResetOrigin::try_origin(o)
                .is_ok()
        };
        let remove = |o| {
            <Runtime as pallet_membership::Config<CouncilMembershipInstance>>::RemoveOrigin::try_origin(o)
                .is_ok()
        };
        assert!(upgrade(motion(2, 3)));
        assert!(upgrade(motion(6, 9)));
        assert!(!upgrade(motion(5, 9)), "a bare majority upgraded");
        // Nor can a bare majority make itself two thirds by changing the members.
        assert!(!reset(motion(5, 9)));
        assert!(!remove(motion(5, 9)));
        assert!(remove(motion(6, 9)));
        // Models, parameters and validators: more than half.
        assert!(RootOrCouncilMajority::try_origin(motion(5, 9)).is_ok());
        assert!(RootOrCouncilMajority::try_origin(motion(4, 9)).is_err());
        // A prime's aye does not turn abstentions into ayes.
        assert!(!AbstentionsAreNay::default_vote(Some(true), 1, 0, 3));
    }
}
