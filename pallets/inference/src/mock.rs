//! A runtime for the inference pallet's tests: Balances, Models and Inference, with a
//! randomness source the tests can reseed.

use crate as pallet_inference;
use codec::Encode;
use core::cell::Cell;
use frame_support::{
    derive_impl, parameter_types,
    traits::{Hooks, Randomness},
};
use frame_system::EnsureRoot;
use inferchain_primitives::{
    blake2_256,
    compare::ComparisonRule,
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

/// Transactions the off-chain worker builds in tests: signed by a `u64` account.
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
        nonce: u32,
    ) -> Option<Extrinsic> {
        let _ = nonce;
        Some(Extrinsic::new_signed(call, account, (), ()))
    }
}

/// Test keys: the same type is the app key, the generic key and the account key.
pub struct TestAuthId;
impl frame_system::offchain::AppCrypto<UintAuthorityId, TestSignature> for TestAuthId {
    type RuntimeAppPublic = UintAuthorityId;
    type GenericPublic = UintAuthorityId;
    type GenericSignature = TestSignature;
}

parameter_types! {
    pub const MaxModels: u32 = 32;
    pub const MaxInputBytes: u32 = 1024;
    pub const MaxOutputBytes: u32 = 1024;
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

thread_local! {
    static SEED: Cell<u64> = const { Cell::new(0) };
}

/// Reseeds the test randomness.
pub fn set_seed(seed: u64) {
    SEED.with(|s| s.set(seed));
}

/// Randomness from the block number, a reseedable seed and the subject.
pub struct TestRandomness;
impl Randomness<H256, u64> for TestRandomness {
    fn random(subject: &[u8]) -> (H256, u64) {
        let block = System::block_number();
        let seed = SEED.with(|s| s.get());
        (H256(blake2_256(&(subject, block, seed).encode())), block)
    }
}

parameter_types! {
    pub const MinExecutorBond: Balance = 100;
    pub const UnbondingPeriod: u64 = 50;
    pub const ExecutionTimeout: u64 = 3;
    pub const ChallengePeriod: u64 = 4;
    pub const MaxAttempts: u32 = 3;
    pub const MissedDeadlineSlash: Balance = 10;
    pub static ResultSlash: Balance = 50;
    pub const ChallengeBond: Balance = 30;
    pub static ChallengeReward: Perbill = Perbill::from_percent(50);
    pub const RequesterCompensation: Perbill = Perbill::from_percent(20);
    pub const ProtocolFee: Perbill = Perbill::from_percent(10);
    pub const MaxExecutors: u32 = 16;
    pub const ResultRetention: u64 = 10;
    pub const MaxDeadlinesPerBlock: u32 = 50;
    pub const MaxOffchainRuns: u32 = 4;
    pub const OffchainTimeBudget: u64 = 1_000;
    pub const WatchShare: Perbill = Perbill::one();
    pub const OffchainRetryBlocks: u32 = 2;
    pub const MoveTimeout: u64 = 2;
    pub const MaxStepProofBytes: u32 = 16 * 1024;
    pub const MaxServedModels: u32 = 4;
    pub const DutyPriority: u64 = u64::MAX / 2;
    pub const ReleaseSlash: Balance = 2;
    pub const MaxBatchSize: u32 = 8;
    pub const MaxModelCost: ModelCost = ModelCost { flops: 1 << 40, peak_memory_bytes: 1 << 34 };
    /// Lowered by tests, as a runtime upgrade could.
    pub storage MaxRequestCost: ModelCost = MaxModelCost::get();
    /// Fourteen batches of 8, or 64 single requests.
    pub const MaxRequestSlotsPerBlock: u32 = 128;
    pub const SlotsPerAssignment: u32 = 1;
    pub const MaxMissedInRow: u32 = 3;
    // Zero unless a test sets them (deposit tests do).
    pub static RequestDepositBase: Balance = 0;
    pub static DepositPerByte: Balance = 0;
}

/// The tests' referee. A step descriptor is a tag byte and anything after it:
/// * `b'o'`: the output step: an f32 [1, 4] payload made from the first four bytes of
///   the hash of its operands;
/// * `b'w'`: a wide step: as many bytes as the descriptor's next four say (256 without
///   them), hashes of the descriptor, operands and index;
/// * `b'e'`: element-wise: operand 0's bytes plus the descriptor's second byte
///   (wrapping), each output byte from the same byte of the operand, so its chunks
///   open one by one;
/// * `0xff`: a step the referee does not know;
/// * anything else: the blake2-256 of the descriptor and the operands.
pub struct TestReferee;

fn element_wise(step: &[u8], x: &[u8]) -> Vec<u8> {
    let add = step.get(1).copied().unwrap_or_default();
    x.iter().map(|b| b.wrapping_add(add)).collect()
}

impl inferchain_primitives::dispute::StepReferee for TestReferee {
    fn element_reads(
        step: &[u8],
        output_bytes: u32,
        chunk: u32,
    ) -> Result<
        Vec<inferchain_primitives::dispute::ElementRead>,
        inferchain_primitives::dispute::RefereeError,
    > {
        use inferchain_primitives::{dispute::RefereeError, tensor_tree::CHUNK_BYTES};
        if step.first() != Some(&b'e') {
            return Err(RefereeError::UnknownStep);
        }
        let start = chunk.saturating_mul(CHUNK_BYTES as u32);
        if start >= output_bytes {
            return Err(RefereeError::OperandMismatch);
        }
        Ok(vec![inferchain_primitives::dispute::ElementRead {
            operand: 0,
            start,
            len: (output_bytes - start).min(CHUNK_BYTES as u32),
        }])
    }

    fn evaluate_chunk(
        step: &[u8],
        output_bytes: u32,
        chunk: u32,
        slices: &[&[u8]],
    ) -> Result<Vec<u8>, inferchain_primitives::dispute::RefereeError> {
        let reads = Self::element_reads(step, output_bytes, chunk)?;
        match slices {
            [x] if x.len() == reads[0].len as usize => Ok(element_wise(step, x)),
            _ => Err(inferchain_primitives::dispute::RefereeError::OperandMismatch),
        }
    }

    /// Element-wise steps over 128 bytes are settled by chunk; everything else whole.
    fn path(step: &[u8], output_bytes: u32) -> inferchain_primitives::dispute::RefereePath {
        use inferchain_primitives::dispute::RefereePath;
        if step.first() == Some(&b'e') && output_bytes > 128 {
            RefereePath::Elements
        } else {
            RefereePath::Whole
        }
    }

    fn costliest_chunk() -> (Vec<u8>, u32, u32, Vec<Vec<u8>>) {
        (vec![b'e', 1], 256, 1, vec![vec![7; 256]])
    }

    fn evaluate(
        step: &[u8],
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, inferchain_primitives::dispute::RefereeError> {
        let digest = blake2_256(&(step, operands).encode());
        match step.first() {
            Some(b'e') => match operands {
                [x] => Ok(element_wise(step, x)),
                _ => Err(inferchain_primitives::dispute::RefereeError::OperandMismatch),
            },
            Some(b'w') => {
                let len = step.get(1..5).map_or(256, |b| {
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
                });
                Ok((0u32..)
                    .flat_map(|k| blake2_256(&(step, operands, k).encode()))
                    .take(len)
                    .collect())
            }
            Some(b'o') => Ok(tensor(
                &digest[..4]
                    .iter()
                    .map(|b| f32::from(*b))
                    .collect::<Vec<_>>(),
            )),
            Some(0xff) | None => Err(inferchain_primitives::dispute::RefereeError::UnknownStep),
            Some(_) => Ok(digest.to_vec()),
        }
    }

    fn costliest_step() -> (Vec<u8>, Vec<Vec<u8>>) {
        (vec![b's'], vec![vec![1; 64]; 3])
    }
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
    type Referee = TestReferee;
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
    type Observer = ();
    type WeightInfo = ();
}

/// Every test account starts with this.
pub const ENDOWMENT: Balance = 10_000;
/// The fee of the test models.
pub const FEE: Balance = 100;
/// The tensor model: f32 [1, n≤16] in, f32 [1, n≤16] out; committed at genesis to a
/// one-step plan ([`TENSOR_COMMITMENTS`]), so a result's trace is its output's leaf.
pub const TENSOR_MODEL: H256 = H256::repeat_byte(1);
/// The text model: text ≤ 32 bytes in, f32 [1, 4] out; committed at genesis as the
/// tensor model is.
pub const TEXT_MODEL: H256 = H256::repeat_byte(2);
/// A model registered without commitments: not requestable (`NoCommitments`).
pub const BARE_MODEL: H256 = H256::repeat_byte(4);
/// The game model: as the tensor model, without commitments at genesis (the game tests
/// record their plans' own).
pub const GAME_MODEL: H256 = H256::repeat_byte(3);
/// The tensor model's commitments: one step, no weights.
pub const TENSOR_COMMITMENTS: inferchain_primitives::dispute::ModelCommitments =
    inferchain_primitives::dispute::ModelCommitments {
        plan_root: H256::repeat_byte(0x71),
        steps: 1,
        weights_root: H256::repeat_byte(0x72),
        weights: 0,
    };

/// The trace commitment of a one-step run ending in `output`: its tensor leaf.
pub fn one_step_trace(output: &[u8]) -> inferchain_primitives::dispute::TraceCommitment {
    inferchain_primitives::dispute::TraceCommitment {
        root: H256(inferchain_primitives::tensor_tree::tensor_leaf(output)),
        leaves: 1,
    }
}

/// Posts `output` as `who`'s result of request `id` of the tensor model (one-step trace).
pub fn submit(who: u64, id: u64, output: Vec<u8>) -> frame_support::dispatch::DispatchResult {
    let trace = one_step_trace(&output);
    Inference::submit_traced_result(
        RuntimeOrigin::signed(who),
        id,
        output
            .try_into()
            .expect("a test output fits MaxOutputBytes"),
        trace,
        Default::default(),
    )
    .map(|_| ())
    .map_err(|e| e.error)
}

fn tensor_io(name: &[u8], max: u32) -> IoSpec {
    IoSpec::Tensors(
        vec![TensorSpec {
            name: name.to_vec().try_into().expect("short name"),
            dtype: DType::F32,
            shape: vec![Dim::Fixed(1), Dim::Dynamic { max }]
                .try_into()
                .expect("rank 2"),
            allow_non_finite: false,
        }]
        .try_into()
        .expect("one tensor"),
    )
}

/// A model spec for the tests.
pub fn model_spec(id: H256, input: IoSpec, max_input_bytes: u32) -> ModelSpec<Balance> {
    ModelSpec {
        name: b"test-model".to_vec().try_into().expect("short name"),
        format: ModelFormat::Onnx,
        artifact_hash: id,
        input,
        output: tensor_io(b"y", 16),
        fee: FEE,
        max_input_bytes,
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

/// The models a test executor serves: every model of the mock registry.
pub const ALL_MODELS: [H256; 4] = [TENSOR_MODEL, TEXT_MODEL, GAME_MODEL, BARE_MODEL];

/// Capacity of a test executor: more than any test assigns it.
pub const TEST_CAPACITY: u32 = 1_000;

/// Bonds `bond` from `who` and serves every test model.
pub fn bond_and_serve(who: AccountId, bond: Balance) -> frame_support::dispatch::DispatchResult {
    Inference::register_executor(RuntimeOrigin::signed(who), bond)?;
    Inference::serve(
        RuntimeOrigin::signed(who),
        ALL_MODELS
            .to_vec()
            .try_into()
            .expect("MaxServedModels is 4"),
        TEST_CAPACITY,
    )
}

/// A canonical f32 [1, n] payload.
pub fn tensor(values: &[f32]) -> Vec<u8> {
    Payload::Tensors(vec![Tensor::from_f32(vec![1, values.len() as u32], values)]).encode()
}

/// A canonical text payload.
pub fn text(s: &[u8]) -> Vec<u8> {
    Payload::Text(s.to_vec()).encode()
}

/// Accounts 1..=30 endowed; the two test models registered; block 1.
pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .expect("system genesis builds");
    pallet_balances::GenesisConfig::<Test> {
        balances: (1..=30).map(|a| (a, ENDOWMENT)).collect(),
        ..Default::default()
    }
    .assimilate_storage(&mut storage)
    .expect("balances genesis builds");
    pallet_models::GenesisConfig::<Test> {
        models: vec![
            model_spec(TENSOR_MODEL, tensor_io(b"x", 16), 128),
            model_spec(TEXT_MODEL, IoSpec::Text { max_bytes: 32 }, 64),
            model_spec(GAME_MODEL, tensor_io(b"x", 16), 128),
            model_spec(BARE_MODEL, tensor_io(b"x", 16), 128),
        ],
        commitments: vec![
            (TENSOR_MODEL, TENSOR_COMMITMENTS),
            (TEXT_MODEL, TENSOR_COMMITMENTS),
        ],
    }
    .assimilate_storage(&mut storage)
    .expect("models genesis builds");
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| {
        set_seed(0);
        System::set_block_number(1);
    });
    ext
}

/// Runs `test`, then checks the pallet's invariants.
pub fn build_and_execute(test: impl FnOnce()) {
    new_test_ext().execute_with(|| {
        test();
        Inference::do_try_state().expect("invariants hold after the test");
    });
}

/// Advances to block `n`, running the pallet's `on_initialize` on each block.
pub fn run_to_block(n: u64) {
    while System::block_number() < n {
        let next = System::block_number() + 1;
        System::set_block_number(next);
        Inference::on_initialize(next);
        Inference::do_try_state().expect("invariants hold after every block");
    }
}
