//! Small hand-built cases, one per rule of the official code's evaluation (README, evaluator section), with
//! the expected numbers worked out by hand in the comments, and random cases
//! checked against a plain transcription of the official Python code.

use tcanet_evaluator::{
    evaluate_detections, evaluate_proposals, Detection, DetectionOptions, DetectionSet,
    GroundTruth, Proposal, ProposalOptions, ProposalSet,
};

fn prop(s: f64, e: f64, score: f64) -> Proposal {
    Proposal {
        segment: [s, e],
        score,
    }
}

fn opts(m: f64) -> ProposalOptions {
    ProposalOptions {
        max_avg_proposals: m,
        ..Default::default()
    }
}

#[test]
fn video_without_proposals_counts_its_instances_as_missed() {
    // Two videos, one instance each; only A has a (perfect) proposal.
    // ratio = 100*2/1 -> A keeps 1; pcn[j] = j/100*200 -> A matched at every
    // point, B never: recall 0.5 everywhere, AN[j] = j, AUC = 0.5*99/100*100.
    let gt = GroundTruth::from_videos(
        "validation",
        [
            ("A", vec![([0.0, 10.0], "x")]),
            ("B", vec![([0.0, 10.0], "x")]),
        ],
    );
    let mut p = ProposalSet::new();
    p.push("A", vec![prop(0.0, 10.0, 0.9)]);
    let r = evaluate_proposals(&gt, &p, &opts(100.0)).unwrap();
    assert!(r.average_recall.iter().all(|&x| x == 0.5));
    assert_eq!(r.average_nr_proposals[0], 1.0);
    assert_eq!(r.average_nr_proposals[99], 100.0);
    assert!((r.auc - 49.5).abs() < 1e-12, "{}", r.auc);
    assert_eq!((r.n_videos, r.n_instances, r.n_kept), (2, 2, 1));
    // An empty list is the same as no entry.
    p.push("B", vec![]);
    let r2 = evaluate_proposals(&gt, &p, &opts(100.0)).unwrap();
    assert_eq!(r2.average_recall, r.average_recall);
}

#[test]
fn proposals_of_unknown_videos_count_in_the_ratio() {
    // GT: one video, one instance. A: the hit ranked first, then 2 misses.
    // X (not in GT): 5 proposals. M = 4: ratio = 4*1/8 = 0.5 -> A keeps
    // int(3*0.5) = 1; pcn[j] = j/100*4 -> int(pcn) >= 1 from j = 25 on.
    let gt = GroundTruth::from_videos("validation", [("A", vec![([0.0, 10.0], "x")])]);
    let mut p = ProposalSet::new();
    p.push(
        "A",
        vec![
            prop(50.0, 60.0, 0.2),
            prop(0.0, 10.0, 0.9),
            prop(30.0, 40.0, 0.1),
        ],
    );
    p.push(
        "X",
        (0..5)
            .map(|i| prop(i as f64, i as f64 + 1.0, 0.5))
            .collect(),
    );
    let r = evaluate_proposals(&gt, &p, &opts(4.0)).unwrap();
    assert_eq!(r.n_kept, 1);
    assert_eq!(r.n_proposals, 8);
    for j in 0..100 {
        let want = if j >= 24 { 1.0 } else { 0.0 };
        assert_eq!(r.average_recall[j], want, "point {j}");
    }
    assert!(r.warnings.iter().any(|w| w.contains("1 of 2 videos")));
    // Without X: ratio = 4/3 -> keeps all 3; pcn[j] = j/100*4/3, the first
    // proposal is in from int(3*pcn) >= 1, i.e. j >= 25 too, but AN differs.
    p.videos.pop();
    let r = evaluate_proposals(&gt, &p, &opts(4.0)).unwrap();
    assert_eq!(r.n_kept, 3);
    assert_eq!(r.average_recall[24], 1.0);
    assert_eq!(r.average_recall[23], 0.0);
}

#[test]
fn fewer_than_m_proposals_per_video() {
    // 1 video, 2 instances, 10 proposals, M = 100: ratio = 100*1/10 keeps
    // all 10; pcn[j] = j/100 * 100/10 = j/10, so point j takes
    // int(10 * j/10) = j proposals (at most 10) and the curve is flat from
    // j = 10 on; AN[j] = pcn[j] * 10/1 = j.
    let gt = GroundTruth::from_videos(
        "validation",
        [("A", vec![([0.0, 10.0], "x"), ([20.0, 30.0], "x")])],
    );
    let mut props: Vec<Proposal> = (0..10)
        .map(|i| prop(100.0 + i as f64, 101.0 + i as f64, 1.0 - i as f64 * 0.01))
        .collect();
    props[0] = prop(0.0, 10.0, 0.99); // rank 1 finds instance 1
    props[6] = prop(20.0, 30.5, 0.935); // rank 7 finds instance 2 (tIoU 10/10.5 >= 0.95)
    let mut p = ProposalSet::new();
    p.push("A", props);
    let r = evaluate_proposals(&gt, &p, &opts(100.0)).unwrap();
    assert_eq!(r.n_kept, 10);
    assert_eq!(r.average_recall[0], 0.5);
    assert_eq!(r.average_recall[5], 0.5);
    assert_eq!(r.average_recall[6], 1.0);
    assert_eq!(r.ar_at_10, 1.0);
    assert_eq!(r.ar_at_100, 1.0);
    assert_eq!(r.average_nr_proposals[6], 7.000000000000001);
}

#[test]
fn reversed_and_zero_length_segments_follow_the_formula() {
    // Proposals: a zero-length proposal on a zero-length instance has
    // union 0 -> NaN, which is never >= t: not found.
    let gt = GroundTruth::from_videos("validation", [("A", vec![([5.0, 5.0], "x")])]);
    let mut p = ProposalSet::new();
    p.push("A", vec![prop(5.0, 5.0, 0.5)]);
    let r = evaluate_proposals(&gt, &p, &opts(100.0)).unwrap();
    assert!(r.average_recall.iter().all(|&x| x == 0.0));

    // Detections: reversed [10, 5] on [0, 5]: intersection 0, union
    // 5 + (-5) - 0 = 0 -> NaN. numpy's argsort puts NaN first and
    // `NaN < t` is false, so the official code takes it as a true
    // positive at every threshold: AP 1.
    let gt = GroundTruth::from_videos("validation", [("A", vec![([0.0, 5.0], "x")])]);
    let mut d = DetectionSet::new();
    let x = d.label_id("x");
    d.push(
        "A",
        vec![Detection {
            segment: [10.0, 5.0],
            score: 0.5,
            label: x,
        }],
    );
    let r = evaluate_detections(&gt, &d, &DetectionOptions::default()).unwrap();
    assert!(r.map.iter().all(|&m| m == 1.0), "{:?}", r.map);
    // A reversed segment elsewhere ([8, 2] on [0, 10]) has tIoU 0: AP 0.
    d.videos[0].entries[0].segment = [8.0, 2.0];
    let r = evaluate_detections(&gt, &d, &DetectionOptions::default()).unwrap();
    assert!(r.map.iter().all(|&m| m == 0.0));
}

#[test]
fn class_without_predictions_has_ap_zero() {
    let gt = GroundTruth::from_videos(
        "validation",
        [("A", vec![([0.0, 10.0], "run"), ([20.0, 30.0], "jump")])],
    );
    let mut d = DetectionSet::new();
    let run = d.label_id("run");
    d.push(
        "A",
        vec![Detection {
            segment: [0.0, 10.0],
            score: 0.9,
            label: run,
        }],
    );
    let r = evaluate_detections(&gt, &d, &DetectionOptions::default()).unwrap();
    assert_eq!(r.ap.0[0], ("run".to_string(), vec![1.0; 10]));
    assert_eq!(r.ap.0[1], ("jump".to_string(), vec![0.0; 10]));
    assert!(r.map.iter().all(|&m| m == 0.5));
    assert_eq!(r.average_map, 0.5);
}

#[test]
fn tied_scores_keep_file_order() {
    // Detections: a hit and a miss with the same score. Hit first: precision
    // [1, 1/2], recall [1, 1] -> AP 1. Miss first: precision [0, 1/2],
    // recall [0, 1] -> AP 1/2.
    let gt = GroundTruth::from_videos("validation", [("A", vec![([0.0, 10.0], "x")])]);
    let hit = Detection {
        segment: [0.0, 10.0],
        score: 0.5,
        label: 0,
    };
    let miss = Detection {
        segment: [50.0, 60.0],
        ..hit
    };
    let run = |entries: Vec<Detection>| {
        let mut d = DetectionSet::new();
        d.label_id("x");
        d.push("A", entries);
        let r = evaluate_detections(&gt, &d, &DetectionOptions::default()).unwrap();
        (r.average_map, r.warnings)
    };
    // The tie decides the result: a warning gives the other order's number.
    let (map, warnings) = run(vec![hit, miss]);
    assert_eq!(map, 1.0);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("2 detections tie in score")
                && w.contains("average mAP 0.500000 instead of 1.000000")),
        "{warnings:?}"
    );
    let (map, warnings) = run(vec![miss, hit]);
    assert_eq!(map, 0.5);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("average mAP 1.000000 instead of 0.500000")),
        "{warnings:?}"
    );
    // Two tied misses decide nothing: no warning.
    let other_miss = Detection {
        segment: [70.0, 80.0],
        ..hit
    };
    let (map, warnings) = run(vec![miss, other_miss]);
    assert_eq!(map, 0.0);
    assert!(warnings.iter().all(|w| !w.contains("tie")), "{warnings:?}");

    // Proposals: M = 1, two tied proposals: ratio 1/2 keeps int(2/2) = 1,
    // the first in file order.
    let mut p = ProposalSet::new();
    p.push("A", vec![prop(50.0, 60.0, 0.5), prop(0.0, 10.0, 0.5)]);
    let r = evaluate_proposals(&gt, &p, &opts(1.0)).unwrap();
    assert_eq!(r.ar_at_100, 0.0);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("2 proposals tie in score")
                && w.contains("AR@100 1.000000 instead of 0.000000")),
        "{:?}",
        r.warnings
    );
    p.videos[0].entries.reverse();
    let r = evaluate_proposals(&gt, &p, &opts(1.0)).unwrap();
    assert_eq!(r.ar_at_100, 1.0);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("AR@100 0.000000 instead of 1.000000")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn detections_of_unknown_videos_are_false_positives() {
    // X is not in the GT: its higher-scored detection is a false positive
    // ranked first: precision [0, 1/2] -> AP 1/2.
    let gt = GroundTruth::from_videos("validation", [("A", vec![([0.0, 10.0], "x")])]);
    let mut d = DetectionSet::new();
    let x = d.label_id("x");
    d.push(
        "X",
        vec![Detection {
            segment: [0.0, 10.0],
            score: 0.9,
            label: x,
        }],
    );
    d.push(
        "A",
        vec![Detection {
            segment: [0.0, 10.0],
            score: 0.8,
            label: x,
        }],
    );
    let r = evaluate_detections(&gt, &d, &DetectionOptions::default()).unwrap();
    assert_eq!(r.average_map, 0.5);
}

#[test]
fn each_instance_matches_once_per_threshold() {
    // Two detections on one instance: the second is a duplicate (FP);
    // a third matches the second instance. Precision [1, 1/2, 2/3],
    // recall [1/2, 1/2, 1] -> AP = 0.5*1 + 0.5*(2/3).
    let gt = GroundTruth::from_videos(
        "validation",
        [("A", vec![([0.0, 10.0], "x"), ([20.0, 30.0], "x")])],
    );
    let det = |s: f64, e: f64, score: f64| Detection {
        segment: [s, e],
        score,
        label: 0,
    };
    let mut d = DetectionSet::new();
    d.label_id("x");
    d.push(
        "A",
        vec![
            det(0.0, 10.0, 0.9),
            det(0.0, 10.0, 0.8),
            det(20.0, 30.0, 0.7),
        ],
    );
    let r = evaluate_detections(&gt, &d, &DetectionOptions::default()).unwrap();
    let want = 0.5 + 0.5 * (2.0 / 3.0);
    assert!(r.map.iter().all(|&m| (m - want).abs() < 1e-15));
}

#[test]
fn unannotated_videos_are_left_out() {
    // The official code builds its video list from annotations: a subset
    // video without any does not count in n_videos nor in the ratio.
    let gt = GroundTruth::from_json_str(
        r#"{"database": {
            "A": {"subset": "validation", "annotations": [{"segment": [0, 10], "label": "x"}]},
            "E": {"subset": "validation", "annotations": []},
            "T": {"subset": "training", "annotations": [{"segment": [0, 1], "label": "y"}]}}}"#,
        "validation",
    )
    .unwrap();
    assert_eq!(gt.videos.len(), 2);
    assert_eq!(gt.labels, ["x"]);
    let mut p = ProposalSet::new();
    p.push("A", vec![prop(0.0, 10.0, 0.9)]);
    let r = evaluate_proposals(&gt, &p, &opts(100.0)).unwrap();
    assert_eq!(r.n_videos, 1);
    assert_eq!(r.ar_at_1, 1.0);
}

// ---------------------------------------------------------------------
// A plain transcription of the official code (matrices, as numpy does it)
// to check random cases without ties.

fn ref_tiou(p: [f64; 2], g: [f64; 2]) -> f64 {
    let tt1 = p[0].max(g[0]);
    let tt2 = p[1].min(g[1]);
    let inter = (tt2 - tt1).max(0.0);
    inter / ((g[1] - g[0]) + (p[1] - p[0]) - inter)
}

fn ref_proposals(
    gt: &[(String, Vec<[f64; 2]>)],
    preds: &[(String, Vec<Proposal>)],
    m: f64,
    thr: &[f64],
) -> Vec<f64> {
    let n_total: usize = preds.iter().map(|p| p.1.len()).sum();
    let ratio = m * gt.len() as f64 / n_total as f64;
    let mut scores: Vec<Vec<Vec<f64>>> = Vec::new(); // video -> [inst][prop]
    let mut total = 0usize;
    for (id, inst) in gt {
        let props = preds.iter().rev().find(|p| &p.0 == id).map(|p| p.1.clone());
        match props {
            Some(mut props) if !props.is_empty() => {
                props.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap());
                let n = ((props.len() as f64 * ratio) as usize).min(props.len());
                total += n;
                scores.push(
                    inst.iter()
                        .map(|g| props[..n].iter().map(|p| ref_tiou(p.segment, *g)).collect())
                        .collect(),
                );
            }
            _ => scores.push(inst.iter().map(|_| vec![0.0]).collect()),
        }
    }
    let pcn: Vec<f64> = (1..=100)
        .map(|j| j as f64 / 100.0 * (m * gt.len() as f64 / total as f64))
        .collect();
    let positives: usize = scores.iter().map(|s| s.len()).sum();
    let mut avg = vec![0.0; 100];
    for &t in thr {
        for (j, &pc) in pcn.iter().enumerate() {
            let mut matches = 0usize;
            for s in &scores {
                let cols = s.first().map_or(0, |r| r.len());
                let nr = ((cols as f64 * pc) as usize).min(cols);
                matches += s
                    .iter()
                    .filter(|row| row[..nr].iter().any(|&x| x >= t))
                    .count();
            }
            avg[j] += matches as f64 / positives as f64;
        }
    }
    avg.iter().map(|x| x / thr.len() as f64).collect()
}

fn ref_ap(gt: &[(String, Vec<[f64; 2]>)], preds: &[(String, Vec<Proposal>)], thr: f64) -> f64 {
    let mut flat: Vec<(&str, Proposal)> = preds
        .iter()
        .flat_map(|(id, ps)| ps.iter().map(move |p| (id.as_str(), *p)))
        .collect();
    flat.sort_by(|a, b| b.1.score.partial_cmp(&a.1.score).unwrap());
    let npos: usize = gt.iter().map(|g| g.1.len()).sum();
    let mut taken: Vec<Vec<bool>> = gt.iter().map(|g| vec![false; g.1.len()]).collect();
    let (mut tp, mut fp) = (0.0, 0.0);
    let (mut prec, mut rec) = (vec![0.0], vec![0.0]);
    for (id, p) in flat {
        let mut is_tp = false;
        if let Some(v) = gt.iter().position(|g| g.0 == id) {
            let mut order: Vec<(f64, usize)> = gt[v]
                .1
                .iter()
                .enumerate()
                .map(|(i, g)| (ref_tiou(p.segment, *g), i))
                .collect();
            order.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(b.1.cmp(&a.1)));
            for (iou, i) in order {
                if iou < thr {
                    break;
                }
                if !taken[v][i] {
                    taken[v][i] = true;
                    is_tp = true;
                    break;
                }
            }
        }
        if is_tp {
            tp += 1.0
        } else {
            fp += 1.0
        }
        prec.push(tp / (tp + fp));
        rec.push(tp / npos as f64);
    }
    prec.push(0.0);
    rec.push(1.0);
    for i in (0..prec.len() - 1).rev() {
        prec[i] = prec[i].max(prec[i + 1]);
    }
    (1..prec.len())
        .filter(|&i| rec[i] != rec[i - 1])
        .map(|i| (rec[i] - rec[i - 1]) * prec[i])
        .sum()
}

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn random_cases_match_a_plain_transcription_of_the_official_code() {
    let mut rng = Rng(7);
    for case in 0..40 {
        let n_videos = 1 + (rng.unit() * 6.0) as usize;
        let gt: Vec<(String, Vec<[f64; 2]>)> = (0..n_videos)
            .map(|v| {
                let k = 1 + (rng.unit() * 3.0) as usize;
                let inst = (0..k)
                    .map(|_| {
                        let s = rng.unit() * 80.0;
                        [s, s + 1.0 + rng.unit() * 20.0]
                    })
                    .collect();
                (format!("v{v}"), inst)
            })
            .collect();
        let mut preds: Vec<(String, Vec<Proposal>)> = Vec::new();
        for v in 0..n_videos + 1 {
            if rng.unit() < 0.2 {
                continue; // a video without predictions (or none outside GT)
            }
            let k = (rng.unit() * 25.0) as usize;
            let ps = (0..k)
                .map(|_| {
                    let s = rng.unit() * 90.0;
                    prop(s, s + rng.unit() * 25.0, rng.unit())
                })
                .collect();
            preds.push((format!("v{v}"), ps));
        }
        if preds.iter().all(|p| p.1.is_empty()) {
            continue;
        }
        let gt_model = GroundTruth::from_videos(
            "validation",
            gt.iter()
                .map(|(id, inst)| (id.as_str(), inst.iter().map(|&s| (s, "a")).collect())),
        );
        let m = [1.0, 3.0, 10.0, 100.0][case % 4];
        let thr = tcanet_evaluator::numeric::linspace(0.5, 0.95, 10);
        let mut p = ProposalSet::new();
        let mut d = DetectionSet::new();
        let a = d.label_id("a");
        for (id, ps) in &preds {
            p.push(id.clone(), ps.clone());
            d.push(
                id.clone(),
                ps.iter()
                    .map(|q| Detection {
                        segment: q.segment,
                        score: q.score,
                        label: a,
                    })
                    .collect(),
            );
        }
        match evaluate_proposals(&gt_model, &p, &opts(m)) {
            Ok(r) => {
                let want = ref_proposals(&gt, &preds, m, &thr);
                for (j, (got, want)) in r.average_recall.iter().zip(&want).enumerate() {
                    assert!(
                        (got - want).abs() < 1e-12,
                        "case {case} point {j}: {got} vs {want}"
                    );
                }
            }
            Err(e) => assert!(e.to_string().contains("no proposal"), "case {case}: {e}"),
        }
        let r = evaluate_detections(&gt_model, &d, &DetectionOptions::default()).unwrap();
        for (t, &th) in thr.iter().enumerate() {
            let want = ref_ap(&gt, &preds, th);
            assert!(
                (r.map[t] - want).abs() < 1e-12,
                "case {case} threshold {th}: {} vs {want}",
                r.map[t]
            );
        }
    }
}

#[test]
fn tied_scores_and_unsorted_thresholds_match_the_transcription() {
    // Scores on a grid of 0.1 (many ties, ranked in file order by both),
    // thresholds out of order and repeated.
    let mut rng = Rng(11);
    let thr = [0.7, 0.3, 0.5, 0.5, 0.95];
    for case in 0..60 {
        let n_videos = 1 + (rng.unit() * 5.0) as usize;
        let gt: Vec<(String, Vec<[f64; 2]>)> = (0..n_videos)
            .map(|v| {
                let k = 1 + (rng.unit() * 4.0) as usize;
                let inst = (0..k)
                    .map(|_| {
                        let s = rng.unit() * 60.0;
                        [s, s + 1.0 + rng.unit() * 15.0]
                    })
                    .collect();
                (format!("v{v}"), inst)
            })
            .collect();
        let mut preds: Vec<(String, Vec<Proposal>)> = Vec::new();
        for (id, inst) in &gt {
            let k = 1 + (rng.unit() * 40.0) as usize;
            let ps = (0..k)
                .map(|_| {
                    let g = inst[(rng.unit() * inst.len() as f64) as usize];
                    let jitter = |x: f64, r: &mut Rng| x + (r.unit() - 0.5) * 6.0;
                    let (a, b) = (jitter(g[0], &mut rng), jitter(g[1], &mut rng));
                    prop(a, b, (rng.unit() * 10.0).floor() / 10.0)
                })
                .collect();
            preds.push((id.clone(), ps));
        }
        let gt_model = GroundTruth::from_videos(
            "validation",
            gt.iter()
                .map(|(id, inst)| (id.as_str(), inst.iter().map(|&s| (s, "a")).collect())),
        );
        let mut p = ProposalSet::new();
        for (id, ps) in &preds {
            p.push(id.clone(), ps.clone());
        }
        let m = [0.9, 2.0, 7.0, 100.0][case % 4];
        let o = ProposalOptions {
            tiou_thresholds: thr.to_vec(),
            max_avg_proposals: m,
        };
        let r = match evaluate_proposals(&gt_model, &p, &o) {
            Ok(r) => r,
            Err(e) => {
                assert!(e.to_string().contains("no proposal"), "case {case}: {e}");
                continue;
            }
        };
        let want = ref_proposals(&gt, &preds, m, &thr);
        for (j, (got, want)) in r.average_recall.iter().zip(&want).enumerate() {
            assert!(
                (got - want).abs() < 1e-12,
                "case {case} point {j}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn many_instances_and_thresholds_match_the_transcription() {
    // Up to a dozen instances per video and 19 thresholds: many distinct
    // best-ranked matches per video (the evaluator's larger-case path).
    let mut rng = Rng(23);
    let thr = tcanet_evaluator::numeric::linspace(0.05, 0.95, 19);
    for case in 0..12 {
        let gt: Vec<(String, Vec<[f64; 2]>)> = (0..3)
            .map(|v| {
                let k = 6 + (rng.unit() * 7.0) as usize;
                let inst = (0..k)
                    .map(|_| {
                        let s = rng.unit() * 200.0;
                        [s, s + 2.0 + rng.unit() * 30.0]
                    })
                    .collect();
                (format!("v{v}"), inst)
            })
            .collect();
        let preds: Vec<(String, Vec<Proposal>)> = gt
            .iter()
            .map(|(id, inst)| {
                let ps = (0..60 + (rng.unit() * 80.0) as usize)
                    .map(|_| {
                        let g = inst[(rng.unit() * inst.len() as f64) as usize];
                        let jitter = |x: f64, r: &mut Rng| x + (r.unit() - 0.5) * 10.0;
                        let (a, b) = (jitter(g[0], &mut rng), jitter(g[1], &mut rng));
                        prop(a, b, rng.unit())
                    })
                    .collect();
                (id.clone(), ps)
            })
            .collect();
        let gt_model = GroundTruth::from_videos(
            "validation",
            gt.iter()
                .map(|(id, inst)| (id.as_str(), inst.iter().map(|&s| (s, "a")).collect())),
        );
        let mut p = ProposalSet::new();
        for (id, ps) in &preds {
            p.push(id.clone(), ps.clone());
        }
        let m = [30.0, 100.0, 500.0][case % 3];
        let o = ProposalOptions {
            tiou_thresholds: thr.clone(),
            max_avg_proposals: m,
        };
        let r = evaluate_proposals(&gt_model, &p, &o).unwrap();
        let want = ref_proposals(&gt, &preds, m, &thr);
        for (j, (got, want)) in r.average_recall.iter().zip(&want).enumerate() {
            assert!(
                (got - want).abs() < 1e-12,
                "case {case} point {j}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn nan_segments_match_nothing_and_keep_their_rank() {
    // A proposal with a NaN in its segment (possible in memory) has NaN
    // tIoU with everything: it is ranked and cut like any other but never
    // matches, exactly as one far from every instance.
    let gt = GroundTruth::from_videos(
        "validation",
        [("v", vec![([0.0, 10.0], "a"), ([20.0, 30.0], "a")])],
    );
    let with = |bad: [f64; 2]| {
        let mut p = ProposalSet::new();
        p.push(
            "v",
            vec![
                prop(bad[0], bad[1], 0.9),
                prop(0.5, 10.0, 0.8),
                prop(21.0, 29.0, 0.7),
                prop(0.0, 10.0, 0.6),
            ],
        );
        evaluate_proposals(&gt, &p, &opts(100.0)).unwrap()
    };
    let far = with([1e6, 1e6 + 1.0]);
    for bad in [[f64::NAN, 5.0], [0.0, f64::NAN], [f64::NAN, f64::NAN]] {
        let r = with(bad);
        assert_eq!(r.average_recall, far.average_recall, "{bad:?}");
        assert_eq!(r.recall, far.recall, "{bad:?}");
    }
    assert!(far.ar_at_1 < far.ar_at_100);
}
