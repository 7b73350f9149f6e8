//! DETAD's analyses on hand-built cases (every number worked out in the
//! comments), OpenTAD's top-k× recall, excluded videos, and the diagnosis
//! of the golden detections.

mod common;

use tcanet_evaluator::diagnose::{
    diagnose, BucketPreset, DiagnoseOptions, Diagnosis, ErrorType, ExtraCharacteristics,
};
use tcanet_evaluator::{recall_at_top_k, Detection, DetectionOptions, DetectionSet, GroundTruth};

const TOL: f64 = 1e-12;

fn close(what: &str, got: f64, want: f64) {
    assert!((got - want).abs() < TOL, "{what}: got {got}, want {want}");
}

/// One detection: start, end, score, label.
type Det<'a> = (f64, f64, f64, &'a str);

/// A set from `(video, [detection])` in file order.
fn dets(videos: &[(&str, Vec<Det>)]) -> DetectionSet {
    let mut set = DetectionSet::new();
    for (v, entries) in videos {
        let entries = entries
            .iter()
            .map(|&(s, e, score, l)| Detection {
                segment: [s, e],
                score,
                label: set.label_id(l),
            })
            .collect();
        set.push(*v, entries);
    }
    set
}

fn opts(thresholds: &[f64]) -> DiagnoseOptions {
    DiagnoseOptions {
        tiou_thresholds: thresholds.to_vec(),
        ..DiagnoseOptions::default()
    }
}

/// Video A: run [0, 10], jump [20, 30]; video B: run [0, 10]. One
/// threshold, 0.5; background below 0.1. Detections of "run", by score:
/// d1 A [0,10] true positive (A's run); d2 A [0,10] double detection (A's
/// run is taken); d3 A [20,30] wrong label (best overlap: jump, tIoU 1);
/// d4 B [0,3] localization (B's run, tIoU 0.3); d5 A [20,23] confusion
/// (jump, tIoU 0.3); d6 A [50,60] background (tIoU 0); d7 X [0,10]
/// background (a video without instances); d8 B [0,10] true positive.
fn error_case() -> (GroundTruth, DetectionSet) {
    let gt = GroundTruth::from_videos(
        "validation",
        [
            ("A", vec![([0.0, 10.0], "run"), ([20.0, 30.0], "jump")]),
            ("B", vec![([0.0, 10.0], "run")]),
        ],
    );
    let d = dets(&[
        (
            "A",
            vec![
                (0.0, 10.0, 0.9, "run"),
                (0.0, 10.0, 0.8, "run"),
                (20.0, 30.0, 0.7, "run"),
                (20.0, 23.0, 0.5, "run"),
                (50.0, 60.0, 0.4, "run"),
            ],
        ),
        ("B", vec![(0.0, 3.0, 0.6, "run"), (0.0, 10.0, 0.05, "run")]),
        ("X", vec![(0.0, 10.0, 0.3, "run")]),
    ]);
    (gt, d)
}

fn fractions(d: &Diagnosis, k: usize) -> [f64; 6] {
    d.false_positive.profile[k - 1].fractions.as_array()
}

#[test]
fn each_error_type_by_hand() {
    let (gt, d) = error_case();
    let r = diagnose(&gt, &d, &opts(&[0.5]), None).unwrap();
    // G: run 2, jump 1; N = 3 instances / 2 classes.
    close("N", r.average_instances_per_class, 1.5);
    assert_eq!((r.n_instances, r.n_classes, r.n_detections), (3, 2, 8));
    // Bars of run's 2 detections each (jump has none), in rank order:
    // [d1 TP, d2 double], [d3 wrong label, d4 localization],
    // [d5 confusion, d6 background], [d7 background, d8 TP].
    assert_eq!(fractions(&r, 1), [0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(fractions(&r, 2), [0.0, 0.0, 0.5, 0.5, 0.0, 0.0]);
    assert_eq!(fractions(&r, 3), [0.0, 0.0, 0.0, 0.0, 0.5, 0.5]);
    assert_eq!(fractions(&r, 4), [0.5, 0.0, 0.0, 0.0, 0.0, 0.5]);
    for k in 5..=10 {
        assert_eq!(r.false_positive.profile[k - 1].n_detections, 0);
        assert_eq!(fractions(&r, k), [0.0; 6]);
    }
    assert_eq!(r.false_positive.profile[0].fractions_per_tiou.len(), 1);
    assert_eq!(r.false_positive.n_detections, 8);
    // run: TPs at ranks 0 and 7 with 0 and 6 FPs before: precision 1 and
    // (1·1.5)/(1·1.5 + 6) = 0.2; AP_N = 0.5·1 + 0.5·0.2 = 0.6. jump: 0.
    close("average-mAP_N", r.average_map_n, 0.3);
    close("limited average-mAP_N", r.false_positive.average_map_n, 0.3);
    // Removing one FP before d8: 0.5·(0.5 + 0.5·1.5/6.5) - 0.3; removing
    // both background errors: 0.5·(0.5 + 0.5·1.5/5.5) - 0.3.
    let one = 0.5 * (0.5 + 0.5 * 1.5 / 6.5) - 0.3;
    let g = &r.false_positive.removed_error_gain;
    close("double detection gain", g.double_detection, one);
    close("wrong label gain", g.wrong_label, one);
    close("localization gain", g.localization, one);
    close("confusion gain", g.confusion, one);
    close(
        "background gain",
        g.background,
        0.5 * (0.5 + 0.5 * 1.5 / 5.5) - 0.3,
    );
    assert_eq!(g.get(ErrorType::TruePositive), 0.0);
}

#[test]
fn profile_limit_and_background_tiou() {
    let (gt, d) = error_case();
    // max_k = 1: run keeps its top 2 (d1, d2), one bar.
    let o = DiagnoseOptions {
        max_k: 1,
        ..opts(&[0.5])
    };
    let r = diagnose(&gt, &d, &o, None).unwrap();
    assert_eq!(r.false_positive.profile.len(), 1);
    assert_eq!(r.false_positive.n_detections, 2);
    // On d1, d2 only: run's AP_N = 0.5 (one TP of 2), jump 0.
    close("limited", r.false_positive.average_map_n, 0.25);
    close("all", r.average_map_n, 0.3);
    // min_tiou 0.35: d4 and d5 (tIoU 0.3) become background.
    let o = DiagnoseOptions {
        min_tiou: 0.35,
        ..opts(&[0.5])
    };
    let r = diagnose(&gt, &d, &o, None).unwrap();
    assert_eq!(fractions(&r, 2), [0.0, 0.0, 0.5, 0.0, 0.0, 0.5]);
    assert_eq!(fractions(&r, 3), [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
}

#[test]
fn types_are_judged_per_threshold_and_averaged() {
    // One instance [0, 10]; d1 [0, 6] (tIoU 0.6) then d2 [0, 10].
    // t = 0.5: d1 TP, d2 double detection. t = 0.7: d1 localization, d2 TP.
    let gt = GroundTruth::from_videos("validation", [("A", vec![([0.0, 10.0], "run")])]);
    let d = dets(&[("A", vec![(0.0, 6.0, 0.9, "run"), (0.0, 10.0, 0.8, "run")])]);
    let r = diagnose(&gt, &d, &opts(&[0.5, 0.7]), None).unwrap();
    let bar1 = &r.false_positive.profile[0];
    assert_eq!(
        bar1.fractions_per_tiou[0].as_array(),
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(
        bar1.fractions_per_tiou[1].as_array(),
        [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    );
    assert_eq!(bar1.fractions.as_array(), [0.5, 0.0, 0.0, 0.5, 0.0, 0.0]);
    let bar2 = &r.false_positive.profile[1];
    assert_eq!(bar2.fractions.as_array(), [0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
    // AP_N (N = 1): t = 0.5: 1; t = 0.7: TP after 1 FP: 1/(1+1) = 0.5.
    assert_eq!(r.map_n, [1.0, 0.5]);
    close("average", r.average_map_n, 0.75);
    // Without localization errors, t = 0.7 has its TP first: gain 0.25.
    close(
        "gain",
        r.false_positive.removed_error_gain.localization,
        0.25,
    );
    close(
        "double",
        r.false_positive.removed_error_gain.double_detection,
        0.0,
    );
}

fn bucket<'a>(
    r: &'a Diagnosis,
    ch: &str,
    label: &str,
) -> &'a tcanet_evaluator::diagnose::BucketReport {
    r.characteristics
        .iter()
        .find(|c| c.name == ch)
        .unwrap_or_else(|| panic!("no {ch}"))
        .buckets
        .iter()
        .find(|b| b.label == label)
        .unwrap()
}

/// One class; video A (100 s): a [0, 10] (length 10: XS; coverage 0.1:
/// XS) and b [50, 90] (length 40: S; coverage 0.4: S). Detections by
/// score: d3 FP, d1 on b, d4 FP, d2 on a. N = 2.
fn bucket_case() -> (GroundTruth, DetectionSet) {
    let gt = GroundTruth::from_json_str(
        r#"{"database": {"A": {"subset": "validation", "duration": 100, "annotations": [
            {"segment": [0, 10], "label": "x"}, {"segment": [50, 90], "label": "x"}]}}}"#,
        "validation",
    )
    .unwrap();
    let d = dets(&[(
        "A",
        vec![
            (30.0, 40.0, 0.95, "x"),
            (50.0, 90.0, 0.9, "x"),
            (95.0, 99.0, 0.85, "x"),
            (0.0, 10.0, 0.8, "x"),
        ],
    )]);
    (gt, d)
}

#[test]
fn sensitivity_counts_a_bucket_s_instances_only() {
    let (gt, d) = bucket_case();
    let r = diagnose(&gt, &d, &opts(&[0.5]), None).unwrap();
    // All: TPs at ranks 1 and 3 with 1 and 2 FPs: (0.5·2)/(1+1) = 0.5 and
    // 2/(2+2) = 0.5: AP_N 0.5.
    close("base", r.average_map_n, 0.5);
    // XS (a): d1 leaves (matched to b): d3, d4, d2: TP after 2 FPs, npos 1:
    // 2/(2+2) = 0.5. S (b): d3, d1: TP after 1 FP: 2/(2+1) = 2/3.
    for ch in ["length", "coverage"] {
        close(ch, bucket(&r, ch, "XS").average_map_n.unwrap(), 0.5);
        close(ch, bucket(&r, ch, "S").average_map_n.unwrap(), 2.0 / 3.0);
        assert_eq!(bucket(&r, ch, "M").average_map_n, None);
        assert_eq!(bucket(&r, ch, "M").n_instances, 0);
        assert_eq!(bucket(&r, ch, "XS").n_instances, 1);
        assert_eq!(bucket(&r, ch, "XS").false_negative_rate, Some(0.0));
    }
    // Both instances are in a video of 2 instances: bucket S (1, 4].
    assert_eq!(bucket(&r, "num-instances", "S").n_instances, 2);
    close(
        "instances S",
        bucket(&r, "num-instances", "S").average_map_n.unwrap(),
        0.5,
    );
    assert_eq!(bucket(&r, "num-instances", "XS").average_map_n, None);
    assert_eq!(bucket(&r, "length", "XS").range, "[0, 30]");
    assert_eq!(bucket(&r, "length", "S").range, "(30, 60]");
}

#[test]
fn a_detection_matched_across_buckets_leaves_both() {
    // a [0, 10] (XS), b [0, 40] (S), one class, thresholds 0.3 and 0.7.
    // e [0, 5]: tIoU 0.5 with a: takes a at 0.3, nothing at 0.7.
    // d [0, 12]: at 0.3 a is taken, b has tIoU 0.3: takes b; at 0.7 takes
    // a (10/12). d matches both buckets: it leaves both.
    let gt = GroundTruth::from_json_str(
        r#"{"database": {"A": {"subset": "validation", "duration": 1000, "annotations": [
            {"segment": [0, 10], "label": "x"}, {"segment": [0, 40], "label": "x"}]}}}"#,
        "validation",
    )
    .unwrap();
    let d = dets(&[("A", vec![(0.0, 5.0, 0.9, "x"), (0.0, 12.0, 0.8, "x")])]);
    let r = diagnose(&gt, &d, &opts(&[0.3, 0.7]), None).unwrap();
    // All (N = 2): t = 0.3: two TPs first: 1; t = 0.7: TP after 1 FP:
    // 0.5·(0.5·2)/(1+1) = 0.25.
    assert_eq!(r.map_n, [1.0, 0.25]);
    // XS keeps e only: t = 0.3 TP: 1; t = 0.7 FP: 0; mean 0.5.
    close("XS", bucket(&r, "length", "XS").average_map_n.unwrap(), 0.5);
    // S keeps nothing: 0.
    close("S", bucket(&r, "length", "S").average_map_n.unwrap(), 0.0);
}

#[test]
fn false_negatives_and_the_precision_floor() {
    let (gt, d) = error_case();
    let r = diagnose(&gt, &d, &opts(&[0.5]), None).unwrap();
    // Matched: A's run (d1) and B's run (d8, normalized precision 0.2);
    // jump is missed. Lengths are all 10 (XS): 1 of 3 missed.
    let xs = bucket(&r, "length", "XS");
    assert_eq!(xs.n_instances, 3);
    close("FN", xs.false_negative_rate.unwrap(), 1.0 / 3.0);
    assert_eq!(xs.false_negative_rate_per_tiou.len(), 1);
    // With the floor at 0.25, d8's match (precision 0.2) does not count.
    let o = DiagnoseOptions {
        fn_min_precision: 0.25,
        ..opts(&[0.5])
    };
    let r = diagnose(&gt, &d, &o, None).unwrap();
    close(
        "FN",
        bucket(&r, "length", "XS").false_negative_rate.unwrap(),
        2.0 / 3.0,
    );
    // Without durations there is no coverage.
    assert!(r.characteristics.iter().all(|c| c.name != "coverage"));
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("coverage is not analysed")));
}

#[test]
fn instances_detad_ignores_are_set_aside() {
    // A zero-length instance and one longer than its 20 s video go; the
    // class "gone" has no instance left but stays a class, as in DETAD
    // (whose class index is made before anything is set aside).
    let gt = GroundTruth::from_json_str(
        r#"{"database": {"A": {"subset": "validation", "duration": 20, "annotations": [
            {"segment": [5, 5], "label": "gone"}, {"segment": [0, 25], "label": "x"},
            {"segment": [0, 10], "label": "x"}, {"segment": [12, 18], "label": "y"}]}}}"#,
        "validation",
    )
    .unwrap();
    let d = dets(&[("A", vec![(0.0, 10.0, 0.9, "x")])]);
    let r = diagnose(&gt, &d, &opts(&[0.5]), None).unwrap();
    assert_eq!(
        (r.n_instances, r.n_instances_set_aside, r.n_classes),
        (2, 2, 3)
    );
    close("N", r.average_instances_per_class, 2.0 / 3.0);
    // x: 1 (one TP first), y: 0, gone: 0.
    close("base", r.average_map_n, 1.0 / 3.0);
    // Instances per video counts the file's 4 annotations: bucket S (1, 4].
    assert_eq!(bucket(&r, "num-instances", "S").n_instances, 2);
    // Coverage: 10/20 = 0.5 (M), 6/20 = 0.3 (S).
    assert_eq!(bucket(&r, "coverage", "M").n_instances, 1);
    assert_eq!(bucket(&r, "coverage", "S").n_instances, 1);
}

#[test]
fn detections_of_a_class_left_without_instances_are_false_positives() {
    // "gone" has only a zero-length instance; a detection carries it. B: one
    // instance [0, 40]; its detection [0, 50] has tIoU 0.8.
    let gt = GroundTruth::from_json_str(
        r#"{"database": {"v": {"subset": "validation", "duration": 50, "annotations": [
            {"segment": [5, 5], "label": "gone"}, {"segment": [0, 40], "label": "B"}]}}}"#,
        "validation",
    )
    .unwrap();
    let d = dets(&[("v", vec![(5.0, 5.0, 0.9, "gone"), (0.0, 50.0, 0.8, "B")])]);
    let r = diagnose(&gt, &d, &opts(&[0.5, 0.9]), None).unwrap();
    assert_eq!(
        (r.n_instances, r.n_instances_set_aside, r.n_classes),
        (1, 1, 2)
    );
    close("N", r.average_instances_per_class, 0.5);
    // B: AP_N 1 at 0.5 (precision 0.5 / 0.5), 0 at 0.9; gone: 0.
    close("mAP_N@0.5", r.map_n[0], 0.5);
    close("mAP_N@0.9", r.map_n[1], 0.0);
    let warning = r
        .warnings
        .iter()
        .find(|w| w.contains("\"gone\" (1 detection(s))"));
    assert!(warning.is_some(), "{:?}", r.warnings);
}

#[test]
fn a_subset_whose_instances_are_all_set_aside_is_an_error_that_says_so() {
    let gt = GroundTruth::from_json_str(
        r#"{"database": {"v": {"subset": "validation", "duration": 50, "annotations": [
            {"segment": [5, 5], "label": "A"}, {"segment": [0, 60], "label": "B"}]}}}"#,
        "validation",
    )
    .unwrap();
    let d = dets(&[("v", vec![(0.0, 50.0, 0.8, "B")])]);
    let message = diagnose(&gt, &d, &opts(&[0.5]), None)
        .unwrap_err()
        .to_string();
    assert!(message.contains("all 2 instance(s)"), "{message}");
    assert!(message.contains("nothing is left to diagnose"), "{message}");
}

#[test]
fn thumos_buckets_and_extra_characteristics() {
    let gt = GroundTruth::from_json_str(
        r#"{"database": {"A": {"subset": "Test", "duration": 200, "annotations": [
            {"segment": [0, 5], "label": "x"}, {"segment": [50, 55], "label": "x"},
            {"segment": [100, 120], "label": "y"}]}}}"#,
        "Test",
    )
    .unwrap();
    let extra = ExtraCharacteristics::from_slice(
        br#"{"database": {"A": {"annotations": [
            {"label": "x", "context-size": 0, "context-distance": 0, "agreement": 1.0},
            {"label": "x", "context-size": 3, "context-distance": 2, "agreement": 0.3},
            {"label": "y", "context-size": null, "context-distance": 3, "agreement": 0.0}]}}}"#,
        "extra.json",
    )
    .unwrap();
    let d = dets(&[("A", vec![(0.0, 5.0, 0.9, "x"), (100.0, 120.0, 0.8, "y")])]);
    let o = DiagnoseOptions {
        buckets: BucketPreset::Thumos14,
        ..opts(&[0.3, 0.4, 0.5, 0.6, 0.7])
    };
    let r = diagnose(&gt, &d, &o, Some(&extra)).unwrap();
    let names: Vec<&str> = r.characteristics.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "coverage",
            "length",
            "num-instances",
            "context-size",
            "context-distance",
            "agreement"
        ]
    );
    // THUMOS lengths: 5 s in (3, 6] (S), 20 s in (18, ∞) (XL); coverage
    // 5/200 = 0.025 (S), 20/200 = 0.1 (XL); 3 instances: XS... no, (1, 40] S.
    assert_eq!(bucket(&r, "length", "S").n_instances, 2);
    assert_eq!(bucket(&r, "length", "XL").n_instances, 1);
    assert_eq!(bucket(&r, "coverage", "S").n_instances, 2);
    assert_eq!(bucket(&r, "coverage", "XL").n_instances, 1);
    assert_eq!(bucket(&r, "num-instances", "S").n_instances, 3);
    // Context size 0 -> "0", 3 -> "3", null -> none.
    assert_eq!(bucket(&r, "context-size", "0").n_instances, 1);
    assert_eq!(bucket(&r, "context-size", "3").n_instances, 1);
    let cs = r
        .characteristics
        .iter()
        .find(|c| c.name == "context-size")
        .unwrap();
    assert_eq!(cs.n_instances, 2);
    // The second x instance is missed: context size 3 has FN rate 1.
    close(
        "FN",
        bucket(&r, "context-size", "3").false_negative_rate.unwrap(),
        1.0,
    );
    close(
        "FN",
        bucket(&r, "context-size", "0").false_negative_rate.unwrap(),
        0.0,
    );
    // Context distance 0 -> Inf, 2 -> M, 3 -> F; agreement 1 -> XH,
    // 0.3 -> W, 0 -> XW.
    for (ch, label) in [
        ("context-distance", "Inf"),
        ("context-distance", "M"),
        ("context-distance", "F"),
        ("agreement", "XH"),
        ("agreement", "W"),
        ("agreement", "XW"),
    ] {
        assert_eq!(bucket(&r, ch, label).n_instances, 1, "{ch} {label}");
    }
    // A file whose labels differ from the ground truth's is refused.
    let bad = ExtraCharacteristics::from_slice(
        br#"{"database": {"A": {"annotations": [{"label": "y"}, {"label": "x"}, {"label": "y"}]}}}"#,
        "extra.json",
    )
    .unwrap();
    let e = diagnose(&gt, &d, &o, Some(&bad)).unwrap_err().to_string();
    assert!(
        e.starts_with("extra.json: database[\"A\"].annotations[0].label is \"y\""),
        "{e}"
    );
}

#[test]
fn bad_options_are_errors() {
    let (gt, d) = error_case();
    for o in [
        DiagnoseOptions {
            max_k: 0,
            ..opts(&[0.5])
        },
        DiagnoseOptions {
            min_tiou: f64::NAN,
            ..opts(&[0.5])
        },
        DiagnoseOptions {
            fn_min_precision: 1.0,
            ..opts(&[0.5])
        },
        opts(&[]),
    ] {
        assert!(diagnose(&gt, &d, &o, None).is_err());
    }
}

#[test]
fn top_k_recall_by_hand() {
    // Class x: video A has [0,10] and [20,30] (x = 2), video B [0,10]
    // (x = 1); class y: B [50,60], no detections.
    let gt = GroundTruth::from_videos(
        "validation",
        [
            ("A", vec![([0.0, 10.0], "x"), ([20.0, 30.0], "x")]),
            ("B", vec![([0.0, 10.0], "x"), ([50.0, 60.0], "y")]),
        ],
    );
    // A by score: miss, hit a1, hit a2, ...; B: one hit.
    let d = dets(&[
        (
            "A",
            vec![
                (40.0, 50.0, 0.9, "x"),
                (0.0, 10.0, 0.8, "x"),
                (20.0, 30.0, 0.7, "x"),
                (20.0, 30.0, 0.6, "x"),
            ],
        ),
        ("B", vec![(0.0, 10.0, 0.1, "x")]),
        ("Z", vec![(0.0, 10.0, 0.99, "x")]),
    ]);
    let o = DetectionOptions {
        tiou_thresholds: vec![0.5],
        ..Default::default()
    };
    let r = recall_at_top_k(&gt, &d, &o, &[1, 2]).unwrap();
    // k = 1: A keeps 2 (miss, a1): 1 of 2; B keeps 1: hit. x: 2/3.
    // k = 2: A keeps 4: both. x: 3/3. y: 0. Mean over the 2 classes.
    close("R@1", r.recall[0][0], 1.0 / 3.0);
    close("R@2", r.recall[0][1], 0.5);
    assert_eq!(r.k, [1, 2]);
    // No one-to-one matching: one detection recalls two overlapping
    // instances.
    let gt = GroundTruth::from_videos(
        "validation",
        [("A", vec![([0.0, 10.0], "x"), ([1.0, 11.0], "x")])],
    );
    let d = dets(&[("A", vec![(0.0, 11.0, 0.9, "x")])]);
    let r = recall_at_top_k(&gt, &d, &o, &[1]).unwrap();
    close("shared", r.recall[0][0], 1.0);
    assert!(recall_at_top_k(&gt, &d, &o, &[0]).is_err());
}

#[test]
fn excluded_videos_leave_both_sides() {
    let (gt, d) = error_case();
    let ids: std::collections::HashSet<String> = ["B".to_string()].into();
    let gt2 = gt.without_videos(&ids);
    let d2 = d.without_videos(&ids);
    assert_eq!(gt2.n_instances(), 2);
    assert_eq!(d2.len(), 6);
    let r = tcanet_evaluator::evaluate_detections(&gt2, &d2, &DetectionOptions::default()).unwrap();
    // run: d1 TP first, one instance: AP 1 at every threshold; jump 0.
    close("mAP", r.average_map, 0.5);
}

#[test]
fn golden_detections_diagnosis_is_consistent() {
    let gt = GroundTruth::from_path(common::gt_path(), "validation").unwrap();
    let d = DetectionSet::from_path(common::detections_path()).unwrap();
    let r = diagnose(&gt, &d, &DiagnoseOptions::default(), None).unwrap();
    assert_eq!(r.false_positive.profile.len(), 10);
    for bar in &r.false_positive.profile {
        if bar.n_detections > 0 {
            let s: f64 = bar.fractions.as_array().iter().sum();
            assert!((s - 1.0).abs() < 1e-9, "bar {}: {s}", bar.k);
            for f in &bar.fractions_per_tiou {
                assert!((f.as_array().iter().sum::<f64>() - 1.0).abs() < 1e-9);
            }
        }
    }
    // True positives thin out bar after bar.
    let tp: Vec<f64> = r
        .false_positive
        .profile
        .iter()
        .map(|b| b.fractions.true_positive)
        .collect();
    assert!(tp[0] > tp[4] && tp[4] > tp[9], "{tp:?}");
    // Removing any error cannot lower average-mAP_N.
    for t in &ErrorType::ALL[1..] {
        assert!(r.false_positive.removed_error_gain.get(*t) >= 0.0, "{t:?}");
    }
    assert!(r.average_map_n > 0.0 && r.average_map_n < 1.0);
    for ch in &r.characteristics {
        let n: usize = ch.buckets.iter().map(|b| b.n_instances).sum();
        assert_eq!(n, ch.n_instances, "{}", ch.name);
        assert!(n <= r.n_instances);
        for b in &ch.buckets {
            if let Some(f) = b.false_negative_rate {
                assert!((0.0..=1.0).contains(&f));
            }
        }
    }
    let names: Vec<&str> = r.characteristics.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["coverage", "length", "num-instances"]);
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "average_mAP_N",
        "mAP_N",
        "false_positive",
        "characteristics",
        "tiou_thresholds",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    assert!(json["false_positive"]["profile"][0]["fractions"]["double_detection"].is_number());
}

#[test]
fn golden_subset_matches_detad_s_own_numbers() {
    // The first 500 validation videos and their detections (labels of
    // other classes dropped), as in tests/data/detad_expected.json.
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::carried().join("detad_expected.json")).unwrap(),
    )
    .unwrap();
    let full = GroundTruth::from_path(common::gt_path(), "validation").unwrap();
    let rest: std::collections::HashSet<String> =
        full.videos[500..].iter().map(|v| v.id.clone()).collect();
    let gt = full.without_videos(&rest);
    let mut d = DetectionSet::from_path(common::detections_path()).unwrap();
    d.videos.retain(|v| gt.video_index(&v.video).is_some());
    let o = DiagnoseOptions {
        ignore_unknown_labels: true,
        ..DiagnoseOptions::default()
    };
    let r = diagnose(&gt, &d, &o, None).unwrap();
    let num = |v: &serde_json::Value| v.as_f64().unwrap();
    let near = |what: &str, got: f64, want: f64| {
        assert!((got - want).abs() < 1e-9, "{what}: {got} vs DETAD {want}");
    };
    near(
        "average-mAP_N",
        r.average_map_n,
        num(&want["average_mAP_N"]),
    );
    near(
        "top 10G average-mAP_N",
        r.false_positive.average_map_n,
        num(&want["false_positive_average_mAP_N"]),
    );
    let g = &r.false_positive.removed_error_gain;
    near(
        "double",
        g.double_detection,
        num(&want["removed_error_gain"]["double_detection"]),
    );
    near(
        "localization",
        g.localization,
        num(&want["removed_error_gain"]["localization"]),
    );
    let mut n = 0;
    for (key, field) in [("sensitivity", 0), ("false_negative_rate", 1)] {
        for (ch, buckets) in want[key].as_object().unwrap() {
            for (label, v) in buckets.as_object().unwrap() {
                let b = bucket(&r, ch, label);
                let got = if field == 0 {
                    b.average_map_n
                } else {
                    b.false_negative_rate
                };
                near(&format!("{key} {ch} {label}"), got.unwrap(), num(v));
                n += 1;
            }
        }
    }
    assert_eq!(n, 28);
}

#[test]
fn extra_characteristics_out_of_range_or_miscounted_are_errors() {
    let e = |text: &[u8]| {
        ExtraCharacteristics::from_slice(text, "extra.json")
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        e(br#"{"database": {"A": {"annotations": [{"label": "x", "context-size": 7}]}}}"#),
        "extra.json: database[\"A\"].annotations[0].context-size is 7; it must be a whole \
         number from 0 to 6, or null"
    );
    assert_eq!(
        e(br#"{"database": {"A": {"annotations": [{"label": "x"}, {"label": "x", "agreement": -0.1}]}}}"#),
        "extra.json: database[\"A\"].annotations[1].agreement is -0.1; it must be a number \
         from 0 to 1, or null"
    );
    assert_eq!(
        e(b"{\"database\": {\"A\": {\"annotations\": [\n{\"label\": \"x\", \"agreement\": NaN}]}}}"),
        "extra.json:2:29: database[\"A\"].annotations[0].agreement: expected a JSON value, \
         found NaN, which is not valid JSON (Python's json module writes it for non-finite \
         floats; fix the writer or replace it with a finite number)"
    );
    // One annotation more than the ground truth's.
    let gt = GroundTruth::from_videos("validation", [("A", vec![([0.0, 5.0], "x")])]);
    let more = ExtraCharacteristics::from_slice(
        br#"{"database": {"A": {"annotations": [{"label": "x"}, {"label": "x"}]}}}"#,
        "extra.json",
    )
    .unwrap();
    let d = dets(&[("A", vec![(0.0, 5.0, 0.9, "x")])]);
    let e = diagnose(&gt, &d, &opts(&[0.5]), Some(&more))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "extra.json: database[\"A\"] has 2 annotation(s) where the ground truth has 1"
        ),
        "{e}"
    );
}

#[test]
fn a_duration_there_but_not_positive_fails_the_diagnosis_only() {
    let d = dets(&[("A", vec![(0.0, 5.0, 0.9, "x")])]);
    for bad in ["\"20\"", "0", "-5", "1e400", "true"] {
        let gt = GroundTruth::from_json_str(
            &format!(
                r#"{{"database": {{"A": {{"subset": "validation", "duration": {bad}, "annotations": [{{"segment": [0, 5], "label": "x"}}]}}}}}}"#
            ),
            "validation",
        )
        .unwrap();
        assert_eq!(gt.videos[0].duration, None, "{bad}");
        let e = diagnose(&gt, &d, &opts(&[0.5]), None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "<memory>:1:57: database[\"A\"].duration is {bad}; it must be a positive finite \
                 number of seconds (or null)"
            )
        );
        // Scoring ignores durations, as the official code does.
        let r = tcanet_evaluator::evaluate_detections(&gt, &d, &DetectionOptions::default());
        assert!(r.is_ok(), "{bad}");
        // Leaving the video out leaves its duration out too.
        let ids = ["A".to_string()].into();
        assert!(gt.without_videos(&ids).check_durations().is_ok());
    }
}
