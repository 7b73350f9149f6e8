//! Top-k× recall of detections, as OpenTAD reports it beside mAP.
//!
//! For a class and a video with `x` instances of that class, the video's
//! `k·x` highest-scoring detections of the class are kept (ties in file
//! order); an instance is recalled at tIoU threshold `t` when at least one
//! of them overlaps it with tIoU ≥ `t` (no one-to-one matching: a detection
//! may recall several instances). A class's recall is recalled instances
//! over its instances; the figure is the mean over the ground truth's
//! classes (a class without detections counts 0). Detections of videos
//! outside the subset do not count.

use rayon::prelude::*;
use serde::Serialize;

use crate::detections::{rank, route, ClassPred, Ties};
use crate::numeric::{np_mean, tiou};
use crate::{DetectionOptions, DetectionSet, Error, GroundTruth};

/// Recall at the top k·x detections per class and video, for each k and
/// threshold; serializes under the `recall_topk` key of the CLI's JSON.
#[derive(Debug, Clone, Serialize)]
pub struct TopKRecall {
    /// The k values.
    pub k: Vec<usize>,
    /// The thresholds.
    pub tiou_thresholds: Vec<f64>,
    /// Mean recall over classes, per threshold (rows) and k (columns).
    pub recall: Vec<Vec<f64>>,
}

/// Computes top-k× recall for each k in `ks` (each at least 1) at the
/// thresholds of `opts` (labels checked as [`crate::evaluate_detections`]
/// does).
pub fn recall_at_top_k(
    gt: &GroundTruth,
    preds: &DetectionSet,
    opts: &DetectionOptions,
    ks: &[usize],
) -> Result<TopKRecall, Error> {
    crate::proposals::check_thresholds(&opts.tiou_thresholds)?;
    if ks.is_empty() || ks.contains(&0) {
        return Err(Error::Options(
            "top-k recall needs k values of at least 1".into(),
        ));
    }
    let mut warnings = Vec::new();
    let routed = route(gt, preds, opts.ignore_unknown_labels, &mut warnings)?;
    let thresholds = &opts.tiou_thresholds;
    let per_class: Vec<Vec<Vec<f64>>> = routed
        .per_class
        .into_par_iter()
        .enumerate()
        .map(|(c, preds)| class_recall(gt, c, preds, thresholds, ks))
        .collect();
    let recall = (0..thresholds.len())
        .map(|t| {
            (0..ks.len())
                .map(|k| np_mean(&per_class.iter().map(|r| r[t][k]).collect::<Vec<_>>()))
                .collect()
        })
        .collect();
    Ok(TopKRecall {
        k: ks.to_vec(),
        tiou_thresholds: thresholds.clone(),
        recall,
    })
}

/// One class's recall per threshold and k.
fn class_recall(
    gt: &GroundTruth,
    class: usize,
    preds: Vec<ClassPred>,
    thresholds: &[f64],
    ks: &[usize],
) -> Vec<Vec<f64>> {
    let nt = thresholds.len();
    let max_k = ks.iter().copied().max().unwrap_or(1);
    // Per video, the class's detections in rank order.
    let mut by_video: Vec<Vec<ClassPred>> = vec![Vec::new(); gt.videos.len()];
    for p in rank(&preds, Ties::FileOrder) {
        if p.video != u32::MAX {
            by_video[p.video as usize].push(p);
        }
    }
    let mut recalled = vec![vec![0usize; ks.len()]; nt];
    let mut n_instances = 0usize;
    for (v, video) in gt.videos.iter().enumerate() {
        let inst: Vec<[f64; 2]> = video
            .instances
            .iter()
            .filter(|g| g.label == class)
            .map(|g| g.segment)
            .collect();
        n_instances += inst.len();
        let top = &by_video[v][..by_video[v].len().min(max_k * inst.len())];
        for g in &inst {
            // Per threshold, the first rank that reaches it.
            let mut first = vec![usize::MAX; nt];
            for (r, p) in top.iter().enumerate() {
                let iou = tiou(p.segment, *g);
                for (f, &t) in first.iter_mut().zip(thresholds) {
                    if *f == usize::MAX && iou >= t {
                        *f = r;
                    }
                }
            }
            for (t, &f) in first.iter().enumerate() {
                for (ki, &k) in ks.iter().enumerate() {
                    if f < k * inst.len() {
                        recalled[t][ki] += 1;
                    }
                }
            }
        }
    }
    recalled
        .iter()
        .map(|row| {
            row.iter()
                .map(|&n| {
                    if n_instances == 0 {
                        0.0
                    } else {
                        n as f64 / n_instances as f64
                    }
                })
                .collect()
        })
        .collect()
}
