//! Benchmarks (v2) for `pallet_inference`. Worst cases: the largest active set for
//! executor draws, inputs and outputs up to the configured maxima, and for the game:
//! traces and plans of
//! `u32::MAX` leaves (the deepest Merkle paths), a reveal that completes a round, and a
//! step proof that re-executes the referee's costliest step, convicts the executor and
//! reassigns the request over the largest active set; for the element walk, the opening
//! output reveal (the plan step proven by a 32-deep path), and a chunk proof of the
//! referee's costliest chunk (operand ranges at the operand cap, 32-deep weight paths)
//! that convicts the executor.

use super::*;
use crate::game::PathOf;
use crate::Pallet as Inference;
use alloc::{vec, vec::Vec};
use codec::Encode;
use frame_benchmarking::v2::*;
use frame_support::{
    pallet_prelude::*,
    traits::{fungible::Mutate, Hooks},
};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use inferchain_primitives::{
    blake2_256,
    compare::ComparisonRule,
    dispute::{
        ElementOperand, ElementProof, ModelCommitments, Operand, PlanStep, Read, StepProof,
        StepReferee, TraceCommitment,
    },
    io::{DType, Dim, IoSpec, Payload, Tensor, TensorSpec},
    merkle::{self, Hash},
    model::{ModelFormat, ModelRegistry, ModelSpec, NumericsProfile, ThreadRule},
    tensor_tree::{chunk_root, tensor_leaf, tensor_leaf_of, ChunkRange},
    ModelId, RequestId, H256,
};
use sp_runtime::traits::{Bounded, Saturating};

const MODEL: ModelId = H256::repeat_byte(0xbe);
/// Executors enough for a request and a challenger besides its executor.
const FEW_EXECUTORS: u32 = 4;
/// Bytes of SCALE framing around a one-tensor payload's data.
const FRAMING: u32 = 32;

fn bytes_io() -> IoSpec {
    IoSpec::Tensors(
        vec![TensorSpec {
            name: b"bytes".to_vec().try_into().expect("short; qed"),
            dtype: DType::U8,
            shape: vec![Dim::Fixed(1), Dim::Dynamic { max: u32::MAX }]
                .try_into()
                .expect("rank 2; qed"),
            allow_non_finite: false,
        }]
        .try_into()
        .expect("one tensor; qed"),
    )
}

fn payload(len: u32, fill: u8) -> Vec<u8> {
    let len = len.max(1);
    Payload::Tensors(vec![Tensor {
        dtype: DType::U8,
        shape: vec![1, len],
        data: vec![fill; len as usize],
    }])
    .encode()
}

fn setup_model<T: Config>() {
    if T::Models::model(&MODEL).is_none() {
        T::Models::register_for_benchmark(bench_spec::<T>(MODEL))
            .expect("the bench model is valid; qed");
    }
}

/// `count` more registered models (distinct from `MODEL`), from index `first`.
fn more_models<T: Config>(first: u32, count: u32) -> Vec<ModelId> {
    (first..first.saturating_add(count))
        .map(|i| {
            let id = H256(blake2_256(&(b"bench model", i).encode()));
            if T::Models::model(&id).is_none() {
                T::Models::register_for_benchmark(bench_spec::<T>(id))
                    .expect("a bench model is valid; qed");
            }
            id
        })
        .collect()
}

fn bench_spec<T: Config>(id: ModelId) -> ModelSpec<BalanceOf<T>> {
    ModelSpec {
        name: b"bench".to_vec().try_into().expect("short; qed"),
        format: ModelFormat::Onnx,
        artifact_hash: id,
        input: bytes_io(),
        output: bytes_io(),
        fee: 1_000u32.into(),
        max_input_bytes: T::MaxInputBytes::get(),
        max_output_bytes: T::MaxOutputBytes::get(),
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
    }
}

/// Commits the bench model (unless a game setup committed its own plan first) to a
/// plan of `u32::MAX` steps and weights: the deepest traces.
fn ensure_committed<T: Config>() {
    if T::Models::commitments(&MODEL).is_none() {
        T::Models::commit_for_benchmark(
            &MODEL,
            ModelCommitments {
                plan_root: H256(blake2_256(b"the bench plan")),
                steps: u32::MAX,
                weights_root: H256(blake2_256(b"the bench weights")),
                weights: u32::MAX,
            },
        )
        .expect("the bench model takes commitments; qed");
    }
}

fn funded<T: Config>(name: &'static str, i: u32) -> T::AccountId {
    let who: T::AccountId = account(name, i, 0);
    // Enough for a bond of 10x the minimum, fees and challenge bonds, without the
    // issuance of ~130 such accounts overflowing.
    T::Currency::set_balance(
        &who,
        T::MinExecutorBond::get().saturating_mul(1_000u32.into()),
    );
    who
}

/// The models every bench executor serves: the bench model and `MaxServedModels - 1`
/// others, so that every pool update (an executor filling up, freeing a slot, slashed)
/// touches the most pools.
fn served_models<T: Config>() -> BoundedVec<ModelId, T::MaxServedModels> {
    let mut models = vec![MODEL];
    models.extend(more_models::<T>(
        1_000,
        T::MaxServedModels::get().saturating_sub(1),
    ));
    models.try_into().expect("MaxServedModels models; qed")
}

/// Registers executors serving [`served_models`] with capacity 1 (so that taking a
/// request fills an executor and answering frees it: both re-sync its pools) until
/// `count` are active (genesis may hold some already); the active set's worst case is
/// `MaxExecutors`, all in the bench model's pool. Returns the active set.
fn executors<T: Config>(count: u32) -> Vec<T::AccountId> {
    executors_with::<T>(count, 1)
}

/// [`executors`] with `capacity`.
fn executors_with<T: Config>(count: u32, capacity: u32) -> Vec<T::AccountId> {
    setup_model::<T>();
    let models = served_models::<T>();
    let mut i = 0u32;
    while (ActiveExecutors::<T>::get().len() as u32) < count {
        let who = funded::<T>("executor", i);
        i = i.saturating_add(1);
        if Executors::<T>::contains_key(&who) {
            continue;
        }
        Inference::<T>::do_register_executor(
            who.clone(),
            T::MinExecutorBond::get().saturating_mul(10u32.into()),
        )
        .expect("a funded executor registers; qed");
        Inference::<T>::do_serve(who, models.clone(), capacity)
            .expect("an active executor serves registered models; qed");
    }
    ActiveExecutors::<T>::get().into_inner()
}

fn request<T: Config>(input_len: u32) -> (RequestId, T::AccountId) {
    setup_model::<T>();
    ensure_committed::<T>();
    let requester = funded::<T>("requester", 0);
    let input: BoundedVec<u8, T::MaxInputBytes> = payload(input_len, 1)
        .try_into()
        .expect("within the maximum; qed");
    let id =
        Inference::<T>::do_request(requester.clone(), MODEL, input, BalanceOf::<T>::max_value())
            .expect("the request is valid; qed");
    (id, requester)
}

/// A Merkle root over `count` leaves in which leaf `index` is `leaf` and every other leaf
/// is arbitrary (derived from `seed`): the root, the path of `leaf`, and the root's two
/// children.
fn rooted(leaf: Hash, index: u32, count: u32, seed: u8) -> (Hash, Vec<Hash>, (Hash, Hash)) {
    let (mut hash, mut width, mut at) = (leaf, count as usize, index as usize);
    let (mut path, mut top) = (Vec::new(), (leaf, leaf));
    while width > 1 {
        if (at ^ 1) < width {
            let sibling = blake2_256(&[seed, path.len() as u8]);
            let pair = if at % 2 == 0 {
                (hash, sibling)
            } else {
                (sibling, hash)
            };
            hash = merkle::node(&pair.0, &pair.1);
            path.push(sibling);
            top = pair;
        }
        at /= 2;
        width = width.div_ceil(2);
    }
    (hash, path, top)
}

/// A trace of the deepest kind ending in `output`.
fn deep_trace(output: &[u8], seed: u8) -> (TraceCommitment, PathOf, (Hash, Hash)) {
    let (root, path, top) = rooted(tensor_leaf(output), u32::MAX - 1, u32::MAX, seed);
    let trace = TraceCommitment {
        root: H256(root),
        leaves: u32::MAX,
    };
    (trace, path.try_into().expect("at most 32 levels; qed"), top)
}

/// The weights root of a plan of `u32::MAX` weights whose first `operands.len()` leaves
/// are `operands` (at most 4), with the path of each.
fn deep_weights(operands: &[Vec<u8>]) -> (Hash, Vec<Vec<Hash>>) {
    let mut leaves: Vec<Hash> = operands.iter().map(|o| tensor_leaf(o)).collect();
    while leaves.len() < 4 {
        leaves.push(blake2_256(&[0xee, leaves.len() as u8]));
    }
    let (h01, h23) = (
        merkle::node(&leaves[0], &leaves[1]),
        merkle::node(&leaves[2], &leaves[3]),
    );
    let h03 = merkle::node(&h01, &h23);
    // Leaf 0's place two levels up: the rest of its path is the same for all four.
    let (root, upper, _) = rooted(h03, 0, u32::MAX.div_ceil(4), 0xdd);
    let paths = (0..operands.len())
        .map(|i| {
            let mut p = vec![leaves[i ^ 1], if i < 2 { h23 } else { h01 }];
            p.extend(upper.iter().copied());
            p
        })
        .collect();
    (root, paths)
}

/// A traced result of a model committed to a plan of `u32::MAX` steps whose step 0 is
/// the referee's costliest, and a challenger; returns the request, its executor, the
/// challenger, the executor's trace top and the plan step proof pieces.
struct GameSetup<T: Config> {
    id: RequestId,
    executor: T::AccountId,
    challenger: T::AccountId,
    executor_top: (Hash, Hash),
    challenger_top: (Hash, Hash),
    proof: StepProof,
}

fn game_setup<T: Config>(output_len: u32) -> GameSetup<T> {
    let (op, operands) = T::Referee::costliest_step();
    let refs: Vec<&[u8]> = operands.iter().map(|o| o.as_slice()).collect();
    let output_bytes = T::Referee::evaluate(&op, &refs)
        .map(|o| o.len() as u32)
        .unwrap_or_default();
    game_setup_with::<T>(output_len, op, operands, output_bytes).0
}

/// [`game_setup`] for a plan whose step 0 is `op` reading the weights `operands`;
/// also returns the weights' paths.
fn game_setup_with<T: Config>(
    output_len: u32,
    op: Vec<u8>,
    operands: Vec<Vec<u8>>,
    output_bytes: u32,
) -> (GameSetup<T>, Vec<Vec<Hash>>) {
    setup_model::<T>();
    let (weights_root, weight_paths) = deep_weights(&operands);
    let step = PlanStep {
        op,
        reads: (0..operands.len() as u32).map(Read::Weight).collect(),
        output_bytes,
    };
    let (plan_root, step_path, _) = rooted(merkle::leaf(&step.encode()), 0, u32::MAX, 0xcc);
    if T::Models::commitments(&MODEL).is_none() {
        T::Models::commit_for_benchmark(
            &MODEL,
            ModelCommitments {
                plan_root: H256(plan_root),
                steps: u32::MAX,
                weights_root: H256(weights_root),
                weights: u32::MAX,
            },
        )
        .expect("the bench model takes commitments; qed");
    }
    let (id, _) = request::<T>(64);
    let executor = Requests::<T>::get(id).expect("just made; qed").executor;
    let output = payload(output_len, 2);
    let (trace, path, executor_top) = deep_trace(&output, 1);
    Inference::<T>::do_submit_result(
        executor.clone(),
        id,
        output.try_into().expect("bounded; qed"),
        trace,
        path,
    )
    .expect("the executor posts; qed");
    let challenger = ActiveExecutors::<T>::get()
        .into_iter()
        .find(|a| *a != executor)
        .expect("several executors are active; qed");
    let (_, _, challenger_top) = deep_trace(&payload(output_len, 3), 2);
    let proof = StepProof {
        step,
        step_path,
        operands: operands
            .into_iter()
            .zip(weight_paths.clone())
            .map(|(data, path)| Operand { data, path })
            .collect(),
    };
    (
        GameSetup {
            id,
            executor,
            challenger,
            executor_top,
            challenger_top,
            proof,
        },
        weight_paths,
    )
}

/// The setup's challenger opens its game (with a deep trace of another output).
fn open_challenge<T: Config>(setup: &GameSetup<T>) -> GameId {
    let output = payload(16, 3);
    let (trace, path, _) = deep_trace(&output, 2);
    Inference::<T>::do_open_game(
        setup.challenger.clone(),
        setup.id,
        output.try_into().expect("bounded; qed"),
        trace,
        path,
    )
    .expect("the challenger opens; qed");
    GameByChallenger::<T>::get(setup.id, &setup.challenger).expect("open; qed")
}

/// An element game: the setup, the game, the executor's chunk root and the chunk's
/// tensors and their paths.
type ElementGame<T> = (GameSetup<T>, GameId, Hash, Vec<Vec<u8>>, Vec<Vec<Hash>>);

/// A game whose walk over steps ended at step 0, the referee's costliest chunk's step
/// (an element path), with the executor's leaf a tensor of that step's output length.
fn element_game<T: Config>() -> ElementGame<T> {
    let (op, output_bytes, _, tensors) = T::Referee::costliest_chunk();
    let (setup, paths) = game_setup_with::<T>(16, op, tensors.clone(), output_bytes);
    let game = open_challenge::<T>(&setup);
    let executor_root = blake2_256(b"the executor's wrong chunks");
    Games::<T>::mutate(game, |g| {
        if let Some(g) = g {
            g.at = inferchain_primitives::dispute::Position { start: 0, level: 0 };
            g.phase = crate::GamePhase::Prove;
            g.executor_hash = tensor_leaf_of(output_bytes, &executor_root);
        }
    });
    (setup, game, executor_root, tensors, paths)
}

/// A batch of `n` small requests, drawn to one executor (of the largest active set,
/// each serving [`served_models`] at capacity 1: taking the batch fills it, and ending
/// its assignments re-syncs its pools).
fn batch<T: Config>(n: u32) -> Vec<RequestId> {
    executors::<T>(T::MaxExecutors::get());
    ensure_committed::<T>();
    let requester = funded::<T>("requester", 0);
    let inputs = (0..n)
        .map(|i| payload(1, i as u8).try_into().expect("small; qed"))
        .collect();
    Inference::<T>::do_request_batch(requester, MODEL, inputs, BalanceOf::<T>::max_value())
        .expect("the batch is valid; qed")
}

/// The results of `ids` (one executor's), each with the deepest trace.
fn batch_results<T: Config>(ids: &[RequestId]) -> Vec<BatchResultOf<T>> {
    ids.iter()
        .map(|id| {
            let output = payload(1, *id as u8);
            let (trace, path, _) = deep_trace(&output, 1);
            (*id, output.try_into().expect("small; qed"), trace, path)
        })
        .collect()
}

/// A batch of `n` whose results are posted: its ids and the window's end.
fn answered_batch<T: Config>(n: u32) -> (Vec<RequestId>, BlockNumberFor<T>) {
    let ids = batch::<T>(n);
    let executor = Requests::<T>::get(ids[0]).expect("just made; qed").executor;
    Inference::<T>::do_submit_results(executor, batch_results::<T>(&ids))
        .expect("the executor posts; qed");
    let window_end =
        frame_system::Pallet::<T>::block_number().saturating_add(T::ChallengePeriod::get());
    (ids, window_end)
}

#[benchmarks]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn register_executor() {
        executors::<T>(T::MaxExecutors::get().saturating_sub(1));
        let who = funded::<T>("new", 0);
        let bond = T::MinExecutorBond::get();
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), bond);
        assert!(Executors::<T>::contains_key(&who));
    }

    #[benchmark]
    fn unregister_executor() {
        let all = executors::<T>(T::MaxExecutors::get());
        let who = all[all.len() - 1].clone();
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));
        assert!(!ActiveExecutors::<T>::get().contains(&who));
    }

    #[benchmark]
    fn withdraw_bond() {
        let who = funded::<T>("leaving", 0);
        Inference::<T>::do_register_executor(who.clone(), T::MinExecutorBond::get())
            .expect("a funded executor registers; qed");
        Inference::<T>::do_unregister_executor(who.clone()).expect("active; qed");
        frame_system::Pallet::<T>::set_block_number(
            frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingPeriod::get()),
        );
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));
        assert!(!Executors::<T>::contains_key(&who));
    }

    #[benchmark]
    fn serve(m: Linear<1, { T::MaxServedModels::get() }>) {
        // Every other executor serves the `m` new models (full pools to join); `who`
        // serves `m` others it leaves.
        let all = executors::<T>(T::MaxExecutors::get());
        let old = more_models::<T>(0, m);
        let new = more_models::<T>(m, m);
        let who = all[0].clone();
        for e in &all[1..] {
            Inference::<T>::do_serve(e.clone(), new.clone().try_into().expect("m; qed"), 1)
                .expect("active; qed");
        }
        Inference::<T>::do_serve(who.clone(), old.try_into().expect("m; qed"), 1)
            .expect("active; qed");
        let models: BoundedVec<ModelId, T::MaxServedModels> =
            new.clone().try_into().expect("m; qed");
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), models, u32::MAX);
        assert!(ModelPools::<T>::get(new[0]).iter().any(|(a, _)| a == &who));
    }

    #[benchmark]
    fn request_batch(n: Linear<1, { T::MaxBatchSize::get() }>) {
        // Small inputs (their bytes are charged at request_inference's rate), drawn
        // over the largest pools.
        executors_with::<T>(T::MaxExecutors::get(), u32::MAX);
        ensure_committed::<T>();
        let requester = funded::<T>("requester", 0);
        let inputs: Vec<BoundedVec<u8, T::MaxInputBytes>> = (0..n)
            .map(|i| payload(1, i as u8).try_into().expect("small; qed"))
            .collect();
        let inputs: BoundedVec<_, T::MaxBatchSize> = inputs.try_into().expect("n; qed");
        #[extrinsic_call]
        _(
            RawOrigin::Signed(requester),
            MODEL,
            inputs,
            BalanceOf::<T>::max_value(),
        );
        assert!(Requests::<T>::contains_key(RequestId::from(n - 1)));
    }

    #[benchmark]
    fn release_assignment() {
        // The worst case: reassigned over the largest pool.
        executors::<T>(T::MaxExecutors::get());
        let (id, _) = request::<T>(64);
        let executor = Requests::<T>::get(id).expect("just made; qed").executor;
        #[extrinsic_call]
        _(
            RawOrigin::Signed(executor.clone()),
            id,
            crate::ReleaseReason::CannotServeModel,
        );
        let request = Requests::<T>::get(id).expect("kept; qed");
        assert!(request.executor != executor);
    }

    #[benchmark]
    fn request_inference(n: Linear<1, { T::MaxInputBytes::get().saturating_sub(FRAMING) }>) {
        executors::<T>(T::MaxExecutors::get());
        setup_model::<T>();
        ensure_committed::<T>();
        let requester = funded::<T>("requester", 0);
        let input: BoundedVec<u8, T::MaxInputBytes> =
            payload(n, 1).try_into().expect("bounded; qed");
        #[extrinsic_call]
        _(
            RawOrigin::Signed(requester),
            MODEL,
            input,
            BalanceOf::<T>::max_value(),
        );
        assert!(Requests::<T>::contains_key(0));
    }

    #[benchmark]
    // The costliest entry: a missed execution deadline (the slash re-weighs the executor
    // in all its pools, its freed slot re-syncs them, and the request is re-drawn over
    // the largest pools and fills its next executor). Linear in `k`: measured up to 256
    // entries and extrapolated to the runtime's budget.
    fn on_initialize(k: Linear<0, { T::MaxDeadlinesPerBlock::get().min(256) }>) {
        // Slots for exactly `k` requests at most: every executor fills up.
        executors_with::<T>(T::MaxExecutors::get(), u32::MAX);
        let servers = ModelPools::<T>::get(MODEL).into_inner();
        let capacity = k.div_ceil(servers.len() as u32).max(1);
        for (who, _) in &servers {
            Inference::<T>::do_serve(who.clone(), served_models::<T>(), capacity)
                .expect("active; qed");
        }
        ensure_committed::<T>();
        let requester = funded::<T>("requester", 0);
        let now = frame_system::Pallet::<T>::block_number();
        for i in 0..k {
            // Taken over as many blocks as the per-block limits need.
            RequestsInBlock::<T>::kill();
            let input: BoundedVec<u8, T::MaxInputBytes> =
                payload(8, i as u8).try_into().expect("small; qed");
            Inference::<T>::do_request(
                requester.clone(),
                MODEL,
                input,
                BalanceOf::<T>::max_value(),
            )
            .expect("a slot is free; qed");
        }
        let deadline: BlockNumberFor<T> = now.saturating_add(T::ExecutionTimeout::get());
        QueueCursor::<T>::put(deadline);
        frame_system::Pallet::<T>::set_block_number(deadline);
        #[block]
        {
            Inference::<T>::on_initialize(deadline);
        }
        assert_eq!(DeadlineQueue::<T>::iter_prefix(deadline).count(), 0);
    }

    #[benchmark]
    fn submit_traced_result(n: Linear<1, { T::MaxOutputBytes::get().saturating_sub(FRAMING) }>) {
        executors::<T>(FEW_EXECUTORS);
        game_setup::<T>(16);
        // A second request of the committed model, answered with the deepest trace.
        let (id, _) = request::<T>(64);
        let executor = Requests::<T>::get(id).expect("just made; qed").executor;
        let output = payload(n, 2);
        let (trace, path, _) = deep_trace(&output, 1);
        let output: BoundedVec<u8, T::MaxOutputBytes> = output.try_into().expect("bounded; qed");
        #[extrinsic_call]
        _(RawOrigin::Signed(executor), id, output, trace, path);
        assert!(ResultTraces::<T>::contains_key(id));
    }

    #[benchmark]
    fn open_game(n: Linear<1, { T::MaxOutputBytes::get().saturating_sub(FRAMING) }>) {
        executors::<T>(T::MaxExecutors::get());
        let setup = game_setup::<T>(16);
        let output = payload(n, 3);
        let (trace, path, _) = deep_trace(&output, 2);
        let output: BoundedVec<u8, T::MaxOutputBytes> = output.try_into().expect("bounded; qed");
        #[extrinsic_call]
        _(
            RawOrigin::Signed(setup.challenger.clone()),
            setup.id,
            output,
            trace,
            path,
        );
        assert!(GameByChallenger::<T>::contains_key(
            setup.id,
            &setup.challenger
        ));
    }

    #[benchmark]
    fn reveal() {
        executors::<T>(FEW_EXECUTORS);
        let setup = game_setup::<T>(16);
        let game = open_challenge::<T>(&setup);
        let (l, r) = setup.challenger_top;
        Inference::<T>::do_reveal(setup.challenger.clone(), game, l, r)
            .expect("the challenger reveals; qed");
        let (l, r) = setup.executor_top;
        // The executor's reveal completes the round: the walk goes down.
        #[extrinsic_call]
        _(RawOrigin::Signed(setup.executor.clone()), game, l, r);
        assert_eq!(Games::<T>::get(game).expect("open; qed").rounds, 1);
    }

    #[benchmark]
    fn prove_step() {
        executors::<T>(T::MaxExecutors::get());
        let setup = game_setup::<T>(16);
        let game = open_challenge::<T>(&setup);
        // The walk ended at step 0, where the executor's leaf is wrong.
        Games::<T>::mutate(game, |g| {
            if let Some(g) = g {
                g.at = inferchain_primitives::dispute::Position { start: 0, level: 0 };
                g.phase = crate::GamePhase::Prove;
            }
        });
        let Ok(proof) = BoundedVec::<u8, T::MaxStepProofBytes>::try_from(setup.proof.encode())
        else {
            panic!("the costliest step's proof exceeds MaxStepProofBytes");
        };
        #[extrinsic_call]
        _(RawOrigin::Signed(setup.challenger.clone()), game, proof);
        assert!(!Games::<T>::contains_key(game));
        assert!(matches!(
            Requests::<T>::get(setup.id).expect("kept; qed").status,
            RequestStatus::Pending { .. } | RequestStatus::Expired { .. }
        ));
    }

    #[benchmark]
    fn reveal_output() {
        executors::<T>(FEW_EXECUTORS);
        let (setup, game, executor_root, _, _) = element_game::<T>();
        let step: BoundedVec<u8, crate::game::MaxPlanStepBytes> = setup
            .proof
            .step
            .encode()
            .try_into()
            .expect("a small step; qed");
        let path: PathOf = setup
            .proof
            .step_path
            .clone()
            .try_into()
            .expect("32 levels; qed");
        // The opening reveal: the plan step proven, its element path checked.
        #[extrinsic_call]
        _(
            RawOrigin::Signed(setup.executor.clone()),
            game,
            Some((step, path)),
            executor_root,
        );
        assert!(matches!(
            Games::<T>::get(game).expect("open; qed").phase,
            crate::GamePhase::Outputs { .. }
        ));
    }

    #[benchmark]
    fn prove_element() {
        executors::<T>(T::MaxExecutors::get());
        let (setup, game, _, tensors, paths) = element_game::<T>();
        let (_, output_bytes, chunk, _) = T::Referee::costliest_chunk();
        Games::<T>::mutate(game, |g| {
            if let Some(g) = g {
                g.element = Some(crate::ElementWalk {
                    step: 0,
                    output_bytes,
                });
                g.at = inferchain_primitives::dispute::Position {
                    start: chunk,
                    level: 0,
                };
                g.phase = crate::GamePhase::ProveElement;
                g.executor_hash = blake2_256(b"the executor's wrong chunk");
            }
        });
        let reads = T::Referee::element_reads(&setup.proof.step.op, output_bytes, chunk)
            .expect("the costliest chunk has reads; qed");
        let proof = ElementProof {
            step: setup.proof.step.clone(),
            step_path: setup.proof.step_path.clone(),
            operands: reads
                .iter()
                .map(|r| {
                    let tensor = &tensors[r.operand as usize];
                    ElementOperand::Tensor {
                        len: tensor.len() as u32,
                        chunk_root: chunk_root(tensor),
                        path: paths[r.operand as usize].clone(),
                        range: ChunkRange::of(tensor, r.start, r.len).expect("in range; qed"),
                    }
                })
                .collect(),
        };
        let Ok(proof) = BoundedVec::<u8, T::MaxStepProofBytes>::try_from(proof.encode()) else {
            panic!("the costliest chunk's proof exceeds MaxStepProofBytes");
        };
        #[extrinsic_call]
        _(RawOrigin::Signed(setup.challenger.clone()), game, proof);
        assert!(!Games::<T>::contains_key(game));
        assert!(matches!(
            Requests::<T>::get(setup.id).expect("kept; qed").status,
            RequestStatus::Pending { .. } | RequestStatus::Expired { .. }
        ));
    }

    #[benchmark]
    fn submit_results(n: Linear<1, { T::MaxBatchSize::get() }>) {
        let ids = batch::<T>(n);
        let executor = Requests::<T>::get(ids[0]).expect("just made; qed").executor;
        let results: BoundedVec<BatchResultOf<T>, T::MaxBatchSize> =
            batch_results::<T>(&ids).try_into().expect("n; qed");
        #[extrinsic_call]
        _(RawOrigin::Signed(executor), results);
        assert!(ResultTraces::<T>::contains_key(ids[ids.len() - 1]));
    }

    #[benchmark]
    // The costliest span entry of an execution deadline: its executor missed all `n`;
    // the first request is re-drawn over the largest pool (filling its new executor) and
    // the rest, at their last attempt, expire (a release, an observer hook each, and
    // their pruning scheduled).
    fn execution_span(n: Linear<1, { T::MaxBatchSize::get() }>) {
        let ids = batch::<T>(n);
        for id in &ids[1..] {
            Requests::<T>::mutate(id, |r| {
                if let Some(r) = r {
                    r.attempt = T::MaxAttempts::get();
                }
            });
        }
        let deadline: BlockNumberFor<T> =
            frame_system::Pallet::<T>::block_number().saturating_add(T::ExecutionTimeout::get());
        frame_system::Pallet::<T>::set_block_number(deadline);
        #[block]
        {
            Inference::<T>::on_execution_span(ids[0], n, deadline, deadline);
        }
        assert!(matches!(
            Requests::<T>::get(ids[0]).expect("kept; qed").status,
            RequestStatus::Pending { .. }
        ));
    }

    #[benchmark]
    // A span of `n` results whose window ended: all final, their executor paid once.
    fn window_span(n: Linear<1, { T::MaxBatchSize::get() }>) {
        let (ids, window_end) = answered_batch::<T>(n);
        frame_system::Pallet::<T>::set_block_number(window_end);
        #[block]
        {
            Inference::<T>::on_window_span(ids[0], n, window_end, window_end);
        }
        assert!(matches!(
            Requests::<T>::get(ids[ids.len() - 1])
                .expect("kept; qed")
                .status,
            RequestStatus::Finalized { .. }
        ));
    }

    #[benchmark]
    // A span of `n` settled requests pruned, their deposits returned in one release.
    fn prune_span(n: Linear<1, { T::MaxBatchSize::get() }>) {
        let (ids, window_end) = answered_batch::<T>(n);
        frame_system::Pallet::<T>::set_block_number(window_end);
        Inference::<T>::on_window_span(ids[0], n, window_end, window_end);
        #[block]
        {
            Inference::<T>::prune_span(ids[0], n);
        }
        assert!(!Requests::<T>::contains_key(ids[0]));
    }

    impl_benchmark_test_suite!(Inference, crate::mock::new_test_ext(), crate::mock::Test);
}
