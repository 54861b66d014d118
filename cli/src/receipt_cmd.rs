//! `inferchain verify` and `inferchain receipt check`: a request's receipt, collected
//! from a node or read from an exported file, checked by the library's
//! [`check_receipt`], then against what the user claims (their account, their input),
//! then (`--rerun`) on this CPU.

use crate::{
    args::{ChainArgs, ReceiptArgs},
    chain_cmd::{check_memory_answer, connect, rerun_locally, result_json, status_json},
    exit::{self, Exit},
    model_cmd::{parse_id, read_input_for},
    output::hex0x,
};
use anyhow::{anyhow, Context, Result};
use codec::Encode;
use inferchain_cli::chain::{
    receipt::{check_receipt, Check, Receipt, ReceiptFile, Verdict},
    Chain,
};
use inferchain_runtime::AccountId;
use serde_json::{json, Value};
use sp_core::{crypto::Ss58Codec, H256};
use std::path::Path;

/// The trusted genesis: required, because a receipt checked against the node's own
/// genesis proves only that the node agrees with itself.
fn trusted_genesis(args: &ReceiptArgs) -> Result<H256> {
    let text = args.genesis.as_deref().ok_or_else(|| {
        Exit::new(
            exit::INVALID,
            "no --genesis: a receipt is proven from the genesis hash you trust (the chain spec's, or one from a source you trust; `scripts/dev.sh` prints the dev chain's). Pass --genesis 0x…",
            args.json,
        )
    })?;
    Ok(H256(parse_id(text).context("--genesis")?.0))
}

fn claimed_account(text: &str) -> Result<AccountId> {
    if text.starts_with("//") {
        let pair = inferchain_cli::chain::signing::pair_from_suri(text)?;
        return Ok(inferchain_cli::chain::signing::account_of(&pair));
    }
    AccountId::from_ss58check(text)
        .map_err(|e| anyhow!("--account `{text}` is not an SS58 address or a dev name ({e:?})"))
}

/// Checks what the user claims against the proven request: whose it is, what it asked.
fn check_claims(receipt: &mut Receipt, args: &ReceiptArgs) -> Result<()> {
    let Some((requester, input_bytes, input_hash)) = receipt
        .request
        .as_ref()
        .map(|r| (r.requester.clone(), r.input.to_vec(), r.input_hash))
    else {
        return Ok(());
    };
    if let Some(text) = &args.account {
        let claimed = claimed_account(text)?;
        let ok = requester == claimed;
        receipt.check(
            "requester",
            ok,
            if ok {
                format!("the request was made and paid for by {claimed}")
            } else {
                format!("the request was made by {requester}, not by {claimed}")
            },
        );
    }
    let input = &args.input;
    let claims_input = !input.inputs.is_empty() || input.text.is_some() || input.prompt.is_some();
    if claims_input {
        let Some(declared) = receipt.model.as_ref().map(|m| m.spec.input.clone()) else {
            receipt.check(
                "input",
                false,
                "the model is not proven: its input cannot be read",
            );
            return Ok(());
        };
        let mine = read_input_for(declared, input)?.encode();
        let ok = mine == input_bytes;
        receipt.check(
            "input",
            ok,
            if ok {
                "the request's input is exactly the one given".to_string()
            } else {
                format!(
                    "the request's input (hash {}) is not the one given (hash {})",
                    hex0x(input_hash.as_bytes()),
                    hex0x(&inferchain_primitives::blake2_256(&mine))
                )
            },
        );
    }
    Ok(())
}

/// The checks after the proof: claims, memory (online), and the re-run only if every
/// other check held.
fn finish(
    store: &Path,
    mut receipt: Receipt,
    args: &ReceiptArgs,
    client: Option<&Chain>,
) -> Result<()> {
    check_claims(&mut receipt, args)?;
    if let Some(client) = client {
        let rerun = args.rerun && receipt.valid();
        check_memory_answer(store, client, &mut receipt, rerun);
    }
    if args.rerun && receipt.verdict() == Verdict::NotFinal {
        eprintln!("note: not re-run: the request is not final yet");
    } else if args.rerun {
        if receipt.valid() {
            let (ok, detail) = match rerun_locally(store, &receipt) {
                Ok(d) => d,
                Err(e) => (false, format!("{e:#}")),
            };
            receipt.check("re-run", ok, detail);
        } else {
            receipt.check(
                "re-run",
                false,
                "not run: the receipt failed a check before it (a re-run proves nothing about an unproven result)",
            );
        }
    }
    if args.json {
        println!("{}", receipt_json(&receipt));
    } else {
        print_receipt(&receipt);
    }
    let id = receipt.id;
    match receipt.verdict() {
        Verdict::Valid => Ok(()),
        Verdict::NotFinal => Err(Exit::new(
            exit::NOT_FINAL,
            format!("request {id} is not final yet; run verify again after its challenge window"),
            false,
        )
        .into()),
        Verdict::Invalid => {
            let failed: Vec<&str> = receipt
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.name)
                .collect();
            Err(Exit::new(
                exit::INVALID,
                format!(
                    "receipt of request {id} NOT verified: {} failed",
                    failed.join(", ")
                ),
                false,
            )
            .into())
        }
    }
}

/// `inferchain verify ID`: collect the receipt from the node, check it, optionally
/// export it.
pub fn verify(
    store: &Path,
    id: u64,
    chain: &ChainArgs,
    args: &ReceiptArgs,
    export: Option<&Path>,
) -> Result<()> {
    let json = args.json;
    let genesis = trusted_genesis(args)?;
    let client = connect(chain).map_err(|e| Exit::from_chain(e, json))?;
    let file = client
        .receipt_file(id, genesis)
        .map_err(|e| Exit::from_chain(e.into(), json))?;
    if let Some(path) = export {
        std::fs::write(path, file.to_bytes())
            .with_context(|| format!("writing the receipt to {}", path.display()))?;
        if !json {
            println!("receipt written to {}", path.display());
        }
    }
    finish(store, check_receipt(&file, genesis), args, Some(&client))
}

/// `inferchain receipt check FILE`: the same checks, from the file alone. The file names
/// its request: `request` (if given) must be it.
pub fn check_file(
    store: &Path,
    path: &Path,
    request: Option<u64>,
    args: &ReceiptArgs,
) -> Result<()> {
    let genesis = trusted_genesis(args)?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = ReceiptFile::from_bytes(&bytes)
        .map_err(|e| Exit::new(exit::INVALID, format!("{}: {e}", path.display()), args.json))?;
    if let Some(id) = request.filter(|id| *id != file.request) {
        return Err(Exit::new(
            exit::INVALID,
            format!(
                "{} is the receipt of request {}, not of request {id}",
                path.display(),
                file.request
            ),
            args.json,
        )
        .into());
    }
    let claims = request.is_some()
        || args.account.is_some()
        || !args.input.inputs.is_empty()
        || args.input.text.is_some()
        || args.input.prompt.is_some();
    if !claims {
        eprintln!(
            "note: no --request, --account or --input: this proves request {} as the file names it, not that it is the one you meant",
            file.request
        );
    }
    finish(store, check_receipt(&file, genesis), args, None)
}

fn receipt_json(receipt: &Receipt) -> Value {
    let verdict = receipt.verdict();
    let mut value = json!({
        "request": receipt.id,
        "proven_at": {"number": receipt.proven_at.0, "hash": format!("{:?}", receipt.proven_at.1)},
        "authority_set": receipt.authority_set,
        "checks": receipt.checks.iter().map(check_json).collect::<Vec<_>>(),
        "valid": verdict == Verdict::Valid,
        "verdict": match verdict {
            Verdict::Valid => "valid",
            Verdict::NotFinal => "not final",
            Verdict::Invalid => "invalid",
        },
    });
    if let Some(r) = &receipt.request {
        value["model"] = json!(hex0x(r.model.as_bytes()));
        value["requester"] = json!(r.requester.to_string());
        value["input_hash"] = json!(hex0x(r.input_hash.as_bytes()));
        value["status"] = status_json(&r.status);
    }
    if let Some(m) = &receipt.model {
        value["model_name"] = json!(String::from_utf8_lossy(&m.spec.name));
    }
    if let Some(r) = &receipt.result {
        value["result"] = result_json(r);
    }
    value
}

fn check_json(c: &Check) -> Value {
    json!({"name": c.name, "ok": c.ok, "detail": c.detail})
}

fn print_receipt(receipt: &Receipt) {
    println!(
        "receipt of request {} (proven at block #{} {:?})",
        receipt.id, receipt.proven_at.0, receipt.proven_at.1
    );
    if let (Some(r), Some(m)) = (&receipt.request, &receipt.model) {
        println!(
            "  model        {} ({})",
            hex0x(r.model.as_bytes()),
            String::from_utf8_lossy(&m.spec.name)
        );
        println!("  requester    {}", r.requester);
        println!("  input hash   {}", hex0x(r.input_hash.as_bytes()));
    }
    if let Some(r) = &receipt.result {
        println!("  output hash  {}", hex0x(r.output_hash.as_bytes()));
        println!(
            "  computed by  {} (challenged: {})",
            r.executor, r.challenged
        );
    }
    for c in &receipt.checks {
        println!(
            "  [{}] {:<19} {}",
            if c.ok { "ok" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    if receipt.valid() {
        println!("verified: every check passed");
    }
}
