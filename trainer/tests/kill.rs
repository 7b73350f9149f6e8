//! A training run killed (SIGKILL, by strace's fault injection) at every
//! rename and at every write it makes, then continued — with `--resume`
//! when a checkpoint exists, else started again — ends with exactly the
//! files of an uninterrupted run: the same bytes of `last.safetensors`
//! (weights, AdamW moments, position, settings), `best.safetensors`, the
//! epoch checkpoints, the same log records, and no temporary file left.
//! Identical runs write identical bytes (checked on two uninterrupted runs).
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{bin, file_sha, run, run_ok, small_config, synth_small, tmp};

/// The files whose bytes must match an uninterrupted run.
const CHECKPOINTS: [&str; 4] = [
    "last.safetensors",
    "best.safetensors",
    "epoch-1.safetensors",
    "epoch-2.safetensors",
];

struct Setup {
    data: PathBuf,
    config: PathBuf,
}

impl Setup {
    /// 2 epochs of 2 steps (9 training videos, 1 held out, 8 in batches of 4),
    /// a save after every step.
    fn train(&self, out: &Path, extra: &[&str]) -> Command {
        let mut c = bin();
        c.args([
            "train",
            "--quiet",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--workers",
            "1",
        ])
        .args(["--epochs", "2", "--batch-size", "4", "--lr", "1e-3"])
        .args(["--warmup-iters", "1", "--seed", "3", "--save-every", "1"])
        .args(["--max-proposals", "16", "--no-validation"])
        .arg("--config")
        .arg(&self.config)
        .arg("--data")
        .arg(&self.data)
        .arg("--out")
        .arg(out)
        .args(extra);
        c
    }
}

/// The log's records without times and start records.
fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("train.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|v| v["event"] != "start")
        .map(|mut v| {
            v.as_object_mut().unwrap().remove("elapsed_s");
            v
        })
        .collect()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

/// Runs the training under strace, killed at the `n`-th call of `syscalls`
/// (per thread: the main thread makes every write and rename of a run).
/// Returns false when the run finished before that call.
fn killed_at(setup: &Setup, out: &Path, syscalls: &str, n: usize) -> bool {
    let train = setup.train(out, &[]);
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-o", "/dev/null"])
        .arg(format!("-e trace={syscalls}").replace(' ', ""))
        .arg(format!("-e inject={syscalls}:signal=KILL:when={n}").replace(' ', ""))
        .arg(train.get_program())
        .args(train.get_args());
    let o = run(&mut c);
    let killed = !o.status.success();
    if killed {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{err}");
    }
    killed
}

/// Continues a killed run as a user would: `--resume` when it left a
/// checkpoint, else the same command again.
fn recover(setup: &Setup, out: &Path) {
    if out.join("last.safetensors").exists() {
        run_ok(&mut setup.train(out, &["--resume"]));
    } else {
        run_ok(&mut setup.train(out, &[]));
    }
}

/// Kills a run at call 1, 2, ... of `syscalls` (three at a time) until a
/// run finishes before the call; each killed run is continued and compared
/// with the reference. Returns the kills and the calls the run makes.
fn kill_everywhere(
    setup: &Setup,
    dir: &Path,
    syscalls: &str,
    reference: &Path,
    want: &[serde_json::Value],
) -> (usize, usize) {
    let next = AtomicUsize::new(1);
    let finished_at = AtomicUsize::new(usize::MAX);
    let kills = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n > finished_at.load(Ordering::SeqCst) {
                    break;
                }
                let out = dir.join(format!("kill-{}-{n}", &syscalls[..5]));
                if !killed_at(setup, &out, syscalls, n) {
                    finished_at.fetch_min(n, Ordering::SeqCst);
                    break;
                }
                recover(setup, &out);
                compare(reference, &out, want, &format!("a kill at {syscalls} #{n}"));
                kills.fetch_add(1, Ordering::SeqCst);
                let _ = std::fs::remove_dir_all(&out);
            });
        }
    });
    let calls = finished_at.into_inner() - 1;
    let kills = kills.into_inner();
    assert_eq!(
        kills, calls,
        "{syscalls}: every call below the last was a kill"
    );
    (kills, calls)
}

/// The files of `out` are the reference's, byte for byte; the log's records
/// too; no temporary file is left.
fn compare(reference: &Path, out: &Path, want: &[serde_json::Value], what: &str) {
    for f in CHECKPOINTS {
        assert_eq!(
            file_sha(&reference.join(f)),
            file_sha(&out.join(f)),
            "{f} after {what}"
        );
    }
    assert_eq!(records(out), want, "log after {what}");
    assert_eq!(leftovers(out), Vec::<String>::new(), "{what}");
}

#[test]
fn killed_at_every_rename_and_write_then_resumed_equals_uninterrupted() {
    let strace_ok = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        strace_ok,
        "this test needs strace, allowed to trace (Debian: apt-get install strace; in a \
         container, the SYS_PTRACE capability), to kill the trainer at each rename and write"
    );
    let dir = tmp();
    let setup = Setup {
        data: dir.path().join("data"),
        config: small_config(&dir.path().join("small.json")),
    };
    synth_small(&setup.data, 9, 2, 4);
    let reference = dir.path().join("reference");
    run_ok(&mut setup.train(&reference, &[]));
    let again = dir.path().join("again");
    run_ok(&mut setup.train(&again, &[]));
    for f in CHECKPOINTS {
        assert_eq!(
            file_sha(&reference.join(f)),
            file_sha(&again.join(f)),
            "{f}: same run, same bytes"
        );
    }
    let want = records(&reference);
    assert_eq!(want.iter().filter(|r| r["event"] == "step").count(), 4);
    let mut kills = 0;
    for syscalls in ["rename,renameat,renameat2", "write,pwrite64,writev"] {
        let (killed, calls) = kill_everywhere(&setup, dir.path(), syscalls, &reference, &want);
        assert!(calls > 3, "{syscalls}: the run made only {calls} calls");
        kills += killed;
    }
    eprintln!("{kills} kills recovered");
    assert!(kills >= 20, "only {kills} kill points");
}
