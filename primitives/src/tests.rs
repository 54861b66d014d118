#![allow(clippy::unwrap_used)]

use crate::{
    compare::ComparisonRule,
    io::{validate_encoded, DType, Dim, IoError, IoSpec, Payload, Tensor, TensorSpec},
};
use codec::Encode;

fn spec_f32(shape: &[Dim]) -> IoSpec {
    IoSpec::Tensors(
        vec![TensorSpec {
            name: b"x".to_vec().try_into().unwrap(),
            dtype: DType::F32,
            shape: shape.to_vec().try_into().unwrap(),
            allow_non_finite: false,
        }]
        .try_into()
        .unwrap(),
    )
}

fn encode(t: Tensor) -> Vec<u8> {
    Payload::Tensors(vec![t]).encode()
}

#[test]
fn well_formed_tensor_passes() {
    let spec = spec_f32(&[Dim::Fixed(1), Dim::Dynamic { max: 4 }]);
    let bytes = encode(Tensor::from_f32(vec![1, 3], &[1.0, 2.0, 3.0]));
    assert!(validate_encoded(&bytes, &spec).is_ok());
}

#[test]
fn each_mistake_has_its_own_error() {
    let spec = spec_f32(&[Dim::Fixed(1), Dim::Dynamic { max: 4 }]);
    let check = |t: Tensor| validate_encoded(&encode(t), &spec).unwrap_err();

    assert_eq!(
        check(Tensor::from_i64(vec![1, 2], &[1, 2])),
        IoError::DType { index: 0 }
    );
    assert_eq!(
        check(Tensor::from_f32(vec![2], &[1.0, 2.0])),
        IoError::Rank {
            index: 0,
            expected: 2,
            found: 1
        }
    );
    assert_eq!(
        check(Tensor::from_f32(vec![1, 5], &[0.0; 5])),
        IoError::Shape {
            index: 0,
            axis: 1,
            size: 5
        }
    );
    assert_eq!(
        check(Tensor::from_f32(vec![2, 1], &[0.0; 2])),
        IoError::Shape {
            index: 0,
            axis: 0,
            size: 2
        }
    );
    let mut short = Tensor::from_f32(vec![1, 2], &[1.0, 2.0]);
    short.data.pop();
    assert_eq!(check(short), IoError::DataLength { index: 0 });
    assert_eq!(
        check(Tensor::from_f32(vec![1, 2], &[1.0, f32::NAN])),
        IoError::NonFinite { index: 0 }
    );
    assert_eq!(
        check(Tensor::from_f32(vec![1, 1], &[f32::INFINITY])),
        IoError::NonFinite { index: 0 }
    );

    assert_eq!(
        validate_encoded(&[0xff, 0x01], &spec).unwrap_err(),
        IoError::Malformed
    );
    let mut trailing = encode(Tensor::from_f32(vec![1, 1], &[1.0]));
    trailing.push(0);
    assert_eq!(
        validate_encoded(&trailing, &spec).unwrap_err(),
        IoError::Malformed
    );
    assert_eq!(
        validate_encoded(&Payload::Text(b"hi".to_vec()).encode(), &spec).unwrap_err(),
        IoError::KindMismatch
    );
    assert_eq!(
        validate_encoded(&Payload::Tensors(vec![]).encode(), &spec).unwrap_err(),
        IoError::TensorCount {
            expected: 1,
            found: 0
        }
    );
}

#[test]
fn text_is_checked_for_length_and_utf8() {
    let spec = IoSpec::Text { max_bytes: 5 };
    assert!(validate_encoded(&Payload::Text(b"hello".to_vec()).encode(), &spec).is_ok());
    assert_eq!(
        validate_encoded(&Payload::Text(b"hello!".to_vec()).encode(), &spec).unwrap_err(),
        IoError::TextTooLong { max: 5, found: 6 }
    );
    assert_eq!(
        validate_encoded(&Payload::Text(vec![0xc3, 0x28]).encode(), &spec).unwrap_err(),
        IoError::InvalidUtf8
    );
}

#[test]
fn exact_rule_compares_bytes() {
    let a = encode(Tensor::from_f32(vec![2], &[1.0, 2.0]));
    let b = encode(Tensor::from_f32(vec![2], &[1.0, 2.000_000_2]));
    assert!(ComparisonRule::Exact.matches(&a, &a));
    assert!(!ComparisonRule::Exact.matches(&a, &b));
}

#[test]
fn tolerance_rule_bounds_the_difference() {
    let rule = ComparisonRule::Tolerance {
        abs_ppb: 1_000,
        rel_ppb: 1_000,
    }; // 1e-6 each
    let reference = encode(Tensor::from_f32(vec![2], &[1.0, 100.0]));
    let close = encode(Tensor::from_f32(vec![2], &[1.000_001, 100.000_05]));
    let far = encode(Tensor::from_f32(vec![2], &[1.001, 100.0]));
    assert!(rule.matches(&close, &reference));
    assert!(!rule.matches(&far, &reference));

    // Shapes and dtypes never get a tolerance.
    let reshaped = encode(Tensor::from_f32(vec![1, 2], &[1.0, 100.0]));
    assert!(!rule.matches(&reshaped, &reference));
    // NaN matches nothing, itself included.
    let nan = encode(Tensor::from_f32(vec![2], &[f32::NAN, 100.0]));
    let nan2 = {
        let mut t = Tensor::from_f32(vec![2], &[f32::NAN, 100.0]);
        t.data[0] ^= 1; // another NaN payload, so the byte fast path does not apply
        encode(t)
    };
    assert!(!rule.matches(&nan, &nan2));
    // Garbage never matches.
    assert!(!rule.matches(&[1, 2, 3], &reference));
}

#[test]
fn a_manifest_id_commits_to_format_names_sizes_and_hashes_in_any_order() {
    use crate::model::{Manifest, ManifestFile, ModelFormat};
    let file = |name: &str, byte: u8| ManifestFile {
        name: name.as_bytes().to_vec(),
        size: 10,
        blake2_256: crate::blake2_256(&[byte; 10]),
    };
    let a = Manifest::new(
        ModelFormat::BertEmbedding,
        vec![file("b.json", 1), file("a.bin", 2)],
    );
    let b = Manifest::new(
        ModelFormat::BertEmbedding,
        vec![file("a.bin", 2), file("b.json", 1)],
    );
    assert_eq!(a, b);
    assert_eq!(a.id(), b.id());
    assert_ne!(
        a.id(),
        Manifest::new(ModelFormat::Onnx, a.files.clone()).id()
    );
    assert_ne!(
        a.id(),
        Manifest::new(
            ModelFormat::BertEmbedding,
            vec![file("a.bin", 2), file("b.json", 3)]
        )
        .id()
    );
    let mut resized = a.clone();
    resized.files[0].size = 11;
    assert_ne!(a.id(), resized.id());
}

#[test]
fn prompts_and_generations_are_checked_against_their_caps() {
    let prompt_spec = IoSpec::Prompt {
        max_bytes: 8,
        max_new_tokens: 4,
    };
    let prompt = |text: &[u8], n| Payload::Prompt {
        text: text.to_vec(),
        max_new_tokens: n,
    };
    assert_eq!(prompt(b"hello", 4).validate(&prompt_spec), Ok(()));
    assert_eq!(
        prompt(b"hello", 0).validate(&prompt_spec),
        Err(IoError::MaxNewTokens { max: 4, found: 0 })
    );
    assert_eq!(
        prompt(b"hello", 5).validate(&prompt_spec),
        Err(IoError::MaxNewTokens { max: 4, found: 5 })
    );
    assert_eq!(
        prompt(b"too long!", 1).validate(&prompt_spec),
        Err(IoError::TextTooLong { max: 8, found: 9 })
    );
    assert_eq!(
        prompt(&[0xc3], 1).validate(&prompt_spec),
        Err(IoError::InvalidUtf8)
    );
    assert_eq!(
        Payload::Text(b"hi".to_vec()).validate(&prompt_spec),
        Err(IoError::KindMismatch)
    );

    let out_spec = IoSpec::Generation {
        max_new_tokens: 2,
        max_text_bytes: 4,
    };
    let generation = |tokens: &[u32], text: &[u8]| Payload::Generation {
        tokens: tokens.to_vec(),
        text: text.to_vec(),
    };
    assert_eq!(generation(&[1, 2], b"ab").validate(&out_spec), Ok(()));
    assert_eq!(
        generation(&[1, 2, 3], b"ab").validate(&out_spec),
        Err(IoError::TooManyTokens { max: 2, found: 3 })
    );
    assert_eq!(
        generation(&[1], b"abcde").validate(&out_spec),
        Err(IoError::TextTooLong { max: 4, found: 5 })
    );
    // Round trip through the canonical encoding, trailing bytes refused.
    let bytes = prompt(b"hello", 4).encode();
    assert_eq!(
        validate_encoded(&bytes, &prompt_spec),
        Ok(prompt(b"hello", 4))
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        validate_encoded(&longer, &prompt_spec),
        Err(IoError::Malformed)
    );
}

#[test]
fn a_prompt_is_priced_per_byte_and_new_token() {
    let prompt = Payload::Prompt {
        text: b"To be".to_vec(),
        max_new_tokens: 7,
    };
    assert_eq!(prompt.fee_units(), 12);
    assert_eq!(Payload::Text(vec![b'a'; 100]).fee_units(), 1);
    assert_eq!(Payload::Tensors(vec![]).fee_units(), 1);
    let huge = Payload::Prompt {
        text: vec![],
        max_new_tokens: u32::MAX,
    };
    assert_eq!(huge.fee_units(), u32::MAX, "saturates");
}
