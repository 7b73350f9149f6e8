//! Leaderboard-exact evaluation of temporal action proposals (AR@AN, AUC)
//! and detections (mAP), as the ActivityNet challenge's official code
//! (`eval_proposal.py`, `eval_detection.py`) computes them, without any ML
//! dependency; plus DETAD's error diagnosis of detections ([`diagnose`]).
//!
//! The rules, in brief:
//!
//! - tIoU of two segments is `max(0, min(e1, e2) - max(s1, s2))` over
//!   `(e1 - s1) + (e2 - s2) - intersection`, as written, also for reversed or
//!   zero-length segments (a zero union gives NaN, which matches nothing).
//! - Proposals: only the subset's annotated videos count; `ratio = M ×
//!   videos / all proposals in the file` (proposals of other videos count
//!   here); each video keeps its best `int(n × ratio)`; the curve has 100
//!   points `pcn[j] = j/100 × M × videos / kept`, where each video takes its
//!   first `int(kept_v × pcn[j])`; recall is averaged over thresholds, AN =
//!   `pcn × kept / videos`, AUC = 100 × trapezoid area / AN\[100\].
//! - Detections: classes are the subset's labels in order of first
//!   appearance; per class and threshold, detections ranked by score (ties
//!   in file order) each take the free instance of their class and video
//!   with the highest tIoU at or above the threshold, else are false
//!   positives (also those of videos outside the subset); AP is VOC-2011's
//!   interpolated area; mAP is the mean over classes (a class without
//!   detections has AP 0), average mAP the mean over thresholds.
//!
//! ```no_run
//! use tcanet_evaluator::{evaluate_proposals, GroundTruth, Proposal, ProposalOptions, ProposalSet};
//! let gt = GroundTruth::from_path("activitynet13_gt.json", "validation")?;
//! let input = ProposalSet::from_path("proposals.json")?;
//! let mut refined = ProposalSet::new(); // in-memory results, e.g. from the runtime
//! refined.push("v_abc", vec![Proposal { segment: [1.5, 9.0], score: 0.9 }]);
//! let opts = ProposalOptions::default();
//! let a = evaluate_proposals(&gt, &input, &opts)?;
//! let b = evaluate_proposals(&gt, &refined, &opts)?;
//! println!("AR@100 = {:.4}, AUC = {:.2}", b.ar_at_100, b.auc);
//! // With the default feature `plot`:
//! # #[cfg(feature = "plot")]
//! tcanet_evaluator::plot::plot_proposal_comparison(
//!     "cmp.png".as_ref(), "AR-AN", &[("input", &a), ("refined", &b)])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In-memory results (e.g. straight from the runtime) are built with
//! [`ProposalSet::push`] / [`DetectionSet::push`].

#![warn(missing_docs)]

mod detections;
pub mod diagnose;
mod exclude;
mod json;
mod load;
pub mod numeric;
#[cfg(feature = "plot")]
pub mod plot;
mod proposals;
mod topk;

use crate::json::FastMap as HashMap;
use std::path::Path;

pub use detections::{evaluate_detections, ApPerClass, DetectionOptions, DetectionReport};
pub use exclude::read_video_list;
pub use proposals::{evaluate_proposals, ProposalOptions, ProposalReport};
pub use topk::{recall_at_top_k, TopKRecall};

/// Everything that can go wrong reading or evaluating; every message names
/// the file and, where it applies, the position, video and field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        cause: std::io::Error,
    },
    /// Malformed JSON, or a value of the wrong shape, at a position.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file (or `<memory>`).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong, with the video and field where they apply.
        message: String,
    },
    /// Valid JSON whose content cannot be evaluated (missing key, empty
    /// subset, unknown labels, ids that match nothing, ...).
    #[error("{file}: {message}")]
    Content {
        /// The file (or `<memory>`).
        file: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// Invalid options (thresholds, M).
    #[error("{0}")]
    Options(String),
}

/// One annotated action instance of the ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct GtInstance {
    /// `[start, end]` in seconds.
    pub segment: [f64; 2],
    /// Index into [`GroundTruth::labels`].
    pub label: usize,
}

/// One ground-truth video of the chosen subset.
#[derive(Debug, Clone, PartialEq)]
pub struct GtVideo {
    /// The video id (the key in `database`).
    pub id: String,
    /// Its duration in seconds, when the file gives a positive finite one.
    pub duration: Option<f64>,
    /// Its annotations, in file order.
    pub instances: Vec<GtInstance>,
}

/// The ground truth of one subset (`validation` by default), in file order.
#[derive(Debug, Clone)]
pub struct GroundTruth {
    /// Where it came from (a path or `<memory>`), for messages.
    pub source: String,
    /// The subset kept.
    pub subset: String,
    /// Class names in order of first appearance in the subset.
    pub labels: Vec<String>,
    /// The subset's videos in file order (also those without annotations,
    /// which the official code leaves out of every count).
    pub videos: Vec<GtVideo>,
    /// Non-fatal problems found while reading (reversed segments,
    /// duplicate video keys).
    pub warnings: Vec<String>,
    index: HashMap<String, usize>,
    /// The subset's videos whose "duration" is there but not a positive
    /// number (read as no duration), for [`GroundTruth::check_durations`].
    invalid_durations: Vec<InvalidDuration>,
}

/// A video's "duration" that is there but not a positive finite number.
#[derive(Debug, Clone)]
struct InvalidDuration {
    video: String,
    line: usize,
    column: usize,
    message: String,
}

impl GroundTruth {
    /// Reads a ground-truth file in the ActivityNet format and keeps `subset`.
    pub fn from_path(path: impl AsRef<Path>, subset: &str) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        load::ground_truth(&bytes, &path.display().to_string(), subset)
    }

    /// Parses ground-truth JSON text and keeps `subset`.
    pub fn from_json_str(text: &str, subset: &str) -> Result<Self, Error> {
        load::ground_truth(text.as_bytes(), "<memory>", subset)
    }

    /// Parses ground-truth JSON bytes (e.g. read from standard input) and
    /// keeps `subset`; `source` names them in messages.
    pub fn from_slice(bytes: &[u8], source: &str, subset: &str) -> Result<Self, Error> {
        load::ground_truth(bytes, source, subset)
    }

    /// Builds a ground truth in memory: `videos` are `(id, [(segment,
    /// label)])` in order; labels are numbered in order of first appearance.
    pub fn from_videos<'a>(
        subset: &str,
        videos: impl IntoIterator<Item = (&'a str, Vec<([f64; 2], &'a str)>)>,
    ) -> Self {
        let mut labels: Vec<String> = Vec::new();
        let mut label_ids: HashMap<String, usize> = HashMap::default();
        let mut out = Vec::new();
        for (id, anns) in videos {
            let instances = anns
                .into_iter()
                .map(|(segment, name)| {
                    let label = *label_ids.entry(name.to_string()).or_insert_with(|| {
                        labels.push(name.to_string());
                        labels.len() - 1
                    });
                    GtInstance { segment, label }
                })
                .collect();
            out.push(GtVideo {
                id: id.to_string(),
                duration: None,
                instances,
            });
        }
        Self::new("<memory>".into(), subset.into(), labels, out, Vec::new())
    }

    fn new(
        source: String,
        subset: String,
        labels: Vec<String>,
        videos: Vec<GtVideo>,
        warnings: Vec<String>,
    ) -> Self {
        let index = videos
            .iter()
            .enumerate()
            .map(|(i, v)| (v.id.clone(), i))
            .collect();
        GroundTruth {
            source,
            subset,
            labels,
            videos,
            warnings,
            index,
            invalid_durations: Vec::new(),
        }
    }

    /// Fails on the first video whose "duration" is there but not a
    /// positive finite number (a string, 0, -5, ...). Such a duration reads
    /// as none ([`GtVideo::duration`] is `None`): the official evaluation
    /// ignores durations, and so do proposals and detections; the diagnosis
    /// needs them (coverage) and checks them with this.
    pub fn check_durations(&self) -> Result<(), Error> {
        match self.invalid_durations.first() {
            None => Ok(()),
            Some(d) => Err(Error::Syntax {
                file: self.source.clone(),
                line: d.line,
                column: d.column,
                message: d.message.clone(),
            }),
        }
    }

    /// Position of a video in [`GroundTruth::videos`].
    pub fn video_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Number of annotated instances in the subset.
    pub fn n_instances(&self) -> usize {
        self.videos.iter().map(|v| v.instances.len()).sum()
    }
}

/// One temporal proposal: a segment and a confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    /// `[start, end]` in seconds.
    pub segment: [f64; 2],
    /// Confidence; higher ranks first.
    pub score: f64,
}

/// One detection: a proposal with a class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `[start, end]` in seconds.
    pub segment: [f64; 2],
    /// Confidence; higher ranks first.
    pub score: f64,
    /// Index into [`DetectionSet::labels`].
    pub label: usize,
}

/// The results of one video, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoResults<T> {
    /// The video id (the key in `results`).
    pub video: String,
    /// Its proposals or detections.
    pub entries: Vec<T>,
}

/// A proposal submission: video → proposals, in file order.
#[derive(Debug, Clone, Default)]
pub struct ProposalSet {
    /// Where it came from (a path or `<memory>`), for messages.
    pub source: String,
    /// The videos, in file order (a duplicate key keeps its first place and
    /// its last value, as Python's `json` does).
    pub videos: Vec<VideoResults<Proposal>>,
    /// Non-fatal problems found while reading.
    pub warnings: Vec<String>,
}

impl ProposalSet {
    /// An empty set for results built in memory.
    pub fn new() -> Self {
        ProposalSet {
            source: "<memory>".into(),
            ..Default::default()
        }
    }

    /// Reads `{"results": {VIDEO: [{"segment": [s, e], "score": x}, ...]}}`
    /// (a detection file works too; labels are ignored).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        load::proposals(&bytes, &path.display().to_string())
    }

    /// Parses proposal JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, Error> {
        load::proposals(text.as_bytes(), "<memory>")
    }

    /// Parses proposal JSON bytes; `source` names them in messages.
    pub fn from_slice(bytes: &[u8], source: &str) -> Result<Self, Error> {
        load::proposals(bytes, source)
    }

    /// Adds a video's proposals (in any order; evaluation sorts by score).
    pub fn push(&mut self, video: impl Into<String>, proposals: Vec<Proposal>) {
        self.videos.push(VideoResults {
            video: video.into(),
            entries: proposals,
        });
    }

    /// Total number of proposals.
    pub fn len(&self) -> usize {
        self.videos.iter().map(|v| v.entries.len()).sum()
    }

    /// Whether there is no proposal at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A detection submission: class names and video → detections.
#[derive(Debug, Clone, Default)]
pub struct DetectionSet {
    /// Where it came from (a path or `<memory>`), for messages.
    pub source: String,
    /// Class names used by [`Detection::label`].
    pub labels: Vec<String>,
    /// The videos, in file order.
    pub videos: Vec<VideoResults<Detection>>,
    /// Non-fatal problems found while reading.
    pub warnings: Vec<String>,
    label_ids: HashMap<String, usize>,
}

impl DetectionSet {
    /// An empty set for results built in memory.
    pub fn new() -> Self {
        DetectionSet {
            source: "<memory>".into(),
            ..Default::default()
        }
    }

    /// Reads `{"results": {VIDEO: [{"segment": [s, e], "score": x,
    /// "label": NAME}, ...]}}`.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        load::detections(&bytes, &path.display().to_string())
    }

    /// Parses detection JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, Error> {
        load::detections(text.as_bytes(), "<memory>")
    }

    /// Parses detection JSON bytes; `source` names them in messages.
    pub fn from_slice(bytes: &[u8], source: &str) -> Result<Self, Error> {
        load::detections(bytes, source)
    }

    /// The index of class `name`, added if new.
    pub fn label_id(&mut self, name: &str) -> usize {
        if let Some(&i) = self.label_ids.get(name) {
            return i;
        }
        self.labels.push(name.to_string());
        self.label_ids
            .insert(name.to_string(), self.labels.len() - 1);
        self.labels.len() - 1
    }

    /// Adds a video's detections; labels come from [`DetectionSet::label_id`].
    pub fn push(&mut self, video: impl Into<String>, detections: Vec<Detection>) {
        self.videos.push(VideoResults {
            video: video.into(),
            entries: detections,
        });
    }

    /// Total number of detections.
    pub fn len(&self) -> usize {
        self.videos.iter().map(|v| v.entries.len()).sum()
    }

    /// Whether there is no detection at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The thresholds of a preset: `activitynet` = `linspace(0.5, 0.95, 10)`,
/// `thumos14` = 0.3, 0.4, 0.5, 0.6, 0.7.
pub fn preset_thresholds(preset: &str) -> Result<Vec<f64>, Error> {
    match preset.to_ascii_lowercase().as_str() {
        "activitynet" | "anet" | "hacs" => Ok(numeric::linspace(0.5, 0.95, 10)),
        "thumos14" | "thumos" => Ok(vec![0.3, 0.4, 0.5, 0.6, 0.7]),
        _ => Err(Error::Options(format!(
            "unknown preset '{preset}': use activitynet (0.5:0.95:0.05) or thumos14 (0.3,0.4,0.5,0.6,0.7)"
        ))),
    }
}

/// Parses tIoU thresholds: a comma list (`0.3,0.5,0.7`) or
/// `start:stop:step` with `stop` included (`0.5:0.95:0.05`, computed as
/// numpy's `linspace(start, stop, round((stop-start)/step)+1)`, so the
/// step is adjusted to end on `stop`; a step more than twice `stop - start`
/// is an error). Every threshold lies in (0, 1]; at most 10,000.
pub fn parse_thresholds(text: &str) -> Result<Vec<f64>, Error> {
    threshold_list(text).map_err(|why| {
        Error::Options(format!(
            "invalid --tiou '{text}': {why}; use a list like 0.3,0.5,0.7 or a range like 0.5:0.95:0.05"
        ))
    })
}

/// Why a threshold list is invalid (the bare reason, without the text:
/// [`parse_thresholds`] and clap name the flag and value themselves).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    /// A part is not a number.
    #[error("'{0}' is not a number")]
    NotANumber(String),
    /// A part is infinite or NaN.
    #[error("'{0}' is not finite")]
    NotFinite(String),
    /// A range without exactly three parts.
    #[error("a range has three parts, start:stop:step")]
    RangeParts,
    /// A range going down or with a step that is not positive.
    #[error("a range needs start <= stop and a positive step")]
    RangeOrder,
    /// A range whose step is more than twice `stop - start`: it would hold
    /// its start alone, leaving out the stop it promises.
    #[error("the step is more than twice stop - start, so the range would leave out its stop")]
    StepTooLarge,
    /// More than 10,000 thresholds.
    #[error("more than 10000 thresholds")]
    TooMany,
    /// A threshold outside (0, 1].
    #[error("thresholds lie in (0, 1]")]
    OutOfRange,
}

/// [`parse_thresholds`] with the bare reason as the error.
pub fn threshold_list(text: &str) -> Result<Vec<f64>, ThresholdError> {
    let num = |s: &str| -> Result<f64, ThresholdError> {
        let s = s.trim();
        let v: f64 = s
            .parse()
            .map_err(|_| ThresholdError::NotANumber(s.to_string()))?;
        if !v.is_finite() {
            return Err(ThresholdError::NotFinite(s.to_string()));
        }
        Ok(v)
    };
    let out = if text.contains(':') {
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() != 3 {
            return Err(ThresholdError::RangeParts);
        }
        let (start, stop, step) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
        if step <= 0.0 || stop < start {
            return Err(ThresholdError::RangeOrder);
        }
        let n = ((stop - start) / step).round();
        if n == 0.0 && stop > start {
            return Err(ThresholdError::StepTooLarge);
        }
        if n >= 10_000.0 {
            return Err(ThresholdError::TooMany);
        }
        numeric::linspace(start, stop, n as usize + 1)
    } else {
        text.split(',').map(num).collect::<Result<Vec<_>, _>>()?
    };
    if out.len() > 10_000 {
        return Err(ThresholdError::TooMany);
    }
    if out.iter().any(|&t| !(t > 0.0 && t <= 1.0)) {
        return Err(ThresholdError::OutOfRange);
    }
    Ok(out)
}

/// A file's bytes: read into memory, or mapped when large.
enum FileBytes {
    Read(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Read(v) => v,
            FileBytes::Mapped(m) => m,
        }
    }
}

fn read_file(path: &Path) -> Result<FileBytes, Error> {
    let fail = |cause| Error::Read {
        path: path.display().to_string(),
        cause,
    };
    let file = std::fs::File::open(path).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if meta.is_dir() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a directory, not a file",
        )));
    }
    if meta.is_file() && meta.len() >= (4 << 20) {
        // Large files are mapped: no copy from the page cache and no zeroed
        // buffer, a good part of a whole run otherwise. Not pre-faulted:
        // the threads that parse its pieces fault them in, in parallel.
        // SAFETY: the map is only read. Were the file truncated by another
        // process while being evaluated, reading past its new end would
        // stop the process (SIGBUS); evaluation inputs are not rewritten
        // in place by this project (outputs are written by rename).
        let map = unsafe { memmap2::MmapOptions::new().map(&file) };
        if let Ok(map) = map {
            return Ok(FileBytes::Mapped(map));
        }
    }
    // Small files and files that could not be mapped are read; pipes and
    // devices within a bound.
    tcanet_cli::read_opened(file)
        .map(FileBytes::Read)
        .map_err(fail)
}
