//! A minimal runtime for the upgrades pallet's tests: accounts are `u64`, Root governs.

use crate as pallet_upgrades;
use frame_support::derive_impl;
use frame_system::EnsureRoot;
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Upgrades: pallet_upgrades,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
}

impl pallet_upgrades::Config for Test {
    type UpgradeOrigin = EnsureRoot<u64>;
    type WeightInfo = ();
}

/// Reads no code as a runtime (frame-system asks when it checks an upgrade's version).
struct NoRuntimes;
impl sp_core::traits::ReadRuntimeVersion for NoRuntimes {
    fn read_runtime_version(
        &self,
        _code: &[u8],
        _ext: &mut dyn sp_externalities::Externalities,
    ) -> Result<Vec<u8>, String> {
        Err("not a runtime".into())
    }
}

pub fn new_test_ext() -> sp_io::TestExternalities {
    let storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .expect("system genesis");
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.register_extension(sp_core::traits::ReadRuntimeVersionExt::new(NoRuntimes));
    ext.execute_with(|| System::set_block_number(1));
    ext
}
