//! # Memory pallet
//!
//! Agent memory inside the proof path. A **space** belongs to an account and names an
//! embedding model (a registered model from text to one f32 tensor). `remember` stores a
//! text in the space and opens an inference request for its embedding through
//! pallet-inference, paid by whoever remembers it: the memory becomes recallable when that
//! result is **final**, i.e. after its challenge window or a dispute the executor won. The
//! embedding is kept in fixed point and recalled by the exact top-k of
//! `inferchain_primitives::recall`, which the runtime API [`runtime_api::MemoryApi`]
//! exposes and any client recomputes from the space's storage.
//!
//! ## Lifecycle of a memory
//!
//! ```text
//! remember ──► Embedding{request} ──result final──► Ready ──forget──► (gone)
//!                      │                              │
//!                      └──request expired──► Failed   └─ a newer memory that supersedes
//!                                                        it becomes Ready: history, not
//!                                                        recalled
//! ```
//!
//! ## Access
//!
//! The owner does everything. `grant(space, agent, Read | ReadWrite)` lets an agent recall
//! from the space into answers (read) and remember and forget (write); `revoke` ends it.
//! The author of a memory may always forget it. **Nothing here is secret**: memory texts
//! are in chain state, readable by every node, executor and indexer; a read grant governs
//! who may use a space in answers, not who can see it.
//!
//! ## Deposits
//!
//! A space holds `SpaceDeposit` from its owner until it is closed (empty); a memory holds
//! `MemoryDepositBase + MemoryDepositPerByte × (text bytes + 2 × dimensions)` from its
//! author until it is forgotten (`HoldReason::MemoryDeposit`). The embedding request's own
//! fee and storage deposit are pallet-inference's, held and settled there.
//!
//! ## Invariants (checked in `try_state`)
//!
//! * Each space's `memories` counts its entries in `Memories`, every id is below
//!   `next_memory`, and `grants` counts its entries in `Grants`.
//! * A memory is `Embedding { request }` exactly when `EmbeddingRequests[request]` names it.
//! * `superseded_by` and `supersedes` are mirror links between existing memories.
//! * Each account's `MemoryDeposit` hold equals the deposits of the spaces it owns, the
//!   memories it authored, and its questions and answer records.
//!
//! What this pallet must not do: run models or compute embeddings (the inference
//! protocol does, and this pallet only reads final results), or recall by anything but
//! `inferchain_primitives::recall`.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod invariants;
#[cfg(test)]
mod mock;
mod observer;
pub mod runtime_api;
#[cfg(test)]
mod tests;
pub mod types;
pub mod weights;

pub use types::*;
pub use weights::WeightInfo;

const LOG_TARGET: &str = "runtime::memory";

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use alloc::vec::Vec;
    use codec::Encode;
    use frame_support::{
        pallet_prelude::*,
        traits::{fungible::MutateHold, tokens::Precision},
    };
    use frame_system::pallet_prelude::*;
    use inferchain_primitives::{
        io::{DType, Dim, IoSpec, Payload},
        model::{ModelRegistry, ModelStatus},
        recall::{self, MemoryId, Recalled},
        ModelId, RequestId,
    };
    use pallet_inference::BalanceOf;
    use sp_runtime::traits::{Saturating, Zero};

    /// A memory as stored.
    pub type MemoryOf<T> = Memory<
        <T as frame_system::Config>::AccountId,
        BalanceOf<T>,
        BlockNumberFor<T>,
        <T as Config>::MaxTextBytes,
        <T as Config>::MaxDimensions,
    >;
    /// A question as stored.
    pub type QuestionOf<T> = Question<
        <T as frame_system::Config>::AccountId,
        BalanceOf<T>,
        BlockNumberFor<T>,
        <T as Config>::MaxTextBytes,
    >;
    /// An answer's record as stored.
    pub type AnswerOf<T> = AnswerInfo<
        <T as frame_system::Config>::AccountId,
        BalanceOf<T>,
        BlockNumberFor<T>,
        <T as Config>::MaxRecall,
    >;
    /// A space as stored.
    pub type SpaceOf<T> =
        SpaceInfo<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// Why this pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// A space's or a memory's deposit for the bytes it keeps in state.
        MemoryDeposit,
    }

    #[pallet::config]
    pub trait Config:
        frame_system::Config<RuntimeEvent: From<Event<Self>>>
        + pallet_inference::Config<RuntimeHoldReason: From<HoldReason>>
    {
        /// The longest memory text, in bytes (the embedding model's own input limit
        /// applies too).
        #[pallet::constant]
        type MaxTextBytes: Get<u32>;
        /// The most elements an embedding model's output may have.
        #[pallet::constant]
        type MaxDimensions: Get<u32>;
        /// The most memories a space holds (pending, ready, failed and superseded).
        #[pallet::constant]
        type MaxMemoriesPerSpace: Get<u32>;
        /// The most agents a space grants access to.
        #[pallet::constant]
        type MaxGrantsPerSpace: Get<u32>;
        /// The largest `k` a recall returns.
        #[pallet::constant]
        type MaxRecall: Get<u32>;
        /// Held from a space's owner until it is closed.
        #[pallet::constant]
        type SpaceDeposit: Get<BalanceOf<Self>>;
        /// Held per memory from its author, plus `MemoryDepositPerByte` per byte.
        #[pallet::constant]
        type MemoryDepositBase: Get<BalanceOf<Self>>;
        /// Held per byte of a memory's text and of its embedding (2 bytes per element).
        #[pallet::constant]
        type MemoryDepositPerByte: Get<BalanceOf<Self>>;
        /// Weights of this pallet's calls, hooks and recall.
        type WeightInfo: WeightInfo;
    }

    /// Spaces, by id.
    #[pallet::storage]
    pub type Spaces<T: Config> = StorageMap<_, Twox64Concat, SpaceId, SpaceOf<T>>;

    /// The id the next space gets.
    #[pallet::storage]
    pub type NextSpaceId<T: Config> = StorageValue<_, SpaceId, ValueQuery>;

    /// Memories, by space and id.
    #[pallet::storage]
    pub type Memories<T: Config> =
        StorageDoubleMap<_, Twox64Concat, SpaceId, Twox64Concat, MemoryId, MemoryOf<T>>;

    /// Agents' access to spaces besides their owners'.
    #[pallet::storage]
    pub type Grants<T: Config> =
        StorageDoubleMap<_, Twox64Concat, SpaceId, Blake2_128Concat, T::AccountId, Scope>;

    /// The memory each open embedding request computes the embedding of.
    #[pallet::storage]
    pub type EmbeddingRequests<T: Config> =
        StorageMap<_, Twox64Concat, RequestId, (SpaceId, MemoryId)>;

    /// Questions whose query embedding (the key: its inference request) is computed or
    /// final, until `answer` turns them into a language-model request.
    #[pallet::storage]
    pub type Questions<T: Config> = StorageMap<_, Twox64Concat, RequestId, QuestionOf<T>>;

    /// What each memory-backed answer (the key: its language-model request) rests on,
    /// until its asker clears it.
    #[pallet::storage]
    pub type Answers<T: Config> = StorageMap<_, Twox64Concat, RequestId, AnswerOf<T>>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A space was created.
        SpaceCreated {
            space: SpaceId,
            owner: T::AccountId,
            embedding_model: ModelId,
        },
        /// An empty space was closed and its deposit returned.
        SpaceClosed {
            space: SpaceId,
            deposit_returned: BalanceOf<T>,
        },
        /// A memory was stored; inference request `request` computes its embedding.
        Remembered {
            space: SpaceId,
            memory: MemoryId,
            author: T::AccountId,
            request: RequestId,
        },
        /// A memory's embedding is final: it is recalled from now on (and the memory it
        /// supersedes, if any, no longer is).
        MemoryReady { space: SpaceId, memory: MemoryId },
        /// A memory's embedding request expired without a result: it is never recalled.
        EmbeddingFailed {
            space: SpaceId,
            memory: MemoryId,
            request: RequestId,
        },
        /// A memory was forgotten and its deposit returned to its author.
        Forgotten {
            space: SpaceId,
            memory: MemoryId,
            deposit_returned: BalanceOf<T>,
        },
        /// An agent was granted access (or its scope changed).
        Granted {
            space: SpaceId,
            agent: T::AccountId,
            scope: Scope,
        },
        /// An agent's access was revoked.
        Revoked { space: SpaceId, agent: T::AccountId },
        /// A question was asked with a space's memories; inference request
        /// `query_request` embeds it.
        Asked {
            space: SpaceId,
            asker: T::AccountId,
            query_request: RequestId,
        },
        /// A question's memories were recalled and its prompt sent to the language model
        /// as request `answer_request`.
        Answered {
            space: SpaceId,
            query_request: RequestId,
            answer_request: RequestId,
            memories: BoundedVec<MemoryId, T::MaxRecall>,
        },
        /// A question was dropped: its query embedding expired or is no longer held,
        /// or its space was closed. Its deposit was returned.
        QuestionDropped { query_request: RequestId },
        /// An answer's record was cleared and its deposit returned.
        AnswerCleared { answer_request: RequestId },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// No space has this id.
        UnknownSpace,
        /// Only the space's owner may do this.
        NotOwner,
        /// The caller may not write to this space (owner or a `ReadWrite` grant needed).
        NoWriteAccess,
        /// The model is not registered.
        UnknownModel,
        /// The model is not active.
        ModelNotActive,
        /// The model does not take text and return one f32 tensor of fixed shape.
        NotAnEmbeddingModel,
        /// The model's embedding has more elements than `MaxDimensions`.
        TooManyDimensions,
        /// The space holds `MaxMemoriesPerSpace` memories.
        SpaceFull,
        /// An empty text cannot be remembered.
        EmptyText,
        /// The text is longer than the embedding model takes.
        TextTooLong,
        /// No memory has this id in this space.
        UnknownMemory,
        /// The memory to supersede is already superseded.
        AlreadySuperseded,
        /// The space grants `MaxGrantsPerSpace` agents already.
        TooManyGrants,
        /// The owner needs no grant.
        OwnerNeedsNoGrant,
        /// The agent has no grant in this space.
        NoSuchGrant,
        /// A space with memories cannot be closed: forget them first.
        SpaceNotEmpty,
        /// The caller cannot pay the deposit.
        CannotPayDeposit,
        /// The caller may not recall from this space (owner or a grant needed).
        NoReadAccess,
        /// The model does not generate text from a prompt.
        NotALanguageModel,
        /// `max_new_tokens` is 0 or above the language model's cap.
        MaxNewTokensOutOfRange,
        /// `k` is 0 or above `MaxRecall`.
        BadRecallCount,
        /// Even without memories the question does not fit the language model's prompt.
        PromptTooLong,
        /// No question waits on this request.
        UnknownQuestion,
        /// The question's embedding is not final yet: answer after its window.
        QueryNotFinal,
        /// No answer record has this id.
        UnknownAnswer,
        /// Only the asker clears an answer's record.
        NotAsker,
        /// The answer's request is still open: clear it once it is final or expired.
        AnswerNotSettled,
        /// Space or memory ids are exhausted.
        IdsExhausted,
        /// Only the asker answers or cancels its question.
        NotYourQuestion,
        /// An answer recalled from this space in this block: forget in the next one.
        AnsweredThisBlock,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn integrity_test() {
            assert!(T::MaxRecall::get() > 0, "MaxRecall must be positive");
            assert!(
                T::MaxMemoriesPerSpace::get() > 0,
                "MaxMemoriesPerSpace must be positive"
            );
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::do_try_state()
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Create a memory space whose memories and queries are embedded by
        /// `embedding_model`.
        ///
        /// **Origin**: signed; the caller owns the space and pays `SpaceDeposit`.
        /// **Errors**: `UnknownModel`, `ModelNotActive`, `NotAnEmbeddingModel`,
        /// `TooManyDimensions`, `CannotPayDeposit`.
        /// **Events**: `SpaceCreated`.
        #[pallet::call_index(0)]
        #[pallet::weight(<T as Config>::WeightInfo::create_space())]
        pub fn create_space(origin: OriginFor<T>, embedding_model: ModelId) -> DispatchResult {
            let owner = ensure_signed(origin)?;
            let (dimensions, _) = Self::embedding_model(&embedding_model)?;
            let deposit = T::SpaceDeposit::get();
            Self::hold(&owner, deposit)?;
            let space = NextSpaceId::<T>::get();
            NextSpaceId::<T>::put(space.checked_add(1).ok_or(Error::<T>::IdsExhausted)?);
            let now = frame_system::Pallet::<T>::block_number();
            Spaces::<T>::insert(
                space,
                SpaceInfo {
                    owner: owner.clone(),
                    embedding_model,
                    dimensions,
                    memories: 0,
                    next_memory: 0,
                    grants: 0,
                    deposit,
                    created: now,
                    last_answered: None,
                },
            );
            Self::deposit_event(Event::SpaceCreated {
                space,
                owner,
                embedding_model,
            });
            Ok(())
        }

        /// Store `text` in `space` and request its embedding from the space's model
        /// (paying that request's fee, at most `max_fee`, and its deposits). With
        /// `supersedes`, the new memory updates that one (which may have no other
        /// update): once the new one is ready the old one is kept as history and no
        /// longer recalled; until then, or if the update fails, the old one still is.
        ///
        /// **Origin**: signed, the owner or a `ReadWrite` grantee.
        /// **Errors**: `UnknownSpace`, `NoWriteAccess`, `EmptyText`, `TextTooLong`,
        /// `SpaceFull`, `UnknownMemory`, `AlreadySuperseded`, `CannotPayDeposit`, and the
        /// inference pallet's request errors (`ModelNotActive`, `NoExecutors`,
        /// `FeeAboveMax`, ...), all of which leave the caller's funds as they were.
        /// **Events**: `Remembered` (and pallet-inference's `RequestSubmitted`).
        #[pallet::call_index(1)]
        #[pallet::weight(<T as Config>::WeightInfo::remember(text.len() as u32)
            .saturating_add(<<T as pallet_inference::Config>::WeightInfo
                as pallet_inference::WeightInfo>::request_inference(text.len() as u32 + 8)))]
        pub fn remember(
            origin: OriginFor<T>,
            space: SpaceId,
            text: BoundedVec<u8, T::MaxTextBytes>,
            supersedes: Option<MemoryId>,
            max_fee: BalanceOf<T>,
        ) -> DispatchResult {
            let author = ensure_signed(origin)?;
            let mut info = Spaces::<T>::get(space).ok_or(Error::<T>::UnknownSpace)?;
            ensure!(
                Self::can_write(space, &info, &author),
                Error::<T>::NoWriteAccess
            );
            ensure!(!text.is_empty(), Error::<T>::EmptyText);
            ensure!(
                info.memories < T::MaxMemoriesPerSpace::get(),
                Error::<T>::SpaceFull
            );
            if let Some(old) = supersedes {
                let old = Memories::<T>::get(space, old).ok_or(Error::<T>::UnknownMemory)?;
                // One update at a time, pending or ready: versions form one chain.
                ensure!(old.superseded_by.is_none(), Error::<T>::AlreadySuperseded);
            }
            let (_, max_text) = Self::embedding_model(&info.embedding_model)?;
            ensure!(text.len() as u32 <= max_text, Error::<T>::TextTooLong);
            let input: BoundedVec<u8, T::MaxInputBytes> = Payload::Text(text.to_vec())
                .encode()
                .try_into()
                .map_err(|_| Error::<T>::TextTooLong)?;
            let deposit = Self::memory_deposit(text.len() as u32, info.dimensions);
            // The request first: if it fails nothing was held here either.
            let request = pallet_inference::Pallet::<T>::do_request(
                author.clone(),
                info.embedding_model,
                input,
                max_fee,
            )?;
            Self::hold(&author, deposit)?;
            let memory = info.next_memory;
            let next_memory = memory.checked_add(1).ok_or(Error::<T>::IdsExhausted)?;
            if let Some(old) = supersedes {
                Memories::<T>::mutate(space, old, |o| {
                    if let Some(o) = o.as_mut() {
                        o.superseded_by = Some(memory);
                    }
                });
            }
            let now = frame_system::Pallet::<T>::block_number();
            Memories::<T>::insert(
                space,
                memory,
                Memory {
                    author: author.clone(),
                    text,
                    embedding: BoundedVec::new(),
                    state: MemoryState::Embedding { request },
                    created: now,
                    ready_at: None,
                    last_used: now,
                    uses: 0,
                    supersedes,
                    superseded_by: None,
                    deposit,
                },
            );
            EmbeddingRequests::<T>::insert(request, (space, memory));
            info.memories = info.memories.saturating_add(1);
            info.next_memory = next_memory;
            Spaces::<T>::insert(space, info);
            Self::deposit_event(Event::Remembered {
                space,
                memory,
                author,
                request,
            });
            Ok(())
        }

        /// Forget a memory: it is removed (never recalled again) and its deposit returned
        /// to its author. The versions it links keep their history: the memory it
        /// superseded is current again unless a newer one supersedes it.
        ///
        /// **Origin**: signed, the owner, a `ReadWrite` grantee or the memory's author.
        /// **Errors**: `UnknownSpace`, `UnknownMemory`, `NoWriteAccess`.
        /// **Events**: `Forgotten`.
        #[pallet::call_index(2)]
        #[pallet::weight(<T as Config>::WeightInfo::forget())]
        pub fn forget(origin: OriginFor<T>, space: SpaceId, memory: MemoryId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut info = Spaces::<T>::get(space).ok_or(Error::<T>::UnknownSpace)?;
            let m = Memories::<T>::get(space, memory).ok_or(Error::<T>::UnknownMemory)?;
            ensure!(
                m.author == who || Self::can_write(space, &info, &who),
                Error::<T>::NoWriteAccess
            );
            // An answer in this block read the space: its memories stay until the block
            // ends, so the state a receipt re-reads is the one the answer used.
            ensure!(
                info.last_answered != Some(frame_system::Pallet::<T>::block_number()),
                Error::<T>::AnsweredThisBlock
            );
            Memories::<T>::remove(space, memory);
            if let MemoryState::Embedding { request } = m.state {
                // Its result, when final, is ignored.
                EmbeddingRequests::<T>::remove(request);
            }
            // Unlink: older <- m <- newer becomes older <- newer.
            if let Some(older) = m.supersedes {
                Memories::<T>::mutate(space, older, |o| {
                    if let Some(o) = o.as_mut().filter(|o| o.superseded_by == Some(memory)) {
                        o.superseded_by = m.superseded_by;
                    }
                });
            }
            if let Some(newer) = m.superseded_by {
                Memories::<T>::mutate(space, newer, |n| {
                    if let Some(n) = n.as_mut() {
                        n.supersedes = m.supersedes;
                    }
                });
            }
            info.memories = info.memories.saturating_sub(1);
            Spaces::<T>::insert(space, info);
            Self::release(&m.author, m.deposit);
            Self::deposit_event(Event::Forgotten {
                space,
                memory,
                deposit_returned: m.deposit,
            });
            Ok(())
        }

        /// Grant `agent` access to `space` (or change its scope).
        ///
        /// **Origin**: signed, the owner.
        /// **Errors**: `UnknownSpace`, `NotOwner`, `OwnerNeedsNoGrant`, `TooManyGrants`.
        /// **Events**: `Granted`.
        #[pallet::call_index(3)]
        #[pallet::weight(<T as Config>::WeightInfo::grant())]
        pub fn grant(
            origin: OriginFor<T>,
            space: SpaceId,
            agent: T::AccountId,
            scope: Scope,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut info = Spaces::<T>::get(space).ok_or(Error::<T>::UnknownSpace)?;
            ensure!(info.owner == who, Error::<T>::NotOwner);
            ensure!(agent != who, Error::<T>::OwnerNeedsNoGrant);
            if !Grants::<T>::contains_key(space, &agent) {
                ensure!(
                    info.grants < T::MaxGrantsPerSpace::get(),
                    Error::<T>::TooManyGrants
                );
                info.grants = info.grants.saturating_add(1);
                Spaces::<T>::insert(space, info);
            }
            Grants::<T>::insert(space, &agent, scope);
            Self::deposit_event(Event::Granted {
                space,
                agent,
                scope,
            });
            Ok(())
        }

        /// Revoke `agent`'s access to `space`.
        ///
        /// **Origin**: signed, the owner.
        /// **Errors**: `UnknownSpace`, `NotOwner`, `NoSuchGrant`.
        /// **Events**: `Revoked`.
        #[pallet::call_index(4)]
        #[pallet::weight(<T as Config>::WeightInfo::revoke())]
        pub fn revoke(origin: OriginFor<T>, space: SpaceId, agent: T::AccountId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let mut info = Spaces::<T>::get(space).ok_or(Error::<T>::UnknownSpace)?;
            ensure!(info.owner == who, Error::<T>::NotOwner);
            ensure!(
                Grants::<T>::take(space, &agent).is_some(),
                Error::<T>::NoSuchGrant
            );
            info.grants = info.grants.saturating_sub(1);
            Spaces::<T>::insert(space, info);
            Self::deposit_event(Event::Revoked { space, agent });
            Ok(())
        }

        /// Close an empty space: its grants end and its deposit returns to the owner.
        ///
        /// **Origin**: signed, the owner.
        /// **Errors**: `UnknownSpace`, `NotOwner`, `SpaceNotEmpty`.
        /// **Events**: `SpaceClosed`.
        #[pallet::call_index(5)]
        #[pallet::weight(<T as Config>::WeightInfo::close_space(T::MaxGrantsPerSpace::get()))]
        pub fn close_space(origin: OriginFor<T>, space: SpaceId) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            let info = Spaces::<T>::get(space).ok_or(Error::<T>::UnknownSpace)?;
            ensure!(info.owner == who, Error::<T>::NotOwner);
            ensure!(info.memories == 0, Error::<T>::SpaceNotEmpty);
            let cleared = Grants::<T>::clear_prefix(space, info.grants.saturating_add(1), None);
            if cleared.maybe_cursor.is_some() {
                frame_support::defensive!("a space's grant count is below its grants");
            }
            Spaces::<T>::remove(space);
            Self::release(&info.owner, info.deposit);
            Self::deposit_event(Event::SpaceClosed {
                space,
                deposit_returned: info.deposit,
            });
            Ok(Some(<T as Config>::WeightInfo::close_space(info.grants)).into())
        }

        /// Ask `model` (a language model) `question` with the `k` memories of `space`
        /// that best match it. The question is embedded by the space's model through an
        /// inference request (paid now); once that result is final, `answer` recalls the
        /// memories from chain state and sends the prompt
        /// (`inferchain_primitives::recall::memory_prompt`) to `model`. Everything the
        /// model reads is thus fixed by the chain: executors, watchers and referees build
        /// the same input. `max_fee` bounds each of the two requests' fees.
        ///
        /// **Origin**: signed, the owner or any grantee of the space.
        /// **Errors**: `UnknownSpace`, `NoReadAccess`, `BadRecallCount`, `UnknownModel`,
        /// `ModelNotActive`, `NotALanguageModel`, `MaxNewTokensOutOfRange`,
        /// `PromptTooLong`, `CannotPayDeposit`, and the inference pallet's request errors.
        /// **Events**: `Asked`.
        #[pallet::call_index(6)]
        #[pallet::weight(<T as Config>::WeightInfo::ask()
            .saturating_add(<<T as pallet_inference::Config>::WeightInfo
                as pallet_inference::WeightInfo>::request_inference(question.len() as u32 + 8)))]
        pub fn ask(
            origin: OriginFor<T>,
            space: SpaceId,
            model: ModelId,
            question: BoundedVec<u8, T::MaxTextBytes>,
            k: u32,
            max_new_tokens: u32,
            max_fee: BalanceOf<T>,
        ) -> DispatchResult {
            let asker = ensure_signed(origin)?;
            let info = Spaces::<T>::get(space).ok_or(Error::<T>::UnknownSpace)?;
            ensure!(Self::can_read(space, &asker), Error::<T>::NoReadAccess);
            ensure!(
                (1..=T::MaxRecall::get()).contains(&k),
                Error::<T>::BadRecallCount
            );
            ensure!(!question.is_empty(), Error::<T>::EmptyText);
            let (max_prompt, cap) = Self::language_model(&model)?;
            ensure!(
                (1..=cap).contains(&max_new_tokens),
                Error::<T>::MaxNewTokensOutOfRange
            );
            ensure!(
                recall::fitted_prompt(&[], &question, max_prompt).is_some(),
                Error::<T>::PromptTooLong
            );
            let input: BoundedVec<u8, T::MaxInputBytes> = Payload::Text(question.to_vec())
                .encode()
                .try_into()
                .map_err(|_| Error::<T>::TextTooLong)?;
            // The record this question leaves: its text and up to `MaxRecall` ids.
            let deposit =
                Self::memory_deposit(question.len() as u32, T::MaxRecall::get().saturating_mul(2));
            let query_request = pallet_inference::Pallet::<T>::do_request(
                asker.clone(),
                info.embedding_model,
                input,
                max_fee,
            )?;
            Self::hold(&asker, deposit)?;
            Questions::<T>::insert(
                query_request,
                Question {
                    asker: asker.clone(),
                    space,
                    model,
                    question,
                    k,
                    max_new_tokens,
                    max_fee,
                    deposit,
                    asked: frame_system::Pallet::<T>::block_number(),
                },
            );
            Self::deposit_event(Event::Asked {
                space,
                asker,
                query_request,
            });
            Ok(())
        }

        /// Answer a question whose query embedding is final: recall its memories from the
        /// space as it is now, build the prompt with as many of them, in rank order, as
        /// fit the language model's prompt, and request the answer (paid by the asker,
        /// at most its `max_fee`). The recalled memories are reinforced (use count, last
        /// used) and recorded in `Answers` under the answer's request. A question whose
        /// embedding expired or is no longer held, or whose space was closed, is dropped
        /// instead and its deposit returned.
        ///
        /// **Origin**: signed, the asker (its client does it as soon as the embedding is
        /// final: nobody else chooses when the asker pays, or on which state). A question
        /// whose asker lost its access since is dropped.
        /// **Errors**: `UnknownQuestion`, `NotYourQuestion`, `QueryNotFinal`, and the
        /// inference pallet's request errors for the answer (the question then stays, to
        /// be answered again).
        /// **Events**: `Answered` or `QuestionDropped`.
        #[pallet::call_index(7)]
        #[pallet::weight(<T as Config>::WeightInfo::answer(T::MaxMemoriesPerSpace::get())
            .saturating_add(<<T as pallet_inference::Config>::WeightInfo
                as pallet_inference::WeightInfo>::request_inference(
                    <T as pallet_inference::Config>::MaxInputBytes::get())))]
        pub fn answer(
            origin: OriginFor<T>,
            query_request: RequestId,
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            let q = Questions::<T>::get(query_request).ok_or(Error::<T>::UnknownQuestion)?;
            // The asker chooses when its money is spent (and on which state).
            ensure!(q.asker == who, Error::<T>::NotYourQuestion);
            if !Self::can_read(q.space, &who) {
                // Its access was revoked (or the space closed) since it asked.
                Self::drop_question(query_request, &q);
                return Ok(Some(<T as Config>::WeightInfo::answer(0)).into());
            }
            let status = pallet_inference::Requests::<T>::get(query_request).map(|r| r.status);
            match status {
                Some(pallet_inference::RequestStatus::Pending { .. })
                | Some(pallet_inference::RequestStatus::Submitted { .. }) => {
                    return Err(Error::<T>::QueryNotFinal.into())
                }
                Some(pallet_inference::RequestStatus::Finalized { .. }) => {}
                _ => {
                    Self::drop_question(query_request, &q);
                    return Ok(Some(<T as Config>::WeightInfo::answer(0)).into());
                }
            }
            let query = pallet_inference::Results::<T>::get(query_request)
                .and_then(|r| Self::embedding_of(q.space, &r.output));
            let (Some(query), Some(info)) = (query, Spaces::<T>::get(q.space)) else {
                Self::drop_question(query_request, &q);
                return Ok(Some(<T as Config>::WeightInfo::answer(0)).into());
            };
            let now = frame_system::Pallet::<T>::block_number();
            let memories: Vec<(MemoryId, MemoryOf<T>)> =
                Memories::<T>::iter_prefix(q.space).collect();
            let recalled =
                recall::top_k(&query, Self::recallable(&memories, Some(now)), q.k as usize);
            let (max_prompt, _) = Self::language_model(&q.model)?;
            // As many memories as fit, in rank order (a prefix of the ranking).
            let text_of = |id: MemoryId| {
                memories
                    .iter()
                    .find(|(m, _)| *m == id)
                    .map(|(_, m)| m.text.clone())
                    .unwrap_or_default()
            };
            let texts: Vec<BoundedVec<u8, T::MaxTextBytes>> =
                recalled.iter().map(|r| text_of(r.memory)).collect();
            let ranked: Vec<&[u8]> = texts.iter().map(|t| t.as_slice()).collect();
            let (used, prompt) = recall::fitted_prompt(&ranked, &q.question, max_prompt)
                .ok_or(Error::<T>::PromptTooLong)?;
            let input: BoundedVec<u8, T::MaxInputBytes> = Payload::Prompt {
                text: prompt,
                max_new_tokens: q.max_new_tokens,
            }
            .encode()
            .try_into()
            .map_err(|_| Error::<T>::PromptTooLong)?;
            let answer_request = pallet_inference::Pallet::<T>::do_request(
                q.asker.clone(),
                q.model,
                input,
                q.max_fee,
            )?;
            Spaces::<T>::insert(
                q.space,
                SpaceInfo {
                    last_answered: Some(now),
                    ..info.clone()
                },
            );
            let memories: BoundedVec<MemoryId, T::MaxRecall> = recalled
                .iter()
                .take(used)
                .map(|r| r.memory)
                .collect::<Vec<_>>()
                .try_into()
                .map_err(|_| Error::<T>::BadRecallCount)?;
            for id in memories.iter() {
                Memories::<T>::mutate(q.space, id, |m| {
                    if let Some(m) = m.as_mut() {
                        m.uses = m.uses.saturating_add(1);
                        m.last_used = now;
                    }
                });
            }
            Questions::<T>::remove(query_request);
            Answers::<T>::insert(
                answer_request,
                AnswerInfo {
                    asker: q.asker,
                    space: q.space,
                    query_request,
                    k: q.k,
                    memories: memories.clone(),
                    answered: now,
                    deposit: q.deposit,
                },
            );
            Self::deposit_event(Event::Answered {
                space: q.space,
                query_request,
                answer_request,
                memories,
            });
            Ok(Some(
                <T as Config>::WeightInfo::answer(info.memories).saturating_add(
                    <<T as pallet_inference::Config>::WeightInfo as pallet_inference::WeightInfo>::request_inference(
                        <T as pallet_inference::Config>::MaxInputBytes::get(),
                    ),
                ),
            )
            .into())
        }

        /// Withdraw your question before it is answered; its deposit returns (its
        /// embedding request, if still open, runs to its end and is paid as usual).
        ///
        /// **Origin**: signed, the asker.
        /// **Errors**: `UnknownQuestion`, `NotYourQuestion`.
        /// **Events**: `QuestionDropped`.
        #[pallet::call_index(9)]
        #[pallet::weight(<T as Config>::WeightInfo::clear_answer())]
        pub fn cancel_question(origin: OriginFor<T>, query_request: RequestId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let q = Questions::<T>::get(query_request).ok_or(Error::<T>::UnknownQuestion)?;
            ensure!(q.asker == who, Error::<T>::NotYourQuestion);
            Self::drop_question(query_request, &q);
            Ok(())
        }

        /// Clear an answer's record once its request is final or expired (or pruned);
        /// the deposit returns to the asker.
        ///
        /// **Origin**: signed, the asker.
        /// **Errors**: `UnknownAnswer`, `NotAsker`, `AnswerNotSettled`.
        /// **Events**: `AnswerCleared`.
        #[pallet::call_index(8)]
        #[pallet::weight(<T as Config>::WeightInfo::clear_answer())]
        pub fn clear_answer(origin: OriginFor<T>, answer_request: RequestId) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let a = Answers::<T>::get(answer_request).ok_or(Error::<T>::UnknownAnswer)?;
            ensure!(a.asker == who, Error::<T>::NotAsker);
            let open = pallet_inference::Requests::<T>::get(answer_request)
                .is_some_and(|r| r.status.holds_fee());
            ensure!(!open, Error::<T>::AnswerNotSettled);
            Answers::<T>::remove(answer_request);
            Self::release(&a.asker, a.deposit);
            Self::deposit_event(Event::AnswerCleared { answer_request });
            Ok(())
        }
    }

    /// Why a recall cannot be answered.
    #[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
    pub enum RecallError {
        /// No space has this id.
        UnknownSpace,
        /// The query has `got` elements; the space's embeddings have `expected`.
        DimensionMismatch { expected: u32, got: u32 },
        /// `k` is above `MaxRecall` (`max`).
        TooMany { max: u32 },
    }

    impl<T: Config> Pallet<T> {
        /// The `k` memories of `space` that best match `query` (an embedding by the
        /// space's model, in f32), best first, by `inferchain_primitives::recall`: only
        /// ready memories that nothing supersedes. What the runtime API answers.
        pub fn recall(space: SpaceId, query: &[f32], k: u32) -> Result<Vec<Recalled>, RecallError> {
            Self::recall_quantized(space, &recall::quantize(query), k)
        }

        /// [`Self::recall`] with the query in fixed point already.
        pub fn recall_quantized(
            space: SpaceId,
            query: &[i16],
            k: u32,
        ) -> Result<Vec<Recalled>, RecallError> {
            let info = Spaces::<T>::get(space).ok_or(RecallError::UnknownSpace)?;
            ensure!(
                query.len() == info.dimensions as usize,
                RecallError::DimensionMismatch {
                    expected: info.dimensions,
                    got: query.len() as u32,
                }
            );
            let max = T::MaxRecall::get();
            ensure!(k <= max, RecallError::TooMany { max });
            let memories: Vec<(MemoryId, MemoryOf<T>)> =
                Memories::<T>::iter_prefix(space).collect();
            Ok(recall::top_k(
                query,
                Self::recallable(&memories, None),
                k as usize,
            ))
        }

        /// The memories of a space (all of them, any order) that take part in recalls,
        /// with their embeddings: ready (before block `before`, for an answer made in it),
        /// and not superseded by such a ready update (an update still computing, or
        /// failed, leaves the old version in place). The runtime and clients decide it
        /// with this one function.
        pub fn recallable(
            memories: &[(MemoryId, MemoryOf<T>)],
            before: Option<BlockNumberFor<T>>,
        ) -> impl Iterator<Item = (MemoryId, &[i16])> + '_ {
            let ready: alloc::collections::BTreeSet<MemoryId> = memories
                .iter()
                .filter(|(_, m)| {
                    m.state == MemoryState::Ready
                        && before.is_none_or(|b| m.ready_at.is_some_and(|r| r < b))
                })
                .map(|(id, _)| *id)
                .collect();
            memories.iter().filter_map(move |(id, m)| {
                let current = m.superseded_by.is_none_or(|n| !ready.contains(&n));
                (ready.contains(id) && current).then_some((*id, m.embedding.as_slice()))
            })
        }

        /// The deposit a memory of `text_len` bytes holds in a space of `dimensions`.
        pub fn memory_deposit(text_len: u32, dimensions: u32) -> BalanceOf<T> {
            let bytes = text_len.saturating_add(dimensions.saturating_mul(2));
            T::MemoryDepositBase::get()
                .saturating_add(T::MemoryDepositPerByte::get().saturating_mul(bytes.into()))
        }

        /// Removes a question that can no longer be answered; its deposit returns.
        pub(crate) fn drop_question(query_request: RequestId, q: &QuestionOf<T>) {
            Questions::<T>::remove(query_request);
            Self::release(&q.asker, q.deposit);
            Self::deposit_event(Event::QuestionDropped { query_request });
        }

        /// A language model's longest prompt (bytes: its prompt limit, and what its input
        /// limit leaves room for) and its `max_new_tokens` cap.
        fn language_model(model: &ModelId) -> Result<(u32, u32), DispatchError> {
            let (spec, status) = <T as pallet_inference::Config>::Models::model(model)
                .ok_or(Error::<T>::UnknownModel)?;
            ensure!(status == ModelStatus::Active, Error::<T>::ModelNotActive);
            match spec.input {
                // The encoded request (variant, length prefix, max_new_tokens: at most 9
                // bytes around the text) must fit the model's input limit too.
                IoSpec::Prompt {
                    max_bytes,
                    max_new_tokens,
                } => Ok((
                    max_bytes.min(spec.max_input_bytes.saturating_sub(9)),
                    max_new_tokens,
                )),
                _ => Err(Error::<T>::NotALanguageModel.into()),
            }
        }

        /// An embedding model's output length and the longest text it takes.
        fn embedding_model(model: &ModelId) -> Result<(u32, u32), DispatchError> {
            let (spec, status) = <T as pallet_inference::Config>::Models::model(model)
                .ok_or(Error::<T>::UnknownModel)?;
            ensure!(status == ModelStatus::Active, Error::<T>::ModelNotActive);
            let IoSpec::Text { max_bytes } = spec.input else {
                return Err(Error::<T>::NotAnEmbeddingModel.into());
            };
            let IoSpec::Tensors(tensors) = &spec.output else {
                return Err(Error::<T>::NotAnEmbeddingModel.into());
            };
            let [tensor] = tensors.as_slice() else {
                return Err(Error::<T>::NotAnEmbeddingModel.into());
            };
            ensure!(tensor.dtype == DType::F32, Error::<T>::NotAnEmbeddingModel);
            let mut elements = 1u32;
            for dim in tensor.shape.iter() {
                let Dim::Fixed(d) = dim else {
                    return Err(Error::<T>::NotAnEmbeddingModel.into());
                };
                elements = elements
                    .checked_mul(*d)
                    .ok_or(Error::<T>::TooManyDimensions)?;
            }
            ensure!(elements > 0, Error::<T>::NotAnEmbeddingModel);
            ensure!(
                elements <= T::MaxDimensions::get(),
                Error::<T>::TooManyDimensions
            );
            Ok((elements, max_bytes))
        }

        pub(crate) fn can_write(space: SpaceId, info: &SpaceOf<T>, who: &T::AccountId) -> bool {
            info.owner == *who || Grants::<T>::get(space, who).is_some_and(Scope::writes)
        }

        /// Whether `who` may recall from `space` into answers.
        pub fn can_read(space: SpaceId, who: &T::AccountId) -> bool {
            Spaces::<T>::get(space).is_some_and(|info| info.owner == *who)
                || Grants::<T>::contains_key(space, who)
        }

        fn hold(who: &T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
            if amount.is_zero() {
                return Ok(());
            }
            <T as pallet_inference::Config>::Currency::hold(
                &HoldReason::MemoryDeposit.into(),
                who,
                amount,
            )
            .map_err(|_| Error::<T>::CannotPayDeposit.into())
        }

        fn release(who: &T::AccountId, amount: BalanceOf<T>) {
            if amount.is_zero() {
                return;
            }
            if let Err(e) = <T as pallet_inference::Config>::Currency::release(
                &HoldReason::MemoryDeposit.into(),
                who,
                amount,
                Precision::BestEffort,
            ) {
                log::error!(target: LOG_TARGET, "release of {amount:?} failed: {e:?}");
            }
        }

        /// What `who` has on hold for memory deposits.
        pub fn held(who: &T::AccountId) -> BalanceOf<T> {
            use frame_support::traits::fungible::InspectHold;
            <T as pallet_inference::Config>::Currency::balance_on_hold(
                &HoldReason::MemoryDeposit.into(),
                who,
            )
        }
    }
}
