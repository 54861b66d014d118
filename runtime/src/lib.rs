//! # inferchain runtime
//!
//! The chain's state transition function: FRAME pallets composed with explicit indices,
//! their configuration (`configs`), the runtime APIs the node and clients call (`apis`)
//! and the genesis presets (`genesis_config_presets`).
//!
//! What it must not do: reach the inference engine. Block execution is deterministic;
//! inference happens only in off-chain workers through the host function declared in
//! `inferchain-primitives`, never while importing or authoring a block.

#![cfg_attr(not(feature = "std"), no_std)]
// `impl_runtime_apis!` and `#[runtime]` expand to code we do not control.
#![allow(clippy::unwrap_used)]

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

/// The next release's runtime: this code with the spec version one higher (the
/// `next-spec-version` feature, built to wasm beside the runtime by `build.rs`). The
/// runtime-upgrade test enacts it on the local testnet by council motion.
#[cfg(feature = "std")]
pub mod next_runtime {
    include!(concat!(env!("OUT_DIR"), "/next_runtime_wasm.rs"));
}

extern crate alloc;

use alloc::vec::Vec;

pub mod apis;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarks;
mod block_capacity;
pub mod configs;
pub mod dev_models;
mod fee_adjustment;
pub mod genesis_config_presets;

use sp_runtime::{
    generic, impl_opaque_keys,
    traits::{BlakeTwo256, IdentifyAccount, Verify},
    MultiAddress, MultiSignature,
};
use sp_version::RuntimeVersion;

pub use frame_system::Call as SystemCall;
pub use pallet_balances::Call as BalancesCall;
pub use pallet_timestamp::Call as TimestampCall;
#[cfg(any(feature = "std", test))]
pub use sp_runtime::BuildStorage;

/// Types the node uses without knowing the runtime's extrinsic format.
pub mod opaque {
    use super::*;
    pub use sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;

    /// Opaque block header type.
    pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
    /// Opaque block type.
    pub type Block = generic::Block<Header, UncheckedExtrinsic>;
    /// Opaque block hash type.
    pub type Hash = <BlakeTwo256 as sp_runtime::traits::Hash>::Output;
}

impl_opaque_keys! {
    /// The consensus keys a validator registers: BABE for authoring (its VRF), GRANDPA
    /// for finality.
    pub struct SessionKeys {
        pub babe: Babe,
        pub grandpa: Grandpa,
    }
}

// The version macro takes literals only, hence two declarations: the second is the
// next release's (`next_runtime`), the same but for its spec version.
// The feature is for build.rs's second wasm build only: a native build with it (a
// `--all-features` build, say) would also make the main wasm runtime the next release's.
#[cfg(all(feature = "std", feature = "next-spec-version"))]
compile_error!(
    "`next-spec-version` is only for the next release's wasm runtime that build.rs builds; \
     build without it"
);
// Spec 200 starts the BABE line: a chain that began under Aura (spec ≤ 107) cannot
// upgrade into it (its blocks carry no BABE pre-digest), it starts from a new genesis.
#[cfg(not(feature = "next-spec-version"))]
#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
    spec_name: alloc::borrow::Cow::Borrowed("inferchain"),
    impl_name: alloc::borrow::Cow::Borrowed("inferchain"),
    authoring_version: 1,
    spec_version: 202,
    impl_version: 1,
    apis: apis::RUNTIME_API_VERSIONS,
    transaction_version: 5,
    system_version: 1,
};

#[cfg(feature = "next-spec-version")]
#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
    spec_name: alloc::borrow::Cow::Borrowed("inferchain"),
    impl_name: alloc::borrow::Cow::Borrowed("inferchain"),
    authoring_version: 1,
    spec_version: 203,
    impl_version: 1,
    apis: apis::RUNTIME_API_VERSIONS,
    transaction_version: 5,
    system_version: 1,
};

/// Block time. Short on purpose: challenge windows are counted in blocks, and the dev
/// chain's demo and end-to-end tests should run in seconds.
pub const MILLI_SECS_PER_BLOCK: u64 = 3000;
/// BABE slot length; it cannot change once the chain runs.
pub const SLOT_DURATION: u64 = MILLI_SECS_PER_BLOCK;
/// BABE epoch length in slots (30 s), fixed for the chain's life. Sessions end only at
/// epoch boundaries (`configs::validators`), so this is also how fast a validator change
/// governance makes is queued and then enacted.
pub const EPOCH_DURATION_IN_SLOTS: u64 = 10;
/// BABE's genesis epoch configuration: a primary (VRF lottery) slot leader one slot in
/// four on average, and a secondary VRF leader for every other slot, so every slot has an
/// author and every block carries a VRF output (the randomness the draws use).
pub const BABE_GENESIS_EPOCH_CONFIG: sp_consensus_babe::BabeEpochConfiguration =
    sp_consensus_babe::BabeEpochConfiguration {
        c: (1, 4),
        allowed_slots: sp_consensus_babe::AllowedSlots::PrimaryAndSecondaryVRFSlots,
    };
/// Blocks per minute.
pub const MINUTES: BlockNumber = 60_000 / (MILLI_SECS_PER_BLOCK as BlockNumber);
/// Blocks per hour.
pub const HOURS: BlockNumber = MINUTES * 60;
/// Blocks per day.
pub const DAYS: BlockNumber = HOURS * 24;

/// One token: 12 decimals.
pub const UNIT: Balance = 1_000_000_000_000;
/// A thousandth of a token.
pub const MILLI_UNIT: Balance = 1_000_000_000;
/// A millionth of a token.
pub const MICRO_UNIT: Balance = 1_000_000;
/// Existential deposit.
pub const EXISTENTIAL_DEPOSIT: Balance = MILLI_UNIT;

/// Signatures: sr25519, ed25519 or ecdsa.
pub type Signature = MultiSignature;
/// An account: the public key of the signature scheme.
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// Balance of an account.
pub type Balance = u128;
/// Index of a transaction in the chain.
pub type Nonce = u32;
/// A hash of some data used by the chain.
pub type Hash = sp_core::H256;
/// An index to a block.
pub type BlockNumber = u32;
/// The address format for describing accounts.
pub type Address = MultiAddress<AccountId, ()>;
/// Block header type as expected by this runtime.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
/// Block type as expected by this runtime.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;

/// The transaction extensions every signed extrinsic carries.
pub type TxExtension = (
    frame_system::CheckNonZeroSender<Runtime>,
    frame_system::CheckSpecVersion<Runtime>,
    frame_system::CheckTxVersion<Runtime>,
    frame_system::CheckGenesis<Runtime>,
    frame_system::CheckEra<Runtime>,
    frame_system::CheckNonce<Runtime>,
    frame_system::CheckWeight<Runtime>,
    pallet_inference::PrioritizeDuties<Runtime>,
    pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
);

/// Unchecked extrinsic type as expected by this runtime.
pub type UncheckedExtrinsic =
    generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;
/// The payload being signed in transactions.
pub type SignedPayload = generic::SignedPayload<RuntimeCall, TxExtension>;

/// Runtime migrations: runtime 101 removed the inference pallet's jury, and settles any
/// dispute it left open; runtime 102 counts executors' pending requests into their new
/// service records; runtime 105 gives each registered spec a cost.
type Migrations = (
    pallet_inference::migrations::RemoveJury<Runtime>,
    pallet_inference::migrations::RecountPending<Runtime>,
    pallet_models::migrations::AddCosts<Runtime>,
);

/// Executive: dispatches to the pallets.
pub type Executive = frame_executive::Executive<
    Runtime,
    Block,
    frame_system::ChainContext<Runtime>,
    Runtime,
    AllPalletsWithSystem,
    Migrations,
>;

#[frame_support::runtime]
mod runtime {
    #[runtime::runtime]
    #[runtime::derive(
        RuntimeCall,
        RuntimeEvent,
        RuntimeError,
        RuntimeOrigin,
        RuntimeFreezeReason,
        RuntimeHoldReason,
        RuntimeSlashReason,
        RuntimeLockId,
        RuntimeTask,
        RuntimeViewFunction
    )]
    pub struct Runtime;

    #[runtime::pallet_index(0)]
    pub type System = frame_system;

    #[runtime::pallet_index(1)]
    pub type Timestamp = pallet_timestamp;

    #[runtime::pallet_index(2)]
    pub type Babe = pallet_babe;

    #[runtime::pallet_index(3)]
    pub type Grandpa = pallet_grandpa;

    #[runtime::pallet_index(4)]
    pub type Balances = pallet_balances;

    #[runtime::pallet_index(5)]
    pub type TransactionPayment = pallet_transaction_payment;

    #[runtime::pallet_index(6)]
    pub type Sudo = pallet_sudo;

    // Index 7 was collective-flip randomness, replaced by BABE's VRF.

    #[runtime::pallet_index(8)]
    pub type Models = pallet_models;

    #[runtime::pallet_index(9)]
    pub type Inference = pallet_inference;

    #[runtime::pallet_index(10)]
    pub type Memory = pallet_memory;

    #[runtime::pallet_index(11)]
    pub type Council = pallet_collective<Instance1>;

    #[runtime::pallet_index(12)]
    pub type CouncilMembership = pallet_membership<Instance1>;

    #[runtime::pallet_index(13)]
    pub type Utility = pallet_utility;

    // Before Session: its genesis hands the first set to Session's.
    #[runtime::pallet_index(14)]
    pub type Validators = pallet_validators;

    #[runtime::pallet_index(15)]
    pub type Session = pallet_session;

    #[runtime::pallet_index(16)]
    pub type ProtocolParams = pallet_protocol_params;

    #[runtime::pallet_index(17)]
    pub type Upgrades = pallet_upgrades;
}
