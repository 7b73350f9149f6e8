//! Every number of `tests/data/golden_expected.json` (computed by the
//! official ActivityNet code) matched within 1e-9.

mod common;

use tcanet_evaluator::{
    evaluate_detections, evaluate_proposals, DetectionOptions, DetectionSet, GroundTruth,
    ProposalOptions, ProposalSet,
};

use common::expected;

const TOL: f64 = 1e-9;

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOL,
        "{what}: got {got:.17}, official {want:.17} (diff {:e})",
        got - want
    );
}

fn gt() -> GroundTruth {
    GroundTruth::from_path(common::gt_path(), "validation").unwrap()
}

#[test]
fn golden_proposals_match_official_numbers() {
    let want = &expected()["proposals"];
    let preds = ProposalSet::from_path(common::proposals_path()).unwrap();
    let r = evaluate_proposals(&gt(), &preds, &ProposalOptions::default()).unwrap();
    for key in ["AR@1", "AR@5", "AR@10", "AR@100", "AUC"] {
        let got = match key {
            "AR@1" => r.ar_at_1,
            "AR@5" => r.ar_at_5,
            "AR@10" => r.ar_at_10,
            "AR@100" => r.ar_at_100,
            _ => r.auc,
        };
        close(key, got, want[key].as_f64().unwrap());
    }
    let curve = floats(&want["average_recall_curve"]);
    let an = floats(&want["average_nr_proposals_curve"]);
    assert_eq!(curve.len(), 100);
    assert_eq!(r.average_recall.len(), 100);
    for j in 0..100 {
        close(&format!("AR curve[{j}]"), r.average_recall[j], curve[j]);
        close(&format!("AN curve[{j}]"), r.average_nr_proposals[j], an[j]);
    }
    // The JSON shape carries the same numbers.
    let json = serde_json::to_value(&r).unwrap();
    close(
        "json AUC",
        json["AUC"].as_f64().unwrap(),
        want["AUC"].as_f64().unwrap(),
    );
    assert_eq!(floats(&json["average_recall"]), r.average_recall);
    assert_eq!(json["recall"].as_array().unwrap().len(), 10);
}

#[test]
fn golden_detections_match_official_numbers() {
    let want = &expected()["detections"];
    let preds = DetectionSet::from_path(common::detections_path()).unwrap();
    let gt = gt();
    let r = evaluate_detections(&gt, &preds, &DetectionOptions::default()).unwrap();
    let map = floats(&want["mAP_per_tiou"]);
    assert_eq!(r.map.len(), map.len());
    for (t, (&got, &w)) in r.map.iter().zip(&map).enumerate() {
        close(&format!("mAP[{t}]"), got, w);
    }
    close(
        "average mAP",
        r.average_map,
        want["average_mAP"].as_f64().unwrap(),
    );
    let classes: Vec<&str> = want["classes_in_gt_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(classes, gt.labels);
    let names: Vec<&str> = r.ap.0.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, classes);
    let per_tiou = want["ap_per_tiou_per_class"].as_array().unwrap();
    assert_eq!(per_tiou.len(), 10);
    let mut checked = 0;
    for (t, row) in per_tiou.iter().enumerate() {
        let row = floats(row);
        assert_eq!(row.len(), classes.len());
        for (c, &w) in row.iter().enumerate() {
            close(&format!("AP[{t}][{}]", classes[c]), r.ap.0[c].1[t], w);
            checked += 1;
        }
    }
    assert_eq!(checked, 2000);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["ap"].as_object().unwrap().len(), 200);
    assert_eq!(floats(&json["mAP"]), r.map);
}
