//! Video-level classification scores and the detections built from them
//! (TCANET.md, "Detections").
//!
//! Two file formats are accepted:
//!
//! * **release format** (the authors' classifier output, one raw score per class):
//!   `{"class_names": ["A", "B", ...], "results": {"VIDEO": [s_A, s_B, ...], ...}}`.
//!   Class probabilities are `softmax(2 × scores)`, as the release computes them.
//! * **ActivityNet classification submission**:
//!   `{"results": {"VIDEO": [{"label": "A", "score": 0.7}, ...], ...}}`.
//!   The given scores are used as the class probabilities as they are (no softmax):
//!   such files already hold probabilities.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::postprocess::ScoredSegment;

/// A classifier file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ClassifierError {
    /// The classifier file.
    pub path: PathBuf,
    /// What is wrong, naming the video and field.
    pub message: String,
}

/// Which of the two formats a classifier file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassifierFormat {
    /// `class_names` + raw scores per video (softmax of 2 × scores).
    Release,
    /// ActivityNet classification submission (`label`/`score` lists, used as probabilities).
    ActivityNet,
}

/// Class probabilities for every video of a classifier file.
#[derive(Debug, Clone)]
pub struct ClassScores {
    /// The file's format.
    pub format: ClassifierFormat,
    /// Video id → (label, probability), in the file's class order.
    pub videos: HashMap<String, Vec<(String, f64)>>,
}

/// `softmax(2 × scores)` in f64 (the release's class probabilities).
pub fn softmax_of_doubled(scores: &[f64]) -> Vec<f64> {
    let doubled: Vec<f64> = scores.iter().map(|s| 2.0 * s).collect();
    let max = doubled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = doubled.iter().map(|d| (d - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

impl ClassScores {
    /// Reads a classifier file in either format.
    pub fn load(path: &Path) -> Result<Self, ClassifierError> {
        let text = std::fs::read_to_string(path).map_err(|e| ClassifierError {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses a classifier file's text; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ClassifierError> {
        let err = |message: String| ClassifierError {
            path: path.to_path_buf(),
            message,
        };
        let root: Value =
            serde_json::from_str(text).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let results = root
            .get("results")
            .and_then(Value::as_object)
            .ok_or_else(|| err("missing object field \"results\"".into()))?;
        let mut videos = HashMap::with_capacity(results.len());
        if let Some(names) = root.get("class_names") {
            let names: Vec<String> = names
                .as_array()
                .ok_or_else(|| err("field \"class_names\" must be a list of strings".into()))?
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    n.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| err(format!("class_names[{i}] is not a string")))
                })
                .collect::<Result<_, _>>()?;
            for (video, scores) in results {
                let scores = scores.as_array().ok_or_else(|| {
                    err(format!(
                        "results.{video}: expected a list of {} class scores",
                        names.len()
                    ))
                })?;
                if scores.len() != names.len() {
                    return Err(err(format!(
                        "results.{video}: {} scores for {} class_names",
                        scores.len(),
                        names.len()
                    )));
                }
                let raw: Vec<f64> = scores
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        s.as_f64().filter(|v| v.is_finite()).ok_or_else(|| {
                            err(format!("results.{video}[{i}]: not a finite number"))
                        })
                    })
                    .collect::<Result<_, _>>()?;
                let probs = softmax_of_doubled(&raw);
                videos.insert(
                    video.clone(),
                    names.iter().cloned().zip(probs).collect::<Vec<_>>(),
                );
            }
            return Ok(Self {
                format: ClassifierFormat::Release,
                videos,
            });
        }
        for (video, entries) in results {
            let entries = entries.as_array().ok_or_else(|| {
                err(format!(
                    "results.{video}: expected a list of {{\"label\", \"score\"}} (or add \"class_names\" for the release format)"
                ))
            })?;
            let mut classes = Vec::with_capacity(entries.len());
            for (i, e) in entries.iter().enumerate() {
                let label = e.get("label").and_then(Value::as_str).ok_or_else(|| {
                    err(format!(
                        "results.{video}[{i}].label: missing or not a string"
                    ))
                })?;
                let score = e
                    .get("score")
                    .and_then(Value::as_f64)
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        err(format!(
                            "results.{video}[{i}].score: missing or not a finite number"
                        ))
                    })?;
                classes.push((label.to_string(), score));
            }
            videos.insert(video.clone(), classes);
        }
        Ok(Self {
            format: ClassifierFormat::ActivityNet,
            videos,
        })
    }

    /// The `k` most probable classes of `video` (ties: file order), or `None`
    /// when the file has no entry for it.
    pub fn top_classes(&self, video: &str, k: usize) -> Option<Vec<(String, f64)>> {
        let classes = self.videos.get(video)?;
        let mut order: Vec<usize> = (0..classes.len()).collect();
        order.sort_by(|&a, &b| classes[b].1.total_cmp(&classes[a].1));
        Some(
            order
                .into_iter()
                .take(k)
                .map(|i| classes[i].clone())
                .collect(),
        )
    }
}

/// One detection: a labelled, scored segment in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// Class label.
    pub label: String,
    /// Start in seconds.
    pub start: f64,
    /// End in seconds.
    pub end: f64,
    /// `class_prob × proposal_score`.
    pub score: f64,
}

/// Detections of one video: for every proposal and each of `classes` a
/// detection scored `class_prob × proposal_score` (proposal-major order), then
/// the `max_per_video` best (stable, descending).
pub fn detections_for_video(
    proposals: &[ScoredSegment],
    classes: &[(String, f64)],
    max_per_video: usize,
) -> Vec<Detection> {
    let mut all = Vec::with_capacity(proposals.len() * classes.len());
    for p in proposals {
        for (label, prob) in classes {
            all.push(Detection {
                label: label.clone(),
                start: p.start,
                end: p.end,
                score: prob * p.score,
            });
        }
    }
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| all[b].score.total_cmp(&all[a].score));
    order
        .into_iter()
        .take(max_per_video)
        .map(|i| all[i].clone())
        .collect()
}
