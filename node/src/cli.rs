//! Command-line arguments of `inferchain-node`.

/// The node's command line: Substrate's `run` flags plus the subcommands below.
#[derive(Debug, clap::Parser)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Subcommand>,

    #[clap(flatten)]
    pub run: sc_cli::RunCmd,

    /// The model store the off-chain workers run models from (`inferchain model import`
    /// fills it). Default: the CLI's, so a model imported with `inferchain model import`
    /// is served without flags: $INFERCHAIN_STORE, else $XDG_DATA_HOME/inferchain/models,
    /// else ~/.local/share/inferchain/models.
    #[arg(long, value_name = "DIR")]
    pub model_store: Option<std::path::PathBuf>,

    /// FOR TESTS ONLY (in nodes built with the `test-faults` feature, and refused on
    /// chains other than development and local ones): make this node's executors
    /// misbehave, so end-to-end tests can run a real cheater. `wrong-output` posts wrong
    /// results (for a model with dispute commitments: a trace with its middle step
    /// corrupted, played to the end), `no-output` posts none, `throw-games` opens a game
    /// on every traced result of another executor and never moves in it. A node so
    /// started gets slashed.
    #[cfg(feature = "test-faults")]
    #[arg(long, value_name = "FAULT")]
    pub executor_fault: Option<ExecutorFault>,

    #[clap(flatten)]
    pub inference: InferenceLimitArgs,
}

/// How the node runs models: in worker processes with limits (the default), or, with
/// `--inference-workers 0`, inside the node (no limits; for measuring the isolation's cost).
#[derive(Debug, Clone, clap::Args)]
pub struct InferenceLimitArgs {
    /// Worker processes that run models (kept warm, models loaded); 0 runs them inside
    /// the node with no limits.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub inference_workers: usize,

    /// Address-space cap of each worker (its loaded models and their runs), in MiB; an
    /// allocation past it ends the run with `OutOfMemory`.
    #[arg(long, value_name = "MIB", default_value_t = 8192)]
    pub inference_memory_mib: u64,

    /// CPU seconds (all threads together) one run may use; past them `CpuTimeExceeded`.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub inference_cpu_secs: u64,

    /// Wall-clock milliseconds one run may take (from handing it to a worker, starting
    /// one if none is idle); past them the worker is killed and the run ends with
    /// `DeadlineExceeded`. The default fits the chain's execution window (5 blocks of
    /// 3 s) with a block to spare for the result's transaction.
    #[arg(long, value_name = "MS", default_value_t = 9_000)]
    pub inference_deadline_ms: u64,

    /// Seconds one model fetch from a mirror may take, all files together.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub fetch_deadline_secs: u64,

    /// The most MiB one model fetch may bring, all files together.
    #[arg(long, value_name = "MIB", default_value_t = 16384)]
    pub fetch_max_mib: u64,
}

impl Cli {
    /// The misbehaviour `--executor-fault` asks for: always none in a node built without
    /// the `test-faults` feature (release builds).
    pub fn executor_fault(&self) -> Option<pallet_inference::offchain::Fault> {
        #[cfg(feature = "test-faults")]
        return self.executor_fault.map(Into::into);
        #[cfg(not(feature = "test-faults"))]
        None
    }
}

/// The misbehaviours `--executor-fault` can inject.
#[cfg(feature = "test-faults")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorFault {
    WrongOutput,
    NoOutput,
    ThrowGames,
}

#[cfg(feature = "test-faults")]
impl From<ExecutorFault> for pallet_inference::offchain::Fault {
    fn from(f: ExecutorFault) -> Self {
        match f {
            ExecutorFault::WrongOutput => Self::WrongOutput,
            ExecutorFault::NoOutput => Self::NoOutput,
            ExecutorFault::ThrowGames => Self::ThrowGames,
        }
    }
}

/// Subcommands, as a Substrate user expects them.
#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Subcommand {
    /// Key management: generate, inspect, insert keys.
    #[command(subcommand)]
    Key(sc_cli::KeySubcommand),

    /// Build a chain specification (deprecated upstream in favour of `export-chain-spec`,
    /// kept because users and scripts still call it).
    BuildSpec(sc_cli::BuildSpecCmd),

    /// Export the chain specification.
    ExportChainSpec(sc_cli::ExportChainSpecCmd),

    /// Validate blocks.
    CheckBlock(sc_cli::CheckBlockCmd),

    /// Export blocks.
    ExportBlocks(sc_cli::ExportBlocksCmd),

    /// Export the state of a given block into a chain spec.
    ExportState(sc_cli::ExportStateCmd),

    /// Import blocks.
    ImportBlocks(sc_cli::ImportBlocksCmd),

    /// Remove the whole chain.
    PurgeChain(sc_cli::PurgeChainCmd),

    /// Revert the chain to a previous state.
    Revert(sc_cli::RevertCmd),

    /// Benchmark runtime pallets and the node.
    #[cfg(feature = "runtime-benchmarks")]
    #[command(subcommand)]
    Benchmark(frame_benchmarking_cli::BenchmarkCmd),

    /// Benchmarks need a node built with `--features runtime-benchmarks`
    /// (`scripts/benchmark.sh` builds one); this build has none.
    #[cfg(not(feature = "runtime-benchmarks"))]
    Benchmark(BenchmarkUnavailable),

    /// Information about the database.
    ChainInfo(sc_cli::ChainInfoCmd),

    /// The inference worker process the node starts itself (not for users).
    #[command(hide = true)]
    InferenceWorker(InferenceWorkerCmd),
}

/// The arguments the node passes to its inference workers (`inferchain_engine::worker`).
#[derive(Debug, clap::Args)]
pub struct InferenceWorkerCmd {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

/// Stands in for `benchmark` in a node built without benchmarks, to say how to get them.
#[cfg(not(feature = "runtime-benchmarks"))]
#[derive(Debug, clap::Args)]
pub struct BenchmarkUnavailable {
    /// Whatever was passed to `benchmark`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}
