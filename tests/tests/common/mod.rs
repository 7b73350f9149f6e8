//! Shared by the end-to-end tests: the real binaries, a plain f64
//! transcription of the official proposal evaluation, JSON helpers.
//!
//! The binaries of the workspace (`tcanet-train`, `tcanet-export`,
//! `tcanet-infer`, `tcanet-eval`, `tcanet-demo`) are taken from the target
//! directory of this test executable (`target/release/`). `make test` builds
//! every workspace binary before it runs any test; when running cargo
//! yourself, build them first: `cargo build --release --workspace --bins`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The directory holding the workspace's binaries: the parent of this test
/// executable's `deps/` directory.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable's directory");
    deps.parent().unwrap_or(deps).to_path_buf()
}

/// The path of workspace binary `name`, or a panic saying how to build it.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: the end-to-end tests run the real binaries of the workspace. \
         Run them with `make test`, which builds every \
         binary first, or build them with `cargo build --release --workspace --bins` before \
         `cargo test --release -p tcanet-tests`",
        p.display()
    );
    p
}

/// A command running workspace binary `name` (see [`bin`]).
pub fn tool(name: &str) -> Command {
    Command::new(bin(name))
}

/// Runs `cmd`, panicking with its command line, status and output when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `tcanet-train synth` into `out` with extra flags.
pub fn synth(out: &Path, flags: &[&str]) {
    run_ok(
        tool("tcanet-train")
            .arg("synth")
            .arg("--out")
            .arg(out)
            .args(flags),
    );
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Ground truth of one subset: video → (duration, instances), in file order.
pub struct Truth {
    /// Videos of the subset in file order.
    pub videos: Vec<(String, f64, Vec<[f64; 2]>)>,
}

impl Truth {
    /// The videos of `subset` in an ActivityNet `database` file.
    pub fn load(path: &Path, subset: &str) -> Self {
        let v = read_json(path);
        let db = v["database"].as_object().expect("database object");
        let videos = db
            .iter()
            .filter(|(_, v)| v["subset"] == subset)
            .map(|(id, v)| {
                let segs = v["annotations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        [
                            a["segment"][0].as_f64().unwrap(),
                            a["segment"][1].as_f64().unwrap(),
                        ]
                    })
                    .collect();
                (id.clone(), v["duration"].as_f64().unwrap(), segs)
            })
            .collect();
        Self { videos }
    }
}

/// Segments and scores by video, from a leaderboard file.
pub fn results(v: &Value) -> BTreeMap<String, Vec<([f64; 2], f64)>> {
    v["results"]
        .as_object()
        .expect("results object")
        .iter()
        .map(|(k, list)| {
            let props = list
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        [
                            p["segment"][0].as_f64().unwrap(),
                            p["segment"][1].as_f64().unwrap(),
                        ],
                        p["score"].as_f64().unwrap(),
                    )
                })
                .collect();
            (k.clone(), props)
        })
        .collect()
}

fn tiou(a: [f64; 2], b: [f64; 2]) -> f64 {
    let inter = (a[1].min(b[1]) - a[0].max(b[0])).max(0.0);
    inter / ((b[1] - b[0]) + (a[1] - a[0]) - inter)
}

/// AR@1, AR@5, AR@10, AR@100 (fractions) and AUC (percent), transcribed
/// plainly from the official eval_proposal.py (docs/EVALUATION.md),
/// M = 100, thresholds linspace(0.5, 0.95, 10).
pub fn official_proposal_scores(
    truth: &Truth,
    preds: &BTreeMap<String, Vec<([f64; 2], f64)>>,
) -> BTreeMap<&'static str, f64> {
    let m = 100.0;
    let n_videos = truth.videos.len() as f64;
    let n_total: usize = preds.values().map(Vec::len).sum();
    let ratio = m * n_videos / n_total as f64;
    let thresholds: Vec<f64> = (0..10).map(|i| 0.5 + i as f64 * (0.45 / 9.0)).collect();
    // Per video: the tIoU matrix [instances][kept proposals].
    let mut matrices: Vec<Vec<Vec<f64>>> = Vec::new();
    let mut total_kept = 0usize;
    let mut n_instances = 0usize;
    for (id, _, gt) in &truth.videos {
        n_instances += gt.len();
        let mut props = preds.get(id).cloned().unwrap_or_default();
        if props.is_empty() {
            matrices.push(gt.iter().map(|_| vec![0.0]).collect());
            continue;
        }
        props.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
        let n = props.len();
        let keep = ((n as f64 * ratio) as usize).min(n);
        total_kept += keep;
        matrices.push(
            gt.iter()
                .map(|g| props[..keep].iter().map(|p| tiou(p.0, *g)).collect())
                .collect(),
        );
    }
    let pcn: Vec<f64> = (1..=100)
        .map(|j| (j as f64 / 100.0) * (m * n_videos / total_kept as f64))
        .collect();
    let mut curve = vec![0.0; 100];
    for &t in &thresholds {
        for (j, &p) in pcn.iter().enumerate() {
            let mut matched = 0usize;
            for mat in &matrices {
                for row in mat {
                    let k = row.len();
                    let take = ((k as f64 * p) as usize).min(k);
                    if row[..take].iter().any(|&x| x >= t) {
                        matched += 1;
                    }
                }
            }
            curve[j] += matched as f64 / n_instances as f64 / thresholds.len() as f64;
        }
    }
    let an: Vec<f64> = pcn
        .iter()
        .map(|p| p * total_kept as f64 / n_videos)
        .collect();
    let mut area = 0.0;
    for j in 1..100 {
        area += (an[j] - an[j - 1]) * (curve[j] + curve[j - 1]) / 2.0;
    }
    BTreeMap::from([
        ("AR@1", curve[0]),
        ("AR@5", curve[4]),
        ("AR@10", curve[9]),
        ("AR@100", curve[99]),
        ("AUC", 100.0 * area / an[99]),
    ])
}

/// Writes the proposals of `subset`'s videos only (input proposals scored on
/// the same videos as the refined ones).
pub fn write_subset(proposals: &Path, truth: &Truth, out: &Path) {
    let mut v = read_json(proposals);
    let keep: std::collections::HashSet<&str> =
        truth.videos.iter().map(|(id, _, _)| id.as_str()).collect();
    v["results"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| keep.contains(k.as_str()));
    std::fs::write(out, serde_json::to_string(&v).unwrap()).unwrap();
}
