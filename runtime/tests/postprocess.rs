//! The library's post-processing against a deliberately plain implementation
//! of docs/MODEL.md's rule, written here line by line after the release's Python
//! (lists, `list.index(max(list))`, `pop`), on random inputs and edge cases.
use tcanet_runtime::postprocess::{
    fuse_scores, postprocess_video, soft_nms, PostProcessOptions, ScoredSegment, SoftNmsParams,
};

mod common;
use common::{plain_postprocess, Rng};

fn check_same(got: &[ScoredSegment], want: &[(f64, f64, f64)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: number kept");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.start - w.0).abs() <= 1e-12 && (g.end - w.1).abs() <= 1e-12,
            "{what}: segment {i}: got [{}, {}], want [{}, {}]",
            g.start,
            g.end,
            w.0,
            w.1
        );
        assert!(
            (g.score - w.2).abs() <= 1e-12,
            "{what}: score {i}: got {}, want {}",
            g.score,
            w.2
        );
    }
}

struct Case {
    seg: Vec<(f64, f64)>,
    score: Vec<f64>,
    iou: Vec<f32>,
    duration: f64,
}

fn random_case(rng: &mut Rng, n: usize) -> Case {
    let duration = 10.0 + rng.uniform() * 300.0;
    let quantise = rng.below(3) == 0; // some cases with many tied scores
    let mut seg = Vec::new();
    let mut score = Vec::new();
    let mut iou = Vec::new();
    for _ in 0..n {
        let c = rng.uniform() * duration * 1.1 - 0.05 * duration;
        let len = rng.uniform() * duration * 0.5;
        seg.push((c - len / 2.0, c + len / 2.0));
        let s = rng.uniform();
        score.push(if quantise { (s * 4.0).round() / 4.0 } else { s });
        let u = rng.uniform() as f32;
        iou.push(if quantise { (u * 2.0).round() / 2.0 } else { u });
    }
    Case {
        seg,
        score,
        iou,
        duration,
    }
}

fn run_case(case: &Case, opts: &PostProcessOptions, what: &str) {
    let fused = fuse_scores(&case.score, &case.iou);
    let got = postprocess_video(&case.seg, &fused, case.duration, opts);
    let want = plain_postprocess(
        &case.seg,
        &case.score,
        &case.iou.iter().map(|&u| f64::from(u)).collect::<Vec<_>>(),
        case.duration,
        opts.soft_nms.alpha,
        opts.soft_nms.t1,
        opts.soft_nms.t2,
    );
    check_same(&got, &want, what);
}

#[test]
fn random_videos_match_the_plain_rule() {
    let mut rng = Rng(7);
    let opts = PostProcessOptions::default();
    for v in 0..300 {
        let n = 1 + rng.below(400);
        let case = random_case(&mut rng, n);
        run_case(&case, &opts, &format!("video {v} (n={n})"));
    }
}

#[test]
fn random_videos_match_with_other_thresholds() {
    let mut rng = Rng(11);
    for (alpha, t1, t2) in [(0.75, 0.1, 0.9), (0.2, 0.5, 0.5), (0.4, 0.0, 0.65)] {
        let opts = PostProcessOptions {
            soft_nms: SoftNmsParams {
                alpha,
                t1,
                t2,
                ..SoftNmsParams::default()
            },
            ..Default::default()
        };
        for v in 0..40 {
            let n = 1 + rng.below(250);
            let case = random_case(&mut rng, n);
            run_case(
                &case,
                &opts,
                &format!("alpha {alpha} t1 {t1} t2 {t2} video {v}"),
            );
        }
    }
}

#[test]
fn a_single_proposal_is_kept_as_the_release_skips_soft_nms_for_it() {
    // The release runs Soft-NMS only when a video has more than one
    // proposal; its stopping rule would otherwise drop the only one.
    let case = Case {
        seg: vec![(2.0, 5.0)],
        score: vec![0.9],
        iou: vec![0.8],
        duration: 10.0,
    };
    run_case(&case, &PostProcessOptions::default(), "one proposal");
    let fused = fuse_scores(&case.score, &case.iou);
    let got = postprocess_video(&case.seg, &fused, 10.0, &Default::default());
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].start, got[0].end), (2.0, 5.0));
    assert_eq!(got[0].score, 0.9 * f64::from(0.8f32));
    // Clipped to the video like any other.
    let got = postprocess_video(&[(-1.0, 12.0)], &[0.5], 10.0, &Default::default());
    assert_eq!((got[0].start, got[0].end, got[0].score), (0.0, 10.0, 0.5));
    // Soft-NMS itself still drops the last remaining one (two in, one out).
    let two = [
        ScoredSegment {
            start: 0.0,
            end: 0.2,
            score: 0.9,
        },
        ScoredSegment {
            start: 0.5,
            end: 0.7,
            score: 0.4,
        },
    ];
    assert_eq!(soft_nms(&two, &SoftNmsParams::default()).len(), 1);
    assert!(postprocess_video(&[], &[], 10.0, &Default::default()).is_empty());
}

#[test]
fn two_proposals_keep_the_best_only() {
    let seg = vec![(0.0, 4.0), (5.0, 9.0)];
    let fused = fuse_scores(&[0.5, 0.9], &[1.0, 1.0]);
    let got = postprocess_video(&seg, &fused, 10.0, &Default::default());
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].start, got[0].end, got[0].score), (5.0, 9.0, 0.9));
}

#[test]
fn equal_scores_take_the_first_in_input_order() {
    // Disjoint segments: no decay, so equal scores stay equal and the order
    // taken is the input order (stable sort, first maximum).
    let seg: Vec<(f64, f64)> = (0..6)
        .map(|i| (i as f64 * 10.0, i as f64 * 10.0 + 5.0))
        .collect();
    let case = Case {
        seg: seg.clone(),
        score: vec![0.5; 6],
        iou: vec![0.5; 6],
        duration: 60.0,
    };
    run_case(&case, &PostProcessOptions::default(), "equal scores");
    let fused = fuse_scores(&case.score, &case.iou);
    let got = postprocess_video(&seg, &fused, 60.0, &Default::default());
    let starts: Vec<f64> = got.iter().map(|s| s.start).collect();
    assert_eq!(starts, vec![0.0, 10.0, 20.0, 30.0, 40.0]);
    // Overlapping, all equal: the same segment repeated.
    let case = Case {
        seg: vec![(1.0, 3.0); 5],
        score: vec![0.7; 5],
        iou: vec![1.0; 5],
        duration: 5.0,
    };
    run_case(&case, &PostProcessOptions::default(), "identical segments");
}

#[test]
fn zero_length_segments_never_decay_or_cause_decay() {
    // IoU with a zero-length segment is 0/0 = NaN or 0: never above the threshold.
    let seg = vec![(2.0, 2.0), (2.0, 2.0), (1.0, 3.0), (2.5, 2.5)];
    let score = vec![0.9, 0.8, 0.7, 0.6];
    let iou = vec![1.0f32; 4];
    let case = Case {
        seg: seg.clone(),
        score: score.clone(),
        iou: iou.clone(),
        duration: 4.0,
    };
    run_case(&case, &PostProcessOptions::default(), "zero length");
    let got = postprocess_video(&seg, &fuse_scores(&score, &iou), 4.0, &Default::default());
    let scores: Vec<f64> = got.iter().map(|s| s.score).collect();
    assert_eq!(scores, vec![0.9, 0.8, 0.7]);
}

#[test]
fn segments_are_clipped_to_the_video() {
    let seg = vec![(-3.0, 4.0), (8.0, 14.0), (20.0, 30.0)];
    let fused = fuse_scores(&[0.9, 0.8, 0.1], &[1.0, 1.0, 1.0]);
    let got = postprocess_video(&seg, &fused, 10.0, &Default::default());
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].start, got[0].end), (0.0, 4.0));
    assert_eq!((got[1].start, got[1].end), (8.0, 10.0));
}

#[test]
fn at_most_101_taken_and_100_kept() {
    let mut rng = Rng(3);
    let case = random_case(&mut rng, 400);
    let fused = fuse_scores(&case.score, &case.iou);
    let normalised: Vec<ScoredSegment> = case
        .seg
        .iter()
        .zip(&fused)
        .map(|(&(s, e), &score)| ScoredSegment {
            start: s / case.duration,
            end: e / case.duration,
            score,
        })
        .collect();
    assert_eq!(soft_nms(&normalised, &SoftNmsParams::default()).len(), 101);
    let got = postprocess_video(&case.seg, &fused, case.duration, &Default::default());
    assert_eq!(got.len(), 100);
    assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn decay_follows_the_formula_on_a_hand_case() {
    // Taken [0, 0.4]; other [0.2, 0.6]: inter 0.2, union 0.6, IoU 1/3.
    let segs = [
        ScoredSegment {
            start: 0.0,
            end: 0.4,
            score: 0.9,
        },
        ScoredSegment {
            start: 0.2,
            end: 0.6,
            score: 0.8,
        },
        ScoredSegment {
            start: 0.8,
            end: 0.9,
            score: 0.1,
        },
    ];
    let out = soft_nms(&segs, &SoftNmsParams::default());
    let iou: f64 = 0.2 / 0.6;
    let expected = 0.8 * (-(iou.powf(2.5)) / 0.4).exp();
    assert_eq!(out.len(), 2);
    assert!(
        (out[1].score - expected).abs() < 1e-12,
        "{} vs {expected}",
        out[1].score
    );
}
