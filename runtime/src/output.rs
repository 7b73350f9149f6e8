//! Leaderboard files (proposals and detections), shard partials and merging.
//!
//! A leaderboard file is
//! `{"version": "VERSION 1.3", "results": {VIDEO: [{"segment": [s, e], "score": x}, ...]}, "external_data": {...}}`
//! (detections add `"label"` to every entry). Videos keep the dataset's order.
//!
//! A shard's partial file is a leaderboard file with one more key,
//! `"tcanet_shard": {"index": K, "count": N, "assigned": [videos...], "failed": [videos...]}`;
//! [`merge_partials`] joins the partials of one run and checks that every
//! shard is there once and every assigned video appears exactly once.
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tcanet_models::data::Ordered;

use crate::classifier::Detection;
use crate::postprocess::ScoredSegment;

/// The `version` every leaderboard file carries.
pub const LEADERBOARD_VERSION: &str = "VERSION 1.3";

/// Which rows of the dataset a shard owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard's index K, `0 <= K < count`.
    pub index: usize,
    /// Number of shards N.
    pub count: usize,
}

impl Shard {
    /// The whole dataset as one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("invalid shard '{text}': expected K/N, e.g. 0/4"))?;
        let index: usize = k
            .trim()
            .parse()
            .map_err(|_| format!("invalid shard '{text}': K must be a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("invalid shard '{text}': N must be a number"))?;
        Self::new(index, count)
    }

    /// A checked shard `index` of `count`.
    pub fn new(index: usize, count: usize) -> Result<Self, String> {
        if count == 0 || index >= count {
            return Err(format!(
                "invalid shard {index}/{count}: need N >= 1 and 0 <= K < N"
            ));
        }
        Ok(Self { index, count })
    }

    /// The shard given by a scheduler's environment, if any:
    /// `SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` (0 if unset) of
    /// `SLURM_ARRAY_TASK_COUNT`; else `JOB_COMPLETION_INDEX` (Kubernetes
    /// Indexed Job) of `count` (from `--shard-count`). Returns the shard and
    /// the variable it came from.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        count: Option<usize>,
    ) -> Result<Option<(Self, &'static str)>, String> {
        let num = |name: &str| -> Result<Option<usize>, String> {
            match get(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("{name}={v} is not a number")),
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let n = num("SLURM_ARRAY_TASK_COUNT")?
                .or(count)
                .ok_or("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; pass --shard-count N")?;
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let k = id.checked_sub(min).ok_or_else(|| {
                format!("SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}")
            })?;
            return Self::new(k, n).map(|s| Some((s, "SLURM_ARRAY_TASK_ID")));
        }
        if let Some(k) = num("JOB_COMPLETION_INDEX")? {
            let n = count.ok_or(
                "JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job): pass --shard-count N (the Job's completions)",
            )?;
            return Self::new(k, n).map(|s| Some((s, "JOB_COMPLETION_INDEX")));
        }
        Ok(None)
    }

    /// This shard's items out of `total`, in order: every N-th item starting
    /// at K (round-robin, so long and short videos spread evenly).
    pub fn indices(&self, total: usize) -> impl Iterator<Item = usize> + '_ {
        (self.index..total).step_by(self.count)
    }

    /// The partial file name for `output`: `DIR/STEM.shard-K-of-N.EXT`.
    pub fn partial_path(&self, output: &Path) -> PathBuf {
        let stem = output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "results".into());
        let ext = output
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        output.with_file_name(format!(
            "{stem}.shard-{}-of-{}{ext}",
            self.index, self.count
        ))
    }
}

/// One entry of a leaderboard file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderboardEntry {
    /// `[start, end]` in seconds.
    pub segment: [f64; 2],
    /// Confidence.
    pub score: f64,
    /// Class label (detections only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub label: Option<String>,
}

impl From<&ScoredSegment> for LeaderboardEntry {
    fn from(s: &ScoredSegment) -> Self {
        Self {
            segment: [s.start, s.end],
            score: s.score,
            label: None,
        }
    }
}

impl From<&Detection> for LeaderboardEntry {
    fn from(d: &Detection) -> Self {
        Self {
            segment: [d.start, d.end],
            score: d.score,
            label: Some(d.label.clone()),
        }
    }
}

/// Shard bookkeeping stored in a partial file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Shard index K.
    pub index: usize,
    /// Shard count N.
    pub count: usize,
    /// The videos this shard was given, in order.
    pub assigned: Vec<String>,
    /// The assigned videos that failed (absent from `results`).
    pub failed: Vec<String>,
}

/// A leaderboard file in memory; videos keep their order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Leaderboard {
    /// `(video, entries)` in order.
    pub results: Vec<(String, Vec<LeaderboardEntry>)>,
    /// `external_data.details`.
    pub details: String,
    /// Present in shard partials.
    pub shard: Option<ShardInfo>,
}

/// Errors of reading, writing or merging leaderboard files.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Reading or writing failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not a leaderboard/partial file.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The partials do not make up one complete run.
    #[error("cannot merge: {0}")]
    Merge(String),
}

impl Leaderboard {
    /// The file as JSON text (results in order; `tcanet_shard` in partials).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + self.results.len() * 128);
        out.push_str("{\"version\": ");
        out.push_str(&serde_json::to_string(LEADERBOARD_VERSION).expect("string"));
        out.push_str(", \"results\": {");
        for (i, (video, entries)) in self.results.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&serde_json::to_string(video).expect("string"));
            out.push_str(": ");
            out.push_str(&serde_json::to_string(entries).expect("entries serialise"));
        }
        out.push_str("}, \"external_data\": {\"used\": true, \"details\": ");
        out.push_str(&serde_json::to_string(&self.details).expect("string"));
        out.push('}');
        if let Some(shard) = &self.shard {
            out.push_str(", \"tcanet_shard\": ");
            out.push_str(&serde_json::to_string(shard).expect("shard serialises"));
        }
        out.push_str("}\n");
        out
    }

    /// Writes the file atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<(), OutputError> {
        let text = self.to_json();
        tcanet_cli::write_atomic(path, |w| w.write_all(text.as_bytes())).map_err(|cause| {
            OutputError::Io {
                path: path.to_path_buf(),
                cause,
            }
        })
    }

    /// Reads a leaderboard or partial file, keeping the order of `results`.
    pub fn read(path: &Path) -> Result<Self, OutputError> {
        let text = std::fs::read_to_string(path).map_err(|cause| OutputError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let fmt_err = |message: String| OutputError::Format {
            path: path.to_path_buf(),
            message,
        };
        let root: OrderedRoot =
            serde_json::from_str(&text).map_err(|e| fmt_err(format!("invalid JSON: {e}")))?;
        let mut results = Vec::with_capacity(root.results.0.len());
        for (video, value) in root.results.0 {
            let entries: Vec<LeaderboardEntry> = serde_json::from_value(value)
                .map_err(|e| fmt_err(format!("results.{video}: {e}")))?;
            results.push((video, entries));
        }
        let details = root
            .external_data
            .as_ref()
            .and_then(|e| e.get("details"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(Self {
            results,
            details,
            shard: root.tcanet_shard,
        })
    }
}

#[derive(Deserialize)]
struct OrderedRoot {
    results: Ordered<Value>,
    #[serde(default)]
    external_data: Option<Value>,
    #[serde(default)]
    tcanet_shard: Option<ShardInfo>,
}

/// Joins shard partials into one leaderboard.
///
/// Checks that the partials agree on N, that each shard 0..N appears exactly
/// once, that every video is in exactly one partial and only in the shard it
/// was assigned to, and that no assigned video is missing from the results
/// (a failed video makes the merge fail unless `allow_failed`). The merged
/// results follow the dataset's order (round-robin interleaving of the shards).
pub fn merge_partials(paths: &[PathBuf], allow_failed: bool) -> Result<Leaderboard, OutputError> {
    if paths.is_empty() {
        return Err(OutputError::Merge("no partial files given".into()));
    }
    let mut parts = Vec::with_capacity(paths.len());
    for p in paths {
        let lb = Leaderboard::read(p)?;
        let shard = lb.shard.clone().ok_or_else(|| OutputError::Format {
            path: p.clone(),
            message: "not a shard partial (no \"tcanet_shard\"); write partials with tcanet-infer run --shard K/N".into(),
        })?;
        parts.push((p.clone(), lb, shard));
    }
    let count = parts[0].2.count;
    let mut by_index: HashMap<usize, usize> = HashMap::new();
    for (i, (path, _, shard)) in parts.iter().enumerate() {
        if shard.count != count {
            return Err(OutputError::Merge(format!(
                "{} is shard {}/{} but {} is of {count} shards",
                path.display(),
                shard.index,
                shard.count,
                parts[0].0.display()
            )));
        }
        if let Some(&j) = by_index.get(&shard.index) {
            return Err(OutputError::Merge(format!(
                "shard {}/{count} given twice: {} and {}",
                shard.index,
                parts[j].0.display(),
                path.display()
            )));
        }
        by_index.insert(shard.index, i);
    }
    let missing: Vec<String> = (0..count)
        .filter(|k| !by_index.contains_key(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(OutputError::Merge(format!(
            "missing shard partial(s): {}",
            missing.join(", ")
        )));
    }
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    let mut failed_all = Vec::new();
    for (path, lb, shard) in &parts {
        let assigned: HashSet<&str> = shard.assigned.iter().map(String::as_str).collect();
        for video in &shard.assigned {
            if let Some(prev) = seen.insert(video.as_str(), path.as_path()) {
                return Err(OutputError::Merge(format!(
                    "video '{video}' appears in two partials: {} and {}",
                    prev.display(),
                    path.display()
                )));
            }
        }
        let mut in_results = HashSet::new();
        for (video, _) in &lb.results {
            if !assigned.contains(video.as_str()) {
                return Err(OutputError::Merge(format!(
                    "{}: video '{video}' is not among the videos assigned to shard {}/{count}",
                    path.display(),
                    shard.index
                )));
            }
            if !in_results.insert(video.as_str()) {
                return Err(OutputError::Merge(format!(
                    "{}: video '{video}' appears twice",
                    path.display()
                )));
            }
        }
        for video in &shard.assigned {
            if !in_results.contains(video.as_str()) {
                if allow_failed && shard.failed.contains(video) {
                    failed_all.push(video.clone());
                } else {
                    return Err(OutputError::Merge(format!(
                        "{}: video '{video}' is missing from the results{}",
                        path.display(),
                        if shard.failed.contains(video) {
                            " (it failed in that shard; rerun the shard, or pass --allow-failed)"
                        } else {
                            ""
                        }
                    )));
                }
            }
        }
    }
    // Round-robin order: dataset row r is item r / N of shard r % N.
    let mut ordered = Vec::new();
    let mut maps: Vec<HashMap<&str, &Vec<LeaderboardEntry>>> = vec![HashMap::new(); count];
    let mut assigned: Vec<&Vec<String>> = vec![&parts[0].2.assigned; count];
    for (_, lb, shard) in &parts {
        maps[shard.index] = lb.results.iter().map(|(v, e)| (v.as_str(), e)).collect();
        assigned[shard.index] = &shard.assigned;
    }
    let total: usize = assigned.iter().map(|a| a.len()).sum();
    for row in 0..total {
        let (k, pos) = (row % count, row / count);
        let Some(video) = assigned[k].get(pos) else {
            return Err(OutputError::Merge(format!(
                "shard {k}/{count} has {} videos, which does not fit a round-robin split of {total}",
                assigned[k].len()
            )));
        };
        if let Some(entries) = maps[k].get(video.as_str()) {
            ordered.push((video.clone(), (*entries).clone()));
        }
    }
    Ok(Leaderboard {
        results: ordered,
        details: parts[0].1.details.clone(),
        shard: None,
    })
}
