//! Bad input: per-video data errors with and without `--keep-going`, model
//! contract errors before any video, device fallback, and atomic outputs.
mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use tcanet_models::data::npy::write_npy_f32;
use tcanet_models::ModelConfig;

struct Fixture {
    dir: tempfile::TempDir,
    model: PathBuf,
    data: PathBuf,
    videos: Vec<SynthVideo>,
}

fn fixture(seed: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(dir.path(), "tiny", &cfg, seed);
    let videos = synth_videos(&cfg, 8, seed + 100);
    let data = dir.path().join("data");
    write_dataset(&data, &videos, cfg.feat_dim);
    Fixture {
        dir,
        model,
        data,
        videos,
    }
}

impl Fixture {
    /// `tcanet-infer run` on the fixture's model and data with `-o out`,
    /// then `extra`.
    fn run(&self, out: &dyn AsRef<OsStr>, extra: &[&dyn AsRef<OsStr>]) -> Output {
        let mut args: Vec<&dyn AsRef<OsStr>> = vec![
            &"run",
            &"--model",
            &self.model,
            &"--data",
            &self.data,
            &"-o",
            out,
        ];
        args.extend_from_slice(extra);
        infer(&args)
    }
}

/// Breaks five videos of the fixture: a missing feature file (v_001), NaN
/// features (v_002), a proposal with start >= end (v_004), no proposals
/// (v_005), features with 16 channels instead of 32 (v_006).
fn break_videos(f: &Fixture) {
    let feats = f.data.join("features");
    std::fs::remove_file(feats.join("v_001.npy")).unwrap();
    let v2 = &f.videos[2];
    let mut bad = v2.features.clone();
    bad[7] = f32::NAN;
    write_npy_f32(&feats.join("v_002.npy"), [v2.steps, 32], &bad).unwrap();
    let v6 = &f.videos[6];
    write_npy_f32(
        &feats.join("v_006.npy"),
        [v6.steps, 16],
        &v6.features[..v6.steps * 16],
    )
    .unwrap();
    let path = f.data.join("proposals.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["results"]["v_004"][1]["segment"] = serde_json::json!([5.0, 4.0]);
    json["results"].as_object_mut().unwrap().remove("v_005");
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
}

fn no_temp_files(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn a_bad_video_stops_the_run_and_nothing_is_written() {
    let f = fixture(1);
    break_videos(&f);
    let out = f.dir.path().join("refined.json");
    std::fs::write(&out, "previous content").unwrap();
    let o = f.run(&out, &[&"--threads", &"1"]);
    // Bad data is invalid input: exit 2, nothing written.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("v_001") && err.contains("v_001.npy"),
        "names video and file: {err}"
    );
    assert!(err.contains("--keep-going"), "says what to do: {err}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "previous content",
        "output untouched"
    );
    assert!(err.contains("nothing was written"), "{err}");
    // With --report the report alone is written, and the message says so.
    let report = f.dir.path().join("report.json");
    let o = f.run(&out, &[&"--threads", &"1", &"--report", &report]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("no results were written, only the failure report") && report.exists(),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous content");
    no_temp_files(f.dir.path());
}

#[test]
fn keep_going_reports_every_bad_video_and_exits_3() {
    let f = fixture(2);
    break_videos(&f);
    let out = f.dir.path().join("refined.json");
    let report = f.dir.path().join("report.json");
    let o = f.run(
        &out,
        &[&"--threads", &"1", &"--keep-going", &"--report", &report],
    );
    // Finished, but some videos failed: exit 3.
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let got: Vec<String> = read_results(&out).into_iter().map(|(v, _)| v).collect();
    assert_eq!(
        got,
        ["v_000", "v_003", "v_007"],
        "the good videos, in order"
    );
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["processed"], 3);
    let failed = rep["failed"].as_array().unwrap();
    let by_video = |v: &str| -> String {
        failed
            .iter()
            .find(|x| x["video"] == v)
            .unwrap_or_else(|| panic!("{v} should be reported: {rep}"))["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        by_video("v_001").contains("v_001.npy"),
        "{}",
        by_video("v_001")
    );
    assert!(
        by_video("v_001").contains("not found"),
        "{}",
        by_video("v_001")
    );
    let nan = by_video("v_002");
    assert!(
        nan.contains("v_002.npy") && nan.contains("not finite"),
        "{nan}"
    );
    let bad = by_video("v_004");
    assert!(
        bad.contains("proposals.json")
            && bad.contains("results.v_004[1]")
            && bad.contains("start >= end"),
        "{bad}"
    );
    assert!(
        by_video("v_005").contains("no input proposals"),
        "{}",
        by_video("v_005")
    );
    let channels = by_video("v_006");
    assert!(
        channels.contains("v_006.npy") && channels.contains("32 channels"),
        "{channels}"
    );
    assert_eq!(failed.len(), 5);
    no_temp_files(f.dir.path());
}

/// Rewrites the exported model with the venv's `onnx` package.
fn edit_model(src: &Path, dst: &Path, python: &str) {
    let script = format!(
        "import onnx, json, sys\nm = onnx.load(sys.argv[1])\n{python}\nonnx.save(m, sys.argv[2])\n"
    );
    let o = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(src)
        .arg(dst)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn assert_contract_error(f: &Fixture, model: &Path, extra: &[&str], needle: &str) {
    let out = f.dir.path().join("contract.json");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"run", &"--model", &model, &"--data", &f.data, &"-o", &out];
    for e in extra {
        args.push(e);
    }
    let o = infer(&args);
    let err = stderr(&o);
    // An unusable model file is invalid input: exit 2.
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(needle), "error should say `{needle}`: {err}");
    assert!(err.contains("not a usable TCANet model"), "{err}");
    assert!(!err.contains("video '"), "fails before any video: {err}");
    assert!(!out.exists());
}

#[test]
fn models_that_break_the_contract_fail_before_any_video() {
    let f = fixture(3);
    // A config whose C and T differ from the graph's.
    assert_contract_error(
        &f,
        &f.model,
        &["--preset", "hacs"],
        "dimension 1 (C) is 32, expected 2304",
    );
    let cfg = serde_json::to_string(&ModelConfig {
        feat_dim: 32,
        temporal_scale: 128,
        temporal_interval: 1.0 / 128.0,
        ..ModelConfig::tiny()
    })
    .unwrap();
    let cfg_path = f.dir.path().join("t128.json");
    std::fs::write(&cfg_path, cfg).unwrap();
    assert_contract_error(
        &f,
        &f.model,
        &["--config", cfg_path.to_str().unwrap()],
        "dimension 2 (T) is 64, expected 128",
    );
    // The same wrong T inside the model's own metadata.
    let wrong_t = f.dir.path().join("wrong_t.onnx");
    edit_model(
        &f.model,
        &wrong_t,
        "for p in m.metadata_props:\n    if p.key == 'tcanet.config':\n        c = json.loads(p.value); c['temporal_scale'] = 128; c['temporal_interval'] = 1/128; p.value = json.dumps(c)",
    );
    assert_contract_error(
        &f,
        &wrong_t,
        &[],
        "metadata `tcanet.time_steps`: 64 steps, but the config's temporal_scale is 128",
    );
    // A renamed input.
    let renamed = f.dir.path().join("renamed.onnx");
    edit_model(
        &f.model,
        &renamed,
        "m.graph.input[0].name = 'feats'\nfor n in m.graph.node:\n    for i, x in enumerate(n.input):\n        if x == 'features': n.input[i] = 'feats'",
    );
    assert_contract_error(&f, &renamed, &[], "missing input 'features'");
    // A missing output.
    let no_iou = f.dir.path().join("no_iou.onnx");
    edit_model(
        &f.model,
        &no_iou,
        "outs = [o for o in m.graph.output if o.name != 'iou_3']\ndel m.graph.output[:]\nm.graph.output.extend(outs)",
    );
    assert_contract_error(&f, &no_iou, &[], "missing output 'iou_3'");
    // No metadata at all and no --preset/--config.
    let bare = f.dir.path().join("bare.onnx");
    edit_model(&f.model, &bare, "del m.metadata_props[:]");
    assert_contract_error(&f, &bare, &[], "no tcanet.config");
}

#[test]
fn unusable_gpu_devices_fall_back_to_cpu_or_fail_when_strict() {
    // The project's ONNX Runtime is the CPU package: it has neither provider.
    let f = fixture(4);
    for device in ["cuda", "cuda:1", "tensorrt"] {
        let out = f
            .dir
            .path()
            .join(format!("{}.json", device.replace(':', "_")));
        let o = f.run(&out, &[&"--device", &device, &"--threads", &"1"]);
        let err = stderr(&o);
        assert!(o.status.success(), "{device}: {err}");
        assert!(
            err.contains("warning: device") && err.contains("falling back to cpu"),
            "{device}: {err}"
        );
        assert!(out.exists());
        let strict = f.dir.path().join("strict.json");
        let o = f.run(&strict, &[&"--device", &device, &"--strict-device"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{device}: {err}");
        assert!(
            err.contains("is not usable") && err.contains("--strict-device"),
            "{device}: {err}"
        );
        assert!(!strict.exists());
    }
    let o = f.run(&"x.json", &[&"--device", &"gpu"]);
    assert!(
        stderr(&o).contains("invalid device 'gpu'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_missing_onnx_runtime_lists_every_place_tried() {
    let f = fixture(5);
    let out = f.dir.path().join("x.json");
    let o = f.run(&out, &[&"--ort-lib", &"/nonexistent/libonnxruntime.so"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/nonexistent/libonnxruntime.so (--ort-lib): does not exist"),
        "{err}"
    );
    // Through the environment, with the venv hidden: every candidate is listed.
    let o = infer_env(
        &[
            &"run", &"--model", &f.model, &"--data", &f.data, &"-o", &out,
        ],
        &[("ORT_DYLIB_PATH", "/nonexistent/ort.so")],
    );
    let err = stderr(&o);
    assert!(
        err.contains("/nonexistent/ort.so (ORT_DYLIB_PATH)"),
        "{err}"
    );
    // A copy of the binary outside the build tree, with no library beside it
    // and the venv hidden: every candidate is listed.
    let elsewhere = f.dir.path().join("bin");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let copy = elsewhere.join("tcanet-infer");
    std::fs::copy(env!("CARGO_BIN_EXE_tcanet-infer"), &copy).unwrap();
    let o = std::process::Command::new(&copy)
        .args(["run", "--model"])
        .arg(&f.model)
        .arg("--data")
        .arg(&f.data)
        .arg("-o")
        .arg(&out)
        .env("TCANET_VENV", "/nonexistent-venv")
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{} (beside the executable)", elsewhere.display())),
        "{err}"
    );
    assert!(
        err.contains("/nonexistent-venv/onnxruntime (TCANET_VENV): does not exist"),
        "{err}"
    );
    assert!(!out.exists());
}
