//! `Einsum` (opsets 12, 28) on f32 and f64: any number of operands, explicit or implicit output,
//! ellipses, repeated letters (diagonals), letters summed away.
//!
//! Its numerics are defined by the order of these steps, each on the kernels:
//! 1. per operand, a letter repeated within it takes the diagonal (a copy);
//! 2. per operand, letters no other operand and not the output name are summed away
//!    (the kernels' `sum`, over the letters in their order in the operand, row-major);
//! 3. the operands are folded left to right, two at a time: letters both share and a
//!    later operand or the output needs are the batch, letters both share and nothing
//!    later needs are contracted; the pair runs as one batched `MatMul` (the kernels'
//!    product: one FMA chain per element over the contracted letters, row-major in the
//!    left operand's letter order);
//! 4. what remains is summed (step 2's rule) and permuted into the output's order.
//!
//! On float64 operands it is computed element by element instead ([`direct_f64`]).
//!
//! Sizes of one letter must agree (no broadcasting of size-1 dimensions, which the
//! spec leaves to numpy's rules: refused with a named error).

use super::matmul::{self, RightOperand};
use crate::numerics;
use candle_core::{bail, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use std::collections::BTreeSet;

/// An operand with one letter per dimension (no letter twice).
struct Labeled {
    tensor: Tensor,
    letters: Vec<char>,
}

/// `Einsum(inputs…)` by the node's `equation`.
pub fn einsum(node: &NodeProto, inputs: &[&Tensor]) -> Result<Tensor> {
    let op = "Einsum";
    let equation: String = super::attrs::string(node, "equation", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let (lhs, rhs) = match equation.split_once("->") {
        Some((l, r)) => (l.to_string(), Some(r.to_string())),
        None => (equation.clone(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != inputs.len() {
        bail!(
            "{op}: `{equation}` names {} operands, {} given",
            terms.len(),
            inputs.len()
        )
    }
    // Ellipses become letters no equation uses (from U+0100 on), as many as the
    // widest operand's ellipsis covers.
    let ellipsis_rank = terms
        .iter()
        .zip(inputs)
        .filter(|(t, _)| t.contains("..."))
        .map(|(t, x)| {
            x.rank()
                .saturating_sub(t.replace("...", "").chars().count())
        })
        .max()
        .unwrap_or(0);
    let spare: Vec<char> = (0..ellipsis_rank)
        .map(|i| char::from_u32(0x100 + i as u32).unwrap_or('?'))
        .collect();
    let expand = |term: &str, rank: usize| -> Result<Vec<char>> {
        let named = term.replace("...", "").chars().count();
        let letters: Vec<char> = match term.split_once("...") {
            Some((before, after)) => {
                let covered = rank.checked_sub(named).ok_or_else(|| {
                    candle_core::Error::Msg(format!("{op}: `{term}` for rank {rank}"))
                })?;
                before
                    .chars()
                    .chain(spare[ellipsis_rank - covered..].iter().copied())
                    .chain(after.chars())
                    .collect()
            }
            None => term.chars().collect(),
        };
        // The author's letters are ASCII: the ellipsis's own are beyond it.
        if !term
            .replace("...", "")
            .chars()
            .all(|c| c.is_ascii_alphabetic())
        {
            bail!("{op}: `{term}` has characters other than letters and `...`")
        }
        Ok(letters)
    };
    let mut lettered = Vec::with_capacity(inputs.len());
    for (term, x) in terms.iter().zip(inputs) {
        let letters = expand(term, x.rank())?;
        if letters.len() != x.rank() {
            bail!("{op}: `{term}` for an operand of rank {}", x.rank())
        }
        lettered.push(letters);
    }
    let all_f64 = inputs.iter().all(|x| x.dtype() == candle_core::DType::F64);
    if !all_f64 {
        if let Some(x) = inputs.iter().find(|x| x.dtype() != candle_core::DType::F32) {
            bail!(
                "{op}: {:?} operands; the engine computes Einsum on float32 and float64",
                x.dtype()
            )
        }
    }
    let mut operands = Vec::with_capacity(inputs.len());
    if !all_f64 {
        for (x, letters) in inputs.iter().zip(&lettered) {
            operands.push(diagonal((*x).clone(), letters.clone())?);
        }
    }
    let output: Vec<char> = match &rhs {
        // numpy (and onnxruntime) refuse to sum an ellipsis's dimensions away.
        Some(r) if ellipsis_rank > 0 && !r.contains("...") => bail!(
            "{op}: `{equation}` drops the {ellipsis_rank} dimension(s) `...` covers; the \
             output must keep `...`"
        ),
        Some(r) => expand(r, ellipsis_rank + r.replace("...", "").chars().count())?,
        None => {
            // Implicit: the ellipsis, then the letters used once, alphabetically.
            let mut counts = std::collections::BTreeMap::new();
            for letters in &lettered {
                for c in letters {
                    *counts.entry(*c).or_insert(0usize) += 1;
                }
            }
            spare
                .iter()
                .copied()
                .chain(
                    counts
                        .iter()
                        .filter(|(c, n)| **n == 1 && (**c as u32) < 0x100)
                        .map(|(c, _)| *c),
                )
                .collect()
        }
    };
    let unique: BTreeSet<char> = output.iter().copied().collect();
    if unique.len() != output.len() {
        bail!("{op}: the output of `{equation}` names a letter twice")
    }
    if all_f64 {
        return direct_f64(inputs, &lettered, &output);
    }
    // Letter sizes agree.
    let mut sizes = std::collections::HashMap::new();
    for o in &operands {
        for (c, d) in o.letters.iter().zip(o.tensor.dims()) {
            if *sizes.entry(*c).or_insert(*d) != *d {
                bail!("{op}: letter `{c}` has sizes {} and {d}", sizes[c])
            }
        }
    }
    if let Some(c) = output.iter().find(|c| !sizes.contains_key(c)) {
        bail!("{op}: output letter `{c}` is in no operand")
    }
    let mut operands: Vec<Labeled> = operands;
    // Step 2: letters only one operand has and nothing else needs.
    for i in 0..operands.len() {
        let others: BTreeSet<char> = operands
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, o)| o.letters.iter().copied())
            .chain(output.iter().copied())
            .collect();
        let keep: Vec<char> = operands[i]
            .letters
            .iter()
            .copied()
            .filter(|c| others.contains(c))
            .collect();
        let taken = std::mem::replace(
            &mut operands[i],
            Labeled {
                tensor: Tensor::zeros(0, candle_core::DType::F32, &candle_core::Device::Cpu)?,
                letters: Vec::new(),
            },
        );
        operands[i] = sum_to(taken, &keep)?;
    }
    // Step 3: fold left to right.
    let mut acc = operands.remove(0);
    while !operands.is_empty() {
        let right = operands.remove(0);
        // What the operands still to come and the output name.
        let later: BTreeSet<char> = operands
            .iter()
            .flat_map(|o| o.letters.iter().copied())
            .chain(output.iter().copied())
            .collect();
        let shared: Vec<char> = acc
            .letters
            .iter()
            .copied()
            .filter(|c| right.letters.contains(c))
            .collect();
        let batch: Vec<char> = shared
            .iter()
            .copied()
            .filter(|c| later.contains(c))
            .collect();
        let contracted: Vec<char> = shared
            .iter()
            .copied()
            .filter(|c| !later.contains(c))
            .collect();
        let free_a: Vec<char> = acc
            .letters
            .iter()
            .copied()
            .filter(|c| !shared.contains(c))
            .collect();
        let free_b: Vec<char> = right
            .letters
            .iter()
            .copied()
            .filter(|c| !shared.contains(c))
            .collect();
        let size = |ls: &[char]| {
            ls.iter()
                .try_fold(1usize, |p, c| p.checked_mul(sizes[c]))
                .filter(|&p| p <= MAX_FOLD)
        };
        let fits = |p: Option<usize>, q: Option<usize>, r: Option<usize>| {
            p?.checked_mul(q?)?
                .checked_mul(r?)
                .filter(|&v| v <= MAX_FOLD)
        };
        let (nb, m, k, n) = (
            size(&batch),
            size(&free_a),
            size(&contracted),
            size(&free_b),
        );
        if fits(nb, m, n).is_none() || fits(nb, m, k).is_none() || fits(nb, k, n).is_none() {
            bail!("{op}: a pairwise product of `{equation}` is over {MAX_FOLD} values")
        }
        let (nb, m, k, n) = (
            nb.unwrap_or(0),
            m.unwrap_or(0),
            k.unwrap_or(0),
            n.unwrap_or(0),
        );
        let a = permute(&acc, &[&batch[..], &free_a, &contracted].concat())?.reshape((nb, m, k))?;
        let b =
            permute(&right, &[&batch[..], &contracted, &free_b].concat())?.reshape((nb, k, n))?;
        let product = matmul::matmul(&a, RightOperand::Tensor(&b), None)?;
        let letters: Vec<char> = [&batch[..], &free_a, &free_b].concat();
        let dims: Vec<usize> = letters.iter().map(|c| sizes[c]).collect();
        acc = Labeled {
            tensor: product.reshape(dims)?,
            letters,
        };
    }
    // Step 4.
    let acc = sum_to(acc, &output)?;
    permute(&acc, &output)
}

/// The most values one pairwise product of the float32 path holds (operands or result):
/// a hostile equation's outer product is refused before it is allocated.
const MAX_FOLD: usize = 1 << 30;

/// The most products the float64 path computes.
const DIRECT_F64_LIMIT: u128 = 1 << 32;

/// Einsum on float64 operands, element by element: for each output element (row-major),
/// the summed letters' index tuples in row-major order (letters in order of first
/// appearance), each term the product of the operands' elements left to right, added
/// to a binary64 sum from +0 (no fused multiply-add).
fn direct_f64(inputs: &[&Tensor], lettered: &[Vec<char>], output: &[char]) -> Result<Tensor> {
    let mut sizes: Vec<(char, usize)> = Vec::new();
    for (x, letters) in inputs.iter().zip(lettered) {
        for (c, d) in letters.iter().zip(x.dims()) {
            match sizes.iter().find(|(l, _)| l == c) {
                Some((_, size)) if size != d => {
                    bail!("Einsum: letter `{c}` has sizes {size} and {d}")
                }
                Some(_) => {}
                None => sizes.push((*c, *d)),
            }
        }
    }
    let size_of = |c: &char| sizes.iter().find(|(l, _)| l == c).map(|(_, d)| *d);
    let out_dims: Vec<usize> = output
        .iter()
        .map(|c| {
            size_of(c).ok_or_else(|| {
                candle_core::Error::Msg(format!("Einsum: output letter `{c}` is in no operand"))
            })
        })
        .collect::<Result<_>>()?;
    let summed: Vec<char> = sizes
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !output.contains(c))
        .collect();
    let summed_dims: Vec<usize> = summed.iter().filter_map(size_of).collect();
    let values: Vec<Vec<f64>> = inputs
        .iter()
        .map(|x| x.flatten_all().and_then(|t| t.to_vec1::<f64>()))
        .collect::<Result<_>>()?;
    // Per operand and dimension: where its letter is in (output ++ summed), its stride.
    let all: Vec<char> = output.iter().chain(&summed).copied().collect();
    let strides: Vec<Vec<(usize, usize)>> = inputs
        .iter()
        .zip(lettered)
        .map(|(x, letters)| {
            let dims = x.dims();
            let mut stride = 1usize;
            let mut out = vec![(0, 0); dims.len()];
            for a in (0..dims.len()).rev() {
                let at = all.iter().position(|c| *c == letters[a]).unwrap_or(0);
                out[a] = (at, stride);
                stride *= dims[a];
            }
            out
        })
        .collect();
    let count: usize = out_dims.iter().product();
    let terms: usize = summed_dims.iter().product();
    // The element-wise path is for small float64 einsums; a hostile equation over large
    // operands would otherwise run for hours before any meter could stop it.
    let work = (count as u128) * (terms as u128) * (inputs.len().max(1) as u128);
    if work > DIRECT_F64_LIMIT {
        bail!("Einsum: {work} float64 products exceed the element-wise path's {DIRECT_F64_LIMIT}")
    }
    let mut index = vec![0usize; all.len()];
    let mut out = Vec::with_capacity(count);
    let mut out_at = vec![0usize; output.len()];
    for _ in 0..count {
        index[..output.len()].copy_from_slice(&out_at);
        let mut sum_at = vec![0usize; summed.len()];
        let mut acc = 0.0f64;
        for _ in 0..terms {
            index[output.len()..].copy_from_slice(&sum_at);
            let mut term = 1.0f64;
            for (k, v) in values.iter().enumerate() {
                let flat: usize = strides[k].iter().map(|(at, st)| index[*at] * st).sum();
                term *= v[flat];
            }
            acc += term;
            next_index(&mut sum_at, &summed_dims);
        }
        out.push(acc);
        next_index(&mut out_at, &out_dims);
    }
    Tensor::from_vec(out, out_dims, &candle_core::Device::Cpu)
}

/// Advances a row-major multi-index.
fn next_index(at: &mut [usize], dims: &[usize]) {
    for a in (0..at.len()).rev() {
        at[a] += 1;
        if at[a] < dims[a] {
            return;
        }
        at[a] = 0;
    }
}

/// `x` with each repeated letter reduced to its diagonal.
fn diagonal(x: Tensor, letters: Vec<char>) -> Result<Labeled> {
    let mut x = Labeled { tensor: x, letters };
    while let Some((i, j)) = (0..x.letters.len()).find_map(|i| {
        (i + 1..x.letters.len())
            .find(|&j| x.letters[j] == x.letters[i])
            .map(|j| (i, j))
    }) {
        let dims = x.tensor.dims().to_vec();
        if dims[i] != dims[j] {
            bail!(
                "Einsum: repeated letter `{}` over sizes {} and {}",
                x.letters[i],
                dims[i],
                dims[j]
            )
        }
        // Move i and j last, then take the diagonal of the last two axes.
        let mut order: Vec<usize> = (0..dims.len()).filter(|&a| a != i && a != j).collect();
        let mut letters: Vec<char> = order.iter().map(|&a| x.letters[a]).collect();
        order.extend([i, j]);
        let t = x.tensor.permute(order)?.contiguous()?;
        let d = dims[i];
        let rest: usize = t.elem_count() / (d * d).max(1);
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        let mut out = Vec::with_capacity(rest * d);
        for r in 0..rest {
            for q in 0..d {
                out.push(values[r * d * d + q * d + q]);
            }
        }
        let mut out_dims: Vec<usize> = letters
            .iter()
            .map(|c| dims[x.letters.iter().position(|l| l == c).unwrap_or(0)])
            .collect();
        out_dims.push(d);
        letters.push(x.letters[i]);
        x = Labeled {
            tensor: Tensor::from_vec(out, out_dims, &candle_core::Device::Cpu)?,
            letters,
        };
    }
    Ok(x)
}

/// `x` permuted so its letters are `order`.
fn permute(x: &Labeled, order: &[char]) -> Result<Tensor> {
    let axes: Vec<usize> = order
        .iter()
        .map(|c| x.letters.iter().position(|l| l == c))
        .collect::<Option<_>>()
        .ok_or_else(|| candle_core::Error::Msg("Einsum: a letter went missing".into()))?;
    if axes.iter().enumerate().all(|(i, a)| i == *a) {
        return Ok(x.tensor.clone());
    }
    x.tensor.permute(axes)?.contiguous()
}

/// `x` with every letter outside `keep` summed away (the kernels' sum, over the summed
/// letters in `x`'s order, row-major), the kept letters in `x`'s order.
fn sum_to(x: Labeled, keep: &[char]) -> Result<Labeled> {
    let kept: Vec<char> = x
        .letters
        .iter()
        .copied()
        .filter(|c| keep.contains(c))
        .collect();
    if kept.len() == x.letters.len() {
        return Ok(x);
    }
    let summed: Vec<char> = x
        .letters
        .iter()
        .copied()
        .filter(|c| !keep.contains(c))
        .collect();
    let t = permute(&x, &[&kept[..], &summed].concat())?;
    let dim = |c: &char| x.tensor.dims()[x.letters.iter().position(|l| l == c).unwrap_or(0)];
    let out_dims: Vec<usize> = kept.iter().map(dim).collect();
    let width: usize = summed.iter().map(dim).product();
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    let isa = numerics::isa();
    let out: Vec<f32> = if width == 0 {
        vec![0.0; out_dims.iter().product()]
    } else {
        values
            .chunks_exact(width)
            .map(|row| inferchain_kernels::sum(isa, row))
            .collect()
    };
    Ok(Labeled {
        tensor: Tensor::from_vec(out, out_dims, &candle_core::Device::Cpu)?,
        letters: kept,
    })
}

/// The multiply-adds of an Einsum over operands of shapes `dims`: the product of every
/// letter's size (the ellipsis's dimensions counted once, from the widest operand), for
/// the cost meter.
pub fn multiply_adds(node: &NodeProto, dims: &[&[usize]]) -> Option<u64> {
    let equation = super::attrs::string(node, "equation", "");
    let lhs = equation.split("->").next()?;
    let mut sizes = std::collections::HashMap::new();
    let mut ellipsis = 1u64;
    for (term, d) in lhs.split(',').zip(dims) {
        let term: String = term.chars().filter(|c| !c.is_whitespace()).collect();
        let (before, after) = term.split_once("...").unwrap_or((&term, ""));
        let (before, after): (Vec<char>, Vec<char>) =
            (before.chars().collect(), after.chars().collect());
        let covered = d.len().checked_sub(before.len() + after.len())?;
        if !term.contains("...") && covered != 0 {
            return None;
        }
        for (c, size) in before.iter().zip(d.iter()) {
            sizes.insert(*c, *size as u64);
        }
        for (c, size) in after.iter().zip(&d[before.len() + covered..]) {
            sizes.insert(*c, *size as u64);
        }
        let middle: u64 = d[before.len()..before.len() + covered]
            .iter()
            .map(|&s| s as u64)
            .product();
        ellipsis = ellipsis.max(middle);
    }
    Some(
        sizes
            .values()
            .fold(ellipsis, |acc, s| acc.saturating_mul(*s))
            .saturating_mul(dims.len().max(1) as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn equation(e: &str) -> NodeProto {
        NodeProto {
            op_type: "Einsum".into(),
            attribute: vec![candle_onnx::onnx::AttributeProto {
                name: "equation".into(),
                s: e.as_bytes().to_vec(),
                r#type: 3,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_huge_float64_contraction_is_refused_before_it_runs() {
        let x = Tensor::zeros(
            (300, 300),
            candle_core::DType::F64,
            &candle_core::Device::Cpu,
        )
        .expect("zeros");
        let err = einsum(&equation("ij,kl->"), &[&x, &x]).expect_err("refused");
        assert!(err.to_string().contains("element-wise"), "{err}");
    }

    #[test]
    fn a_hostile_outer_product_is_refused_before_it_is_allocated() {
        let x = Tensor::zeros(
            (1000, 1000),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )
        .expect("zeros");
        let err = einsum(&equation("ab,cd,ac,bd->"), &[&x, &x, &x, &x]).expect_err("refused");
        assert!(err.to_string().contains("pairwise"), "{err}");
        let err = einsum(&equation("ā,a->"), &[&x, &x]).expect_err("not a letter");
        assert!(err.to_string().contains("letters"), "{err}");
    }

    #[test]
    fn an_explicit_output_must_keep_the_dimensions_an_ellipsis_covers() {
        let x = Tensor::ones(
            (2, 3, 4),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )
        .expect("ones");
        let err = einsum(&equation("...ij->ij"), &[&x]).expect_err("refused");
        assert!(err.to_string().contains("must keep `...`"), "{err}");
        let kept = einsum(&equation("...ij->...j"), &[&x]).expect("kept");
        assert_eq!(kept.dims(), &[2, 4]);
        // An ellipsis that covers nothing may be left out.
        let y =
            Tensor::ones((3, 4), candle_core::DType::F32, &candle_core::Device::Cpu).expect("ones");
        let sum = einsum(&equation("...ij->j"), &[&y]).expect("nothing covered");
        assert_eq!(sum.dims(), &[4]);
    }

    #[test]
    fn multiply_adds_count_every_letter_once_and_the_ellipsis_once() {
        assert_eq!(
            multiply_adds(&equation("ij,jk->ik"), &[&[3, 4], &[4, 5]]),
            Some(3 * 4 * 5 * 2)
        );
        assert_eq!(
            multiply_adds(&equation("...ij,...jk"), &[&[2, 3, 4], &[2, 4, 3]]),
            Some(2 * 3 * 4 * 3 * 2)
        );
        // A term that does not fit its operand.
        assert_eq!(multiply_adds(&equation("ij,jk"), &[&[3], &[4, 5]]), None);
    }
}
