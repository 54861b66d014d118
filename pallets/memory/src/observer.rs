//! The memory pallet as pallet-inference's `RequestObserver`: a final embedding result
//! makes its memory ready; an expired request marks it failed (or drops the question it
//! was embedding). Each hook reads the
//! request's entry in `EmbeddingRequests` (one read for a request that is not an
//! embedding) and at most one result, one memory and the memory it supersedes.

use crate::{pallet::*, MemoryState, WeightInfo, LOG_TARGET};
use frame_support::{pallet_prelude::*, weights::Weight, BoundedVec};
use inferchain_primitives::{
    io::{DType, Payload},
    recall, RequestId,
};
use pallet_inference::RequestObserver;

impl<T: Config> RequestObserver for Pallet<T> {
    fn on_finalized(id: RequestId) -> Weight {
        let Some((space, memory)) = EmbeddingRequests::<T>::take(id) else {
            return T::DbWeight::get().reads(1);
        };
        let embedding = pallet_inference::Results::<T>::get(id)
            .and_then(|r| Self::embedding_of(space, &r.output));
        let Some(embedding) = embedding else {
            // Results are validated against the model's output spec when posted, and a
            // space's model and dimensions never change.
            frame_support::defensive!("a final embedding result does not decode");
            Self::fail(space, memory, id);
            return <T as Config>::WeightInfo::on_embedding_final();
        };
        let now = frame_system::Pallet::<T>::block_number();
        Memories::<T>::mutate(space, memory, |m| {
            if let Some(m) = m.as_mut() {
                m.embedding = embedding;
                m.state = MemoryState::Ready;
                m.ready_at = Some(now);
            }
        });
        Self::deposit_event(Event::MemoryReady { space, memory });
        <T as Config>::WeightInfo::on_embedding_final()
    }

    fn on_expired(id: RequestId) -> Weight {
        let Some((space, memory)) = EmbeddingRequests::<T>::take(id) else {
            // A question whose embedding expired can never be answered.
            if let Some(q) = Questions::<T>::get(id) {
                Self::drop_question(id, &q);
                return <T as Config>::WeightInfo::on_embedding_final();
            }
            return T::DbWeight::get().reads(2);
        };
        Self::fail(space, memory, id);
        <T as Config>::WeightInfo::on_embedding_final()
    }

    fn max_weight() -> Weight {
        <T as Config>::WeightInfo::on_embedding_final()
    }
}

impl<T: Config> Pallet<T> {
    /// A final result's embedding in fixed point, if it is one f32 tensor of the space's
    /// dimensions.
    pub(crate) fn embedding_of(
        space: crate::SpaceId,
        output: &[u8],
    ) -> Option<BoundedVec<i16, T::MaxDimensions>> {
        let dims = Spaces::<T>::get(space)?.dimensions as usize;
        let Ok(Payload::Tensors(tensors)) = Payload::decode_canonical(output) else {
            return None;
        };
        let [tensor] = tensors.as_slice() else {
            return None;
        };
        if tensor.dtype != DType::F32 || tensor.data.len() != dims * 4 {
            return None;
        }
        let values: alloc::vec::Vec<f32> = tensor
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        recall::quantize(&values).try_into().ok()
    }

    fn fail(space: crate::SpaceId, memory: recall::MemoryId, request: RequestId) {
        Memories::<T>::mutate(space, memory, |m| {
            if let Some(m) = m.as_mut() {
                m.state = MemoryState::Failed;
            }
        });
        log::info!(target: LOG_TARGET, "memory {space}/{memory}: embedding request {request} expired");
        Self::deposit_event(Event::EmbeddingFailed {
            space,
            memory,
            request,
        });
    }
}
