//! `inferchain`: the command-line client.
//!
//! `inferchain model import|run|verify|bench` work on a local model store with
//! inferchain-engine: the same code executors run, so a user can re-run any result on
//! their own CPU. `inferchain submit` asks the chain for an inference and follows it to
//! its final result; `inferchain result` shows what the chain holds for a request;
//! `inferchain verify` proves it (GRANDPA finality, storage proofs, a local re-run);
//! `inferchain memory` manages agent memory spaces and recalls from them.
//!
//! What it must not do: hold protocol logic. It parses arguments, prints, and calls the
//! engine and the chain client of the library half (`inferchain_cli::chain`).

mod args;
mod chain_cmd;
mod generate_cmd;
mod memory_cmd;
mod model_cmd;
mod output;
mod progress;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    if let Some(threads) = cli.threads {
        // Read once by candle when its thread pool starts, before any model runs.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    let result = match cli.command {
        args::Command::Model(cmd) => model_cmd::run(&cli.store, cmd),
        args::Command::Memory(cmd) => memory_cmd::run(&cli.store, cmd),
        cmd => chain_cmd::run(&cli.store, cmd),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
