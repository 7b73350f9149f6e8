//! The fault suite of `tcanet-train`: the real binary on real files, each
//! case a distinct bad input or fault. Every case asserts the exit status,
//! that the message names the file, video or field concerned and carries
//! no Debug formatting, and that nothing was written or destroyed (a
//! snapshot of its directory before and after; the cases that must write
//! say what).
mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{
    assert_clean_message, bin, file_sha, run, run_ok, small_config, snapshot, synth_small, tmp,
};

/// One bad input or fault.
struct Fault {
    name: &'static str,
    args: Vec<OsString>,
    status: i32,
    needles: Vec<String>,
    /// The directory whose content must be unchanged (a case's own copy).
    watch: PathBuf,
    /// Files allowed to change (the run's log on a failed resume).
    may_change: Vec<&'static str>,
}

impl Fault {
    /// A usage fault (status 2) whose message has `needles` and that may
    /// change nothing in `watch`.
    fn usage(name: &'static str, args: Vec<OsString>, needles: &[&str], watch: PathBuf) -> Self {
        Fault {
            name,
            args,
            status: 2,
            needles: needles.iter().map(|n| s(n)).collect(),
            watch,
            may_change: vec![],
        }
    }
}

/// The inputs the cases copy: a dataset, a model config, a trained run
/// (1 epoch, done) and a run stopped after its first step.
struct Fixture {
    root: tempfile::TempDir,
    data: PathBuf,
    config: PathBuf,
    run: PathBuf,
    stopped: PathBuf,
}

fn train_args(fx: &Fixture, data: &Path, out: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "train",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--workers",
        "1",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    for s in [
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--warmup-iters",
        "1",
        "--max-proposals",
        "16",
    ] {
        a.push(s.into());
    }
    a.extend(["--config".into(), fx.config.clone().into()]);
    a.extend(["--data".into(), data.as_os_str().to_owned()]);
    a.extend(["--out".into(), out.as_os_str().to_owned()]);
    a
}

fn fixture() -> Fixture {
    let root = tmp();
    let data = root.path().join("data");
    synth_small(&data, 10, 2, 1);
    let config = small_config(&root.path().join("small.json"));
    let fx = Fixture {
        data: data.clone(),
        config,
        run: root.path().join("run"),
        stopped: root.path().join("stopped"),
        root,
    };
    run_ok(bin().args(train_args(&fx, &data, &fx.run)).arg("--quiet"));
    run_ok(
        bin()
            .args(train_args(&fx, &data, &fx.stopped))
            .args(["--quiet", "--max-steps", "1"]),
    );
    fx
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A case directory with copies of the fixture's data (and run, if asked).
fn case_dir(fx: &Fixture, name: &str, with_run: Option<&Path>) -> (PathBuf, PathBuf) {
    let dir = fx.root.path().join("cases").join(name);
    copy_dir(&fx.data, &dir.join("data"));
    if let Some(run) = with_run {
        copy_dir(run, &dir.join("run"));
    }
    (dir.clone(), dir.join("data"))
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

/// Sets `flag` to `value` in `args` (replacing a value there), or adds both.
fn set(args: &mut Vec<OsString>, items: &[&str]) {
    for pair in items.chunks(2) {
        let (flag, value) = (pair[0], pair.get(1).copied());
        match (args.iter().position(|a| a == flag), value) {
            (Some(i), Some(v))
                if i + 1 < args.len() && !args[i + 1].to_string_lossy().starts_with("--") =>
            {
                args[i + 1] = v.into()
            }
            (_, Some(v)) => args.extend([flag.into(), v.into()]),
            (_, None) => args.push(flag.into()),
        }
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

/// Adds flags to `args`: a flag already there gets the new value; a flag
/// without a value (`--resume`) is added as it is.
fn extend(args: &mut Vec<OsString>, extra: &[&str]) {
    let mut i = 0;
    while i < extra.len() {
        let has_value = extra.get(i + 1).is_some_and(|v| !v.starts_with("--"));
        if has_value {
            set(args, &extra[i..i + 2]);
            i += 2;
        } else {
            args.push(extra[i].into());
            i += 1;
        }
    }
}

fn os(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

/// A feature file of `data` with every value set to `value`.
fn fill_features(data: &Path, video: &str, value: f32) {
    let path = data.join("features").join(format!("{video}.npy"));
    let a = tcanet_models::data::npy::read_npy(&path).unwrap();
    let shape = a.shape;
    let n = shape[0] * shape[1];
    tcanet_models::data::npy::write_npy_f32(&path, shape, &vec![value; n]).unwrap();
}

fn usage_faults(fx: &Fixture, out: &mut Vec<Fault>) {
    let mut add = |name: &'static str, extra: &[&str], needles: &[&str], drop_config: bool| {
        let (dir, data) = case_dir(fx, name, None);
        let mut args = train_args(fx, &data, &dir.join("out"));
        if drop_config {
            let i = args.iter().position(|a| a == "--config").unwrap();
            args.drain(i..i + 2);
        }
        extend(&mut args, extra);
        out.push(Fault::usage(name, args, needles, dir));
    };
    add("no-model", &[], &["no model", "--preset"], true);
    add(
        "unknown-preset",
        &["--preset", "bogus"],
        &["unknown preset 'bogus'"],
        true,
    );
    add(
        "calibrate-without-videos",
        &["--calibration-fraction", "0"],
        &["--calibration-fraction"],
        false,
    );
    add(
        "no-such-cuda-device",
        &["--device", "cuda:7"],
        &["--device cuda:7"],
        false,
    );
    add(
        "bad-device-spelling",
        &["--device", "gpu"],
        &["'gpu'", "auto, cpu, cuda or cuda:N"],
        false,
    );
    add(
        "no-usable-videos",
        &["--min-instance-seconds", "100000"],
        &[
            "no usable training video in subset 'training'",
            "(skipped: 10 video(s) without instances",
        ],
        false,
    );
    add(
        "unknown-subset",
        &["--train-subset", "nope"],
        &[
            "--train-subset 'nope'",
            "the file has: training, validation",
        ],
        false,
    );
    add(
        "unknown-val-subset",
        &["--val-subset", "nope"],
        &[
            "annotations.json",
            "--val-subset 'nope'",
            "the file has: training, validation",
        ],
        false,
    );
    add(
        "resume-nothing",
        &["--resume"],
        &["last.safetensors", "No such file"],
        false,
    );
    add(
        "overwrite-and-resume",
        &["--resume", "--overwrite"],
        &["--overwrite", "--resume"],
        false,
    );
}

fn config_file_faults(fx: &Fixture, out: &mut Vec<Fault>) {
    let cases: [(&'static str, &str, &str, &[&str]); 6] = [
        (
            "config-unknown-field",
            "--config",
            r#"{"feat_dims": 16}"#,
            &["bad.json", "feat_dims"],
        ),
        (
            "config-invalid-value",
            "--config",
            r#"{"feat_dim": 15, "conv_groups": 4}"#,
            &["bad.json", "feat_dim", "multiple of conv_groups"],
        ),
        (
            "train-config-unknown-field",
            "--train-config",
            r#"{"epoch": 1}"#,
            &["bad.json", "epoch"],
        ),
        (
            "train-config-out-of-range",
            "--train-config",
            r#"{"weight_decay": 5}"#,
            &["bad.json", "weight_decay: 5 is out of range", "[0, 1]"],
        ),
        (
            "train-config-bad-layout",
            "--train-config",
            r#"{"feature_layout": "TC"}"#,
            &["bad.json", "unknown feature layout 'TC'", "use auto, tc"],
        ),
        (
            "train-config-not-json",
            "--train-config",
            "epochs=3",
            &["bad.json", "invalid training options"],
        ),
    ];
    for (name, flag, text, needles) in cases {
        let (dir, data) = case_dir(fx, name, None);
        let file = dir.join("bad.json");
        std::fs::write(&file, text).unwrap();
        let mut args = train_args(fx, &data, &dir.join("out"));
        if flag == "--config" {
            let i = args.iter().position(|a| a == "--config").unwrap();
            args.drain(i..i + 2);
        }
        args.extend([flag.into(), file.into()]);
        out.push(Fault::usage(name, args, needles, dir));
    }
    let (dir, data) = case_dir(fx, "missing-config", None);
    let mut args = train_args(fx, &data, &dir.join("out"));
    let i = args.iter().position(|a| a == "--config").unwrap();
    args[i + 1] = dir.join("nope.json").into();
    out.push(Fault {
        name: "missing-config",
        args,
        status: 2,
        needles: vec![s("cannot read"), s("nope.json")],
        watch: dir,
        may_change: vec![],
    });
}

/// Data files broken in one way each: `edit` breaks the case's copy.
fn data_faults(fx: &Fixture, out: &mut Vec<Fault>) {
    type Edit = fn(&Path);
    let cases: [(&'static str, Edit, &[&str]); 11] = [
        (
            "missing-annotations",
            |d| std::fs::remove_file(d.join("annotations.json")).unwrap(),
            &["annotations.json", "not found"],
        ),
        (
            "malformed-annotations",
            |d| std::fs::write(d.join("annotations.json"), "{\"database\": {").unwrap(),
            &["annotations.json", "invalid JSON"],
        ),
        (
            "malformed-proposals",
            |d| std::fs::write(d.join("proposals.json"), "{\"results\": [1,").unwrap(),
            &["proposals.json", "invalid JSON"],
        ),
        (
            "missing-feature-file",
            |d| std::fs::remove_file(d.join("features/synth_00003.npy")).unwrap(),
            &["synth_00003.npy", "'synth_00003'", "not found"],
        ),
        (
            "corrupt-feature-file",
            |d| std::fs::write(d.join("features/synth_00004.npy"), b"\x93NUMPY garbage").unwrap(),
            &[
                "synth_00004.npy",
                "'synth_00004'",
                "not a readable .npy array",
            ],
        ),
        (
            "reversed-proposal",
            |d| {
                edit_json(&d.join("proposals.json"), |v| {
                    v["results"]["synth_00002"][0]["segment"] = serde_json::json!([30.0, 20.0]);
                })
            },
            &[
                "proposals.json",
                "'synth_00002'",
                "results.synth_00002[0].segment",
            ],
        ),
        (
            "proposal-beyond-video",
            |d| {
                edit_json(&d.join("proposals.json"), |v| {
                    v["results"]["synth_00001"][1]["segment"] = serde_json::json!([5.0, 100000.0]);
                })
            },
            &["proposals.json", "'synth_00001'", "beyond the video"],
        ),
        (
            "proposal-score-not-a-number",
            |d| {
                edit_json(&d.join("proposals.json"), |v| {
                    v["results"]["synth_00001"][0]["score"] = serde_json::json!("high");
                })
            },
            &["proposals.json", "score"],
        ),
        (
            "annotation-without-duration",
            |d| {
                edit_json(&d.join("annotations.json"), |v| {
                    v["database"]["synth_00005"]
                        .as_object_mut()
                        .unwrap()
                        .remove("duration");
                })
            },
            &["annotations.json", "synth_00005", "duration"],
        ),
        (
            "nan-features",
            |d| {
                for i in 0..10 {
                    let path = d.join(format!("features/synth_{i:05}.npy"));
                    let mut a = tcanet_models::data::npy::read_npy(&path).unwrap();
                    a.data[3 * a.shape[1] + 5] = f32::NAN;
                    tcanet_models::data::npy::write_npy_f32(&path, a.shape, &a.data).unwrap();
                }
            },
            &["synth_0000", ".npy", "step 3, channel 5", "is not finite"],
        ),
        (
            "empty-proposal-list-everywhere",
            |d| {
                edit_json(&d.join("proposals.json"), |v| {
                    for (_, list) in v["results"].as_object_mut().unwrap() {
                        *list = serde_json::json!([]);
                    }
                })
            },
            &["no usable training video", "10 without proposals"],
        ),
    ];
    for (name, edit, needles) in cases {
        let (dir, data) = case_dir(fx, name, None);
        edit(&data);
        out.push(Fault {
            name,
            args: train_args(fx, &data, &dir.join("out")),
            status: 2,
            needles: needles.iter().map(|n| s(n)).collect(),
            watch: dir,
            may_change: vec![],
        });
    }
    let (dir, data) = case_dir(fx, "wrong-channels", None);
    let mut args = train_args(fx, &data, &dir.join("out"));
    let i = args.iter().position(|a| a == "--config").unwrap();
    args.drain(i..i + 2);
    args.extend(os(&["--preset", "anet"]));
    out.push(Fault {
        name: "wrong-channels",
        args,
        status: 2,
        needles: vec![s(".npy"), s("'synth_0000"), s("expects 400 channels")],
        watch: dir,
        may_change: vec![],
    });
    let (dir, data) = case_dir(fx, "csv-bad-row", None);
    let csv = dir.join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    std::fs::write(
        csv.join("synth_00000.csv"),
        "xmin,xmax,score\n1.0,oops,0.5\n",
    )
    .unwrap();
    let mut args = train_args(fx, &data, &dir.join("out"));
    args.extend(["--proposals".into(), csv.into()]);
    out.push(Fault {
        name: "csv-bad-row",
        args,
        status: 2,
        needles: vec![s("synth_00000.csv"), s("row 2")],
        watch: dir,
        may_change: vec![],
    });
    let (dir, data) = case_dir(fx, "too-few-to-hold-out", None);
    edit_json(&data.join("annotations.json"), |v| {
        for (id, video) in v["database"].as_object_mut().unwrap() {
            if id != "synth_00000" {
                video["subset"] = serde_json::json!("other");
            }
        }
    });
    out.push(Fault {
        name: "too-few-to-hold-out",
        args: train_args(fx, &data, &dir.join("out")),
        status: 2,
        needles: vec![s("1 usable training video"), s("--calibration-fraction 0")],
        watch: dir,
        may_change: vec![],
    });
}

/// `--resume` and `--out` against an existing run.
fn run_faults(fx: &Fixture, out: &mut Vec<Fault>) {
    let resume = |name: &'static str, extra: &[&str], edit: Option<fn(&Path)>, needles: &[&str]| {
        let (dir, data) = case_dir(fx, name, Some(&fx.run));
        if let Some(e) = edit {
            e(&data);
        }
        let mut args = train_args(fx, &data, &dir.join("run"));
        extend(&mut args, extra);
        Fault {
            name,
            args,
            status: 2,
            needles: needles.iter().map(|n| s(n)).collect(),
            watch: dir,
            may_change: vec![],
        }
    };
    out.push(resume(
        "resume-changed-batch",
        &["--resume", "--batch-size", "2"],
        None,
        &[
            "last.safetensors",
            "cannot resume with changed settings",
            "batch_size: 4 -> 2",
            "--allow-changed-settings",
        ],
    ));
    out.push(resume(
        "resume-changed-data",
        &["--resume"],
        Some(|d| {
            edit_json(&d.join("proposals.json"), |v| {
                v["results"]["synth_00001"][0]["score"] = serde_json::json!(0.123);
            })
        }),
        &[
            "cannot resume with changed settings",
            "data: 9 videos (+1 held out)",
        ],
    ));
    out.push(resume(
        "resume-changed-seed",
        &["--resume", "--seed", "5"],
        None,
        &["seed: 0 -> 5"],
    ));
    out.push(resume(
        "fresh-over-a-run",
        &[],
        None,
        &["holds a run already", "--resume", "--overwrite"],
    ));
    let mut f = resume(
        "resume-changed-model",
        &["--resume"],
        None,
        &["model.feat_dim: 16 -> 32"],
    );
    let i = f.args.iter().position(|a| a == "--config").unwrap();
    f.args.drain(i..i + 2);
    f.args.extend(os(&["--preset", "tiny"]));
    out.push(f);
    let (dir, data) = case_dir(fx, "resume-not-a-checkpoint", None);
    std::fs::write(dir.join("notes.txt"), "not a checkpoint").unwrap();
    let mut args = train_args(fx, &data, &dir.join("out"));
    args.extend(["--resume".into(), dir.join("notes.txt").into()]);
    out.push(Fault {
        name: "resume-not-a-checkpoint",
        args,
        status: 2,
        needles: vec![s("notes.txt"), s("not a valid safetensors file")],
        watch: dir,
        may_change: vec![],
    });
    let (dir, data) = case_dir(fx, "resume-stateless", Some(&fx.run));
    let mut args = train_args(fx, &data, &dir.join("run"));
    args.extend(["--resume".into(), dir.join("run/best.safetensors").into()]);
    out.push(Fault {
        name: "resume-stateless",
        args,
        status: 2,
        needles: vec![
            s("best.safetensors"),
            s("carries no training state"),
            s("--init"),
        ],
        watch: dir,
        may_change: vec![],
    });
    let (dir, data) = case_dir(fx, "init-other-config", Some(&fx.run));
    let mut args = train_args(fx, &data, &dir.join("new"));
    let i = args.iter().position(|a| a == "--config").unwrap();
    args.drain(i..i + 2);
    args.extend([
        "--preset".into(),
        "tiny".into(),
        "--init".into(),
        dir.join("run/last.safetensors").into(),
    ]);
    out.push(Fault {
        name: "init-other-config",
        args,
        status: 2,
        needles: vec![
            s("last.safetensors"),
            s("another model config"),
            s("differs"),
        ],
        watch: dir,
        may_change: vec![],
    });
    checkpoint_faults(fx, out);
    let (dir, data) = case_dir(fx, "init-from-the-run-it-overwrites", Some(&fx.run));
    let mut args = train_args(fx, &data, &dir.join("run"));
    args.push("--overwrite".into());
    args.extend(["--init".into(), dir.join("run/best.safetensors").into()]);
    out.push(Fault {
        name: "init-from-the-run-it-overwrites",
        args,
        status: 2,
        needles: vec![s("--init"), s("run/best.safetensors"), s("--overwrite")],
        watch: dir,
        may_change: vec![],
    });
    for (name, target) in [
        ("out-is-a-file", "data/annotations.json"),
        ("out-not-creatable", ""),
    ] {
        let (dir, data) = case_dir(fx, name, None);
        let out_dir = if target.is_empty() {
            PathBuf::from("/proc/self/tcanet-run")
        } else {
            dir.join(target)
        };
        out.push(Fault {
            name,
            args: train_args(fx, &data, &out_dir),
            status: 2,
            needles: vec![s("--out"), out_dir.display().to_string()],
            watch: dir,
            may_change: vec![],
        });
    }
}

/// Edits the metadata of a checkpoint in place (values as text).
fn edit_metadata(path: &Path, f: impl FnOnce(&mut std::collections::BTreeMap<String, String>)) {
    use tcanet_models::checkpoint::{read_tensor_file, tensor_file_bytes, NamedTensor};
    let mut file = read_tensor_file(path).unwrap();
    f(&mut file.metadata);
    let tensors: Vec<NamedTensor> = file
        .tensors
        .into_iter()
        .map(|(name, (shape, data))| NamedTensor { name, shape, data })
        .collect();
    std::fs::write(path, tensor_file_bytes(&tensors, &file.metadata).unwrap()).unwrap();
}

/// `--resume` of a checkpoint whose recorded position or calibration no
/// run could have written (the trained run: epoch 1 done, 3 steps of 3).
fn checkpoint_faults(fx: &Fixture, out: &mut Vec<Fault>) {
    type Edit = fn(&mut std::collections::BTreeMap<String, String>);
    let cases: [(&'static str, Edit, &[&str], &[&str]); 3] = [
        (
            "resume-step-in-epoch-beyond-the-epoch",
            |m| {
                m.insert("tcanet.step_in_epoch".into(), "1000000".into());
            },
            &["--resume", "--epochs", "2", "--allow-changed-settings"],
            &[
                "last.safetensors",
                "tcanet.step_in_epoch",
                "1000000",
                "3 steps",
            ],
        ),
        (
            "resume-step-not-the-optimizers",
            |m| {
                m.insert("tcanet.step".into(), u64::MAX.to_string());
            },
            &["--resume"],
            &["last.safetensors", "tcanet.step", "18446744073709551615"],
        ),
        (
            "resume-calibration-out-of-range",
            |m| {
                let mut c: serde_json::Value =
                    serde_json::from_str(&m["tcanet.calibration"]).unwrap();
                c["chosen"] = serde_json::json!(5.0);
                m.insert("tcanet.calibration".into(), c.to_string());
            },
            &["--resume", "--epochs", "2", "--allow-changed-settings"],
            &["last.safetensors", "tcanet.calibration", "5", "in (0, 2]"],
        ),
    ];
    for (name, edit, extra, needles) in cases {
        let (dir, data) = case_dir(fx, name, Some(&fx.run));
        edit_metadata(&dir.join("run/last.safetensors"), edit);
        let mut args = train_args(fx, &data, &dir.join("run"));
        extend(&mut args, extra);
        out.push(Fault::usage(name, args, needles, dir));
    }
}

/// `synth`, `predict` and `calibrate` outputs that may not be written.
fn output_faults(fx: &Fixture, out: &mut Vec<Fault>) {
    let (dir, _) = case_dir(fx, "synth-foreign-dir", None);
    std::fs::create_dir_all(dir.join("mine")).unwrap();
    std::fs::write(dir.join("mine/notes.txt"), "keep me").unwrap();
    out.push(Fault {
        name: "synth-foreign-dir",
        args: vec!["synth".into(), "--out".into(), dir.join("mine").into()],
        status: 2,
        needles: vec![s("mine"), s("not empty and not a dataset written by synth")],
        watch: dir,
        may_change: vec![],
    });
    let (dir, _) = case_dir(fx, "synth-durations", None);
    let mut args = os(&[
        "synth",
        "--min-duration",
        "50",
        "--max-duration",
        "20",
        "--out",
    ]);
    args.push(dir.join("new").into());
    out.push(Fault {
        name: "synth-durations",
        args,
        status: 2,
        needles: vec![s("--min-duration 50 exceeds --max-duration 20")],
        watch: dir,
        may_change: vec![],
    });
    let predict =
        |name: &'static str, out_file: &str, input_out: Option<&str>, needles: &[&str]| {
            let (dir, data) = case_dir(fx, name, Some(&fx.run));
            let mut args = os(&["predict", "--device", "cpu", "--data"]);
            args.push(data.clone().into());
            args.extend([
                "--checkpoint".into(),
                dir.join("run/best.safetensors").into(),
            ]);
            args.extend(["--out".into(), dir.join(out_file).into()]);
            if let Some(i) = input_out {
                args.extend(["--input-out".into(), dir.join(i).into()]);
            }
            Fault {
                name,
                args,
                status: 2,
                needles: needles.iter().map(|n| s(n)).collect(),
                watch: dir,
                may_change: vec![],
            }
        };
    out.push(predict(
        "predict-onto-input",
        "data/proposals.json",
        None,
        &["proposals.json", "same file as the input"],
    ));
    out.push(predict(
        "predict-same-outputs",
        "x.json",
        Some("x.json"),
        &["--out and --input-out name the same file"],
    ));
    let mut f = predict(
        "predict-unknown-subset",
        "x.json",
        None,
        &[
            "annotations.json",
            "--subset 'nope'",
            "the file has: training, validation",
        ],
    );
    f.args.extend(os(&["--subset", "nope"]));
    out.push(f);
    out.push(predict(
        "predict-into-features",
        "data/features/synth_00005.npy",
        None,
        &[
            "synth_00005.npy",
            "same file as the input",
            "features/*.npy",
        ],
    ));
    for (name, target, needles) in [
        (
            "calibrate-onto-annotations",
            "data/annotations.json",
            &["annotations.json", "same file as the input"][..],
        ),
        (
            "calibrate-into-features",
            "data/features/synth_00001.npy",
            &["synth_00001.npy", "features/*.npy"][..],
        ),
    ] {
        let (dir, data) = case_dir(fx, name, Some(&fx.run));
        let mut args = os(&["calibrate", "--device", "cpu"]);
        args.push(dir.join("run/last.safetensors").into());
        args.extend([
            "--data".into(),
            data.into(),
            "-o".into(),
            dir.join(target).into(),
        ]);
        out.push(Fault::usage(name, args, needles, dir));
    }
    let (dir, _) = case_dir(fx, "synth-too-large", None);
    let mut args = os(&[
        "synth",
        "--channels",
        "65536",
        "--steps",
        "1000000",
        "--out",
    ]);
    args.push(dir.join("new").into());
    out.push(Fault {
        name: "synth-too-large",
        args,
        status: 2,
        needles: vec![s("65536 channels"), s("more than 268435456")],
        watch: dir,
        may_change: vec![],
    });
    let (dir, data) = case_dir(fx, "train-config-a-list", None);
    std::fs::write(dir.join("tc.json"), "[2, 4]").unwrap();
    let mut args = train_args(fx, &data, &dir.join("out"));
    args.extend(["--train-config".into(), dir.join("tc.json").into()]);
    out.push(Fault {
        name: "train-config-a-list",
        args,
        status: 2,
        needles: vec![
            s("tc.json"),
            s("a JSON object of fields is needed, not a list"),
        ],
        watch: dir,
        may_change: vec![],
    });
    let (dir, data) = case_dir(fx, "calibrate-onto-input", Some(&fx.run));
    let mut args = os(&["calibrate", "--device", "cpu"]);
    args.push(dir.join("run/last.safetensors").into());
    args.extend([
        "--data".into(),
        data.into(),
        "-o".into(),
        dir.join("run/last.safetensors").into(),
    ]);
    out.push(Fault {
        name: "calibrate-onto-input",
        args,
        status: 2,
        needles: vec![s("last.safetensors"), s("same file as the input")],
        watch: dir,
        may_change: vec![],
    });
}

/// Faults during training: a non-finite loss stops the run naming the step
/// and the term; a fresh run leaves nothing, a resumed one its checkpoint.
fn training_faults(fx: &Fixture, out: &mut Vec<Fault>) {
    let (dir, data) = case_dir(fx, "non-finite-loss", None);
    for i in 0..10 {
        fill_features(&data, &format!("synth_{i:05}"), 1e30);
    }
    out.push(Fault {
        name: "non-finite-loss",
        args: train_args(fx, &data, &dir.join("out")),
        status: 1,
        needles: vec![
            s("training stopped at step 1 (epoch 1; videos synth_"),
            s("the loss term stage 1 "),
            s("No checkpoint was written"),
        ],
        watch: dir,
        may_change: vec![],
    });
    let (dir, data) = case_dir(fx, "non-finite-after-resume", Some(&fx.stopped));
    for i in 0..10 {
        fill_features(&data, &format!("synth_{i:05}"), 1e30);
    }
    let mut args = train_args(fx, &data, &dir.join("run"));
    args.push("--resume".into());
    out.push(Fault {
        name: "non-finite-after-resume",
        args,
        status: 1,
        needles: vec![
            s("training stopped at step 2"),
            s("the loss term stage 1 "),
            s("last.safetensors (step 1), is untouched"),
        ],
        watch: dir,
        may_change: vec!["run/train.jsonl"],
    });
    // Resumed into a new directory: nothing is claimed there, nothing left.
    let (dir, data) = case_dir(fx, "non-finite-after-resume-elsewhere", Some(&fx.stopped));
    for i in 0..10 {
        fill_features(&data, &format!("synth_{i:05}"), 1e30);
    }
    let mut args = train_args(fx, &data, &dir.join("new"));
    args.extend(["--resume".into(), dir.join("run/last.safetensors").into()]);
    out.push(Fault {
        name: "non-finite-after-resume-elsewhere",
        args,
        status: 1,
        needles: vec![
            s("training stopped at step 2"),
            s("No checkpoint was written to"),
            s("run/last.safetensors (step 1), resumed from, is untouched"),
        ],
        watch: dir,
        may_change: vec![],
    });
}

fn check(f: &Fault) -> Result<(), String> {
    let before = snapshot(&f.watch);
    let o = run(bin().args(&f.args).env("NO_COLOR", "1"));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let shown = format!("{}: exit {:?}\n{err}", f.name, o.status.code());
    if o.status.code() != Some(f.status) {
        return Err(format!("expected exit {}: {shown}", f.status));
    }
    for n in &f.needles {
        if !err.contains(n.as_str()) {
            return Err(format!("message lacks {n:?}: {shown}"));
        }
    }
    if err.contains("panicked") {
        return Err(format!("panic: {shown}"));
    }
    std::panic::catch_unwind(|| assert_clean_message(&err))
        .map_err(|_| format!("debug formatting: {shown}"))?;
    let keep = |v: Vec<(String, String)>| -> Vec<(String, String)> {
        v.into_iter()
            .filter(|(n, _)| !f.may_change.contains(&n.as_str()))
            .collect()
    };
    let after = snapshot(&f.watch);
    if keep(before) != keep(after) {
        return Err(format!("files were written or destroyed: {shown}"));
    }
    Ok(())
}

#[test]
fn every_fault_exits_with_its_status_names_the_culprit_and_writes_nothing() {
    let fx = fixture();
    let mut faults = Vec::new();
    usage_faults(&fx, &mut faults);
    config_file_faults(&fx, &mut faults);
    data_faults(&fx, &mut faults);
    run_faults(&fx, &mut faults);
    output_faults(&fx, &mut faults);
    training_faults(&fx, &mut faults);
    let names: std::collections::BTreeSet<_> = faults.iter().map(|f| f.name).collect();
    assert_eq!(names.len(), faults.len(), "distinct names");
    assert!(faults.len() >= 30, "{} faults", faults.len());
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(f) = faults.get(i) else { break };
                if let Err(e) = check(f) {
                    failures.lock().unwrap().push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} faults failed:\n\n{}",
        failures.len(),
        faults.len(),
        failures.join("\n\n")
    );
    eprintln!("{} faults checked", faults.len());
    closed_pipes(&fx);
    quiet_is_quiet(&fx);
}

/// A reader that closes standard output early ends the command quietly (exit 1, no message).
fn closed_pipes(fx: &Fixture) {
    let dir = fx.root.path().join("pipes");
    std::fs::create_dir_all(&dir).unwrap();
    let bench = os(&[
        "bench",
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--batch-size",
        "1",
        "--proposals",
        "2",
    ]);
    let mut predict = os(&["predict", "--device", "cpu", "--out", "-", "--data"]);
    predict.push(fx.data.clone().into());
    predict.extend([
        "--checkpoint".into(),
        fx.run.join("best.safetensors").into(),
    ]);
    for args in [bench, predict] {
        // The reader is gone before the program starts.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = bin()
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            !err.contains("error") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

/// `--quiet` prints nothing on success; the trained run's files are intact.
fn quiet_is_quiet(fx: &Fixture) {
    let o = run(bin()
        .args([
            "synth",
            "--quiet",
            "--train-videos",
            "2",
            "--val-videos",
            "1",
            "--out",
        ])
        .arg(fx.root.path().join("quiet-synth")));
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!file_sha(&fx.run.join("last.safetensors")).is_empty());
}
