//! The protocol parameters governance tunes (pallet-protocol-params): their defaults (the
//! values the chain starts with), the bounds a motion must keep, and the `Get` adaptors
//! through which pallet-inference reads the values in force.
//!
//! Parameters that shape storage bounds or weights (`MaxExecutors`, `MaxInputBytes`,
//! `MaxRequestSlotsPerBlock`, `MaxDeadlinesPerBlock`, `MaxAttempts`, ...) and the challenge
//! bond stay constants in `configs/mod.rs`: changing them takes a runtime upgrade.

use frame_support::{parameter_types, traits::Get};
use pallet_protocol_params::ProtocolParams as ParamSet;
use sp_runtime::Perbill;

use super::governance::RootOrCouncilMajority;
use crate::{
    Balance, BlockNumber, ProtocolParams, Runtime, RuntimeEvent, DAYS, HOURS, MINUTES, UNIT,
};

/// The protocol's parameter set in this runtime.
pub type Params = ParamSet<Balance, BlockNumber>;

/// The values the chain starts with. Blocks are 3 s; the windows are a few blocks so that
/// the dev chain, the demo and the end-to-end tests run in seconds: a production network
/// would have its council lengthen them.
pub const DEFAULT_PARAMS: Params = ParamSet {
    min_executor_bond: 1_000 * UNIT,
    // Outlasts execution + window; open games keep a bond held beyond it through the
    // executor's obligations.
    unbonding_period: 10 * MINUTES,
    execution_timeout: 5,
    challenge_period: 4,
    // Each party of a bisection game has 5 blocks (15 s) per move.
    move_timeout: 5,
    result_retention: HOURS,
    missed_deadline_slash: 10 * UNIT,
    result_slash: 200 * UNIT,
    // Handing back an assignment the node cannot serve costs a tenth of a miss.
    release_slash: UNIT,
    challenge_reward: Perbill::from_percent(50),
    requester_compensation: Perbill::from_percent(20),
    protocol_fee: Perbill::from_percent(5),
    // Three missed deadlines in a row deactivate an executor (an offline node stops
    // being drawn within one execution timeout of its third assignment).
    max_missed_in_row: 3,
    // A request's storage deposit: 0.01 INFER, plus 10 micro-INFER per byte of input and
    // of the model's largest output (0.01 INFER for tiny-mlp, 1.3 INFER for 64 KiB each
    // way); returned in full when the request is pruned.
    request_deposit_base: UNIT / 100,
    deposit_per_byte: UNIT / 100_000,
    // Every watcher re-checks every result: the dev chain and testnet are small.
    watch_share: Perbill::one(),
    // A node runs at most this many models after each block, and starts none after 2 s
    // of a 3 s block (about 30 MiniLM runs on 2 cores, or a block's 1,024 tiny-mlp
    // requests at ~0.1 ms each).
    max_offchain_runs: 2_048,
    offchain_time_budget: 2_000,
    // A sent transaction that did not land is retried after 2 blocks.
    offchain_retry_blocks: 2,
};

/// The least each parameter may be set to. No bound is zero where zero would switch a
/// protection off: a free wrong result, no watchers, a request that fills state for
/// nothing, a deadline inside the block that assigned it. And a challenge stays worth
/// its bond: the least reward on the least result slash (25% of 200 INFER) is the
/// challenge bond (tested).
pub const MIN_PARAMS: Params = ParamSet {
    min_executor_bond: 200 * UNIT,
    unbonding_period: 10,
    execution_timeout: 2,
    // A watcher needs a block to run the model and one to land its challenge.
    challenge_period: 3,
    move_timeout: 2,
    result_retention: 20,
    missed_deadline_slash: 0,
    result_slash: 200 * UNIT,
    release_slash: 0,
    challenge_reward: Perbill::from_percent(25),
    requester_compensation: Perbill::zero(),
    protocol_fee: Perbill::zero(),
    max_missed_in_row: 1,
    request_deposit_base: UNIT / 10_000,
    deposit_per_byte: UNIT / 10_000_000,
    watch_share: Perbill::from_percent(5),
    max_offchain_runs: 1,
    offchain_time_budget: 100,
    offchain_retry_blocks: 1,
};

/// The most each parameter may be set to. Deadlines stay within hours: every node's
/// off-chain worker scans the deadline queue from now to the longest of them after each
/// block. The off-chain budget leaves half a block for import.
pub const MAX_PARAMS: Params = ParamSet {
    min_executor_bond: 1_000_000 * UNIT,
    unbonding_period: 28 * DAYS,
    execution_timeout: HOURS,
    challenge_period: 6 * HOURS,
    move_timeout: HOURS,
    result_retention: 30 * DAYS,
    missed_deadline_slash: 10_000 * UNIT,
    result_slash: 100_000 * UNIT,
    release_slash: 10_000 * UNIT,
    challenge_reward: Perbill::one(),
    requester_compensation: Perbill::one(),
    protocol_fee: Perbill::from_percent(50),
    max_missed_in_row: 100,
    request_deposit_base: 100 * UNIT,
    deposit_per_byte: UNIT / 100,
    watch_share: Perbill::one(),
    max_offchain_runs: 4_096,
    offchain_time_budget: 2_000,
    offchain_retry_blocks: 100,
};

parameter_types! {
    pub const DefaultProtocolParams: Params = DEFAULT_PARAMS;
    pub const MinProtocolParams: Params = MIN_PARAMS;
    pub const MaxProtocolParams: Params = MAX_PARAMS;
}

impl pallet_protocol_params::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type Balance = Balance;
    /// Root (Sudo, on the development chain only) or the model council's majority.
    type ParamsOrigin = RootOrCouncilMajority;
    type Defaults = DefaultProtocolParams;
    type MinValues = MinProtocolParams;
    type MaxValues = MaxProtocolParams;
    type WeightInfo = pallet_protocol_params::weights::SubstrateWeight<Runtime>;
}

/// One `Get` per tunable parameter, reading the value in force (one storage read, cached
/// for the rest of the block). Only inside the runtime's externalities: native code (the
/// CLI, tests) reads [`DEFAULT_PARAMS`] or the chain's storage.
macro_rules! param_getters {
    ($($name:ident: $ty:ty = $field:ident;)*) => {$(
        #[doc = concat!("The `", stringify!($field), "` parameter in force.")]
        pub struct $name;
        impl Get<$ty> for $name {
            fn get() -> $ty {
                ProtocolParams::current().$field
            }
        }
    )*};
}

param_getters! {
    MinExecutorBond: Balance = min_executor_bond;
    UnbondingPeriod: BlockNumber = unbonding_period;
    ExecutionTimeout: BlockNumber = execution_timeout;
    ChallengePeriod: BlockNumber = challenge_period;
    MoveTimeout: BlockNumber = move_timeout;
    ResultRetention: BlockNumber = result_retention;
    MissedDeadlineSlash: Balance = missed_deadline_slash;
    ResultSlash: Balance = result_slash;
    ReleaseSlash: Balance = release_slash;
    ChallengeReward: Perbill = challenge_reward;
    RequesterCompensation: Perbill = requester_compensation;
    ProtocolFee: Perbill = protocol_fee;
    MaxMissedInRow: u32 = max_missed_in_row;
    RequestDepositBase: Balance = request_deposit_base;
    DepositPerByte: Balance = deposit_per_byte;
    WatchShare: Perbill = watch_share;
    MaxOffchainRuns: u32 = max_offchain_runs;
    OffchainTimeBudget: u64 = offchain_time_budget;
    OffchainRetryBlocks: u32 = offchain_retry_blocks;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RuntimeOrigin, System};
    use frame_support::{assert_noop, assert_ok};
    use pallet_protocol_params::{Error, ParamChange};

    fn ext() -> sp_io::TestExternalities {
        let mut ext = sp_io::TestExternalities::new_empty();
        ext.execute_with(|| System::set_block_number(1));
        ext
    }

    #[test]
    fn defaults_keep_their_bounds_and_relations() {
        assert_eq!(DEFAULT_PARAMS.outside(&MIN_PARAMS, &MAX_PARAMS), None);
        assert_eq!(MIN_PARAMS.outside(&MIN_PARAMS, &MAX_PARAMS), None);
        assert_eq!(DEFAULT_PARAMS.check_relations(), Ok(()));
    }

    #[test]
    fn a_won_challenge_always_pays_at_least_its_bond() {
        let least = MIN_PARAMS.challenge_reward * MIN_PARAMS.result_slash;
        assert!(least >= super::super::ChallengeBond::get(), "{least}");
    }

    #[test]
    fn inference_reads_the_value_governance_set() {
        ext().execute_with(|| {
            assert_eq!(ExecutionTimeout::get(), DEFAULT_PARAMS.execution_timeout);
            assert_eq!(ProtocolFee::get(), DEFAULT_PARAMS.protocol_fee);
            assert_ok!(ProtocolParams::set_parameter(
                RuntimeOrigin::root(),
                ParamChange::ExecutionTimeout(8)
            ));
            assert_ok!(ProtocolParams::set_parameter(
                RuntimeOrigin::root(),
                ParamChange::ProtocolFee(Perbill::from_percent(7))
            ));
            assert_eq!(ExecutionTimeout::get(), 8);
            assert_eq!(
                <Runtime as pallet_inference::Config>::ProtocolFee::get(),
                Perbill::from_percent(7)
            );
            // A signed account is not governance.
            assert_noop!(
                ProtocolParams::set_parameter(
                    RuntimeOrigin::signed(sp_keyring::Sr25519Keyring::Alice.to_account_id()),
                    ParamChange::ExecutionTimeout(9)
                ),
                sp_runtime::DispatchError::BadOrigin
            );
            // Nor may a motion set a deadline past the bound.
            assert_noop!(
                ProtocolParams::set_parameter(
                    RuntimeOrigin::root(),
                    ParamChange::ExecutionTimeout(MAX_PARAMS.execution_timeout + 1)
                ),
                Error::<Runtime>::OutOfBounds
            );
        });
    }
}
