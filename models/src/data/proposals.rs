//! Input proposals: a leaderboard-format JSON
//! (`{"results": {video: [{"segment": [s, e], "score": x}]}}`) or a directory
//! of per-video CSV files (`<video>.csv` with columns `xmin,xmax,score`, in
//! seconds), checked against the videos' durations.
use super::ordered::{json_error_message, Ordered};
use super::{DataError, ErrorKind};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One proposal in seconds with its confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    /// Start (s).
    pub start: f64,
    /// End (s).
    pub end: f64,
    /// Confidence score.
    pub score: f64,
}

/// Where a [`ProposalSet`] was read from (for error messages).
#[derive(Debug, Clone, PartialEq)]
pub enum ProposalSource {
    /// A leaderboard-format JSON file.
    Json(PathBuf),
    /// A directory of `<video>.csv` files.
    CsvDir(PathBuf),
    /// Arrays in memory (a library call or a server request), named for
    /// messages: proposal `i` is `NAME[i]`.
    Memory(String),
}

impl ProposalSource {
    /// The file holding `video`'s proposals.
    pub fn file_of(&self, video: &str) -> PathBuf {
        match self {
            Self::Json(p) => p.clone(),
            Self::CsvDir(d) => d.join(format!("{video}.csv")),
            Self::Memory(name) => PathBuf::from(name),
        }
    }

    /// How `part` of proposal `index` of `video` is addressed in its file:
    /// `results.V[3].score`, `row 5 (score)` (the header is row 1),
    /// `proposals[3] score`.
    pub fn field_of(&self, video: &str, index: usize, part: ProposalPart) -> String {
        let (key, columns) = match part {
            ProposalPart::Segment => ("segment", "xmin,xmax"),
            ProposalPart::Score => ("score", "score"),
        };
        match (self, part) {
            (Self::Json(_), _) => format!("results.{video}[{index}].{key}"),
            (Self::CsvDir(_), _) => format!("row {} ({columns})", index + 2),
            (Self::Memory(name), ProposalPart::Segment) => format!("{name}[{index}]"),
            (Self::Memory(name), ProposalPart::Score) => format!("{name}[{index}] score"),
        }
    }
}

/// The part of a proposal a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalPart {
    /// Its start and end (`segment`; `xmin`, `xmax` in CSV).
    Segment,
    /// Its confidence (`score`).
    Score,
}

/// What to do with a proposal that cannot be used (start ≥ end, a
/// non-finite value, or lying beyond the video).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvalidProposals {
    /// Stop with an error naming the file, video and proposal (default).
    #[default]
    Error,
    /// Drop it and count it in the [`ValidationReport`].
    Skip,
}

/// What [`ProposalSet::validate`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationReport {
    /// Invalid proposals dropped (with [`InvalidProposals::Skip`]).
    pub skipped: usize,
    /// Proposals overshooting the video by at most the tolerance, clamped to it.
    pub clamped: usize,
    /// Videos of the set that have no entry in the annotations (ignored).
    pub unknown_videos: usize,
}

/// Proposals of many videos, in file order.
#[derive(Debug, Clone)]
pub struct ProposalSet {
    /// Where they came from.
    pub source: ProposalSource,
    /// `(video, proposals)` in file order (CSV: sorted by file name).
    pub videos: Vec<(String, Vec<Proposal>)>,
    index: HashMap<String, usize>,
}

/// The file with each video's list kept as raw JSON text (borrowed from the
/// input): no DOM of the whole file, so memory stays near the file's size.
#[derive(Deserialize)]
struct RawFile<'a> {
    #[serde(borrow)]
    results: Ordered<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawProposal {
    segment: [f64; 2],
    score: f64,
}

impl From<RawProposal> for Proposal {
    fn from(p: RawProposal) -> Self {
        Self {
            start: p.segment[0],
            end: p.segment[1],
            score: p.score,
        }
    }
}

/// A proposal's fields as raw JSON text, read one by one to name the field
/// at fault when a video's list does not read as [`RawProposal`]s.
#[derive(Deserialize)]
#[serde(expecting = "an object {\"segment\": [start, end], \"score\": x}")]
struct RawFields<'a> {
    #[serde(borrow)]
    segment: &'a RawValue,
    #[serde(borrow)]
    score: &'a RawValue,
}

/// Proposals may overshoot the video by this fraction of its duration (then
/// they are clamped to it); beyond that they are invalid.
pub const OVERSHOOT_TOLERANCE: f64 = 0.01;

impl ProposalSet {
    /// A set from in-memory proposals.
    pub fn new(source: ProposalSource, videos: Vec<(String, Vec<Proposal>)>) -> Self {
        let index = videos
            .iter()
            .enumerate()
            .map(|(i, (v, _))| (v.clone(), i))
            .collect();
        Self {
            source,
            videos,
            index,
        }
    }

    /// Reads a JSON file or, if `path` is a directory, its `*.csv` files.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        if path.is_dir() {
            Self::load_csv_dir(path)
        } else {
            Self::load_json(path)
        }
    }

    /// Reads a leaderboard-format JSON file.
    pub fn load_json(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        Self::parse_json(&text, path)
    }

    /// Parses leaderboard-format JSON; `path` is used in error messages,
    /// which name the video, the field (`results.VIDEO[3].score`) and its
    /// line and column in the file. A video given twice is an error.
    pub fn parse_json(text: &str, path: &Path) -> Result<Self, DataError> {
        let raw: RawFile = serde_json::from_str(text)
            .map_err(|e| DataError::new(path, ErrorKind::Json(json_error_message(text, &e))))?;
        let file = JsonFile { text, path };
        let results = raw.results.into_unique_videos(path, "results")?;
        let mut videos = Vec::with_capacity(results.len());
        for (video, value) in results {
            let props = file.video_proposals(&video, value)?;
            videos.push((video, props));
        }
        Ok(Self::new(ProposalSource::Json(path.to_path_buf()), videos))
    }

    /// Reads every `<video>.csv` of `dir` (header with `xmin`, `xmax`, `score`).
    pub fn load_csv_dir(dir: &Path) -> Result<Self, DataError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| DataError::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        files.sort();
        let mut videos = Vec::with_capacity(files.len());
        for f in files {
            let video = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let props = read_csv(&f, &video)?;
            videos.push((video, props));
        }
        Ok(Self::new(ProposalSource::CsvDir(dir.to_path_buf()), videos))
    }

    /// The proposals of `video`, if the set has an entry for it.
    pub fn get(&self, video: &str) -> Option<&[Proposal]> {
        self.index.get(video).map(|&i| self.videos[i].1.as_slice())
    }

    /// Checks every proposal against its video's duration (`duration_of`,
    /// `None` for videos unknown to the annotations, which are counted and
    /// left alone): start ≥ end, non-finite values, and proposals lying beyond
    /// the video by more than [`OVERSHOOT_TOLERANCE`] are invalid; smaller
    /// overshoots are clamped to `[0, duration]`.
    pub fn validate(
        &mut self,
        duration_of: impl Fn(&str) -> Option<f64>,
        policy: InvalidProposals,
    ) -> Result<ValidationReport, DataError> {
        let mut report = ValidationReport::default();
        for (video, props) in &mut self.videos {
            let Some(duration) = duration_of(video) else {
                report.unknown_videos += 1;
                continue;
            };
            let tol = OVERSHOOT_TOLERANCE * duration;
            let mut kept = Vec::with_capacity(props.len());
            for (i, p) in props.iter().enumerate() {
                match (proposal_problem(p, duration, tol), policy) {
                    (Some((part, reason)), InvalidProposals::Error) => {
                        return Err(DataError::invalid(self.source.file_of(video), reason)
                            .video(video.clone())
                            .field(self.source.field_of(video, i, part)));
                    }
                    (Some(_), InvalidProposals::Skip) => report.skipped += 1,
                    (None, _) => {
                        let mut q = *p;
                        if q.start < 0.0 || q.end > duration {
                            q.start = q.start.max(0.0);
                            q.end = q.end.min(duration);
                            report.clamped += 1;
                        }
                        if q.start < q.end {
                            kept.push(q);
                        } else {
                            report.skipped += 1;
                        }
                    }
                }
            }
            *props = kept;
        }
        Ok(report)
    }

    /// The set as leaderboard-format JSON.
    pub fn to_json(&self) -> String {
        let mut out = String::from(
            "{\"version\": \"VERSION 1.3\", \"external_data\": {\"used\": false, \"details\": \"\"}, \"results\": {",
        );
        for (i, (video, props)) in self.videos.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&serde_json::to_string(video).expect("string serialises"));
            out.push_str(": [");
            for (j, p) in props.iter().enumerate() {
                if j > 0 {
                    out.push_str(", ");
                }
                let v = serde_json::json!({"segment": [p.start, p.end], "score": p.score});
                out.push_str(&v.to_string());
            }
            out.push(']');
        }
        out.push_str("}}\n");
        out
    }
}

/// Why `p` cannot be used in a video of `duration` seconds (overshooting
/// it by up to `tol` seconds is allowed), and the part at fault.
fn proposal_problem(p: &Proposal, duration: f64, tol: f64) -> Option<(ProposalPart, String)> {
    let (start, end) = (p.start, p.end);
    let segment = |why: String| {
        Some((
            ProposalPart::Segment,
            format!("segment [{start}, {end}] {why}"),
        ))
    };
    if !(start.is_finite() && end.is_finite()) {
        segment("is not finite".into())
    } else if !p.score.is_finite() {
        Some((
            ProposalPart::Score,
            format!("score {} is not finite", p.score),
        ))
    } else if start >= end {
        segment("has start >= end".into())
    } else if start < -tol || end > duration + tol {
        segment(format!("lies beyond the video (duration {duration} s)"))
    } else {
        None
    }
}

/// The `n` highest-scoring proposals, best first (ties keep file order).
pub fn top_by_score(props: &[Proposal], n: usize) -> Vec<Proposal> {
    let mut sorted = props.to_vec();
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    sorted.truncate(n);
    sorted
}

/// A JSON file's text, to name the place of a fault in a value borrowed
/// from it (serde_json places it within the value).
struct JsonFile<'a> {
    text: &'a str,
    path: &'a Path,
}

impl JsonFile<'_> {
    /// Reads one video's list of proposals; when it does not read, walks
    /// it entry by entry and field by field to name the fault.
    fn video_proposals(&self, video: &str, list: &RawValue) -> Result<Vec<Proposal>, DataError> {
        match serde_json::from_str::<Vec<RawProposal>>(list.get()) {
            Ok(list) => Ok(list.into_iter().map(Proposal::from).collect()),
            Err(e) => {
                self.find_fault(video, list)?;
                Err(self.error(video, &format!("results.{video}"), list, &e))
            }
        }
    }

    /// The first fault of a video's list, field by field.
    fn find_fault(&self, video: &str, list: &RawValue) -> Result<(), DataError> {
        let field = format!("results.{video}");
        let entries: Vec<&RawValue> =
            serde_json::from_str(list.get()).map_err(|e| self.error(video, &field, list, &e))?;
        for (i, entry) in entries.into_iter().enumerate() {
            let field = format!("{field}[{i}]");
            let fields: RawFields = serde_json::from_str(entry.get())
                .map_err(|e| self.error(video, &field, entry, &e))?;
            let segment = format!("{field}.segment");
            let numbers: Vec<f64> = serde_json::from_str(fields.segment.get())
                .map_err(|e| self.error(video, &segment, fields.segment, &e))?;
            if numbers.len() != 2 {
                let (line, column) = self.position(fields.segment, 1, 1).unwrap_or((0, 0));
                return Err(DataError::invalid(
                    self.path,
                    format!(
                        "has {} numbers; a segment is 2 numbers [start, end] (at line {line} column {column})",
                        numbers.len()
                    ),
                )
                .video(video)
                .field(segment));
            }
            serde_json::from_str::<f64>(fields.score.get())
                .map_err(|e| self.error(video, &format!("{field}.score"), fields.score, &e))?;
        }
        Ok(())
    }

    /// The error `e` met reading `value` (part of the file), placed in the
    /// file rather than in the value.
    fn error(
        &self,
        video: &str,
        field: &str,
        value: &RawValue,
        e: &serde_json::Error,
    ) -> DataError {
        let message = e.to_string();
        let within = format!(" at line {} column {}", e.line(), e.column());
        let bare = message.strip_suffix(&within).unwrap_or(&message);
        let reason = match self.position(value, e.line(), e.column()) {
            Some((line, column)) => format!("{bare} at line {line} column {column}"),
            None => bare.to_string(),
        };
        DataError::invalid(self.path, reason)
            .video(video)
            .field(field)
    }

    /// The file's line and column of `line`:`column` (1-based) within
    /// `value`; `None` when `value` is not part of the file's text.
    fn position(&self, value: &RawValue, line: usize, column: usize) -> Option<(usize, usize)> {
        let start = (value.get().as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        let before = self.text.get(..start).filter(|_| line > 0)?;
        let first_line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Some(match line {
            1 => (first_line, start - line_start + column),
            _ => (first_line + line - 1, column),
        })
    }
}

fn read_csv(path: &Path, video: &str) -> Result<Vec<Proposal>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e).video(video))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(
            DataError::invalid(path, "empty file: expected a header xmin,xmax,score").video(video),
        );
    };
    let cols: Vec<String> = header
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let find = |name: &str| {
        cols.iter().position(|c| c == name).ok_or_else(|| {
            DataError::invalid(
                path,
                format!("the header has no '{name}' column (found: {header}); expected xmin,xmax,score in seconds"),
            )
            .video(video)
            .field(name.to_string())
        })
    };
    let (ix, iy, is) = (find("xmin")?, find("xmax")?, find("score")?);
    let mut out = Vec::new();
    for (line_no, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |i: usize, name: &str| -> Result<f64, DataError> {
            let cell = cells.get(i).copied().unwrap_or("");
            cell.parse::<f64>().map_err(|_| {
                DataError::invalid(path, format!("'{cell}' is not a number"))
                    .video(video)
                    .field(format!("row {} ({name})", line_no + 1))
            })
        };
        out.push(Proposal {
            start: get(ix, "xmin")?,
            end: get(iy, "xmax")?,
            score: get(is, "score")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tcanet-props-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn json_and_csv_agree() {
        let text = r#"{"results": {"b": [{"segment": [1.0, 3.5], "score": 0.9},
            {"segment": [0.5, 2.0], "score": 0.4, "label": "x"}], "a": []}}"#;
        let j = ProposalSet::parse_json(text, Path::new("p.json")).unwrap();
        assert_eq!(j.videos[0].0, "b");
        assert_eq!(
            j.get("b").unwrap()[1],
            Proposal {
                start: 0.5,
                end: 2.0,
                score: 0.4
            }
        );
        assert_eq!(j.get("a").unwrap().len(), 0);
        let d = dir("csv");
        std::fs::write(d.join("b.csv"), "score,xmin,xmax\n0.9,1.0,3.5\n0.4,0.5,2\n").unwrap();
        let c = ProposalSet::load(&d).unwrap();
        assert_eq!(c.get("b").unwrap(), j.get("b").unwrap());
        let again = ProposalSet::parse_json(&j.to_json(), Path::new("x")).unwrap();
        assert_eq!(again.videos, j.videos);
    }

    #[test]
    fn csv_errors_name_file_row_and_column() {
        let d = dir("badcsv");
        std::fs::write(d.join("v9.csv"), "xmin,xmax\n1,2\n").unwrap();
        let e = ProposalSet::load(&d).unwrap_err().to_string();
        assert!(
            e.contains("v9.csv") && e.contains("'v9'") && e.contains("'score'"),
            "{e}"
        );
        std::fs::write(d.join("v9.csv"), "xmin,xmax,score\n1,2,0.5\n1,abc,0.5\n").unwrap();
        let e = ProposalSet::load(&d).unwrap_err().to_string();
        assert!(e.contains("row 3 (xmax)") && e.contains("'abc'"), "{e}");
    }

    #[test]
    fn a_bad_score_names_the_score_and_a_bad_segment_the_segment() {
        let d = dir("badscore");
        let message = |text: &str| {
            std::fs::write(d.join("v7.csv"), text).unwrap();
            let mut set = ProposalSet::load(&d).unwrap();
            let e = set.validate(|_| Some(30.0), InvalidProposals::Error);
            e.unwrap_err().to_string()
        };
        let e = message("xmin,xmax,score\n1,20,NaN\n");
        assert!(
            e.contains("v7.csv")
                && e.contains("'v7'")
                && e.contains("row 2 (score)")
                && e.contains("score NaN is not finite")
                && !e.contains("xmin"),
            "{e}"
        );
        let e = message("score,xmin,xmax\n0.5,1,2\ninf,3,4\n");
        assert!(
            e.contains("row 3 (score)") && e.contains("score inf"),
            "{e}"
        );
        let e = message("xmin,xmax,score\n1,2,0.5\n5,inf,0.5\n");
        assert!(
            e.contains("row 3 (xmin,xmax)") && e.contains("[5, inf]"),
            "{e}"
        );
        let json = ProposalSource::Json("p.json".into());
        assert_eq!(
            json.field_of("v", 4, ProposalPart::Score),
            "results.v[4].score"
        );
        assert_eq!(
            json.field_of("v", 4, ProposalPart::Segment),
            "results.v[4].segment"
        );
    }

    #[test]
    fn validation_errors_skips_and_clamps() {
        let mk = |s, e| Proposal {
            start: s,
            end: e,
            score: 0.5,
        };
        let set = ProposalSet::new(
            ProposalSource::Json("p.json".into()),
            vec![
                (
                    "v".into(),
                    vec![mk(1.0, 2.0), mk(5.0, 5.0), mk(-0.05, 9.0), mk(3.0, 30.0)],
                ),
                ("ghost".into(), vec![mk(1.0, 2.0)]),
            ],
        );
        let dur = |v: &str| (v == "v").then_some(10.0);
        let e = set
            .clone()
            .validate(dur, InvalidProposals::Error)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("p.json") && e.contains("'v'") && e.contains("results.v[1].segment"),
            "{e}"
        );
        assert!(e.contains("start >= end"), "{e}");
        let mut s2 = set.clone();
        let r = s2.validate(dur, InvalidProposals::Skip).unwrap();
        assert_eq!(
            r,
            ValidationReport {
                skipped: 2,
                clamped: 1,
                unknown_videos: 1
            }
        );
        assert_eq!(s2.get("v").unwrap(), &[mk(1.0, 2.0), mk(0.0, 9.0)]);
        let e = ProposalSet::parse_json(
            r#"{"results": {"q": [{"segment": [1], "score": 1}]}}"#,
            Path::new("p.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("'q'"), "{e}");
    }

    /// A JSON error of `text`, as a message.
    fn json_error(text: &str) -> String {
        ProposalSet::parse_json(text, Path::new("p.json"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn json_errors_name_video_field_and_place_in_the_file() {
        let ok = r#"{"segment": [1, 2], "score": 0.5}"#;
        let file = |entry: &str| {
            format!("{{\"results\": {{\"a\": [{ok}],\n  \"v\": [{ok}, {ok}, {ok}, {entry}]}}}}")
        };
        let score = r#"{"segment": [1, 2], "score": "0.5"}"#;
        let e = json_error(&file(score));
        let column = file(score).lines().nth(1).unwrap().find("\"0.5\"").unwrap() + 5;
        assert_eq!(
            e,
            format!(
                "p.json: video 'v': field 'results.v[3].score': invalid type: string \"0.5\", \
                 expected f64 at line 2 column {column}"
            )
        );
        let e = json_error(&file(r#"{"segment": [1, 2, 3], "score": 0.5}"#));
        assert!(
            e.contains("field 'results.v[3].segment': has 3 numbers; a segment is 2 numbers")
                && e.contains("at line 2 column"),
            "{e}"
        );
        let e = json_error(&file(r#"{"segment": [1, "2"], "score": 0.5}"#));
        assert!(
            e.contains("'results.v[3].segment': invalid type: string"),
            "{e}"
        );
        let e = json_error(&file(r#"{"segment": [1, 2]}"#));
        assert!(e.contains("'results.v[3]': missing field `score`"), "{e}");
        let e = json_error(&file("7"));
        assert!(e.contains("expected an object {\"segment\""), "{e}");
        let e = json_error(r#"{"results": {"v": {"segment": [1, 2]}}}"#);
        assert!(e.contains("'results.v': invalid type: map"), "{e}");
        // Invalid JSON: a syntax error, naming the video it is in and
        // placed on the character that could not be read.
        let text = file(r#"{"segment": [1, 2], "score": NaN}"#);
        let e = json_error(&text);
        assert!(
            e.contains("invalid JSON: in 'v': expected a number, found NaN"),
            "{e}"
        );
        let line = text.lines().nth(1).expect("line 2");
        let column = line.find("NaN").expect("NaN") + 1;
        assert!(e.ends_with(&format!(" at line 2 column {column}")), "{e}");
    }

    #[test]
    fn a_video_given_twice_is_an_error() {
        let e = json_error(r#"{"results": {"v": [], "w": [], "v": []}}"#);
        assert_eq!(
            e,
            "p.json: video 'v': appears twice in 'results'; keep one entry per video"
        );
    }

    #[test]
    fn top_by_score_is_stable() {
        let p = |s: f64| Proposal {
            start: s,
            end: s + 1.0,
            score: if s == 2.0 { 0.9 } else { 0.5 },
        };
        let top = top_by_score(&[p(1.0), p(2.0), p(3.0)], 2);
        assert_eq!(top, vec![p(2.0), p(1.0)]);
    }
}
