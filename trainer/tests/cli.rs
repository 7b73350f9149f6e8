//! The `tcanet-train` binary end to end: synth, train with --max-steps,
//! --resume from the run directory (a log without duplicate records),
//! `--train-config` with flags overriding it, `--allow-changed-settings`.
mod common;

use common::{bin, run, run_ok, tmp};
use tcanet_models::checkpoint::{Checkpoint, ConfigOverride};

fn read_checkpoint(path: &std::path::Path) -> Checkpoint {
    Checkpoint::load(path, &ConfigOverride::Embedded).unwrap()
}

fn synth(data: &std::path::Path, train: &str, val: &str, ppv: &str) {
    run_ok(
        bin()
            .args([
                "synth",
                "--quiet",
                "--train-videos",
                train,
                "--val-videos",
                val,
            ])
            .args(["--proposals-per-video", ppv, "--out"])
            .arg(data),
    );
}

#[test]
fn synth_train_stop_and_resume() {
    let dir = tmp();
    let (data, out) = (dir.path().join("data"), dir.path().join("run"));
    synth(&data, "8", "4", "20");
    let train = |extra: &[&str]| {
        run_ok(
            bin()
                .args([
                    "train",
                    "--preset",
                    "tiny",
                    "--device",
                    "cpu",
                    "--threads",
                    "1",
                ])
                .arg("--data")
                .arg(&data)
                .arg("--out")
                .arg(&out)
                .args(extra),
        )
    };
    // 8 videos, 1 held out: 7 in batches of 4 = 2 steps per epoch; stop after 3.
    let flags = [
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--warmup-iters",
        "2",
        "--seed",
        "9",
    ];
    let err = train(&[&flags[..], &["--max-steps", "3"]].concat());
    assert!(
        err.contains("training: 7 videos usable (skipped: 0 video(s)"),
        "{err}"
    );
    assert!(err.contains("1 video(s) held out of training"), "{err}");
    let ck = read_checkpoint(&out.join("last.safetensors"));
    assert_eq!((ck.position.epoch, ck.position.global_step), (1, 3));
    assert!(out.join("epoch-1.safetensors").exists());
    assert!(out.join("best.safetensors").exists());
    // Resume takes epochs, batch size and seed from the checkpoint.
    let err = train(&["--resume", "--quiet"]);
    // --quiet: no progress; warnings stay (this tiny run's refined
    // proposals may well not beat the input on its one held-out video).
    assert!(
        err.lines().all(|l| l.starts_with("warning: ")),
        "--quiet: {err}"
    );
    let ck = read_checkpoint(&out.join("last.safetensors"));
    assert_eq!((ck.position.epoch, ck.position.global_step), (2, 4));
    let log = std::fs::read_to_string(out.join("train.jsonl")).unwrap();
    let events = |name: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("\"event\":\"{name}\"")))
            .count()
    };
    assert_eq!(
        (events("step"), events("validation"), events("calibration")),
        (4, 2, 2)
    );
    // A changed setting is refused, then allowed with a warning per change.
    let o = run(bin()
        .args([
            "train", "--device", "cpu", "--resume", "--lr", "0.5", "--seed", "1", "--data",
        ])
        .arg(&data)
        .arg("--out")
        .arg(&out));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("schedule.base: 0.0004 -> 0.5") && err.contains("seed: 9 -> 1"),
        "{err}"
    );
    let err = train(&["--resume", "--epochs", "3", "--allow-changed-settings"]);
    assert!(
        err.contains("warning: resuming with a changed setting: epochs: 2 -> 3"),
        "{err}"
    );
    assert_eq!(
        read_checkpoint(&out.join("last.safetensors"))
            .position
            .epoch,
        3
    );
}

#[test]
fn train_config_file_sets_options_and_flags_override_it() {
    let dir = tmp();
    let (data, out) = (dir.path().join("data"), dir.path().join("run"));
    synth(&data, "4", "1", "10");
    let cfg = dir.path().join("run.json");
    std::fs::write(
        &cfg,
        r#"{"epochs": 1, "batch_size": 2, "seed": 4, "schedule": {"warmup_iters": 3},
            "feature_layout": "tc", "decode_scale": "release"}"#,
    )
    .unwrap();
    run_ok(
        bin()
            .args([
                "train",
                "--preset",
                "tiny",
                "--device",
                "cpu",
                "--threads",
                "1",
            ])
            .args([
                "--quiet",
                "--no-validation",
                "--max-steps",
                "1",
                "--seed",
                "5",
            ])
            .arg("--train-config")
            .arg(&cfg)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out),
    );
    let log = std::fs::read_to_string(out.join("train.jsonl")).unwrap();
    let start: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    let opts = &start["options"];
    assert_eq!(opts["epochs"], 1);
    assert_eq!(opts["batch_size"], 2);
    assert_eq!(opts["seed"], 5, "the flag wins over the file");
    assert_eq!(opts["schedule"]["warmup_iters"], 3);
    assert_eq!(
        opts["schedule"]["base"], 4e-4,
        "absent fields keep the defaults"
    );
    assert_eq!(opts["feature_layout"], "tc");
    assert_eq!(opts["decode_scale"], "release");
    assert_eq!(start["held_out_videos"], 0, "release holds no video out");
}

/// The paths after `checkpoint: ` and after the last `: ` of a `best: ` line.
fn printed_paths(err: &str) -> Vec<std::path::PathBuf> {
    err.lines()
        .filter_map(|l| {
            let l = l.trim_end();
            l.strip_prefix("checkpoint: ").or_else(|| {
                l.strip_prefix("best: ")
                    .and_then(|b| b.rsplit_once("): "))
                    .map(|(_, p)| p)
            })
        })
        .map(std::path::PathBuf::from)
        .collect()
}

fn train_tiny(data: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> String {
    run_ok(
        bin()
            .args(["train", "--preset", "tiny", "--device", "cpu"])
            .args(["--threads", "1", "--workers", "1", "--warmup-iters", "1"])
            .arg("--data")
            .arg(data)
            .arg("--out")
            .arg(out)
            .args(extra),
    )
}

#[test]
fn a_run_resumed_into_another_directory_writes_its_checkpoint_there() {
    let dir = tmp();
    let data = dir.path().join("data");
    synth(&data, "6", "2", "10");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    // 6 videos, 1 held out: 5 in batches of 2 = 3 steps; the run is complete.
    train_tiny(&data, &first, &["--epochs", "1", "--batch-size", "2"]);
    let before = common::snapshot(&first);
    let err = train_tiny(
        &data,
        &second,
        &["--resume", first.join("last.safetensors").to_str().unwrap()],
    );
    assert!(err.contains("nothing left to train"), "{err}");
    let paths = printed_paths(&err);
    assert!(!paths.is_empty(), "{err}");
    for p in &paths {
        assert!(
            p.exists(),
            "{} is printed but does not exist:\n{err}",
            p.display()
        );
    }
    let ck = read_checkpoint(&second.join("last.safetensors"));
    assert_eq!((ck.position.epoch, ck.position.global_step), (1, 3));
    assert!(ck.train_state.is_some(), "it can be resumed in turn");
    assert!(
        err.contains("written by the run resumed from"),
        "the best epoch is the first run's: {err}"
    );
    assert_eq!(
        common::snapshot(&first),
        before,
        "the first run is untouched"
    );
    // One more epoch there: its own best and epoch files.
    let err = train_tiny(
        &data,
        &second,
        &["--resume", "--epochs", "2", "--allow-changed-settings"],
    );
    for p in printed_paths(&err) {
        assert!(p.starts_with(&second), "{}: {err}", p.display());
        assert!(p.exists(), "{}: {err}", p.display());
    }
    assert_eq!(
        read_checkpoint(&second.join("last.safetensors"))
            .position
            .global_step,
        6
    );
    assert!(second.join("epoch-2.safetensors").exists());
}

#[test]
fn predict_takes_the_feature_layout_and_shows_progress() {
    let dir = tmp();
    let data = dir.path().join("data");
    // tiny's 32 channels over 32 steps: [32, 32] files need a layout.
    run_ok(
        bin()
            .args([
                "synth",
                "--quiet",
                "--train-videos",
                "4",
                "--val-videos",
                "3",
            ])
            .args([
                "--channels",
                "32",
                "--steps",
                "32",
                "--proposals-per-video",
                "10",
            ])
            .arg("--out")
            .arg(&data),
    );
    let run_dir = dir.path().join("run");
    train_tiny(
        &data,
        &run_dir,
        &[
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--max-steps",
            "1",
            "--quiet",
            "--decode-scale",
            "release",
            "--feature-layout",
            "tc",
        ],
    );
    let out = dir.path().join("refined.json");
    let predict = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["predict", "--device", "cpu", "--threads", "1", "--data"]
            .map(String::from)
            .to_vec();
        a.push(data.display().to_string());
        a.push("--checkpoint".into());
        a.push(run_dir.join("last.safetensors").display().to_string());
        a.extend(["--out".into(), out.display().to_string()]);
        a.extend(extra.iter().map(|e| e.to_string()));
        a
    };
    let o = run(bin().args(predict(&[])));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--feature-layout"), "the flag to give: {err}");
    // Under a terminal (script(1) gives one) the progress bar counts the videos.
    let shell: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_tcanet-train").to_string())
        .chain(predict(&["--feature-layout", "tc"]))
        .map(|a| format!("'{a}'"))
        .collect();
    let o = run(std::process::Command::new("script")
        .args(["-qec", &shell.join(" "), "/dev/null"])
        .env("NO_COLOR", "1"));
    let term = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "script(1) (util-linux) runs it: {term}");
    assert!(term.contains("/3 videos"), "no progress: {term}");
    let refined: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(refined["results"].as_object().unwrap().len(), 3);
}
