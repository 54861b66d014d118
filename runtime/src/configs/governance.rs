//! Governance: the model council.
//!
//! A council (pallet-collective, instance 1) whose members pallet-membership keeps
//! registers, deprecates and retires models and sets their fees by motion: a member
//! proposes the call, members vote, and `close` dispatches it once more than half of the
//! council voted aye. Membership itself changes by the council's own majority (or Root).
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
    /// Members who did not vote by the end count as voting with the prime member (none
    /// unless one is set): abstention is not a veto.
    type DefaultVote = pallet_collective::PrimeDefaultVote;
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

impl pallet_membership::Config<CouncilMembershipInstance> for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type AddOrigin = RootOrCouncilMajority;
    type RemoveOrigin = RootOrCouncilMajority;
    type SwapOrigin = RootOrCouncilMajority;
    type ResetOrigin = RootOrCouncilMajority;
    type PrimeOrigin = RootOrCouncilMajority;
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
