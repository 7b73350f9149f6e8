//! Helpers shared by the runtime's integration tests: a model written by the
//! real exporter from random weights, a small synthetic dataset in the real
//! formats, the CLI, and a deliberately plain post-processing reference.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tcanet_exporter::random_weights::{random_weights, write_weights};
use tcanet_exporter::{export_to_file, ExportOptions};
use tcanet_models::checkpoint::{Checkpoint, ConfigOverride};
use tcanet_models::data::npy::write_npy_f32;
use tcanet_models::ModelConfig;

/// The project's generator of reproducible test data.
pub use tcanet_models::rand::SplitMix64 as Rng;

/// The project's venv (python with onnx).
pub fn venv() -> PathBuf {
    PathBuf::from(env!("TCANET_VENV"))
}

/// Exports random weights for `cfg` with the real exporter; returns the
/// `.onnx` path and the checkpoint (for the f64 reference forward).
pub fn export_model(dir: &Path, name: &str, cfg: &ModelConfig, seed: u64) -> (PathBuf, Checkpoint) {
    let ckpt_path = dir.join(format!("{name}.safetensors"));
    write_weights(&ckpt_path, cfg, random_weights(cfg, seed).unwrap()).unwrap();
    let ckpt = Checkpoint::load(&ckpt_path, &ConfigOverride::Embedded).unwrap();
    let onnx = dir.join(format!("{name}.onnx"));
    export_to_file(&ckpt, &ExportOptions::default(), &onnx).unwrap();
    (onnx, ckpt)
}

/// One synthetic video as written to disk.
#[derive(Debug, Clone)]
pub struct SynthVideo {
    pub id: String,
    pub subset: String,
    pub duration: f64,
    /// `[steps, C]` row-major, as in the `.npy`.
    pub features: Vec<f32>,
    pub steps: usize,
    /// Input proposals (start, end, score) in seconds.
    pub proposals: Vec<(f64, f64, f64)>,
    /// Ground truth (start, end, label).
    pub gt: Vec<(f64, f64, String)>,
}

/// Writes `videos` as `DIR/annotations.json`, `DIR/features/*.npy`,
/// `DIR/proposals.json`.
pub fn write_dataset(dir: &Path, videos: &[SynthVideo], channels: usize) {
    std::fs::create_dir_all(dir.join("features")).unwrap();
    let mut db = serde_json::Map::new();
    let mut results = serde_json::Map::new();
    for v in videos {
        write_npy_f32(
            &dir.join("features").join(format!("{}.npy", v.id)),
            [v.steps, channels],
            &v.features,
        )
        .unwrap();
        db.insert(
            v.id.clone(),
            serde_json::json!({
                "subset": v.subset,
                "duration": v.duration,
                "annotations": v.gt.iter().map(|(s, e, l)| serde_json::json!({"segment": [s, e], "label": l})).collect::<Vec<_>>(),
            }),
        );
        results.insert(
            v.id.clone(),
            serde_json::Value::Array(
                v.proposals
                    .iter()
                    .map(|(s, e, sc)| serde_json::json!({"segment": [s, e], "score": sc}))
                    .collect(),
            ),
        );
    }
    std::fs::write(
        dir.join("annotations.json"),
        serde_json::to_string(&serde_json::json!({"database": db})).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("proposals.json"),
        serde_json::to_string(&serde_json::json!({"results": results})).unwrap(),
    )
    .unwrap();
}

pub const LABELS: [&str; 4] = ["Surfing", "Cooking", "Running", "Knitting"];

/// `n` random videos for `cfg` (subset `validation`, except every fourth in
/// `training`), 8–40 proposals each, inside the video.
pub fn synth_videos(cfg: &ModelConfig, n: usize, seed: u64) -> Vec<SynthVideo> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let steps = if cfg.normalize_by_duration {
                cfg.temporal_scale / 2 + rng.below(cfg.temporal_scale)
            } else {
                cfg.temporal_scale / 2 + rng.below(cfg.temporal_scale / 2)
            };
            // A square [C, C] file is ambiguous under --layout auto (an
            // error): keep T apart from C.
            let steps = if steps == cfg.feat_dim {
                steps + 1
            } else {
                steps
            };
            let duration = if cfg.normalize_by_duration {
                20.0 + rng.uniform() * 100.0
            } else {
                steps as f64 * cfg.temporal_interval
            };
            let features = (0..steps * cfg.feat_dim)
                .map(|_| (rng.uniform() * 2.0 - 1.0) as f32)
                .collect();
            let np = 8 + rng.below(33);
            let proposals = (0..np)
                .map(|_| {
                    let len = duration * (0.05 + 0.4 * rng.uniform());
                    let s = (duration - len) * rng.uniform();
                    (s, s + len, 0.05 + 0.9 * rng.uniform())
                })
                .collect();
            let gt = (0..1 + rng.below(3))
                .map(|_| {
                    let len = duration * (0.1 + 0.3 * rng.uniform());
                    let s = (duration - len) * rng.uniform();
                    (s, s + len, LABELS[rng.below(LABELS.len())].to_string())
                })
                .collect();
            SynthVideo {
                id: format!("v_{i:03}"),
                subset: if i % 4 == 3 { "training" } else { "validation" }.into(),
                duration,
                features,
                steps,
                proposals,
                gt,
            }
        })
        .collect()
}

/// Runs `tcanet-infer` with `args`.
pub fn infer(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    infer_env(args, &[])
}

/// Runs `tcanet-infer` with `args` and extra environment variables (the
/// scheduler variables of the test's own environment are removed).
pub fn infer_env(args: &[&dyn AsRef<std::ffi::OsStr>], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcanet-infer"));
    cmd.args(args.iter().map(|a| a.as_ref()));
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "JOB_COMPLETION_INDEX",
        "ORT_DYLIB_PATH",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One leaderboard entry: start, end, score, label.
pub type Entry = (f64, f64, f64, Option<String>);

/// Reads a leaderboard file as `video → [(start, end, score, label)]`, in order.
pub fn read_results(path: &Path) -> Vec<(String, Vec<Entry>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["version"], "VERSION 1.3");
    // Preserve order: re-scan keys in file order.
    let results = v["results"].as_object().unwrap();
    let mut keys: Vec<(usize, &String)> = results
        .keys()
        .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k))
        .collect();
    keys.sort();
    keys.into_iter()
        .map(|(_, k)| {
            let entries = results[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["segment"][0].as_f64().unwrap(),
                        e["segment"][1].as_f64().unwrap(),
                        e["score"].as_f64().unwrap(),
                        e.get("label").and_then(|l| l.as_str()).map(str::to_string),
                    )
                })
                .collect();
            (k.clone(), entries)
        })
        .collect()
}

/// The release's `iou_with_anchors` for one anchor.
pub fn plain_iou(a_min: f64, a_max: f64, b_min: f64, b_max: f64) -> f64 {
    let len_anchors = a_max - a_min;
    let int_xmin = if a_min > b_min { a_min } else { b_min };
    let int_xmax = if a_max < b_max { a_max } else { b_max };
    let inter_len = if int_xmax - int_xmin > 0.0 {
        int_xmax - int_xmin
    } else {
        0.0
    };
    let union_len = len_anchors - inter_len + b_max - b_min;
    inter_len / union_len
}

/// docs/MODEL.md's post-processing, as plainly as possible, after the release's
/// Python (lists, `list.index(max(list))`, `pop`). Input: refined segments in
/// seconds, input scores, stage-3 IoU, duration. Output (start_s, end_s, score).
pub fn plain_postprocess(
    seg: &[(f64, f64)],
    input_score: &[f64],
    iou3: &[f64],
    duration: f64,
    alpha: f64,
    t1: f64,
    t2: f64,
) -> Vec<(f64, f64, f64)> {
    let mut rows: Vec<(f64, f64, f64)> = Vec::new();
    for i in 0..seg.len() {
        rows.push((
            seg[i].0 / duration,
            seg[i].1 / duration,
            input_score[i] * iou3[i],
        ));
    }
    // df.sort_values(by="score", ascending=False), stable: repeatedly pick the
    // first of the highest remaining.
    let mut sorted: Vec<(f64, f64, f64)> = Vec::new();
    let mut used = vec![false; rows.len()];
    for _ in 0..rows.len() {
        let mut best: Option<usize> = None;
        for j in 0..rows.len() {
            if !used[j] && (best.is_none() || rows[j].2 > rows[best.unwrap()].2) {
                best = Some(j);
            }
        }
        used[best.unwrap()] = true;
        sorted.push(rows[best.unwrap()]);
    }
    let mut tstart: Vec<f64> = sorted.iter().map(|r| r.0).collect();
    let mut tend: Vec<f64> = sorted.iter().map(|r| r.1).collect();
    let mut tscore: Vec<f64> = sorted.iter().map(|r| r.2).collect();
    let mut rstart = Vec::new();
    let mut rend = Vec::new();
    let mut rscore = Vec::new();
    // The release runs Soft-NMS only on a video with more than one proposal;
    // a single proposal is kept as it is.
    if tscore.len() == 1 {
        rstart.push(tstart[0]);
        rend.push(tend[0]);
        rscore.push(tscore[0]);
    }
    while tscore.len() > 1 && rscore.len() < 101 {
        let mut max_value = tscore[0];
        for &s in &tscore {
            if s > max_value {
                max_value = s;
            }
        }
        let max_index = tscore.iter().position(|&s| s == max_value).unwrap();
        let ious: Vec<f64> = (0..tscore.len())
            .map(|j| plain_iou(tstart[j], tend[j], tstart[max_index], tend[max_index]))
            .collect();
        for idx in 0..tscore.len() {
            if idx != max_index {
                let tmp_iou = ious[idx];
                let tmp_width = tend[max_index] - tstart[max_index];
                if tmp_iou > t1 + (t2 - t1) * tmp_width {
                    tscore[idx] *= (-tmp_iou.powf(2.5) / alpha).exp();
                }
            }
        }
        rstart.push(tstart.remove(max_index));
        rend.push(tend.remove(max_index));
        rscore.push(tscore.remove(max_index));
    }
    let mut order: Vec<usize> = (0..rscore.len()).collect();
    order.sort_by(|&a, &b| rscore[b].partial_cmp(&rscore[a]).unwrap());
    order
        .iter()
        .take(100)
        .map(|&i| {
            let s = if rstart[i] > 0.0 { rstart[i] } else { 0.0 };
            let e = if rend[i] < 1.0 { rend[i] } else { 1.0 };
            (s * duration, e * duration, rscore[i])
        })
        .collect()
}
