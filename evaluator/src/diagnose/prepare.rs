//! The common ground of the analyses: the ground truth DETAD keeps, the
//! detections ranked per class, and their matches at every threshold.

use rayon::prelude::*;

use super::DiagnoseOptions;
use crate::detections::{match_ranked, rank, route, ClassIndex, ClassPred, Ties};
use crate::numeric::{np_mean, np_sum};
use crate::{DetectionSet, Error, GroundTruth, GtVideo};

/// The analyses' inputs, prepared once.
pub(super) struct Prepared {
    /// The ground truth kept (every video; instances DETAD ignores set
    /// aside; classes numbered again in order of first appearance).
    pub gt: GroundTruth,
    /// Per kept instance (numbered over videos in order): its position in its video's annotations in the
    /// file (before setting aside).
    pub inst_annotation: Vec<u32>,
    /// Per kept instance: its class.
    pub inst_label: Vec<u32>,
    /// Instances per class.
    pub npos: Vec<usize>,
    /// N, the average number of instances per class.
    pub n_avg: f64,
    /// Per class: its detections ranked by score (ties in file order).
    pub ranked: Vec<Vec<ClassPred>>,
    /// Per class and threshold: the true positives as (rank, instance).
    pub tp: Vec<Vec<Vec<(u32, u32)>>>,
    /// The thresholds.
    pub thresholds: Vec<f64>,
    /// Detections analysed.
    pub n_detections: usize,
    /// Instances set aside.
    pub n_set_aside: usize,
    /// Findings for the user.
    pub warnings: Vec<String>,
}

impl Prepared {
    /// Kept instances.
    pub fn n_instances(&self) -> usize {
        self.inst_label.len()
    }

    /// mAP_N of all detections per threshold.
    pub fn map_n_all(&self) -> Vec<f64> {
        (0..self.thresholds.len())
            .map(|t| {
                let aps: Vec<f64> = (0..self.npos.len())
                    .map(|c| {
                        let fp = self.tp[c][t]
                            .iter()
                            .enumerate()
                            .map(|(j, &(r, _))| r as usize - j);
                        ap_n(fp, self.npos[c], self.n_avg)
                    })
                    .collect();
                np_mean(&aps)
            })
            .collect()
    }
}

/// Normalized average precision from the false positives ranked before
/// each true positive (in rank order): precision `R·N / (R·N + FP)` at each
/// true positive, made non-increasing from the right, times the recall
/// step (the VOC-2011 interpolated area, whose maxima fall on true
/// positives).
pub(super) fn ap_n(fp_before: impl Iterator<Item = usize>, npos: usize, n_avg: f64) -> f64 {
    let prec: Vec<f64> = fp_before
        .enumerate()
        .map(|(j, fp)| {
            let r = (j + 1) as f64 / npos as f64;
            r * n_avg / (r * n_avg + fp as f64)
        })
        .collect();
    let mut best = 0.0f64;
    let mut terms = vec![0.0; prec.len()];
    for j in (0..prec.len()).rev() {
        best = best.max(prec[j]);
        terms[j] = best / npos as f64;
    }
    np_sum(&terms)
}

/// Sets aside the instances DETAD ignores. The classes stay those of the
/// whole subset, as in DETAD: a class whose instances are all set aside
/// still counts in N and in every mean over classes.
fn kept_ground_truth(gt: &GroundTruth) -> (GroundTruth, Vec<u32>, usize) {
    let mut annotation = Vec::new();
    let mut set_aside = 0;
    let videos = gt
        .videos
        .iter()
        .map(|v| {
            let mut instances = Vec::new();
            for (a, g) in v.instances.iter().enumerate() {
                let length = g.segment[1] - g.segment[0];
                let too_long = v.duration.is_some_and(|d| d > 0.0 && length / d > 1.0);
                if length <= 0.0 || too_long {
                    set_aside += 1;
                    continue;
                }
                annotation.push(a as u32);
                instances.push(g.clone());
            }
            GtVideo {
                id: v.id.clone(),
                duration: v.duration,
                instances,
            }
        })
        .collect();
    let kept = GroundTruth::new(
        gt.source.clone(),
        gt.subset.clone(),
        gt.labels.clone(),
        videos,
        gt.warnings.clone(),
    );
    (kept, annotation, set_aside)
}

/// Prepares the analyses: ground truth kept, detections routed, ranked and
/// matched at every threshold.
pub(super) fn prepare(
    gt: &GroundTruth,
    preds: &DetectionSet,
    opts: &DiagnoseOptions,
) -> Result<Prepared, Error> {
    let (kept, inst_annotation, n_set_aside) = kept_ground_truth(gt);
    let mut warnings = Vec::new();
    if n_set_aside > 0 {
        warnings.push(format!(
            "{}: {n_set_aside} instance(s) of zero or negative length, or longer than their \
             video, are left out of the diagnosis, as DETAD does",
            gt.source
        ));
    }
    if kept.videos.iter().all(|v| v.instances.is_empty()) && n_set_aside > 0 {
        return Err(Error::Content {
            file: gt.source.clone(),
            message: format!(
                "all {n_set_aside} instance(s) of subset \"{}\" have zero or negative length, \
                 or are longer than their video; DETAD sets those aside, so nothing is left to \
                 diagnose",
                gt.subset
            ),
        });
    }
    let routed = route(&kept, preds, opts.ignore_unknown_labels, &mut warnings)?;
    let index = ClassIndex::new(&kept);
    warnings.extend(classes_left_empty(&kept, &index, &routed.per_class));
    let mut inst_label: Vec<u32> = Vec::new();
    // Per class, per position in class: the instance number.
    let mut class_inst: Vec<Vec<u32>> = vec![Vec::new(); kept.labels.len()];
    for video in &kept.videos {
        for g in &video.instances {
            class_inst[g.label].push(inst_label.len() as u32);
            inst_label.push(g.label as u32);
        }
    }
    let thresholds = opts.tiou_thresholds.clone();
    let (ranked, tp): (Vec<_>, Vec<_>) = routed
        .per_class
        .into_par_iter()
        .enumerate()
        .map(|(c, preds)| {
            let ranked = rank(&preds, Ties::FileOrder);
            let tp: Vec<Vec<(u32, u32)>> = match_ranked(&kept, &index, c, &ranked, &thresholds)
                .into_iter()
                .map(|m| {
                    m.into_iter()
                        .map(|(r, pos)| (r, class_inst[c][pos as usize]))
                        .collect()
                })
                .collect();
            (ranked, tp)
        })
        .unzip();
    let n_avg = inst_label.len() as f64 / kept.labels.len() as f64;
    Ok(Prepared {
        npos: index.count,
        gt: kept,
        inst_annotation,
        inst_label,
        n_avg,
        ranked,
        tp,
        thresholds,
        n_detections: routed.n_detections,
        n_set_aside,
        warnings,
    })
}

/// A warning naming the classes whose instances were all set aside but
/// which detections carry: their detections are false positives and their
/// AP 0, where DETAD's AP is 0/0 (NaN, and so its mean).
fn classes_left_empty(
    kept: &GroundTruth,
    index: &ClassIndex,
    per_class: &[Vec<ClassPred>],
) -> Option<String> {
    let named: Vec<String> = (0..kept.labels.len())
        .filter(|&c| index.count[c] == 0 && !per_class[c].is_empty())
        .map(|c| {
            format!(
                "\"{}\" ({} detection(s))",
                kept.labels[c],
                per_class[c].len()
            )
        })
        .collect();
    (!named.is_empty()).then(|| {
        format!(
            "{}: class(es) {} have no instance left once those set aside are out; their \
             detections count as false positives and their AP as 0 (DETAD's AP is 0/0 there, \
             which makes its mean NaN)",
            kept.source,
            named.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::interpolated_ap;

    /// The full computation of DETAD's normalized AP from a ranked list of
    /// true/false positives, for comparison.
    fn full(flags: &[bool], npos: usize, n_avg: f64) -> f64 {
        let (mut tp, mut fp) = (0.0, 0.0);
        let (mut prec, mut rec) = (vec![], vec![]);
        for &f in flags {
            if f {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            let r = tp / npos as f64;
            rec.push(r);
            prec.push(r * n_avg / (r * n_avg + fp));
        }
        interpolated_ap(&prec, &rec)
    }

    #[test]
    fn normalized_ap_from_true_positives_equals_the_full_computation() {
        let mut x: u64 = 5;
        for _ in 0..2000 {
            crate::numeric::xorshift64(&mut x);
            let n = 1 + (x % 60) as usize;
            let npos = 1 + (x >> 12) as usize % 20;
            let n_avg = 0.5 + (x >> 30) as f64 % 40.0;
            let mut flags = Vec::new();
            let mut tps = 0;
            for i in 0..n {
                let f = (x >> (i % 50)) & 1 == 1 && tps < npos;
                tps += f as usize;
                flags.push(f);
            }
            let fp_before: Vec<usize> = flags
                .iter()
                .enumerate()
                .filter(|(_, &f)| f)
                .enumerate()
                .map(|(j, (r, _))| r - j)
                .collect();
            let a = ap_n(fp_before.into_iter(), npos, n_avg);
            let b = full(&flags, npos, n_avg);
            assert!(
                (a - b).abs() < 1e-12,
                "{flags:?} {npos} {n_avg}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn normalized_precision_by_hand() {
        // One class of 2 instances, N = 4: TP, FP, TP. Recall 1/2 at rank 1
        // with 0 FP: precision 1; recall 1 at rank 3 with 1 FP: 4/(4+1).
        // AP_N = 1/2 × 1 + 1/2 × 0.8 = 0.9.
        let ap = ap_n([0, 1].into_iter(), 2, 4.0);
        assert!((ap - 0.9).abs() < 1e-15, "{ap}");
        // With N = npos it is the usual precision: 1/2 × 1 + 1/2 × 2/3.
        let ap = ap_n([0, 1].into_iter(), 2, 2.0);
        assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-15, "{ap}");
    }
}
