//! The `tcanet-train` binary end to end: synth, train with --max-steps,
//! --resume from the run directory, bad input exits non-zero with a message.
use std::path::PathBuf;
use std::process::Command;
use tcanet_models::checkpoint::{Checkpoint, ConfigOverride};

fn read_checkpoint(path: &std::path::Path) -> Checkpoint {
    Checkpoint::load(path, &ConfigOverride::Embedded).unwrap()
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tcanet-train"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tcanet-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn synth_train_stop_and_resume() {
    let data = tmp("data");
    let out = tmp("run");
    let ok = bin()
        .args([
            "synth",
            "--train-videos",
            "8",
            "--val-videos",
            "4",
            "--proposals-per-video",
            "20",
            "--out",
        ])
        .arg(&data)
        .status()
        .unwrap();
    assert!(ok.success());
    let train = |extra: &[&str]| {
        let o = bin()
            .args([
                "train",
                "--preset",
                "tiny",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--quiet",
            ])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    // 8 videos / batch 4 = 2 steps per epoch; stop after 3 (mid epoch 2).
    let err = train(&[
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--warmup-iters",
        "2",
        "--seed",
        "9",
        "--max-steps",
        "3",
    ]);
    assert!(err.contains("training: 8 videos usable"), "{err}");
    let ck = read_checkpoint(&out.join("last.safetensors"));
    assert_eq!((ck.position.epoch, ck.position.global_step), (1, 3));
    assert!(out.join("epoch-1.safetensors").exists());
    // Resume takes epochs, batch size and seed from the saved options.
    let err = train(&["--resume"]);
    assert!(
        err.contains("resuming") && err.contains("3 steps done"),
        "{err}"
    );
    let ck = read_checkpoint(&out.join("last.safetensors"));
    assert_eq!((ck.position.epoch, ck.position.global_step), (2, 4));
    let log = std::fs::read_to_string(out.join("train.jsonl")).unwrap();
    let steps = log
        .lines()
        .filter(|l| l.contains("\"event\":\"step\""))
        .count();
    let vals = log
        .lines()
        .filter(|l| l.contains("\"event\":\"validation\""))
        .count();
    assert_eq!((steps, vals), (4, 2));
}

#[test]
fn bad_input_exits_non_zero_with_the_culprit() {
    let data = tmp("bad");
    let ok = bin()
        .args(["synth", "--train-videos", "2", "--val-videos", "1", "--out"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::remove_file(data.join("features/synth_00001.npy")).unwrap();
    let o = bin()
        .args(["train", "--preset", "tiny", "--device", "cpu", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(tmp("badrun"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("synth_00001.npy")
            && err.contains("'synth_00001'")
            && err.contains("not found"),
        "{err}"
    );
    // Wrong preset for the features: 32 channels, anet expects 400.
    let o = bin()
        .args(["train", "--preset", "anet", "--device", "cpu", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(tmp("badrun2"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("400 channels"), "{err}");
}

#[test]
fn train_config_file_sets_options_and_flags_override_it() {
    let data = tmp("cfgdata");
    let out = tmp("cfgrun");
    assert!(bin()
        .args([
            "synth",
            "--train-videos",
            "4",
            "--val-videos",
            "0",
            "--proposals-per-video",
            "10",
            "--out"
        ])
        .arg(&data)
        .status()
        .unwrap()
        .success());
    let cfg = data.join("run.json");
    std::fs::write(
        &cfg,
        r#"{"epochs": 1, "batch_size": 2, "seed": 4, "schedule": {"warmup_iters": 3}, "feature_layout": "tc"}"#,
    )
    .unwrap();
    let o = bin()
        .args([
            "train",
            "--preset",
            "tiny",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--quiet",
            "--no-validation",
        ])
        .args(["--max-steps", "1", "--seed", "5", "--train-config"])
        .arg(&cfg)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
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
    std::fs::write(&cfg, r#"{"epoch": 1}"#).unwrap();
    let o = bin()
        .args([
            "train",
            "--preset",
            "tiny",
            "--device",
            "cpu",
            "--train-config",
        ])
        .arg(&cfg)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("run.json") && err.contains("epoch"), "{err}");
}
