//! Detection evaluation: AP per class and tIoU threshold, mAP, as the
//! official `eval_detection.py` computes them.

use crate::json::FastMap as HashMap;
use std::cmp::Ordering;

use rayon::prelude::*;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::numeric::{ap_from_true_positives, linspace, np_mean, tiou};
use crate::proposals::{check_thresholds, check_video_ids};
use crate::{DetectionSet, Error, GroundTruth};

/// Options of [`evaluate_detections`].
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionOptions {
    /// tIoU thresholds (default `linspace(0.5, 0.95, 10)`).
    pub tiou_thresholds: Vec<f64>,
    /// Drop detections whose label is not a class of the ground truth
    /// (with a warning) instead of failing.
    pub ignore_unknown_labels: bool,
}

impl Default for DetectionOptions {
    fn default() -> Self {
        DetectionOptions {
            tiou_thresholds: linspace(0.5, 0.95, 10),
            ignore_unknown_labels: false,
        }
    }
}

/// AP of each class in ground-truth order; serializes as a JSON object
/// class → list per threshold, keeping that order.
#[derive(Debug, Clone, Default)]
pub struct ApPerClass(pub Vec<(String, Vec<f64>)>);

impl Serialize for ApPerClass {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, ap) in &self.0 {
            map.serialize_entry(name, ap)?;
        }
        map.end()
    }
}

/// The result of [`evaluate_detections`]; serializes to the `--json` shape
/// (values are fractions, as the official code computes them).
#[derive(Debug, Clone, Serialize)]
pub struct DetectionReport {
    /// mAP at each threshold (mean AP over classes).
    #[serde(rename = "mAP")]
    pub map: Vec<f64>,
    /// Mean of `map` over thresholds.
    #[serde(rename = "average_mAP")]
    pub average_map: f64,
    /// AP per class (ground-truth order) per threshold.
    pub ap: ApPerClass,
    /// The thresholds.
    pub tiou_thresholds: Vec<f64>,
    /// Ground-truth videos with annotations.
    pub n_videos: usize,
    /// Ground-truth instances.
    pub n_instances: usize,
    /// Detections evaluated.
    pub n_detections: usize,
    /// Detections dropped for an unknown label (`ignore_unknown_labels`).
    pub n_dropped: usize,
    /// Non-fatal findings, not in JSON.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A detection routed to its class.
#[derive(Clone, Copy)]
pub(crate) struct ClassPred {
    pub score: f64,
    pub segment: [f64; 2],
    /// Ground-truth video index, or `u32::MAX` when not in the subset.
    pub video: u32,
}

/// A submission routed to the ground truth's classes.
pub(crate) struct Routed {
    /// Per class, its detections in file order.
    pub per_class: Vec<Vec<ClassPred>>,
    /// Detections kept (those with a ground-truth class).
    pub n_detections: usize,
    /// Detections dropped for an unknown label.
    pub n_dropped: usize,
}

/// A class's APs per threshold and, when its scores tie, the APs with the
/// ties reversed and the number of tied detections.
type ClassAps = (Vec<f64>, Option<(Vec<f64>, usize)>);

/// mAP per threshold: np.mean over classes of the row `ap[t, :]`.
fn mean_ap_per_threshold<'a>(
    aps: impl Iterator<Item = &'a Vec<f64>> + Clone,
    nt: usize,
) -> Vec<f64> {
    (0..nt)
        .map(|t| {
            let row: Vec<f64> = aps.clone().map(|a| a[t]).collect();
            np_mean(&row)
        })
        .collect()
}

/// Evaluates detections exactly as the official `eval_detection.py`
/// (`compute_average_precision_detection` per class, `interpolated_prec_rec`);
/// tied scores keep file order (the official sort is not stable), and a
/// warning says when reverse file order would give another average mAP.
pub fn evaluate_detections(
    gt: &GroundTruth,
    preds: &DetectionSet,
    opts: &DetectionOptions,
) -> Result<DetectionReport, Error> {
    let thresholds = &opts.tiou_thresholds;
    check_thresholds(thresholds)?;
    let nt = thresholds.len();
    let mut warnings = Vec::new();
    let routed = route(gt, preds, opts.ignore_unknown_labels, &mut warnings)?;
    let index = ClassIndex::new(gt);
    let class_ap = |c: usize, preds: &[ClassPred], ties: Ties| -> Vec<f64> {
        let ranked = rank(preds, ties);
        let tp = match_ranked(gt, &index, c, &ranked, thresholds);
        tp.iter()
            .map(|m| {
                let ranks: Vec<u32> = m.iter().map(|&(r, _)| r).collect();
                ap_from_true_positives(&ranks, index.count[c])
            })
            .collect()
    };
    // Per class: the APs, and for a class with tied scores the APs with
    // its ties reversed and the number of tied detections.
    let per_class: Vec<ClassAps> = routed
        .per_class
        .into_par_iter()
        .enumerate()
        .map(|(c, preds)| {
            let ap = class_ap(c, &preds, Ties::FileOrder);
            let mut keys: Vec<u64> = preds.iter().map(|p| descending_key(p.score)).collect();
            keys.sort_unstable();
            let tied = count_tied(&keys);
            let reversed = (tied > 0).then(|| (class_ap(c, &preds, Ties::Reversed), tied));
            (ap, reversed)
        })
        .collect();
    let map = mean_ap_per_threshold(per_class.iter().map(|(ap, _)| ap), nt);
    let average_map = np_mean(&map);
    let tied: usize = per_class
        .iter()
        .filter_map(|(_, r)| r.as_ref())
        .map(|r| r.1)
        .sum();
    if tied > 0 {
        let reversed = per_class
            .iter()
            .map(|(ap, r)| r.as_ref().map_or(ap, |(other, _)| other));
        let map_reversed = mean_ap_per_threshold(reversed, nt);
        warnings.extend(ties_warning(
            &preds.source,
            tied,
            "detections tie in score with another of their class",
            &[("average mAP", average_map, np_mean(&map_reversed))],
        ));
    }
    let ap_by_class: Vec<Vec<f64>> = per_class.into_iter().map(|(ap, _)| ap).collect();
    let n_videos = gt.videos.iter().filter(|v| !v.instances.is_empty()).count();
    Ok(DetectionReport {
        map,
        average_map,
        ap: ApPerClass(gt.labels.iter().cloned().zip(ap_by_class).collect()),
        tiou_thresholds: thresholds.clone(),
        n_videos,
        n_instances: gt.n_instances(),
        n_detections: routed.n_detections,
        n_dropped: routed.n_dropped,
        warnings,
    })
}

/// Checks the submission against the ground truth (video ids, labels) and
/// routes its detections to their classes; `warnings` gets the set's, the
/// ground truth's and these checks' findings.
pub(crate) fn route(
    gt: &GroundTruth,
    preds: &DetectionSet,
    ignore_unknown_labels: bool,
    warnings: &mut Vec<String>,
) -> Result<Routed, Error> {
    if gt.labels.is_empty() {
        return Err(Error::Content {
            file: gt.source.clone(),
            message: format!("subset \"{}\" has no annotated instance", gt.subset),
        });
    }
    warnings.extend(preds.warnings.iter().cloned());
    warnings.extend(gt.warnings.iter().cloned());
    warnings.extend(check_video_ids(
        gt,
        preds.videos.iter().map(|v| v.video.as_str()),
        &preds.source,
        "detections",
        "count as false positives, as in the official code",
    )?);
    if preds.is_empty() {
        warnings.push(format!(
            "{}: no detections at all; every AP is 0",
            preds.source
        ));
    }
    let (class_of, n_dropped) = map_labels(gt, preds, ignore_unknown_labels, warnings)?;
    let mut sizes = vec![0usize; gt.labels.len()];
    for v in &preds.videos {
        for d in &v.entries {
            if let Some(c) = class_of[d.label] {
                sizes[c] += 1;
            }
        }
    }
    let mut per_class: Vec<Vec<ClassPred>> = sizes.iter().map(|&n| Vec::with_capacity(n)).collect();
    let mut n_detections = 0usize;
    for v in &preds.videos {
        let video = gt.video_index(&v.video).map_or(u32::MAX, |i| i as u32);
        for d in &v.entries {
            if let Some(c) = class_of[d.label] {
                per_class[c].push(ClassPred {
                    score: d.score,
                    segment: d.segment,
                    video,
                });
                n_detections += 1;
            }
        }
    }
    Ok(Routed {
        per_class,
        n_detections,
        n_dropped,
    })
}

/// The ground-truth class of each of the submission's labels (`None` for
/// an unknown one) and how many detections have an unknown label; unknown
/// labels are an error unless `ignore_unknown` (then a warning).
fn map_labels(
    gt: &GroundTruth,
    preds: &DetectionSet,
    ignore_unknown: bool,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Option<usize>>, usize), Error> {
    let gt_class: HashMap<&str, usize> = gt
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let class_of: Vec<Option<usize>> = preds
        .labels
        .iter()
        .map(|l| gt_class.get(l.as_str()).copied())
        .collect();
    let mut unknown_counts = vec![0usize; preds.labels.len()];
    for v in &preds.videos {
        for d in &v.entries {
            match class_of.get(d.label) {
                Some(Some(_)) => {}
                Some(None) => unknown_counts[d.label] += 1,
                None => {
                    return Err(Error::Content {
                        file: preds.source.clone(),
                        message: format!(
                            "video \"{}\": label index {} is not in the set's {} labels",
                            v.video,
                            d.label,
                            preds.labels.len()
                        ),
                    })
                }
            }
        }
    }
    let n_dropped: usize = unknown_counts.iter().sum();
    if n_dropped > 0 {
        let what = unknown_labels(gt, preds, &unknown_counts);
        if !ignore_unknown {
            return Err(Error::Content {
                file: preds.source.clone(),
                message: format!(
                    "{what}. The official code stops on these. Fix the labels, or pass \
                     --ignore-unknown-labels to drop them."
                ),
            });
        }
        warnings.push(format!(
            "{}: dropped {what} (--ignore-unknown-labels)",
            preds.source
        ));
    }
    Ok((class_of, n_dropped))
}

/// Describes the unknown labels, most frequent first (ten at most).
fn unknown_labels(gt: &GroundTruth, preds: &DetectionSet, counts: &[usize]) -> String {
    let n_dropped: usize = counts.iter().sum();
    let mut unknown: Vec<(usize, &str)> = counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(i, &n)| (n, preds.labels[i].as_str()))
        .collect();
    unknown.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let listed: Vec<String> = unknown
        .iter()
        .take(10)
        .map(|(n, l)| format!("\"{l}\" ({n})"))
        .collect();
    let more = if unknown.len() > 10 {
        format!(" and {} more", unknown.len() - 10)
    } else {
        String::new()
    };
    format!(
        "{n_dropped} detection(s) with {} label(s) that are not classes of the ground \
         truth's subset \"{}\": {}{more}",
        unknown.len(),
        gt.subset,
        listed.join(", ")
    )
}

/// Where each ground-truth instance stands within its class.
pub(crate) struct ClassIndex {
    /// Per video, per instance: its position among its class's instances.
    pub pos: Vec<Vec<u32>>,
    /// Instances per class.
    pub count: Vec<usize>,
}

impl ClassIndex {
    pub(crate) fn new(gt: &GroundTruth) -> Self {
        let mut count = vec![0usize; gt.labels.len()];
        let pos = gt
            .videos
            .iter()
            .map(|v| {
                v.instances
                    .iter()
                    .map(|g| {
                        let p = count[g.label];
                        count[g.label] += 1;
                        p as u32
                    })
                    .collect()
            })
            .collect();
        ClassIndex { pos, count }
    }
}

/// A class's detections in descending score, ties ordered by `ties` (an
/// unstable sort of distinct keys).
pub(crate) fn rank(preds: &[ClassPred], ties: Ties) -> Vec<ClassPred> {
    let mut order: Vec<u128> = preds
        .iter()
        .enumerate()
        .map(|(i, p)| ties.key(p.score, i))
        .collect();
    order.sort_unstable();
    order.iter().map(|&k| preds[ties.position(k)]).collect()
}

/// How entries of equal score are ranked among themselves. The official
/// code's order among them is whatever numpy's unstable sort gives; the
/// evaluator ranks them in file order and computes the other end, reverse
/// file order, to tell whether ties decide anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ties {
    /// In file order: the evaluator's numbers.
    FileOrder,
    /// In reverse file order.
    Reversed,
}

impl Ties {
    /// An entry's rank key: descending score, then its position (below
    /// 2^32) as `self` orders ties; all keys of a list are distinct.
    #[inline]
    pub(crate) fn key(self, score: f64, position: usize) -> u128 {
        ((descending_key(score) as u128) << 32) | u128::from(self.flip(position as u32))
    }

    /// The position a [`Ties::key`] was made from.
    #[inline]
    pub(crate) fn position(self, key: u128) -> usize {
        self.flip(key as u32) as usize
    }

    fn flip(self, position: u32) -> u32 {
        match self {
            Ties::FileOrder => position,
            Ties::Reversed => !position,
        }
    }
}

/// Entries of a list whose score equals another entry's; `keys` are the
/// entries' [`descending_key`]s, sorted.
pub(crate) fn count_tied(sorted_keys: &[u64]) -> usize {
    let n = sorted_keys.len();
    (0..n)
        .filter(|&i| {
            (i > 0 && sorted_keys[i - 1] == sorted_keys[i])
                || (i + 1 < n && sorted_keys[i + 1] == sorted_keys[i])
        })
        .count()
}

/// A warning when ranking tied entries in reverse file order moves a
/// result: `what` names the entries and the list they tie in, `results`
/// are (name, value in file order, value reversed) with their format.
pub(crate) fn ties_warning(
    source: &str,
    tied: usize,
    what: &str,
    results: &[(&str, f64, f64)],
) -> Option<String> {
    let moved: Vec<String> = results
        .iter()
        .filter(|(_, here, other)| here != other)
        .map(|(name, here, other)| format!("{name} {other:.6} instead of {here:.6}"))
        .collect();
    (!moved.is_empty()).then(|| {
        format!(
            "{source}: {tied} {what}; the official code ranks tied entries in whatever order \
             its unstable sort gives, and here they decide results: ranked in reverse file \
             order instead of file order, {}",
            moved.join(", ")
        )
    })
}

/// `compute_average_precision_detection`'s matching for one class: per
/// threshold, the true positives as (rank, instance position in class),
/// in rank order.
pub(crate) fn match_ranked(
    gt: &GroundTruth,
    index: &ClassIndex,
    class: usize,
    ranked: &[ClassPred],
    thresholds: &[f64],
) -> Vec<Vec<(u32, u32)>> {
    let nt = thresholds.len();
    let npos = index.count[class];
    let mut locked = vec![false; nt * npos];
    let mut tp: Vec<Vec<(u32, u32)>> = vec![Vec::new(); nt];
    let mut cand: Vec<(f64, u32)> = Vec::new();
    for (i, p) in ranked.iter().enumerate() {
        if p.video == u32::MAX {
            continue;
        }
        let v = p.video as usize;
        cand.clear();
        for (g, &pos) in gt.videos[v].instances.iter().zip(&index.pos[v]) {
            if g.label == class {
                cand.push((tiou(p.segment, g.segment), pos));
            }
        }
        if cand.is_empty() {
            continue;
        }
        // numpy's argsort()[::-1]: descending, NaN first, ties by later
        // index first (the reverse of a stable ascending sort).
        cand.sort_by(|a, b| ascending_nan_last(a.0, b.0));
        cand.reverse();
        for (t, &thr) in thresholds.iter().enumerate() {
            for &(iou, pos) in &cand {
                if iou < thr {
                    break;
                }
                let lock = &mut locked[t * npos + pos as usize];
                if *lock {
                    continue;
                }
                *lock = true;
                tp[t].push((i as u32, pos));
                break;
            }
        }
    }
    tp
}

/// A key whose ascending order is the descending order of `score`
/// (-0.0 equal to 0.0; NaN last).
pub(crate) fn descending_key(score: f64) -> u64 {
    if score.is_nan() {
        return u64::MAX;
    }
    let bits = (score + 0.0).to_bits(); // -0.0 + 0.0 = 0.0
    let ascending = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    !ascending
}

/// numpy's ascending order for floats: NaN after everything.
fn ascending_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

#[cfg(test)]
mod tests {
    use super::descending_key;

    #[test]
    fn descending_key_orders_scores_from_high_to_low() {
        let scores = [3.5, 1.0, 0.25, 0.0, -0.0, -1e-300, -2.0, f64::NAN];
        let keys: Vec<u64> = scores.iter().map(|&s| descending_key(s)).collect();
        for w in keys.windows(2) {
            assert!(w[0] <= w[1]);
        }
        assert_eq!(descending_key(0.0), descending_key(-0.0));
        assert!(descending_key(1.0) < descending_key(0.5));
        assert!(descending_key(-0.5) < descending_key(-1.0));
    }
}
