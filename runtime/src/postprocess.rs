//! The post-processing of TCANET.md ("Inference and post-processing"):
//! score fusion, the release's Soft-NMS (its stopping rule included), the top
//! 100 and clipping to the video.
//!
//! Everything is computed in `f64`, in the order the release computes it, so
//! that results match a plain implementation of the rule to the last bits.
use serde::Serialize;

/// A temporal segment with a score (seconds, or fractions of the video).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoredSegment {
    /// Start.
    pub start: f64,
    /// End.
    pub end: f64,
    /// Score.
    pub score: f64,
}

/// Soft-NMS parameters; the defaults are the release's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftNmsParams {
    /// Width of the Gaussian decay `exp(-IoU^2.5 / alpha)` (0.4).
    pub alpha: f64,
    /// Decay threshold for zero-width taken segments (`t1`, 0).
    pub t1: f64,
    /// Decay threshold for unit-width taken segments (`t2`, 0); the threshold is
    /// `t1 + (t2 - t1) * width_of_taken`.
    pub t2: f64,
    /// Stop after this many segments have been taken (101 in the release).
    pub max_taken: usize,
}

impl Default for SoftNmsParams {
    fn default() -> Self {
        Self {
            alpha: 0.4,
            t1: 0.0,
            t2: 0.0,
            max_taken: 101,
        }
    }
}

/// Options of [`postprocess_video`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostProcessOptions {
    /// Soft-NMS parameters.
    pub soft_nms: SoftNmsParams,
    /// How many segments to keep per video after Soft-NMS (100).
    pub top_k: usize,
}

impl Default for PostProcessOptions {
    fn default() -> Self {
        Self {
            soft_nms: SoftNmsParams::default(),
            top_k: 100,
        }
    }
}

/// IoU as the release computes it (`iou_with_anchors`): intersection over
/// `len_a - inter + b_end - b_start`, no epsilon (a zero union gives NaN,
/// which never passes a threshold).
#[inline]
pub fn release_iou(a_start: f64, a_end: f64, b_start: f64, b_end: f64) -> f64 {
    let len_a = a_end - a_start;
    let int_min = a_start.max(b_start);
    let int_max = a_end.min(b_end);
    let inter = (int_max - int_min).max(0.0);
    let union = len_a - inter + b_end - b_start;
    inter / union
}

/// Fused score of every refined proposal: input score × stage-3 IoU estimate.
pub fn fuse_scores(input_scores: &[f64], iou_stage3: &[f32]) -> Vec<f64> {
    input_scores
        .iter()
        .zip(iou_stage3)
        .map(|(&s, &iou)| s * f64::from(iou))
        .collect()
}

/// Indices of `scores` in descending order, ties in input order (a stable sort).
pub fn stable_descending_order(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// The release's Soft-NMS on segments normalised to the video (`[0, 1]`).
///
/// The segments are first sorted by score, descending and stable. Then, while
/// more than one segment remains and fewer than `max_taken` were taken, the
/// highest-scoring remaining one (the first of equal maxima) is taken, and
/// every other remaining segment whose [`release_iou`] with it exceeds
/// `t1 + (t2 - t1) * width` has its score multiplied by `exp(-IoU^2.5 / alpha)`.
/// The last remaining segment is dropped, as in the release. The result is in
/// the order taken (scores non-increasing).
pub fn soft_nms(segments: &[ScoredSegment], params: &SoftNmsParams) -> Vec<ScoredSegment> {
    let scores: Vec<f64> = segments.iter().map(|s| s.score).collect();
    let order = stable_descending_order(&scores);
    let mut start: Vec<f64> = order.iter().map(|&i| segments[i].start).collect();
    let mut end: Vec<f64> = order.iter().map(|&i| segments[i].end).collect();
    let mut score: Vec<f64> = order.iter().map(|&i| segments[i].score).collect();
    let mut taken = Vec::with_capacity(params.max_taken.min(segments.len()));
    while score.len() > 1 && taken.len() < params.max_taken {
        // First index of the maximum, like Python's list.index(max(list)).
        let mut best = 0;
        for i in 1..score.len() {
            if score[i] > score[best] {
                best = i;
            }
        }
        let (bs, be) = (start[best], end[best]);
        let threshold = params.t1 + (params.t2 - params.t1) * (be - bs);
        for i in 0..score.len() {
            if i == best {
                continue;
            }
            let iou = release_iou(start[i], end[i], bs, be);
            if iou > threshold {
                score[i] *= (-iou.powf(2.5) / params.alpha).exp();
            }
        }
        taken.push(ScoredSegment {
            start: bs,
            end: be,
            score: score[best],
        });
        start.remove(best);
        end.remove(best);
        score.remove(best);
    }
    taken
}

/// The whole post-processing of one video.
///
/// `refined` are the stage-3 refined proposals in seconds, `fused_scores` their
/// [`fuse_scores`]. Segments are normalised by `duration`, go through
/// [`soft_nms`], the `top_k` highest scores are kept (stable), and each
/// segment becomes `[max(0, s) * duration, min(1, e) * duration]` seconds.
pub fn postprocess_video(
    refined: &[(f64, f64)],
    fused_scores: &[f64],
    duration: f64,
    options: &PostProcessOptions,
) -> Vec<ScoredSegment> {
    let normalised: Vec<ScoredSegment> = refined
        .iter()
        .zip(fused_scores)
        .map(|(&(s, e), &score)| ScoredSegment {
            start: s / duration,
            end: e / duration,
            score,
        })
        .collect();
    let taken = soft_nms(&normalised, &options.soft_nms);
    let scores: Vec<f64> = taken.iter().map(|s| s.score).collect();
    stable_descending_order(&scores)
        .into_iter()
        .take(options.top_k)
        .map(|i| {
            let t = taken[i];
            ScoredSegment {
                start: t.start.max(0.0) * duration,
                end: t.end.min(1.0) * duration,
                score: t.score,
            }
        })
        .collect()
}
