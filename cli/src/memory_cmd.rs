//! `inferchain memory create|remember|forget|recall|grant|revoke|list`.

use crate::{
    args::MemoryCommand,
    chain_cmd::{connect, local_engine, resolve_model, wait_for},
    output::hex0x,
};
use anyhow::{anyhow, bail, Context, Result};
use codec::Encode;
use inferchain_cli::chain::{memory::recall_locally, signing};
use inferchain_primitives::{io::Payload, recall};
use inferchain_runtime::{AccountId, Runtime, RuntimeCall, RuntimeEvent};
use pallet_memory::{Event as MemoryEvent, MemoryState, Scope};
use serde_json::json;
use sp_core::crypto::Ss58Codec;
use std::{
    path::Path,
    time::{Duration, Instant},
};

const PUBLIC: &str = "memory text is public chain state: every node, executor and indexer can read it; never store secrets";

fn memory_events(events: &[RuntimeEvent]) -> impl Iterator<Item = &MemoryEvent<Runtime>> {
    events.iter().filter_map(|e| match e {
        RuntimeEvent::Memory(e) => Some(e),
        _ => None,
    })
}

fn parse_agent(text: &str) -> Result<AccountId> {
    AccountId::from_ss58check(text)
        .map_err(|e| anyhow!("`{text}` is not an SS58 account address ({e:?})"))
}

pub fn run(store: &Path, cmd: MemoryCommand) -> Result<()> {
    match cmd {
        MemoryCommand::Create {
            model,
            chain,
            suri,
            json,
        } => {
            let client = connect(&chain)?;
            let model = resolve_model(&client, &model)?;
            let signer = signing::pair_from_suri(&suri)?;
            let call = RuntimeCall::Memory(pallet_memory::Call::create_space {
                embedding_model: model,
            });
            let included = client
                .submit_and_wait(&signer, call, Duration::from_secs(chain.timeout))
                .context("the space was not created (is the model an active embedding model?)")?;
            let space = memory_events(&included.events)
                .find_map(|e| match e {
                    MemoryEvent::SpaceCreated { space, .. } => Some(*space),
                    _ => None,
                })
                .ok_or_else(|| anyhow!("no SpaceCreated event in block #{}", included.block))?;
            if json {
                println!(
                    "{}",
                    json!({"space": space, "model": hex0x(model.as_bytes()), "block": included.block})
                );
            } else {
                println!(
                    "space {space}: created in block #{}, embedded by {}",
                    included.block,
                    hex0x(model.as_bytes())
                );
                println!("note: {PUBLIC}");
            }
            Ok(())
        }
        MemoryCommand::Remember {
            space,
            text,
            supersedes,
            max_fee,
            wait,
            chain,
            suri,
            json,
        } => {
            let client = connect(&chain)?;
            let info = client
                .space(space, None)?
                .ok_or_else(|| anyhow!("no memory space {space} on this chain"))?;
            let model = client
                .model(info.embedding_model, None)?
                .ok_or_else(|| anyhow!("the space's embedding model is not registered"))?;
            let signer = signing::pair_from_suri(&suri)?;
            let call = RuntimeCall::Memory(pallet_memory::Call::remember {
                space,
                text: text.as_bytes().to_vec().try_into().map_err(|_| {
                    anyhow!(
                        "{} bytes: more than the chain's memory text limit",
                        text.len()
                    )
                })?,
                supersedes,
                max_fee: max_fee.unwrap_or(model.spec.fee),
            });
            let timeout = Duration::from_secs(chain.timeout);
            let started = Instant::now();
            let included = client
                .submit_and_wait(&signer, call, timeout)
                .context("the memory was not stored")?;
            let (memory, request) = memory_events(&included.events)
                .find_map(|e| match e {
                    MemoryEvent::Remembered {
                        memory, request, ..
                    } => Some((*memory, *request)),
                    _ => None,
                })
                .ok_or_else(|| anyhow!("no Remembered event in block #{}", included.block))?;
            if !json {
                println!(
                    "memory {space}/{memory}: stored in block #{}, embedding request {request}",
                    included.block
                );
                println!("note: {PUBLIC}");
            }
            let mut state = "embedding";
            if wait {
                let key = pallet_memory::Memories::<Runtime>::hashed_key_for(space, memory);
                let end = wait_for(timeout, started, "the memory's embedding", || {
                    let m: Option<pallet_memory::MemoryOf<Runtime>> =
                        client.storage(&key, "memory", None)?;
                    Ok(match m.map(|m| m.state) {
                        Some(MemoryState::Ready) => Some("ready"),
                        Some(MemoryState::Failed) => Some("failed"),
                        None => Some("forgotten"),
                        Some(MemoryState::Embedding { .. }) => None,
                    })
                })?;
                state = end;
                if !json {
                    println!("memory {space}/{memory}: {end}");
                }
                if end != "ready" {
                    bail!("memory {space}/{memory} is {end}: its embedding request {request} did not become final (`inferchain result {request}`)");
                }
            }
            if json {
                println!(
                    "{}",
                    json!({"space": space, "memory": memory, "request": request, "block": included.block, "state": state})
                );
            }
            Ok(())
        }
        MemoryCommand::Forget {
            space,
            memory,
            chain,
            suri,
        } => {
            let client = connect(&chain)?;
            let signer = signing::pair_from_suri(&suri)?;
            let call = RuntimeCall::Memory(pallet_memory::Call::forget { space, memory });
            let included = client
                .submit_and_wait(&signer, call, Duration::from_secs(chain.timeout))
                .context("the memory was not forgotten")?;
            let returned = memory_events(&included.events).find_map(|e| match e {
                MemoryEvent::Forgotten {
                    deposit_returned, ..
                } => Some(*deposit_returned),
                _ => None,
            });
            println!(
                "memory {space}/{memory}: forgotten in block #{} (deposit returned: {})",
                included.block,
                returned.map_or("?".into(), |d| d.to_string())
            );
            Ok(())
        }
        MemoryCommand::Grant {
            space,
            agent,
            write,
            chain,
            suri,
        } => {
            let client = connect(&chain)?;
            let signer = signing::pair_from_suri(&suri)?;
            let scope = if write { Scope::ReadWrite } else { Scope::Read };
            let call = RuntimeCall::Memory(pallet_memory::Call::grant {
                space,
                agent: parse_agent(&agent)?,
                scope,
            });
            let included = client
                .submit_and_wait(&signer, call, Duration::from_secs(chain.timeout))
                .context("the grant was not made (only the space's owner grants)")?;
            println!(
                "space {space}: {agent} granted {scope:?} in block #{}",
                included.block
            );
            Ok(())
        }
        MemoryCommand::Revoke {
            space,
            agent,
            chain,
            suri,
        } => {
            let client = connect(&chain)?;
            let signer = signing::pair_from_suri(&suri)?;
            let call = RuntimeCall::Memory(pallet_memory::Call::revoke {
                space,
                agent: parse_agent(&agent)?,
            });
            let included = client
                .submit_and_wait(&signer, call, Duration::from_secs(chain.timeout))
                .context("the grant was not revoked")?;
            println!(
                "space {space}: {agent} revoked in block #{}",
                included.block
            );
            Ok(())
        }
        MemoryCommand::List { space, chain, json } => {
            let client = connect(&chain)?;
            let info = client
                .space(space, None)?
                .ok_or_else(|| anyhow!("no memory space {space} on this chain"))?;
            let memories = client.memories(space, None)?;
            if json {
                let list: Vec<_> = memories
                    .iter()
                    .map(|(id, m)| {
                        json!({
                            "memory": id,
                            "author": m.author.to_string(),
                            "state": format!("{:?}", m.state),
                            "text": String::from_utf8_lossy(&m.text),
                            "uses": m.uses,
                            "created": m.created,
                            "last_used": m.last_used,
                            "supersedes": m.supersedes,
                            "superseded_by": m.superseded_by,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    json!({"space": space, "owner": info.owner.to_string(), "model": hex0x(info.embedding_model.as_bytes()), "memories": list})
                );
                return Ok(());
            }
            println!(
                "space {space}: owner {}, model {}, {} memories ({} dimensions)",
                info.owner,
                hex0x(info.embedding_model.as_bytes()),
                info.memories,
                info.dimensions
            );
            for (id, m) in &memories {
                let versions = match (m.supersedes, m.superseded_by) {
                    (_, Some(n)) => format!(" (superseded by {n})"),
                    (Some(o), None) => format!(" (updates {o})"),
                    _ => String::new(),
                };
                println!(
                    "  {id}: {:?}, used {} times{versions}: {}",
                    m.state,
                    m.uses,
                    String::from_utf8_lossy(&m.text)
                );
            }
            Ok(())
        }
        MemoryCommand::Recall {
            space,
            text,
            k,
            chain,
            json,
        } => {
            let client = connect(&chain)?;
            let (_, at) = client.finalized()?;
            // The space and every memory, with storage proofs against the finalized
            // block's state root.
            let (info, memories) = client
                .proven_space(space, at)?
                .ok_or_else(|| anyhow!("no memory space {space} at the finalized block"))?;
            let model = client
                .model(info.embedding_model, Some(at))?
                .ok_or_else(|| anyhow!("the space's embedding model is not registered"))?;
            // The query's embedding, on this CPU: the same bits an executor computes.
            let engine = local_engine(store, info.embedding_model, &model.spec)?;
            let input = Payload::Text(text.as_bytes().to_vec()).encode();
            let output = engine.run_encoded(
                &info.embedding_model,
                &input,
                &model.spec.input,
                &model.spec.numerics,
            )?;
            let values = match Payload::decode_canonical(&output) {
                Ok(Payload::Tensors(t)) if t.len() == 1 => t[0]
                    .data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect::<Vec<f32>>(),
                _ => bail!("the space's model did not return one tensor"),
            };
            let query = recall::quantize(&values);
            let on_chain = client
                .recall_on_chain(space, &query, k, Some(at))?
                .map_err(|e| anyhow!("the runtime refused the recall: {e:?}"))?;
            let here = recall_locally(&memories, &query, k, None);
            let agree = here == on_chain;
            let text_of = |id: u32| {
                memories
                    .iter()
                    .find(|(m, _)| *m == id)
                    .map(|(_, m)| String::from_utf8_lossy(&m.text).into_owned())
                    .unwrap_or_default()
            };
            if json {
                let list: Vec<_> = on_chain
                    .iter()
                    .map(|r| json!({"memory": r.memory, "score": r.score, "text": text_of(r.memory)}))
                    .collect();
                println!(
                    "{}",
                    json!({"space": space, "at": hex0x(at.as_bytes()), "recalled": list, "recomputed_locally": agree})
                );
            } else {
                println!("space {space} at finalized block {}:", hex0x(at.as_bytes()));
                for r in &on_chain {
                    println!("  {} (score {}): {}", r.memory, r.score, text_of(r.memory));
                }
                println!(
                    "recomputed here from the space's {} memories, each read with a storage proof against the finalized block's state root: {}",
                    memories.len(),
                    if agree {
                        "the same list"
                    } else {
                        "A DIFFERENT LIST"
                    }
                );
            }
            if !agree {
                bail!("the node's recall differs from the one recomputed from its own storage");
            }
            Ok(())
        }
    }
}
