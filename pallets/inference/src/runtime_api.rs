//! `InferenceApi`: what clients ask the runtime about requests, results and models.

use codec::{Codec, Decode, Encode};
use inferchain_primitives::{
    model::{ModelSpec, ModelStatus},
    ModelId, RequestId, H256,
};
use scale_info::TypeInfo;

use crate::RequestStatus;

/// A request as a client sees it.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct RequestView<AccountId, Balance, BlockNumber> {
    pub model: ModelId,
    pub requester: AccountId,
    pub executor: AccountId,
    pub input_hash: H256,
    pub fee: Balance,
    pub status: RequestStatus<BlockNumber>,
    pub attempt: u32,
}

/// A result as a client sees it.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct ResultView<AccountId, BlockNumber> {
    pub executor: AccountId,
    pub output: alloc::vec::Vec<u8>,
    pub output_hash: H256,
    pub posted_at: BlockNumber,
    pub challenged: bool,
}

sp_api::decl_runtime_apis! {
    /// Reads for dApps and receipt checkers.
    pub trait InferenceApi<AccountId, Balance, BlockNumber>
    where
        AccountId: Codec,
        Balance: Codec,
        BlockNumber: Codec,
    {
        /// A request, until pruned.
        fn request(id: RequestId) -> Option<RequestView<AccountId, Balance, BlockNumber>>;
        /// A request's posted (or final) result.
        fn result(id: RequestId) -> Option<ResultView<AccountId, BlockNumber>>;
        /// A registered model's spec and status.
        fn model(id: ModelId) -> Option<(ModelSpec<Balance>, ModelStatus)>;
    }
}

impl<T: crate::Config> crate::Pallet<T> {
    /// `InferenceApi::request`.
    pub fn request_view(
        id: RequestId,
    ) -> Option<
        RequestView<
            T::AccountId,
            crate::BalanceOf<T>,
            frame_system::pallet_prelude::BlockNumberFor<T>,
        >,
    > {
        crate::Requests::<T>::get(id).map(|r| RequestView {
            model: r.model,
            requester: r.requester,
            executor: r.executor,
            input_hash: r.input_hash,
            fee: r.fee,
            status: r.status,
            attempt: r.attempt,
        })
    }

    /// `InferenceApi::result`.
    pub fn result_view(
        id: RequestId,
    ) -> Option<ResultView<T::AccountId, frame_system::pallet_prelude::BlockNumberFor<T>>> {
        crate::Results::<T>::get(id).map(|r| ResultView {
            executor: r.executor,
            output: r.output.into_inner(),
            output_hash: r.output_hash,
            posted_at: r.posted_at,
            challenged: r.challenged,
        })
    }
}
