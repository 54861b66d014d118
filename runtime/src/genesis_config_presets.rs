//! Genesis presets: `development` (Alice alone authors and finalizes) and
//! `local_testnet` (Alice, Bob, Charlie and Dave as BABE + GRANDPA authorities, through
//! their session keys; governance changes the set later).
//! Validators are also bonded inference executors: Alice and Bob on the dev chain, all
//! four on the local testnet. Both register the models of `dev_models`, and every
//! genesis executor serves them all. The model council is Alice, Bob and Charlie on both;
//! only the development chain has a sudo key (Alice).

use crate::{
    AccountId, BabeConfig, BalancesConfig, CouncilMembershipConfig, InferenceConfig, ModelsConfig,
    RuntimeGenesisConfig, SessionConfig, SessionKeys, SudoConfig, ValidatorsConfig, UNIT,
};
use alloc::{vec, vec::Vec};
use serde_json::Value;
use sp_consensus_babe::AuthorityId as BabeId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_genesis_builder::{self, PresetId};
use sp_keyring::{Ed25519Keyring, Sr25519Keyring};

/// Balance given to every endowed dev account: a million tokens.
const ENDOWMENT: u128 = 1_000_000 * UNIT;

/// Bond of each genesis executor: ten times the minimum.
const EXECUTOR_BOND: u128 = 10_000 * UNIT;

/// Requests each genesis executor works on at once (it serves every genesis model): four
/// full batches, so that the two dev executors take a block's 1,024 tiny-mlp requests
/// (~0.1 ms each). Capacity counts requests, whatever the model: a node answers ~30
/// MiniLM requests per block, so an operator serving only heavy models declares less.
const EXECUTOR_CAPACITY: u32 = 512;

fn testnet_genesis(
    initial_authorities: Vec<(AccountId, BabeId, GrandpaId)>,
    endowed_accounts: Vec<AccountId>,
    executors: Vec<AccountId>,
    root: Option<AccountId>,
) -> Value {
    let config = RuntimeGenesisConfig {
        balances: BalancesConfig {
            balances: endowed_accounts
                .iter()
                .cloned()
                .map(|k| (k, ENDOWMENT))
                .collect(),
            ..Default::default()
        },
        // BABE's and GRANDPA's first authorities come from the session keys below
        // (pallet-session's genesis hands them over), so their own lists stay empty.
        babe: BabeConfig {
            epoch_config: crate::BABE_GENESIS_EPOCH_CONFIG,
            ..Default::default()
        },
        validators: ValidatorsConfig {
            validators: initial_authorities.iter().map(|x| x.0.clone()).collect(),
        },
        session: SessionConfig {
            keys: initial_authorities
                .iter()
                .map(|(who, babe, grandpa)| {
                    (
                        who.clone(),
                        who.clone(),
                        SessionKeys {
                            babe: babe.clone(),
                            grandpa: grandpa.clone(),
                        },
                    )
                })
                .collect(),
            ..Default::default()
        },
        sudo: SudoConfig { key: root },
        council_membership: CouncilMembershipConfig {
            members: council()
                .try_into()
                .expect("the genesis council fits CouncilMaxMembers; qed"),
            ..Default::default()
        },
        models: ModelsConfig {
            models: crate::dev_models::genesis_models(),
            commitments: crate::dev_models::genesis_commitments(),
        },
        inference: InferenceConfig {
            executors: executors.into_iter().map(|e| (e, EXECUTOR_BOND)).collect(),
            served_models: crate::dev_models::genesis_models()
                .iter()
                .map(|m| m.artifact_hash)
                .collect(),
            capacity: EXECUTOR_CAPACITY,
        },
        ..Default::default()
    };
    serde_json::to_value(config).expect("the genesis config serializes to JSON; qed")
}

fn authority(who: Sr25519Keyring, grandpa: Ed25519Keyring) -> (AccountId, BabeId, GrandpaId) {
    (
        who.to_account_id(),
        who.public().into(),
        grandpa.public().into(),
    )
}

/// The genesis model council.
fn council() -> Vec<AccountId> {
    [
        Sr25519Keyring::Alice,
        Sr25519Keyring::Bob,
        Sr25519Keyring::Charlie,
    ]
    .iter()
    .map(|k| k.to_account_id())
    .collect()
}

fn dev_accounts() -> Vec<AccountId> {
    Sr25519Keyring::iter()
        .filter(|k| *k != Sr25519Keyring::One && *k != Sr25519Keyring::Two)
        .map(|k| k.to_account_id())
        .collect()
}

/// The single-validator development chain.
pub fn development_config_genesis() -> Value {
    testnet_genesis(
        vec![authority(Sr25519Keyring::Alice, Ed25519Keyring::Alice)],
        dev_accounts(),
        vec![
            Sr25519Keyring::Alice.to_account_id(),
            Sr25519Keyring::Bob.to_account_id(),
        ],
        Some(Sr25519Keyring::Alice.to_account_id()),
    )
}

/// The four-validator local testnet: no sudo key, the council governs.
pub fn local_config_genesis() -> Value {
    testnet_genesis(
        vec![
            authority(Sr25519Keyring::Alice, Ed25519Keyring::Alice),
            authority(Sr25519Keyring::Bob, Ed25519Keyring::Bob),
            authority(Sr25519Keyring::Charlie, Ed25519Keyring::Charlie),
            authority(Sr25519Keyring::Dave, Ed25519Keyring::Dave),
        ],
        dev_accounts(),
        [
            Sr25519Keyring::Alice,
            Sr25519Keyring::Bob,
            Sr25519Keyring::Charlie,
            Sr25519Keyring::Dave,
        ]
        .iter()
        .map(|k| k.to_account_id())
        .collect(),
        None,
    )
}

/// The JSON of the preset named `id`, if there is one.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
    let patch = match id.as_ref() {
        sp_genesis_builder::DEV_RUNTIME_PRESET => development_config_genesis(),
        sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET => local_config_genesis(),
        _ => return None,
    };
    Some(
        serde_json::to_string(&patch)
            .expect("a JSON value serializes to a string; qed")
            .into_bytes(),
    )
}

/// The presets this runtime offers.
pub fn preset_names() -> Vec<PresetId> {
    vec![
        PresetId::from(sp_genesis_builder::DEV_RUNTIME_PRESET),
        PresetId::from(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET),
    ]
}
