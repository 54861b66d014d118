//! `inferchain council list|vote|close` and the `model propose*` motions: the model
//! council (pallet-collective) through signed extrinsics.

use crate::{
    args::{ChainArgs, CouncilCommand, MotionArgs},
    chain_cmd::connect,
    output::hex0x,
};
use anyhow::{anyhow, bail, Result};
use codec::Encode;
use frame_support::dispatch::GetDispatchInfo;
use inferchain_cli::chain::{describe_error, signing, Chain, Included};
use inferchain_runtime::{AccountId, Runtime, RuntimeCall, RuntimeEvent};
use serde_json::{json, Value};
use sp_core::H256;
use std::time::Duration;

type CouncilInstance = inferchain_runtime::configs::governance::CouncilInstance;
type CouncilEvent = pallet_collective::Event<Runtime, CouncilInstance>;
type CouncilCall = pallet_collective::Call<Runtime, CouncilInstance>;

fn council_events(included: &Included) -> impl Iterator<Item = &CouncilEvent> {
    included.events.iter().filter_map(|e| match e {
        RuntimeEvent::Council(e) => Some(e),
        _ => None,
    })
}

fn members(client: &Chain) -> Result<Vec<AccountId>> {
    let key = pallet_collective::Members::<Runtime, CouncilInstance>::hashed_key();
    Ok(client
        .storage::<Vec<AccountId>>(&key, "council members", None)?
        .unwrap_or_default())
}

/// How many members the council has.
pub fn member_count(client: &Chain) -> Result<u32> {
    Ok(members(client)?.len() as u32)
}

fn open_motions(client: &Chain) -> Result<Vec<H256>> {
    let key = pallet_collective::Proposals::<Runtime, CouncilInstance>::hashed_key();
    Ok(client
        .storage::<Vec<H256>>(&key, "council proposals", None)?
        .unwrap_or_default())
}

/// `pallet_collective::Votes`, whose fields are private: the same SCALE layout.
#[derive(codec::Decode)]
struct Votes {
    index: u32,
    threshold: u32,
    ayes: Vec<AccountId>,
    nays: Vec<AccountId>,
    end: inferchain_runtime::BlockNumber,
}

fn votes(client: &Chain, motion: H256) -> Result<Option<Votes>> {
    let key = pallet_collective::Voting::<Runtime, CouncilInstance>::hashed_key_for(motion);
    Ok(client.storage(&key, "council votes", None)?)
}

fn proposal(client: &Chain, motion: H256) -> Result<Option<RuntimeCall>> {
    let key = pallet_collective::ProposalOf::<Runtime, CouncilInstance>::hashed_key_for(motion);
    Ok(client.storage(&key, "council proposal", None)?)
}

fn parse_hash(text: &str) -> Result<H256> {
    let bytes = hex::decode(text.trim_start_matches("0x"))
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| anyhow!("`{text}` is not a motion hash (64 hex digits; `inferchain council list` shows them)"))?;
    Ok(H256::from_slice(&bytes))
}

/// A short description of a proposed call.
fn describe(call: &RuntimeCall) -> String {
    match call {
        RuntimeCall::Utility(pallet_utility::Call::batch_all { calls }) => {
            calls.iter().map(describe).collect::<Vec<_>>().join(" + ")
        }
        RuntimeCall::Models(pallet_models::Call::register_model { spec }) => format!(
            "register model {} ({}, fee {})",
            hex0x(spec.artifact_hash.as_bytes()),
            String::from_utf8_lossy(&spec.name),
            spec.fee
        ),
        RuntimeCall::Models(pallet_models::Call::set_model_commitments { id, .. }) => {
            format!("set the dispute commitments of {}", hex0x(id.as_bytes()))
        }
        RuntimeCall::Models(pallet_models::Call::set_model_fee { id, fee }) => {
            format!("set the fee of {} to {fee}", hex0x(id.as_bytes()))
        }
        RuntimeCall::Models(pallet_models::Call::set_model_status { id, status }) => {
            format!("set the status of {} to {status:?}", hex0x(id.as_bytes()))
        }
        RuntimeCall::Upgrades(pallet_upgrades::Call::authorize_upgrade { code_hash }) => {
            format!(
                "authorize the runtime upgrade to code {}",
                hex0x(code_hash.as_bytes())
            )
        }
        RuntimeCall::ProtocolParams(pallet_protocol_params::Call::set_parameter { change }) => {
            crate::params_cmd::describe_change(change)
        }
        other => {
            let mut text = format!("{other:?}");
            text.truncate(160);
            text
        }
    }
}

/// Proposes `call` to the council as `motion.suri` and votes aye on it; prints the
/// motion's hash.
pub fn propose(call: RuntimeCall, motion: &MotionArgs) -> Result<()> {
    let client = connect(&motion.chain)?;
    let signer = signing::pair_from_suri(&motion.suri)?;
    let who = signing::account_of(&signer);
    let council = members(&client)?;
    if !council.contains(&who) {
        bail!(
            "{who} is not a council member; the members are: {}",
            council
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let threshold = motion.threshold.unwrap_or(council.len() as u32 / 2 + 1);
    let description = describe(&call);
    let length_bound = call.encoded_size() as u32;
    let timeout = Duration::from_secs(motion.chain.timeout);
    let proposed = client.submit_and_wait(
        &signer,
        RuntimeCall::Council(CouncilCall::propose {
            threshold,
            proposal: Box::new(call),
            length_bound,
        }),
        timeout,
    )?;
    let (index, hash) = council_events(&proposed)
        .find_map(|e| match e {
            CouncilEvent::Proposed {
                proposal_index,
                proposal_hash,
                ..
            } => Some((*proposal_index, *proposal_hash)),
            _ => None,
        })
        .ok_or_else(|| {
            anyhow!(
                "no Proposed event in block #{} (a threshold of 1 executes at once)",
                proposed.block
            )
        })?;
    let voted = client.submit_and_wait(
        &signer,
        RuntimeCall::Council(CouncilCall::vote {
            proposal: hash,
            index,
            approve: true,
        }),
        timeout,
    )?;
    println!(
        "motion {} (#{index}, block #{}): {description}; needs {threshold} ayes of {}; {who} voted aye (block #{})",
        hex0x(hash.as_bytes()),
        proposed.block,
        council.len(),
        voted.block
    );
    Ok(())
}

pub fn run(cmd: CouncilCommand) -> Result<()> {
    match cmd {
        CouncilCommand::List { chain, json } => list(&chain, json),
        CouncilCommand::Vote {
            motion,
            aye,
            nay: _,
            suri,
            chain,
        } => {
            let client = connect(&chain)?;
            let hash = parse_hash(&motion)?;
            let votes = votes(&client, hash)?.ok_or_else(|| {
                anyhow!("no open motion {motion}; `inferchain council list` shows them")
            })?;
            let signer = signing::pair_from_suri(&suri)?;
            let included = client.submit_and_wait(
                &signer,
                RuntimeCall::Council(CouncilCall::vote {
                    proposal: hash,
                    index: votes.index,
                    approve: aye,
                }),
                Duration::from_secs(chain.timeout),
            )?;
            let (yes, no) = council_events(&included)
                .find_map(|e| match e {
                    CouncilEvent::Voted { yes, no, .. } => Some((*yes, *no)),
                    _ => None,
                })
                .ok_or_else(|| anyhow!("no Voted event in block #{}", included.block))?;
            println!(
                "voted {} on {motion} (block #{}): {yes} aye, {no} nay of {} needed",
                if aye { "aye" } else { "nay" },
                included.block,
                votes.threshold
            );
            Ok(())
        }
        CouncilCommand::Close {
            motion,
            suri,
            chain,
        } => close(&motion, &suri, &chain),
    }
}

fn close(motion: &str, suri: &str, chain: &ChainArgs) -> Result<()> {
    let client = connect(chain)?;
    let hash = parse_hash(motion)?;
    let votes = votes(&client, hash)?
        .ok_or_else(|| anyhow!("no open motion {motion}; `inferchain council list` shows them"))?;
    let call = proposal(&client, hash)?
        .ok_or_else(|| anyhow!("motion {motion} has votes but no stored proposal"))?;
    let signer = signing::pair_from_suri(suri)?;
    let included = client.submit_and_wait(
        &signer,
        RuntimeCall::Council(CouncilCall::close {
            proposal_hash: hash,
            index: votes.index,
            proposal_weight_bound: call.get_dispatch_info().call_weight,
            length_bound: call.encoded_size() as u32,
        }),
        Duration::from_secs(chain.timeout),
    )?;
    for event in council_events(&included) {
        match event {
            CouncilEvent::Executed { result: Ok(()), .. } => {
                println!(
                    "motion {motion} approved and executed (block #{}): {}",
                    included.block,
                    describe(&call)
                );
                return Ok(());
            }
            CouncilEvent::Executed { result: Err(e), .. } => bail!(
                "motion {motion} was approved but its call failed in block #{}: {}",
                included.block,
                describe_error(e)
            ),
            CouncilEvent::Disapproved { .. } => bail!(
                "motion {motion} was disapproved (block #{}): too few ayes",
                included.block
            ),
            _ => {}
        }
    }
    bail!(
        "closing {motion} in block #{} had no outcome",
        included.block
    )
}

fn list(chain: &ChainArgs, json: bool) -> Result<()> {
    let client = connect(chain)?;
    let council = members(&client)?;
    let mut motions = Vec::new();
    for hash in open_motions(&client)? {
        let Some(votes) = votes(&client, hash)? else {
            continue;
        };
        let call = proposal(&client, hash)?;
        motions.push(json!({
            "motion": hex0x(hash.as_bytes()),
            "index": votes.index,
            "call": call.as_ref().map(describe),
            "threshold": votes.threshold,
            "ayes": votes.ayes.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "nays": votes.nays.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "end": votes.end,
        }));
    }
    if json {
        let report: Value = json!({
            "members": council.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            "motions": motions,
        });
        println!("{report}");
        return Ok(());
    }
    println!("council: {} members", council.len());
    for m in &council {
        println!("  {m}");
    }
    if motions.is_empty() {
        println!("no open motions");
    }
    for m in &motions {
        println!(
            "motion {} #{}: {}\n  {} of {} ayes needed, {} nays; open until block #{}",
            m["motion"].as_str().unwrap_or_default(),
            m["index"],
            m["call"].as_str().unwrap_or("(proposal not stored)"),
            m["ayes"].as_array().map_or(0, Vec::len),
            m["threshold"],
            m["nays"].as_array().map_or(0, Vec::len),
            m["end"]
        );
    }
    Ok(())
}
