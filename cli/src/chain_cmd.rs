//! `inferchain request` and `inferchain result`: the chain, through the library's client.

use crate::{
    args::{ChainArgs, Command, WaitFor},
    model_cmd::{parse_id, read_input_for},
    output::{self, hex0x},
};
use anyhow::{anyhow, bail, Context, Result};
use codec::Encode;
use inferchain_cli::chain::{signing, Chain};
use inferchain_primitives::io::Payload;
use inferchain_runtime::{Runtime, RuntimeCall, RuntimeEvent};
use pallet_inference::{RequestStatus, ResultOf};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Request {
            model,
            input,
            chain,
            suri,
            max_fee,
            wait,
            json,
        } => {
            let model = parse_id(&model)?;
            let client = connect(&chain)?;
            let info = client.model(model, None)?.ok_or_else(|| {
                anyhow!(
                    "model {} is not registered on this chain",
                    hex0x(model.as_bytes())
                )
            })?;
            let payload = read_input_for(info.spec.input.clone(), &input)?;
            let bytes = payload.encode();
            let signer = signing::pair_from_suri(&suri)?;
            let call = RuntimeCall::Inference(pallet_inference::Call::request_inference {
                model_id: model,
                input: bytes
                    .try_into()
                    .map_err(|_| anyhow!("the input exceeds the chain's MaxInputBytes"))?,
                max_fee: max_fee.unwrap_or(info.spec.fee),
            });
            let timeout = Duration::from_secs(chain.timeout);
            let started = Instant::now();
            let included = client
                .submit_and_wait(&signer, call, timeout)
                .context("the request was not taken")?;
            let (id, executor) = included
                .events
                .iter()
                .find_map(|e| match e {
                    RuntimeEvent::Inference(pallet_inference::Event::RequestSubmitted {
                        id,
                        executor,
                        ..
                    }) => Some((*id, executor.clone())),
                    _ => None,
                })
                .ok_or_else(|| anyhow!("no RequestSubmitted event in block #{}", included.block))?;
            if !json {
                println!(
                    "request {id} in block #{} (executor {executor})",
                    included.block
                );
            }
            let mut report = json!({
                "request": id,
                "model": hex0x(model.as_bytes()),
                "executor": executor.to_string(),
                "included_in": included.block,
                "fee": info.spec.fee.to_string(),
            });
            if wait != WaitFor::Included {
                let result = wait_for(timeout, started, "the result", || {
                    Ok(client.result(id, None)?)
                })?;
                if !json {
                    println!(
                        "result posted in block #{} by {}",
                        result.posted_at, result.executor
                    );
                }
                report["result"] = result_json(&result);
            }
            if wait == WaitFor::Final {
                let at = wait_for(timeout, started, "the result to be final", || {
                    Ok(match client.request(id, None)?.map(|r| r.status) {
                        Some(RequestStatus::Finalized { at }) => Some(at),
                        Some(RequestStatus::Expired { at }) => {
                            bail!("request {id} expired in block #{at}: no executor answered; the fee was refunded")
                        }
                        _ => None,
                    })
                })?;
                wait_for(timeout, started, "GRANDPA finality", || {
                    Ok((client.finalized()?.0 >= at).then_some(()))
                })?;
                // The final result may be a challenger's: read it again.
                let result = client
                    .result(id, None)?
                    .ok_or_else(|| anyhow!("request {id} is final but has no result"))?;
                report["result"] = result_json(&result);
                report["final_in"] = json!(at);
                if !json {
                    println!("final in block #{at} (finalized by GRANDPA)");
                }
            }
            if json {
                println!("{report}");
            } else if wait != WaitFor::Included {
                if let Some(result) = client.result(id, None)? {
                    print_result(&result);
                }
            }
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
        Command::Model(_) => unreachable!("model commands are dispatched in main"),
    }
}

fn connect(args: &ChainArgs) -> Result<Chain> {
    Ok(Chain::connect(&args.url)?)
}

fn wait_for<T>(
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

fn status_json(status: &RequestStatus<u32>) -> Value {
    match status {
        RequestStatus::Pending { deadline } => json!({"pending": {"deadline": deadline}}),
        RequestStatus::Submitted { window_end } => json!({"submitted": {"window_end": window_end}}),
        RequestStatus::Disputed => json!("disputed"),
        RequestStatus::Finalized { at } => json!({"finalized": {"at": at}}),
        RequestStatus::Expired { at } => json!({"expired": {"at": at}}),
    }
}

fn result_json(result: &ResultOf<Runtime>) -> Value {
    let mut value = json!({
        "executor": result.executor.to_string(),
        "output_hash": hex0x(result.output_hash.as_bytes()),
        "posted_at": result.posted_at,
        "challenged": result.challenged,
    });
    if let Ok(Payload::Tensors(tensors)) = Payload::decode_canonical(&result.output) {
        value["outputs"] = tensors.iter().map(output::tensor_json).collect();
    }
    value
}

fn print_result(result: &ResultOf<Runtime>) {
    println!("output hash: {}", hex0x(result.output_hash.as_bytes()));
    if let Ok(payload) = Payload::decode_canonical(&result.output) {
        for (i, t) in output::tensors(&payload).iter().enumerate() {
            println!("output {i}:    {}", output::tensor_line(t));
        }
    }
}
