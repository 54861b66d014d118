//! The dispute plan of all-MiniLM-L6-v2: the canonical tokenizer agrees with Hugging
//! Face `tokenizers`; the padded plan's run ends in exactly the engine's embedding for
//! short, long and truncated texts; the fast-kernel products are the referee's bits;
//! every step is settled whole within the caps or chunk by chunk (the embedding's gather
//! included), each proof opening against the commitments and recomputing the committed
//! leaf.

mod plan_proofs;

use codec::Encode;
use inferchain_engine::{
    bert::BertEmbedder, dispute_plan::DisputePlan, plan_kernels, store::VerifiedFiles, LoadedModel,
    ModelStore,
};
use inferchain_primitives::{
    dispute::{RefereePath, StepReferee},
    io::Payload,
    model::ModelFormat,
    tensor_tree::{chunk_count, tensor_leaf},
};
use inferchain_referee::{KernelReferee, Step};
use std::{path::PathBuf, sync::OnceLock};

fn cache() -> PathBuf {
    std::env::var_os("INFERCHAIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/inferchain")
        })
}

/// MiniLM's verified files, its loaded model and its plan, built once for every test.
fn minilm() -> &'static (LoadedModel, DisputePlan) {
    static MODEL: OnceLock<(LoadedModel, DisputePlan)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = cache().join("models/all-MiniLM-L6-v2");
        assert!(
            dir.join("model.safetensors").is_file(),
            "{} missing: run scripts/setup.sh",
            dir.display()
        );
        let tmp = std::env::temp_dir().join(format!("inferchain-bert-plan-{}", std::process::id()));
        let store = ModelStore::open(&tmp).expect("store");
        let manifest = store
            .import(&dir, Some(ModelFormat::BertEmbedding), &mut |_| {})
            .expect("import");
        let files = || -> VerifiedFiles {
            store
                .read_verified(&manifest.id(), &mut |_| {})
                .expect("verified")
        };
        let plan = DisputePlan::compile_bert(&files()).expect("MiniLM compiles");
        let model = BertEmbedder::load(&mut files()).expect("loads");
        let _ = std::fs::remove_dir_all(&tmp);
        (LoadedModel::Bert(Box::new(model)), plan)
    })
}

fn text(t: &str) -> Vec<u8> {
    Payload::Text(t.as_bytes().to_vec()).encode()
}

#[test]
fn the_canonical_tokenizer_is_the_tokenizers_one() {
    let (LoadedModel::Bert(model), _) = minilm() else {
        panic!("MiniLM is a BERT model")
    };
    assert!(model.has_canonical_tokenizer());
    let long_word = "pneumonoultramicroscopicsilicovolcanoconiosis".repeat(3);
    let sentences = [
        "Verifiable inference on a blockchain.",
        "Hello, world!",
        "Café déjà vu: naïve résumé (accents are stripped). ÀÉÎÕÜ ñ ç ß ø å",
        "Tabs\tand\nnewlines\r\nand  double   spaces",
        "Quotes “like these”, dashes — and – ellipses… ¿Qué? ¡Sí!",
        "中文字符和日本語のテキスト, 한국어 텍스트",
        "Emoji 🚀🔥 and symbols © ® ™ € £ ¥ § ¶ °",
        "Literal [CLS] and [SEP] and [MASK] and [unk] and [PAD]",
        "Control\u{7}chars\u{200b}zero\u{feff}width and soft\u{ad}hyphen",
        "Ελληνικά κείμενα με τόνους, русский текст, עברית, العربية",
        "numbers 3.14159 and 1,000,000 and e-mail@example.com http://x.io/a?b=c",
        &long_word,
        "",
        "   ",
    ];
    for s in sentences {
        assert_eq!(
            model.tokenize(s).expect("canonical"),
            model.tokenize_with_tokenizers(s).expect("tokenizers"),
            "tokens of {s:?}"
        );
    }
    // Truncated at 128 with [SEP] kept, as `tokenizers` truncates.
    let long = "word ".repeat(300);
    let ids = model.tokenize(&long).expect("canonical");
    assert_eq!(ids.len(), 128);
    assert_eq!(
        ids,
        model.tokenize_with_tokenizers(&long).expect("tokenizers")
    );
}

#[test]
fn the_minilm_plan_reproduces_the_engine() {
    let (model, plan) = minilm();
    // WordPiece, Embed, LayerNorm; 18 steps per layer; mean, L2, output.
    assert_eq!(plan.steps.len(), 3 + 6 * 18 + 3);
    eprintln!(
        "all-MiniLM-L6-v2 dispute commitments: {:?}",
        plan.commitments()
    );
    for t in [
        "Verifiable inference on a blockchain.",
        "A",
        "Café déjà vu: naïve résumé",
        &"a rather long sentence that goes on ".repeat(20),
    ] {
        plan.run(model, &text(t))
            .unwrap_or_else(|e| panic!("{t:?}: {e}"));
    }
}

#[test]
fn every_step_of_a_minilm_trace_is_refereed() {
    let (_, plan) = minilm();
    let commitments = plan.commitments();
    let input = text("The referee recomputes one step.");
    let outputs = plan.trace(&input).expect("runs");
    let trace = plan_proofs::trace_of(&outputs);
    let mut whole = 0;
    let mut chunks_proven = 0;
    for (i, step) in plan.steps.iter().enumerate() {
        assert_eq!(step.output_bytes as usize, outputs[i].len(), "step {i}");
        match KernelReferee::path(&step.op, step.output_bytes) {
            RefereePath::Whole => {
                let proof = plan.proof(&input, &outputs, i).expect("a proof");
                let (op, operands) = proof
                    .open(&commitments, &trace, i as u32, &input)
                    .expect("opens");
                let out = KernelReferee::evaluate(op, &operands)
                    .unwrap_or_else(|e| panic!("step {i} within the caps: {e:?}"));
                assert_eq!(tensor_leaf(&out), tensor_leaf(&outputs[i]), "step {i}");
                whole += 1;
            }
            RefereePath::Elements => {
                let count = chunk_count(step.output_bytes);
                // The gather's first and last chunks; a middle one of every other step
                // (each proof hashes its operand tensors whole: seconds for the word table).
                let embed = matches!(
                    <Step as codec::Decode>::decode(&mut &step.op[..]),
                    Ok(Step::Embed { .. })
                );
                let picks = if embed {
                    vec![0, count / 2 + 3, count - 1]
                } else {
                    vec![count / 2 + 3]
                };
                for chunk in picks {
                    plan_proofs::assert_chunk_proves(plan, &input, &outputs, i, chunk);
                    chunks_proven += 1;
                }
            }
            RefereePath::Neither => panic!("step {i} cannot be refereed"),
        }
    }
    eprintln!("{whole} steps proven whole, {chunks_proven} chunks");
    assert!(whole > 30 && chunks_proven > 60);
}

#[test]
fn fast_products_are_the_referees_bits() {
    let (_, plan) = minilm();
    let input = text("Fast kernels, same bits.");
    let outputs = plan.trace(&input).expect("runs");
    // The first layer's products: Q, K, V, scores, context, attention output, and the
    // two feed-forward ones.
    let mut checked = 0;
    for (i, step) in plan.steps.iter().enumerate().take(3 + 18) {
        let op = <Step as codec::Decode>::decode(&mut &step.op[..]).ok();
        if !matches!(op, Some(Step::GemmBt { .. } | Step::BatchGemmBt { .. })) {
            continue;
        }
        let operands: Vec<&[u8]> = step
            .reads
            .iter()
            .map(|r| match *r {
                inferchain_primitives::dispute::Read::Step { index, .. } => {
                    outputs[index as usize].as_slice()
                }
                inferchain_primitives::dispute::Read::Weight(w) => {
                    plan.weights[w as usize].as_slice()
                }
                inferchain_primitives::dispute::Read::Input => input.as_slice(),
                inferchain_primitives::dispute::Read::Output => {
                    unreachable!("BERT plans do not read it")
                }
            })
            .collect();
        let fast = plan_kernels::fast_step(&step.op, &operands).expect("a product");
        let scalar = inferchain_referee::evaluate_uncapped(&step.op, &operands).expect("evaluates");
        assert!(fast == scalar, "step {i}: fast and scalar products differ");
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn a_corrupted_step_changes_its_leaf_and_every_later_one_it_feeds() {
    let (_, plan) = minilm();
    let input = text("Corrupt the middle of the model.");
    let honest = plan.trace(&input).expect("runs");
    let middle = plan.steps.len() / 2;
    let bad = plan.trace_corrupting(&input, Some(middle)).expect("runs");
    assert_eq!(honest[..middle], bad[..middle]);
    assert_ne!(honest[middle], bad[middle]);
    assert_ne!(honest.last(), bad.last(), "the output changes too");
}
