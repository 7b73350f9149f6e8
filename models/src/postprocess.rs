//! The post-processing of docs/MODEL.md ("Inference and post-processing"):
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
#[inline(always)]
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
    let neg_inv_alpha = -1.0 / params.alpha;
    while score.len() > 1 && taken.len() < params.max_taken {
        // The first of the highest scores, like Python's list.index(max(list)).
        let best = first_max(&score);
        let (bs, be) = (start[best], end[best]);
        let taken_score = score[best];
        let threshold = params.t1 + (params.t2 - params.t1) * (be - bs);
        let by = Decay {
            bs,
            be,
            threshold,
            neg_inv_alpha,
        };
        decay(&start, &end, &mut score, by);
        taken.push(ScoredSegment {
            start: bs,
            end: be,
            score: taken_score,
        });
        start.remove(best);
        end.remove(best);
        score.remove(best);
    }
    taken
}

/// What one taken segment `[bs, be]` does to the others' scores in
/// [`decay`].
#[derive(Debug, Clone, Copy)]
struct Decay {
    bs: f64,
    be: f64,
    /// IoU above which a score decays.
    threshold: f64,
    /// `-1 / alpha`.
    neg_inv_alpha: f64,
}

/// Multiplies every score by `exp(-IoU^2.5 / alpha)` where its segment's
/// [`release_iou`] with the taken one `[by.bs, by.be]` exceeds `by.threshold` (the
/// taken one is removed afterwards, so its own factor does not matter).
/// Branch-free, so the compiler vectorises it; on x86-64 a copy compiled for
/// AVX2 is used when the CPU has it (same results: no FMA contraction).
fn decay(start: &[f64], end: &[f64], score: &mut [f64], by: Decay) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { decay_avx2(start, end, score, by) };
            return;
        }
    }
    decay_portable(start, end, score, by);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn decay_avx2(start: &[f64], end: &[f64], score: &mut [f64], by: Decay) {
    decay_portable(start, end, score, by)
}

#[inline(always)]
fn decay_portable(start: &[f64], end: &[f64], score: &mut [f64], by: Decay) {
    let Decay {
        bs,
        be,
        threshold,
        neg_inv_alpha,
    } = by;
    for ((sc, &s), &e) in score.iter_mut().zip(start).zip(end) {
        let u = release_iou(s, e, bs, be);
        let f = exp_non_positive(pow_2_5(u) * neg_inv_alpha);
        *sc *= if u > threshold { f } else { 1.0 };
    }
}

/// Index of the first maximum (`list.index(max(list))`); 0 for an empty list
/// or when no value compares greater than the first (NaN).
fn first_max(values: &[f64]) -> usize {
    // The maximum with four independent lanes (vectorised), then its first position.
    let mut lanes = [f64::NEG_INFINITY; 4];
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..4 {
            lanes[j] = if c[j] > lanes[j] { c[j] } else { lanes[j] };
        }
    }
    let mut max = lanes[0];
    for &v in lanes[1..].iter().chain(rest) {
        if v > max {
            max = v;
        }
    }
    values.iter().position(|&v| v == max).unwrap_or(0)
}

/// `e^x` for `x <= 0` (NaN gives NaN; below -708, 0), within a few ulp of
/// `f64::exp`, written so that the compiler vectorises loops over it:
/// `x = n·ln2 + r` with `|r| <= ln2/2`, a degree-13 Taylor polynomial for
/// `e^r` (truncation below 1e-17 relative), and `2^n` built from its bits.
#[inline(always)]
pub fn exp_non_positive(x: f64) -> f64 {
    const SHIFTER: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52: rounds to an integer
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = if x < -708.0 { -708.0 } else { x };
    let t = x * std::f64::consts::LOG2_E + SHIFTER;
    let n = t - SHIFTER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // 1 + r + r²/2! + ... + r^13/13!, by Estrin's scheme (short dependency chains).
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let q0 = C[0] + C[1] * r;
    let q1 = C[2] + C[3] * r;
    let q2 = C[4] + C[5] * r;
    let q3 = C[6] + C[7] * r;
    let q4 = C[8] + C[9] * r;
    let q5 = C[10] + C[11] * r;
    let q6 = C[12] + C[13] * r;
    let s0 = q0 + q1 * r2;
    let s1 = q2 + q3 * r2;
    let s2 = q4 + q5 * r2;
    let t0 = s0 + s1 * r4;
    let t1 = s2 + q6 * r4;
    let p = t0 + t1 * r8;
    // 2^n from the low bits of t (n is in [-1022, 0]).
    let n_bits = t.to_bits().wrapping_sub(SHIFTER.to_bits());
    let scale = f64::from_bits(n_bits.wrapping_add(1023) << 52);
    let y = p * scale;
    if x <= -708.0 {
        0.0
    } else {
        y
    }
}

/// `x^2.5` for `x` in `[0, 1]` as `x² · √x` (within 2 ulp of `powf`, much faster).
#[inline(always)]
fn pow_2_5(x: f64) -> f64 {
    x * x * x.sqrt()
}

/// The whole post-processing of one video.
///
/// `refined` are the stage-3 refined proposals in seconds, `fused_scores` their
/// [`fuse_scores`]. Segments are normalised by `duration`, go through
/// [`soft_nms`] when there is more than one (as in the release, a video with
/// a single proposal keeps it: Soft-NMS would drop it), the `top_k` highest
/// scores are kept (stable), and each segment becomes
/// `[max(0, s) * duration, min(1, e) * duration]` seconds.
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
    let taken = if normalised.len() > 1 {
        soft_nms(&normalised, &options.soft_nms)
    } else {
        normalised
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_standard_library() {
        let mut worst = 0.0f64;
        let mut x = 0.0f64;
        while x > -710.0 {
            let (a, b) = (exp_non_positive(x), x.exp());
            if b > 1e-300 {
                worst = worst.max(((a - b) / b).abs());
            } else {
                assert!(a.abs() < 1e-300, "{x}: {a}");
            }
            x -= 0.000_731;
        }
        assert!(worst < 1e-15, "worst relative error {worst}");
        assert_eq!(exp_non_positive(0.0), 1.0);
        assert!(exp_non_positive(f64::NAN).is_nan());
    }
}
