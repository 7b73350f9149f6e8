//! The `tcanet-eval` binary: bad input gets a clear message naming the file
//! (and video and field) and exit code 2; outputs (JSON, plots) are right.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_tcanet-eval");

const GT: &str = r#"{"version": "test", "database": {
  "v_a": {"subset": "validation", "duration": 30.0, "annotations": [{"segment": [0, 10], "label": "Run"}]},
  "v_b": {"subset": "validation", "annotations": [{"segment": [5, 20], "label": "Jump"}]},
  "t": {"subset": "training", "annotations": []}}}"#;

/// A fresh directory for one test, with the ground truth written in it;
/// removed when the test ends.
struct TestDir(PathBuf);

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn dir(name: &str) -> TestDir {
    let d = std::env::temp_dir().join(format!("tcanet-eval-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("gt.json"), GT).unwrap();
    TestDir(d)
}

fn run(d: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(d)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `detections gt.json pred.json` on `pred` and expects exit code 2
/// and every one of `needles` in the message.
fn bad_detections(name: &str, pred: &str, needles: &[&str]) {
    let d = dir(name);
    std::fs::write(d.join("pred.json"), pred).unwrap();
    let o = run(&d, &["detections", "gt.json", "pred.json"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{name}: {err}");
    assert!(!err.contains("panicked"), "{name}: {err}");
    for n in needles {
        assert!(err.contains(n), "{name}: {n:?} not in: {err}");
    }
}

#[test]
fn malformed_json_names_line_and_column() {
    bad_detections(
        "malformed",
        "{\"results\": {\"v_a\": [\n  {\"segment\": [0, 10], \"score\": 0.5, \"label\": \"Run\"},\n]}}",
        &["pred.json:3:1:", "expected a value after ','"],
    );
    bad_detections("truncated", "{\"results\": {\"v_a\": [", &["pred.json:1:"]);
}

#[test]
fn nan_and_infinity_tokens_are_explained() {
    bad_detections(
        "nan",
        r#"{"results": {"v_a": [{"segment": [0, 10], "score": NaN, "label": "Run"}]}}"#,
        &[
            "pred.json:1:",
            "results[\"v_a\"][0].score",
            "NaN",
            "not valid JSON",
        ],
    );
    bad_detections(
        "inf",
        r#"{"results": {"v_a": [{"segment": [-Infinity, 10], "score": 1, "label": "Run"}]}}"#,
        &["results[\"v_a\"][0].segment[0]", "-Infinity"],
    );
}

#[test]
fn segments_must_be_two_finite_numbers() {
    bad_detections(
        "seg1",
        r#"{"results": {"v_a": [{"segment": [0], "score": 0.5, "label": "Run"}]}}"#,
        &["results[\"v_a\"][0].segment", "two finite numbers"],
    );
    bad_detections(
        "seg3",
        r#"{"results": {"v_b": [{"segment": [0, 1, 2], "score": 0.5, "label": "Run"}]}}"#,
        &["results[\"v_b\"][0].segment", "more than two"],
    );
    bad_detections(
        "segstr",
        r#"{"results": {"v_a": [{"segment": ["0", 3], "score": 0.5, "label": "Run"}]}}"#,
        &[
            "results[\"v_a\"][0].segment[0]",
            "expected a number, found a string",
        ],
    );
    bad_detections(
        "seginf",
        r#"{"results": {"v_a": [{"segment": [0, 1e999], "score": 0.5, "label": "Run"}]}}"#,
        &["results[\"v_a\"][0].segment[1] is not a finite number"],
    );
}

#[test]
fn missing_fields_and_keys() {
    bad_detections(
        "noscore",
        r#"{"results": {"v_a": [{"segment": [0, 10], "label": "Run"}]}}"#,
        &["results[\"v_a\"][0] has no \"score\""],
    );
    bad_detections(
        "nolabel",
        r#"{"results": {"v_a": [{"segment": [0, 10], "score": 0.5}]}}"#,
        &["results[\"v_a\"][0] has no \"label\""],
    );
    bad_detections(
        "noresults",
        r#"{"version": "x"}"#,
        &["pred.json:", "no \"results\" key"],
    );
    // Swapped arguments: the message says so.
    let d = dir("swapped");
    std::fs::write(d.join("pred.json"), r#"{"results": {}}"#).unwrap();
    let o = run(&d, &["proposals", "pred.json", "gt.json"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("pred.json: no \"database\" key"), "{err}");
    assert!(err.contains("GT PRED"), "{err}");
    // A missing file.
    let o = run(&d, &["proposals", "gt.json", "nothere.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read nothere.json"));
}

#[test]
fn unknown_labels_fail_or_are_dropped_on_request() {
    let pred = r#"{"results": {"v_a": [
        {"segment": [0, 10], "score": 0.9, "label": "Run"},
        {"segment": [0, 10], "score": 0.5, "label": "Swim"},
        {"segment": [0, 10], "score": 0.4, "label": "Swim"}]}}"#;
    bad_detections(
        "unknown",
        pred,
        &["pred.json:", "\"Swim\" (2)", "--ignore-unknown-labels"],
    );
    let d = dir("unknown-ok");
    std::fs::write(d.join("pred.json"), pred).unwrap();
    let o = run(
        &d,
        &[
            "detections",
            "gt.json",
            "pred.json",
            "--ignore-unknown-labels",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("dropped 2 detection(s)"),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Run: one perfect detection -> AP 1; Jump: none -> 0; mAP 0.5.
    assert_eq!(v["average_mAP"].as_f64(), Some(0.5));
    assert_eq!(v["ap"]["Run"][0].as_f64(), Some(1.0));
    assert_eq!(v["ap"]["Jump"][9].as_f64(), Some(0.0));
}

#[test]
fn subset_without_videos_lists_the_subsets() {
    let d = dir("subset");
    std::fs::write(
        d.join("pred.json"),
        r#"{"results": {"v_a": [{"segment": [0, 10], "score": 0.5}]}}"#,
    )
    .unwrap();
    let o = run(
        &d,
        &["proposals", "gt.json", "pred.json", "--subset", "testing"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("gt.json: no video of subset \"testing\""),
        "{err}"
    );
    assert!(
        err.contains("validation (2 videos), training (1 video)"),
        "{err}"
    );
}

#[test]
fn ids_that_match_nothing_suggest_the_v_prefix() {
    let d = dir("prefix");
    std::fs::write(
        d.join("pred.json"),
        r#"{"results": {"a": [{"segment": [0, 10], "score": 0.5}], "b": [{"segment": [0, 10], "score": 0.5}]}}"#,
    )
    .unwrap();
    let o = run(&d, &["proposals", "gt.json", "pred.json"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("pred.json: none of its 2 video ids"), "{err}");
    assert!(err.contains("\"v_\" prefix is added"), "{err}");
}

#[test]
fn reversed_segments_and_duplicate_keys_are_warnings() {
    let d = dir("warn");
    std::fs::write(
        d.join("pred.json"),
        r#"{"results": {
            "v_a": [{"segment": [3, 1], "score": 0.5}],
            "v_b": [{"segment": [20, 5], "score": 0.5}],
            "v_a": [{"segment": [0, 10], "score": 0.5}]}}"#,
    )
    .unwrap();
    let o = run(&d, &["proposals", "gt.json", "pred.json", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("pred.json:4: video \"v_a\" appears twice"),
        "{err}"
    );
    // The last v_a is kept; v_b's reversed segment remains.
    assert!(err.contains("1 predicted segment(s) are reversed"), "{err}");
    assert!(err.contains("results[\"v_b\"][0]"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // v_a found (its last value), v_b not: recall 1/2 everywhere.
    assert_eq!(v["AR@100"].as_f64(), Some(0.5));
}

/// `--version`: the program, the toolkit version and the commit.
#[test]
fn version_names_the_commit() {
    let o = run(&dir("version"), &["--version"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("tcanet-eval {}\n", tcanet_version::long_version!())
    );
}

#[test]
fn usage_errors_exit_2_and_help_is_there() {
    let d = dir("usage");
    let o = run(&d, &["proposals", "gt.json"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(
        &d,
        &["proposals", "gt.json", "p.json", "--tiou", "0.5:x:0.1"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid value '0.5:x:0.1' for '--tiou"),
        "{}",
        stderr(&o)
    );
    // bench reads its files on every run: standard input is refused.
    let o = run(&d, &["bench", "detections", "gt.json", "-"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bench reads its files on every run"),
        "{}",
        stderr(&o)
    );
    let o = run(&d, &["proposals", "gt.json", "p.json", "--plot", "out.jpg"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(".svg or .png"));
    let o = run(&d, &["--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("proposals") && help.contains("detections") && help.contains("Exit status")
    );
    let o = run(&d, &["proposals", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for opt in [
        "--subset",
        "--tiou",
        "--preset",
        "--max-proposals",
        "--json",
        "--plot",
        "--baseline",
    ] {
        assert!(help.contains(opt), "{opt} missing in help");
    }
}

#[test]
fn json_output_and_plots_on_the_golden_files() {
    let d = dir("golden");
    let gt = common::gt_path().display().to_string();
    let props = common::proposals_path().display().to_string();
    let o = run(
        &d,
        &["proposals", &gt, &props, "--json", "--plot", "curve.png"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "AR@1",
        "AR@5",
        "AR@10",
        "AR@100",
        "AUC",
        "average_recall",
        "average_nr_proposals",
        "recall",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let png = std::fs::read(d.join("curve.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 20_000,
        "a PNG of {} bytes is too small for the figure",
        png.len()
    );

    // Comparison of two results on one chart, SVG; the JSON carries both.
    let o = run(
        &d,
        &[
            "proposals",
            &gt,
            &props,
            "--baseline",
            &props,
            "--label",
            "refined",
            "--baseline-label",
            "input",
            "--plot",
            "cmp.svg",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["baseline"]["AUC"], v["AUC"]);
    let svg = std::fs::read_to_string(d.join("cmp.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("refined") && svg.contains("input"));

    let o = run(
        &d,
        &[
            "detections",
            &gt,
            &common::detections_path().display().to_string(),
            "--json",
            "--plot",
            "map.svg",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["mAP"].as_array().unwrap().len(), 10);
    assert_eq!(v["ap"].as_object().unwrap().len(), 200);
    assert!(v["average_mAP"].as_f64().unwrap() > 0.38);
    assert!(std::fs::read_to_string(d.join("map.svg"))
        .unwrap()
        .contains("<svg"));
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&*d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
}

#[test]
fn thumos_preset_and_custom_thresholds() {
    let d = dir("thresholds");
    std::fs::write(
        d.join("pred.json"),
        // tIoU with v_a's [0, 10]: 6/10 = 0.6.
        r#"{"results": {"v_a": [{"segment": [0, 6], "score": 0.5, "label": "Run"}]}}"#,
    )
    .unwrap();
    let o = run(
        &d,
        &[
            "detections",
            "gt.json",
            "pred.json",
            "--preset",
            "thumos14",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let run_ap: Vec<f64> = v["ap"]["Run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    // Thresholds 0.3..0.7: found at 0.3, 0.4, 0.5 and 0.6 (0.6 >= 0.6), not 0.7.
    assert_eq!(run_ap, [1.0, 1.0, 1.0, 1.0, 0.0]);
    let o = run(
        &d,
        &[
            "detections",
            "gt.json",
            "pred.json",
            "--tiou",
            "0.1:0.3:0.1",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tiou_thresholds"].as_array().unwrap().len(), 3);
}
