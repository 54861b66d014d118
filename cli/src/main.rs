//! `inferchain`: the command-line client.
//!
//! `inferchain model import|run|verify|bench` work on a local model store with
//! inferchain-engine: the same code executors run, so a user can re-run any result on
//! their own CPU. `inferchain submit` asks the chain for an inference and follows it to
//! its final result; `inferchain result` shows what the chain holds for a request;
//! `inferchain verify` proves it (GRANDPA finality across authority sets, storage
//! proofs, a local re-run) and `inferchain receipt check` re-proves an exported receipt
//! with no node;
//! `inferchain memory` manages agent memory spaces and recalls from them;
//! `inferchain council` and `model propose*` are the model council's motions and votes;
//! `inferchain validator` the validator set, session keys and motions that change it;
//! `inferchain params` the protocol parameters governance tunes; `inferchain upgrade`
//! runtime upgrades by council motion.
//!
//! What it must not do: hold protocol logic. It parses arguments, prints, and calls the
//! engine and the chain client of the library half (`inferchain_cli::chain`).

mod args;
mod chain_cmd;
mod council_cmd;
mod exit;
mod generate_cmd;
mod memory_cmd;
mod model_cmd;
mod output;
mod params_cmd;
mod progress;
mod receipt_cmd;
mod upgrade_cmd;
mod validator_cmd;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    inferchain_engine::numerics::keep_candle_on_one_thread();
    if let Some(threads) = cli.threads {
        // Read once by candle when its thread pool starts, before any model runs.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    if matches!(
        cli.command,
        args::Command::Model(_) | args::Command::Receipt(args::ReceiptCommand::Check { .. })
    ) {
        // These run models on this thread and nothing else: it joins the kernels' pool,
        // as onnxruntime's caller does, so a run needs no hand-over to a pool thread.
        if let Err(err) = inferchain_engine::numerics::join_pool(cli.threads) {
            eprintln!("warning: running models on a separate pool: {err}");
        }
    }
    let result = match cli.command {
        args::Command::Model(cmd) => model_cmd::run(&cli.store, cmd),
        args::Command::Memory(cmd) => memory_cmd::run(&cli.store, cmd),
        args::Command::Council(cmd) => council_cmd::run(cmd),
        args::Command::Validator(cmd) => validator_cmd::run(cmd),
        args::Command::Params(cmd) => params_cmd::run(cmd),
        args::Command::Upgrade(cmd) => upgrade_cmd::run(cmd),
        args::Command::Receipt(args::ReceiptCommand::Check {
            file,
            request,
            receipt,
        }) => receipt_cmd::check_file(&cli.store, &file, request, &receipt),
        cmd => chain_cmd::run(&cli.store, cmd),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => match err.downcast_ref::<exit::Exit>() {
            Some(exit) if exit.json => {
                println!(
                    "{}",
                    serde_json::json!({"error": exit.message, "exit_code": exit.code})
                );
                std::process::ExitCode::from(exit.code)
            }
            Some(exit) => {
                eprintln!("error: {}", exit.message);
                std::process::ExitCode::from(exit.code)
            }
            None => {
                eprintln!("error: {err:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
