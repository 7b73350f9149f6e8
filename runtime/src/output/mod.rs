//! Leaderboard files (proposals and detections), shard partials and merging.
//!
//! A leaderboard file is
//! `{"version": "VERSION 1.3", "results": {VIDEO: [{"segment": [s, e], "score": x}, ...]}, "external_data": {...}}`
//! (detections add `"label"` to every entry). Videos keep the dataset's order.
//!
//! Files written by `tcanet-infer` add `"tcanet_run"` ([`RunStamp`]): the
//! run's identity (kind, model hash, subset, video list digest, settings
//! that change results), a generation marker shared by every file of one
//! invocation, and the list of those files. A shard's partial file adds
//! `"tcanet_shard": {"index": K, "count": N, "assigned": [videos...], "failed": [videos...]}`;
//! [`merge_partials`] joins the partials of one run after checking that
//! they belong together.
//!
//! Several files of one invocation are published together (temporaries
//! first, then renames, the primary file last). A kill between two renames
//! leaves files of two generations; [`check_generation`] finds that, and
//! merging refuses such a partial.
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use tcanet_models::data::{json_error_message, Ordered, INVALID_JSON};

use crate::classifier::Detection;
use crate::postprocess::ScoredSegment;

mod identity;
mod merge;
mod shard;

pub use identity::{
    inputs_digest, new_generation, relative_path, videos_digest, OutputKind, ResultSettings,
    RunIdentity, RunStamp,
};
pub use merge::{merge_boards, merge_partials, Merged};
pub use shard::{Shard, ShardError, ShardInfo};

/// The `version` every leaderboard file carries.
pub const LEADERBOARD_VERSION: &str = "VERSION 1.3";

/// One entry of a leaderboard file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
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

/// A leaderboard file in memory; videos keep their order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Leaderboard {
    /// `(video, entries)` in order.
    pub results: Vec<(String, Vec<LeaderboardEntry>)>,
    /// `external_data.details`.
    pub details: String,
    /// The run that wrote it (files of `tcanet-infer`).
    pub run: Option<RunStamp>,
    /// Present in shard partials.
    pub shard: Option<ShardInfo>,
}

/// Errors of reading or merging leaderboard files.
#[derive(Debug, thiserror::Error)]
pub enum LeaderboardError {
    /// Reading failed.
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
        /// What is wrong, naming the field.
        message: String,
    },
    /// Two files of one write come from different invocations.
    #[error(
        "{} (generation {generation}) and {} (generation {other_generation}) were written by \
         different runs: a run was stopped between publishing its outputs; run it again",
        path.display(),
        other.display()
    )]
    MixedGeneration {
        /// The file read.
        path: PathBuf,
        /// Its generation.
        generation: String,
        /// A file it lists as written with it.
        other: PathBuf,
        /// That file's generation.
        other_generation: String,
    },
    /// The partials do not make up one complete run.
    #[error("cannot merge: {0}")]
    Merge(String),
}

impl Leaderboard {
    /// The file as JSON text (results in order; `tcanet_run`, and
    /// `tcanet_shard` in partials).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + self.results.len() * 128);
        out.push_str("{\"version\": ");
        out.push_str(&json(LEADERBOARD_VERSION));
        out.push_str(", \"results\": {");
        for (i, (video, entries)) in self.results.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&json(video));
            out.push_str(": ");
            out.push_str(&json(entries));
        }
        out.push_str("}, \"external_data\": {\"used\": true, \"details\": ");
        out.push_str(&json(&self.details));
        out.push('}');
        if let Some(run) = &self.run {
            out.push_str(", \"tcanet_run\": ");
            out.push_str(&json(run));
        }
        if let Some(shard) = &self.shard {
            out.push_str(", \"tcanet_shard\": ");
            out.push_str(&json(shard));
        }
        out.push_str("}\n");
        out
    }

    /// Writes the file atomically (temporary file, then rename; devices
    /// and FIFOs in place).
    pub fn write(&self, path: &Path) -> Result<(), tcanet_cli::OutputError> {
        tcanet_cli::Output::Path(path.to_path_buf()).write_bytes(self.to_json().as_bytes())
    }

    /// Reads a leaderboard or partial file, keeping the order of `results`.
    pub fn read(path: &Path) -> Result<Self, LeaderboardError> {
        let text = std::fs::read_to_string(path).map_err(|cause| LeaderboardError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::parse(&text, path)
    }

    /// Parses a leaderboard or partial file (`path` names it in messages).
    /// Every entry must have a finite score and a finite segment with
    /// start ≤ end; detections carry labels, proposals none; a partial's
    /// shard must have 0 ≤ K < N and list each video once.
    pub fn parse(text: &str, path: &Path) -> Result<Self, LeaderboardError> {
        let fmt_err = |message: String| LeaderboardError::Format {
            path: path.to_path_buf(),
            message,
        };
        let root: OrderedRoot = serde_json::from_str(text)
            .map_err(|e| fmt_err(format!("{INVALID_JSON}{}", json_error_message(text, &e))))?;
        let kind = root.tcanet_run.as_ref().map(|r| r.identity.kind);
        let mut results = Vec::with_capacity(root.results.0.len());
        for (video, value) in root.results.0 {
            let entries: Vec<LeaderboardEntry> = serde_json::from_value(value)
                .map_err(|e| fmt_err(format!("results.{video}: {e}")))?;
            check_entries(&video, &entries, kind).map_err(fmt_err)?;
            results.push((video, entries));
        }
        if let Some(shard) = &root.tcanet_shard {
            check_shard(shard).map_err(fmt_err)?;
            let has_results = |v: &&String| results.iter().any(|(r, _)| r == *v);
            if let Some(v) = shard.failed.iter().find(has_results) {
                return Err(fmt_err(format!(
                    "tcanet_shard.failed: video '{v}' is listed as failed but has results"
                )));
            }
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
            run: root.tcanet_run,
            shard: root.tcanet_shard,
        })
    }
}

/// JSON text of a value whose serialisation cannot fail (strings, numbers,
/// our structs; non-finite numbers never reach a leaderboard).
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// Checks the entries of one video (`kind`: what the file says it holds).
fn check_entries(
    video: &str,
    entries: &[LeaderboardEntry],
    kind: Option<OutputKind>,
) -> Result<(), String> {
    for (i, e) in entries.iter().enumerate() {
        let [s, t] = e.segment;
        if !(s.is_finite() && t.is_finite() && s <= t) {
            return Err(format!(
                "results.{video}[{i}].segment: [{s}, {t}] must be finite with start <= end"
            ));
        }
        if !e.score.is_finite() {
            return Err(format!("results.{video}[{i}].score: not a finite number"));
        }
        match (kind, &e.label) {
            (Some(OutputKind::Detections), None) => {
                return Err(format!(
                    "results.{video}[{i}].label: missing in a detections file"
                ))
            }
            (Some(OutputKind::Proposals), Some(_)) => {
                return Err(format!(
                    "results.{video}[{i}].label: a proposals file has no labels"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a partial's `tcanet_shard`.
pub(crate) fn check_shard(shard: &ShardInfo) -> Result<(), String> {
    if shard.count == 0 || shard.index >= shard.count {
        return Err(format!(
            "tcanet_shard: shard {}/{} is impossible (need N >= 1 and 0 <= K < N)",
            shard.index, shard.count
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(v) = shard.assigned.iter().find(|v| !seen.insert(v.as_str())) {
        return Err(format!(
            "tcanet_shard.assigned: video '{v}' is listed twice"
        ));
    }
    if let Some(v) = shard.failed.iter().find(|v| !seen.contains(v.as_str())) {
        return Err(format!(
            "tcanet_shard.failed: video '{v}' is not among the assigned videos"
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct OrderedRoot {
    results: Ordered<Value>,
    #[serde(default)]
    external_data: Option<Value>,
    #[serde(default)]
    tcanet_run: Option<RunStamp>,
    #[serde(default)]
    tcanet_shard: Option<ShardInfo>,
}

/// Checks that every other file `board` (read from `path`) lists as written
/// with it, where such a file exists, carries the same generation: a mixed
/// set (a run stopped between publishing its outputs) is an error. Files
/// without `tcanet_run` pass.
pub fn check_generation(path: &Path, board: &Leaderboard) -> Result<(), LeaderboardError> {
    let Some(run) = &board.run else {
        return Ok(());
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for listed in &run.outputs {
        let other = dir.join(listed);
        if !other.is_file() || tcanet_cli::same_file(&other, path) {
            continue;
        }
        let other_generation = read_generation(&other)?;
        if other_generation != run.generation {
            return Err(LeaderboardError::MixedGeneration {
                path: path.to_path_buf(),
                generation: run.generation.clone(),
                other,
                other_generation,
            });
        }
    }
    Ok(())
}

/// `tcanet_run.generation` of a file (empty when it has none).
fn read_generation(path: &Path) -> Result<String, LeaderboardError> {
    #[derive(Deserialize)]
    struct Root {
        #[serde(default)]
        tcanet_run: Option<Stamp>,
    }
    #[derive(Deserialize)]
    struct Stamp {
        generation: String,
    }
    let text = std::fs::read_to_string(path).map_err(|cause| LeaderboardError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let root: Root = serde_json::from_str(&text).map_err(|e| LeaderboardError::Format {
        path: path.to_path_buf(),
        message: format!("{INVALID_JSON}{}", json_error_message(&text, &e)),
    })?;
    Ok(root.tcanet_run.map(|s| s.generation).unwrap_or_default())
}
