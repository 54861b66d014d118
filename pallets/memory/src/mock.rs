//! A runtime for the memory pallet's tests: Balances, Models, Inference (observed by
//! Memory) and Memory. One embedding model, text of at most 64 bytes to f32 [1, 4],
//! committed to a one-step plan, so a test answers a request by posting its output.

use crate as pallet_memory;
use codec::Encode;
use frame_support::{
    derive_impl, parameter_types,
    traits::{Hooks, Randomness},
};
use frame_system::EnsureRoot;
use inferchain_primitives::{
    blake2_256,
    compare::ComparisonRule,
    dispute::{ElementRead, ModelCommitments, RefereeError, RefereePath, StepReferee},
    io::{DType, Dim, IoSpec, Payload, Tensor, TensorSpec},
    model::{ModelCost, ModelFormat, ModelSpec, NumericsProfile, ThreadRule},
    H256,
};
use sp_runtime::{
    testing::{TestSignature, TestXt, UintAuthorityId},
    BuildStorage, Perbill,
};

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u64;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Models: pallet_models,
        Inference: pallet_inference,
        Memory: pallet_memory,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
    type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
    type AccountStore = System;
    type RuntimeHoldReason = RuntimeHoldReason;
}

pub type Extrinsic = TestXt<RuntimeCall, ()>;

impl frame_system::offchain::SigningTypes for Test {
    type Public = UintAuthorityId;
    type Signature = TestSignature;
}

impl<LocalCall> frame_system::offchain::CreateTransactionBase<LocalCall> for Test
where
    RuntimeCall: From<LocalCall>,
{
    type Extrinsic = Extrinsic;
    type RuntimeCall = RuntimeCall;
}

impl<LocalCall> frame_system::offchain::CreateSignedTransaction<LocalCall> for Test
where
    RuntimeCall: From<LocalCall>,
{
    fn create_signed_transaction<
        C: frame_system::offchain::AppCrypto<Self::Public, Self::Signature>,
    >(
        call: RuntimeCall,
        _public: UintAuthorityId,
        account: AccountId,
        _nonce: u32,
    ) -> Option<Extrinsic> {
        Some(Extrinsic::new_signed(call, account, (), ()))
    }
}

pub struct TestAuthId;
impl frame_system::offchain::AppCrypto<UintAuthorityId, TestSignature> for TestAuthId {
    type RuntimeAppPublic = UintAuthorityId;
    type GenericPublic = UintAuthorityId;
    type GenericSignature = TestSignature;
}

parameter_types! {
    pub const MaxModels: u32 = 8;
    pub const MaxInputBytes: u32 = 1024;
    pub const MaxOutputBytes: u32 = 2048;
}

impl pallet_models::Config for Test {
    type Balance = Balance;
    type RegisterOrigin = EnsureRoot<AccountId>;
    type MaxModels = MaxModels;
    type MaxInputBytes = MaxInputBytes;
    type MaxOutputBytes = MaxOutputBytes;
    type MaxModelCost = MaxModelCost;
    type WeightInfo = ();
}

/// Randomness from the block number and the subject.
pub struct TestRandomness;
impl Randomness<H256, u64> for TestRandomness {
    fn random(subject: &[u8]) -> (H256, u64) {
        let block = System::block_number();
        (H256(blake2_256(&(subject, block).encode())), block)
    }
}

/// No game is played in these tests: the referee knows no step.
pub struct NoReferee;
impl StepReferee for NoReferee {
    fn evaluate(_: &[u8], _: &[&[u8]]) -> Result<Vec<u8>, RefereeError> {
        Err(RefereeError::UnknownStep)
    }
    fn costliest_step() -> (Vec<u8>, Vec<Vec<u8>>) {
        (Vec::new(), Vec::new())
    }
    fn path(_: &[u8], _: u32) -> RefereePath {
        RefereePath::Whole
    }
    fn element_reads(_: &[u8], _: u32, _: u32) -> Result<Vec<ElementRead>, RefereeError> {
        Err(RefereeError::UnknownStep)
    }
    fn evaluate_chunk(_: &[u8], _: u32, _: u32, _: &[&[u8]]) -> Result<Vec<u8>, RefereeError> {
        Err(RefereeError::UnknownStep)
    }
    fn costliest_chunk() -> (Vec<u8>, u32, u32, Vec<Vec<u8>>) {
        (Vec::new(), 0, 0, Vec::new())
    }
}

parameter_types! {
    pub const MinExecutorBond: Balance = 100;
    pub const UnbondingPeriod: u64 = 50;
    pub const ExecutionTimeout: u64 = 3;
    pub const ChallengePeriod: u64 = 4;
    pub const MaxAttempts: u32 = 1;
    pub const MissedDeadlineSlash: Balance = 10;
    pub const ResultSlash: Balance = 50;
    pub const ChallengeBond: Balance = 30;
    pub const ChallengeReward: Perbill = Perbill::from_percent(50);
    pub const RequesterCompensation: Perbill = Perbill::from_percent(20);
    pub const ProtocolFee: Perbill = Perbill::from_percent(10);
    pub const MaxExecutors: u32 = 4;
    pub const ResultRetention: u64 = 10;
    pub const MaxDeadlinesPerBlock: u32 = 50;
    pub const MaxOffchainRuns: u32 = 4;
    pub const OffchainTimeBudget: u64 = 1_000;
    pub const WatchShare: Perbill = Perbill::one();
    pub const OffchainRetryBlocks: u32 = 2;
    pub const MoveTimeout: u64 = 2;
    pub const MaxStepProofBytes: u32 = 1024;
    pub const MaxServedModels: u32 = 4;
    pub const DutyPriority: u64 = u64::MAX / 2;
    pub const ReleaseSlash: Balance = 2;
    pub const MaxBatchSize: u32 = 8;
    pub const MaxModelCost: ModelCost = ModelCost { flops: 1 << 40, peak_memory_bytes: 1 << 34 };
    /// Lowered by tests, as a runtime upgrade could.
    pub storage MaxRequestCost: ModelCost = MaxModelCost::get();
    pub const MaxRequestSlotsPerBlock: u32 = 128;
    pub const SlotsPerAssignment: u32 = 1;
    pub const MaxMissedInRow: u32 = 3;
    pub const RequestDepositBase: Balance = 0;
    pub const DepositPerByte: Balance = 0;
}

impl pallet_inference::Config for Test {
    type AuthorityId = TestAuthId;
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type Models = Models;
    type Randomness = TestRandomness;
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
    type Referee = NoReferee;
    type MoveTimeout = MoveTimeout;
    type MaxStepProofBytes = MaxStepProofBytes;
    type DutyPriority = DutyPriority;
    type ReleaseSlash = ReleaseSlash;
    type MaxBatchSize = MaxBatchSize;
    type MaxRequestCost = MaxRequestCost;
    type MaxRequestSlotsPerBlock = MaxRequestSlotsPerBlock;
    type SlotsPerAssignment = SlotsPerAssignment;
    type MaxServedModels = MaxServedModels;
    type MaxMissedInRow = MaxMissedInRow;
    type RequestDepositBase = RequestDepositBase;
    type DepositPerByte = DepositPerByte;
    type Observer = Memory;
    type WeightInfo = ();
}

parameter_types! {
    pub const MaxTextBytes: u32 = 64;
    pub const MaxDimensions: u32 = 384;
    pub static MaxMemoriesPerSpace: u32 = 4;
    pub const MaxGrantsPerSpace: u32 = 2;
    pub const MaxRecall: u32 = 16;
    pub const SpaceDeposit: Balance = 50;
    pub const MemoryDepositBase: Balance = 10;
    pub const MemoryDepositPerByte: Balance = 1;
}

impl pallet_memory::Config for Test {
    type MaxTextBytes = MaxTextBytes;
    type MaxDimensions = MaxDimensions;
    type MaxMemoriesPerSpace = MaxMemoriesPerSpace;
    type MaxGrantsPerSpace = MaxGrantsPerSpace;
    type MaxRecall = MaxRecall;
    type SpaceDeposit = SpaceDeposit;
    type MemoryDepositBase = MemoryDepositBase;
    type MemoryDepositPerByte = MemoryDepositPerByte;
    type WeightInfo = ();
}

pub const ENDOWMENT: Balance = 10_000;
/// The embedding model's fee.
pub const FEE: Balance = 100;
/// The executor every request is drawn to.
pub const EXECUTOR: AccountId = 9;
/// Text (≤ 64 bytes) to f32 [1, 4]; committed.
pub const EMBEDDER: H256 = H256::repeat_byte(1);
/// Text to a text: not an embedding model.
pub const TEXT_TO_TEXT: H256 = H256::repeat_byte(2);
/// A language model: prompts of at most 80 bytes, up to 8 new tokens; committed.
pub const LLM: H256 = H256::repeat_byte(4);
/// Text to f32 [1, 512]: more dimensions than `MaxDimensions`.
pub const WIDE_EMBEDDER: H256 = H256::repeat_byte(3);

fn spec(id: H256, output: IoSpec) -> ModelSpec<Balance> {
    ModelSpec {
        name: b"embedder".to_vec().try_into().expect("short"),
        format: ModelFormat::BertEmbedding,
        artifact_hash: id,
        input: IoSpec::Text { max_bytes: 64 },
        output,
        fee: FEE,
        max_input_bytes: 80,
        max_output_bytes: 256,
        comparison: ComparisonRule::Exact,
        numerics: NumericsProfile {
            engine_version: 1,
            compute_dtype: DType::F32,
            threads: ThreadRule::Any,
        },
        artifact_uri: None,
        cost: ModelCost {
            flops: 1_000,
            peak_memory_bytes: 4_096,
        },
    }
}

fn embedding_io(dims: u32) -> IoSpec {
    IoSpec::Tensors(
        vec![TensorSpec {
            name: b"embedding".to_vec().try_into().expect("short"),
            dtype: DType::F32,
            shape: vec![Dim::Fixed(1), Dim::Fixed(dims)]
                .try_into()
                .expect("rank 2"),
            allow_non_finite: false,
        }]
        .try_into()
        .expect("one tensor"),
    )
}

const COMMITMENTS: ModelCommitments = ModelCommitments {
    plan_root: H256::repeat_byte(0x71),
    steps: 1,
    weights_root: H256::repeat_byte(0x72),
    weights: 0,
};

/// An embedding result's payload: f32 [1, n].
pub fn embedding(values: &[f32]) -> Vec<u8> {
    Payload::Tensors(vec![Tensor::from_f32(vec![1, values.len() as u32], values)]).encode()
}

/// The executor posts `values` as request `id`'s embedding (a one-step trace).
pub fn answer(id: u64, values: &[f32]) {
    post(id, embedding(values));
}

/// The executor posts `output` as request `id`'s result (a one-step trace).
pub fn post(id: u64, output: Vec<u8>) {
    let trace = inferchain_primitives::dispute::TraceCommitment {
        root: H256(inferchain_primitives::tensor_tree::tensor_leaf(&output)),
        leaves: 1,
    };
    Inference::submit_traced_result(
        RuntimeOrigin::signed(EXECUTOR),
        id,
        output.try_into().expect("fits"),
        trace,
        Default::default(),
    )
    .expect("the executor's result is accepted");
}

/// Accounts 1..=10 endowed, the models registered, the executor bonded and serving the
/// embedder; block 1.
pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .expect("system genesis builds");
    pallet_balances::GenesisConfig::<Test> {
        balances: (1..=10).map(|a| (a, ENDOWMENT)).collect(),
        ..Default::default()
    }
    .assimilate_storage(&mut storage)
    .expect("balances genesis builds");
    pallet_models::GenesisConfig::<Test> {
        models: vec![
            spec(EMBEDDER, embedding_io(4)),
            spec(TEXT_TO_TEXT, IoSpec::Text { max_bytes: 64 }),
            spec(WIDE_EMBEDDER, embedding_io(512)),
            ModelSpec {
                format: ModelFormat::Llm,
                input: IoSpec::Prompt {
                    max_bytes: 80,
                    max_new_tokens: 8,
                },
                output: IoSpec::Generation {
                    max_new_tokens: 8,
                    max_text_bytes: 64,
                },
                max_input_bytes: 110,
                fee: 1,
                ..spec(LLM, IoSpec::Text { max_bytes: 64 })
            },
        ],
        commitments: vec![
            (EMBEDDER, COMMITMENTS),
            (WIDE_EMBEDDER, COMMITMENTS),
            (LLM, COMMITMENTS),
        ],
    }
    .assimilate_storage(&mut storage)
    .expect("models genesis builds");
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| {
        System::set_block_number(1);
        Inference::register_executor(RuntimeOrigin::signed(EXECUTOR), 1_000).expect("bonds");
        Inference::serve(
            RuntimeOrigin::signed(EXECUTOR),
            vec![EMBEDDER, LLM].try_into().expect("two models"),
            100,
        )
        .expect("serves");
    });
    ext
}

/// Runs `test`, then checks both pallets' invariants.
pub fn build_and_execute(test: impl FnOnce()) {
    new_test_ext().execute_with(|| {
        test();
        Memory::do_try_state().expect("memory invariants hold after the test");
        Inference::do_try_state().expect("inference invariants hold after the test");
    });
}

/// Advances to block `n`, running the inference pallet's `on_initialize` (which settles
/// requests and so tells the memory pallet) and checking invariants on each block.
pub fn run_to_block(n: u64) {
    while System::block_number() < n {
        let next = System::block_number() + 1;
        System::set_block_number(next);
        Inference::on_initialize(next);
        Memory::do_try_state().expect("memory invariants hold after every block");
    }
}

/// The last event of the memory pallet.
pub fn last_memory_event() -> Option<pallet_memory::Event<Test>> {
    System::events()
        .into_iter()
        .rev()
        .find_map(|r| match r.event {
            RuntimeEvent::Memory(e) => Some(e),
            _ => None,
        })
}
