//! What the memory pallet stores.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{pallet_prelude::*, BoundedVec};
use inferchain_primitives::{recall::MemoryId, ModelId, RequestId};
use scale_info::TypeInfo;

/// A memory space's number.
pub type SpaceId = u32;

/// A memory space: its owner, the embedding model its memories and queries are embedded
/// with, and its counts.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
pub struct SpaceInfo<AccountId, Balance, BlockNumber> {
    pub owner: AccountId,
    /// A registered model from text to one f32 tensor of `dimensions` elements.
    pub embedding_model: ModelId,
    pub dimensions: u32,
    /// Memories stored (pending, ready or failed).
    pub memories: u32,
    /// The id the next memory gets (ids are never reused).
    pub next_memory: MemoryId,
    /// Agents with a grant.
    pub grants: u32,
    /// Held from the owner until the space is closed.
    pub deposit: Balance,
    pub created: BlockNumber,
    /// The last block an answer recalled from this space: nothing is forgotten in it
    /// after that, so the block's end state is the one the answer read.
    pub last_answered: Option<BlockNumber>,
}

/// Where a memory's embedding stands.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum MemoryState {
    /// Inference request `request` is computing its embedding: not recalled yet.
    Embedding { request: RequestId },
    /// Its embedding is a final inference result: recalled (unless superseded).
    Ready,
    /// The request expired without a result: never recalled; `forget` returns the
    /// deposit, and `remember` the text again to retry.
    Failed,
}

/// Who may do what in a space besides its owner.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum Scope {
    /// Recall from the space into answers.
    Read,
    /// Read, and remember and forget.
    ReadWrite,
}

impl Scope {
    pub fn writes(self) -> bool {
        self == Scope::ReadWrite
    }
}

/// One memory.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(MaxText, MaxDims))]
pub struct Memory<AccountId, Balance, BlockNumber, MaxText: Get<u32>, MaxDims: Get<u32>> {
    /// Who stored it, paid its deposit and its embedding's fee.
    pub author: AccountId,
    pub text: BoundedVec<u8, MaxText>,
    /// The embedding in fixed point (`inferchain_primitives::recall`); empty until ready.
    pub embedding: BoundedVec<i16, MaxDims>,
    pub state: MemoryState,
    pub created: BlockNumber,
    /// The block its embedding became final in. An answer in block `B` recalls only
    /// memories ready before `B`, so one made ready later in `B` (a game's last move)
    /// cannot make the block's end state differ from what the answer read.
    pub ready_at: Option<BlockNumber>,
    /// The last block it was recalled into an answer (its creation until then).
    pub last_used: BlockNumber,
    /// How many answers recalled it.
    pub uses: u32,
    /// The memory this one updates (kept as history).
    pub supersedes: Option<MemoryId>,
    /// The memory that updates this one: a superseded memory is history, never recalled.
    pub superseded_by: Option<MemoryId>,
    /// Held from the author until the memory is forgotten.
    pub deposit: Balance,
}

/// A question asked with a space's memories, waiting for its query embedding
/// (inference request, the key of `Questions`) to be final and for `answer`.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(MaxText))]
pub struct Question<AccountId, Balance, BlockNumber, MaxText: Get<u32>> {
    /// Who asked: pays the answer's fee and holds the question's deposit.
    pub asker: AccountId,
    pub space: SpaceId,
    /// The language model that answers.
    pub model: ModelId,
    pub question: BoundedVec<u8, MaxText>,
    /// How many memories to recall into the prompt (at most; see `answer`).
    pub k: u32,
    pub max_new_tokens: u32,
    /// The most the answer may cost.
    pub max_fee: Balance,
    /// Held from the asker until the question's answer record is cleared.
    pub deposit: Balance,
    pub asked: BlockNumber,
}

/// What an answer rests on: the record of a language-model request whose prompt was built
/// from recalled memories (the key of `Answers`), kept until its asker clears it.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(MaxRecall))]
pub struct AnswerInfo<AccountId, Balance, BlockNumber, MaxRecall: Get<u32>> {
    pub asker: AccountId,
    pub space: SpaceId,
    /// The request that embedded the question (its result is the query).
    pub query_request: RequestId,
    /// How many memories were recalled (before fitting the prompt).
    pub k: u32,
    /// The memories in the prompt, in rank order.
    pub memories: BoundedVec<MemoryId, MaxRecall>,
    /// The block whose state the memories were recalled from (the `answer` call's).
    pub answered: BlockNumber,
    /// Held from the asker until the record is cleared.
    pub deposit: Balance,
}
