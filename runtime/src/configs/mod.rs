//! Configuration of every pallet in the runtime. Each parameter of the protocol lives
//! here as a `Config` constant, or (the ones governance tunes) in `protocol_params`,
//! never as a literal inside a pallet.

use codec::Encode;
use frame_support::{
    derive_impl,
    dispatch::DispatchClass,
    parameter_types,
    traits::{ConstU128, ConstU32, ConstU64, ConstU8, VariantCountOf},
    weights::{
        constants::{ParityDbWeight, WEIGHT_REF_TIME_PER_SECOND},
        IdentityFee, Weight,
    },
};
use frame_system::limits::{BlockLength, BlockWeights};
use inferchain_primitives::model::ModelCost;
use pallet_transaction_payment::{FungibleAdapter, Multiplier};
use sp_runtime::{
    traits::{One, Verify},
    transaction_validity::TransactionPriority,
    FixedPointNumber, Perbill, Perquintill,
};
use sp_version::RuntimeVersion;

use super::{
    AccountId, Babe, Balance, Balances, Block, BlockNumber, Hash, Memory, Models, Nonce,
    PalletInfo, Runtime, RuntimeCall, RuntimeEvent, RuntimeFreezeReason, RuntimeHoldReason,
    RuntimeOrigin, RuntimeTask, Signature, SignedPayload, System, TxExtension, UncheckedExtrinsic,
    EXISTENTIAL_DEPOSIT, MINUTES, SLOT_DURATION, UNIT, VERSION,
};

pub mod consensus;
pub mod governance;
pub mod protocol_params;
pub mod validators;

pub use protocol_params::{
    ChallengePeriod, ChallengeReward, DepositPerByte, ExecutionTimeout, MaxMissedInRow,
    MaxOffchainRuns, MinExecutorBond, MissedDeadlineSlash, MoveTimeout, OffchainRetryBlocks,
    OffchainTimeBudget, ProtocolFee, ReleaseSlash, RequestDepositBase, RequesterCompensation,
    ResultRetention, ResultSlash, UnbondingPeriod, WatchShare,
};

const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);

parameter_types! {
    pub const BlockHashCount: BlockNumber = 2400;
    pub const Version: RuntimeVersion = VERSION;
    /// One second of compute in a three-second block.
    pub RuntimeBlockWeights: BlockWeights = BlockWeights::with_sensible_defaults(
        Weight::from_parts(WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
        NORMAL_DISPATCH_RATIO,
    );
    /// 5 MiB per block, of which normal extrinsics may fill 75%.
    pub RuntimeBlockLength: BlockLength = BlockLength::builder()
        .max_length(5 * 1024 * 1024)
        .modify_max_length_for_class(DispatchClass::Normal, |m| *m = NORMAL_DISPATCH_RATIO * *m)
        .build();
    pub const SS58Prefix: u8 = 42;
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
    type Block = Block;
    type BlockWeights = RuntimeBlockWeights;
    type BlockLength = RuntimeBlockLength;
    type AccountId = AccountId;
    type Nonce = Nonce;
    type Hash = Hash;
    type BlockHashCount = BlockHashCount;
    /// The node's only database is ParityDB.
    type DbWeight = ParityDbWeight;
    type Version = Version;
    type AccountData = pallet_balances::AccountData<Balance>;
    type SS58Prefix = SS58Prefix;
    type MaxConsumers = ConstU32<16>;
}

impl pallet_grandpa::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type WeightInfo = ();
    type MaxAuthorities = ConstU32<32>;
    type MaxNominators = ConstU32<0>;
    type MaxSetIdSessionEntries = ConstU64<0>;
    type KeyOwnerProof = sp_core::Void;
    type EquivocationReportSystem = ();
}

impl pallet_timestamp::Config for Runtime {
    type Moment = u64;
    /// BABE checks each block's timestamp against its slot (slot = MinimumPeriod × 2).
    type OnTimestampSet = Babe;
    type MinimumPeriod = ConstU64<{ SLOT_DURATION / 2 }>;
    type WeightInfo = ();
}

impl pallet_balances::Config for Runtime {
    type MaxLocks = ConstU32<50>;
    type MaxReserves = ();
    type ReserveIdentifier = [u8; 8];
    type Balance = Balance;
    type RuntimeEvent = RuntimeEvent;
    type DustRemoval = ();
    type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
    type AccountStore = System;
    type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
    type FreezeIdentifier = RuntimeFreezeReason;
    type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
    type RuntimeHoldReason = RuntimeHoldReason;
    type RuntimeFreezeReason = RuntimeFreezeReason;
    type DoneSlashHandler = ();
}

parameter_types! {
    /// Fees rise while blocks are fuller than a quarter of their normal class (weight or
    /// length, `fee_adjustment`), and fall back (never below the base fee) when emptier.
    pub const TargetBlockFullness: Perquintill = Perquintill::from_percent(25);
    /// One micro-INFER per byte of a transaction, times the fee multiplier: a block
    /// filled by length (3.75 MiB of normal extrinsics) costs ~3.9 INFER at the base fee.
    pub const TransactionByteFee: Balance = UNIT / 1_000_000;
    /// A full block raises the multiplier by ~0.23%: about x2 after 310 full blocks (16
    /// minutes), x256 (the maximum) after about 2,500 (2 hours) of sustained stuffing.
    pub AdjustmentVariable: Multiplier = Multiplier::saturating_from_rational(3, 1_000);
    pub MinimumMultiplier: Multiplier = Multiplier::one();
    /// At most 256x the base fee: a full block of spam then costs ~1,000 INFER, and the
    /// upfront fee of the largest protocol move (a 320 KiB step proof, refunded when it
    /// succeeds) stays under ~90 INFER.
    pub MaximumMultiplier: Multiplier = Multiplier::saturating_from_integer(256);
}

impl pallet_transaction_payment::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type OnChargeTransaction = FungibleAdapter<Balances, ()>;
    type OperationalFeeMultiplier = ConstU8<5>;
    type WeightToFee = IdentityFee<Balance>;
    type LengthToFee = crate::fee_adjustment::LengthFeeByLoad;
    type FeeMultiplierUpdate = crate::fee_adjustment::LoadFeeAdjustment;
    type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type RuntimeCall = RuntimeCall;
    type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

// ---------------------------------------------------------------- inferchain pallets

parameter_types! {
    /// The most models the registry holds.
    pub const MaxModels: u32 = 1_024;
    /// The largest request input any model may declare: 64 KiB.
    pub const MaxInputBytes: u32 = 64 * 1024;
    /// The largest result output any model may declare: 64 KiB.
    pub const MaxOutputBytes: u32 = 64 * 1024;
    /// The most one request may cost an executor: the floor every executor's hardware
    /// and limits must meet. 50 GFLOP keeps the node's 9 s run deadline met down to
    /// 5.6 GFLOP/s, a wide margin: the 2-core reference machine runs MiniLM's 2.9 GFLOP
    /// in 10.7 ms (267 GFLOP/s, docs/ENGINE.md), so slower CPUs and operators far less
    /// efficient than matrix products still fit. 6 GiB at the peak fits the node's
    /// default 8 GiB worker cap with 2 GiB left for the process and operators' scratch
    /// space. Models are registered only within it, and requests are refused beyond it.
    pub const MaxModelCost: ModelCost = ModelCost {
        flops: 50_000_000_000,
        peak_memory_bytes: 6 << 30,
    };
}

impl pallet_models::Config for Runtime {
    type Balance = Balance;
    /// Root (Sudo, on the development chain only) or the model council's majority.
    type RegisterOrigin = governance::RootOrCouncilMajority;
    type MaxModels = MaxModels;
    type MaxInputBytes = MaxInputBytes;
    type MaxOutputBytes = MaxOutputBytes;
    type MaxModelCost = MaxModelCost;
    type WeightInfo = pallet_models::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
    pub const MaxAttempts: u32 = 3;
    /// A constant, not yet a governed parameter (each game records the bond it holds, so
    /// a change would not unbalance open games).
    pub const ChallengeBond: Balance = 50 * UNIT;
    pub const MaxExecutors: u32 = 128;
    /// The deadline queue's budget per block: at most this many entries, and no more
    /// work than this many single entries weigh (~750 ms; game deadlines get a quarter
    /// as much again). That covers what a full block of requests brings it over their
    /// lives, in every mix of batches and single requests, even if every executor
    /// misses every one (each assignment's missed execution deadlines, at most
    /// `MaxAttempts`, then its pruning); with room to start the largest span. So full
    /// blocks never grow a backlog; tested from the weights with the block's other work
    /// (`block_capacity`).
    pub const MaxDeadlinesPerBlock: u32 = 1_376;
    /// A one-step proof: the referee's operand cap (256 KiB) plus the step descriptor
    /// and the Merkle paths.
    pub const MaxStepProofBytes: u32 = inferchain_referee::MAX_OPERAND_BYTES as u32 + 64 * 1024;
    /// A due protocol move's pool priority: half the range, so that a tip (scaled by
    /// ChargeTransactionPayment by the transactions per block) outbids it only at
    /// thousands of INFER per transaction.
    pub const DutyPriority: TransactionPriority = TransactionPriority::MAX / 2;
    /// A batch carries at most 128 inputs.
    pub const MaxBatchSize: u32 = 128;
    /// A block's request slots: eight full batches (1,024 requests), or 100 single
    /// requests, or any mix. A batch's requests share their draw and their queue
    /// entries (`spans.rs` in pallet-inference), so each costs its own records only
    /// (one slot), and an assignment (a single request or a batch) costs about ten
    /// requests of a batch (`SlotsPerAssignment`). What a full block brings, block after
    /// block (its requests, their results and the queue's work over their lives, even if
    /// every executor misses every one and every pool update is the costliest), fits in
    /// a block, in every mix (`block_capacity` tests it from the weights).
    pub const MaxRequestSlotsPerBlock: u32 = 8 * (128 + 10);
    pub const SlotsPerAssignment: u32 = 10;
    /// An executor declares at most 16 models it serves.
    pub const MaxServedModels: u32 = 16;
}

impl pallet_inference::Config for Runtime {
    type AuthorityId = pallet_inference::offchain::crypto::ExecutorAuthId;
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type Models = Models;
    type Randomness = consensus::DrawRandomness;
    type MinExecutorBond = MinExecutorBond;
    type UnbondingPeriod = UnbondingPeriod;
    type ExecutionTimeout = ExecutionTimeout;
    type ChallengePeriod = ChallengePeriod;
    type MaxAttempts = MaxAttempts;
    type MissedDeadlineSlash = MissedDeadlineSlash;
    type ResultSlash = ResultSlash;
    type ChallengeBond = ChallengeBond;
    type ChallengeReward = ChallengeReward;
    type RequesterCompensation = RequesterCompensation;
    type ProtocolFee = ProtocolFee;
    type MaxExecutors = MaxExecutors;
    type MaxInputBytes = MaxInputBytes;
    type MaxOutputBytes = MaxOutputBytes;
    type ResultRetention = ResultRetention;
    type MaxDeadlinesPerBlock = MaxDeadlinesPerBlock;
    type MaxOffchainRuns = MaxOffchainRuns;
    type OffchainTimeBudget = OffchainTimeBudget;
    type WatchShare = WatchShare;
    type OffchainRetryBlocks = OffchainRetryBlocks;
    type Referee = inferchain_referee::KernelReferee;
    type MoveTimeout = MoveTimeout;
    type MaxStepProofBytes = MaxStepProofBytes;
    type DutyPriority = DutyPriority;
    type ReleaseSlash = ReleaseSlash;
    type MaxBatchSize = MaxBatchSize;
    type MaxRequestCost = MaxModelCost;
    type MaxRequestSlotsPerBlock = MaxRequestSlotsPerBlock;
    type SlotsPerAssignment = SlotsPerAssignment;
    type MaxServedModels = MaxServedModels;
    type MaxMissedInRow = MaxMissedInRow;
    type RequestDepositBase = RequestDepositBase;
    type DepositPerByte = DepositPerByte;
    type Observer = Memory;
    type WeightInfo = pallet_inference::weights::SubstrateWeight<Runtime>;
}

// ------------------------------------------------------- off-chain worker transactions

impl frame_system::offchain::SigningTypes for Runtime {
    type Public = <Signature as Verify>::Signer;
    type Signature = Signature;
}

impl<LocalCall> frame_system::offchain::CreateTransactionBase<LocalCall> for Runtime
where
    RuntimeCall: From<LocalCall>,
{
    type Extrinsic = UncheckedExtrinsic;
    type RuntimeCall = RuntimeCall;
}

impl<LocalCall> frame_system::offchain::CreateSignedTransaction<LocalCall> for Runtime
where
    RuntimeCall: From<LocalCall>,
{
    /// Signs `call` as `account` with the extensions every signed extrinsic carries,
    /// mortal for `BlockHashCount` blocks and without tip.
    fn create_signed_transaction<
        C: frame_system::offchain::AppCrypto<Self::Public, Self::Signature>,
    >(
        call: RuntimeCall,
        public: <Signature as Verify>::Signer,
        account: AccountId,
        nonce: Nonce,
    ) -> Option<UncheckedExtrinsic> {
        use sp_runtime::{generic::Era, traits::StaticLookup, SaturatedConversion};
        let period = u64::from(BlockHashCount::get())
            .checked_next_power_of_two()
            .map(|p| p / 2)
            .unwrap_or(2);
        let current = System::block_number()
            .saturated_into::<u64>()
            .saturating_sub(1);
        let extension: TxExtension = (
            frame_system::CheckNonZeroSender::<Runtime>::new(),
            frame_system::CheckSpecVersion::<Runtime>::new(),
            frame_system::CheckTxVersion::<Runtime>::new(),
            frame_system::CheckGenesis::<Runtime>::new(),
            frame_system::CheckEra::<Runtime>::from(Era::mortal(period, current)),
            frame_system::CheckNonce::<Runtime>::from(nonce),
            frame_system::CheckWeight::<Runtime>::new(),
            pallet_inference::PrioritizeDuties::<Runtime>::new(),
            pallet_transaction_payment::ChargeTransactionPayment::<Runtime>::from(0),
        );
        let payload = SignedPayload::new(call, extension).ok()?;
        let signature = payload.using_encoded(|bytes| C::sign(bytes, public))?;
        let (call, extension, _) = payload.deconstruct();
        let address = <Runtime as frame_system::Config>::Lookup::unlookup(account);
        Some(UncheckedExtrinsic::new_signed(
            call, address, signature, extension,
        ))
    }
}

parameter_types! {
    /// A memory is at most 512 bytes of text (MiniLM's input limit).
    pub const MaxMemoryTextBytes: u32 = 512;
    /// Embeddings of up to 1,024 elements (MiniLM's are 384).
    pub const MaxMemoryDimensions: u32 = 1_024;
    /// 10,000 memories per space: recall reads each (the runtime API; `recall` weights).
    pub const MaxMemoriesPerSpace: u32 = 10_000;
    pub const MaxGrantsPerSpace: u32 = 32;
    /// A recall returns at most 16 memories.
    pub const MaxRecall: u32 = 16;
    /// A space holds 1 INFER until it is closed.
    pub const SpaceDeposit: Balance = UNIT;
    /// A memory holds 0.01 INFER plus 10 micro-INFER per byte of text and embedding
    /// (0.0177 INFER for 100 bytes of text and a 384-element embedding).
    pub const MemoryDepositBase: Balance = UNIT / 100;
    pub const MemoryDepositPerByte: Balance = UNIT / 100_000;
}

impl pallet_memory::Config for Runtime {
    type MaxTextBytes = MaxMemoryTextBytes;
    type MaxDimensions = MaxMemoryDimensions;
    type MaxMemoriesPerSpace = MaxMemoriesPerSpace;
    type MaxGrantsPerSpace = MaxGrantsPerSpace;
    type MaxRecall = MaxRecall;
    type SpaceDeposit = SpaceDeposit;
    type MemoryDepositBase = MemoryDepositBase;
    type MemoryDepositPerByte = MemoryDepositPerByte;
    type WeightInfo = pallet_memory::weights::SubstrateWeight<Runtime>;
}
