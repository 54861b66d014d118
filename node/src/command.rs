//! Parses the command line and runs the chosen subcommand or the node.

use crate::{
    chain_spec,
    cli::{Cli, Subcommand},
    service,
};
use inferchain_runtime::opaque::Block;
use sc_cli::SubstrateCli;
use sc_service::PartialComponents;
use std::sync::Arc;

impl SubstrateCli for Cli {
    fn impl_name() -> String {
        "inferchain node".into()
    }

    fn impl_version() -> String {
        env!("SUBSTRATE_CLI_IMPL_VERSION").into()
    }

    fn description() -> String {
        env!("CARGO_PKG_DESCRIPTION").into()
    }

    fn author() -> String {
        env!("CARGO_PKG_AUTHORS").into()
    }

    fn support_url() -> String {
        "https://github.com/inferchain/inferchain/issues".into()
    }

    fn copyright_start_year() -> i32 {
        2026
    }

    fn load_spec(&self, id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
        Ok(match id {
            "dev" => Box::new(chain_spec::development_chain_spec()?),
            "" | "local" => Box::new(chain_spec::local_chain_spec()?),
            path => Box::new(chain_spec::ChainSpec::from_json_file(
                std::path::PathBuf::from(path),
            )?),
        })
    }
}

/// Parses the command line and runs it.
pub fn run() -> sc_cli::Result<()> {
    let cli = Cli::from_args();

    match &cli.subcommand {
        Some(Subcommand::Key(cmd)) => cmd.run(&cli),
        Some(Subcommand::BuildSpec(cmd)) => {
            let runner = cli.create_runner(cmd)?;
            runner.sync_run(|config| cmd.run(config.chain_spec, config.network))
        },
        Some(Subcommand::ExportChainSpec(cmd)) => {
            let chain_spec = cli.load_spec(&cmd.chain)?;
            cmd.run(chain_spec)
        },
        Some(Subcommand::CheckBlock(cmd)) => {
            let runner = cli.create_runner(cmd)?;
            runner.async_run(|config| {
                let PartialComponents { client, task_manager, import_queue, .. } =
                    service::new_partial(&config)?;
                Ok((cmd.run(client, import_queue), task_manager))
            })
        },
        Some(Subcommand::ExportBlocks(cmd)) => {
            let runner = cli.create_runner(cmd)?;
            runner.async_run(|config| {
                let PartialComponents { client, task_manager, .. } = service::new_partial(&config)?;
                Ok((cmd.run(client, config.database), task_manager))
            })
        },
        Some(Subcommand::ExportState(cmd)) => {
            let runner = cli.create_runner(cmd)?;
            runner.async_run(|config| {
                let PartialComponents { client, task_manager, .. } = service::new_partial(&config)?;
                Ok((cmd.run(client, config.chain_spec), task_manager))
            })
        },
        Some(Subcommand::ImportBlocks(cmd)) => {
            let runner = cli.create_runner(cmd)?;
            runner.async_run(|config| {
                let PartialComponents { client, task_manager, import_queue, .. } =
                    service::new_partial(&config)?;
                Ok((cmd.run(client, import_queue), task_manager))
            })
        },
        Some(Subcommand::PurgeChain(cmd)) => {
            let runner = cli.create_runner(cmd)?;
            runner.sync_run(|config| cmd.run(config.database))
        },
        Some(Subcommand::Revert(cmd)) => {
            let runner = cli.create_runner(cmd)?;
            runner.async_run(|config| {
                let PartialComponents { client, task_manager, backend, .. } =
                    service::new_partial(&config)?;
                let aux_revert = Box::new(|client: Arc<service::FullClient>, backend, blocks| {
                    sc_consensus_babe::revert(client.clone(), backend, blocks)?;
                    sc_consensus_grandpa::revert(client, blocks)?;
                    Ok(())
                });
                Ok((cmd.run(client, backend, Some(aux_revert)), task_manager))
            })
        },
        #[cfg(feature = "runtime-benchmarks")]
        Some(Subcommand::Benchmark(cmd)) => {
            use frame_benchmarking_cli::{BenchmarkCmd, SUBSTRATE_REFERENCE_HARDWARE};
            let runner = cli.create_runner(cmd)?;
            runner.sync_run(|config| match cmd {
                BenchmarkCmd::Pallet(cmd) => cmd
                    .run_with_spec::<sp_runtime::traits::HashingFor<Block>, service::HostFunctions>(
                        Some(config.chain_spec),
                    ),
                BenchmarkCmd::Block(cmd) => {
                    let PartialComponents { client, .. } = service::new_partial(&config)?;
                    cmd.run(client)
                },
                BenchmarkCmd::Machine(cmd) => cmd.run(&config, SUBSTRATE_REFERENCE_HARDWARE.clone()),
                _ => Err("inferchain-node supports `benchmark pallet`, `block` and `machine`; \
                          the storage, overhead and extrinsic benchmarks are not wired in."
                    .into()),
            })
        },
        #[cfg(not(feature = "runtime-benchmarks"))]
        Some(Subcommand::Benchmark(_)) => Err("This inferchain-node was built without benchmarks. \
             Build one with `cargo build --release -p inferchain-node --features runtime-benchmarks` \
             (scripts/benchmark.sh does it and runs the pallet benchmarks)."
            .into()),
        Some(Subcommand::InferenceWorker(cmd)) => {
            std::process::exit(inferchain_engine::worker::main(cmd.args.clone()))
        },
        Some(Subcommand::ChainInfo(cmd)) => {
            let runner = cli.create_runner(cmd)?;
            runner.sync_run(|config| cmd.run::<Block>(&config))
        },
        None => {
            let runner = cli.create_runner(&cli.run)?;
            let model_store = cli.model_store.clone();
            let fault = cli.executor_fault();
            let isolation = crate::inference::Isolation::from(&cli.inference);
            let fetch = inferchain_engine::fetch::FetchLimits {
                deadline: std::time::Duration::from_secs(cli.inference.fetch_deadline_secs),
                max_bytes: cli.inference.fetch_max_mib.saturating_mul(1 << 20),
            };
            runner.run_node_until_exit(|config| async move {
                if let Some(fault) = fault {
                    crate::inference::refuse_fault_outside_test_chains(&config, fault)?;
                }
                let executor = crate::inference::ExecutorOptions {
                    model_store: model_store
                        .unwrap_or_else(inferchain_engine::ModelStore::default_root),
                    fault,
                    isolation,
                    fetch,
                };
                match config.network.network_backend {
                    sc_network::config::NetworkBackendType::Libp2p => service::new_full::<
                        sc_network::NetworkWorker<Block, <Block as sp_runtime::traits::Block>::Hash>,
                    >(config, executor)
                    .map_err(sc_cli::Error::Service),
                    sc_network::config::NetworkBackendType::Litep2p => {
                        service::new_full::<sc_network::Litep2pNetworkBackend>(config, executor)
                            .map_err(sc_cli::Error::Service)
                    },
                }
            })
        },
    }
}
