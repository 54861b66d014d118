//! A minimal runtime for the validators pallet's tests: accounts are `u64`, Root governs.

use crate as pallet_validators;
use frame_support::{derive_impl, parameter_types, traits::Contains};
use frame_system::EnsureRoot;
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Validators: pallet_validators,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
}

parameter_types! {
    pub const MaxValidators: u32 = 5;
    pub const MinValidators: u32 = 2;
}

/// Accounts below 90 have session keys.
pub struct Keyed;
impl Contains<u64> for Keyed {
    fn contains(who: &u64) -> bool {
        *who < 90
    }
}

impl pallet_validators::Config for Test {
    type RuntimeEvent = RuntimeEvent;
    type ValidatorOrigin = EnsureRoot<u64>;
    type KeysRegistered = Keyed;
    type MaxValidators = MaxValidators;
    type MinValidators = MinValidators;
    type WeightInfo = ();
}

/// Validators 1, 2 and 3 at genesis.
pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .expect("system genesis");
    pallet_validators::GenesisConfig::<Test> {
        validators: vec![1, 2, 3],
    }
    .assimilate_storage(&mut storage)
    .expect("validators genesis");
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| System::set_block_number(1));
    ext
}
