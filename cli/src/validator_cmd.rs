//! `inferchain validator list|set-keys|propose-add|propose-remove`: the validator set
//! governance keeps (pallet-validators), the session keys a validator registers, and the
//! council motions that change the set.

use crate::{
    args::{ChainArgs, ValidatorCommand},
    chain_cmd::connect,
};
use anyhow::{anyhow, bail, Result};
use codec::Encode;
use inferchain_cli::chain::{signing, Chain};
use inferchain_runtime::{AccountId, Runtime, RuntimeCall, SessionKeys};
use serde_json::json;
use sp_core::{
    crypto::{Pair as _, Ss58Codec},
    ed25519,
    proof_of_possession::ProofOfPossessionGenerator,
    sr25519,
};
use std::time::Duration;

fn parse_account(text: &str) -> Result<AccountId> {
    if text.starts_with("//") {
        return Ok(signing::account_of(&signing::pair_from_suri(text)?));
    }
    AccountId::from_ss58check(text)
        .map_err(|e| anyhow!("`{text}` is not an SS58 address or a dev name ({e:?})"))
}

/// The set governance decided (it takes effect two sessions later).
fn governed(client: &Chain) -> Result<Vec<AccountId>> {
    let key = pallet_validators::Validators::<Runtime>::hashed_key();
    Ok(client
        .storage::<Vec<AccountId>>(&key, "validators", None)?
        .unwrap_or_default())
}

/// The set validating this session.
fn active(client: &Chain) -> Result<Vec<AccountId>> {
    let key = pallet_session::Validators::<Runtime>::hashed_key();
    Ok(client
        .storage::<Vec<AccountId>>(&key, "session validators", None)?
        .unwrap_or_default())
}

/// Session keys derived from `suri` (sr25519 for BABE, ed25519 for GRANDPA, as a node
/// started with `--alice` etc. or `key insert` holds them) and the proof that `owner`
/// holds them.
pub fn session_keys(suri: &str, owner: &AccountId) -> Result<(SessionKeys, Vec<u8>)> {
    let mut babe = sr25519::Pair::from_string(suri, None)
        .map_err(|e| anyhow!("`{suri}` is not a secret URI ({e:?})"))?;
    let mut grandpa = ed25519::Pair::from_string(suri, None)
        .map_err(|e| anyhow!("`{suri}` is not a secret URI ({e:?})"))?;
    let owner = owner.encode();
    let proof = (
        babe.generate_proof_of_possession(&owner),
        grandpa.generate_proof_of_possession(&owner),
    )
        .encode();
    Ok((
        SessionKeys {
            babe: babe.public().into(),
            grandpa: grandpa.public().into(),
        },
        proof,
    ))
}

pub fn run(cmd: ValidatorCommand) -> Result<()> {
    match cmd {
        ValidatorCommand::List { chain, json } => list(&chain, json),
        ValidatorCommand::SetKeys {
            suri,
            keys_suri,
            chain,
        } => {
            let client = connect(&chain)?;
            let signer = signing::pair_from_suri(&suri)?;
            let who = signing::account_of(&signer);
            let (keys, proof) = session_keys(keys_suri.as_deref().unwrap_or(&suri), &who)?;
            let included = client.submit_and_wait(
                &signer,
                RuntimeCall::Session(pallet_session::Call::set_keys { keys, proof }),
                Duration::from_secs(chain.timeout),
            )?;
            println!(
                "{who} registered its session keys (block #{}); it validates from the session after next once governance adds it",
                included.block
            );
            Ok(())
        }
        ValidatorCommand::ProposeAdd { who, motion } => {
            let who = parse_account(&who)?;
            crate::council_cmd::propose(
                RuntimeCall::Validators(pallet_validators::Call::add_validator { who }),
                &motion,
            )
        }
        ValidatorCommand::ProposeRemove { who, motion } => {
            let who = parse_account(&who)?;
            let client = connect(&motion.chain)?;
            if !governed(&client)?.contains(&who) {
                bail!("{who} is not a validator");
            }
            crate::council_cmd::propose(
                RuntimeCall::Validators(pallet_validators::Call::remove_validator { who }),
                &motion,
            )
        }
    }
}

fn list(chain: &ChainArgs, json: bool) -> Result<()> {
    let client = connect(chain)?;
    let governed = governed(&client)?;
    let active = active(&client)?;
    let session: u32 = client
        .storage(
            &pallet_session::CurrentIndex::<Runtime>::hashed_key(),
            "session index",
            None,
        )?
        .unwrap_or_default();
    let set_id: u64 = client
        .storage(
            &frame_support::storage::storage_prefix(b"Grandpa", b"CurrentSetId"),
            "GRANDPA set id",
            None,
        )?
        .unwrap_or_default();
    let names = |v: &[AccountId]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    if json {
        println!(
            "{}",
            json!({
                "session": session,
                "grandpa_set_id": set_id,
                "active": names(&active),
                "governed": names(&governed),
            })
        );
        return Ok(());
    }
    println!("session {session}, GRANDPA set {set_id}");
    println!("validating now ({}):", active.len());
    for v in &active {
        println!("  {v}");
    }
    if governed != active {
        println!(
            "decided by governance, from a coming session ({}):",
            governed.len()
        );
        for v in &governed {
            println!("  {v}");
        }
    }
    Ok(())
}
