//! Prints what the referee's costliest steps cost natively, as ratios to the step the
//! `prove_step` benchmark measures (`StepReferee::costliest_step`): the tokenizer step of
//! a text model on the most expensive text a request can carry, and the largest whole
//! row-wise steps. The weight of `prove_step` holds only while every ratio stays under 1.
//!
//! `cargo run --release -p inferchain-referee --example step_costs -- VOCAB_FILE`
//! (a vocabulary as the plan commits it: tokens in id order, each ended by `\n`; with
//! no argument, a synthetic 30,522-token one of the same size).

use codec::Encode;
use inferchain_primitives::{dispute::StepReferee, io::Payload};
use inferchain_referee::{wordpiece::WordPiece, KernelReferee, Step};
use std::time::Instant;

fn time(f: impl Fn()) -> f64 {
    f();
    let runs = 20;
    let start = Instant::now();
    for _ in 0..runs {
        f();
    }
    start.elapsed().as_secs_f64() / f64::from(runs)
}

fn main() {
    let vocab = match std::env::args().nth(1) {
        Some(path) => std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        None => (0..30_522u32)
            .flat_map(|i| format!("tok{i:05}x\n").into_bytes())
            .collect(),
    };
    let (step, operands) = KernelReferee::costliest_step();
    let refs: Vec<&[u8]> = operands.iter().map(Vec::as_slice).collect();
    let base = time(|| {
        KernelReferee::evaluate(&step, &refs).expect("evaluates");
    });
    println!("costliest_step (128^3 product): {:.2} ms", base * 1e3);

    // Every word 100 single-character pieces long: the most lookups a text can force.
    let word = "a".repeat(100);
    let text: String = std::iter::repeat_n(word.as_str(), 20)
        .collect::<Vec<_>>()
        .join(" ");
    let input = Payload::Text(text.into_bytes()).encode();
    let tokenize = Step::WordPiece(WordPiece {
        max_tokens: 128,
        cls: 2,
        sep: 3,
        unk: 1,
        pad: 0,
        specials: vec![0, 1, 2, 3],
        max_word_chars: 100,
        lowercase: true,
    })
    .encode();
    let t = time(|| {
        let _ = KernelReferee::evaluate(&tokenize, &[&input, &vocab]);
    });
    println!(
        "WordPiece ({} B of text, {} B of vocabulary): {:.2} ms = {:.2} x costliest_step",
        input.len(),
        vocab.len(),
        t * 1e3,
        t / base
    );

    let (rows, cols) = (128u32, 384u32);
    let x: Vec<u8> = (0..rows * cols)
        .flat_map(|i| ((i % 97) as f32 / 97.0 - 0.5).to_le_bytes())
        .collect();
    let row: Vec<u8> = (0..cols)
        .flat_map(|i| (i as f32 / 384.0).to_le_bytes())
        .collect();
    let norm = Step::LayerNormRows {
        rows,
        cols,
        eps: 1e-12f32.to_bits(),
    }
    .encode();
    let t = time(|| {
        KernelReferee::evaluate(&norm, &[&x, &row, &row]).expect("evaluates");
    });
    println!(
        "LayerNormRows 128 x 384: {:.2} ms = {:.2} x",
        t * 1e3,
        t / base
    );
    let mut ids = 128u32.to_le_bytes().to_vec();
    ids.extend((0..128u32).flat_map(|i| i.to_le_bytes()));
    let mean = Step::MeanRows {
        tokens: rows,
        hidden: cols,
    }
    .encode();
    let t = time(|| {
        KernelReferee::evaluate(&mean, &[&x, &ids]).expect("evaluates");
    });
    println!("MeanRows 128 x 384: {:.2} ms = {:.2} x", t * 1e3, t / base);
    let permute = Step::Permute {
        dims: vec![128, 12, 32],
        perm: vec![1, 2, 0],
    }
    .encode();
    let t = time(|| {
        KernelReferee::evaluate(&permute, &[&x]).expect("evaluates");
    });
    println!(
        "Permute 128 x 12 x 32: {:.2} ms = {:.2} x",
        t * 1e3,
        t / base
    );
}
