//! The memory pallet's tests: spaces, deposits, caps, grants, the embedding lifecycle
//! through real inference requests, supersession and recall.

use crate::{mock::*, pallet::*, Event, MemoryState, Scope, SpaceId};
use frame_support::{assert_noop, assert_ok, traits::fungible::Inspect, BoundedVec};
use inferchain_primitives::recall::Recalled;

const OWNER: AccountId = 1;
const AGENT: AccountId = 2;
const STRANGER: AccountId = 3;

fn text(s: &str) -> BoundedVec<u8, MaxTextBytes> {
    s.as_bytes().to_vec().try_into().expect("short text")
}

fn space() -> SpaceId {
    assert_ok!(Memory::create_space(RuntimeOrigin::signed(OWNER), EMBEDDER));
    NextSpaceId::<Test>::get() - 1
}

/// `who` remembers `s` in `space`; returns the memory id and its request.
fn remember(who: AccountId, space: SpaceId, s: &str, supersedes: Option<u32>) -> (u32, u64) {
    assert_ok!(Memory::remember(
        RuntimeOrigin::signed(who),
        space,
        text(s),
        supersedes,
        FEE
    ));
    match last_memory_event() {
        Some(Event::Remembered {
            memory, request, ..
        }) => (memory, request),
        other => panic!("expected Remembered, got {other:?}"),
    }
}

/// Answers `request` with `values` and runs past its challenge window.
fn finalize(request: u64, values: &[f32]) {
    finalize_all(&[(request, values)]);
}

/// Answers each request with its values, then runs past their challenge windows.
fn finalize_all(answers: &[(u64, &[f32])]) {
    for (request, values) in answers {
        answer(*request, values);
    }
    let now = System::block_number();
    run_to_block(now + ChallengePeriod::get() + 1);
}

fn free(who: AccountId) -> Balance {
    Balances::balance(&who)
}

fn recall_ids(space: SpaceId, q: &[f32], k: u32) -> Vec<u32> {
    Memory::recall(space, q, k)
        .expect("recall")
        .into_iter()
        .map(|r| r.memory)
        .collect()
}

#[test]
fn create_space_holds_the_deposit_and_checks_the_model() {
    build_and_execute(|| {
        let s = space();
        assert_eq!(Memory::held(&OWNER), SpaceDeposit::get());
        assert_eq!(free(OWNER), ENDOWMENT - SpaceDeposit::get());
        let info = Spaces::<Test>::get(s).expect("stored");
        assert_eq!((info.owner, info.dimensions, info.memories), (OWNER, 4, 0));
        assert_eq!(
            last_memory_event(),
            Some(Event::SpaceCreated {
                space: s,
                owner: OWNER,
                embedding_model: EMBEDDER
            })
        );
        assert_noop!(
            Memory::create_space(RuntimeOrigin::signed(OWNER), sp_core::H256::repeat_byte(9)),
            Error::<Test>::UnknownModel
        );
        assert_noop!(
            Memory::create_space(RuntimeOrigin::signed(OWNER), TEXT_TO_TEXT),
            Error::<Test>::NotAnEmbeddingModel
        );
        assert_noop!(
            Memory::create_space(RuntimeOrigin::signed(OWNER), WIDE_EMBEDDER),
            Error::<Test>::TooManyDimensions
        );
    });
}

#[test]
fn a_memory_is_recalled_only_once_its_embedding_is_final() {
    build_and_execute(|| {
        let s = space();
        let before = free(OWNER);
        let (m, request) = remember(OWNER, s, "the vault code is 1234", None);
        let deposit = Memory::memory_deposit(22, 4);
        assert_eq!(deposit, 10 + 22 + 8);
        // The embedding request's fee is held by the inference pallet, the deposit here.
        assert_eq!(free(OWNER), before - FEE - deposit);
        assert_eq!(Memory::held(&OWNER), SpaceDeposit::get() + deposit);
        let stored = Memories::<Test>::get(s, m).expect("stored");
        assert_eq!(stored.state, MemoryState::Embedding { request });
        assert!(recall_ids(s, &[1.0, 0.0, 0.0, 0.0], 4).is_empty());

        answer(request, &[0.5, 0.25, 0.0, -0.5]);
        // Posted but still open to challenge: not recalled yet.
        run_to_block(System::block_number() + 1);
        assert!(recall_ids(s, &[1.0, 0.0, 0.0, 0.0], 4).is_empty());
        run_to_block(System::block_number() + ChallengePeriod::get() + 1);
        assert_eq!(
            System::events()
                .iter()
                .filter(|r| r.event
                    == RuntimeEvent::Memory(Event::MemoryReady {
                        space: s,
                        memory: m
                    }))
                .count(),
            1
        );
        let stored = Memories::<Test>::get(s, m).expect("stored");
        assert_eq!(stored.state, MemoryState::Ready);
        assert_eq!(stored.embedding.to_vec(), vec![8192, 4096, 0, -8192]);
        assert_eq!(
            Memory::recall(s, &[1.0, 0.0, 0.0, 0.0], 4),
            Ok(vec![Recalled {
                memory: m,
                score: 8192 * 16384
            }])
        );
    });
}

#[test]
fn forget_returns_the_deposit_and_a_forgotten_memory_is_never_recalled() {
    build_and_execute(|| {
        let s = space();
        let (a, ra) = remember(OWNER, s, "alpha", None);
        let (b, rb) = remember(OWNER, s, "beta", None);
        finalize_all(&[(ra, &[1.0, 0.0, 0.0, 0.0]), (rb, &[0.9, 0.1, 0.0, 0.0])]);
        assert_eq!(recall_ids(s, &[1.0, 0.0, 0.0, 0.0], 2), vec![a, b]);
        let held = Memory::held(&OWNER);
        let free_before = free(OWNER);
        assert_ok!(Memory::forget(RuntimeOrigin::signed(OWNER), s, a));
        let deposit = Memory::memory_deposit(5, 4);
        assert_eq!(Memory::held(&OWNER), held - deposit);
        assert_eq!(free(OWNER), free_before + deposit);
        assert_eq!(
            last_memory_event(),
            Some(Event::Forgotten {
                space: s,
                memory: a,
                deposit_returned: deposit
            })
        );
        assert_eq!(recall_ids(s, &[1.0, 0.0, 0.0, 0.0], 2), vec![b]);
        assert_noop!(
            Memory::forget(RuntimeOrigin::signed(OWNER), s, a),
            Error::<Test>::UnknownMemory
        );
        assert_eq!(Spaces::<Test>::get(s).expect("space").memories, 1);
    });
}

#[test]
fn a_memory_forgotten_while_its_embedding_is_computed_stays_forgotten() {
    build_and_execute(|| {
        let s = space();
        let (m, request) = remember(OWNER, s, "gone soon", None);
        assert_ok!(Memory::forget(RuntimeOrigin::signed(OWNER), s, m));
        assert!(EmbeddingRequests::<Test>::get(request).is_none());
        // The result still lands and is paid for; the memory does not come back.
        finalize(request, &[1.0, 0.0, 0.0, 0.0]);
        assert!(Memories::<Test>::get(s, m).is_none());
        assert!(recall_ids(s, &[1.0, 0.0, 0.0, 0.0], 4).is_empty());
    });
}

#[test]
fn an_expired_embedding_request_fails_the_memory_and_keeps_its_deposit_returnable() {
    build_and_execute(|| {
        let s = space();
        let before = free(OWNER);
        let (m, request) = remember(OWNER, s, "never embedded", None);
        // Nobody answers: the only attempt expires and the fee comes back.
        run_to_block(System::block_number() + ExecutionTimeout::get() + 1);
        assert_eq!(
            Memories::<Test>::get(s, m).expect("kept").state,
            MemoryState::Failed
        );
        assert!(System::events().iter().any(|r| r.event
            == RuntimeEvent::Memory(Event::EmbeddingFailed {
                space: s,
                memory: m,
                request
            })));
        assert!(recall_ids(s, &[1.0, 0.0, 0.0, 0.0], 4).is_empty());
        assert_ok!(Memory::forget(RuntimeOrigin::signed(OWNER), s, m));
        assert_eq!(free(OWNER), before);
    });
}

#[test]
fn a_rejected_request_stores_nothing_and_holds_nothing() {
    build_and_execute(|| {
        let s = space();
        let before = (free(OWNER), Memory::held(&OWNER));
        assert_noop!(
            Memory::remember(RuntimeOrigin::signed(OWNER), s, text("x"), None, FEE - 1),
            pallet_inference::Error::<Test>::FeeAboveMax
        );
        assert_noop!(
            Memory::remember(RuntimeOrigin::signed(OWNER), s, text(""), None, FEE),
            Error::<Test>::EmptyText
        );
        assert_noop!(
            Memory::remember(RuntimeOrigin::signed(OWNER), 99, text("x"), None, FEE),
            Error::<Test>::UnknownSpace
        );
        assert_eq!((free(OWNER), Memory::held(&OWNER)), before);
    });
}

#[test]
fn a_space_holds_at_most_its_cap() {
    build_and_execute(|| {
        let s = space();
        for i in 0..MaxMemoriesPerSpace::get() {
            remember(OWNER, s, &format!("fact {i}"), None);
        }
        assert_noop!(
            Memory::remember(RuntimeOrigin::signed(OWNER), s, text("one more"), None, FEE),
            Error::<Test>::SpaceFull
        );
        // Forgetting makes room.
        assert_ok!(Memory::forget(RuntimeOrigin::signed(OWNER), s, 0));
        remember(OWNER, s, "one more", None);
    });
}

#[test]
fn grants_decide_who_writes_and_the_owner_alone_grants() {
    build_and_execute(|| {
        let s = space();
        assert_noop!(
            Memory::remember(RuntimeOrigin::signed(AGENT), s, text("x"), None, FEE),
            Error::<Test>::NoWriteAccess
        );
        assert_noop!(
            Memory::grant(RuntimeOrigin::signed(AGENT), s, AGENT, Scope::ReadWrite),
            Error::<Test>::NotOwner
        );
        assert_noop!(
            Memory::grant(RuntimeOrigin::signed(OWNER), s, OWNER, Scope::Read),
            Error::<Test>::OwnerNeedsNoGrant
        );
        assert_ok!(Memory::grant(
            RuntimeOrigin::signed(OWNER),
            s,
            AGENT,
            Scope::Read
        ));
        assert!(Memory::can_read(s, &AGENT));
        assert!(!Memory::can_read(s, &STRANGER));
        assert_noop!(
            Memory::remember(RuntimeOrigin::signed(AGENT), s, text("x"), None, FEE),
            Error::<Test>::NoWriteAccess
        );
        assert_ok!(Memory::grant(
            RuntimeOrigin::signed(OWNER),
            s,
            AGENT,
            Scope::ReadWrite
        ));
        assert_eq!(Spaces::<Test>::get(s).expect("space").grants, 1);
        let (m, _) = remember(AGENT, s, "the agent's note", None);
        // The agent paid for its own memory.
        assert_eq!(Memory::held(&AGENT), Memory::memory_deposit(16, 4));
        let (o, _) = remember(OWNER, s, "the owner's note", None);
        assert_ok!(Memory::revoke(RuntimeOrigin::signed(OWNER), s, AGENT));
        assert_eq!(
            last_memory_event(),
            Some(Event::Revoked {
                space: s,
                agent: AGENT
            })
        );
        assert_noop!(
            Memory::remember(RuntimeOrigin::signed(AGENT), s, text("x"), None, FEE),
            Error::<Test>::NoWriteAccess
        );
        // Revoked: it cannot forget the owner's memory, but may still forget its own.
        assert_noop!(
            Memory::forget(RuntimeOrigin::signed(AGENT), s, o),
            Error::<Test>::NoWriteAccess
        );
        assert_ok!(Memory::forget(RuntimeOrigin::signed(AGENT), s, m));
        assert_eq!(Memory::held(&AGENT), 0);
        assert_noop!(
            Memory::revoke(RuntimeOrigin::signed(OWNER), s, AGENT),
            Error::<Test>::NoSuchGrant
        );
        assert_ok!(Memory::grant(
            RuntimeOrigin::signed(OWNER),
            s,
            AGENT,
            Scope::Read
        ));
        assert_ok!(Memory::grant(
            RuntimeOrigin::signed(OWNER),
            s,
            STRANGER,
            Scope::Read
        ));
        assert_noop!(
            Memory::grant(RuntimeOrigin::signed(OWNER), s, 4, Scope::Read),
            Error::<Test>::TooManyGrants
        );
    });
}

#[test]
fn a_superseded_memory_is_history_once_its_update_is_ready() {
    build_and_execute(|| {
        let s = space();
        let q = [1.0, 0.0, 0.0, 0.0];
        let (old, r_old) = remember(OWNER, s, "meeting at 10", None);
        finalize(r_old, &[1.0, 0.0, 0.0, 0.0]);
        let (new, r_new) = remember(OWNER, s, "meeting at 11", Some(old));
        // Until the update is ready the old memory is what is recalled.
        assert_eq!(recall_ids(s, &q, 4), vec![old]);
        assert_noop!(
            Memory::remember(RuntimeOrigin::signed(OWNER), s, text("x"), Some(77), FEE),
            Error::<Test>::UnknownMemory
        );
        finalize(r_new, &[0.5, 0.5, 0.0, 0.0]);
        assert_eq!(recall_ids(s, &q, 4), vec![new]);
        let kept = Memories::<Test>::get(s, old).expect("history is kept");
        assert_eq!(kept.superseded_by, Some(new));
        assert_eq!(
            Memories::<Test>::get(s, new).expect("stored").supersedes,
            Some(old)
        );
        assert_noop!(
            Memory::remember(RuntimeOrigin::signed(OWNER), s, text("x"), Some(old), FEE),
            Error::<Test>::AlreadySuperseded
        );
        // Forgetting the update makes the old version current again.
        assert_ok!(Memory::forget(RuntimeOrigin::signed(OWNER), s, new));
        assert_eq!(recall_ids(s, &q, 4), vec![old]);
    });
}

#[test]
fn recall_ranks_by_score_then_lower_id_and_refuses_bad_queries() {
    build_and_execute(|| {
        let s = space();
        let (a, ra) = remember(OWNER, s, "a", None);
        let (b, rb) = remember(OWNER, s, "b", None);
        let (c, rc) = remember(OWNER, s, "c", None);
        finalize_all(&[
            (ra, &[0.5, 0.0, 0.0, 0.0]),
            (rb, &[0.5, 0.0, 0.0, 0.0]),
            (rc, &[0.9, 0.0, 0.0, 0.0]),
        ]);
        assert_eq!(recall_ids(s, &[1.0, 0.0, 0.0, 0.0], 3), vec![c, a, b]);
        assert_eq!(recall_ids(s, &[1.0, 0.0, 0.0, 0.0], 1), vec![c]);
        assert_eq!(recall_ids(s, &[-1.0, 0.0, 0.0, 0.0], 2), vec![a, b]);
        assert_eq!(
            Memory::recall(s, &[1.0, 0.0], 1),
            Err(RecallError::DimensionMismatch {
                expected: 4,
                got: 2
            })
        );
        assert_eq!(
            Memory::recall(s, &[1.0, 0.0, 0.0, 0.0], MaxRecall::get() + 1),
            Err(RecallError::TooMany {
                max: MaxRecall::get()
            })
        );
        assert_eq!(
            Memory::recall(42, &[1.0, 0.0, 0.0, 0.0], 1),
            Err(RecallError::UnknownSpace)
        );
    });
}

#[test]
fn close_space_needs_it_empty_and_returns_the_deposit() {
    build_and_execute(|| {
        let s = space();
        assert_ok!(Memory::grant(
            RuntimeOrigin::signed(OWNER),
            s,
            AGENT,
            Scope::Read
        ));
        let (m, _) = remember(OWNER, s, "x", None);
        assert_noop!(
            Memory::close_space(RuntimeOrigin::signed(OWNER), s),
            Error::<Test>::SpaceNotEmpty
        );
        assert_noop!(
            Memory::close_space(RuntimeOrigin::signed(AGENT), s),
            Error::<Test>::NotOwner
        );
        assert_ok!(Memory::forget(RuntimeOrigin::signed(OWNER), s, m));
        assert_ok!(Memory::close_space(RuntimeOrigin::signed(OWNER), s));
        assert_eq!(Memory::held(&OWNER), 0);
        assert!(Grants::<Test>::get(s, AGENT).is_none());
        assert_eq!(
            last_memory_event(),
            Some(Event::SpaceClosed {
                space: s,
                deposit_returned: SpaceDeposit::get()
            })
        );
    });
}

/// Writes space `s` (owned by OWNER, `dimensions`, `n` memories expected) directly.
fn insert_space(s: SpaceId, dimensions: u32, n: u32) {
    Spaces::<Test>::insert(
        s,
        crate::SpaceInfo {
            owner: OWNER,
            embedding_model: EMBEDDER,
            dimensions,
            memories: n,
            next_memory: n,
            grants: 0,
            deposit: 0,
            created: 1,
            last_answered: None,
        },
    );
}

/// Writes a ready memory of `text` with `embedding` (f32, quantized here) directly.
fn insert_ready(s: SpaceId, id: u32, text_of: &str, embedding: &[f32]) {
    Memories::<Test>::insert(
        s,
        id,
        crate::Memory {
            author: OWNER,
            text: text(text_of),
            embedding: inferchain_primitives::recall::quantize(embedding)
                .try_into()
                .expect("within MaxDimensions"),
            state: MemoryState::Ready,
            created: 1,
            ready_at: Some(0),
            last_used: 1,
            uses: 0,
            supersedes: None,
            superseded_by: None,
            deposit: 0,
        },
    );
}

/// Seeded values in [-0.25, 0.25).
fn seeded(len: usize, seed: &mut u64) -> Vec<f32> {
    (0..len)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.5
        })
        .collect()
}

/// The recall the runtime API answers equals an independent numpy top-k
/// (`scripts/reference/recall_numpy.py`) over 10,000 memories of 384 dimensions for 100
/// queries, ties included (every 97th memory repeats its predecessor's embedding, and
/// some queries are memories' own embeddings).
#[test]
fn recall_agrees_with_an_independent_numpy_top_k_over_10000_memories() {
    use std::io::Write;
    let (n, d, queries, k) = (10_000u32, 384u32, 100u32, MaxRecall::get());
    let mut seed = 2026;
    let mut embeddings: Vec<Vec<f32>> = Vec::new();
    for i in 0..n {
        let e = if i % 97 == 1 {
            embeddings[i as usize - 1].clone()
        } else {
            seeded(d as usize, &mut seed)
        };
        embeddings.push(e);
    }
    let mut qs: Vec<Vec<f32>> = (0..queries)
        .map(|_| seeded(d as usize, &mut seed))
        .collect();
    for (j, q) in qs.iter_mut().enumerate().take(10) {
        *q = embeddings[j * 97].clone();
    }
    let ours: Vec<Vec<(u32, i64)>> = new_test_ext().execute_with(|| {
        let s = 7;
        insert_space(s, d, n);
        for (i, e) in embeddings.iter().enumerate() {
            insert_ready(s, i as u32, "m", e);
        }
        qs.iter()
            .map(|q| {
                Memory::recall(s, q, k)
                    .expect("recall")
                    .into_iter()
                    .map(|r| (r.memory, r.score))
                    .collect()
            })
            .collect()
    });
    let mut input = Vec::new();
    for v in [n, d, queries, k] {
        input.extend(v.to_le_bytes());
    }
    for e in &embeddings {
        input.extend(e.iter().flat_map(|v| v.to_le_bytes()));
    }
    input.extend((0..n).flat_map(|i| i.to_le_bytes()));
    for q in &qs {
        input.extend(q.iter().flat_map(|v| v.to_le_bytes()));
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cache = std::env::var_os("INFERCHAIN_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/inferchain")
        });
    let python = cache.join("venv/bin/python");
    let mut child = std::process::Command::new(&python)
        .arg(root.join("scripts/reference/recall_numpy.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", python.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("writes");
    let out = child.wait_with_output().expect("numpy runs");
    assert!(out.status.success(), "recall_numpy.py failed");
    let theirs: Vec<Vec<(u32, i64)>> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(theirs.len(), queries as usize);
    let mut ties = 0;
    for (j, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "query {j}");
        assert_eq!(a.len(), k as usize);
        ties += a.windows(2).filter(|w| w[0].1 == w[1].1).count();
    }
    // The repeated embeddings make equal scores, so the tie rule is exercised.
    assert!(ties >= 10, "only {ties} ties were ranked");
}

fn ask(who: AccountId, space: SpaceId, q: &str, k: u32) -> u64 {
    assert_ok!(Memory::ask(
        RuntimeOrigin::signed(who),
        space,
        LLM,
        text(q),
        k,
        4,
        FEE * 20
    ));
    match last_memory_event() {
        Some(Event::Asked { query_request, .. }) => query_request,
        other => panic!("expected Asked, got {other:?}"),
    }
}

/// The prompt the language-model request `id` was given.
fn prompt_of(id: u64) -> Vec<u8> {
    use codec::Decode;
    let request = pallet_inference::Requests::<Test>::get(id).expect("request");
    match inferchain_primitives::io::Payload::decode(&mut &request.input[..]) {
        Ok(inferchain_primitives::io::Payload::Prompt {
            text,
            max_new_tokens,
        }) => {
            assert_eq!(max_new_tokens, 4);
            text
        }
        other => panic!("not a prompt: {other:?}"),
    }
}

#[test]
fn an_answer_reads_the_recalled_memories_and_records_them() {
    build_and_execute(|| {
        let s = space();
        let (vault, r1) = remember(OWNER, s, "vault code 1234", None);
        let (cat, r2) = remember(OWNER, s, "cat named Tom", None);
        finalize_all(&[(r1, &[1.0, 0.0, 0.0, 0.0]), (r2, &[0.0, 1.0, 0.0, 0.0])]);
        let q = ask(OWNER, s, "what is the code?", 1);
        // Not before the question's embedding is final.
        assert_noop!(
            Memory::answer(RuntimeOrigin::signed(OWNER), q),
            Error::<Test>::QueryNotFinal
        );
        finalize(q, &[0.9, 0.1, 0.0, 0.0]);
        let now = System::block_number();
        // Only the asker chooses when its money is spent.
        assert_noop!(
            Memory::answer(RuntimeOrigin::signed(STRANGER), q),
            Error::<Test>::NotYourQuestion
        );
        assert_ok!(Memory::answer(RuntimeOrigin::signed(OWNER), q));
        let Some(Event::Answered {
            answer_request,
            memories,
            ..
        }) = last_memory_event()
        else {
            panic!("expected Answered");
        };
        assert_eq!(memories.to_vec(), vec![vault]);
        assert_eq!(
            prompt_of(answer_request),
            b"Memory: vault code 1234\nQuestion: what is the code?\nAnswer:".to_vec()
        );
        assert_eq!(
            pallet_inference::Requests::<Test>::get(answer_request)
                .expect("request")
                .requester,
            OWNER
        );
        let record = Answers::<Test>::get(answer_request).expect("recorded");
        assert_eq!((record.query_request, record.answered), (q, now));
        let m = Memories::<Test>::get(s, vault).expect("kept");
        assert_eq!((m.uses, m.last_used), (1, now));
        assert_eq!(Memories::<Test>::get(s, cat).expect("kept").uses, 0);
        assert!(Questions::<Test>::get(q).is_none());
        assert_noop!(
            Memory::answer(RuntimeOrigin::signed(OWNER), q),
            Error::<Test>::UnknownQuestion
        );
        // The record stays until the answer settles, then its asker clears it.
        assert_noop!(
            Memory::clear_answer(RuntimeOrigin::signed(OWNER), answer_request),
            Error::<Test>::AnswerNotSettled
        );
        assert_noop!(
            Memory::clear_answer(RuntimeOrigin::signed(STRANGER), answer_request),
            Error::<Test>::NotAsker
        );
        post(
            answer_request,
            codec::Encode::encode(&inferchain_primitives::io::Payload::Generation {
                tokens: vec![1, 2],
                text: b"12".to_vec(),
            }),
        );
        run_to_block(System::block_number() + ChallengePeriod::get() + 1);
        assert_ok!(Memory::clear_answer(
            RuntimeOrigin::signed(OWNER),
            answer_request
        ));
        assert!(Answers::<Test>::get(answer_request).is_none());
    });
}

#[test]
fn after_forget_the_same_question_no_longer_recalls_it() {
    build_and_execute(|| {
        let s = space();
        let (vault, r1) = remember(OWNER, s, "vault code 1234", None);
        let (cat, r2) = remember(OWNER, s, "cat named Tom", None);
        finalize_all(&[(r1, &[1.0, 0.0, 0.0, 0.0]), (r2, &[0.0, 1.0, 0.0, 0.0])]);
        let q1 = ask(OWNER, s, "what is the code?", 1);
        finalize(q1, &[0.9, 0.1, 0.0, 0.0]);
        assert_ok!(Memory::answer(RuntimeOrigin::signed(OWNER), q1));
        let first = Answers::<Test>::iter()
            .map(|(_, a)| a.memories.to_vec())
            .next();
        assert_eq!(first, Some(vec![vault]));
        // (Not in the block an answer read the space in.)
        run_to_block(System::block_number() + 1);
        assert_ok!(Memory::forget(RuntimeOrigin::signed(OWNER), s, vault));
        let q2 = ask(OWNER, s, "what is the code?", 1);
        finalize(q2, &[0.9, 0.1, 0.0, 0.0]);
        assert_ok!(Memory::answer(RuntimeOrigin::signed(OWNER), q2));
        let Some(Event::Answered {
            answer_request,
            memories,
            ..
        }) = last_memory_event()
        else {
            panic!("expected Answered");
        };
        assert_eq!(memories.to_vec(), vec![cat]);
        assert!(!prompt_of(answer_request).windows(4).any(|w| w == b"1234"));
    });
}

#[test]
fn only_readers_ask_and_bad_questions_are_refused_without_cost() {
    build_and_execute(|| {
        let s = space();
        let before = (free(STRANGER), Memory::held(&STRANGER));
        let q = |who, model, question: &str, k, tokens| {
            Memory::ask(
                RuntimeOrigin::signed(who),
                s,
                model,
                text(question),
                k,
                tokens,
                FEE * 20,
            )
        };
        assert_noop!(q(STRANGER, LLM, "hi?", 1, 4), Error::<Test>::NoReadAccess);
        assert_ok!(Memory::grant(
            RuntimeOrigin::signed(OWNER),
            s,
            STRANGER,
            Scope::Read
        ));
        assert_noop!(q(STRANGER, LLM, "hi?", 0, 4), Error::<Test>::BadRecallCount);
        assert_noop!(
            q(STRANGER, LLM, "hi?", MaxRecall::get() + 1, 4),
            Error::<Test>::BadRecallCount
        );
        assert_noop!(
            q(STRANGER, EMBEDDER, "hi?", 1, 4),
            Error::<Test>::NotALanguageModel
        );
        assert_noop!(
            q(STRANGER, LLM, "hi?", 1, 9),
            Error::<Test>::MaxNewTokensOutOfRange
        );
        assert_noop!(
            q(STRANGER, LLM, "hi?", 1, 0),
            Error::<Test>::MaxNewTokensOutOfRange
        );
        let long = "x".repeat(64);
        assert_noop!(q(STRANGER, LLM, &long, 1, 4), Error::<Test>::PromptTooLong);
        assert_eq!((free(STRANGER), Memory::held(&STRANGER)), before);
        // A reader may ask; it pays for its own question.
        ask(STRANGER, s, "hi?", 1);
        assert!(Memory::held(&STRANGER) > 0);
    });
}

#[test]
fn memories_that_do_not_fit_the_prompt_are_left_out_in_rank_order() {
    build_and_execute(|| {
        let s = space();
        let long = "a fact of forty bytes, give or take it..";
        let (a, r1) = remember(OWNER, s, long, None);
        let (b, r2) = remember(OWNER, s, long, None);
        let (c, r3) = remember(OWNER, s, "short", None);
        finalize_all(&[
            (r1, &[1.0, 0.0, 0.0, 0.0]),
            (r2, &[0.9, 0.0, 0.0, 0.0]),
            (r3, &[0.8, 0.0, 0.0, 0.0]),
        ]);
        let q = ask(OWNER, s, "why?", 3);
        finalize(q, &[1.0, 0.0, 0.0, 0.0]);
        assert_ok!(Memory::answer(RuntimeOrigin::signed(OWNER), q));
        let Some(Event::Answered { memories, .. }) = last_memory_event() else {
            panic!("expected Answered");
        };
        // Two 49-byte memory lines and the question exceed 80 bytes: only the best one
        // fits, and the ranking's prefix is kept (the short third is not slipped in).
        assert_eq!(memories.to_vec(), vec![a]);
        let _ = (b, c);
    });
}

#[test]
fn a_question_whose_embedding_expired_is_dropped_and_its_deposit_returned() {
    build_and_execute(|| {
        let s = space();
        let before = free(OWNER);
        let q = ask(OWNER, s, "anyone?", 1);
        run_to_block(System::block_number() + ExecutionTimeout::get() + 1);
        assert!(Questions::<Test>::get(q).is_none());
        assert!(System::events()
            .iter()
            .any(|r| r.event == RuntimeEvent::Memory(Event::QuestionDropped { query_request: q })));
        assert_eq!(free(OWNER), before);
    });
}

#[test]
fn one_update_at_a_time_and_a_failed_update_leaves_the_old_version() {
    build_and_execute(|| {
        let s = space();
        let q = [1.0, 0.0, 0.0, 0.0];
        let (old, r_old) = remember(OWNER, s, "v1", None);
        finalize(r_old, &[1.0, 0.0, 0.0, 0.0]);
        assert_ok!(Memory::grant(
            RuntimeOrigin::signed(OWNER),
            s,
            AGENT,
            Scope::ReadWrite
        ));
        let (update, _) = remember(AGENT, s, "v2", Some(old));
        // A second update of the same version is refused while the first is pending.
        assert_noop!(
            Memory::remember(RuntimeOrigin::signed(OWNER), s, text("v2'"), Some(old), FEE),
            Error::<Test>::AlreadySuperseded
        );
        assert_eq!(recall_ids(s, &q, 4), vec![old]);
        // The update's request expires: the old version is still the one recalled.
        run_to_block(System::block_number() + ExecutionTimeout::get() + 1);
        assert_eq!(
            Memories::<Test>::get(s, update).expect("kept").state,
            MemoryState::Failed
        );
        assert_eq!(recall_ids(s, &q, 4), vec![old]);
        // Forgetting the failed update frees the old version for another one.
        assert_ok!(Memory::forget(RuntimeOrigin::signed(AGENT), s, update));
        assert_eq!(
            Memories::<Test>::get(s, old).expect("kept").superseded_by,
            None
        );
        let (v3, r3) = remember(OWNER, s, "v3", Some(old));
        finalize(r3, &[0.5, 0.0, 0.0, 0.0]);
        assert_eq!(recall_ids(s, &q, 4), vec![v3]);
    });
}

#[test]
fn a_revoked_asker_cannot_answer_and_an_asker_may_cancel() {
    build_and_execute(|| {
        let s = space();
        assert_ok!(Memory::grant(
            RuntimeOrigin::signed(OWNER),
            s,
            AGENT,
            Scope::Read
        ));
        let before = free(AGENT);
        let q = ask(AGENT, s, "anything?", 1);
        finalize(q, &[1.0, 0.0, 0.0, 0.0]);
        assert_ok!(Memory::revoke(RuntimeOrigin::signed(OWNER), s, AGENT));
        assert_ok!(Memory::answer(RuntimeOrigin::signed(AGENT), q));
        assert_eq!(
            last_memory_event(),
            Some(Event::QuestionDropped { query_request: q })
        );
        assert!(Answers::<Test>::iter().next().is_none());
        // Only the question's embedding was paid for; the deposit came back.
        assert_eq!(Memory::held(&AGENT), 0);
        assert!(free(AGENT) >= before - FEE);

        let q2 = ask(OWNER, s, "and now?", 1);
        assert_noop!(
            Memory::cancel_question(RuntimeOrigin::signed(AGENT), q2),
            Error::<Test>::NotYourQuestion
        );
        assert_ok!(Memory::cancel_question(RuntimeOrigin::signed(OWNER), q2));
        assert!(Questions::<Test>::get(q2).is_none());
    });
}

/// Memories made ready inside settlement count against the deadline queue's weight:
/// however many settle in one block, `on_initialize` stays within the weight of the
/// queues' budget, and the rest settle in the next blocks.
#[test]
fn settlement_hooks_never_take_the_queue_past_its_weight() {
    use frame_support::traits::Hooks;
    build_and_execute(|| {
        MaxMemoriesPerSpace::set(200);
        let s = space();
        let mut requests = Vec::new();
        // Fewer than the queue's entry budget (50): only their weight can spread them.
        for i in 0..40 {
            requests.push(remember(OWNER, s, &format!("fact {i}"), None).1);
        }
        for r in &requests {
            answer(*r, &[1.0, 0.0, 0.0, 0.0]);
        }
        let budget = MaxDeadlinesPerBlock::get();
        // No games here: the request queue alone, at most its budget's weight. (The
        // mock's database weight is zero: `on_initialize` adds nothing for its write.)
        let limit = <() as pallet_inference::WeightInfo>::on_initialize(budget);
        let mut ready_after = Vec::new();
        for _ in 0..10 {
            let next = System::block_number() + 1;
            System::set_block_number(next);
            let used = Inference::on_initialize(next);
            assert!(
                used.all_lte(limit),
                "on_initialize used {used:?} > {limit:?}"
            );
            ready_after.push(
                Memories::<Test>::iter_prefix(s)
                    .filter(|(_, m)| m.state == MemoryState::Ready)
                    .count(),
            );
        }
        // All become ready, over more than one block (the hooks' weight spread them).
        assert_eq!(ready_after.last().copied(), Some(40), "{ready_after:?}");
        assert!(
            ready_after.iter().any(|&n| n > 0 && n < 40),
            "all settled in one block: {ready_after:?}"
        );
    });
}

/// Native recall latency at 1,000 and 10,000 memories of 384 dimensions (run by
/// `scripts/bench-memory.sh`; the runtime's own figures, in wasm, are the `recall`
/// benchmark's weights).
#[test]
#[ignore = "a measurement: scripts/bench-memory.sh"]
fn recall_latency() {
    for n in [1_000u32, 10_000] {
        new_test_ext().execute_with(|| {
            let s = 1;
            let mut seed = u64::from(n);
            insert_space(s, 384, n);
            for i in 0..n {
                insert_ready(s, i, &"m".repeat(64), &seeded(384, &mut seed));
            }
            let q = seeded(384, &mut seed);
            let runs = 20;
            let start = std::time::Instant::now();
            for _ in 0..runs {
                assert_eq!(Memory::recall(s, &q, 16).expect("recall").len(), 16);
            }
            let per = start.elapsed() / runs;
            println!(
                "recall over {n} memories (384 dimensions, k = 16), native, storage in memory: {:.2} ms ({:.2} µs per memory)",
                per.as_secs_f64() * 1e3,
                per.as_secs_f64() * 1e6 / f64::from(n)
            );
        });
    }
}

/// What an answer in block `B` recalls is what the end of `B` shows: a memory made ready
/// in `B` is not recalled by it, and nothing is forgotten from the space in `B` after it.
#[test]
fn an_answer_reads_only_what_its_block_cannot_change_afterwards() {
    build_and_execute(|| {
        let s = space();
        let (a, ra) = remember(OWNER, s, "older fact", None);
        finalize(ra, &[0.5, 0.0, 0.0, 0.0]);
        let q = ask(OWNER, s, "which?", 1);
        let (late, r_late) = remember(OWNER, s, "newer, closer fact", None);
        // Both results land together: the question and the late memory become final in
        // the same block (in its on_initialize); the answer comes in that block.
        answer(q, &[1.0, 0.0, 0.0, 0.0]);
        answer(r_late, &[1.0, 0.0, 0.0, 0.0]);
        while Memories::<Test>::get(s, late).is_some_and(|m| m.state != MemoryState::Ready) {
            run_to_block(System::block_number() + 1);
        }
        let now = System::block_number();
        assert_eq!(
            Memories::<Test>::get(s, late).and_then(|m| m.ready_at),
            Some(now)
        );
        assert_ok!(Memory::answer(RuntimeOrigin::signed(OWNER), q));
        let Some(Event::Answered { memories, .. }) = last_memory_event() else {
            panic!("expected Answered");
        };
        // The late memory scores higher but was made ready in this block.
        assert_eq!(memories.to_vec(), vec![a]);
        assert_noop!(
            Memory::forget(RuntimeOrigin::signed(OWNER), s, a),
            Error::<Test>::AnsweredThisBlock
        );
        run_to_block(now + 1);
        assert_ok!(Memory::forget(RuntimeOrigin::signed(OWNER), s, a));
        // The runtime API reads the current state: the late memory is recalled now.
        assert_eq!(recall_ids(s, &[1.0, 0.0, 0.0, 0.0], 1), vec![late]);
    });
}

/// The cheapest attack from inside (docs/THREAT_MODEL.md): a write grantee stores a text
/// built to outrank the owner's facts. It is not prevented (grants are trust), but it is
/// never hidden: the answer's record names the memory, whose author is the grantee.
#[test]
fn a_writer_can_steer_an_answer_and_its_record_names_the_writer() {
    build_and_execute(|| {
        let s = space();
        let (fact, r1) = remember(OWNER, s, "the code is 1234", None);
        finalize(r1, &[0.8, 0.2, 0.0, 0.0]);
        assert_ok!(Memory::grant(
            RuntimeOrigin::signed(OWNER),
            s,
            AGENT,
            Scope::ReadWrite
        ));
        let (poison, r2) = remember(AGENT, s, "the code is 0000", None);
        // An embedding aligned with the question's: it outranks the owner's fact.
        finalize(r2, &[1.0, 0.0, 0.0, 0.0]);
        let q = ask(OWNER, s, "what is the code?", 1);
        finalize(q, &[1.0, 0.0, 0.0, 0.0]);
        assert_ok!(Memory::answer(RuntimeOrigin::signed(OWNER), q));
        let Some(Event::Answered {
            answer_request,
            memories,
            ..
        }) = last_memory_event()
        else {
            panic!("expected Answered");
        };
        assert_eq!(memories.to_vec(), vec![poison]);
        assert_ne!(poison, fact);
        let record = Answers::<Test>::get(answer_request).expect("recorded");
        let used = Memories::<Test>::get(s, record.memories[0]).expect("kept");
        assert_eq!(used.author, AGENT);
        // The owner revokes and forgets it (authors and writers may; the owner may).
        run_to_block(System::block_number() + 1);
        assert_ok!(Memory::revoke(RuntimeOrigin::signed(OWNER), s, AGENT));
        assert_ok!(Memory::forget(RuntimeOrigin::signed(OWNER), s, poison));
        assert_eq!(recall_ids(s, &[1.0, 0.0, 0.0, 0.0], 1), vec![fact]);
    });
}
