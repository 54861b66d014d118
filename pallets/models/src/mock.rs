//! A minimal runtime for the models pallet's tests.

use crate as pallet_models;
use frame_support::{derive_impl, parameter_types};
use frame_system::EnsureRoot;
use inferchain_primitives::{
    compare::ComparisonRule,
    io::{DType, Dim, IoSpec, TensorSpec},
    model::{ModelCost, ModelFormat, ModelSpec, NumericsProfile, ThreadRule},
    H256,
};
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Models: pallet_models,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
}

parameter_types! {
    pub const MaxModels: u32 = 4;
    pub const MaxInputBytes: u32 = 1024;
    pub const MaxOutputBytes: u32 = 2048;
    pub const MaxModelCost: ModelCost = ModelCost { flops: 1_000_000, peak_memory_bytes: 1 << 20 };
}

impl pallet_models::Config for Test {
    type Balance = u64;
    type RegisterOrigin = EnsureRoot<u64>;
    type MaxModels = MaxModels;
    type MaxInputBytes = MaxInputBytes;
    type MaxOutputBytes = MaxOutputBytes;
    type MaxModelCost = MaxModelCost;
    type WeightInfo = ();
}

/// A valid spec whose id is `H256::repeat_byte(seed)`.
pub fn spec(seed: u8) -> ModelSpec<u64> {
    let tensor = |name: &[u8]| TensorSpec {
        name: name.to_vec().try_into().expect("short name"),
        dtype: DType::F32,
        shape: vec![Dim::Fixed(1), Dim::Dynamic { max: 16 }]
            .try_into()
            .expect("rank 2"),
        allow_non_finite: false,
    };
    ModelSpec {
        name: b"tiny-mlp".to_vec().try_into().expect("short name"),
        format: ModelFormat::Onnx,
        artifact_hash: H256::repeat_byte(seed),
        input: IoSpec::Tensors(vec![tensor(b"x")].try_into().expect("one tensor")),
        output: IoSpec::Tensors(vec![tensor(b"y")].try_into().expect("one tensor")),
        fee: 100,
        max_input_bytes: 512,
        max_output_bytes: 512,
        comparison: ComparisonRule::Exact,
        numerics: NumericsProfile {
            engine_version: 1,
            compute_dtype: DType::F32,
            threads: ThreadRule::Any,
        },
        artifact_uri: None,
        cost: ModelCost {
            flops: 120,
            peak_memory_bytes: 4_096,
        },
    }
}

/// Storage with no models, at block 1 (so events are recorded).
pub fn new_test_ext() -> sp_io::TestExternalities {
    let storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .expect("the system genesis builds");
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| System::set_block_number(1));
    ext
}

/// Runs `test` and then checks the pallet's invariants.
pub fn build_and_execute(test: impl FnOnce()) {
    new_test_ext().execute_with(|| {
        test();
        Models::do_try_state().expect("invariants hold after the test");
    });
}
