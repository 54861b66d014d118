//! `inferchain submit`, `serve` and `result`: the chain, through the library's client
//! (`verify` is in `receipt_cmd`).

use crate::{
    args::{ChainArgs, Command},
    model_cmd::{parse_id, read_input_for},
    output::{self, hex0x},
};
use anyhow::{anyhow, bail, Context, Result};
use codec::Encode;
use inferchain_cli::chain::{receipt::Receipt, signing, Chain};
use inferchain_engine::{
    fetch::fetch_model,
    llm::{LlmModel, Verdict},
    Engine, LoadedModel, ModelStore, DEFAULT_CACHE_BYTES,
};
use inferchain_primitives::{io::Payload, ModelId};
use inferchain_runtime::{Runtime, RuntimeCall};
use pallet_inference::{RequestStatus, ResultOf};
use serde_json::{json, Value};
use std::{
    path::Path,
    time::{Duration, Instant},
};

pub fn run(store: &Path, cmd: Command) -> Result<()> {
    match cmd {
        Command::Submit {
            model,
            input,
            chain,
            suri,
            max_fee,
            wait,
            memory,
            k,
            json,
        } => {
            let client = connect(&chain)?;
            let model = resolve_model(&client, &model)?;
            let info = client.model(model, None)?.ok_or_else(|| {
                anyhow!(
                    "model {} is not registered on this chain",
                    hex0x(model.as_bytes())
                )
            })?;
            let payload = read_input_for(info.spec.input.clone(), &input)?;
            // What the chain charges for this input: per token for a language model.
            let fee = info.spec.fee.saturating_mul(payload.fee_units().into());
            let signer = signing::pair_from_suri(&suri)?;
            let timeout = Duration::from_secs(chain.timeout);
            let started = Instant::now();
            let progress = |line: String| {
                if !json {
                    println!("{line}");
                }
            };
            let mut report = json!({});
            let included = match memory {
                Some(space) => {
                    let (included, memories) = ask_with_memory(
                        &client, &signer, space, model, &info.spec, &payload, k, max_fee, timeout,
                        started, &progress,
                    )?;
                    report["memory"] = memories;
                    included
                }
                None => {
                    let call = RuntimeCall::Inference(pallet_inference::Call::request_inference {
                        model_id: model,
                        input: payload
                            .encode()
                            .try_into()
                            .map_err(|_| anyhow!("the input exceeds the chain's MaxInputBytes"))?,
                        max_fee: max_fee.unwrap_or(fee),
                    });
                    client
                        .submit_and_wait(&signer, call, timeout)
                        .context("the request was not taken")?
                }
            };
            let (id, executor) = included
                .request_submitted()
                .ok_or_else(|| anyhow!("no RequestSubmitted event in block #{}", included.block))?;
            progress(format!(
                "request {id}: included in block #{}, executor {executor}",
                included.block
            ));
            report["request"] = json!(id);
            report["model"] = json!(hex0x(model.as_bytes()));
            report["executor"] = json!(executor.to_string());
            report["included_in"] = json!(included.block);
            report["fee"] = json!(fee.to_string());
            if wait {
                let at = follow(&client, id, (executor, 1), timeout, started, &progress)?;
                wait_for(timeout, started, "GRANDPA finality", || {
                    Ok((client.finalized()?.0 >= at).then_some(()))
                })?;
                progress(format!("request {id}: block #{at} finalized by GRANDPA"));
                // Read the result as finalized (the one a receipt names).
                let result = client
                    .result(id, None)?
                    .ok_or_else(|| anyhow!("request {id} is final but has no result"))?;
                report["result"] = result_json(&result);
                report["final_in"] = json!(at);
                if !json {
                    print_result(&result);
                }
            }
            if json {
                println!("{report}");
            }
            Ok(())
        }
        Command::Serve {
            models,
            capacity,
            replace,
            chain,
            suri,
        } => {
            let client = connect(&chain)?;
            let signer = signing::pair_from_suri(&suri)?;
            let who = signing::account_of(&signer);
            let current = client.service(&who, None)?;
            let mut serve: Vec<ModelId> = if replace {
                Vec::new()
            } else {
                current.models.to_vec()
            };
            for text in &models {
                let model = resolve_model(&client, text)?;
                if !serve.contains(&model) {
                    serve.push(model);
                }
            }
            let capacity = capacity.unwrap_or(if current.capacity > 0 {
                current.capacity
            } else {
                16
            });
            let count = serve.len();
            let call = RuntimeCall::Inference(pallet_inference::Call::serve {
                models: serve.try_into().map_err(|_| {
                    anyhow!("{count} models: more than the chain's MaxServedModels")
                })?,
                capacity,
            });
            let included = client
                .submit_and_wait(&signer, call, Duration::from_secs(chain.timeout))
                .context(
                    "the declaration was not taken (is this account a registered executor?)",
                )?;
            println!(
                "{who} serves {count} models, {capacity} requests at once (block #{})",
                included.block
            );
            Ok(())
        }
        Command::Result { id, chain, json } => {
            let client = connect(&chain)?;
            let request = client
                .request(id, None)?
                .ok_or_else(|| anyhow!("no request {id} on this chain (never made, or pruned)"))?;
            let result = client.result(id, None)?;
            let report = json!({
                "request": id,
                "model": hex0x(request.model.as_bytes()),
                "requester": request.requester.to_string(),
                "status": status_json(&request.status),
                "result": result.as_ref().map(result_json),
            });
            if json {
                println!("{report}");
            } else {
                println!("request {id}: {}", report["status"]);
                if let Some(r) = result.as_ref() {
                    print_result(r);
                }
            }
            Ok(())
        }
        Command::Verify {
            id,
            chain,
            receipt,
            export,
        } => crate::receipt_cmd::verify(store, id, &chain, &receipt, export.as_deref()),
        Command::Model(_)
        | Command::Memory(_)
        | Command::Receipt(_)
        | Command::Council(_)
        | Command::Validator(_)
        | Command::Params(_)
        | Command::Upgrade(_) => {
            unreachable!("model, memory, receipt, council, validator, params and upgrade commands are dispatched in main")
        }
    }
}

/// `submit --memory`: asks `model` the prompt with the space's memories (`ask`), follows
/// the question's embedding to final, then has the chain recall and request the answer
/// (`answer`). Returns the block with the answer's `RequestSubmitted` and the memories
/// it used (JSON).
#[allow(clippy::too_many_arguments)]
fn ask_with_memory(
    client: &Chain,
    signer: &sp_core::sr25519::Pair,
    space: u32,
    model: ModelId,
    spec: &inferchain_primitives::model::ModelSpec<inferchain_runtime::Balance>,
    payload: &Payload,
    k: u32,
    max_fee: Option<u128>,
    timeout: Duration,
    started: Instant,
    progress: &dyn Fn(String),
) -> Result<(inferchain_cli::chain::Included, Value)> {
    use inferchain_primitives::io::IoSpec;
    use pallet_memory::Event as MemoryEvent;
    let Payload::Prompt {
        text,
        max_new_tokens,
    } = payload
    else {
        bail!("--memory asks a language model: pass --prompt");
    };
    let space_info = client
        .space(space, None)?
        .ok_or_else(|| anyhow!("no memory space {space} on this chain"))?;
    let embedder = client
        .model(space_info.embedding_model, None)?
        .ok_or_else(|| anyhow!("the space's embedding model is not registered"))?;
    // Each of the two requests is bounded by max_fee: by default the dearer of the
    // question's embedding and the longest prompt the language model takes.
    let longest = match spec.input {
        IoSpec::Prompt { max_bytes, .. } => max_bytes.saturating_add(*max_new_tokens),
        _ => bail!("model {} is not a language model", hex0x(model.as_bytes())),
    };
    let max_fee = max_fee.unwrap_or_else(|| {
        spec.fee
            .saturating_mul(longest.into())
            .max(embedder.spec.fee)
    });
    let call = RuntimeCall::Memory(pallet_memory::Call::ask {
        space,
        model,
        question: text
            .clone()
            .try_into()
            .map_err(|_| anyhow!("the prompt is longer than a memory text may be"))?,
        k,
        max_new_tokens: *max_new_tokens,
        max_fee,
    });
    let asked = client
        .submit_and_wait(signer, call, timeout)
        .context("the question was not taken (do you own or have a grant on the space?)")?;
    let query = asked
        .events
        .iter()
        .find_map(|e| match e {
            inferchain_runtime::RuntimeEvent::Memory(MemoryEvent::Asked {
                query_request, ..
            }) => Some(*query_request),
            _ => None,
        })
        .ok_or_else(|| anyhow!("no Asked event in block #{}", asked.block))?;
    progress(format!(
        "question: included in block #{}, embedded by request {query}",
        asked.block
    ));
    let executor = client
        .request(query, None)?
        .map(|r| (r.executor, r.attempt))
        .ok_or_else(|| anyhow!("request {query} is not on chain"))?;
    follow(client, query, executor, timeout, started, progress)?;
    let included = client
        .submit_and_wait(
            signer,
            RuntimeCall::Memory(pallet_memory::Call::answer {
                query_request: query,
            }),
            timeout,
        )
        .context("the answer was not requested")?;
    let memories = included
        .events
        .iter()
        .find_map(|e| match e {
            inferchain_runtime::RuntimeEvent::Memory(MemoryEvent::Answered {
                memories, ..
            }) => Some(memories.to_vec()),
            _ => None,
        })
        .ok_or_else(|| {
            anyhow!(
                "the question was dropped in block #{} (its embedding expired?)",
                included.block
            )
        })?;
    let stored = client.memories(space, None)?;
    let used: Vec<Value> = memories
        .iter()
        .map(|id| {
            let text = stored
                .iter()
                .find(|(m, _)| m == id)
                .map(|(_, m)| String::from_utf8_lossy(&m.text).into_owned())
                .unwrap_or_default();
            progress(format!("recalled memory {space}/{id}: {text}"));
            json!({"space": space, "memory": id, "text": text})
        })
        .collect();
    Ok((included, Value::Array(used)))
}

/// For a memory-backed answer: the recall recomputed from the state of the block it was
/// answered in must give the prompt the model was given; with `rerun`, the question's
/// embedding is also recomputed on this CPU and compared with the chain's.
pub(crate) fn check_memory_answer(
    store: &Path,
    client: &Chain,
    receipt: &mut Receipt,
    rerun: bool,
) {
    use inferchain_cli::chain::receipt::Check;
    use inferchain_primitives::io::IoSpec;
    let (Some(request), Some(model)) = (&receipt.request, &receipt.model) else {
        return;
    };
    let (Ok(Payload::Prompt { text, .. }), IoSpec::Prompt { max_bytes, .. }) =
        (Payload::decode_canonical(&request.input), &model.spec.input)
    else {
        return;
    };
    let check = match client.check_answer(receipt.id, &text, *max_bytes, receipt.proven_at.1) {
        Ok(Some(check)) => check,
        Ok(None) => return,
        Err(e) => {
            receipt.checks.push(Check {
                name: "memory recall",
                ok: false,
                detail: format!("{e}"),
            });
            return;
        }
    };
    let named: Vec<String> = check
        .record
        .memories
        .iter()
        .zip(&check.texts)
        .map(|(id, t)| {
            format!(
                "{}/{id} {:?}",
                check.record.space,
                String::from_utf8_lossy(t)
            )
        })
        .collect();
    receipt.checks.push(Check {
        name: "memory recall",
        ok: check.ok,
        detail: format!("{}; memories used: [{}]", check.detail, named.join(", ")),
    });
    if !rerun {
        return;
    }
    let embedded = (|| -> Result<(bool, String)> {
        let spec = client
            .model(check.embedding_model, None)?
            .ok_or_else(|| anyhow!("the space's embedding model is not registered"))?
            .spec;
        let engine = local_engine(store, check.embedding_model, &spec)?;
        let mine = engine.run_encoded(
            &check.embedding_model,
            &check.question_input,
            &spec.input,
            &spec.numerics,
        )?;
        let ok = spec.comparison.matches(&check.query_output, &mine);
        Ok((
            ok,
            format!(
                "the question's embedding (request {}) on this CPU {} the chain's",
                check.record.query_request,
                if ok { "matches" } else { "DOES NOT match" }
            ),
        ))
    })();
    let (ok, detail) = embedded.unwrap_or_else(|e| (false, format!("{e:#}")));
    receipt.checks.push(Check {
        name: "question re-run",
        ok,
        detail,
    });
}

/// Re-runs the receipt's request with the local engine: (matches, what was found).
pub(crate) fn rerun_locally(store: &Path, receipt: &Receipt) -> Result<(bool, String)> {
    let (Some(request), Some(result), Some(model)) =
        (&receipt.request, &receipt.result, &receipt.model)
    else {
        bail!("nothing proven to re-run");
    };
    let engine = local_engine(store, request.model, &model.spec)?;
    let id = request.model;
    if let LoadedModel::Llm(llm) = &*engine.load(&id, &mut |_| {})? {
        return check_generation(llm, &request.input, &result.output);
    }
    let mine = engine.run_encoded(&id, &request.input, &model.spec.input, &model.spec.numerics)?;
    let ok = model.spec.comparison.matches(&result.output, &mine);
    let detail = format!(
        "the model's files hash to its id; this CPU's output {} the chain's under {:?} (local hash {})",
        if ok { "matches" } else { "DOES NOT match" },
        model.spec.comparison,
        hex0x(&inferchain_primitives::blake2_256(&mine))
    );
    Ok((ok, detail))
}

/// An engine over the local store holding model `id` (fetched from its registered mirror
/// if absent), its files checked against the id.
pub(crate) fn local_engine(
    store: &Path,
    id: ModelId,
    spec: &inferchain_primitives::model::ModelSpec<inferchain_runtime::Balance>,
) -> Result<Engine> {
    let store = ModelStore::open(store)?;
    if !store.contains(&id) {
        let uri = spec
            .artifact_uri
            .as_ref()
            .and_then(|u| std::str::from_utf8(u).ok())
            .ok_or_else(|| {
                anyhow!(
                    "model {} is not in the local store {} and has no registered mirror; import it with `inferchain model import`",
                    hex0x(id.as_bytes()),
                    store.root().display()
                )
            })?;
        fetch_model(&store, &id, uri)?;
    }
    // The store refuses files that do not hash to the manifest, and a manifest that
    // does not hash to the id: the model run is the registered one.
    store.verify(&id, &mut |_| {})?;
    Ok(Engine::new(store, DEFAULT_CACHE_BYTES))
}

/// A generation re-checked without re-generating it: one teacher-forced pass over the
/// prompt and the claimed tokens (`LlmModel::verify`), then the text against the ids.
fn check_generation(llm: &LlmModel, input: &[u8], output: &[u8]) -> Result<(bool, String)> {
    let (
        Ok(Payload::Prompt {
            text: prompt,
            max_new_tokens,
        }),
        Ok(Payload::Generation { tokens, text }),
    ) = (
        Payload::decode_canonical(input),
        Payload::decode_canonical(output),
    )
    else {
        bail!("the request and result are not a prompt and a generation");
    };
    let prompt = std::str::from_utf8(&prompt).context("the prompt is not UTF-8")?;
    let ids = llm.tokenize(prompt)?;
    let started = std::time::Instant::now();
    let verdict = llm.verify(&ids, &tokens, max_new_tokens as usize)?;
    let text = std::str::from_utf8(&text).unwrap_or_default();
    let text_fault = llm.verify_text(&tokens, text)?;
    Ok(match (verdict, text_fault) {
        (Verdict::Valid { logits_hash }, None) => (
            true,
            format!(
                "the model's files hash to its id; one teacher-forced pass on this CPU confirms all {} tokens are the greedy generation and the text is theirs ({:.1} ms, logits hash {})",
                tokens.len(),
                started.elapsed().as_secs_f64() * 1e3,
                hex0x(&logits_hash)
            ),
        ),
        (Verdict::Invalid(fault), _) | (Verdict::Valid { .. }, Some(fault)) => {
            (false, format!("the generation is NOT the model's: {fault}"))
        }
    })
}

pub(crate) fn connect(args: &ChainArgs) -> Result<Chain> {
    Ok(Chain::connect(&args.url)?)
}

/// A model given by id or by registered name.
pub(crate) fn resolve_model(client: &Chain, text: &str) -> Result<ModelId> {
    if let Ok(id) = parse_id(text) {
        return Ok(id);
    }
    let matches: Vec<ModelId> = client
        .models()?
        .into_iter()
        .filter(|(_, m)| m.spec.name.as_slice() == text.as_bytes())
        .map(|(id, _)| id)
        .collect();
    match matches.as_slice() {
        [id] => Ok(*id),
        [] => bail!("no model named `{text}` is registered; `inferchain model list` shows them"),
        _ => bail!("several models are named `{text}`; pass the id"),
    }
}

/// Follows request `id` from its first assignment `first` (executor, attempt) until its
/// result is final, reporting each change as it happens: a result posted, a
/// reassignment (a missed deadline, a hand-back, or a result overturned by a game), an
/// expiry. Returns the block it became final in.
fn follow(
    client: &Chain,
    id: inferchain_primitives::RequestId,
    first: (sp_runtime::AccountId32, u32),
    timeout: Duration,
    started: Instant,
    progress: &dyn Fn(String),
) -> Result<u32> {
    let mut assigned = first;
    // The attempt whose result was reported.
    let mut posted: Option<u32> = None;
    let mut last;
    loop {
        let request = client
            .request(id, None)?
            .ok_or_else(|| anyhow!("request {id} is no longer on chain (pruned)"))?;
        if (request.executor.clone(), request.attempt) != assigned {
            progress(format!(
                "request {id}: reassigned to {} (attempt {}): the previous executor missed its \
                 deadline, handed the request back, or its result was overturned by a dispute",
                request.executor, request.attempt
            ));
            assigned = (request.executor.clone(), request.attempt);
        }
        match request.status {
            RequestStatus::Pending { deadline } => {
                last = format!(
                    "pending with executor {} (attempt {}) until block #{deadline}",
                    request.executor, request.attempt
                );
            }
            RequestStatus::Submitted { window_end } => {
                let result = client.result(id, None)?;
                if let Some(result) = result.filter(|_| posted != Some(request.attempt)) {
                    progress(format!(
                        "request {id}: result posted in block #{} by {}; challenge window open \
                         until #{window_end}",
                        result.posted_at, result.executor
                    ));
                    posted = Some(request.attempt);
                }
                last = format!("result posted; challenge window open until #{window_end} (or a dispute on it ends)");
            }
            RequestStatus::Finalized { at } => {
                progress(format!(
                    "request {id}: final in block #{at} (window closed)"
                ));
                return Ok(at);
            }
            RequestStatus::Expired { at } => bail!(
                "request {id} expired in block #{at}: no executor answered in time (every \
                 attempt missed or handed back, or the model was retired); the fee was refunded \
                 in full. Check that an executor node serving this model is running."
            ),
        }
        if started.elapsed() > timeout {
            bail!(
                "timed out after {} s; request {id} is {last}. Is an executor node serving this \
                 model running? `inferchain result {id}` shows where it is.",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub(crate) fn wait_for<T>(
    timeout: Duration,
    started: Instant,
    what: &str,
    mut poll: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    loop {
        if let Some(v) = poll()? {
            return Ok(v);
        }
        if started.elapsed() > timeout {
            bail!(
                "timed out after {} s waiting for {what}; `inferchain result` shows where it is",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub(crate) fn status_json(status: &RequestStatus<u32>) -> Value {
    match status {
        RequestStatus::Pending { deadline } => json!({"pending": {"deadline": deadline}}),
        RequestStatus::Submitted { window_end } => {
            json!({"submitted": {"window_end": window_end}})
        }
        RequestStatus::Finalized { at } => json!({"finalized": {"at": at}}),
        RequestStatus::Expired { at } => json!({"expired": {"at": at}}),
    }
}

pub(crate) fn result_json(result: &ResultOf<Runtime>) -> Value {
    let mut value = json!({
        "executor": result.executor.to_string(),
        "output_hash": hex0x(result.output_hash.as_bytes()),
        "posted_at": result.posted_at,
        "challenged": result.challenged,
    });
    match Payload::decode_canonical(&result.output) {
        Ok(Payload::Tensors(tensors)) => {
            value["outputs"] = tensors.iter().map(output::tensor_json).collect();
        }
        Ok(Payload::Generation { tokens, text }) => {
            value["tokens"] = json!(tokens);
            value["text"] = json!(String::from_utf8_lossy(&text));
        }
        _ => {}
    }
    value
}

fn print_result(result: &ResultOf<Runtime>) {
    println!("output hash: {}", hex0x(result.output_hash.as_bytes()));
    if let Ok(payload) = Payload::decode_canonical(&result.output) {
        for (i, t) in output::tensors(&payload).iter().enumerate() {
            println!("output {i}:    {}", output::tensor_line(t));
        }
        if let Some((tokens, text)) = output::generation(&payload) {
            println!("tokens:      {} {:?}", tokens.len(), tokens);
            println!("text:        {text}");
        }
    }
}

/// `model register`: `Sudo::sudo(Models::register_model(spec))`, then
/// `Sudo::sudo(Models::set_model_commitments(id, commitments))`, each waited for.
/// `spec` with its mirror address `uri`, checked.
pub fn with_mirror(
    mut spec: inferchain_primitives::model::ModelSpec<u128>,
    uri: Option<String>,
) -> Result<inferchain_primitives::model::ModelSpec<u128>> {
    if let Some(uri) = uri {
        if let Err(e) = inferchain_primitives::mirror::parse_mirror_uri(uri.as_bytes()) {
            bail!(
                "--uri {uri} is not a mirror address executors can fetch from ({e:?}): give \
                 http://HOST[:PORT]/PATH, plain HTTP (the model's hashes protect it), no query"
            );
        }
        spec.artifact_uri = Some(
            uri.into_bytes()
                .try_into()
                .map_err(|_| anyhow!("--uri is longer than the registry allows"))?,
        );
    }
    Ok(spec)
}

/// `model register`: registers a model and its dispute commitments through sudo.
pub fn register(
    id: ModelId,
    spec: inferchain_primitives::model::ModelSpec<u128>,
    commitments: inferchain_primitives::dispute::ModelCommitments,
    suri: &str,
    chain: &ChainArgs,
) -> Result<()> {
    let client = connect(chain)?;
    if client.model(id, None)?.is_some() {
        bail!("model {} is already registered", hex0x(id.as_bytes()));
    }
    let pair = signing::pair_from_suri(suri)?;
    let sudo_key = pallet_sudo::Key::<inferchain_runtime::Runtime>::hashed_key();
    let Some(key) = client.storage::<inferchain_runtime::AccountId>(&sudo_key, "sudo key", None)?
    else {
        bail!(
            "this chain has no sudo key: models are registered by the council (`inferchain model propose FILE --suri <member>`)"
        );
    };
    if key != signing::account_of(&pair) {
        bail!("{suri} is not the sudo key ({key}); on a chain with a council, use `inferchain model propose`");
    }
    let as_sudo = |call: pallet_models::Call<inferchain_runtime::Runtime>| -> Result<u32> {
        let included = client.submit_and_wait(
            &pair,
            RuntimeCall::Sudo(pallet_sudo::Call::sudo {
                call: Box::new(RuntimeCall::Models(call)),
            }),
            Duration::from_secs(chain.timeout),
        )?;
        // Sudo dispatches the inner call and reports its outcome in an event.
        for event in &included.events {
            if let inferchain_runtime::RuntimeEvent::Sudo(pallet_sudo::Event::Sudid {
                sudo_result: Err(e),
            }) = event
            {
                bail!(
                    "registration refused: {} (is {suri} the sudo key?)",
                    inferchain_cli::chain::describe_error(e)
                );
            }
        }
        Ok(included.block)
    };
    as_sudo(pallet_models::Call::register_model { spec })?;
    let block = as_sudo(pallet_models::Call::set_model_commitments { id, commitments })?;
    if client.model(id, None)?.is_none() {
        bail!("the registration landed in block #{block} but the model is not registered");
    }
    println!(
        "registered {} with its dispute commitments (block #{block})",
        hex0x(id.as_bytes())
    );
    Ok(())
}

/// `model list`: the registry.
pub fn list(chain: &ChainArgs, json: bool) -> Result<()> {
    let client = connect(chain)?;
    let models = client.models()?;
    if json {
        let list: Vec<Value> = models
            .iter()
            .map(|(id, m)| {
                json!({
                    "model": hex0x(id.as_bytes()),
                    "name": String::from_utf8_lossy(&m.spec.name),
                    "status": format!("{:?}", m.status),
                    "fee": m.spec.fee.to_string(),
                    "registered_at": m.registered_at,
                })
            })
            .collect();
        println!("{}", Value::Array(list));
    } else {
        for (id, m) in &models {
            println!(
                "{}  {:<20} {:?}  fee {}",
                hex0x(id.as_bytes()),
                String::from_utf8_lossy(&m.spec.name),
                m.status,
                m.spec.fee
            );
        }
    }
    Ok(())
}
