//! # Inference pallet
//!
//! The rules that let a dApp pay for an inference, let a staked executor earn it, and
//! make a wrong answer cost the executor more than it could gain. Nothing here runs a
//! model: executors and watchers run it off chain and post what they found; a dispute is
//! settled by the runtime re-executing one step of the model (the [`game`] module).
//!
//! ## Request lifecycle
//!
//! ```text
//!  request_inference ─► Pending ──submit_traced_result──► Submitted ──window ends,──► Finalized
//!   (fee held,            │  deadline missed:               │        no game open   (fee paid)
//!    executor drawn)      │  slash, reassign                │ open_game (any number)
//!                         │  or Expired (refund)            ▼
//!                         │                            games walk to one step; the runtime
//!                         └◄── executor convicted: reassign ◄── referees it; the last game
//!                                                          won by the executor finalizes
//!  Finalized / Expired ──ResultRetention──► pruned
//! ```
//!
//! * **Request** (`request_inference`): the model must be `Active` and have dispute
//!   commitments (a model without them cannot be disputed, so it cannot be requested:
//!   `NoCommitments`), the input within the model's size limit and well formed for its
//!   input spec, and the model's fee at most `max_fee`. The fee is held from the requester
//!   (`HoldReason::RequestFee`). An executor is drawn stake-weighted from the active set
//!   with `Config::Randomness`.
//! * **Result** (`submit_traced_result`): only the assigned executor, before its deadline
//!   (`ExecutionTimeout` blocks), with the commitment to its run's trace. The output must
//!   be within the model's output limit and well formed. The challenge window
//!   (`ChallengePeriod` blocks) opens.
//! * **Missed deadline**: the executor loses `MissedDeadlineSlash` and the request goes
//!   to another executor, up to `MaxAttempts` in all; then it expires and the fee is
//!   refunded in full. A request whose model was retired meanwhile expires with a full
//!   refund and no slash.
//! * **Disputes**: any number of watchers open their own bisection games (`open_game`),
//!   walk to the one step the traces first differ at (`reveal`) and the runtime's referee
//!   re-executes it (`prove_step`, or one chunk of it: `reveal_output`, `prove_element`).
//!   See the [`game`] module for the rules and the money. No jury, no vote: randomness
//!   plays no part in any outcome.
//! * **Finalization**: the held fee goes to the executor less `ProtocolFee`, which is
//!   burned. Event `ResultFinalized` — integrators act on it, never on `ResultSubmitted`.
//! * **Executors** bond at least `MinExecutorBond` (`HoldReason::ExecutorBond`).
//!   `unregister_executor` starts `UnbondingPeriod`; the bond stays slashable and cannot
//!   be withdrawn while the executor has open duties. An executor slashed below the
//!   minimum is deactivated.
//!
//! All timeouts are kept in a deadline queue keyed by block; `on_initialize` works
//! through it with at most `MaxDeadlinesPerBlock` entries per block (never iterating all
//! requests). Settled requests stay readable for `ResultRetention` blocks, then pruned.
//!
//! ## Invariants (`do_try_state`, run after every test)
//!
//! * Each executor's recorded bond equals what it has on hold under `ExecutorBond`, and
//!   the active set is exactly the executors with status `Active`.
//! * Each requester's `RequestFee` hold equals the sum of the fees of its open requests.
//! * Each challenger's `ChallengeBond` hold equals `ChallengeBond` times its open games;
//!   every game is indexed under its challenger; `OpenGames` counts them per request
//!   attempt; a stored trace belongs to a stored result.
//! * A result record exists exactly for `Submitted` and `Finalized` requests.
//! * Total issuance changes only by burned slashes and fees (`TotalBurned`, checked by
//!   the tests and the simulation).
//!
//! ## Randomness
//!
//! Assignment is seeded from `Config::Randomness` (in the runtime, the parent block
//! author's BABE VRF output): good enough to spread work, not to resist a block author
//! who withholds its block or a requester who times its submission to steer an
//! assignment. Nothing about safety depends on it: a wrong
//! result is overturned by any honest watcher's game, refereed by the runtime.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
pub mod duty_priority;
#[cfg(test)]
mod duty_priority_tests;
mod executors;
mod funds;
pub mod game;
#[cfg(test)]
mod game_element_tests;
#[cfg(test)]
mod game_fixtures;
#[cfg(test)]
mod game_simulation;
#[cfg(test)]
mod game_tests;
mod invariants;
pub mod migrations;
#[cfg(test)]
mod mock;
pub mod observer;
pub mod offchain;
mod offchain_game;
#[cfg(test)]
mod offchain_game_tests;
pub mod offchain_sender;
#[cfg(test)]
mod offchain_tests;
mod queue;
mod requests;
pub mod runtime_api;
mod service;
#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod simulation_support;
#[cfg(test)]
mod span_tests;
mod spans;
#[cfg(test)]
mod tests;
pub mod types;
pub mod weights;

pub use duty_priority::PrioritizeDuties;
pub use observer::RequestObserver;
pub use service::MaxReleasers;
pub use types::*;
pub use weights::WeightInfo;

/// Log target of this pallet.
pub const LOG_TARGET: &str = "runtime::inference";

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::{
        pallet_prelude::*,
        traits::{fungible, Randomness},
    };
    use frame_system::pallet_prelude::*;
    use inferchain_primitives::{model::ModelRegistry, ModelId, RequestId};
    use sp_runtime::Perbill;

    /// The balance type of the currency.
    pub type BalanceOf<T> = <<T as Config>::Currency as fungible::Inspect<
        <T as frame_system::Config>::AccountId,
    >>::Balance;

    /// A request as stored.
    pub type RequestOf<T> = Request<
        <T as frame_system::Config>::AccountId,
        BalanceOf<T>,
        BlockNumberFor<T>,
        <T as Config>::MaxInputBytes,
    >;
    /// A result as stored.
    pub type ResultOf<T> = InferenceResult<
        <T as frame_system::Config>::AccountId,
        BlockNumberFor<T>,
        <T as Config>::MaxOutputBytes,
    >;
    /// One result of `submit_results`: the request, the output, the commitment to the
    /// run's trace and the Merkle path of the output's leaf in it.
    pub type BatchResultOf<T> = (
        RequestId,
        BoundedVec<u8, <T as Config>::MaxOutputBytes>,
        inferchain_primitives::dispute::TraceCommitment,
        game::PathOf,
    );
    /// An executor as stored.
    pub type ExecutorOf<T> = ExecutorInfo<BalanceOf<T>, BlockNumberFor<T>>;
    /// An executor's service record as stored.
    pub type ServiceOf<T> = ServiceInfo<<T as Config>::MaxServedModels>;

    /// 1: the jury removed (`migrations::RemoveJury`); 2: service records
    /// (`migrations::RecountPending`).
    const STORAGE_VERSION: StorageVersion = StorageVersion::new(2);

    #[pallet::pallet]
    #[pallet::storage_version(STORAGE_VERSION)]
    pub struct Pallet<T>(_);

    /// Why this pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// An executor's bond.
        ExecutorBond,
        /// A requester's fee, until it is paid or refunded.
        RequestFee,
        /// A challenger's bond, until its game ends.
        ChallengeBond,
        /// A requester's deposit for the bytes its request and result keep in state,
        /// until the request is pruned.
        StorageDeposit,
    }

    #[pallet::config]
    pub trait Config:
        frame_system::Config<RuntimeEvent: From<Event<Self>>>
        + frame_system::offchain::CreateSignedTransaction<Call<Self>>
    {
        /// The keys executors sign their off-chain workers' transactions with
        /// (`offchain::crypto::ExecutorAuthId` in the runtime).
        type AuthorityId: frame_system::offchain::AppCrypto<Self::Public, Self::Signature>;

        /// The currency fees, bonds and slashes are paid in.
        type Currency: fungible::Inspect<Self::AccountId>
            + fungible::Mutate<Self::AccountId>
            + fungible::MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;

        /// The runtime's hold reasons.
        type RuntimeHoldReason: From<HoldReason>;

        /// The model registry.
        type Models: ModelRegistry<BalanceOf<Self>>;

        /// Seeds executor assignment (see the crate docs on what it resists).
        type Randomness: Randomness<Self::Hash, BlockNumberFor<Self>>;

        /// The smallest bond an active executor holds.
        #[pallet::constant]
        type MinExecutorBond: Get<BalanceOf<Self>>;
        /// Blocks an executor stays slashable after leaving or being deactivated.
        #[pallet::constant]
        type UnbondingPeriod: Get<BlockNumberFor<Self>>;
        /// Blocks an assigned executor has to post a result.
        #[pallet::constant]
        type ExecutionTimeout: Get<BlockNumberFor<Self>>;
        /// Blocks a posted result stays open to challenge.
        #[pallet::constant]
        type ChallengePeriod: Get<BlockNumberFor<Self>>;
        /// How many executors may try a request before it expires.
        #[pallet::constant]
        type MaxAttempts: Get<u32>;
        /// What an executor loses for missing its deadline.
        #[pallet::constant]
        type MissedDeadlineSlash: Get<BalanceOf<Self>>;
        /// What an executor loses for a result a game convicts.
        #[pallet::constant]
        type ResultSlash: Get<BalanceOf<Self>>;
        /// What a challenger holds while its game runs (lost if it loses).
        #[pallet::constant]
        type ChallengeBond: Get<BalanceOf<Self>>;
        /// The share of a wrong executor's slash that goes to the challenger.
        #[pallet::constant]
        type ChallengeReward: Get<Perbill>;
        /// The share of a wrong executor's slash that goes to the requester.
        #[pallet::constant]
        type RequesterCompensation: Get<Perbill>;
        /// The share of each paid fee that is burned.
        #[pallet::constant]
        type ProtocolFee: Get<Perbill>;
        /// The most registered executors.
        #[pallet::constant]
        type MaxExecutors: Get<u32>;
        /// The largest request input (the models' own limits are at most this).
        #[pallet::constant]
        type MaxInputBytes: Get<u32>;
        /// The largest result output (the models' own limits are at most this).
        #[pallet::constant]
        type MaxOutputBytes: Get<u32>;
        /// Blocks a settled request stays readable before it is pruned.
        #[pallet::constant]
        type ResultRetention: Get<BlockNumberFor<Self>>;
        /// The most deadline-queue entries handled in one block.
        #[pallet::constant]
        type MaxDeadlinesPerBlock: Get<u32>;
        /// The transaction-pool priority of a due protocol move (`PrioritizeDuties`).
        #[pallet::constant]
        type DutyPriority: Get<sp_runtime::transaction_validity::TransactionPriority>;
        /// What an executor loses for handing back an assigned request whose model it
        /// cannot serve (`release_assignment`), when another executor's result for it is
        /// finalized: less than a missed deadline, more than nothing, so that releasing
        /// is no free way to bounce requests others can run.
        #[pallet::constant]
        type ReleaseSlash: Get<BalanceOf<Self>>;
        /// A block's capacity for requests, in slots: each request takes one, and each
        /// assignment (a single request, or a batch whatever its size: one draw, one
        /// queue entry per stage) `SlotsPerAssignment` more. The deadline queue's budget
        /// is sized to handle what a full block brings (`block_capacity` in the runtime
        /// proves it for every mix).
        #[pallet::constant]
        type MaxRequestSlotsPerBlock: Get<u32>;
        /// The slots an assignment takes besides its requests' own (see
        /// `MaxRequestSlotsPerBlock`): what its draw, its holds and its queue entries
        /// cost, in requests of a batch.
        #[pallet::constant]
        type SlotsPerAssignment: Get<u32>;
        /// The most inputs one `request_batch` carries.
        #[pallet::constant]
        type MaxBatchSize: Get<u32>;
        /// The most one request may cost an executor (a model's registered
        /// `ModelSpec::cost`): what every executor is required to provide. Requests for a
        /// costlier model are refused (`ModelTooCostly`) rather than found too big by an
        /// executor at run time.
        #[pallet::constant]
        type MaxRequestCost: Get<inferchain_primitives::model::ModelCost>;
        /// The most models one executor declares it serves.
        #[pallet::constant]
        type MaxServedModels: Get<u32>;
        /// Deadlines an executor may miss in a row before it is deactivated.
        #[pallet::constant]
        type MaxMissedInRow: Get<u32>;
        /// The storage deposit of every request, whatever its size.
        #[pallet::constant]
        type RequestDepositBase: Get<BalanceOf<Self>>;
        /// The storage deposit per byte a request may keep in state (its input and the
        /// model's largest output).
        #[pallet::constant]
        type DepositPerByte: Get<BalanceOf<Self>>;

        /// The most model runs one node's off-chain worker does after one block.
        #[pallet::constant]
        type MaxOffchainRuns: Get<u32>;
        /// Milliseconds after which one off-chain worker run starts no new model run.
        #[pallet::constant]
        type OffchainTimeBudget: Get<u64>;
        /// The share of results each watcher re-runs in their challenge window.
        #[pallet::constant]
        type WatchShare: Get<Perbill>;
        /// Blocks an off-chain worker waits before retrying a duty whose transaction it
        /// already sent (if the duty is still open then).
        #[pallet::constant]
        type OffchainRetryBlocks: Get<u32>;

        /// Re-executes one plan step of a disputed result (the bisection game's referee).
        type Referee: inferchain_primitives::dispute::StepReferee;
        /// Blocks each party of a game has for each move (inclusive).
        #[pallet::constant]
        type MoveTimeout: Get<BlockNumberFor<Self>>;
        /// The largest one-step or element proof (step, operands and their paths) a
        /// call may carry.
        #[pallet::constant]
        type MaxStepProofBytes: Get<u32>;

        /// Told when a request's result is final or it expires (`()`: nobody).
        type Observer: crate::RequestObserver;

        /// Weights of this pallet's calls and hooks.
        type WeightInfo: WeightInfo;
    }

    /// Registered executors.
    #[pallet::storage]
    pub type Executors<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, ExecutorOf<T>>;

    /// The executors that take requests and may open games.
    #[pallet::storage]
    pub type ActiveExecutors<T: Config> =
        StorageValue<_, BoundedVec<T::AccountId, T::MaxExecutors>, ValueQuery>;

    /// What each executor serves, with its load and missed deadlines in a row.
    #[pallet::storage]
    pub type Service<T: Config> =
        StorageMap<_, Blake2_128Concat, T::AccountId, ServiceOf<T>, ValueQuery>;

    /// For each model, the executors a request for it is drawn from, with their bonds
    /// as weights: active, serving the model, with a free slot.
    #[pallet::storage]
    pub type ModelPools<T: Config> = StorageMap<
        _,
        Identity,
        ModelId,
        BoundedVec<(T::AccountId, BalanceOf<T>), T::MaxExecutors>,
        ValueQuery,
    >;

    /// The storage deposit held for each request (absent: none, as for requests taken
    /// before deposits existed), returned when it is pruned.
    #[pallet::storage]
    pub type RequestDeposits<T: Config> = StorageMap<_, Twox64Concat, RequestId, BalanceOf<T>>;

    /// Request slots (see `Config::MaxRequestSlotsPerBlock`) taken in the current block
    /// (reset at the start of each block).
    #[pallet::storage]
    pub type RequestsInBlock<T: Config> = StorageValue<_, u32, ValueQuery>;

    /// The executors that handed request `id` back (`release_assignment`), in order. Each
    /// loses `ReleaseSlash` if the request's result is finalized (someone could run it);
    /// none loses anything if the request expires unanswered (nobody could: a model or an
    /// input beyond every drawn executor's limits).
    #[pallet::storage]
    pub type ReleasedBy<T: Config> = StorageMap<
        _,
        Twox64Concat,
        RequestId,
        BoundedVec<T::AccountId, MaxReleasers<T>>,
        ValueQuery,
    >;

    /// The weight the `Observer`'s hooks used in this block's `on_initialize` (added to
    /// its weight; reset at the start of each block).
    #[pallet::storage]
    #[pallet::whitelist_storage]
    pub type ObserverWeight<T: Config> = StorageValue<_, Weight, ValueQuery>;

    /// The id the next request gets.
    #[pallet::storage]
    pub type NextRequestId<T: Config> = StorageValue<_, RequestId, ValueQuery>;

    /// Requests, until pruned.
    #[pallet::storage]
    pub type Requests<T: Config> = StorageMap<_, Twox64Concat, RequestId, RequestOf<T>>;

    /// Posted results, until pruned.
    #[pallet::storage]
    pub type Results<T: Config> = StorageMap<_, Twox64Concat, RequestId, ResultOf<T>>;

    /// The deadline queue: what happens to which request (or span of requests) at which
    /// block, keyed by block and `queue::queue_key` (the first request's id and the
    /// entry's kind).
    #[pallet::storage]
    pub type DeadlineQueue<T: Config> =
        StorageDoubleMap<_, Twox64Concat, BlockNumberFor<T>, Twox64Concat, RequestId, Deadline>;

    /// The lowest block whose queue entries may not all be handled yet.
    #[pallet::storage]
    pub type QueueCursor<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

    /// The trace a result of a model with dispute commitments was posted with.
    #[pallet::storage]
    pub type ResultTraces<T: Config> =
        StorageMap<_, Twox64Concat, RequestId, inferchain_primitives::dispute::TraceCommitment>;

    /// Open bisection games.
    #[pallet::storage]
    pub type Games<T: Config> = StorageMap<_, Twox64Concat, GameId, game::GameOf<T>>;

    /// The open game of each challenger on each result.
    #[pallet::storage]
    pub type GameByChallenger<T: Config> =
        StorageDoubleMap<_, Twox64Concat, RequestId, Blake2_128Concat, T::AccountId, GameId>;

    /// How many games are open on each attempt of each request (absent: none).
    #[pallet::storage]
    pub type OpenGames<T: Config> =
        StorageDoubleMap<_, Twox64Concat, RequestId, Twox64Concat, u32, u32>;

    /// The id the next game gets.
    #[pallet::storage]
    pub type NextGameId<T: Config> = StorageValue<_, GameId, ValueQuery>;

    /// What each open game put at stake when it opened (absent for games opened before
    /// runtime 107: they settle on the parameters in force).
    #[pallet::storage]
    pub type GameStakesOf<T: Config> =
        StorageMap<_, Twox64Concat, GameId, crate::GameStakes<BalanceOf<T>>>;

    /// Game move deadlines: the games to check at the start of each block.
    #[pallet::storage]
    pub type GameQueue<T: Config> =
        StorageDoubleMap<_, Twox64Concat, BlockNumberFor<T>, Twox64Concat, GameId, ()>;

    /// The lowest block whose game-queue entries may not all be handled yet.
    #[pallet::storage]
    pub type GameQueueCursor<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

    /// Everything this pallet has burned (slashes and protocol fees).
    #[pallet::storage]
    pub type TotalBurned<T: Config> = StorageValue<_, BalanceOf<T>, ValueQuery>;

    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// Executors bonded at genesis: (account, bond).
        pub executors: alloc::vec::Vec<(T::AccountId, BalanceOf<T>)>,
        /// The models every genesis executor serves (they must be registered at
        /// genesis, before this pallet's genesis is built).
        pub served_models: alloc::vec::Vec<ModelId>,
        /// The capacity every genesis executor declares (used when `served_models` is
        /// not empty).
        pub capacity: u32,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            for (who, bond) in &self.executors {
                Pallet::<T>::do_register_executor(who.clone(), *bond)
                    .expect("genesis executors must be distinct, funded and bonded enough; qed");
                if !self.served_models.is_empty() {
                    let models = self
                        .served_models
                        .clone()
                        .try_into()
                        .expect("genesis executors serve at most MaxServedModels models; qed");
                    Pallet::<T>::do_serve(who.clone(), models, self.capacity)
                        .expect("genesis models are registered and active, capacity > 0; qed");
                }
            }
        }
    }

    /// Why an executor was slashed.
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
    pub enum SlashReason {
        #[codec(index = 0)]
        MissedDeadline,
        #[codec(index = 1)]
        WrongResult,
        /// (Index 2 was the jury's missed vote.)
        #[codec(index = 3)]
        WrongChallenge,
        /// Handed back an assignment its node cannot serve (`release_assignment`).
        #[codec(index = 4)]
        Released,
    }

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// An executor bonded and is active.
        ExecutorRegistered {
            who: T::AccountId,
            bond: BalanceOf<T>,
        },
        /// An executor left the active set; its bond is slashable until `until`.
        ExecutorUnbonding {
            who: T::AccountId,
            until: BlockNumberFor<T>,
        },
        /// An executor was slashed below the minimum bond and left the active set.
        ExecutorDeactivated {
            who: T::AccountId,
            until: BlockNumberFor<T>,
        },
        /// An executor withdrew its bond and is no longer registered.
        BondWithdrawn {
            who: T::AccountId,
            amount: BalanceOf<T>,
        },
        /// Someone lost `amount` (burned or paid to others).
        Slashed {
            who: T::AccountId,
            amount: BalanceOf<T>,
            reason: SlashReason,
        },
        /// A request was taken: its fee is held and `executor` must answer.
        RequestSubmitted {
            id: RequestId,
            model: ModelId,
            requester: T::AccountId,
            executor: T::AccountId,
        },
        /// A request moved to another executor.
        RequestReassigned {
            id: RequestId,
            from: T::AccountId,
            to: T::AccountId,
            attempt: u32,
        },
        /// A request expired; its fee was refunded.
        RequestExpired {
            id: RequestId,
            refunded: BalanceOf<T>,
        },
        /// A result was posted; games may be opened on it until `window_end`. Not final.
        ResultSubmitted {
            id: RequestId,
            executor: T::AccountId,
            output_hash: inferchain_primitives::H256,
            window_end: BlockNumberFor<T>,
        },
        /// The result is final: act on this event, not on `ResultSubmitted`.
        ResultFinalized {
            id: RequestId,
            executor: T::AccountId,
            output_hash: inferchain_primitives::H256,
        },
        /// A settled request's records were removed after `ResultRetention`; its
        /// storage deposit went back to the requester.
        RequestPruned {
            id: RequestId,
            deposit_returned: BalanceOf<T>,
        },
        /// The assigned executor handed request `id` back, for `reason`; with
        /// `CannotServeModel` it no longer serves the model (it re-declares with `serve`
        /// once it can).
        AssignmentReleased {
            id: RequestId,
            executor: T::AccountId,
            model: ModelId,
            reason: ReleaseReason,
        },
        /// Request `id` expired unanswered after these executors handed it back: nobody
        /// could run it, so none of them is slashed for releasing it.
        ReleasesForgiven {
            id: RequestId,
            executors: alloc::vec::Vec<T::AccountId>,
        },
        /// An executor declared the models it serves and its capacity.
        ServiceDeclared {
            who: T::AccountId,
            models: alloc::vec::Vec<ModelId>,
            capacity: u32,
        },
        /// `challenger` opened a bisection game against `executor`'s result; the walk
        /// starts at `at`.
        GameOpened {
            game: GameId,
            id: RequestId,
            executor: T::AccountId,
            challenger: T::AccountId,
            at: inferchain_primitives::dispute::Position,
        },
        /// A party revealed the children of the node it stands on.
        Revealed {
            game: GameId,
            side: Side,
            left: [u8; 32],
            right: [u8; 32],
        },
        /// Both parties revealed; the walk went down to `at`.
        Descended {
            game: GameId,
            at: inferchain_primitives::dispute::Position,
        },
        /// The runtime re-executed plan step `step`; its output's leaf is `computed`.
        StepRefereed {
            game: GameId,
            step: u32,
            computed: [u8; 32],
        },
        /// A game ended; the funds moved as `end` says (see the `game` module).
        GameEnded {
            game: GameId,
            id: RequestId,
            end: GameEnd,
        },
        /// A game on a result another game overturned ended without a loser.
        GameVoided { game: GameId },
        /// A party revealed the chunk root of its output of the disputed step.
        OutputRevealed {
            game: GameId,
            side: Side,
            chunk_root: [u8; 32],
        },
        /// Both chunk roots are in: the element-level walk over `chunks` chunks begins.
        ElementWalkOpened {
            game: GameId,
            step: u32,
            chunks: u32,
        },
        /// The runtime recomputed chunk `chunk` of plan step `step`; its leaf is `computed`.
        ChunkRefereed {
            game: GameId,
            step: u32,
            chunk: u32,
            computed: [u8; 32],
        },
        /// The step of a game opened but the referee cannot evaluate it.
        StepUnrefereeable {
            game: GameId,
            step: u32,
            error: inferchain_primitives::dispute::RefereeError,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The account is already a registered executor.
        AlreadyExecutor,
        /// The account is not a registered executor.
        NotExecutor,
        /// The bond is below `MinExecutorBond`.
        BondTooLow,
        /// `MaxExecutors` executors are registered.
        TooManyExecutors,
        /// The executor is not active (unbonding or deactivated).
        NotActiveExecutor,
        /// The executor is already unbonding or deactivated.
        AlreadyUnbonding,
        /// The unbonding period has not ended.
        StillUnbonding,
        /// The executor still has open requests, results or games.
        OpenObligations,
        /// No model has this id.
        UnknownModel,
        /// The model is deprecated or retired and takes no new requests.
        ModelNotActive,
        /// The model's registered cost exceeds `MaxRequestCost`, what executors are
        /// required to provide; nothing was held.
        ModelTooCostly,
        /// The input is larger than the model's `max_input_bytes`.
        InputTooLarge,
        /// The input is not a canonically encoded payload.
        MalformedInput,
        /// The input does not match the model's input spec (kind, count, dtype or shape).
        InputSpecMismatch,
        /// The input holds NaN or an infinity.
        NonFiniteInput,
        /// The input text is not UTF-8.
        InvalidUtf8Input,
        /// The model's fee is above `max_fee`.
        FeeAboveMax,
        /// No active executor can take the request.
        NoExecutors,
        /// No request has this id.
        UnknownRequest,
        /// The request is not waiting for a result.
        NotPending,
        /// Only the assigned executor may post the result.
        NotAssignedExecutor,
        /// The output is larger than the model's `max_output_bytes`.
        OutputTooLarge,
        /// The output is not a canonically encoded payload of the model's output spec.
        MalformedOutput,
        /// The model was retired.
        ModelRetired,
        /// The result is not open to a game (not posted, or its window is over).
        NotChallengeable,
        /// An executor cannot open a game on its own result.
        CannotChallengeSelf,
        /// The challenger's output is the posted output.
        SameOutput,
        /// The model has no dispute commitments (governance records them with
        /// `set_model_commitments`): it cannot be requested or disputed.
        NoCommitments,
        /// The trace does not have the model's step count or does not end in the output.
        BadTrace,
        /// This challenger already plays a game on this result.
        AlreadyChallenged,
        /// No game has this id.
        UnknownGame,
        /// Only the game's executor and challenger move in it.
        NotAParty,
        /// The move's deadline has passed.
        MoveTooLate,
        /// The game is not waiting for this kind of move.
        WrongMove,
        /// This party already revealed in this round.
        AlreadyMoved,
        /// The revealed children do not hash to the node the party stands on.
        RevealMismatch,
        /// The step proof is not a SCALE-encoded `StepProof`.
        MalformedStepProof,
        /// The step descriptor is not the disputed step of the registered plan.
        BadStepProof,
        /// Not one operand per read of the plan step.
        OperandCountMismatch,
        /// An operand is not what its read commits to.
        BadOperandProof,
        /// The referee has no element-level path for this step (or it fits whole):
        /// prove it whole.
        NoElementPath,
        /// The step is too large to prove whole: open the element walk
        /// (`reveal_output`).
        UseElementWalk,
        /// The plan step is not a SCALE-encoded `PlanStep`.
        MalformedPlanStep,
        /// The result's deadline has passed (even if the deadline queue has not handled
        /// it yet): the request goes to another executor.
        ResultTooLate,
        /// A declared capacity must be at least one request.
        ZeroCapacity,
        /// A batch must carry at least one input.
        EmptyBatch,
        /// This block's request slots (`MaxRequestSlotsPerBlock`) are taken: submit in a
        /// later block (batches take fewer slots per request than single requests).
        BlockRequestLimit,
        /// A model is named twice in one declaration.
        DuplicateModel,
        /// A prompt's `max_new_tokens` is zero or above the model's registered cap.
        MaxNewTokensOutOfRange,
        /// The results of `submit_results` must be in ascending order of request id,
        /// each request once.
        UnsortedResults,
        /// A batch's inputs together cost more than one request may (`MaxRequestCost`,
        /// in the model's registered FLOPs per request): split it into smaller batches.
        BatchTooCostly,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(now: BlockNumberFor<T>) -> Weight {
            RequestsInBlock::<T>::kill();
            ObserverWeight::<T>::kill();
            Self::process_deadlines(now)
                .saturating_add(ObserverWeight::<T>::take())
                .saturating_add(T::DbWeight::get().writes(1))
        }

        fn offchain_worker(now: BlockNumberFor<T>) {
            Self::offchain_work(now);
        }

        fn integrity_test() {
            use sp_runtime::traits::{Saturating, Zero};
            assert!(
                !T::MinExecutorBond::get().is_zero(),
                "MinExecutorBond must be positive"
            );
            assert!(
                !T::ExecutionTimeout::get().is_zero(),
                "ExecutionTimeout must be positive"
            );
            assert!(
                !T::ChallengePeriod::get().is_zero(),
                "ChallengePeriod must be positive"
            );
            assert!(
                !T::MoveTimeout::get().is_zero(),
                "MoveTimeout must be positive"
            );
            assert!(T::MaxAttempts::get() > 0, "MaxAttempts must be positive");
            assert!(
                T::ReleaseSlash::get() <= T::MissedDeadlineSlash::get(),
                "handing an assignment back must not cost more than missing it"
            );
            assert!(
                T::MaxBatchSize::get().saturating_add(T::SlotsPerAssignment::get())
                    <= T::MaxRequestSlotsPerBlock::get(),
                "a full batch must fit in one block's requests"
            );
            assert!(
                T::MaxMissedInRow::get() > 0,
                "MaxMissedInRow must be positive"
            );
            assert!(
                T::MaxDeadlinesPerBlock::get() > 0,
                "MaxDeadlinesPerBlock must be positive"
            );
            assert!(
                T::ChallengeReward::get().saturating_add(T::RequesterCompensation::get())
                    <= Perbill::one(),
                "slash shares must not exceed the slash"
            );
            // An executor must stay slashable for everything it did while active (a game
            // keeps its result open past the window; `obligations` keep its bond held).
            assert!(
                T::UnbondingPeriod::get() >= T::ExecutionTimeout::get() + T::ChallengePeriod::get(),
                "UnbondingPeriod must outlast a request's execution and window"
            );
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Become an executor by bonding `bond`.
        ///
        /// **Origin**: signed.
        ///
        /// **Details**: `bond` ≥ `MinExecutorBond` is held under `ExecutorBond`.
        ///
        /// **Events**: `ExecutorRegistered`.
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::register_executor())]
        pub fn register_executor(origin: OriginFor<T>, bond: BalanceOf<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_register_executor(who, bond)
        }

        /// Leave the active set and start unbonding.
        ///
        /// **Origin**: signed, an active executor.
        ///
        /// **Details**: the bond stays held and slashable for `UnbondingPeriod` blocks.
        ///
        /// **Events**: `ExecutorUnbonding`.
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::unregister_executor())]
        pub fn unregister_executor(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_unregister_executor(who)
        }

        /// Withdraw the bond after unbonding.
        ///
        /// **Origin**: signed, an unbonding or deactivated executor.
        ///
        /// **Details**: the unbonding period must be over and no duty open.
        ///
        /// **Events**: `BondWithdrawn`.
        #[pallet::call_index(2)]
        #[pallet::weight(T::WeightInfo::withdraw_bond())]
        pub fn withdraw_bond(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_withdraw_bond(who)
        }

        /// Ask for one inference of `model_id` on `input`.
        ///
        /// **Origin**: signed, the requester.
        ///
        /// **Details**: `input` is a canonically encoded payload. The model's fee, at most
        /// `max_fee`, is held until the result is final (then paid) or the request
        /// expires (then refunded). A rejected request holds nothing.
        ///
        /// **Events**: `RequestSubmitted`.
        #[pallet::call_index(3)]
        #[pallet::weight(T::WeightInfo::request_inference(input.len() as u32))]
        pub fn request_inference(
            origin: OriginFor<T>,
            model_id: ModelId,
            input: BoundedVec<u8, T::MaxInputBytes>,
            max_fee: BalanceOf<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_request(who, model_id, input, max_fee).map(|_| ())
        }

        // Call indices 4 to 7 were the untraced `submit_result` and the jury's
        // `challenge`, `commit_vote` and `reveal_vote`; they are not reused.

        /// Post the result of an assigned request.
        ///
        /// **Origin**: signed, the assigned executor.
        ///
        /// **Details**: before the deadline; the output must fit the model's output spec;
        /// with the commitment to the run's trace (the model's step count of leaves) and
        /// the Merkle path showing that its last leaf is the output's tensor leaf. Opens
        /// the challenge window.
        ///
        /// **Events**: `ResultSubmitted`.
        #[pallet::call_index(8)]
        #[pallet::weight((T::WeightInfo::submit_traced_result(output.len() as u32), DispatchClass::Operational))]
        pub fn submit_traced_result(
            origin: OriginFor<T>,
            id: RequestId,
            output: BoundedVec<u8, T::MaxOutputBytes>,
            trace: inferchain_primitives::dispute::TraceCommitment,
            output_path: game::PathOf,
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            let own = Self::do_submit_result(who, id, output, trace, output_path)?;
            // A due protocol move that succeeds is free: fees never price the
            // protocol's own work out, and failed moves (junk, late) pay. So does one
            // request of a batch answered alone (it brings the queue entries of its own).
            Ok(if own { Pays::No } else { Pays::Yes }.into())
        }

        /// Open a bisection game against a traced result, with your own output and trace.
        ///
        /// **Origin**: signed, an active executor other than the result's.
        ///
        /// **Details**: inside the window, once per challenger and result; the output must
        /// differ and the trace end in it. Holds `ChallengeBond` until the game ends.
        ///
        /// **Events**: `GameOpened`.
        #[pallet::call_index(9)]
        #[pallet::weight((T::WeightInfo::open_game(output.len() as u32), DispatchClass::Operational))]
        pub fn open_game(
            origin: OriginFor<T>,
            id: RequestId,
            output: BoundedVec<u8, T::MaxOutputBytes>,
            trace: inferchain_primitives::dispute::TraceCommitment,
            output_path: game::PathOf,
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            Self::do_open_game(who, id, output, trace, output_path)?;
            // A due protocol move that succeeds is free: fees never price the
            // protocol's own work out, and failed moves (junk, late) pay.
            Ok(Pays::No.into())
        }

        /// Reveal the two children of the node you stand on in your trace tree.
        ///
        /// **Origin**: signed, a party of the game.
        ///
        /// **Details**: once per round, by the move's deadline; when both parties have
        /// revealed the walk goes down to the leftmost differing child.
        ///
        /// **Events**: `Revealed`, and `Descended` when the round completes.
        #[pallet::call_index(10)]
        #[pallet::weight((T::WeightInfo::reveal(), DispatchClass::Operational))]
        pub fn reveal(
            origin: OriginFor<T>,
            game: GameId,
            left: [u8; 32],
            right: [u8; 32],
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            let pays = Self::move_pays(game);
            Self::do_reveal(who, game, left, right)?;
            // A due protocol move that succeeds is free: fees never price the
            // protocol's own work out; failed moves (junk, late) and moves that only
            // void a game whose result was overturned pay.
            Ok(if pays { Pays::Yes } else { Pays::No }.into())
        }

        /// Post the one-step proof of the step the walk ended at.
        ///
        /// **Origin**: signed, a party of the game.
        ///
        /// **Details**: `proof` is a SCALE-encoded `StepProof`; its operands from earlier
        /// steps are proven against the caller's own trace. The runtime re-executes the
        /// step and the game ends. A proof that does not open fails and changes nothing.
        /// A step over the referee's caps with an element path is refused
        /// (`UseElementWalk`): it is settled by `reveal_output` and `prove_element`.
        ///
        /// **Events**: `StepRefereed`, `GameEnded` and the slashes and settlement.
        #[pallet::call_index(11)]
        #[pallet::weight((T::WeightInfo::prove_step().saturating_add(Pallet::<T>::settlement_reserve()), DispatchClass::Operational))]
        pub fn prove_step(
            origin: OriginFor<T>,
            game: GameId,
            proof: BoundedVec<u8, T::MaxStepProofBytes>,
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            let pays = Self::move_pays(game);
            Self::do_prove_step(who, game, &proof)?;
            // A due protocol move that succeeds is free: fees never price the
            // protocol's own work out; failed moves (junk, late) and moves that only
            // void a game whose result was overturned pay.
            Ok(if pays { Pays::Yes } else { Pays::No }.into())
        }

        /// Reveal the chunk root of your output of the disputed step: the first reveal
        /// (at the end of the walk over steps, instead of a step proof) opens the
        /// element-level walk and carries the plan step with its path; the other party
        /// must reveal too before the deadline.
        ///
        /// **Origin**: signed, a party of the game.
        /// **Errors**: `NoElementPath` unless the step is too large to prove whole and
        /// the referee recomputes every chunk of it within its caps (prove it whole), `RevealMismatch` if the root and the plan's output
        /// length are not the leaf the party stands on, `BadStepProof`, `WrongMove`,
        /// `AlreadyMoved`, `MoveTooLate`.
        /// **Events**: `OutputRevealed`, then `ElementWalkOpened` when both are in.
        #[pallet::call_index(12)]
        #[pallet::weight((T::WeightInfo::reveal_output().saturating_add(Pallet::<T>::settlement_reserve()), DispatchClass::Operational))]
        pub fn reveal_output(
            origin: OriginFor<T>,
            game: GameId,
            step: Option<(BoundedVec<u8, game::MaxPlanStepBytes>, game::PathOf)>,
            chunk_root: [u8; 32],
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            let pays = Self::move_pays(game);
            Self::do_reveal_output(who, game, step, chunk_root)?;
            // A due protocol move that succeeds is free: fees never price the
            // protocol's own work out; failed moves (junk, late) and moves that only
            // void a game whose result was overturned pay.
            Ok(if pays { Pays::Yes } else { Pays::No }.into())
        }

        /// Post the element proof of the chunk the element-level walk ended at: the plan
        /// step and, for each operand range the referee names, its chunks proven against
        /// the committed tensor. The runtime recomputes the chunk.
        ///
        /// **Origin**: signed, a party of the game.
        /// **Errors**: `MalformedStepProof`, `BadStepProof`, `OperandCountMismatch`,
        /// `BadOperandProof`, `WrongMove`, `MoveTooLate`.
        /// **Events**: `ChunkRefereed`, `GameEnded` and the slashes and settlement.
        #[pallet::call_index(13)]
        #[pallet::weight((T::WeightInfo::prove_element().saturating_add(Pallet::<T>::settlement_reserve()), DispatchClass::Operational))]
        pub fn prove_element(
            origin: OriginFor<T>,
            game: GameId,
            proof: BoundedVec<u8, T::MaxStepProofBytes>,
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            let pays = Self::move_pays(game);
            Self::do_prove_element(who, game, &proof)?;
            // A due protocol move that succeeds is free: fees never price the
            // protocol's own work out; failed moves (junk, late) and moves that only
            // void a game whose result was overturned pay.
            Ok(if pays { Pays::Yes } else { Pays::No }.into())
        }

        /// Declare the models you serve and how many requests you work on at once:
        /// requests for a model are drawn only among its servers with a free slot.
        ///
        /// **Origin**: signed, an active executor.
        /// **Details**: replaces the previous declaration; every model must be registered
        /// and active. An empty list pauses the executor (it still answers what it has).
        /// **Errors**: `NotExecutor`, `NotActiveExecutor`, `ZeroCapacity`,
        /// `DuplicateModel`, `UnknownModel`, `ModelNotActive`.
        /// **Events**: `ServiceDeclared`.
        #[pallet::call_index(14)]
        #[pallet::weight(T::WeightInfo::serve(models.len() as u32))]
        pub fn serve(
            origin: OriginFor<T>,
            models: BoundedVec<ModelId, T::MaxServedModels>,
            capacity: u32,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_serve(who, models, capacity)
        }

        /// Ask for one inference of `model_id` per input, all at the model's fee (at
        /// most `max_fee` each); all are taken or none.
        ///
        /// **Origin**: signed, the requester.
        /// **Details**: as `request_inference` for each input (each its own request, id,
        /// executor draw, fee hold and storage deposit); one signature, one model check.
        /// **Errors**: `EmptyBatch` and those of `request_inference`, for the first input
        /// that fails.
        /// **Events**: `RequestSubmitted` per input.
        #[pallet::call_index(16)]
        #[pallet::weight(Pallet::<T>::request_batch_weight(inputs))]
        pub fn request_batch(
            origin: OriginFor<T>,
            model_id: ModelId,
            inputs: BoundedVec<BoundedVec<u8, T::MaxInputBytes>, T::MaxBatchSize>,
            max_fee: BalanceOf<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_request_batch(who, model_id, inputs.into_inner(), max_fee).map(|_| ())
        }

        /// Post the results of several of your assigned requests in one transaction (an
        /// off-chain worker answering a batch): each checked as `submit_traced_result`
        /// checks one, all or none. Their challenge windows open together.
        ///
        /// **Origin**: signed, the assigned executor of every request named.
        ///
        /// **Errors**: `EmptyBatch`, `UnsortedResults`, and those of
        /// `submit_traced_result`, for the first result that fails.
        ///
        /// **Events**: `ResultSubmitted` per result.
        #[pallet::call_index(17)]
        #[pallet::weight((Pallet::<T>::submit_results_weight(results), DispatchClass::Operational))]
        pub fn submit_results(
            origin: OriginFor<T>,
            results: BoundedVec<BatchResultOf<T>, T::MaxBatchSize>,
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            let whole = Self::do_submit_results(who, results.into_inner())?;
            // A due protocol move that succeeds is free (see `submit_traced_result`),
            // unless it splits a batch (more queue entries than the batch's own).
            Ok(if whole { Pays::No } else { Pays::Yes }.into())
        }

        /// Hand back an assigned request your node cannot serve, before its deadline; the
        /// request goes to another executor at once.
        /// - `CannotServeModel` (the model is missing from your store and cannot be
        ///   fetched, or your engine cannot build its registered plan): you stop serving
        ///   the model, and lose `ReleaseSlash` (instead of `MissedDeadlineSlash`) only if
        ///   another executor's result for the request is finalized; if every drawn
        ///   executor hands it back and it expires, nobody could run it and nobody is
        ///   slashed (`ReleasesForgiven`).
        /// - `OverLimits` (this run went past your node's memory, CPU or time limits): you
        ///   keep serving the model and lose nothing but the request's fee.
        ///
        ///
        /// **Origin**: signed, the assigned executor.
        /// **Errors**: `UnknownRequest`, `NotPending`, `NotAssignedExecutor`,
        /// `ResultTooLate`.
        /// **Events**: `AssignmentReleased`, then `RequestReassigned` or `RequestExpired`
        /// (and `ReleasesForgiven`).
        #[pallet::call_index(15)]
        #[pallet::weight((T::WeightInfo::release_assignment().saturating_add(Pallet::<T>::settlement_reserve()), DispatchClass::Operational))]
        pub fn release_assignment(
            origin: OriginFor<T>,
            id: RequestId,
            reason: ReleaseReason,
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            Self::do_release(who, id, reason)?;
            // A due protocol move that succeeds is free: fees never price the
            // protocol's own work out, and failed moves (junk, late) pay.
            Ok(Pays::No.into())
        }
    }
}
