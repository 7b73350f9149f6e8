//! How `tcanet-infer` writes: several outputs published together (a kill
//! between two renames leaves a set that readers reject), devices and FIFOs
//! written in place, `-` for standard output and input, a closed pipe,
//! `--quiet`, and merging with `--allow-missing`.
mod common;

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use tcanet_models::ModelConfig;
use tcanet_runtime::output::{check_generation, Leaderboard, LeaderboardError};

struct Fx {
    dir: tempfile::TempDir,
    model: PathBuf,
    data: PathBuf,
    classifier: PathBuf,
}

fn fixture(seed: u64) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(dir.path(), "tiny", &cfg, seed);
    let mut videos = synth_videos(&cfg, 4, seed + 1);
    for v in &mut videos {
        v.subset = "validation".into();
    }
    let data = dir.path().join("data");
    write_dataset(&data, &videos, cfg.feat_dim);
    let results: serde_json::Map<String, serde_json::Value> = videos
        .iter()
        .map(|v| (v.id.clone(), serde_json::json!([0.2, 1.5, -0.5, 0.1])))
        .collect();
    let classifier = data.join("classifier.json");
    std::fs::write(
        &classifier,
        serde_json::json!({"class_names": LABELS, "results": results}).to_string(),
    )
    .unwrap();
    Fx {
        dir,
        model,
        data,
        classifier,
    }
}

/// `run` with the classifier, one thread, and `extra` flags.
fn run(fx: &Fx, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"run",
        &"--model",
        &fx.model,
        &"--data",
        &fx.data,
        &"--classifier",
        &fx.classifier,
        &"-o",
        &out,
        &"--threads",
        &"1",
    ];
    for e in extra {
        args.push(e);
    }
    infer_env(&args, env)
}

fn mixed(path: &Path) -> bool {
    let board = Leaderboard::read(path).unwrap();
    matches!(
        check_generation(path, &board),
        Err(LeaderboardError::MixedGeneration { .. })
    )
}

#[test]
fn a_kill_between_renames_leaves_a_set_that_readers_reject() {
    let fx = fixture(91);
    let out = fx.dir.path().join("refined.json");
    let dets = fx.dir.path().join("refined.detections.json");
    let o = run(&fx, &out, &[], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (old_refined, old_dets) = (std::fs::read(&out).unwrap(), std::fs::read(&dets).unwrap());
    assert!(!mixed(&out) && !mixed(&dets));

    // Killed after the first rename (the detections): the refined file is
    // still the old one, and both readers see the mix.
    let abort = [("TCANET_FAULT_ABORT_AFTER_RENAMES", "1")];
    let o = run(&fx, &out, &["--top-k", "3"], &abort);
    assert_eq!(o.status.code(), Some(137), "stopped: {}", stderr(&o));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        old_refined,
        "primary untouched"
    );
    assert_ne!(
        std::fs::read(&dets).unwrap(),
        old_dets,
        "detections replaced"
    );
    assert!(
        mixed(&out) && mixed(&dets),
        "the mix is detected from either file"
    );
    let err = check_generation(&out, &Leaderboard::read(&out).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("were written by different runs"), "{err}");

    // Killed after the last rename: a whole new set.
    let o = run(
        &fx,
        &out,
        &["--top-k", "3"],
        &[("TCANET_FAULT_ABORT_AFTER_RENAMES", "2")],
    );
    assert_eq!(o.status.code(), Some(137));
    assert!(!mixed(&out) && !mixed(&dets));
    let refined = read_results(&out);
    assert!(refined.iter().all(|(_, e)| e.len() <= 3), "the new top-k");

    // Sharded: a shard killed half-way is refused by merge.
    let mut parts = Vec::new();
    for k in 0..2 {
        let shard = format!("{k}/2");
        let o = run(&fx, &out, &["--shard", &shard], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        parts.push(fx.dir.path().join(format!("refined.shard-{k}-of-2.json")));
    }
    let o = run(&fx, &out, &["--shard", "1/2", "--top-k", "3"], &abort);
    assert_eq!(o.status.code(), Some(137));
    let merged = fx.dir.path().join("merged.json");
    let o = infer(&[&"merge", &parts[0], &parts[1], &"-o", &merged]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("were written by different runs"),
        "{}",
        stderr(&o)
    );
    assert!(!merged.exists());
}

#[test]
fn devices_and_fifos_are_written_in_place() {
    let fx = fixture(93);
    let o = infer(&[&"postprocess", &"--data", &fx.data, &"-o", &"/dev/null"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());

    let fifo = fx.dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            std::fs::File::open(fifo)
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            s
        })
    };
    let o = infer(&[&"postprocess", &"--data", &fx.data, &"-o", &fifo]);
    assert!(o.status.success(), "{}", stderr(&o));
    let through_fifo = reader.join().unwrap();
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    let file = fx.dir.path().join("file.json");
    let o = infer(&[&"postprocess", &"--data", &fx.data, &"-o", &file]);
    assert!(o.status.success(), "{}", stderr(&o));
    let parse = |t: &str| Leaderboard::parse(t, Path::new("x")).unwrap().results;
    assert_eq!(
        parse(&through_fifo),
        parse(&std::fs::read_to_string(&file).unwrap())
    );
    let names: Vec<String> = std::fs::read_dir(fx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(names.is_empty(), "no temporaries: {names:?}");
}

/// Runs the binary with `stdin` as standard input.
fn infer_stdin(args: &[&dyn AsRef<std::ffi::OsStr>], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcanet-infer"))
        .args(args.iter().map(|a| a.as_ref()))
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn dash_reads_standard_input_and_writes_standard_output() {
    let fx = fixture(95);
    let parse = |b: &[u8]| {
        Leaderboard::parse(std::str::from_utf8(b).unwrap(), Path::new("x"))
            .unwrap()
            .results
    };
    let file = fx.dir.path().join("post.json");
    let o = infer(&[&"postprocess", &"--data", &fx.data, &"-o", &file]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = std::fs::read(&file).unwrap();
    // -o -: the same results on standard output, nothing else there.
    let o = infer(&[&"postprocess", &"--data", &fx.data, &"-o", &"-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(parse(&o.stdout), parse(&want));
    // --proposals -: the proposals JSON from standard input.
    let ann = fx.data.join("annotations.json");
    let props = std::fs::read(fx.data.join("proposals.json")).unwrap();
    let o = infer_stdin(
        &[
            &"postprocess",
            &"--annotations",
            &ann,
            &"--proposals",
            &"-",
            &"-o",
            &"-",
        ],
        &props,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(parse(&o.stdout), parse(&want));

    // --classifier -: the same detections as from the file.
    let out = fx.dir.path().join("a.json");
    let o = run(&fx, &out, &[], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b = fx.dir.path().join("b.json");
    let classifier = std::fs::read(&fx.classifier).unwrap();
    let o = infer_stdin(
        &[
            &"run",
            &"--model",
            &fx.model,
            &"--data",
            &fx.data,
            &"--classifier",
            &"-",
            &"-o",
            &b,
            &"--threads",
            &"1",
        ],
        &classifier,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dets = |p: &str| read_results(&fx.dir.path().join(p));
    assert_eq!(dets("b.detections.json"), dets("a.detections.json"));

    // merge with one partial from standard input, to standard output.
    let mut parts = Vec::new();
    for k in 0..2 {
        let shard = format!("{k}/2");
        let o = run(&fx, &out, &["--shard", &shard], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        parts.push(fx.dir.path().join(format!("a.shard-{k}-of-2.json")));
    }
    let o = infer_stdin(
        &[&"merge", &"-", &parts[1], &"-o", &"-"],
        &std::fs::read(&parts[0]).unwrap(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(parse(&o.stdout), read_leaderboard(&out));
}

fn read_leaderboard(p: &Path) -> Vec<(String, Vec<tcanet_runtime::output::LeaderboardEntry>)> {
    Leaderboard::read(p).unwrap().results
}

#[test]
fn a_closed_pipe_ends_quietly_and_quiet_silences_progress() {
    let fx = fixture(97);
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the read end is ours to close.
    unsafe { libc::close(fds[0]) };
    // SAFETY: the write end is ours; Stdio takes it.
    let closed = unsafe { <Stdio as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let o = Command::new(env!("CARGO_BIN_EXE_tcanet-infer"))
        .args(["bench-post", "--videos", "50", "--repeat", "1", "--json"])
        .stdout(closed)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));

    let out = fx.dir.path().join("q.json");
    let o = infer(&[&"postprocess", &"--data", &fx.data, &"-o", &out, &"--quiet"]);
    assert!(o.status.success());
    assert!(o.stderr.is_empty(), "--quiet: {}", stderr(&o));
    let o = infer(&[&"postprocess", &"--data", &fx.data, &"-o", &out]);
    assert!(stderr(&o).contains("wrote"), "{}", stderr(&o));
    // Errors still show under --quiet, without colour off a terminal.
    let o = infer(&[&"postprocess", &"--data", &"nowhere", &"-o", &out, &"-q"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    assert!(!stderr(&o).contains('\x1b'));
}

#[test]
fn keep_going_exits_3_and_merge_needs_allow_missing_for_failed_videos() {
    let fx = fixture(99);
    std::fs::remove_file(fx.data.join("features/v_001.npy")).unwrap();
    let out = fx.dir.path().join("r.json");
    let report = fx.dir.path().join("report.json");
    let mut parts = Vec::new();
    for k in 0..2 {
        let shard = format!("{k}/2");
        let rep = format!("{}.{k}", report.display());
        let o = run(
            &fx,
            &out,
            &["--shard", &shard, "--keep-going", "--report", &rep],
            &[],
        );
        // Shard 1 holds v_001 and v_003.
        assert_eq!(
            o.status.code(),
            Some(if k == 1 { 3 } else { 0 }),
            "{}",
            stderr(&o)
        );
        parts.push(fx.dir.path().join(format!("r.shard-{k}-of-2.json")));
    }
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{}.1", report.display())).unwrap())
            .unwrap();
    assert_eq!(rep["failed"][0]["video"], "v_001");
    let merged = fx.dir.path().join("m.json");
    let o = infer(&[&"merge", &parts[0], &parts[1], &"-o", &merged]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("video 'v_001'")
            && err.contains("failed in that shard")
            && err.contains("--allow-missing"),
        "{err}"
    );
    assert!(!merged.exists());
    let o = infer(&[
        &"merge",
        &parts[0],
        &parts[1],
        &"-o",
        &merged,
        &"--allow-missing",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("'v_001'"), "listed: {}", stderr(&o));
    let videos: Vec<String> = read_results(&merged).into_iter().map(|(v, _)| v).collect();
    assert_eq!(videos, ["v_000", "v_002", "v_003"]);
}
