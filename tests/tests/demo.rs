//! `tcanet-demo` itself, small: it runs the four binaries, and its
//! summary.json holds the numbers of the files it wrote (recomputed here by
//! the plain transcription of the official evaluation).
mod common;

use common::{bin_dir, official_proposal_scores, read_json, results, run_ok, tool, Truth};

#[test]
fn demo_writes_its_report_and_the_numbers_of_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = || {
        let mut c = tool("tcanet-demo");
        c.arg("--runs-dir")
            .arg(tmp.path())
            .args([
                "--name",
                "small",
                "--train-videos",
                "24",
                "--val-videos",
                "12",
            ])
            .args(["--epochs", "1", "--batch-size", "8", "--seed", "2"])
            .arg("--bin-dir")
            .arg(bin_dir());
        c
    };
    let out = run_ok(&mut demo());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| input |")
            && stdout.contains("| input + Soft-NMS (no network) |")
            && stdout.contains("| refined (TCANet, release decode scale 0.2) |")
            && stdout.contains("| refined (TCANet, calibrated decode scale ")
            && stdout.contains("chosen on 2 held-out training videos"),
        "{stdout}"
    );
    let dir = tmp.path().join("small");
    for f in [
        "summary.json",
        "report.md",
        "ar_an.png",
        "detections_map.png",
        "model.onnx",
        "refined.json",
        "detections.json",
        "input.json",
        "input_soft_nms.json",
        "train/last.safetensors",
        "train/best.safetensors",
        "model_release.onnx",
        "refined_release.json",
        "data/annotations.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let summary = read_json(&dir.join("summary.json"));
    // summary.json names every file of the run, and each one exists.
    let files = summary["files"].as_object().expect("summary.files");
    assert!(files.len() >= 19, "{files:?}");
    for (key, rel) in files {
        let rel = rel.as_str().unwrap();
        let path = dir.join(rel.trim_end_matches('/'));
        let kind_ok = if rel.ends_with('/') {
            path.is_dir()
        } else {
            path.is_file()
        };
        assert!(kind_ok, "files.{key}: {rel} missing");
    }
    assert_eq!(files["checkpoint"], "train/best.safetensors");
    let truth = Truth::load(&dir.join("data/annotations.json"), "validation");
    assert_eq!(truth.videos.len(), 12);
    for (key, file) in [
        ("input", "input.json"),
        ("input_soft_nms", "input_soft_nms.json"),
        ("refined", "refined.json"),
        ("refined_release", "refined_release.json"),
    ] {
        let ours = official_proposal_scores(&truth, &results(&read_json(&dir.join(file))));
        for k in ["AR@1", "AR@10", "AR@100", "AUC"] {
            let got = summary[key][k]
                .as_f64()
                .unwrap_or_else(|| panic!("{key}.{k} missing"));
            assert!(
                (got - ours[k]).abs() <= 1e-9 * ours[k].abs().max(1.0),
                "{key} {k}: {got} vs {}",
                ours[k]
            );
        }
    }
    // The calibration of the exported checkpoint (24 training videos: 2 held out).
    let cal = &summary["calibration"];
    assert_eq!(cal["videos"], 2);
    assert_eq!(cal["grid"].as_array().unwrap().len(), 5);
    assert!(cal["grid"].as_array().unwrap().contains(&cal["chosen"]));
    let map = summary["detection"]["average_mAP"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&map));
    for stage in [
        "synth",
        "train",
        "export",
        "infer",
        "evaluate",
        "input_soft_nms",
        "total",
    ] {
        assert!(
            summary["seconds"][stage].as_f64().unwrap() >= 0.0,
            "seconds.{stage}"
        );
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("](ar_an.png)")
            && report.contains("| input + Soft-NMS (no network) |")
            && report.contains("| refined (TCANet, release decode scale 0.2) |")
    );

    // A second run of the same name replaces the first; a directory the demo
    // did not write is refused and left alone.
    let own = tmp.path().join("small/train/epoch-1.safetensors");
    std::fs::remove_file(&own).unwrap();
    run_ok(&mut demo());
    assert!(own.is_file(), "the rerun did not rewrite the run");
    std::fs::remove_file(dir.join(".tcanet-demo")).unwrap();
    let refused = demo().output().unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("was not written by tcanet-demo"), "{err}");
    assert!(
        dir.join("summary.json").is_file(),
        "a foreign directory was touched"
    );
}
