//! Video-level classification scores and the detections built from them
//! (docs/MODEL.md, "Detections").
//!
//! Three file shapes are accepted:
//!
//! * **release format** (one raw score per class):
//!   `{"class_names": ["A", "B", ...], "results": {"VIDEO": [s_A, s_B, ...], ...}}`.
//! * **the authors' own file** (what their classifier wrote): the class names
//!   under `class`, and each video's scores one level deeper,
//!   `{"class": ["A", ...], "results": {"VIDEO": [[s_A, s_B, ...]], ...}}`;
//!   the first list is used, as the release reads it. Either key and either
//!   nesting may be combined.
//!
//!   In both, class probabilities are `softmax(2 × scores)`, as the release
//!   computes them.
//! * **ActivityNet classification submission**:
//!   `{"results": {"VIDEO": [{"label": "A", "score": 0.7}, ...], ...}}`.
//!   The given scores are used as the class probabilities as they are (no softmax):
//!   such files already hold probabilities.
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tcanet_models::data::{json_error_message, repeated_video_reason, Ordered, INVALID_JSON};

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

/// Which of the formats a classifier file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassifierFormat {
    /// Class names + one flat list of raw scores per video (softmax of 2 × scores).
    Release,
    /// The authors' own file: scores nested one level deeper (`[[...]]`,
    /// the first list used); softmax of 2 × scores.
    ReleaseNested,
    /// ActivityNet classification submission (`label`/`score` lists, used as probabilities).
    ActivityNet,
}

/// Class probabilities for every video of a classifier file.
#[derive(Debug, Clone)]
pub struct ClassScores {
    /// The file it was read from (`<stdin>` for standard input), for messages.
    pub path: PathBuf,
    /// The file's format.
    pub format: ClassifierFormat,
    /// Video id → (label, probability), in the file's class order.
    pub videos: VideoClasses,
}

/// Video id → (label, probability) in the file's class order.
pub type VideoClasses = HashMap<String, Vec<(String, f64)>>;

/// `softmax(2 × scores)` in f64 (the release's class probabilities).
pub fn softmax_of_doubled(scores: &[f64]) -> Vec<f64> {
    let doubled: Vec<f64> = scores.iter().map(|s| 2.0 * s).collect();
    let max = doubled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = doubled.iter().map(|d| (d - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// Builds errors about one classifier file.
struct Errors<'a>(&'a Path);

impl Errors<'_> {
    fn at(&self, message: String) -> ClassifierError {
        ClassifierError {
            path: self.0.to_path_buf(),
            message,
        }
    }
}

/// The fields of a classifier file that are read; each may be given once
/// (a repeated one is an error), and `results` keeps every video given.
#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    results: Option<Ordered<Value>>,
    #[serde(default, deserialize_with = "present")]
    class_names: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    class: Option<Value>,
}

/// A field that is present, even as `null` (which is then refused as not
/// a list, rather than taken for a missing field).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A file's `results`: (video, scores) in file order.
type Results = [(String, Value)];

impl ClassScores {
    /// Reads a classifier file in any of the formats.
    pub fn load(path: &Path) -> Result<Self, ClassifierError> {
        let text = std::fs::read_to_string(path).map_err(|e| ClassifierError {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses a classifier file's text; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ClassifierError> {
        let err = Errors(path);
        let root: RawFile = serde_json::from_str(text)
            .map_err(|e| err.at(format!("{INVALID_JSON}{}", json_error_message(text, &e))))?;
        let results = root
            .results
            .as_ref()
            .ok_or_else(|| err.at("missing object field \"results\"".into()))?;
        if let Some(video) = results.repeated_key() {
            return Err(err.at(format!(
                "video '{video}' {}",
                repeated_video_reason("results")
            )));
        }
        let (format, videos) = match class_names(&root, &err)? {
            Some(names) => parse_release(&results.0, &names, &err)?,
            None => parse_activitynet(&results.0, &err)?,
        };
        Ok(Self {
            path: path.to_path_buf(),
            format,
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

/// The class names of a release-format file (`class_names`, or `class` as
/// the authors' file has them), `None` for an ActivityNet submission. They
/// must be distinct strings, at least one.
fn class_names(root: &RawFile, err: &Errors) -> Result<Option<Vec<String>>, ClassifierError> {
    let (key, names) = match (&root.class_names, &root.class) {
        (Some(_), Some(_)) => {
            return Err(err
                .at("has both \"class_names\" and \"class\"; keep one list of class names".into()))
        }
        (Some(n), None) => ("class_names", n),
        (None, Some(n)) => ("class", n),
        (None, None) => return Ok(None),
    };
    let list = names
        .as_array()
        .ok_or_else(|| err.at(format!("field \"{key}\" must be a list of strings")))?;
    if list.is_empty() {
        return Err(err.at(format!("field \"{key}\" is empty: no classes")));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, n) in list.iter().enumerate() {
        let name = n
            .as_str()
            .ok_or_else(|| err.at(format!("{key}[{i}] is not a string")))?;
        if !seen.insert(name) {
            return Err(err.at(format!("{key}[{i}]: class '{name}' is listed twice")));
        }
        out.push(name.to_string());
    }
    Ok(Some(out))
}

/// Release format: one raw score per class (a flat list, or the authors'
/// list of lists of which the first is used) → softmax(2 × scores).
fn parse_release(
    results: &Results,
    names: &[String],
    err: &Errors,
) -> Result<(ClassifierFormat, VideoClasses), ClassifierError> {
    let mut videos = HashMap::with_capacity(results.len());
    let mut nested_any = false;
    for (video, scores) in results {
        let expected = || {
            err.at(format!(
                "results.{video}: expected a list of {} class scores (or a list holding one)",
                names.len()
            ))
        };
        let list = scores.as_array().ok_or_else(expected)?;
        let (list, field) = match list.first() {
            Some(Value::Array(inner)) => {
                nested_any = true;
                (inner, format!("results.{video}[0]"))
            }
            _ => (list, format!("results.{video}")),
        };
        if list.len() != names.len() {
            return Err(err.at(format!(
                "{field}: {} scores for {} class names",
                list.len(),
                names.len()
            )));
        }
        let raw: Vec<f64> = list
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.as_f64()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| err.at(format!("{field}[{i}]: not a finite number")))
            })
            .collect::<Result<_, _>>()?;
        let probs = softmax_of_doubled(&raw);
        videos.insert(video.clone(), names.iter().cloned().zip(probs).collect());
    }
    let format = if nested_any {
        ClassifierFormat::ReleaseNested
    } else {
        ClassifierFormat::Release
    };
    Ok((format, videos))
}

/// ActivityNet classification submission: `label`/`score` lists, the scores
/// used as probabilities; a video needs at least one class, each once.
fn parse_activitynet(
    results: &Results,
    err: &Errors,
) -> Result<(ClassifierFormat, VideoClasses), ClassifierError> {
    let mut videos = HashMap::with_capacity(results.len());
    for (video, entries) in results {
        let entries = entries.as_array().ok_or_else(|| {
            err.at(format!(
                "results.{video}: expected a list of {{\"label\", \"score\"}} (or add \"class_names\" for the release format)"
            ))
        })?;
        if entries.is_empty() {
            return Err(err.at(format!("results.{video}: the list of classes is empty")));
        }
        let mut classes: Vec<(String, f64)> = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let label = e.get("label").and_then(Value::as_str).ok_or_else(|| {
                err.at(format!(
                    "results.{video}[{i}].label: missing or not a string"
                ))
            })?;
            let score = e
                .get("score")
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    err.at(format!(
                        "results.{video}[{i}].score: missing or not a finite number"
                    ))
                })?;
            if classes.iter().any(|(l, _)| l == label) {
                return Err(err.at(format!(
                    "results.{video}[{i}].label: class '{label}' is listed twice for this video"
                )));
            }
            classes.push((label.to_string(), score));
        }
        videos.insert(video.clone(), classes);
    }
    Ok((ClassifierFormat::ActivityNet, videos))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        ClassScores::parse(text, Path::new("cls.json"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_video_or_field_given_twice_is_an_error() {
        for text in [
            r#"{"class_names": ["a"], "results": {"v1": [1], "v2": [1], "v1": [2]}}"#,
            r#"{"results": {"v1": [{"label": "a", "score": 1}], "v1": []}}"#,
        ] {
            assert_eq!(
                error(text),
                "cls.json: video 'v1' appears twice in 'results'; keep one entry per video"
            );
        }
        let e = error(r#"{"class_names": ["a"], "results": {}, "results": {"v1": [1]}}"#);
        assert!(
            e.contains("cls.json") && e.contains("duplicate field `results`"),
            "{e}"
        );
        let e = error(r#"{"class_names": null, "results": {}}"#);
        assert!(e.contains("field \"class_names\" must be a list"), "{e}");
    }
}
