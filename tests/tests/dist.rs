//! The release tarball (`make dist`, scripts/dist.sh) unpacked under another
//! path runs export → infer → eval with a clean environment (`env -i`: no
//! venv, no PATH, no ORT_DYLIB_PATH): the binaries find ONNX Runtime beside
//! themselves and carry no path of this build.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The repository root (this package's parent).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// Runs a binary of the unpacked release with an empty environment.
fn clean(bin: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> std::process::Output {
    let mut cmd = Command::new(bin);
    cmd.env_clear().args(args);
    run_ok(&mut cmd)
}

#[test]
fn the_release_runs_anywhere_with_a_clean_environment() {
    for b in ["tcanet-infer", "tcanet-eval", "tcanet-export"] {
        bin(b); // built (or a message saying how)
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dist");
    let target = bin_dir().parent().expect("target directory").to_path_buf();
    run_ok(
        Command::new("bash")
            .arg(repo().join("scripts/dist.sh"))
            .args(["--no-wheel", "--no-build", "--out"])
            .arg(&out)
            .current_dir(repo())
            .env("CARGO_TARGET_DIR", &target),
    );
    let tarball = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a tarball");
    let elsewhere = tmp.path().join("some other place");
    std::fs::create_dir_all(&elsewhere).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&elsewhere),
    );
    let root = std::fs::read_dir(&elsewhere)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for f in [
        "README.md",
        "licenses/LICENSE-MIT",
        "licenses/onnxruntime-LICENSE.txt",
    ] {
        assert!(root.join(f).is_file(), "{f} is in the release");
    }
    let bin_of = |name: &str| root.join("bin").join(name);
    let repo_path = std::fs::canonicalize(repo()).unwrap();
    for b in ["tcanet-infer", "tcanet-eval", "tcanet-export"] {
        let bytes = std::fs::read(bin_of(b)).unwrap();
        let needle = repo_path.to_string_lossy();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{b} contains the build directory's path {needle}"
        );
        let v = clean(&bin_of(b), &[&"--version"]);
        let v = String::from_utf8_lossy(&v.stdout);
        assert!(
            v.contains(env!("CARGO_PKG_VERSION")) && v.contains("commit"),
            "{b}: {v}"
        );
    }

    // A dataset (made by this build's trainer) and a model, then the release.
    let data = tmp.path().join("data");
    synth(
        &data,
        &[
            "--train-videos",
            "2",
            "--val-videos",
            "6",
            "--channels",
            "32",
            "--steps",
            "64",
            "--seed",
            "4",
        ],
    );
    let ckpt = tmp.path().join("random.safetensors");
    let model = tmp.path().join("model.onnx");
    let refined = tmp.path().join("refined.json");
    clean(
        &bin_of("tcanet-export"),
        &[&"random-checkpoint", &"--preset", &"tiny", &"-o", &ckpt],
    );
    clean(&bin_of("tcanet-export"), &[&ckpt, &"-o", &model]);
    let run = clean(
        &bin_of("tcanet-infer"),
        &[
            &"run",
            &"--model",
            &model,
            &"--data",
            &data,
            &"--subset",
            &"validation",
            &"-o",
            &refined,
            &"--threads",
            &"1",
        ],
    );
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(
        log.contains("beside the executable"),
        "ONNX Runtime from the release: {log}"
    );
    let eval = clean(
        &bin_of("tcanet-eval"),
        &[
            &"proposals",
            &data.join("annotations.json"),
            &refined,
            &"--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    let auc = report["AUC"].as_f64().expect("an AUC");
    assert!(
        (0.0..=100.0).contains(&auc) && report["n_videos"] == 6,
        "{report}"
    );
}
