//! Ground truth in the ActivityNet / HACS `database` JSON shape:
//! `{"database": {video: {"subset", "duration", "annotations": [{"segment": [s, e], "label"}]}}}`.
use super::ordered::{json_error_message, Ordered};
use super::{DataError, ErrorKind};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tcanet_cli::range::shown;

/// One annotated action instance, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Start time (s).
    pub start: f64,
    /// End time (s).
    pub end: f64,
    /// Class label.
    pub label: String,
}

impl Instance {
    /// Length in seconds.
    pub fn length(&self) -> f64 {
        self.end - self.start
    }
}

/// One video of the database.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Video id (the key in `database`).
    pub id: String,
    /// Subset name (`training`, `validation`, `testing`, ...).
    pub subset: String,
    /// Duration in seconds.
    pub duration: f64,
    /// Annotated instances in file order.
    pub instances: Vec<Instance>,
}

/// A parsed annotations file; videos keep the file's order.
#[derive(Debug, Clone)]
pub struct Annotations {
    /// The file it was read from.
    pub path: PathBuf,
    /// Every video, in file order.
    pub videos: Vec<VideoInfo>,
}

#[derive(Deserialize)]
struct RawFile {
    database: Ordered<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawVideo {
    subset: String,
    duration: f64,
    #[serde(default)]
    annotations: Vec<RawInstance>,
}

#[derive(Deserialize)]
struct RawInstance {
    segment: [f64; 2],
    #[serde(default)]
    label: String,
}

/// The shortest video accepted, in seconds: times are divided by the
/// duration, and a shorter one (or a subnormal number) overflows them.
pub const MIN_DURATION_SECONDS: f64 = 1e-3;

/// The longest video accepted, in seconds (about 31 years): beyond it the
/// proposals' times lose the precision the network needs.
pub const MAX_DURATION_SECONDS: f64 = 1e9;

/// Why `duration` is not a video's duration (to follow "duration "), or
/// `None` when it is one: a number of seconds from
/// [`MIN_DURATION_SECONDS`] to [`MAX_DURATION_SECONDS`]. Every reader of
/// durations (annotations, the runtime's requests) asks this.
pub fn duration_problem(duration: f64) -> Option<String> {
    let range = MIN_DURATION_SECONDS..=MAX_DURATION_SECONDS;
    (!range.contains(&duration)).then(|| {
        format!(
            "{} must be a number of seconds from {} to {}",
            shown(duration),
            shown(MIN_DURATION_SECONDS),
            shown(MAX_DURATION_SECONDS)
        )
    })
}

impl Annotations {
    /// Reads and checks an annotations file.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses annotations JSON; `path` is only used in error messages.
    ///
    /// Zero-length instances (present in ActivityNet-1.3) are kept; an
    /// instance with start > end, a non-finite time, a non-positive duration
    /// or a video given twice is an error naming the video and field.
    pub fn parse(text: &str, path: &Path) -> Result<Self, DataError> {
        let raw: RawFile = serde_json::from_str(text)
            .map_err(|e| DataError::new(path, ErrorKind::Json(json_error_message(text, &e))))?;
        let database = raw.database.into_unique_videos(path, "database")?;
        let mut videos = Vec::with_capacity(database.len());
        for (id, value) in database {
            let v: RawVideo = serde_json::from_value(value).map_err(|e| {
                DataError::new(path, ErrorKind::Json(e.to_string())).video(id.clone())
            })?;
            if let Some(problem) = duration_problem(v.duration) {
                return Err(DataError::invalid(path, format!("duration {problem}"))
                    .video(id)
                    .field("duration"));
            }
            let mut instances = Vec::with_capacity(v.annotations.len());
            for (i, a) in v.annotations.into_iter().enumerate() {
                let [s, e] = a.segment;
                if !(s.is_finite() && e.is_finite()) || s > e {
                    return Err(DataError::invalid(
                        path,
                        format!("segment [{s}, {e}] must be finite with start <= end"),
                    )
                    .video(id)
                    .field(format!("annotations[{i}].segment")));
                }
                instances.push(Instance {
                    start: s,
                    end: e,
                    label: a.label,
                });
            }
            videos.push(VideoInfo {
                id,
                subset: v.subset,
                duration: v.duration,
                instances,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            videos,
        })
    }

    /// The subsets the file has, comma-separated in order of first
    /// appearance ("no videos" for none): for messages about a subset
    /// that no video is in.
    pub fn subset_names(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for v in &self.videos {
            if !names.contains(&v.subset.as_str()) {
                names.push(&v.subset);
            }
        }
        if names.is_empty() {
            "no videos".into()
        } else {
            names.join(", ")
        }
    }

    /// The videos of one subset, in file order.
    pub fn subset<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a VideoInfo> + 'a {
        self.videos.iter().filter(move |v| v.subset == name)
    }

    /// The video called `id`, if present.
    pub fn get(&self, id: &str) -> Option<&VideoInfo> {
        self.videos.iter().find(|v| v.id == id)
    }

    /// The annotations as JSON in the same `database` shape (file order kept).
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"version\": \"VERSION 1.3\", \"database\": {");
        for (i, v) in self.videos.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let anns: Vec<serde_json::Value> = v
                .instances
                .iter()
                .map(|a| serde_json::json!({"segment": [a.start, a.end], "label": a.label}))
                .collect();
            let body = serde_json::json!({
                "subset": v.subset,
                "duration": v.duration,
                "annotations": anns,
            });
            out.push_str(&serde_json::to_string(&v.id).expect("string serialises"));
            out.push_str(": ");
            out.push_str(&body.to_string());
        }
        out.push_str("}}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_file_order_and_fields() {
        let text = r#"{"database": {
            "zz": {"subset": "training", "duration": 10.0,
                   "annotations": [{"segment": [1.0, 4.5], "label": "Jump"}]},
            "aa": {"subset": "validation", "duration": 20.5, "annotations": []}}}"#;
        let a = Annotations::parse(text, Path::new("gt.json")).unwrap();
        assert_eq!(a.videos[0].id, "zz");
        assert_eq!(a.videos[1].id, "aa");
        assert_eq!(a.videos[0].instances[0].end, 4.5);
        assert_eq!(a.subset("validation").count(), 1);
        let again = Annotations::parse(&a.to_json(), Path::new("x")).unwrap();
        assert_eq!(again.videos, a.videos);
    }

    #[test]
    fn errors_name_file_video_and_field() {
        let text = r#"{"database": {"v1": {"subset": "training", "duration": 10.0,
            "annotations": [{"segment": [1, 2], "label": "a"}, {"segment": [5, 3], "label": "a"}]}}}"#;
        let e = Annotations::parse(text, Path::new("gt.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("gt.json") && e.contains("'v1'"), "{e}");
        assert!(e.contains("annotations[1].segment"), "{e}");
        let text = r#"{"database": {"v2": {"subset": "training", "duration": -1}}}"#;
        let e = Annotations::parse(text, Path::new("gt.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'v2'") && e.contains("duration"), "{e}");
        for bad in ["1e308", "1e-310", "0.0009", "0"] {
            let text =
                format!(r#"{{"database": {{"v4": {{"subset": "training", "duration": {bad}}}}}}}"#);
            let e = Annotations::parse(&text, Path::new("gt.json"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("'v4'") && e.contains("from 0.001 to 1000000000"),
                "{bad}: {e}"
            );
            assert!(e.len() < 200, "a short number: {e}");
        }
        let text = r#"{"database": {"v3": {"subset": "training"}}}"#;
        let e = Annotations::parse(text, Path::new("gt.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'v3'") && e.contains("duration"), "{e}");
        let text = r#"{"database": {"v5": {"subset": "training", "duration": 10.0},
            "v6": {"subset": "training", "duration": 10.0},
            "v5": {"subset": "validation", "duration": 20.0}}}"#;
        let e = Annotations::parse(text, Path::new("gt.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gt.json") && e.contains("video 'v5'") && e.contains("twice in 'database'"),
            "{e}"
        );
        let e = Annotations::load(Path::new("/nonexistent/gt.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/gt.json") && e.contains("not found"),
            "{e}"
        );
    }

    /// The ActivityNet-1.3 ground truth the evaluator's golden tests carry
    /// (xz-compressed in the repository), read by the data loader.
    #[test]
    fn reads_activitynet_ground_truth() {
        let xz = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../evaluator/tests/data/activitynet13_gt.json.xz"
        ))
        .unwrap();
        let mut json = Vec::new();
        lzma_rs::xz_decompress(&mut &xz[..], &mut json).unwrap();
        let text = String::from_utf8(json).unwrap();
        let a = Annotations::parse(&text, Path::new("activitynet13_gt.json")).unwrap();
        assert_eq!(a.videos.len(), 19228);
        assert_eq!(a.videos[0].id, "QOlSCBRmfWY");
        assert_eq!(a.videos[0].subset, "training");
        assert!((a.videos[0].instances[0].start - 6.195294851794072).abs() < 1e-12);
        assert_eq!(a.subset("testing").next().unwrap().instances.len(), 0);
    }
}
