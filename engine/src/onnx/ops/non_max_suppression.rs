//! `NonMaxSuppression` (opsets 10 and 11): per batch and class, the boxes a greedy pass
//! keeps, highest score first, dropping each box whose intersection over union with one
//! already kept is above the threshold.
//!
//! Defined to the last bit, as onnxruntime and the onnx reference compute it (they agree):
//! a box is a candidate when there is no score threshold or its score is *above* it;
//! candidates are taken by score, equal scores by the smaller box index; each one is
//! compared, in the order they were kept, with the boxes already kept, and the first
//! comparison over the threshold drops it. The comparison is a fixed sequence of f32
//! operations (`suppresses`): coordinates ordered per axis (or a centre ± half size),
//! the intersection, areas and union, one division, then `iou > threshold`; with a NaN
//! anywhere every comparison is false, so such a box never suppresses nor is suppressed.
//! A NaN score is ordered below every number (a decision: onnxruntime's heap leaves it
//! unspecified) and is never above a score threshold.
//!
//! The output's length depends on the data. The cost meter's dry run asks for the
//! largest one instead ([`Extent::Largest`]): every class keeps
//! `min(max_output_boxes_per_class, boxes)` boxes, so that whatever reads the indices is
//! measured at its largest too. `max_output_boxes_per_class` must therefore be a
//! constant or computed from shapes (`super::super::cost`).

use super::attrs;
use candle_core::{bail, DType, Device, Result, Tensor};
use candle_onnx::onnx::NodeProto;
use std::cmp::Ordering;

/// How many indices to select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extent {
    /// What the operator defines.
    Exact,
    /// The most the inputs' shapes allow (the cost meter's dry run).
    Largest,
}

/// The most rows one call may select (the output is `rows × 3` i64).
const MAX_SELECTED: usize = 1 << 26;

/// `NonMaxSuppression(boxes, scores, max_output_boxes_per_class?, iou_threshold?,
/// score_threshold?)` → `selected_indices`, `[n, 3]` i64 rows of (batch, class, box).
pub fn non_max_suppression(
    node: &NodeProto,
    boxes: &Tensor,
    scores: &Tensor,
    limits: [Option<&Tensor>; 3],
    extent: Extent,
) -> Result<Tensor> {
    let op = "NonMaxSuppression";
    let [max_per_class, iou, score_threshold] = limits;
    let (batches, count, four) = match boxes.dims() {
        &[b, n, f] => (b, n, f),
        other => bail!("{op}: boxes of shape {other:?}, expected [batches, boxes, 4]"),
    };
    let classes = match scores.dims() {
        &[b, c, n] if b == batches && n == count => c,
        other => bail!(
            "{op}: scores of shape {other:?}, expected [{batches}, classes, {count}] for boxes {:?}",
            boxes.dims()
        ),
    };
    if four != 4 {
        bail!("{op}: boxes have {four} coordinates, expected 4")
    }
    if boxes.dtype() != DType::F32 || scores.dtype() != DType::F32 {
        bail!(
            "{op}: {:?} boxes and {:?} scores; float32 expected",
            boxes.dtype(),
            scores.dtype()
        )
    }
    let centred = match attrs::int(node, "center_point_box", 0) {
        0 => false,
        1 => true,
        other => bail!("{op}: center_point_box {other}, expected 0 or 1"),
    };
    let scalar_f32 = |t: Option<&Tensor>, name: &str| -> Result<Option<f32>> {
        let Some(t) = t.filter(|t| t.elem_count() > 0) else {
            return Ok(None);
        };
        match t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?[..] {
            [v] => Ok(Some(v)),
            ref other => bail!("{op}: {name} must be one value, got {}", other.len()),
        }
    };
    let keep = match max_per_class.filter(|t| t.elem_count() > 0) {
        None => 0,
        Some(t) => match t.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?[..] {
            [v] => v.max(0) as u64,
            ref other => bail!(
                "{op}: max_output_boxes_per_class must be one value, got {}",
                other.len()
            ),
        },
    };
    let keep = keep.min(count as u64) as usize;
    let iou_threshold = scalar_f32(iou, "iou_threshold")?.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&iou_threshold) {
        bail!("{op}: iou_threshold {iou_threshold} is outside [0, 1]")
    }
    let score_threshold = scalar_f32(score_threshold, "score_threshold")?;
    let largest = batches
        .checked_mul(classes)
        .and_then(|n| n.checked_mul(keep))
        .filter(|&n| n <= MAX_SELECTED);
    let Some(largest) = largest else {
        bail!("{op}: {batches} batches × {classes} classes × {keep} boxes is over {MAX_SELECTED}")
    };
    let mut selected: Vec<i64> = Vec::with_capacity(
        3 * if extent == Extent::Largest {
            largest
        } else {
            0
        },
    );
    if keep > 0 {
        let boxes = boxes.flatten_all()?.to_vec1::<f32>()?;
        let scores = scores.flatten_all()?.to_vec1::<f32>()?;
        let mut candidates: Vec<usize> = Vec::with_capacity(count);
        let mut kept: Vec<usize> = Vec::with_capacity(keep);
        for b in 0..batches {
            let batch_boxes = &boxes[b * count * 4..][..count * 4];
            for c in 0..classes {
                let class_scores = &scores[(b * classes + c) * count..][..count];
                kept.clear();
                if extent == Extent::Largest {
                    kept.extend(0..keep);
                } else {
                    candidates.clear();
                    candidates.extend(
                        (0..count).filter(|&i| score_threshold.is_none_or(|t| class_scores[i] > t)),
                    );
                    candidates.sort_by(|&a, &b| {
                        by_score(class_scores[b], class_scores[a]).then(a.cmp(&b))
                    });
                    for &candidate in &candidates {
                        if kept.len() == keep {
                            break;
                        }
                        let suppressed = kept.iter().any(|&k| {
                            suppresses(
                                box_at(batch_boxes, candidate),
                                box_at(batch_boxes, k),
                                centred,
                                iou_threshold,
                            )
                        });
                        if !suppressed {
                            kept.push(candidate);
                        }
                    }
                }
                for &k in &kept {
                    selected.extend([b as i64, c as i64, k as i64]);
                }
            }
        }
    }
    let rows = selected.len() / 3;
    Tensor::from_vec(selected, (rows, 3), &Device::Cpu)
}

/// Scores ordered with NaN below every number (so it is taken last).
fn by_score(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn box_at(boxes: &[f32], i: usize) -> [f32; 4] {
    [
        boxes[4 * i],
        boxes[4 * i + 1],
        boxes[4 * i + 2],
        boxes[4 * i + 3],
    ]
}

/// `(min, max)` as onnxruntime's `MaxMin` orders a pair: `a >= b` puts `b` first.
fn ordered(a: f32, b: f32) -> (f32, f32) {
    if a >= b {
        (b, a)
    } else {
        (a, b)
    }
}

/// C++'s `std::max(a, b)`: `a < b ? b : a`.
fn cpp_max(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}

/// C++'s `std::min(a, b)`: `b < a ? b : a`.
fn cpp_min(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// Whether `candidate` overlaps `kept` by more than `threshold` (intersection over
/// union), in onnxruntime's sequence of f32 operations.
fn suppresses(candidate: [f32; 4], kept: [f32; 4], centred: bool, threshold: f32) -> bool {
    let (b1, b2) = (candidate, kept);
    // Per box: (x_min, x_max, y_min, y_max).
    let extent = |b: [f32; 4]| -> (f32, f32, f32, f32) {
        if centred {
            let (half_w, half_h) = (b[2] / 2.0, b[3] / 2.0);
            (b[0] - half_w, b[0] + half_w, b[1] - half_h, b[1] + half_h)
        } else {
            let (x0, x1) = ordered(b[1], b[3]);
            let (y0, y1) = ordered(b[0], b[2]);
            (x0, x1, y0, y1)
        }
    };
    let (x1_min, x1_max, y1_min, y1_max) = extent(b1);
    let (x2_min, x2_max, y2_min, y2_max) = extent(b2);
    let ix_min = cpp_max(x1_min, x2_min);
    let ix_max = cpp_min(x1_max, x2_max);
    if ix_max <= ix_min {
        return false;
    }
    let iy_min = cpp_max(y1_min, y2_min);
    let iy_max = cpp_min(y1_max, y2_max);
    if iy_max <= iy_min {
        return false;
    }
    let intersection = (ix_max - ix_min) * (iy_max - iy_min);
    if intersection <= 0.0 {
        return false;
    }
    let area1 = (x1_max - x1_min) * (y1_max - y1_min);
    let area2 = (x2_max - x2_min) * (y2_max - y2_min);
    let union = area1 + area2 - intersection;
    if area1 <= 0.0 || area2 <= 0.0 || union <= 0.0 {
        return false;
    }
    intersection / union > threshold
}

/// The multiply-adds of a run at most: the sort, then every candidate against every box
/// kept (about 20 operations each). For the cost meter.
pub fn operations(boxes: &[usize], scores: &[usize], max_per_class: Option<i64>) -> Option<u64> {
    let (&[_, n, _], &[b, c, _]) = (boxes, scores) else {
        return None;
    };
    let n = n as u64;
    let keep = max_per_class.unwrap_or(0).clamp(0, n as i64) as u64;
    let per_class = n
        .saturating_mul(64 - n.leading_zeros() as u64)
        .saturating_add(n.saturating_mul(keep).saturating_mul(20));
    Some(
        (b as u64)
            .saturating_mul(c as u64)
            .saturating_mul(per_class.max(1)),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn node(centred: i64) -> NodeProto {
        let mut node = NodeProto {
            op_type: "NonMaxSuppression".into(),
            ..Default::default()
        };
        node.attribute.push(candle_onnx::onnx::AttributeProto {
            name: "center_point_box".into(),
            i: centred,
            r#type: 2,
            ..Default::default()
        });
        node
    }

    fn run(
        boxes: &[[f32; 4]],
        scores: &[f32],
        keep: i64,
        iou: f32,
        score: Option<f32>,
        extent: Extent,
    ) -> Result<Vec<[i64; 3]>> {
        let n = boxes.len();
        let b = Tensor::from_vec(boxes.concat(), (1, n, 4), &Device::Cpu)?;
        let s = Tensor::from_vec(scores.to_vec(), (1, scores.len() / n, n), &Device::Cpu)?;
        let keep = Tensor::new(&[keep], &Device::Cpu)?;
        let iou = Tensor::new(&[iou], &Device::Cpu)?;
        let score = score.map(|v| Tensor::new(&[v], &Device::Cpu)).transpose()?;
        let out = non_max_suppression(
            &node(0),
            &b,
            &s,
            [Some(&keep), Some(&iou), score.as_ref()],
            extent,
        )?;
        Ok(out
            .to_vec2::<i64>()?
            .into_iter()
            .map(|r| [r[0], r[1], r[2]])
            .collect())
    }

    /// The onnx suite's six boxes: three overlapping near 0, one at 10, two near 100.
    fn suite_boxes() -> Vec<[f32; 4]> {
        vec![
            [0.0, 0.0, 1.0, 1.0],
            [0.0, 0.1, 1.0, 1.1],
            [0.0, -0.1, 1.0, 0.9],
            [0.0, 10.0, 1.0, 11.0],
            [0.0, 10.1, 1.0, 11.1],
            [0.0, 100.0, 1.0, 101.0],
        ]
    }

    #[test]
    fn keeps_the_best_box_of_each_overlapping_group() -> Result<()> {
        let scores = [0.9, 0.75, 0.6, 0.95, 0.5, 0.3];
        let kept = run(&suite_boxes(), &scores, 3, 0.5, Some(0.0), Extent::Exact)?;
        assert_eq!(kept, vec![[0, 0, 3], [0, 0, 0], [0, 0, 5]]);
        // A score threshold drops the box at 100; the limit caps the rest.
        let kept = run(&suite_boxes(), &scores, 2, 0.5, Some(0.4), Extent::Exact)?;
        assert_eq!(kept, vec![[0, 0, 3], [0, 0, 0]]);
        Ok(())
    }

    #[test]
    fn equal_scores_go_by_index_and_nan_scores_come_last() -> Result<()> {
        let far: Vec<[f32; 4]> = (0..4)
            .map(|i| [0.0, 10.0 * i as f32, 1.0, 10.0 * i as f32 + 1.0])
            .collect();
        let kept = run(
            &far,
            &[0.5, f32::NAN, 0.5, 0.7],
            4,
            0.5,
            None,
            Extent::Exact,
        )?;
        assert_eq!(kept, vec![[0, 0, 3], [0, 0, 0], [0, 0, 2], [0, 0, 1]]);
        // A NaN score is never above a threshold.
        let kept = run(
            &far,
            &[0.5, f32::NAN, 0.5, 0.7],
            4,
            0.5,
            Some(0.1),
            Extent::Exact,
        )?;
        assert_eq!(kept.len(), 3);
        Ok(())
    }

    #[test]
    fn the_threshold_is_strict_and_nan_boxes_never_suppress() -> Result<()> {
        // Two unit squares overlapping by half: IoU exactly 1/3.
        let pair = [[0.0, 0.0, 1.0, 1.0], [0.0, 0.5, 1.0, 1.5]];
        let third = 1.0f32 / 3.0;
        let iou = 0.5 / (1.0f32 + 1.0 - 0.5);
        assert_eq!(iou, third);
        assert_eq!(
            run(&pair, &[0.9, 0.8], 2, third, None, Extent::Exact)?.len(),
            2
        );
        assert_eq!(
            run(&pair, &[0.9, 0.8], 2, 0.3, None, Extent::Exact)?.len(),
            1
        );
        let nan = [[0.0, 0.0, 1.0, 1.0], [0.0, f32::NAN, 1.0, 1.0]];
        assert_eq!(
            run(&nan, &[0.9, 0.8], 2, 0.0, None, Extent::Exact)?.len(),
            2
        );
        Ok(())
    }

    #[test]
    fn centre_form_matches_corner_form() {
        let corner = [[0.0, 0.0, 2.0, 2.0], [0.0, 1.0, 2.0, 3.0]];
        let centre = [[1.0, 1.0, 2.0, 2.0], [2.0, 1.0, 2.0, 2.0]];
        for t in [0.2f32, 0.4] {
            assert_eq!(
                suppresses(corner[1], corner[0], false, t),
                suppresses(centre[1], centre[0], true, t)
            );
        }
        assert!(suppresses(corner[1], corner[0], false, 0.2));
        assert!(!suppresses(corner[1], corner[0], false, 0.4));
    }

    #[test]
    fn the_meters_run_selects_the_most_the_shapes_allow() -> Result<()> {
        let scores = [0.9, 0.75, 0.6, 0.95, 0.5, 0.3];
        let exact = run(&suite_boxes(), &scores, 5, 0.5, Some(0.7), Extent::Exact)?;
        let largest = run(&suite_boxes(), &scores, 5, 0.5, Some(0.7), Extent::Largest)?;
        assert_eq!(exact, vec![[0, 0, 3], [0, 0, 0]]);
        assert_eq!(largest.len(), 5);
        assert!(largest.iter().all(|r| (0..6).contains(&r[2])));
        // More than there are boxes: every box.
        assert_eq!(
            run(&suite_boxes(), &scores, 99, 0.5, None, Extent::Largest)?.len(),
            6
        );
        Ok(())
    }

    #[test]
    fn bad_inputs_are_refused_by_name() {
        let scores = [0.9, 0.75, 0.6, 0.95, 0.5, 0.3];
        let err = run(&suite_boxes(), &scores, 3, 1.5, None, Extent::Exact).unwrap_err();
        assert!(err.to_string().contains("iou_threshold"), "{err}");
        let b = Tensor::zeros((1, 6, 3), DType::F32, &Device::Cpu).unwrap();
        let s = Tensor::zeros((1, 1, 6), DType::F32, &Device::Cpu).unwrap();
        let err = non_max_suppression(&node(0), &b, &s, [None; 3], Extent::Exact).unwrap_err();
        assert!(err.to_string().contains("coordinates"), "{err}");
        let b = Tensor::zeros((1, 5, 4), DType::F32, &Device::Cpu).unwrap();
        let err = non_max_suppression(&node(0), &b, &s, [None; 3], Extent::Exact).unwrap_err();
        assert!(err.to_string().contains("scores of shape"), "{err}");
        let b = Tensor::zeros((1, 6, 4), DType::F32, &Device::Cpu).unwrap();
        let err = non_max_suppression(&node(2), &b, &s, [None; 3], Extent::Exact).unwrap_err();
        assert!(err.to_string().contains("center_point_box"), "{err}");
        // No limit given: nothing is selected.
        let none = non_max_suppression(&node(0), &b, &s, [None; 3], Extent::Exact).unwrap();
        assert_eq!(none.dims(), &[0, 3]);
    }
}
