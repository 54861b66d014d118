//! A minimal runtime for the parameters pallet's tests: accounts are `u64`, Root governs.

use crate::{self as pallet_protocol_params, ProtocolParams};
use frame_support::{derive_impl, parameter_types};
use frame_system::EnsureRoot;
use sp_runtime::{BuildStorage, Perbill};

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        ParamsPallet: pallet_protocol_params,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
}

pub type ParamSet = ProtocolParams<u128, u64>;

/// Every number of `d` times `num / den` (shares kept).
fn scaled(d: ParamSet, num: u64, den: u64) -> ParamSet {
    let b = |v: u128| v * num as u128 / den as u128;
    let n = |v: u64| v * num / den;
    ProtocolParams {
        min_executor_bond: b(d.min_executor_bond),
        unbonding_period: n(d.unbonding_period),
        execution_timeout: n(d.execution_timeout),
        challenge_period: n(d.challenge_period),
        move_timeout: n(d.move_timeout),
        result_retention: n(d.result_retention),
        missed_deadline_slash: b(d.missed_deadline_slash),
        result_slash: b(d.result_slash),
        release_slash: b(d.release_slash),
        challenge_reward: d.challenge_reward,
        requester_compensation: d.requester_compensation,
        protocol_fee: d.protocol_fee,
        max_missed_in_row: (d.max_missed_in_row as u64 * num / den) as u32,
        request_deposit_base: b(d.request_deposit_base),
        deposit_per_byte: b(d.deposit_per_byte),
        watch_share: d.watch_share,
        max_offchain_runs: (d.max_offchain_runs as u64 * num / den) as u32,
        offchain_time_budget: n(d.offchain_time_budget),
        offchain_retry_blocks: (d.offchain_retry_blocks as u64 * num / den) as u32,
    }
}

pub const DEFAULTS: ParamSet = ProtocolParams {
    min_executor_bond: 1_000,
    unbonding_period: 100,
    execution_timeout: 10,
    challenge_period: 20,
    move_timeout: 10,
    result_retention: 100,
    missed_deadline_slash: 10,
    result_slash: 200,
    release_slash: 2,
    challenge_reward: Perbill::from_percent(50),
    requester_compensation: Perbill::from_percent(20),
    protocol_fee: Perbill::from_percent(5),
    max_missed_in_row: 4,
    request_deposit_base: 10,
    deposit_per_byte: 2,
    watch_share: Perbill::from_percent(50),
    max_offchain_runs: 8,
    offchain_time_budget: 2_000,
    offchain_retry_blocks: 2,
};

parameter_types! {
    pub const Defaults: ParamSet = DEFAULTS;
    /// Half of each default (shares: anything).
    pub MinValues: ParamSet = ProtocolParams {
        challenge_reward: Perbill::zero(),
        requester_compensation: Perbill::zero(),
        protocol_fee: Perbill::zero(),
        watch_share: Perbill::zero(),
        ..scaled(DEFAULTS, 1, 2)
    };
    /// Ten times each default (shares: up to 100%, the fee up to 20%).
    pub MaxValues: ParamSet = ProtocolParams {
        challenge_reward: Perbill::one(),
        requester_compensation: Perbill::one(),
        protocol_fee: Perbill::from_percent(20),
        watch_share: Perbill::one(),
        ..scaled(DEFAULTS, 10, 1)
    };
}

impl pallet_protocol_params::Config for Test {
    type RuntimeEvent = RuntimeEvent;
    type Balance = u128;
    type ParamsOrigin = EnsureRoot<u64>;
    type Defaults = Defaults;
    type MinValues = MinValues;
    type MaxValues = MaxValues;
    type WeightInfo = ();
}

pub fn new_test_ext() -> sp_io::TestExternalities {
    let storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .expect("system genesis");
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| System::set_block_number(1));
    ext
}
