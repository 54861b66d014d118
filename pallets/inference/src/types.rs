//! The records the inference pallet keeps.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::BoundedVec;
use inferchain_primitives::{
    dispute::{Position, TraceCommitment},
    ModelId, H256,
};
use scale_info::TypeInfo;

/// An executor's standing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub enum ExecutorStatus<BlockNumber> {
    /// Takes new requests and may open games.
    Active,
    /// Left of its own accord; its bond stays slashable until `until`.
    Unbonding { until: BlockNumber },
    /// Slashed below `MinExecutorBond`; its bond stays slashable until `until`.
    Deactivated { until: BlockNumber },
}

/// A registered executor.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct ExecutorInfo<Balance, BlockNumber> {
    /// What is held under `HoldReason::ExecutorBond` (equal to the hold, an invariant).
    pub bond: Balance,
    pub status: ExecutorStatus<BlockNumber>,
    /// Open duties (assigned requests, results in their window, games as a party). The
    /// bond cannot be withdrawn while any remain.
    pub obligations: u32,
}

/// What an executor serves (`serve`), and its load and liveness.
#[derive(
    frame_support::CloneNoBound,
    frame_support::PartialEqNoBound,
    frame_support::EqNoBound,
    frame_support::DebugNoBound,
    frame_support::DefaultNoBound,
    Encode,
    Decode,
    MaxEncodedLen,
    TypeInfo,
)]
#[scale_info(skip_type_params(MaxServed))]
pub struct ServiceInfo<MaxServed: frame_support::traits::Get<u32>> {
    /// The models it is drawn for.
    pub models: BoundedVec<ModelId, MaxServed>,
    /// The most requests it works on at once (assigned, result not yet posted).
    pub capacity: u32,
    /// Requests assigned to it whose result it has not posted yet.
    pub pending: u32,
    /// Blocks with a missed deadline since its last result posted in time (several
    /// misses in one block count once: a burst of assignments is one lapse).
    pub missed_in_row: u32,
    /// The last block a miss was counted in.
    pub last_miss: u64,
}

/// Where a request is in its lifecycle. Each request is in exactly one of these.
/// (Index 2 was `Disputed`, the jury's, removed with it; the indices of the others are
/// kept.)
/// Why an executor hands an assigned request back (`release_assignment`).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    codec::DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum ReleaseReason {
    /// Its node cannot serve the model at all (not in its store and not fetchable, or its
    /// engine cannot reproduce the registered numerics or plan): it stops serving the
    /// model, and loses `ReleaseSlash` if another executor's result for the request is
    /// finalized.
    #[codec(index = 0)]
    CannotServeModel,
    /// This run went past its node's memory, CPU or time limits (a hostile input, or a
    /// model too large for the node): it keeps serving the model and loses nothing; the
    /// request goes to another executor.
    #[codec(index = 1)]
    OverLimits,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub enum RequestStatus<BlockNumber> {
    /// Waiting for the assigned executor's result until `deadline`.
    #[codec(index = 0)]
    Pending { deadline: BlockNumber },
    /// A result is posted; games may be opened on it until `window_end`, and it stays
    /// here while any is open.
    #[codec(index = 1)]
    Submitted { window_end: BlockNumber },
    /// The result is final (no game opened, or every game ended in its favour).
    #[codec(index = 3)]
    Finalized { at: BlockNumber },
    /// No executor answered in `MaxAttempts`, or the model was retired: fee refunded.
    #[codec(index = 4)]
    Expired { at: BlockNumber },
}

impl<B> RequestStatus<B> {
    /// Whether the requester's fee is still held for this request.
    pub fn holds_fee(&self) -> bool {
        matches!(self, Self::Pending { .. } | Self::Submitted { .. })
    }

    /// The block a settled (finalized or expired) request settled in.
    pub fn settled_at(&self) -> Option<&B> {
        match self {
            Self::Finalized { at } | Self::Expired { at } => Some(at),
            _ => None,
        }
    }
}

/// A request for one inference.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
#[scale_info(skip_type_params(MaxInput))]
pub struct Request<AccountId, Balance, BlockNumber, MaxInput: frame_support::traits::Get<u32>> {
    pub model: ModelId,
    pub requester: AccountId,
    /// The executor currently responsible for the result.
    pub executor: AccountId,
    /// The canonical input (see `inferchain_primitives::io`).
    pub input: BoundedVec<u8, MaxInput>,
    pub input_hash: H256,
    /// The fee held from the requester, fixed when the request was taken.
    pub fee: Balance,
    pub status: RequestStatus<BlockNumber>,
    /// 1 for the first executor, +1 per reassignment.
    pub attempt: u32,
    pub submitted_at: BlockNumber,
}

/// A posted result.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
#[scale_info(skip_type_params(MaxOutput))]
pub struct InferenceResult<AccountId, BlockNumber, MaxOutput: frame_support::traits::Get<u32>> {
    /// Who computed the output.
    pub executor: AccountId,
    pub output: BoundedVec<u8, MaxOutput>,
    pub output_hash: H256,
    pub posted_at: BlockNumber,
    /// Whether a game was opened on the result before it became final.
    pub challenged: bool,
}

/// What the deadline queue does when an entry's block comes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub enum Deadline {
    /// The executor's time to post a result ends.
    #[codec(index = 0)]
    Execution,
    /// The challenge window ends.
    #[codec(index = 1)]
    ChallengeWindow,
    /// The retention period of a settled request ends (index 2 was the jury's reveal).
    #[codec(index = 3)]
    Prune,
    /// `Execution` for the `count` requests from the entry's id on that entered the
    /// state together (a batch taken, or reassigned, in one go): handled as one entry,
    /// their shared executor's work done once (see `spans.rs`).
    #[codec(index = 4)]
    ExecutionSpan { count: u32 },
    /// `ChallengeWindow` for `count` requests from the entry's id on (results posted
    /// together in one `submit_results`).
    #[codec(index = 5)]
    ChallengeWindowSpan { count: u32 },
    /// `Prune` for `count` requests from the entry's id on (settled together).
    #[codec(index = 6)]
    PruneSpan { count: u32 },
}

impl Deadline {
    /// What happens, whether to one request or a span of them.
    pub fn kind(self) -> Deadline {
        match self {
            Deadline::ExecutionSpan { .. } => Deadline::Execution,
            Deadline::ChallengeWindowSpan { .. } => Deadline::ChallengeWindow,
            Deadline::PruneSpan { .. } => Deadline::Prune,
            single => single,
        }
    }

    /// How many consecutive requests, from the entry's id on, the entry covers.
    pub fn count(self) -> u32 {
        match self {
            Deadline::ExecutionSpan { count }
            | Deadline::ChallengeWindowSpan { count }
            | Deadline::PruneSpan { count } => count,
            _ => 1,
        }
    }

    /// The entry for `count` requests of `kind` (`Execution`, `ChallengeWindow` or
    /// `Prune`): the single entry for one.
    pub fn covering(kind: Deadline, count: u32) -> Deadline {
        match (kind.kind(), count) {
            (k, 1) => k,
            (Deadline::Execution, count) => Deadline::ExecutionSpan { count },
            (Deadline::ChallengeWindow, count) => Deadline::ChallengeWindowSpan { count },
            (_, count) => Deadline::PruneSpan { count },
        }
    }
}

/// A party of a bisection game.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum Side {
    /// The executor whose result is challenged (the defender).
    Executor,
    /// The watcher who opened the game.
    Challenger,
}

/// What a game waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub enum GamePhase {
    /// Both parties reveal the two children of the node they stand on; each reveal is
    /// kept until the other's arrives, then the walk goes down.
    Bisect {
        executor: Option<([u8; 32], [u8; 32])>,
        challenger: Option<([u8; 32], [u8; 32])>,
    },
    /// The walk reached step `at.start`: a party posts the one-step proof and the
    /// runtime re-executes the step, or opens the element-level walk over its output.
    Prove,
    /// The element-level walk is opened: both parties reveal the chunk root of their
    /// output of the disputed step (checked against the step's leaf they stood on).
    Outputs {
        executor: Option<[u8; 32]>,
        challenger: Option<[u8; 32]>,
    },
    /// The element-level walk reached chunk `at.start` of the step's output: a party
    /// posts the element proof and the runtime recomputes that chunk.
    ProveElement,
}

/// The second walk of a game: over the chunks of one step's output.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct ElementWalk {
    /// The plan step both walks agreed is disputed.
    pub step: u32,
    /// Its output's length (the plan's): `chunk_count(output_bytes)` leaves.
    pub output_bytes: u32,
}

/// How a game ended.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub enum GameEnd {
    /// The runtime re-executed the step and found the executor's leaf (`executor_right`).
    Refereed { executor_right: bool },
    /// `side` missed its move's deadline.
    Timeout { side: Side },
    /// Both parties missed a move's deadline.
    BothTimedOut,
    /// No valid step proof came before the deadline (the executor bears that burden).
    NoProof,
    /// The step opened but the referee cannot evaluate it: nobody is convicted, bonds go
    /// back and the request is re-run by another executor.
    Unrefereeable,
}

/// A bisection game between a result's executor and one challenger.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct Game<AccountId, BlockNumber> {
    pub request: inferchain_primitives::RequestId,
    /// The request's attempt whose result is challenged: the game is void once the
    /// request has moved on (the result was overturned by another game).
    pub attempt: u32,
    pub executor: AccountId,
    pub challenger: AccountId,
    pub executor_trace: TraceCommitment,
    pub challenger_trace: TraceCommitment,
    pub challenger_output_hash: H256,
    /// Where the walk stands, and each party's hash of that node.
    pub at: Position,
    pub executor_hash: [u8; 32],
    pub challenger_hash: [u8; 32],
    pub phase: GamePhase,
    /// The current move is due by this block (inclusive).
    pub deadline: BlockNumber,
    /// Rounds of the walk played so far.
    pub rounds: u32,
    /// Once the element-level walk is opened: which step's output it walks (then `at`
    /// and the two hashes are positions and nodes of the chunk trees).
    pub element: Option<ElementWalk>,
}

/// A game's id: a counter the pallet increments.
pub type GameId = u64;

/// What a game puts at stake, recorded when it opens: the challenge bond held and the
/// slash and shares its end pays out. Governance may change the parameters while a game
/// is open; the game settles on the terms it opened with.
#[derive(
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
)]
pub struct GameStakes<Balance> {
    pub challenge_bond: Balance,
    pub result_slash: Balance,
    pub challenge_reward: sp_runtime::Perbill,
    pub requester_compensation: sp_runtime::Perbill,
}
