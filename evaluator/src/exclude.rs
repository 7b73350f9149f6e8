//! Leaving videos out of an evaluation: the official code's list of
//! blocked videos, read from a file instead of the network.

use std::collections::HashSet;

use crate::json::FastMap as HashMap;
use crate::{DetectionSet, Error, GroundTruth, GtInstance, GtVideo, ProposalSet};

/// Reads a list of video ids: a JSON array of strings, or one id per line
/// (blank lines and lines starting with `#` are skipped; ids are trimmed).
/// Any other JSON value (an object, a string, a number, `null`, ...) and a
/// line in quotes are errors. `source` names the file in messages.
pub fn read_video_list(bytes: &[u8], source: &str) -> Result<Vec<String>, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Content {
        file: source.to_string(),
        message: format!(
            "not UTF-8 text (invalid byte at offset {}); give one video id per line or a JSON list",
            e.valid_up_to()
        ),
    })?;
    if text.trim_start().starts_with(['[', '{']) {
        return json_list(text, source);
    }
    // A whole file that is one JSON value (`"v_a"`, `null`, `5`) is not a
    // list of ids; several lines of ids never parse as one value.
    match serde_json::from_str(text) {
        Ok(value) => list_items(&value, text, source),
        Err(_) => lines(text, source),
    }
}

/// The ids of a file with one per line.
fn lines(text: &str, source: &str) -> Result<Vec<String>, Error> {
    let mut ids = Vec::new();
    for (i, line) in text.lines().map(str::trim).enumerate() {
        if line.starts_with('"') {
            return Err(Error::Content {
                file: source.to_string(),
                message: format!(
                    "line {} is in quotes ({line}); write one bare id per line, or a JSON list",
                    i + 1
                ),
            });
        }
        if !line.is_empty() && !line.starts_with('#') {
            ids.push(line.to_string());
        }
    }
    Ok(ids)
}

fn json_list(text: &str, source: &str) -> Result<Vec<String>, Error> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Syntax {
        file: source.to_string(),
        line: e.line(),
        column: e.column(),
        message: format!("{e}; a list of video ids is a JSON array of strings"),
    })?;
    list_items(&value, text, source)
}

/// The ids of a JSON list (`value`, parsed from `text`); any other value
/// is an error.
fn list_items(value: &serde_json::Value, text: &str, source: &str) -> Result<Vec<String>, Error> {
    use serde_json::Value;
    let error = |message: String| Error::Content {
        file: source.to_string(),
        message,
    };
    let found = match value {
        Value::Array(items) => {
            return items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        error(format!("item {i} of the list is not a string (a video id)"))
                    })
                })
                .collect()
        }
        Value::Object(_) => "a JSON object".to_string(),
        Value::String(_) => format!(
            "the JSON string {value}; to exclude that one video write [{value}] or its bare id"
        ),
        Value::Number(_) => format!(
            "the JSON number {0}; to exclude a video with that id write [\"{0}\"]",
            text.trim()
        ),
        Value::Bool(_) | Value::Null => format!("JSON {value}"),
    };
    Err(error(format!(
        "expected a JSON array of video ids or one id per line, found {found}"
    )))
}

impl GroundTruth {
    /// The ground truth without the videos in `ids`; classes are numbered
    /// again in order of first appearance among the videos left (a class
    /// seen only in excluded videos disappears, as in the official code).
    pub fn without_videos(&self, ids: &HashSet<String>) -> GroundTruth {
        let mut labels: Vec<String> = Vec::new();
        let mut new_id: HashMap<usize, usize> = HashMap::default();
        let videos: Vec<GtVideo> = self
            .videos
            .iter()
            .filter(|v| !ids.contains(&v.id))
            .map(|v| GtVideo {
                id: v.id.clone(),
                duration: v.duration,
                instances: v
                    .instances
                    .iter()
                    .map(|g| GtInstance {
                        segment: g.segment,
                        label: *new_id.entry(g.label).or_insert_with(|| {
                            labels.push(self.labels[g.label].clone());
                            labels.len() - 1
                        }),
                    })
                    .collect(),
            })
            .collect();
        let mut kept = GroundTruth::new(
            self.source.clone(),
            self.subset.clone(),
            labels,
            videos,
            self.warnings.clone(),
        );
        kept.invalid_durations = (self.invalid_durations.iter())
            .filter(|d| !ids.contains(&d.video))
            .cloned()
            .collect();
        kept
    }
}

impl ProposalSet {
    /// The set without the videos in `ids`.
    pub fn without_videos(&self, ids: &HashSet<String>) -> ProposalSet {
        ProposalSet {
            source: self.source.clone(),
            videos: self
                .videos
                .iter()
                .filter(|v| !ids.contains(&v.video))
                .cloned()
                .collect(),
            warnings: self.warnings.clone(),
        }
    }
}

impl DetectionSet {
    /// The set without the videos in `ids` (labels unchanged).
    pub fn without_videos(&self, ids: &HashSet<String>) -> DetectionSet {
        let mut out = self.clone();
        out.videos.retain(|v| !ids.contains(&v.video));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_lines_or_json() {
        let lines = read_video_list(b"# blocked\n v_a \n\nv_b\r\n", "x.txt").unwrap();
        assert_eq!(lines, ["v_a", "v_b"]);
        let json = read_video_list(br#" ["v_a", "v_c"]"#, "x.json").unwrap();
        assert_eq!(json, ["v_a", "v_c"]);
        let e = read_video_list(br#"["v_a", 3]"#, "x.json")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "x.json: item 1 of the list is not a string (a video id)");
        let e = read_video_list(b"[\"v_a\",", "x.json")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.json:1:"), "{e}");
        for other in [&b"{\"v_a\": 1}"[..], b"5", b"\"v_a\"", b"null"] {
            let e = read_video_list(other, "x.json").unwrap_err().to_string();
            assert!(
                e.starts_with("x.json: expected a JSON array of video ids"),
                "{e}"
            );
        }
        let numbers = read_video_list(b"123\n456\n", "x.txt").unwrap();
        assert_eq!(numbers, ["123", "456"]);
        let e = read_video_list(b"\xff\xfe", "x.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not UTF-8"), "{e}");
    }

    #[test]
    fn excluded_videos_leave_the_ground_truth_and_their_classes_renumber() {
        let gt = GroundTruth::from_videos(
            "validation",
            [
                ("a", vec![([0.0, 1.0], "run")]),
                ("b", vec![([0.0, 1.0], "jump"), ([2.0, 3.0], "swim")]),
                ("c", vec![([0.0, 1.0], "swim")]),
            ],
        );
        let ids: HashSet<String> = ["a".to_string()].into();
        let kept = gt.without_videos(&ids);
        assert_eq!(kept.labels, ["jump", "swim"]);
        assert_eq!(kept.videos.len(), 2);
        assert_eq!(kept.videos[1].instances[0].label, 1);
        assert_eq!(kept.video_index("a"), None);
        assert_eq!(kept.video_index("c"), Some(1));
        let mut p = ProposalSet::new();
        p.push("a", vec![]);
        p.push("c", vec![]);
        assert_eq!(p.without_videos(&ids).videos.len(), 1);
    }
}
