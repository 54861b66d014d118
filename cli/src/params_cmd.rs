//! `inferchain params list|propose`: the protocol parameters governance tunes
//! (pallet-protocol-params), their bounds, and the council motion that changes one.

use crate::{
    args::{ChainArgs, ParamsCommand},
    chain_cmd::connect,
};
use anyhow::{anyhow, bail, Result};
use inferchain_cli::chain::Chain;
use inferchain_runtime::{
    configs::protocol_params::{Params, DEFAULT_PARAMS, MAX_PARAMS, MIN_PARAMS},
    Balance, BlockNumber, Runtime, RuntimeCall, UNIT,
};
use pallet_protocol_params::{ParamChange, ParamKind, PARAM_NAMES};
use serde_json::json;

type Change = ParamChange<Balance, BlockNumber>;

/// The parameters in force on the chain: governance's, or (none changed yet) the
/// defaults of the runtime this client was built for.
fn current(client: &Chain) -> Result<(Params, bool)> {
    let key = pallet_protocol_params::Params::<Runtime>::hashed_key();
    Ok(
        match client.storage::<Params>(&key, "protocol parameters", None)? {
            Some(params) => (params, true),
            None => (DEFAULT_PARAMS, false),
        },
    )
}

/// `12.5%` as parts per billion.
fn parse_share(text: &str) -> Option<u128> {
    let percent = text.strip_suffix('%')?.trim();
    let (whole, frac) = percent.split_once('.').unwrap_or((percent, ""));
    if frac.len() > 7 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: u128 = whole.parse().ok()?;
    let frac: u128 = format!("{frac:0<7}").parse().ok()?;
    whole.checked_mul(10_000_000)?.checked_add(frac)
}

/// `12.5INFER` (or `12.5 INFER`) in the smallest unit, or a plain integer.
fn parse_balance(text: &str) -> Option<u128> {
    let Some(amount) = text.strip_suffix("INFER") else {
        return text.parse().ok();
    };
    let amount = amount.trim();
    let (whole, frac) = amount.split_once('.').unwrap_or((amount, ""));
    if frac.len() > 12 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: u128 = whole.parse().ok()?;
    let frac: u128 = format!("{frac:0<12}").parse().ok()?;
    whole.checked_mul(UNIT)?.checked_add(frac)
}

/// The change that sets `name` (`-` or `_` between words) to `value`.
pub fn parse_change(name: &str, value: &str) -> Result<Change> {
    let field = name.replace('-', "_");
    let Some(index) = PARAM_NAMES.iter().position(|n| *n == field) else {
        bail!(
            "no protocol parameter `{name}`; they are: {}",
            PARAM_NAMES
                .iter()
                .map(|n| n.replace('_', "-"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let (kind, _) = DEFAULT_PARAMS.values()[index].raw();
    let raw = match kind {
        ParamKind::Share => parse_share(value)
            .ok_or_else(|| anyhow!("`{value}` is not a share; write it as a percentage, e.g. `12.5%`"))?,
        ParamKind::Balance => parse_balance(value).ok_or_else(|| {
            anyhow!("`{value}` is not an amount; write the smallest unit (an integer) or e.g. `12.5INFER`")
        })?,
        ParamKind::Blocks | ParamKind::Number => value
            .parse()
            .map_err(|_| anyhow!("`{value}` is not a whole number"))?,
    };
    Change::from_raw(&field, raw)
        .ok_or_else(|| anyhow!("`{value}` does not fit parameter `{name}`"))
}

/// A value as the CLI prints it.
pub fn show(change: &Change) -> String {
    let (kind, raw) = change.raw();
    match kind {
        ParamKind::Share => format!("{}%", raw as f64 / 10_000_000.0),
        ParamKind::Balance => format!("{} INFER", raw as f64 / UNIT as f64),
        ParamKind::Blocks => format!("{raw} blocks"),
        ParamKind::Number if change.name() == "offchain_time_budget" => format!("{raw} ms"),
        ParamKind::Number => raw.to_string(),
    }
}

/// `set NAME to VALUE`, for motions.
pub fn describe_change(change: &Change) -> String {
    format!(
        "set protocol parameter {} to {}",
        change.name().replace('_', "-"),
        show(change)
    )
}

pub fn run(cmd: ParamsCommand) -> Result<()> {
    match cmd {
        ParamsCommand::List { chain, json } => list(&chain, json),
        ParamsCommand::Propose {
            name,
            value,
            motion,
        } => {
            let change = parse_change(&name, &value)?;
            // Refuse here what the runtime would refuse after a vote.
            let client = connect(&motion.chain)?;
            let (mut params, _) = current(&client)?;
            if params.value_of(&change) == change {
                bail!("{} is already {}", name, show(&change));
            }
            if !Params::admits(&MIN_PARAMS, &MAX_PARAMS, &change) {
                bail!(
                    "{} is outside the bounds the runtime allows for {name}: {} ..= {}",
                    show(&change),
                    show(&MIN_PARAMS.value_of(&change)),
                    show(&MAX_PARAMS.value_of(&change)),
                );
            }
            params.apply(change);
            if let Err(broken) = params.check_relations() {
                bail!("with {name} at {}, the parameters break a rule: {broken:?} (see `inferchain params list`)", show(&change));
            }
            crate::council_cmd::propose(
                RuntimeCall::ProtocolParams(pallet_protocol_params::Call::set_parameter { change }),
                &motion,
            )
        }
    }
}

fn list(chain: &ChainArgs, json: bool) -> Result<()> {
    let client = connect(chain)?;
    let (params, changed) = current(&client)?;
    let rows = params
        .values()
        .into_iter()
        .zip(DEFAULT_PARAMS.values())
        .zip(MIN_PARAMS.values().into_iter().zip(MAX_PARAMS.values()))
        .map(|((value, default), (min, max))| (value, default, min, max))
        .collect::<Vec<_>>();
    if json {
        let entries = rows
            .iter()
            .map(|(value, default, min, max)| {
                json!({
                    "name": value.name().replace('_', "-"),
                    "value": value.raw().1.to_string(),
                    "default": default.raw().1.to_string(),
                    "min": min.raw().1.to_string(),
                    "max": max.raw().1.to_string(),
                    "shown": show(value),
                })
            })
            .collect::<Vec<_>>();
        println!(
            "{}",
            json!({ "changed_by_governance": changed, "params": entries })
        );
        return Ok(());
    }
    if !changed {
        println!("no parameter changed by governance: the runtime's defaults hold");
    }
    for (value, default, min, max) in &rows {
        let mark = if value != default { " (changed)" } else { "" };
        println!(
            "{:<24} {}{mark}\n{:<24} default {}, bounds {} ..= {}",
            value.name().replace('_', "-"),
            show(value),
            "",
            show(default),
            show(min),
            show(max)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sp_runtime::Perbill;

    #[test]
    fn values_parse_by_kind() {
        assert_eq!(
            parse_change("execution-timeout", "8").expect("blocks"),
            Change::ExecutionTimeout(8)
        );
        assert_eq!(
            parse_change("protocol_fee", "12.5%").expect("share"),
            Change::ProtocolFee(Perbill::from_parts(125_000_000))
        );
        assert_eq!(
            parse_change("result-slash", "12.5INFER").expect("amount"),
            Change::ResultSlash(12 * UNIT + UNIT / 2)
        );
        assert_eq!(
            parse_change("result-slash", "7").expect("raw amount"),
            Change::ResultSlash(7)
        );
        assert!(
            parse_change("protocol-fee", "12.5").is_err(),
            "a share needs %"
        );
        assert!(parse_change("protocol-fee", "101%").is_err(), "above 100%");
        assert!(parse_change("execution-timeout", "-1").is_err());
        assert!(parse_change("max-attempts", "3").is_err(), "not governed");
        assert_eq!(show(&Change::ProtocolFee(Perbill::from_percent(5))), "5%");
    }
}
