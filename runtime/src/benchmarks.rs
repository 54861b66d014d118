//! The pallets whose weights `inferchain-node benchmark pallet` measures.

frame_benchmarking::define_benchmarks!(
    [frame_benchmarking, BaselineBench::<Runtime>]
    [frame_system, SystemBench::<Runtime>]
    [pallet_balances, Balances]
    [pallet_timestamp, Timestamp]
    [pallet_sudo, Sudo]
    [pallet_validators, Validators]
    [pallet_protocol_params, ProtocolParams]
    [pallet_upgrades, Upgrades]
    [pallet_models, Models]
    [pallet_inference, Inference]
    [pallet_memory, Memory]
);

impl frame_system_benchmarking::Config for crate::Runtime {}
impl frame_benchmarking::baseline::Config for crate::Runtime {}
