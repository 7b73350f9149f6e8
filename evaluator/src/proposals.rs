//! Proposal evaluation: recall per tIoU threshold × average number of
//! proposals (AN), the AR–AN curve, AR@k and AUC, as the official
//! `eval_proposal.py` computes them.

use rayon::prelude::*;
use serde::Serialize;

use crate::detections::{count_tied, descending_key, ties_warning, Ties};
use crate::numeric::{linspace, np_trapz, tiou, tiou_finite};
use crate::{Error, GroundTruth, GtVideo, Proposal, ProposalSet};

/// Options of [`evaluate_proposals`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalOptions {
    /// tIoU thresholds (default `linspace(0.5, 0.95, 10)`).
    pub tiou_thresholds: Vec<f64>,
    /// M, the maximum average number of proposals per video (default 100).
    pub max_avg_proposals: f64,
}

impl Default for ProposalOptions {
    fn default() -> Self {
        ProposalOptions {
            tiou_thresholds: linspace(0.5, 0.95, 10),
            max_avg_proposals: 100.0,
        }
    }
}

/// The result of [`evaluate_proposals`]; serializes to the `--json` shape.
/// Recalls are fractions, AUC is in percent, as the official code prints.
#[derive(Debug, Clone, Serialize)]
pub struct ProposalReport {
    /// Average recall at AN = first point of the curve (j = 1).
    #[serde(rename = "AR@1")]
    pub ar_at_1: f64,
    /// Average recall at the 5th point.
    #[serde(rename = "AR@5")]
    pub ar_at_5: f64,
    /// Average recall at the 10th point.
    #[serde(rename = "AR@10")]
    pub ar_at_10: f64,
    /// Average recall at the 100th (last) point.
    #[serde(rename = "AR@100")]
    pub ar_at_100: f64,
    /// 100 × area under the AR–AN curve / AN\[100\].
    #[serde(rename = "AUC")]
    pub auc: f64,
    /// The AR curve: mean recall over thresholds, 100 points.
    pub average_recall: Vec<f64>,
    /// AN of each point of the curve.
    pub average_nr_proposals: Vec<f64>,
    /// Recall per threshold (rows) and point (100 columns).
    pub recall: Vec<Vec<f64>>,
    /// The thresholds of the rows of `recall`.
    pub tiou_thresholds: Vec<f64>,
    /// M.
    pub max_avg_proposals: f64,
    /// Ground-truth videos evaluated (those with annotations).
    pub n_videos: usize,
    /// Ground-truth instances.
    pub n_instances: usize,
    /// Proposals in the submission (all videos).
    pub n_proposals: usize,
    /// Proposals kept after the per-video cut to M on average.
    pub n_kept: usize,
    /// Non-fatal findings (ids not in the ground truth, ...), not in JSON.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

const NO_HIT: u32 = u32::MAX;

#[derive(Clone)]
struct VideoHits {
    /// Columns of the tIoU matrix (kept proposals, or 1 for a video
    /// without proposals).
    columns: usize,
    /// Proposals kept (0 for a video without proposals).
    kept: usize,
    /// Per instance and threshold: first column with tIoU ≥ threshold.
    first_hit: Vec<u32>,
}

/// Checks that prediction ids meet the ground truth; warns about those
/// that do not, and fails when none does (suggesting the `v_` prefix).
pub(crate) fn check_video_ids<'a>(
    gt: &GroundTruth,
    ids: impl Iterator<Item = &'a str>,
    source: &str,
    what: &str,
    consequence: &str,
) -> Result<Vec<String>, Error> {
    let mut n = 0usize;
    let unmatched: Vec<&str> = ids
        .inspect(|_| n += 1)
        .filter(|id| gt.video_index(id).is_none())
        .collect();
    report_unmatched(gt, n, &unmatched, source, what, consequence)
}

/// The warning (or, when no id of `n` matches, the error) about the
/// prediction ids that are not videos of the ground truth.
fn report_unmatched(
    gt: &GroundTruth,
    n: usize,
    unmatched: &[&str],
    source: &str,
    what: &str,
    consequence: &str,
) -> Result<Vec<String>, Error> {
    if unmatched.is_empty() || n == 0 {
        return Ok(Vec::new());
    }
    let strip = unmatched
        .iter()
        .filter(|id| {
            id.strip_prefix("v_")
                .is_some_and(|s| gt.video_index(s).is_some())
        })
        .count();
    let add = unmatched
        .iter()
        .filter(|id| gt.video_index(&format!("v_{id}")).is_some())
        .count();
    let hint = if strip > 0 {
        format!(" {strip} of them match once the \"v_\" prefix is removed: strip it from the ids.")
    } else if add > 0 {
        format!(" {add} of them match once a \"v_\" prefix is added: add it to the ids.")
    } else {
        String::new()
    };
    let examples: Vec<String> = unmatched
        .iter()
        .take(3)
        .map(|s| format!("\"{s}\""))
        .collect();
    if unmatched.len() == n {
        return Err(Error::Content {
            file: source.to_string(),
            message: format!(
                "none of its {n} video ids is a video of the ground truth's subset \"{}\" \
                 (e.g. {}).{hint} Check the files and --subset.",
                gt.subset,
                examples.join(", ")
            ),
        });
    }
    Ok(vec![format!(
        "{source}: {} of {n} videos are not in the ground truth's subset \"{}\" (e.g. {}); \
         their {what} {consequence}.{hint}",
        unmatched.len(),
        gt.subset,
        examples.join(", ")
    )])
}

pub(crate) fn check_thresholds(t: &[f64]) -> Result<(), Error> {
    if t.is_empty() {
        return Err(Error::Options("no tIoU threshold given".into()));
    }
    if t.iter().any(|x| !x.is_finite()) {
        return Err(Error::Options("tIoU thresholds must be finite".into()));
    }
    Ok(())
}

/// Evaluates proposals against the ground truth exactly as the official
/// `eval_proposal.py` (`average_recall_vs_avg_nr_proposals` and the AUC of
/// `ANETproposal.evaluate`); ties in score keep file order.
pub fn evaluate_proposals(
    gt: &GroundTruth,
    preds: &ProposalSet,
    opts: &ProposalOptions,
) -> Result<ProposalReport, Error> {
    let thresholds = &opts.tiou_thresholds;
    check_thresholds(thresholds)?;
    let m = opts.max_avg_proposals;
    if !(m.is_finite() && m > 0.0) {
        return Err(Error::Options(format!(
            "the maximum average number of proposals must be positive, got {m}"
        )));
    }
    let (by_video, mut warnings) = proposals_by_video(gt, preds)?;
    let videos = annotated_videos(gt, preds)?;
    let n_videos = videos.len();
    let n_proposals = preds.len();
    let ratio = m * n_videos as f64 / n_proposals as f64;
    let sorted = SortedThresholds::new(thresholds);
    let hits: Vec<VideoHits> = videos
        .par_iter()
        .with_min_len(32)
        .map_init(Scratch::default, |scratch, &vi| {
            video_hits(
                &gt.videos[vi],
                by_video[vi],
                ratio,
                &sorted,
                Ties::FileOrder,
                scratch,
            )
        })
        .collect();
    // The videos whose proposals tie in score: their hits again with the
    // ties in reverse file order (the same proposals count, the cut is the
    // same).
    let reversed: Vec<Option<(VideoHits, usize)>> = videos
        .par_iter()
        .with_min_len(32)
        .map_init(Scratch::default, |scratch, &vi| {
            let props = by_video[vi];
            let mut keys: Vec<u64> = props.iter().map(|p| descending_key(p.score)).collect();
            keys.sort_unstable();
            let tied = count_tied(&keys);
            (tied > 0).then(|| {
                let hits = video_hits(
                    &gt.videos[vi],
                    props,
                    ratio,
                    &sorted,
                    Ties::Reversed,
                    scratch,
                );
                (hits, tied)
            })
        })
        .collect();
    let total: usize = hits.iter().map(|h| h.kept).sum();
    if total == 0 {
        return Err(Error::Content {
            file: preds.source.clone(),
            message: format!(
                "no proposal of a ground-truth video is kept after the cut to M = {m} per video \
                 on average; raise --max-proposals"
            ),
        });
    }
    let scale = m * n_videos as f64 / total as f64;
    let pcn: Vec<f64> = (1..=100).map(|j| (j as f64 / 100.0) * scale).collect();
    let (recall, n_instances) = recall_per_threshold(&hits, &pcn, thresholds.len());
    let average_recall = mean_over_thresholds(&recall);
    let per_video = total as f64 / n_videos as f64;
    let average_nr_proposals: Vec<f64> = pcn.iter().map(|&p| p * per_video).collect();
    let area = np_trapz(&average_recall, &average_nr_proposals);
    let auc = 100.0 * area / average_nr_proposals[99];
    let tied: usize = reversed.iter().flatten().map(|r| r.1).sum();
    if tied > 0 {
        let hits_reversed: Vec<VideoHits> = hits
            .iter()
            .zip(reversed)
            .map(|(h, r)| r.map_or_else(|| h.clone(), |r| r.0))
            .collect();
        let (recall_reversed, _) = recall_per_threshold(&hits_reversed, &pcn, thresholds.len());
        let ar_reversed = mean_over_thresholds(&recall_reversed);
        let auc_reversed =
            100.0 * np_trapz(&ar_reversed, &average_nr_proposals) / average_nr_proposals[99];
        warnings.extend(ties_warning(
            &preds.source,
            tied,
            "proposals tie in score with another of their video",
            &[
                ("AR@1", average_recall[0], ar_reversed[0]),
                ("AR@100", average_recall[99], ar_reversed[99]),
                ("AUC", auc, auc_reversed),
            ],
        ));
    }
    warnings.splice(0..0, gt.warnings.iter().cloned());
    warnings.splice(0..0, preds.warnings.iter().cloned());
    Ok(ProposalReport {
        ar_at_1: average_recall[0],
        ar_at_5: average_recall[4],
        ar_at_10: average_recall[9],
        ar_at_100: average_recall[99],
        auc,
        average_recall,
        average_nr_proposals,
        recall,
        tiou_thresholds: thresholds.clone(),
        max_avg_proposals: m,
        n_videos,
        n_instances,
        n_proposals,
        n_kept: total,
        warnings,
    })
}

/// Each ground-truth video's proposals (a repeated id keeps its last
/// value; none for a video without), ids looked up on all cores, and the
/// warnings about ids that are not videos of the ground truth.
fn proposals_by_video<'a>(
    gt: &GroundTruth,
    preds: &'a ProposalSet,
) -> Result<(Vec<&'a [Proposal]>, Vec<String>), Error> {
    let found: Vec<Option<usize>> = preds
        .videos
        .par_iter()
        .with_min_len(256)
        .map(|v| gt.video_index(&v.video))
        .collect();
    let mut by_video: Vec<&[Proposal]> = vec![&[]; gt.videos.len()];
    let mut unmatched = Vec::new();
    for (v, found) in preds.videos.iter().zip(found) {
        match found {
            Some(i) => by_video[i] = &v.entries,
            None => unmatched.push(v.video.as_str()),
        }
    }
    let warnings = report_unmatched(
        gt,
        preds.videos.len(),
        &unmatched,
        &preds.source,
        "proposals",
        "are ignored but count in the total that sets the per-video cut, as in the official code",
    )?;
    Ok((by_video, warnings))
}

/// The ground-truth videos with annotations (the official video list),
/// failing when there is none or when the submission is empty.
fn annotated_videos(gt: &GroundTruth, preds: &ProposalSet) -> Result<Vec<usize>, Error> {
    let videos: Vec<usize> = (0..gt.videos.len())
        .filter(|&i| !gt.videos[i].instances.is_empty())
        .collect();
    if videos.is_empty() {
        return Err(Error::Content {
            file: gt.source.clone(),
            message: format!("subset \"{}\" has no annotated video", gt.subset),
        });
    }
    if preds.is_empty() {
        return Err(Error::Content {
            file: preds.source.clone(),
            message: "no proposals at all".into(),
        });
    }
    Ok(videos)
}

/// The thresholds in ascending order, with their positions.
struct SortedThresholds {
    values: Vec<f64>,
    original: Vec<usize>,
}

impl SortedThresholds {
    fn new(thresholds: &[f64]) -> Self {
        let mut original: Vec<usize> = (0..thresholds.len()).collect();
        original.sort_by(|&a, &b| thresholds[a].total_cmp(&thresholds[b]));
        SortedThresholds {
            values: original.iter().map(|&i| thresholds[i]).collect(),
            original,
        }
    }
}

/// Buffers of [`video_hits`], reused from video to video.
#[derive(Default)]
struct Scratch {
    /// Rank keys of a video's proposals, the kept ones first.
    keys: Vec<u128>,
    /// The kept proposals' segments, in the order of `keys`.
    segments: Vec<[f64; 2]>,
    /// tIoU of each kept proposal with one instance.
    ious: Vec<f64>,
    /// Kept proposals (positions in `keys`) at or above the lowest threshold.
    candidates: Vec<u32>,
}

/// One video's kept proposals and, per instance and threshold, the first
/// one (in score order, ties in file order) that matches: the rank of the
/// best-ranked matching proposal, found without sorting the proposals.
fn video_hits(
    video: &GtVideo,
    props: &[Proposal],
    ratio: f64,
    thresholds: &SortedThresholds,
    ties: Ties,
    scratch: &mut Scratch,
) -> VideoHits {
    let inst = &video.instances;
    let nt = thresholds.values.len();
    if props.is_empty() {
        // One column of zeros per instance.
        let mut row = vec![NO_HIT; nt];
        for (&t, &o) in thresholds.values.iter().zip(&thresholds.original) {
            if 0.0 >= t {
                row[o] = 0;
            }
        }
        let first_hit = inst.iter().flat_map(|_| row.iter().copied()).collect();
        return VideoHits {
            columns: 1,
            kept: 0,
            first_hit,
        };
    }
    let n = props.len();
    let kept = ((n as f64 * ratio) as usize).min(n);
    let keys = &mut scratch.keys;
    keys.clear();
    keys.extend(props.iter().enumerate().map(|(i, p)| ties.key(p.score, i)));
    if kept < n && kept > 0 {
        keys.select_nth_unstable(kept - 1);
    }
    let best = best_matching_keys(inst, props, kept, &thresholds.values, ties, scratch);
    let kept_keys = &scratch.keys[..kept];
    // Ranks of the needed keys among the kept ones: with b(k) the number
    // of needed keys at or below k, the m-th needed key has the kept keys
    // with b(k) <= m below it.
    let mut needed: Vec<u128> = best.iter().copied().filter(|&k| k != u128::MAX).collect();
    needed.sort_unstable();
    needed.dedup();
    let mut below = vec![0u32; needed.len() + 1];
    if needed.len() <= 16 {
        // A few needed keys: counted without a branch per comparison.
        for &k in kept_keys {
            below[needed.iter().map(|&q| (q <= k) as usize).sum::<usize>()] += 1;
        }
    } else {
        for &k in kept_keys {
            below[needed.partition_point(|&q| q <= k)] += 1;
        }
    }
    let mut acc = 0;
    for b in below.iter_mut() {
        let here = *b;
        *b = acc;
        acc += here;
    }
    let mut first_hit = vec![NO_HIT; inst.len() * nt];
    for (i, row) in best.chunks_exact(nt).enumerate() {
        for (s, &k) in row.iter().enumerate() {
            if k != u128::MAX {
                let m = needed.partition_point(|&q| q < k);
                first_hit[i * nt + thresholds.original[s]] = below[m + 1];
            }
        }
    }
    VideoHits {
        columns: kept,
        kept,
        first_hit,
    }
}

/// Per instance and threshold (ascending): the smallest key among the
/// `kept` first of `scratch.keys` whose proposal's tIoU with the instance
/// reaches the threshold (`u128::MAX` for none).
fn best_matching_keys(
    inst: &[crate::GtInstance],
    props: &[Proposal],
    kept: usize,
    sorted: &[f64],
    ties: Ties,
    scratch: &mut Scratch,
) -> Vec<u128> {
    let nt = sorted.len();
    let mut best = vec![u128::MAX; inst.len() * nt];
    let Scratch {
        keys,
        segments,
        ious,
        candidates,
    } = scratch;
    let kept_keys = &keys[..kept];
    segments.clear();
    segments.extend(kept_keys.iter().map(|&k| props[ties.position(k)].segment));
    let all_finite = segments.iter().flatten().all(|x| x.is_finite());
    candidates.resize(kept, 0);
    for (g, row) in inst.iter().zip(best.chunks_exact_mut(nt)) {
        ious.clear();
        if all_finite && g.segment.iter().all(|x| x.is_finite()) {
            ious.extend(segments.iter().map(|&s| tiou_finite(s, g.segment)));
        } else {
            ious.extend(segments.iter().map(|&s| tiou(s, g.segment)));
        }
        // Those at or above the lowest threshold, gathered without a branch
        // per proposal (NaN compares false).
        let mut c = 0;
        for (j, &iou) in ious.iter().enumerate() {
            candidates[c] = j as u32;
            c += (iou >= sorted[0]) as usize;
        }
        for &j in &candidates[..c] {
            let (iou, k) = (ious[j as usize], kept_keys[j as usize]);
            // Thresholds met form a prefix; a lower threshold's best key is
            // never above a higher one's, so stop at the first not improved.
            let met = sorted.partition_point(|&t| t <= iou);
            for slot in row[..met].iter_mut().rev() {
                if *slot <= k {
                    break;
                }
                *slot = k;
            }
        }
    }
    best
}

/// Recall per threshold (rows) at the 100 points of `pcn`, and the number
/// of instances: each instance counts from the first point whose cut
/// `min(int(columns × pcn[j]), columns)` includes its first match.
fn recall_per_threshold(hits: &[VideoHits], pcn: &[f64], nt: usize) -> (Vec<Vec<f64>>, usize) {
    // diff[t][j] counts instances first matched at point j.
    let mut diff = vec![vec![0u64; 101]; nt];
    let mut n_instances = 0usize;
    let mut nr = [0usize; 100];
    let mut nr_of = usize::MAX; // the column count that `nr` holds
    for vh in hits {
        let k = vh.columns;
        if k != nr_of {
            for (slot, &p) in nr.iter_mut().zip(pcn) {
                *slot = ((k as f64 * p) as usize).min(k);
            }
            nr_of = k;
        }
        n_instances += vh.first_hit.len() / nt;
        for row in vh.first_hit.chunks_exact(nt) {
            for (t, &h) in row.iter().enumerate() {
                if h != NO_HIT {
                    let j0 = nr.partition_point(|&x| x <= h as usize);
                    diff[t][j0] += 1;
                }
            }
        }
    }
    let recall = diff
        .iter()
        .map(|d| {
            let mut acc = 0u64;
            d[..100]
                .iter()
                .map(|&x| {
                    acc += x;
                    acc as f64 / n_instances as f64
                })
                .collect()
        })
        .collect();
    (recall, n_instances)
}

/// The AR curve: the mean of the recall rows at each point (summed in
/// threshold order, as numpy's `mean(axis=0)` does).
fn mean_over_thresholds(recall: &[Vec<f64>]) -> Vec<f64> {
    (0..100)
        .map(|j| {
            let mut s = 0.0;
            for r in recall {
                s += r[j];
            }
            s / recall.len() as f64
        })
        .collect()
}
