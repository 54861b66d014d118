//! The referee's decoder steps (`referee/src/decoder.rs`, wired by `engine/src/llm/plan.rs`)
//! against the engine's language model on `models/tiny-llm`: the plan's logits are the
//! engine's bit for bit on every real row, its greedy choices are the engine's, every
//! step has a referee path, and every chunk the element walk can open recomputes to the
//! trace's bytes.

#![allow(clippy::unwrap_used)]

use codec::{Decode, Encode};
use inferchain_engine::{
    dispute_plan::DisputePlan,
    llm::{plan::decoder_plan, LlmModel},
    LoadedModel, ModelStore,
};
use inferchain_primitives::{
    dispute::{Read, RefereePath, StepReferee},
    io::{Payload, Tensor},
    tensor_tree::CHUNK_BYTES,
};
use inferchain_referee::{KernelReferee, Step};
use std::path::PathBuf;

fn files() -> inferchain_engine::store::VerifiedFiles {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-llm");
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("inferchain-llm-plan-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let store = ModelStore::open(&root).unwrap();
    let manifest = store.import(&dir, None, &mut |_| {}).unwrap();
    store.read_verified(&manifest.id(), &mut |_| {}).unwrap()
}

/// An engine over a fresh store holding tiny-llm: the engine, the model id, its plan's
/// commitments, and the store's folder (to remove).
fn engine_with_tiny_llm(
    tag: &str,
) -> (
    inferchain_engine::Engine,
    inferchain_primitives::ModelId,
    inferchain_primitives::dispute::ModelCommitments,
    PathBuf,
) {
    let root = std::env::temp_dir().join(format!("inferchain-llm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let store = ModelStore::open(&root).unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-llm");
    let id = store.import(&dir, None, &mut |_| {}).unwrap().id();
    let plan = DisputePlan::compile(&store.read_verified(&id, &mut |_| {}).unwrap()).unwrap();
    let commitments = plan.commitments();
    (
        inferchain_engine::Engine::new(store, 1 << 30),
        id,
        commitments,
        root,
    )
}

fn operands<'a>(
    plan: &'a DisputePlan,
    trace: &'a [Vec<u8>],
    input: &'a [u8],
    i: usize,
) -> Vec<&'a [u8]> {
    plan.steps[i]
        .reads
        .iter()
        .map(|r| match *r {
            Read::Input => input,
            Read::Output => unreachable!("the decoder plan does not read the output"),
            Read::Step { index, .. } => trace[index as usize].as_slice(),
            Read::Weight(w) => plan.weights[w as usize].as_slice(),
        })
        .collect()
}

#[test]
fn the_plan_computes_the_engines_logits_and_every_chunk_recomputes() {
    let model = LlmModel::load(&mut files()).unwrap();
    let rows = 256;
    let (plan, steps) = decoder_plan(&files(), rows).unwrap();
    let prompt = model
        .tokenize("ROMEO.\nBut soft, what light through yonder")
        .unwrap();
    let generated = model.generate(&prompt, 20, &mut |_| {}).unwrap();
    let mut ids = prompt.clone();
    ids.extend(&generated.tokens);
    let n = ids.len();
    let mut padded: Vec<i32> = ids.iter().map(|&i| i as i32).collect();
    padded.resize(rows, 0);
    let data = padded.iter().flat_map(|v| v.to_le_bytes()).collect();
    let input = Payload::Tensors(vec![Tensor {
        dtype: inferchain_primitives::io::DType::I32,
        shape: vec![1, rows as u32],
        data,
    }])
    .encode();
    let trace = plan.trace(&input).unwrap();
    assert_eq!(trace.len(), plan.steps.len());

    // The logits of the real rows, bit for bit.
    let Read::Step {
        index: logits_at, ..
    } = steps.logits
    else {
        panic!()
    };
    let Read::Step {
        index: choices_at, ..
    } = steps.choices
    else {
        panic!()
    };
    let engine = model.logits(&ids, 0).unwrap();
    let vocab = model.config().vocab_size;
    let plan_logits: Vec<u32> = trace[logits_at as usize]
        .chunks_exact(4)
        .take(n * vocab)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let engine_bits: Vec<u32> = engine.iter().map(|v| v.to_bits()).collect();
    assert_eq!(
        plan_logits, engine_bits,
        "the plan's logits are the engine's"
    );
    // The greedy choices reproduce the generation (row t predicts token t + 1).
    let choices: Vec<u32> = trace[choices_at as usize]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(
        choices[prompt.len() - 1..n - 1],
        generated.tokens[..],
        "the argmax rows are the generated tokens"
    );

    // Every step: the referee settles it whole (and agrees) or by chunks, and each
    // chunk of the new steps (sampled: first, middle, last) recomputes to the trace's.
    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let ops = operands(&plan, &trace, &input, i);
        let kind = match Step::decode(&mut &step.op[..]).ok() {
            Some(Step::GatherRows { .. }) => "GatherRows",
            Some(Step::RmsNormRows { .. }) => "RmsNormRows",
            Some(Step::RopeRows { .. }) => "RopeRows",
            Some(Step::CausalAttention { .. }) => "CausalAttention",
            Some(Step::ArgmaxRows { .. }) => "ArgmaxRows",
            _ => "other",
        };
        match KernelReferee::path(&step.op, step.output_bytes) {
            RefereePath::Whole => {
                if kind != "other" {
                    assert_eq!(
                        KernelReferee::evaluate(&step.op, &ops).unwrap(),
                        trace[i],
                        "step {i} ({kind}) whole"
                    );
                    *checked.entry(kind).or_default() += 1;
                }
            }
            RefereePath::Elements => {
                let chunks = step.output_bytes.div_ceil(CHUNK_BYTES as u32);
                for chunk in [0, chunks / 2, chunks - 1, (n as u32 * 3) % chunks] {
                    let mut reads =
                        KernelReferee::element_reads(&step.op, step.output_bytes, chunk).unwrap();
                    let slice = |r: &inferchain_primitives::dispute::ElementRead| {
                        &ops[r.operand as usize][r.start as usize..(r.start + r.len) as usize]
                    };
                    let direct: Vec<&[u8]> = reads.iter().map(slice).collect();
                    let indirect =
                        KernelReferee::indirect_reads(&step.op, step.output_bytes, chunk, &direct)
                            .unwrap();
                    reads.extend(indirect);
                    let slices: Vec<&[u8]> = reads.iter().map(slice).collect();
                    let got =
                        KernelReferee::evaluate_chunk(&step.op, step.output_bytes, chunk, &slices)
                            .unwrap();
                    let start = chunk as usize * CHUNK_BYTES;
                    let end = (start + CHUNK_BYTES).min(trace[i].len());
                    assert_eq!(got, trace[i][start..end], "step {i} ({kind}) chunk {chunk}");
                }
                if kind != "other" {
                    *checked.entry(kind).or_default() += 1;
                }
            }
            RefereePath::Neither => panic!("step {i} ({kind}) cannot be refereed"),
        }
    }
    eprintln!("{} steps; new kinds checked: {checked:?}", plan.steps.len());
    for kind in [
        "GatherRows",
        "RmsNormRows",
        "RopeRows",
        "CausalAttention",
        "ArgmaxRows",
    ] {
        assert!(checked.contains_key(kind), "{kind} was checked");
    }
}

/// The whole generation plan: an honest claim traces to itself (so an executor's trace
/// ends in its posted output), and a claim with one wrong token traces to the witness —
/// the claim cut there with the greedy token in its place — which is what a watcher
/// posts when it opens the game.
#[test]
fn the_generation_plan_ends_in_an_honest_claim_or_a_witness_of_a_false_one() {
    let files = files();
    let plan = DisputePlan::compile(&files).unwrap();
    assert!(plan.reads_output());
    let model = LlmModel::load(&mut self::files()).unwrap();
    let input = Payload::Prompt {
        text: b"KING.\nMy lord, ".to_vec(),
        max_new_tokens: 24,
    }
    .encode();
    let engine = inferchain_engine::LoadedModel::Llm(Box::new(model));
    let Ok(payload) = Payload::decode_canonical(&input) else {
        panic!()
    };
    let honest = engine.run(&payload).unwrap();
    let honest_bytes = honest.encode();
    let trace = plan.trace_over(&input, &honest_bytes, None).unwrap();
    assert_eq!(
        trace.last().unwrap(),
        &honest_bytes,
        "an honest claim is its own output"
    );
    plan.check_against_engine(&engine, &input, &trace).unwrap();

    let Payload::Generation { tokens, .. } = honest else {
        panic!()
    };
    let mut wrong = tokens.clone();
    wrong[3] = (wrong[3] + 1) % 2048;
    let LoadedModel::Llm(m) = &engine else {
        panic!()
    };
    let claim = Payload::Generation {
        text: m.decode(&wrong).unwrap().into_bytes(),
        tokens: wrong,
    }
    .encode();
    let trace = plan.trace_over(&input, &claim, None).unwrap();
    let witness = Payload::decode_canonical(trace.last().unwrap()).unwrap();
    assert_eq!(
        witness,
        Payload::Generation {
            tokens: tokens[..4].to_vec(),
            text: m.decode(&tokens[..4]).unwrap().into_bytes(),
        },
        "the witness: the claim cut at its wrong token, the greedy one in its place"
    );
    // Junk ids (outside the vocabulary) trace like any other false claim.
    let junk = Payload::Generation {
        tokens: vec![u32::MAX, 7],
        text: Vec::new(),
    }
    .encode();
    let junk_trace = plan.trace_over(&input, &junk, None).unwrap();
    assert_eq!(
        Payload::decode_canonical(junk_trace.last().unwrap()).unwrap(),
        Payload::Generation {
            tokens: tokens[..1].to_vec(),
            text: m.decode(&tokens[..1]).unwrap().into_bytes(),
        },
        "the witness of a junk claim: its first greedy token"
    );
    // Every step of the generation plan has a referee path, and the steps that read
    // the posted output are refereed whole and agree with the trace.
    for (i, step) in plan.steps.iter().enumerate() {
        if step.reads.contains(&Read::Output) {
            assert_eq!(
                KernelReferee::path(&step.op, step.output_bytes),
                RefereePath::Whole
            );
            let ops: Vec<&[u8]> = step
                .reads
                .iter()
                .map(|r| match *r {
                    Read::Input => input.as_slice(),
                    Read::Output => claim.as_slice(),
                    Read::Step { index, .. } => trace[index as usize].as_slice(),
                    Read::Weight(w) => plan.weights[w as usize].as_slice(),
                })
                .collect();
            assert_eq!(
                KernelReferee::evaluate(&step.op, &ops).unwrap(),
                trace[i],
                "step {i}"
            );
        }
    }
    eprintln!(
        "generation plan: {} steps, {} weights",
        plan.steps.len(),
        plan.weights.len()
    );
}

/// The game's decision on a false generation, as the pallet makes it: the executor posts
/// a claim with one wrong token and a trace that ends in it; the watcher traces the same
/// plan over that claim (`TraceRun::Against`) and ends in the witness. The traces first
/// differ at `GreedyCheck`; its step proof (the posted output read as `Read::Output`)
/// opens against the commitments and the referee's output is the witness, not the claim:
/// the executor is wrong.
#[test]
fn a_false_generation_loses_its_game_at_the_greedy_check() {
    use inferchain_primitives::{
        dispute::{StepProof, TraceCommitment},
        host::{TraceAnswer, TraceAsk, TraceRun},
        tensor_tree::tensor_leaf,
        trace_tree::TraceTree,
    };
    let (engine, id, commitments, root) = engine_with_tiny_llm("game");
    let input = Payload::Prompt {
        text: b"To be, or not to be".to_vec(),
        max_new_tokens: 16,
    }
    .encode();

    // The honest executor's run ends in the generation; a watcher against it agrees.
    let honest = engine
        .traced_run(&id, &input, &commitments, TraceRun::Honest)
        .unwrap();
    let posted = honest.outputs().last().unwrap().clone();
    let watcher = engine
        .traced_run(&id, &input, &commitments, TraceRun::Against(posted.clone()))
        .unwrap();
    assert_eq!(
        watcher.outputs().last(),
        Some(&posted),
        "a right claim: no game"
    );
    assert_eq!(honest.tree().commitment(), watcher.tree().commitment());

    // A false claim: one token changed.
    let Ok(Payload::Generation { mut tokens, .. }) = Payload::decode_canonical(&posted) else {
        panic!()
    };
    tokens[5] = (tokens[5] + 3) % 2048;
    let model = LlmModel::load(&mut files()).unwrap();
    let claim = Payload::Generation {
        text: model.decode(&tokens).unwrap().into_bytes(),
        tokens,
    }
    .encode();
    let watcher = engine
        .traced_run(&id, &input, &commitments, TraceRun::Against(claim.clone()))
        .unwrap();
    let witness = watcher.outputs().last().unwrap().clone();
    assert_ne!(witness, claim);
    // The executor computed honestly over its claim but ends its trace in the claim.
    let mut lying = watcher.outputs().to_vec();
    *lying.last_mut().unwrap() = claim.clone();
    let lying_tree = TraceTree::from_outputs(&lying);
    let first_difference = lying
        .iter()
        .zip(watcher.outputs())
        .position(|(a, b)| a != b)
        .unwrap();
    assert_eq!(
        first_difference,
        commitments.steps as usize - 1,
        "they differ at GreedyCheck only"
    );

    // The watcher's step proof of that step, as the host serves it.
    let TraceAnswer::Proof(bytes) = watcher.answer(TraceAsk::Proof(first_difference as u32)) else {
        panic!("no proof")
    };
    let proof = StepProof::decode(&mut &bytes[..]).unwrap();
    let trace: TraceCommitment = watcher.tree().commitment();
    let (op, operands) = proof
        .open_with_output(
            &commitments,
            &trace,
            first_difference as u32,
            &input,
            &claim,
        )
        .expect("the proof opens against the posted output");
    let refereed = KernelReferee::evaluate(op, &operands).unwrap();
    assert_eq!(refereed, witness);
    assert_ne!(
        tensor_leaf(&refereed),
        tensor_leaf(&claim),
        "the executor's leaf is not the referee's: it loses"
    );
    assert_ne!(lying_tree.commitment(), trace);
    let _ = std::fs::remove_dir_all(root);
}

/// The prompt `node/tests/inference_dev.rs` requests from an executor started with
/// `--executor-fault wrong-output`: with the plan's middle step corrupted, the posted
/// output is not the greedy generation, so the watchers open a game (a fault that left
/// the output unchanged would leave that test waiting for a game that never comes).
pub const FAULT_PROMPT: &str = "ROMEO.\nBut soft, what light";

#[test]
fn the_wrong_output_fault_posts_a_false_generation_for_the_node_tests_prompt() {
    use inferchain_primitives::host::TraceRun;
    let (engine, id, commitments, root) = engine_with_tiny_llm("fault");
    let input = Payload::Prompt {
        text: FAULT_PROMPT.as_bytes().to_vec(),
        max_new_tokens: 24,
    }
    .encode();
    let honest = engine
        .traced_run(&id, &input, &commitments, TraceRun::Honest)
        .unwrap();
    let step = commitments.steps / 2;
    let faulty = engine
        .traced_run(&id, &input, &commitments, TraceRun::Corrupted { step })
        .unwrap();
    let posted = faulty.outputs().last().unwrap();
    assert_ne!(posted, honest.outputs().last().unwrap());
    let watcher = engine
        .traced_run(&id, &input, &commitments, TraceRun::Against(posted.clone()))
        .unwrap();
    assert_ne!(
        watcher.outputs().last().unwrap(),
        posted,
        "the watcher's witness differs"
    );
    let _ = std::fs::remove_dir_all(root);
}
