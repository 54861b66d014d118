//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "inferchain",
    version,
    about = "inferchain client: run models locally, verify results"
)]
pub struct Cli {
    /// The local model store, shared with the node (default: $INFERCHAIN_STORE, else
    /// $XDG_DATA_HOME/inferchain/models, else ~/.local/share/inferchain/models).
    #[arg(long, global = true, default_value_os_t = default_store())]
    pub store: PathBuf,
    /// Threads for inference (outputs do not depend on it).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

fn default_store() -> PathBuf {
    inferchain_engine::ModelStore::default_root()
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Models in the local store.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Ask the chain for an inference; with --wait, follow it to its final result.
    Submit {
        /// The model: its id (hex, 0x optional) or its registered name.
        #[arg(long)]
        model: String,
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        chain: ChainArgs,
        /// Secret URI of the paying account (dev names like //Charlie, or a mnemonic).
        #[arg(long, default_value = "//Charlie")]
        suri: String,
        /// The most you agree to pay (default: the model's fee for this input; per token
        /// of prompt bytes and `--max-tokens` for a language model).
        #[arg(long)]
        max_fee: Option<u128>,
        /// Follow the request: included, result posted, window open, final, finalized.
        #[arg(long)]
        wait: bool,
        /// Ask a language model with the memories of this space: the prompt is embedded
        /// by the space's model, the K best memories recalled on chain and put before it.
        #[arg(long, requires = "prompt")]
        memory: Option<u32>,
        /// How many memories to recall (with --memory).
        #[arg(long, default_value_t = 3, requires = "memory")]
        k: u32,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Agent memory: spaces of texts whose embeddings are verified inference results,
    /// recalled by an exact top-k anyone can recompute. Memory text is public chain
    /// state, readable by every node and executor: never store secrets there.
    #[command(subcommand)]
    Memory(MemoryCommand),
    /// Declare, as an executor, the models you serve and how many requests you work on
    /// at once (`serve`): requests are drawn only among a model's servers.
    Serve {
        /// A model to serve (id or registered name); repeat for several.
        #[arg(long = "model", required = true)]
        models: Vec<String>,
        /// Requests worked on at once (default: the current declaration's, else 16).
        #[arg(long)]
        capacity: Option<u32>,
        /// Serve exactly these models (default: add them to what you serve now).
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        chain: ChainArgs,
        /// Secret URI of the executor's account.
        #[arg(long)]
        suri: String,
    },
    /// Show a request and its result as the chain holds them.
    Result {
        /// The request id.
        id: u64,
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long)]
        json: bool,
    },
    /// Check a request's receipt: finality (GRANDPA justification), storage proofs,
    /// hashes, and with --rerun the output on this CPU. Exit codes: 0 valid, 3 invalid,
    /// 4 not final yet, 5 node unreachable.
    Verify {
        /// The request id.
        id: u64,
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        receipt: ReceiptArgs,
        /// Also write the receipt to FILE: headers, justifications and storage proofs that
        /// `inferchain receipt check FILE` verifies with no node.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
    },
    /// Receipts exported by `verify --export`.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// The model council: motions and votes.
    #[command(subcommand)]
    Council(CouncilCommand),
    /// The validator set: who authors and finalizes blocks, and motions that change it.
    #[command(subcommand)]
    Validator(ValidatorCommand),
    /// The protocol parameters governance tunes (bonds, slashes, deadlines, deposits),
    /// and motions that change them.
    #[command(subcommand)]
    Params(ParamsCommand),
    /// Runtime upgrades: the council authorizes the code's hash, anyone applies the code.
    #[command(subcommand)]
    Upgrade(UpgradeCommand),
}

#[derive(Subcommand, Debug)]
pub enum UpgradeCommand {
    /// Propose to the council to authorize the runtime in WASM (two thirds of the
    /// members must vote aye). Its spec version must be greater than the chain's.
    Propose {
        /// The runtime: a `.compact.compressed.wasm` as substrate-wasm-builder writes it.
        wasm: PathBuf,
        #[command(flatten)]
        motion: MotionArgs,
    },
    /// Submit the authorized runtime; the chain switches to it in that block.
    Apply {
        wasm: PathBuf,
        /// Secret URI of the account paying for the transaction.
        #[arg(long)]
        suri: String,
        #[command(flatten)]
        chain: ChainArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum ParamsCommand {
    /// Every parameter's value in force, its default and the bounds a motion must keep.
    List {
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long)]
        json: bool,
    },
    /// Propose to the council a parameter's new value. Amounts are in the chain's
    /// smallest unit (or `12.5INFER`), deadlines in blocks, shares as `12.5%`.
    Propose {
        /// The parameter (`inferchain params list` names them), e.g. `execution-timeout`.
        name: String,
        value: String,
        #[command(flatten)]
        motion: MotionArgs,
    },
}

/// A council motion's proposer and threshold.
#[derive(Args, Debug)]
pub struct MotionArgs {
    /// Secret URI of a council member.
    #[arg(long)]
    pub suri: String,
    /// Aye votes the motion needs (default: more than half of the council).
    #[arg(long)]
    pub threshold: Option<u32>,
    #[command(flatten)]
    pub chain: ChainArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum StatusArg {
    Active,
    Deprecated,
    Retired,
}

#[derive(Subcommand, Debug)]
pub enum ValidatorCommand {
    /// The validators of this session, the set governance decided, the session index and
    /// GRANDPA's set id.
    List {
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long)]
        json: bool,
    },
    /// Register this account's session keys (BABE sr25519 and GRANDPA ed25519, derived
    /// from --keys-suri as a node started with `--alice`… or `key insert` holds them),
    /// with the proof that the account holds them. Holds a key deposit.
    SetKeys {
        /// Secret URI of the validator's account.
        #[arg(long)]
        suri: String,
        /// Secret URI the session keys derive from (default: --suri).
        #[arg(long)]
        keys_suri: Option<String>,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Propose to the council to add a validator (SS58 address or dev name).
    ProposeAdd {
        who: String,
        #[command(flatten)]
        motion: MotionArgs,
    },
    /// Propose to the council to remove a validator.
    ProposeRemove {
        who: String,
        #[command(flatten)]
        motion: MotionArgs,
    },
}

/// The model council: its members vote on motions (registering, deprecating and
/// retiring models, their fees, the council's own membership).
#[derive(Subcommand, Debug)]
pub enum CouncilCommand {
    /// The members and the open motions with their votes.
    List {
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long)]
        json: bool,
    },
    /// Vote on an open motion.
    Vote {
        /// The motion's hash (`council list`).
        motion: String,
        /// Vote aye.
        #[arg(long, conflicts_with = "nay", required_unless_present = "nay")]
        aye: bool,
        /// Vote nay.
        #[arg(long)]
        nay: bool,
        /// Secret URI of a council member.
        #[arg(long)]
        suri: String,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Close a motion that has its votes (or whose time ran out): it is executed if
    /// approved. Anyone may close.
    Close {
        /// The motion's hash (`council list`).
        motion: String,
        /// Secret URI of the account paying for the transaction.
        #[arg(long)]
        suri: String,
        #[command(flatten)]
        chain: ChainArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReceiptCommand {
    /// Check an exported receipt with no node: the same checks as `verify` (exit codes
    /// too), against the genesis hash you trust.
    Check {
        /// The file `verify --export` wrote.
        file: PathBuf,
        /// The request the file must prove (a file names its own).
        #[arg(long)]
        request: Option<u64>,
        #[command(flatten)]
        receipt: ReceiptArgs,
    },
}

/// What a receipt is checked against and for.
#[derive(Args, Debug)]
pub struct ReceiptArgs {
    /// The genesis hash you trust (from the chain spec or a source you trust; the
    /// node's `chain_getBlockHash(0)` is only as good as the node). Required.
    #[arg(long)]
    pub genesis: Option<String>,
    /// The request must be this account's (SS58 address or a dev name like //Charlie).
    #[arg(long)]
    pub account: Option<String>,
    /// The request's input must be exactly this one (`--input`, `--text` or `--prompt`
    /// with `--max-tokens`, as given to `submit`).
    #[command(flatten)]
    pub input: InputArgs,
    /// Re-run the model locally (from --store; fetched from its registered mirror
    /// if missing) and compare under the model's comparison rule. Only after every other
    /// check passed.
    #[arg(long)]
    pub rerun: bool,
    /// One JSON object, errors included.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ChainArgs {
    /// The node's RPC endpoint (default: $INFERCHAIN_URL, else ws://127.0.0.1:9944).
    #[arg(long, default_value_t = default_url())]
    pub url: String,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

fn default_url() -> String {
    std::env::var("INFERCHAIN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9944".into())
}

/// `inferchain memory ...`.
#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// Create a memory space embedded by MODEL (id or registered name); you own it and
    /// hold its deposit until you close it.
    Create {
        #[arg(long)]
        model: String,
        #[command(flatten)]
        chain: ChainArgs,
        /// Secret URI of the owner.
        #[arg(long, default_value = "//Charlie")]
        suri: String,
        #[arg(long)]
        json: bool,
    },
    /// Store TEXT in SPACE and request its embedding (you pay the embedding's fee and
    /// the memory's deposit). PUBLIC: anyone can read it.
    Remember {
        space: u32,
        text: String,
        /// The memory this one updates (kept as history, no longer recalled).
        #[arg(long)]
        supersedes: Option<u32>,
        /// The most the embedding may cost (default: the model's fee).
        #[arg(long)]
        max_fee: Option<u128>,
        /// Wait until the embedding is final and the memory recallable.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long, default_value = "//Charlie")]
        suri: String,
        #[arg(long)]
        json: bool,
    },
    /// Forget memory MEMORY of SPACE; its deposit returns to its author.
    Forget {
        space: u32,
        memory: u32,
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long, default_value = "//Charlie")]
        suri: String,
    },
    /// The K memories of SPACE closest to TEXT: TEXT is embedded on this CPU with the
    /// space's model (the kernels give every CPU the executors' bits), the runtime
    /// answers, and the answer is recomputed here from the space's storage.
    Recall {
        space: u32,
        text: String,
        #[arg(long, default_value_t = 3)]
        k: u32,
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long)]
        json: bool,
    },
    /// Let AGENT (SS58) recall from SPACE, or also write to it with --write.
    Grant {
        space: u32,
        agent: String,
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long, default_value = "//Charlie")]
        suri: String,
    },
    /// End AGENT's access to SPACE.
    Revoke {
        space: u32,
        agent: String,
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long, default_value = "//Charlie")]
        suri: String,
    },
    /// The memories of SPACE: state, uses, versions, text.
    List {
        space: u32,
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Onnx,
    Bert,
    /// A llama-family causal LM folder (config.json, *.safetensors, tokenizer.json).
    Llm,
}

/// A model to import and the registration it proposes.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// An .onnx file, or a directory with a BERT model (config.json,
    /// model.safetensors, tokenizer.json) or a llama-family LLM (config.json,
    /// *.safetensors, tokenizer.json, generation_config.json).
    pub path: PathBuf,
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Name to register under (default: from the path).
    #[arg(long)]
    pub name: Option<String>,
    /// Fee per request in the chain's smallest unit.
    #[arg(long, default_value_t = 1_000_000_000_000)]
    pub fee: u128,
    /// The largest size a dynamic dimension of an ONNX model's inputs and outputs may
    /// take: the registered bound, and the shape the cost estimate's dry run uses.
    #[arg(long, default_value_t = inferchain_engine::spec::DEFAULT_DYNAMIC_MAX)]
    pub dynamic_max: u32,
}

#[derive(Args, Debug)]
pub struct InputArgs {
    /// Input tensor as .npy: `FILE.npy`, or `NAME=FILE.npy` once per input for models
    /// with several inputs.
    #[arg(
        long = "input",
        value_name = "[NAME=]FILE.npy",
        conflicts_with_all = ["text", "prompt"]
    )]
    pub inputs: Vec<String>,
    /// Input text, for text models.
    #[arg(long, conflicts_with = "prompt")]
    pub text: Option<String>,
    /// The prompt, for language models.
    #[arg(long)]
    pub prompt: Option<String>,
    /// The most tokens a language model may generate (default: the model's cap).
    #[arg(long = "max-tokens", requires = "prompt")]
    pub max_tokens: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Copy a model into the store; print its id and the spec to register.
    Import {
        #[command(flatten)]
        model: ImportArgs,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Store and load the model for local runs and benchmarks only: no registration
        /// spec is derived, so a model the chain could not take (an input over its size
        /// limit, a cost over its cap) is still stored.
        #[arg(long)]
        local_only: bool,
    },
    /// Run a stored model on an input; print the output and its hash.
    Run {
        /// The model id (hex, 0x optional).
        model: String,
        #[command(flatten)]
        input: InputArgs,
        /// Write the (first) output tensor here as .npy.
        #[arg(long)]
        output: Option<PathBuf>,
        /// One JSON object: {model, input_hash, output_hash, dtype, shape, data}.
        #[arg(long)]
        json: bool,
    },
    /// Re-hash a stored model's files against its id.
    Verify { model: String },
    /// Import a model and register it on chain through sudo (the development chain only;
    /// elsewhere the council registers models: `model propose`).
    Register {
        #[command(flatten)]
        model: ImportArgs,
        /// Where nodes fetch the model if they lack it: an http:// mirror of its store
        /// folder (`<uri>/manifest.scale`, `<uri>/<file>`).
        #[arg(long)]
        uri: Option<String>,
        /// Secret URI of the sudo key.
        #[arg(long, default_value = "//Alice")]
        suri: String,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Propose to the model council to register a model (with its dispute commitments,
    /// as one batch), and vote aye on it as the proposer. Members then `council vote`
    /// and anyone `council close`s it.
    Propose {
        #[command(flatten)]
        model: ImportArgs,
        /// Where nodes fetch the model if they lack it (as for `register`).
        #[arg(long)]
        uri: Option<String>,
        #[command(flatten)]
        motion: MotionArgs,
    },
    /// Propose to the council a new fee for a registered model.
    ProposeFee {
        /// The model: id or registered name.
        model: String,
        /// The new fee, in the chain's smallest unit.
        fee: u128,
        #[command(flatten)]
        motion: MotionArgs,
    },
    /// Propose to the council a model's new status: active, deprecated (no new
    /// requests) or retired (final).
    ProposeStatus {
        /// The model: id or registered name.
        model: String,
        status: StatusArg,
        #[command(flatten)]
        motion: MotionArgs,
    },
    /// The models registered on chain.
    List {
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long)]
        json: bool,
    },
    /// Time repeated runs of a stored model (after one warm-up run): the model alone, as
    /// onnxruntime's `session.run` is timed, and an executor's whole run (payload checks
    /// and the receipt's input and output hashes added).
    Bench {
        model: String,
        #[command(flatten)]
        input: InputArgs,
        #[arg(long, default_value_t = 10)]
        iters: u32,
        #[arg(long)]
        json: bool,
    },
}
