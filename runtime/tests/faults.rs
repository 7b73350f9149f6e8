//! The fault corpus of `tcanet-infer`: bad flags, bad files, bad videos,
//! outputs that must not be written, broken partials, full disks and closed
//! pipes, each run through the real binary on real files. Every case
//! asserts the exit status, what the message names, that the message has no
//! Debug formatting, and that nothing was written or destroyed (the case's
//! directory, the shared model and dataset, /dev/null and a FIFO given as
//! outputs stay exactly as they were). The counts (tried, clean errors,
//! panics, silent acceptances) are printed at the end; with
//! `TCANET_FAULTS_SHOW=1` every case's messages are printed too.
mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use tcanet_models::data::npy::write_npy_f32;
use tcanet_models::ModelConfig;

/// The shared, read-only inputs of every case.
struct Fx {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    model: PathBuf,
    /// annotations.json, features/, proposals.json, classifier.json.
    base: PathBuf,
    /// Shard partials of one classifier run (`refined.shard-K-of-2.json`
    /// and `.detections.json`), and of shard 1 with `--top-k 5` (`top5/`).
    partials: PathBuf,
    videos: Vec<SynthVideo>,
}

fn fixture() -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(&root, "tiny", &cfg, 71);
    let mut videos = synth_videos(&cfg, 4, 72);
    for v in &mut videos {
        v.subset = "validation".into();
    }
    let base = root.join("base");
    write_dataset(&base, &videos, cfg.feat_dim);
    let classifier: serde_json::Map<String, serde_json::Value> = videos
        .iter()
        .map(|v| (v.id.clone(), serde_json::json!([0.5, 1.0, -0.5, 0.0])))
        .collect();
    std::fs::write(
        base.join("classifier.json"),
        serde_json::json!({"class_names": LABELS, "results": classifier}).to_string(),
    )
    .unwrap();
    let partials = root.join("partials");
    std::fs::create_dir_all(partials.join("top5")).unwrap();
    let cls = base.join("classifier.json");
    for (k, out, top_k) in [
        (0, partials.join("refined.json"), "100"),
        (1, partials.join("refined.json"), "100"),
        (1, partials.join("top5/refined.json"), "5"),
    ] {
        let shard = format!("{k}/2");
        let o = infer(&[
            &"run",
            &"--model",
            &model,
            &"--data",
            &base,
            &"--classifier",
            &cls,
            &"--shard",
            &shard,
            &"-o",
            &out,
            &"--threads",
            &"1",
            &"--top-k",
            &top_k,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    Fx {
        _tmp: tmp,
        root,
        model,
        base,
        partials,
        videos,
    }
}

/// One fault: the command, what it must end with, and what must not change.
struct Case {
    name: String,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    /// Standard output is a pipe whose reader is already gone.
    closed_stdout: bool,
    status: i32,
    needles: Vec<String>,
    /// The case's own directory: nothing may appear, change or vanish in it.
    dir: PathBuf,
    /// Special files given as outputs (they must keep their type).
    specials: Vec<PathBuf>,
}

impl Case {
    fn new(fx: &Fx, name: &str, status: i32, needles: &[&str]) -> Self {
        let dir = fx.root.join("cases").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        Case {
            name: name.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            closed_stdout: false,
            status,
            needles: needles.iter().map(|s| s.to_string()).collect(),
            dir,
            specials: Vec::new(),
        }
    }

    fn args(mut self, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Self {
        self.args = args.iter().map(|a| a.as_ref().to_os_string()).collect();
        self
    }

    fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    fn special(mut self, path: impl Into<PathBuf>) -> Self {
        self.specials.push(path.into());
        self
    }

    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// A copy of the base dataset inside the case's directory, to break.
    fn data(&self, fx: &Fx) -> PathBuf {
        let d = self.dir.join("data");
        copy_dir(&fx.base, &d);
        d
    }

    /// A copy of the shard partials inside the case's directory.
    fn partials(&self, fx: &Fx) -> PathBuf {
        let d = self.dir.join("partials");
        copy_dir(&fx.partials, &d);
        d
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` with its type and content (FIFOs and devices by
/// type only: they are never opened).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let e = e.unwrap();
        let p = e.path();
        let t = std::fs::symlink_metadata(&p).unwrap().file_type();
        if t.is_dir() {
            out.insert(p.clone(), ("dir".into(), Vec::new()));
            out.extend(snapshot(&p));
        } else if t.is_file() {
            out.insert(p.clone(), ("file".into(), std::fs::read(&p).unwrap()));
        } else {
            out.insert(p, (format!("{t:?}"), Vec::new()));
        }
    }
    out
}

/// What one case did.
#[derive(Debug, PartialEq)]
enum Verdict {
    Clean,
    Panic,
    SilentAcceptance,
    Wrong(String),
}

fn run_case(fx: &Fx, case: &Case) -> Verdict {
    let before = snapshot(&case.dir);
    let shared_before = (snapshot(&fx.base), std::fs::read(&fx.model).unwrap());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcanet-infer"));
    cmd.args(&case.args).current_dir(&case.dir);
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "JOB_COMPLETION_INDEX",
        "ORT_DYLIB_PATH",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    cmd.stdin(if case.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(if case.closed_stdout {
        closed_pipe()
    } else {
        Stdio::piped()
    });
    cmd.stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = &case.stdin {
        let mut w = child.stdin.take().unwrap();
        let _ = w.write_all(bytes);
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if std::env::var_os("TCANET_FAULTS_SHOW").is_some() {
        eprintln!("== {} (exit {:?})\n{err}", case.name, o.status.code());
    }
    let Some(code) = o.status.code() else {
        return Verdict::Panic;
    };
    if err.contains("panicked") || code == 101 {
        return Verdict::Panic;
    }
    if code == 0 {
        return Verdict::SilentAcceptance;
    }
    let mut problems = Vec::new();
    if code != case.status {
        problems.push(format!("exit {code}, expected {}", case.status));
    }
    for n in &case.needles {
        if !err.contains(n.as_str()) {
            problems.push(format!("message lacks `{n}`"));
        }
    }
    for debug in ["Some(", "{ ", "Os {", "None"] {
        if err.contains(debug) {
            problems.push(format!("Debug formatting `{debug}` in the message"));
        }
    }
    if case.status == 1 && case.closed_stdout && !err.is_empty() {
        problems.push("a closed pipe should end quietly".into());
    }
    if !case.closed_stdout && !err.lines().any(|l| l.starts_with("error: ")) {
        problems.push("no `error: ` line".into());
    }
    if snapshot(&case.dir) != before {
        problems.push("files in the case's directory changed".into());
    }
    if (snapshot(&fx.base), std::fs::read(&fx.model).unwrap()) != shared_before {
        problems.push("the shared inputs changed".into());
    }
    for s in &case.specials {
        let t = std::fs::symlink_metadata(s).unwrap().file_type();
        if !(t.is_fifo() || t.is_char_device()) {
            problems.push(format!("{} is no longer what it was", s.display()));
        }
    }
    if problems.is_empty() {
        Verdict::Clean
    } else {
        Verdict::Wrong(format!("{}\n--- stderr:\n{err}", problems.join("; ")))
    }
}

/// Standard output whose reader has gone: writing gives EPIPE.
fn closed_pipe() -> Stdio {
    // Both ends close-on-exec (a process forked meanwhile by another test
    // thread drops them at its exec), the read end closed at once.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Rewrites a JSON file through `edit`.
fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

/// `run` on the case's data with one thread.
/// Gives the first video of `object` (`database` or `results`) a second
/// time: a JSON object may repeat a key, serde_json's maps cannot, so the
/// text is edited.
fn repeat_first_video(path: &Path, object: &str) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (id, entry) = v[object].as_object().unwrap().iter().next().unwrap();
    let mut text = v.to_string();
    let open = format!("\"{object}\":{{");
    let at = text.find(&open).unwrap() + open.len();
    text.insert_str(at, &format!("{}:{entry},", serde_json::json!(id)));
    std::fs::write(path, text).unwrap();
}

fn run_args(fx: &Fx, data: &Path, out: &str, extra: &[&str]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![
        "run".into(),
        "--model".into(),
        fx.model.clone().into(),
        "--data".into(),
        data.into(),
        "-o".into(),
        out.into(),
        "--threads".into(),
        "1".into(),
    ];
    v.extend(extra.iter().map(OsString::from));
    v
}

fn usage_cases(fx: &Fx) -> Vec<Case> {
    let m = &fx.model;
    let b = &fx.base;
    let mut cases = vec![
        Case::new(fx, "no-output", 2, &["--output"]).args(&[&"run", &"--model", m, &"--data", b]),
        Case::new(fx, "unknown-flag", 2, &["--frobnicate"]).args(&[&"run", &"--frobnicate"]),
        Case::new(fx, "model-missing", 2, &["no-such.onnx", "no such file"]).args(&[
            &"run",
            &"--model",
            &"no-such.onnx",
            &"--data",
            b,
            &"-o",
            &"out.json",
        ]),
        Case::new(
            fx,
            "model-is-a-directory",
            2,
            &["is a directory", "give the .onnx file"],
        )
        .args(&[&"run", &"--model", b, &"--data", b, &"-o", &"out.json"]),
        Case::new(
            fx,
            "data-missing",
            2,
            &["annotations.json", "file not found"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            &"nowhere",
            &"-o",
            &"out.json",
        ]),
        Case::new(
            fx,
            "no-dataset-flags",
            2,
            &["missing --features DIR", "--data DIR"],
        )
        .args(&[&"run", &"--model", m, &"-o", &"out.json"]),
        Case::new(
            fx,
            "unknown-subset",
            2,
            &["no videos in subset 'nope'", "validation"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--subset",
            &"nope",
            &"-o",
            &"out.json",
        ]),
        Case::new(fx, "bad-device", 2, &["invalid device 'gpu'"]).args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--device",
            &"gpu",
            &"-o",
            &"out.json",
        ]),
        Case::new(
            fx,
            "shard-k-not-below-n",
            2,
            &["--shard", "invalid shard 3/2"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--shard",
            &"3/2",
            &"-o",
            &"out.json",
        ]),
        Case::new(fx, "shard-not-k-of-n", 2, &["--shard", "expected K/N"]).args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--shard",
            &"abc",
            &"-o",
            &"out.json",
        ]),
        Case::new(
            fx,
            "slurm-id-not-a-number",
            2,
            &["SLURM_ARRAY_TASK_ID=x is not a number"],
        )
        .args(&[&"run", &"--model", m, &"--data", b, &"-o", &"out.json"])
        .env("SLURM_ARRAY_TASK_ID", "x"),
        Case::new(
            fx,
            "slurm-id-below-min",
            2,
            &["is below SLURM_ARRAY_TASK_MIN"],
        )
        .args(&[&"run", &"--model", m, &"--data", b, &"-o", &"out.json"])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "4")
        .env("SLURM_ARRAY_TASK_MIN", "3"),
        Case::new(fx, "k8s-index-without-count", 2, &["pass --shard-count N"])
            .args(&[&"run", &"--model", m, &"--data", b, &"-o", &"out.json"])
            .env("JOB_COMPLETION_INDEX", "1"),
        Case::new(fx, "unknown-preset", 2, &["--preset", "nope"]).args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--preset",
            &"nope",
            &"-o",
            &"out.json",
        ]),
        Case::new(fx, "config-missing", 2, &["--config", "cfg.json"]).args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--config",
            &"cfg.json",
            &"-o",
            &"out.json",
        ]),
        Case::new(
            fx,
            "stdin-twice",
            2,
            &["--annotations and --proposals", "only once"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--annotations",
            &"-",
            &"--proposals",
            &"-",
            &"--features",
            &b.join("features"),
            &"-o",
            &"out.json",
        ]),
        Case::new(
            fx,
            "annotations-stdin-empty",
            2,
            &["<stdin>", "invalid JSON"],
        )
        .args(&[
            &"postprocess",
            &"--annotations",
            &"-",
            &"--proposals",
            &b.join("proposals.json"),
            &"-o",
            &"out.json",
        ])
        .stdin(""),
        Case::new(fx, "bench-model-missing", 2, &["nope.onnx", "no such file"]).args(&[
            &"bench",
            &"nope.onnx",
            &"--videos",
            &"1",
        ]),
        Case::new(
            fx,
            "bench-post-min-above-max",
            2,
            &["--min-proposals 50 is above --max-proposals 10"],
        )
        .args(&[
            &"bench-post",
            &"--min-proposals",
            &"50",
            &"--max-proposals",
            &"10",
        ]),
        Case::new(
            fx,
            "bench-post-too-big",
            2,
            &["exceeds 100000000 proposals"],
        )
        .args(&[
            &"bench-post",
            &"--videos",
            &"1000000",
            &"--max-proposals",
            &"1000",
        ]),
        Case::new(
            fx,
            "model-junk-bytes",
            2,
            &["junk.onnx", "could not create a session"],
        ),
        Case::new(
            fx,
            "ort-library-missing",
            1,
            &["/nonexistent/libonnxruntime.so (--ort-lib)"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--ort-lib",
            &"/nonexistent/libonnxruntime.so",
            &"-o",
            &"out.json",
        ]),
    ];
    let junk = cases
        .iter()
        .position(|c| c.name == "model-junk-bytes")
        .unwrap();
    let c = cases.remove(junk);
    std::fs::write(c.dir.join("junk.onnx"), b"not a model at all").unwrap();
    cases.insert(
        junk,
        c.args(&[
            &"run",
            &"--model",
            &"junk.onnx",
            &"--data",
            b,
            &"-o",
            &"out.json",
        ]),
    );
    let cfg = Case::new(fx, "config-invalid", 2, &["bad.json"]);
    std::fs::write(cfg.dir.join("bad.json"), b"{\"feat_dim\": \"many\"}").unwrap();
    cases.push(cfg.args(&[
        &"run",
        &"--model",
        m,
        &"--data",
        b,
        &"--config",
        &"bad.json",
        &"-o",
        &"out.json",
    ]));
    cases
}

fn output_cases(fx: &Fx) -> Vec<Case> {
    let m = &fx.model;
    let b = &fx.base;
    let cls = b.join("classifier.json");
    let mut cases = vec![
        Case::new(fx, "output-is-a-directory", 2, &["-o", "is a directory"])
            .args(&[&"run", &"--model", m, &"--data", b, &"-o", &"."]),
        Case::new(fx, "output-dir-missing", 2, &["no directory", "nowhere"]).args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"-o",
            &"nowhere/out.json",
        ]),
        Case::new(
            fx,
            "output-dir-not-writable",
            2,
            &["cannot create a file in /proc"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"-o",
            &"/proc/out.json",
        ]),
        Case::new(
            fx,
            "output-onto-annotations",
            2,
            &["same file as the input", "annotations.json"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"-o",
            &b.join("annotations.json"),
        ]),
        Case::new(
            fx,
            "output-onto-proposals",
            2,
            &["same file as the input", "proposals.json"],
        )
        .args(&[
            &"postprocess",
            &"--data",
            b,
            &"-o",
            &b.join("proposals.json"),
        ]),
        Case::new(
            fx,
            "output-onto-model",
            2,
            &["same file as the input", "tiny.onnx"],
        )
        .args(&[&"run", &"--model", m, &"--data", b, &"-o", m]),
        Case::new(
            fx,
            "output-onto-classifier",
            2,
            &["same file as the input", "classifier.json"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--classifier",
            &cls,
            &"--detections-output",
            &cls,
            &"-o",
            &"out.json",
        ]),
        Case::new(
            fx,
            "detections-onto-refined",
            2,
            &["-o and --detections-output name the same file"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--classifier",
            &cls,
            &"--detections-output",
            &"out.json",
            &"-o",
            &"out.json",
        ]),
        Case::new(
            fx,
            "report-onto-refined",
            2,
            &["-o and --report name the same file"],
        )
        .args(&[
            &"postprocess",
            &"--data",
            b,
            &"--report",
            &"./out.json",
            &"-o",
            &"out.json",
        ]),
        Case::new(
            fx,
            "output-into-features",
            2,
            &["same file as the input", "*.npy"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"-o",
            &b.join("features").join("v_000.npy"),
        ]),
        Case::new(
            fx,
            "stdout-twice",
            2,
            &["-o and --report name the same file"],
        )
        .args(&[&"postprocess", &"--data", b, &"--report", &"-", &"-o", &"-"]),
        Case::new(
            fx,
            "dev-stdout-and-dash",
            2,
            &["-o and --detections-output name the same file"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--classifier",
            &cls,
            &"--detections-output",
            &"-",
            &"-o",
            &"/dev/stdout",
        ]),
        Case::new(
            fx,
            "stdout-without-detections-output",
            2,
            &["--detections-output FILE"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--classifier",
            &cls,
            &"-o",
            &"-",
        ]),
        Case::new(
            fx,
            "dev-null-without-detections-output",
            2,
            &["/dev/null", "--detections-output FILE"],
        )
        .args(&[
            &"run",
            &"--model",
            m,
            &"--data",
            b,
            &"--classifier",
            &cls,
            &"-o",
            &"/dev/null",
        ])
        .special("/dev/null"),
        Case::new(
            fx,
            "dev-full",
            1,
            &["cannot write /dev/full", "No space left on device"],
        )
        .args(&[&"postprocess", &"--data", b, &"-o", &"/dev/full"])
        .special("/dev/full"),
    ];
    let mut pipe =
        Case::new(fx, "closed-stdout", 1, &[]).args(&[&"postprocess", &"--data", b, &"-o", &"-"]);
    pipe.closed_stdout = true;
    cases.push(pipe);
    let fifo = Case::new(
        fx,
        "fifo-output-bad-model",
        2,
        &["not a usable TCANet model"],
    );
    mkfifo(&fifo.dir.join("pipe"));
    let pipe = fifo.dir.join("pipe");
    cases.push(
        fifo.args(&[&"run", &"--model", &b, &"--data", b, &"-o", &"pipe"])
            .special(pipe),
    );
    cases
}

fn data_cases(fx: &Fx) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: &str, needles: &[&str], extra: &[&str], breaker: &dyn Fn(&Path)| {
        let c = Case::new(fx, name, 2, needles);
        let data = c.data(fx);
        breaker(&data);
        let args = run_args(fx, &data, "out.json", extra);
        let mut c = c;
        c.args = args;
        cases.push(c);
    };
    let v1 = &fx.videos[1];
    add(
        "annotations-invalid-json",
        &["annotations.json", "invalid JSON"],
        &[],
        &|d| std::fs::write(d.join("annotations.json"), "{\"database\": ").unwrap(),
    );
    add(
        "annotations-bad-duration",
        &[
            "v_001",
            "duration",
            "must be a number of seconds from 0.001 to 1000000000",
        ],
        &[],
        &|d| {
            edit_json(&d.join("annotations.json"), |v| {
                v["database"]["v_001"]["duration"] = serde_json::json!(-3.0)
            })
        },
    );
    add(
        "annotations-segment-reversed",
        &["v_002", "annotations[0].segment"],
        &[],
        &|d| {
            edit_json(&d.join("annotations.json"), |v| {
                v["database"]["v_002"]["annotations"][0]["segment"] = serde_json::json!([9.0, 1.0])
            })
        },
    );
    add(
        "proposals-invalid-json",
        &["proposals.json", "invalid JSON"],
        &[],
        &|d| std::fs::write(d.join("proposals.json"), "[1, 2").unwrap(),
    );
    add(
        "proposals-score-a-string",
        &["proposals.json", "v_000", "results.v_000"],
        &[],
        &|d| {
            edit_json(&d.join("proposals.json"), |v| {
                v["results"]["v_000"][0]["score"] = serde_json::json!("high")
            })
        },
    );
    add(
        "proposals-segment-three-numbers",
        &[
            "proposals.json",
            "video 'v_001'",
            "results.v_001[0].segment",
            "has 3 numbers",
        ],
        &[],
        &|d| {
            edit_json(&d.join("proposals.json"), |v| {
                v["results"]["v_001"][0]["segment"] = serde_json::json!([1.0, 2.0, 3.0])
            })
        },
    );
    add(
        "proposals-nan-literal",
        &[
            "proposals.json",
            "invalid JSON",
            "in 'v_002'",
            "line 1 column",
        ],
        &[],
        &|d| {
            let path = d.join("proposals.json");
            edit_json(&path, |v| {
                v["results"]["v_002"][1]["score"] = serde_json::json!(12345.5)
            });
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, text.replace("12345.5", "NaN")).unwrap();
        },
    );
    for (file, object, extra) in [
        ("annotations.json", "database", &[][..]),
        ("proposals.json", "results", &[][..]),
        (
            "classifier.json",
            "results",
            &["--classifier", "data/classifier.json"][..],
        ),
    ] {
        let twice = format!("appears twice in '{object}'");
        add(
            &format!("{}-video-twice", file.trim_end_matches(".json")),
            &[file, "video 'v_000'", &twice],
            extra,
            &|d| repeat_first_video(&d.join(file), object),
        );
    }
    add(
        "classifier-invalid-json",
        &["classifier.json", "invalid JSON"],
        &["--classifier", "data/classifier.json"],
        &|d| std::fs::write(d.join("classifier.json"), "{").unwrap(),
    );
    add(
        "classifier-wrong-class-count",
        &[
            "classifier.json",
            "results.v_000: 2 scores for 4 class names",
        ],
        &["--classifier", "data/classifier.json"],
        &|d| {
            edit_json(&d.join("classifier.json"), |v| {
                v["results"]["v_000"] = serde_json::json!([1.0, 2.0])
            })
        },
    );
    add(
        "classifier-no-classes",
        &["classifier.json", "is empty"],
        &["--classifier", "data/classifier.json"],
        &|d| {
            edit_json(&d.join("classifier.json"), |v| {
                v["class_names"] = serde_json::json!([])
            })
        },
    );
    // Per-video faults: the model runs, the run stops at the video, exit 2.
    add(
        "features-dir-missing",
        &["features", "the features directory does not exist"],
        &[],
        &|d| std::fs::remove_dir_all(d.join("features")).unwrap(),
    );
    add(
        "features-missing",
        &[
            "v_001.npy",
            "video 'v_001'",
            "file not found",
            "--keep-going",
        ],
        &[],
        &|d| std::fs::remove_file(d.join("features/v_001.npy")).unwrap(),
    );
    let feats = v1.features.clone();
    let steps = v1.steps;
    add(
        "features-nan",
        &["v_001.npy", "not finite", "step 0, channel 3"],
        &[],
        &move |d| {
            let mut f = feats.clone();
            f[3] = f32::NAN;
            write_npy_f32(&d.join("features/v_001.npy"), [steps, 32], &f).unwrap()
        },
    );
    add(
        "features-wrong-channels",
        &["v_001.npy", "32 channels"],
        &[],
        &|d| write_npy_f32(&d.join("features/v_001.npy"), [10, 16], &[0.5; 160]).unwrap(),
    );
    add(
        "features-square-auto-layout",
        &["v_001.npy", "[32, 32]", "--layout tc or ct"],
        &[],
        &|d| write_npy_f32(&d.join("features/v_001.npy"), [32, 32], &[0.5; 1024]).unwrap(),
    );
    add(
        "features-no-steps",
        &["v_001.npy", "no time steps"],
        &[],
        &|d| write_npy_f32(&d.join("features/v_001.npy"), [0, 32], &[]).unwrap(),
    );
    add(
        "features-not-npy",
        &["v_001.npy", "not a readable .npy array"],
        &[],
        &|d| std::fs::write(d.join("features/v_001.npy"), "plain text").unwrap(),
    );
    add(
        "proposal-start-after-end",
        &["proposals.json", "results.v_002[0].segment", "start >= end"],
        &[],
        &|d| {
            edit_json(&d.join("proposals.json"), |v| {
                v["results"]["v_002"][0]["segment"] = serde_json::json!([5.0, 4.0])
            })
        },
    );
    add(
        "proposal-beyond-video",
        &["v_002", "lies beyond the video"],
        &[],
        &|d| {
            edit_json(&d.join("proposals.json"), |v| {
                v["results"]["v_002"][0]["segment"] = serde_json::json!([1.0, 1.0e6])
            })
        },
    );
    add(
        "video-without-proposals",
        &["video 'v_003'", "no input proposals"],
        &[],
        &|d| {
            edit_json(&d.join("proposals.json"), |v| {
                v["results"].as_object_mut().unwrap().remove("v_003");
            })
        },
    );
    add(
        "video-with-empty-proposals",
        &["video 'v_003'", "list of input proposals is empty"],
        &[],
        &|d| {
            edit_json(&d.join("proposals.json"), |v| {
                v["results"]["v_003"] = serde_json::json!([])
            })
        },
    );
    add(
        "video-not-in-classifier",
        &["classifier.json", "video 'v_002'", "no scores"],
        &["--classifier", "data/classifier.json"],
        &|d| {
            edit_json(&d.join("classifier.json"), |v| {
                v["results"].as_object_mut().unwrap().remove("v_002");
            })
        },
    );
    add(
        "csv-proposals-nan",
        &["v_000.csv", "not finite"],
        &["--proposals", "data/csv"],
        &|d| {
            std::fs::create_dir_all(d.join("csv")).unwrap();
            std::fs::write(d.join("csv/v_000.csv"), "xmin,xmax,score\n1,2,nan\n").unwrap()
        },
    );
    add(
        "csv-proposals-no-column",
        &["v_000.csv", "no 'score' column"],
        &["--proposals", "data/csv"],
        &|d| {
            std::fs::create_dir_all(d.join("csv")).unwrap();
            std::fs::write(d.join("csv/v_000.csv"), "xmin,xmax\n1,2\n").unwrap()
        },
    );
    // Finite features too large for float32 arithmetic: the network's
    // values overflow, its outputs are NaN (not a failed gather), and the
    // message says how large the features are.
    // The same through the functions' standard-op bodies (other runtimes).
    for (name, extra) in [
        ("features-overflow", &[][..]),
        ("features-overflow-standard-ops", &["--standard-ops"][..]),
    ] {
        let needles = [
            "video 'v_001'",
            "non-finite value",
            "reach 1e30 in magnitude",
        ];
        let mut overflow = Case::new(fx, name, 1, &needles);
        let data = overflow.data(fx);
        let mut f = v1.features.clone();
        f[3] = 1e30;
        write_npy_f32(&data.join("features/v_001.npy"), [v1.steps, 32], &f).unwrap();
        overflow.args = run_args(fx, &data, "out.json", extra);
        cases.push(overflow);
    }
    cases
}

fn merge_cases(fx: &Fx) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: &str, needles: &[&str], make: &dyn Fn(&Path) -> Vec<PathBuf>| {
        let c = Case::new(fx, name, 2, needles);
        let p = c.partials(fx);
        let inputs = make(&p);
        let mut args: Vec<OsString> = vec!["merge".into()];
        args.extend(inputs.into_iter().map(OsString::from));
        args.extend(["-o".into(), "merged.json".into()]);
        let mut c = c;
        c.args = args;
        cases.push(c);
    };
    let part = |p: &Path, k: usize| p.join(format!("refined.shard-{k}-of-2.json"));
    add("merge-not-a-partial", &["not a shard partial"], &|p| {
        let whole = p.join("whole.json");
        std::fs::write(&whole, r#"{"version": "VERSION 1.3", "results": {}}"#).unwrap();
        vec![whole]
    });
    add(
        "merge-other-settings",
        &["different runs", "tcanet_run.settings.top_k is 5"],
        &|p| vec![part(p, 0), p.join("top5/refined.shard-1-of-2.json")],
    );
    add(
        "merge-other-model",
        &["different runs", "tcanet_run.model_sha256"],
        &|p| {
            edit_json(&part(p, 1), |v| {
                v["tcanet_run"]["model_sha256"] = serde_json::json!("00")
            });
            vec![part(p, 0), part(p, 1)]
        },
    );
    add(
        "merge-missing-shard",
        &["missing shard partial(s): 1/2"],
        &|p| vec![part(p, 0)],
    );
    add(
        "merge-proposals-with-detections",
        &["different runs", "tcanet_run.kind"],
        &|p| vec![part(p, 0), p.join("refined.shard-1-of-2.detections.json")],
    );
    add(
        "merge-video-removed",
        &[
            "video 'v_001'",
            "missing from the results",
            "--allow-missing",
        ],
        &|p| {
            edit_json(&part(p, 1), |v| {
                v["results"].as_object_mut().unwrap().remove("v_001");
            });
            vec![part(p, 0), part(p, 1)]
        },
    );
    add(
        "merge-assigned-list-edited",
        &["do not make up the run's video list"],
        &|p| {
            edit_json(&part(p, 1), |v| {
                v["tcanet_shard"]["assigned"][0] = serde_json::json!("v_099")
            });
            vec![part(p, 0), part(p, 1)]
        },
    );
    add(
        "merge-impossible-shard",
        &["tcanet_shard", "impossible"],
        &|p| {
            edit_json(&part(p, 1), |v| {
                v["tcanet_shard"]["count"] = serde_json::json!(0)
            });
            vec![part(p, 0), part(p, 1)]
        },
    );
    add(
        "merge-huge-shard-count",
        &["missing shard partial(s)", "more"],
        &|p| {
            for k in 0..2 {
                edit_json(&part(p, k), |v| {
                    v["tcanet_shard"]["count"] = serde_json::json!(1u64 << 60)
                });
            }
            vec![part(p, 0), part(p, 1)]
        },
    );
    add(
        "merge-segment-reversed",
        &["results.v_000[0].segment", "start <= end"],
        &|p| {
            edit_json(&part(p, 0), |v| {
                v["results"]["v_000"][0]["segment"] = serde_json::json!([3.0, 1.0])
            });
            vec![part(p, 0), part(p, 1)]
        },
    );
    add(
        "merge-mixed-generation",
        &[
            "were written by different runs",
            "stopped between publishing",
        ],
        &|p| {
            edit_json(&p.join("refined.shard-1-of-2.detections.json"), |v| {
                v["tcanet_run"]["generation"] = serde_json::json!("another")
            });
            vec![part(p, 0), part(p, 1)]
        },
    );
    add(
        "merge-output-onto-partial",
        &["same file as the input"],
        &|p| {
            // The case's `-o merged.json` is replaced below by a partial.
            vec![part(p, 0), part(p, 1)]
        },
    );
    let last = cases.last_mut().unwrap();
    let target = last.dir.join("partials/refined.shard-0-of-2.json");
    let n = last.args.len();
    last.args[n - 1] = target.into();
    let c = Case::new(fx, "merge-stdin-twice", 2, &["read standard input"]);
    cases.push(
        c.args(&[&"merge", &"-", &"-", &"-o", &"merged.json"])
            .stdin(""),
    );
    cases
}

#[test]
fn every_fault_ends_cleanly_and_changes_nothing() {
    let fx = fixture();
    let mut cases = usage_cases(&fx);
    cases.extend(output_cases(&fx));
    cases.extend(data_cases(&fx));
    cases.extend(merge_cases(&fx));
    let names: std::collections::HashSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "case names are distinct");
    assert!(cases.len() >= 50, "{} cases", cases.len());
    // Two at a time (the machine's cores); each case has its own directory.
    let verdicts: Vec<Verdict> = std::thread::scope(|s| {
        let (a, b) = cases.split_at(cases.len() / 2);
        let fx = &fx;
        let ha = s.spawn(move || a.iter().map(|c| run_case(fx, c)).collect::<Vec<_>>());
        let hb = s.spawn(move || b.iter().map(|c| run_case(fx, c)).collect::<Vec<_>>());
        let mut v = ha.join().unwrap();
        v.extend(hb.join().unwrap());
        v
    });
    let count = |f: fn(&Verdict) -> bool| verdicts.iter().filter(|v| f(v)).count();
    let clean = count(|v| *v == Verdict::Clean);
    let panics = count(|v| *v == Verdict::Panic);
    let silent = count(|v| *v == Verdict::SilentAcceptance);
    eprintln!(
        "fault corpus: {} tried, {clean} clean errors, {panics} panics, {silent} silent acceptances",
        cases.len()
    );
    let wrong: Vec<String> = cases
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| **v != Verdict::Clean)
        .map(|(c, v)| format!("{}: {v:?}", c.name))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
