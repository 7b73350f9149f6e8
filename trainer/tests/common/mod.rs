//! Shared by the trainer's binary tests: the real `tcanet-train` (the
//! launcher, which starts `tcanet-train-core`), small datasets written by
//! its own `synth`, a small model config, and checks on outputs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `tcanet-train` as cargo built it for this test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tcanet-train"))
}

/// The directory holding the built binaries.
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_tcanet-train"))
        .parent()
        .expect("the binary's directory")
        .to_path_buf()
}

/// A fresh temporary directory (removed when dropped).
pub fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tcanet-train-test-")
        .tempdir()
        .expect("a temporary directory")
}

/// Runs a command and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Runs a command that must succeed; returns its stderr.
pub fn run_ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let o = run(cmd);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{shown} failed ({}):\n{err}", o.status);
    err
}

/// A small synthetic dataset for a `small_config()` model: 16 channels,
/// 32 steps, `train` + `val` videos, 20 proposals each.
pub fn synth_small(dir: &Path, train: usize, val: usize, seed: u64) {
    run_ok(
        bin()
            .args(["synth", "--quiet", "--channels", "16", "--steps", "32"])
            .args(["--proposals-per-video", "20", "--classes", "3"])
            .args(["--train-videos", &train.to_string()])
            .args(["--val-videos", &val.to_string()])
            .args(["--seed", &seed.to_string()])
            .arg("--out")
            .arg(dir),
    );
}

/// A small ActivityNet-style model (C = 16, T = 32) as a config JSON file.
pub fn small_config(path: &Path) -> PathBuf {
    let cfg = serde_json::json!({
        "feat_dim": 16, "temporal_scale": 32, "temporal_interval": 1.0 / 32.0,
        "normalize_by_duration": true, "hidden_dim": 32, "conv_groups": 4, "lgte_num": 1,
        "window_size": 5, "heads": 4, "ffn_dim": 32, "start_sample_num": 8,
        "end_sample_num": 8, "action_sample_num": 16, "se_hidden_dim": 16,
    });
    std::fs::write(path, cfg.to_string()).expect("write the config");
    path.to_path_buf()
}

/// Every file under `dir` (relative names with sizes and contents' hash), for
/// "nothing was written or destroyed" checks.
pub fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.strip_prefix(base).unwrap().display().to_string();
            if p.is_dir() {
                out.push((name.clone() + "/", String::new()));
                walk(base, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                out.push((name, tcanet_models::checkpoint::sha256_hex(&bytes)));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The hex SHA-256 of a file.
pub fn file_sha(path: &Path) -> String {
    tcanet_models::checkpoint::sha256_hex(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
}

/// Asserts a user-facing message has no Debug formatting of our structures.
pub fn assert_clean_message(err: &str) {
    for bad in [
        "Some(",
        "{ ",
        "Os {",
        "None",
        "SkipCounts",
        "Cpu",
        "PathBuf",
    ] {
        assert!(!err.contains(bad), "debug formatting ({bad}) in: {err}");
    }
}
