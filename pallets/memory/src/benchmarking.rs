//! Benchmarks (v2) of the memory pallet: its calls, the hook that makes a memory ready,
//! and recall over `n` memories.

use super::*;
use crate::pallet::{Call, Config, Memories, Pallet, Spaces};
use alloc::vec;
use frame_benchmarking::v2::*;
use frame_support::{
    traits::{fungible::Mutate, Get},
    BoundedVec,
};
use frame_system::RawOrigin;
use inferchain_primitives::{
    compare::ComparisonRule,
    dispute::ModelCommitments,
    io::{DType, Dim, IoSpec, TensorSpec},
    model::{ModelFormat, ModelRegistry, ModelSpec, NumericsProfile, ThreadRule},
    recall::MemoryId,
    H256,
};
use pallet_inference::{BalanceOf, RequestObserver};
use sp_runtime::traits::{Saturating, Zero};

const MODEL: H256 = H256::repeat_byte(0xe5);

fn setup_model<T: Config>() -> u32 {
    let dims = T::MaxDimensions::get();
    let models = <T as pallet_inference::Config>::Models::model(&MODEL);
    if models.is_none() {
        let spec = ModelSpec::<BalanceOf<T>> {
            name: b"bench-embedder".to_vec().try_into().expect("short; qed"),
            format: ModelFormat::BertEmbedding,
            artifact_hash: MODEL,
            input: IoSpec::Text {
                max_bytes: T::MaxTextBytes::get(),
            },
            output: IoSpec::Tensors(
                vec![TensorSpec {
                    name: b"embedding".to_vec().try_into().expect("short; qed"),
                    dtype: DType::F32,
                    shape: vec![Dim::Fixed(1), Dim::Fixed(dims)]
                        .try_into()
                        .expect("rank 2; qed"),
                    allow_non_finite: false,
                }]
                .try_into()
                .expect("one tensor; qed"),
            ),
            fee: 1_000u32.into(),
            max_input_bytes: <T as pallet_inference::Config>::MaxInputBytes::get(),
            max_output_bytes: <T as pallet_inference::Config>::MaxOutputBytes::get(),
            comparison: ComparisonRule::Exact,
            numerics: NumericsProfile {
                engine_version: 1,
                compute_dtype: DType::F32,
                threads: ThreadRule::Any,
            },
            cost: inferchain_primitives::model::ModelCost {
                flops: 1,
                peak_memory_bytes: 1,
            },
            artifact_uri: None,
        };
        <T as pallet_inference::Config>::Models::register_for_benchmark(spec)
            .expect("the bench embedder is valid; qed");
        <T as pallet_inference::Config>::Models::commit_for_benchmark(
            &MODEL,
            ModelCommitments {
                plan_root: H256::repeat_byte(1),
                steps: 1,
                weights_root: H256::repeat_byte(2),
                weights: 0,
            },
        )
        .expect("commits; qed");
    }
    dims
}

const LLM: H256 = H256::repeat_byte(0x11);

fn setup_llm<T: Config>() {
    if <T as pallet_inference::Config>::Models::model(&LLM).is_some() {
        return;
    }
    let spec = ModelSpec::<BalanceOf<T>> {
        name: b"bench-llm".to_vec().try_into().expect("short; qed"),
        format: ModelFormat::Llm,
        artifact_hash: LLM,
        input: IoSpec::Prompt {
            max_bytes: <T as pallet_inference::Config>::MaxInputBytes::get().saturating_sub(16),
            max_new_tokens: 8,
        },
        output: IoSpec::Generation {
            max_new_tokens: 8,
            max_text_bytes: 64,
        },
        fee: 1u32.into(),
        max_input_bytes: <T as pallet_inference::Config>::MaxInputBytes::get(),
        max_output_bytes: 200,
        comparison: ComparisonRule::Exact,
        numerics: NumericsProfile {
            engine_version: 1,
            compute_dtype: DType::F32,
            threads: ThreadRule::Any,
        },
        cost: inferchain_primitives::model::ModelCost {
            flops: 1,
            peak_memory_bytes: 1,
        },
        artifact_uri: None,
    };
    <T as pallet_inference::Config>::Models::register_for_benchmark(spec)
        .expect("the bench language model is valid; qed");
    <T as pallet_inference::Config>::Models::commit_for_benchmark(
        &LLM,
        ModelCommitments {
            plan_root: H256::repeat_byte(3),
            steps: 1,
            weights_root: H256::repeat_byte(4),
            weights: 0,
        },
    )
    .expect("commits; qed");
}

fn funded<T: Config>(name: &'static str) -> T::AccountId {
    let who: T::AccountId = account(name, 0, 0);
    // Enough for an executor's bond and any fee or deposit here.
    let amount = <T as pallet_inference::Config>::MinExecutorBond::get()
        .saturating_mul(100u32.into())
        .max(BalanceOf::<T>::from(u32::MAX).saturating_mul(1_000u32.into()));
    <T as pallet_inference::Config>::Currency::set_balance(&who, amount);
    who
}

/// An executor serving the bench embedder, so requests can be drawn.
fn executor<T: Config>() {
    setup_llm::<T>();
    let who = funded::<T>("executor");
    let bond = <T as pallet_inference::Config>::MinExecutorBond::get();
    pallet_inference::Pallet::<T>::register_executor(RawOrigin::Signed(who.clone()).into(), bond)
        .expect("bonds; qed");
    pallet_inference::Pallet::<T>::serve(
        RawOrigin::Signed(who).into(),
        vec![MODEL, LLM].try_into().expect("two models; qed"),
        1_000,
    )
    .expect("serves; qed");
}

fn new_space<T: Config>(owner: &T::AccountId) -> SpaceId {
    setup_model::<T>();
    Pallet::<T>::create_space(RawOrigin::Signed(owner.clone()).into(), MODEL)
        .expect("creates; qed");
    crate::pallet::NextSpaceId::<T>::get() - 1
}

fn text<T: Config>(len: u32) -> BoundedVec<u8, T::MaxTextBytes> {
    vec![b'a'; len as usize]
        .try_into()
        .expect("within MaxTextBytes; qed")
}

/// `n` ready memories in `space` with distinct embeddings, written directly.
fn ready_memories<T: Config>(owner: &T::AccountId, space: SpaceId, n: u32, dims: u32) {
    let now = frame_system::Pallet::<T>::block_number();
    for i in 0..n {
        let embedding: BoundedVec<i16, T::MaxDimensions> = (0..dims)
            .map(|d| ((i.wrapping_mul(31).wrapping_add(d * 7)) % 2001) as i16 - 1000)
            .collect::<alloc::vec::Vec<_>>()
            .try_into()
            .expect("dims fit; qed");
        Memories::<T>::insert(
            space,
            i as MemoryId,
            Memory {
                author: owner.clone(),
                text: text::<T>(T::MaxTextBytes::get()),
                embedding,
                state: MemoryState::Ready,
                created: now,
                ready_at: Some(Zero::zero()),
                last_used: now,
                uses: 0,
                supersedes: None,
                superseded_by: None,
                deposit: 0u32.into(),
            },
        );
    }
    Spaces::<T>::mutate(space, |s| {
        if let Some(s) = s.as_mut() {
            s.memories = n;
            s.next_memory = n;
        }
    });
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn create_space() {
        setup_model::<T>();
        let owner = funded::<T>("owner");
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), MODEL);
        assert!(Spaces::<T>::contains_key(0));
    }

    #[benchmark]
    fn remember(l: Linear<1, { T::MaxTextBytes::get() }>) {
        let owner = funded::<T>("owner");
        let space = new_space::<T>(&owner);
        executor::<T>();
        // The costliest path: it supersedes a memory.
        ready_memories::<T>(&owner, space, 1, T::MaxDimensions::get());
        #[extrinsic_call]
        _(
            RawOrigin::Signed(owner),
            space,
            text::<T>(l),
            Some(0),
            1_000_000u32.into(),
        );
        assert!(Memories::<T>::contains_key(space, 1));
    }

    #[benchmark]
    fn forget() {
        let owner = funded::<T>("owner");
        let space = new_space::<T>(&owner);
        ready_memories::<T>(&owner, space, 3, T::MaxDimensions::get());
        // The middle of a chain of versions: both neighbours are relinked.
        Memories::<T>::mutate(space, 0, |m| {
            if let Some(m) = m.as_mut() {
                m.superseded_by = Some(1)
            }
        });
        Memories::<T>::mutate(space, 1, |m| {
            if let Some(m) = m.as_mut() {
                m.supersedes = Some(0);
                m.superseded_by = Some(2);
            }
        });
        Memories::<T>::mutate(space, 2, |m| {
            if let Some(m) = m.as_mut() {
                m.supersedes = Some(1)
            }
        });
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), space, 1);
        assert!(!Memories::<T>::contains_key(space, 1));
    }

    #[benchmark]
    fn grant() {
        let owner = funded::<T>("owner");
        let space = new_space::<T>(&owner);
        let agent: T::AccountId = account("agent", 0, 0);
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), space, agent, Scope::ReadWrite);
    }

    #[benchmark]
    fn revoke() {
        let owner = funded::<T>("owner");
        let space = new_space::<T>(&owner);
        let agent: T::AccountId = account("agent", 0, 0);
        Pallet::<T>::grant(
            RawOrigin::Signed(owner.clone()).into(),
            space,
            agent.clone(),
            Scope::Read,
        )
        .expect("grants; qed");
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), space, agent);
    }

    #[benchmark]
    fn close_space(g: Linear<0, { T::MaxGrantsPerSpace::get() }>) {
        let owner = funded::<T>("owner");
        let space = new_space::<T>(&owner);
        for i in 0..g {
            let agent: T::AccountId = account("agent", i, 0);
            Pallet::<T>::grant(
                RawOrigin::Signed(owner.clone()).into(),
                space,
                agent,
                Scope::Read,
            )
            .expect("grants; qed");
        }
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), space);
        assert!(!Spaces::<T>::contains_key(space));
    }

    /// The observer hook at its costliest: a final result decoded and quantized into a
    /// memory that supersedes another.
    #[benchmark]
    fn on_embedding_final() {
        let owner = funded::<T>("owner");
        let space = new_space::<T>(&owner);
        executor::<T>();
        ready_memories::<T>(&owner, space, 1, T::MaxDimensions::get());
        Pallet::<T>::remember(
            RawOrigin::Signed(owner).into(),
            space,
            text::<T>(T::MaxTextBytes::get()),
            Some(0),
            1_000_000u32.into(),
        )
        .expect("remembers; qed");
        let request = pallet_inference::NextRequestId::<T>::get() - 1;
        let dims = T::MaxDimensions::get();
        let values: alloc::vec::Vec<f32> = (0..dims).map(|d| d as f32 / dims as f32).collect();
        let output = codec::Encode::encode(&inferchain_primitives::io::Payload::Tensors(vec![
            inferchain_primitives::io::Tensor::from_f32(vec![1, dims], &values),
        ]));
        let executor: T::AccountId = account("executor", 0, 0);
        pallet_inference::Results::<T>::insert(
            request,
            pallet_inference::InferenceResult {
                executor,
                output: output.try_into().expect("fits MaxOutputBytes; qed"),
                output_hash: H256::zero(),
                posted_at: frame_system::Pallet::<T>::block_number(),
                challenged: false,
            },
        );
        #[block]
        {
            Pallet::<T>::on_finalized(request);
        }
        assert_eq!(
            Memories::<T>::get(space, 1).map(|m| m.state),
            Some(MemoryState::Ready)
        );
    }

    /// Recall over `n` ready memories of the largest dimensions (what the runtime API
    /// costs a node, and what recalling into an answer would cost a block).
    #[benchmark]
    fn recall(n: Linear<1, { T::MaxMemoriesPerSpace::get() }>) {
        let owner = funded::<T>("owner");
        let space = new_space::<T>(&owner);
        let dims = T::MaxDimensions::get();
        ready_memories::<T>(&owner, space, n, dims);
        let query: alloc::vec::Vec<f32> = (0..dims).map(|d| (d % 5) as f32 * 0.1).collect();
        let k = T::MaxRecall::get();
        #[block]
        {
            let got = Pallet::<T>::recall(space, &query, k).expect("recalls; qed");
            assert_eq!(got.len(), (k as usize).min(n as usize));
        }
    }

    #[benchmark]
    fn ask() {
        let owner = funded::<T>("owner");
        let space = new_space::<T>(&owner);
        executor::<T>();
        #[extrinsic_call]
        _(
            RawOrigin::Signed(owner),
            space,
            LLM,
            text::<T>(64),
            T::MaxRecall::get(),
            8,
            1_000_000u32.into(),
        );
        assert_eq!(crate::pallet::Questions::<T>::iter().count(), 1);
    }

    /// Answering over `n` memories: the recall reads each, the prompt takes the best
    /// `MaxRecall` that fit, each is reinforced, and the answer is requested.
    #[benchmark]
    fn answer(n: Linear<0, { T::MaxMemoriesPerSpace::get() }>) {
        let owner = funded::<T>("owner");
        let space = new_space::<T>(&owner);
        executor::<T>();
        let dims = T::MaxDimensions::get();
        // Full-size texts: the recall decodes every one; as many of the best as fit the
        // bench model's prompt (all `MaxRecall` of them in the runtime) are reinforced.
        ready_memories::<T>(&owner, space, n, dims);
        Pallet::<T>::ask(
            RawOrigin::Signed(owner.clone()).into(),
            space,
            LLM,
            text::<T>(8),
            T::MaxRecall::get(),
            8,
            1_000_000u32.into(),
        )
        .expect("asks; qed");
        let query = pallet_inference::NextRequestId::<T>::get() - 1;
        let values: alloc::vec::Vec<f32> = (0..dims).map(|d| (d % 3) as f32 * 0.1).collect();
        let output = codec::Encode::encode(&inferchain_primitives::io::Payload::Tensors(vec![
            inferchain_primitives::io::Tensor::from_f32(vec![1, dims], &values),
        ]));
        let now = frame_system::Pallet::<T>::block_number();
        pallet_inference::Requests::<T>::mutate(query, |r| {
            if let Some(r) = r.as_mut() {
                r.status = pallet_inference::RequestStatus::Finalized { at: now };
            }
        });
        pallet_inference::Results::<T>::insert(
            query,
            pallet_inference::InferenceResult {
                executor: account("executor", 0, 0),
                output: output.try_into().expect("fits MaxOutputBytes; qed"),
                output_hash: H256::zero(),
                posted_at: now,
                challenged: false,
            },
        );
        // The memories were ready before the answer's block.
        frame_system::Pallet::<T>::set_block_number(now.saturating_add(1u32.into()));
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), query);
        assert!(crate::pallet::Questions::<T>::get(query).is_none());
        assert_eq!(crate::pallet::Answers::<T>::iter().count(), 1);
    }

    #[benchmark]
    fn clear_answer() {
        let owner = funded::<T>("owner");
        let space = new_space::<T>(&owner);
        crate::pallet::Answers::<T>::insert(
            u64::MAX,
            AnswerInfo {
                asker: owner.clone(),
                space,
                query_request: 0,
                k: 1,
                memories: BoundedVec::new(),
                answered: frame_system::Pallet::<T>::block_number(),
                deposit: 0u32.into(),
            },
        );
        #[extrinsic_call]
        _(RawOrigin::Signed(owner), u64::MAX);
        assert!(crate::pallet::Answers::<T>::get(u64::MAX).is_none());
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
