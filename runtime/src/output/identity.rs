//! Which run wrote a leaderboard file (`tcanet_run`): what must agree for
//! partial files to be merged, and a generation marker that tells apart the
//! outputs of two runs (see [`super::check_generation`]).
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tcanet_models::checkpoint::sha256_hex;
use tcanet_models::data::Dataset;

/// What a leaderboard file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// Refined (or post-processed) proposals.
    Proposals,
    /// Detections (proposals with class labels).
    Detections,
}

/// The settings that change a run's results (not threads, devices or batch
/// sizes, which do not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultSettings {
    /// `--soft-nms-alpha`.
    pub soft_nms_alpha: f64,
    /// `--soft-nms-t1`.
    pub soft_nms_t1: f64,
    /// `--soft-nms-t2`.
    pub soft_nms_t2: f64,
    /// `--top-k`.
    pub top_k: usize,
    /// `--max-proposals` (`null`: all).
    pub max_proposals: Option<usize>,
    /// `--layout` (`null` when features are not read).
    pub layout: Option<String>,
    /// `--resample` (`null` when features are not read).
    pub resample: Option<bool>,
    /// `--top-classes` (detections only).
    pub top_classes: Option<usize>,
    /// `--max-detections` (detections only).
    pub max_detections: Option<usize>,
}

/// Which run produced a file: everything that must be equal for two partial
/// files to belong to one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// Proposals or detections.
    pub kind: OutputKind,
    /// The command: `run` or `postprocess`.
    pub command: String,
    /// SHA-256 of the model file (`null` for `postprocess`).
    pub model_sha256: Option<String>,
    /// `--subset` (`null`: all videos).
    pub subset: Option<String>,
    /// Videos of the whole run (all shards).
    pub videos: usize,
    /// [`videos_digest`] of the whole run's videos, in order.
    pub videos_sha256: String,
    /// [`inputs_digest`]: durations and input proposals of those videos.
    pub inputs_sha256: String,
    /// SHA-256 of the classifier file (detections only).
    pub classifier_sha256: Option<String>,
    /// The settings that change results.
    pub settings: ResultSettings,
}

impl RunIdentity {
    /// The first field (a dotted path such as `settings.top_k`) in which
    /// `self` and `other` differ, with both values as JSON text.
    pub fn first_difference(&self, other: &RunIdentity) -> Option<(String, String, String)> {
        if self.kind != other.kind {
            let text = |k: OutputKind| serde_json::to_string(&k).unwrap_or_default();
            return Some(("kind".into(), text(self.kind), text(other.kind)));
        }
        let a = serde_json::to_value(self).ok()?;
        let b = serde_json::to_value(other).ok()?;
        first_difference(&a, &b, "")
    }
}

fn first_difference(a: &Value, b: &Value, at: &str) -> Option<(String, String, String)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                let vb = y.get(k).unwrap_or(&Value::Null);
                if let Some(d) = first_difference(va, vb, &path) {
                    return Some(d);
                }
            }
            None
        }
        _ if a == b => None,
        _ => Some((at.to_string(), a.to_string(), b.to_string())),
    }
}

/// `tcanet_run` of a file: the run's identity, this write's generation, and
/// the other files the same write produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStamp {
    /// The run's identity.
    #[serde(flatten)]
    pub identity: RunIdentity,
    /// Unique to one invocation: every file it writes carries the same.
    pub generation: String,
    /// Every regular file of that write (this one included), relative to
    /// this file's directory.
    pub outputs: Vec<String>,
}

/// A new generation marker: unique per process and call.
pub fn new_generation() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{n}", std::process::id())
}

/// SHA-256 of the video ids in order (each followed by a newline).
pub fn videos_digest(videos: &[String]) -> String {
    let mut text = String::with_capacity(videos.len() * 16);
    for v in videos {
        text.push_str(v);
        text.push('\n');
    }
    sha256_hex(text.as_bytes())
}

/// SHA-256 of what the run reads for `videos` besides features: each
/// video's id, duration and input proposals (start, end, score, as read).
pub fn inputs_digest(dataset: &Dataset, videos: &[String]) -> String {
    let mut bytes = Vec::with_capacity(videos.len() * 256);
    for v in videos {
        bytes.extend_from_slice(v.as_bytes());
        bytes.push(0);
        let duration = dataset.annotations.get(v).map_or(f64::NAN, |i| i.duration);
        bytes.extend_from_slice(&duration.to_le_bytes());
        let props = dataset.proposals.get(v).unwrap_or_default();
        bytes.extend_from_slice(&(props.len() as u64).to_le_bytes());
        for p in props {
            for x in [p.start, p.end, p.score] {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
    sha256_hex(&bytes)
}

/// `target` relative to the directory `from` (both made absolute through
/// their existing directories), for [`RunStamp::outputs`].
pub fn relative_path(from: &Path, target: &Path) -> PathBuf {
    let absolute = |p: &Path| -> PathBuf {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        match p.file_name() {
            Some(name) => dir.join(name),
            None => dir,
        }
    };
    let from_dir = std::fs::canonicalize(from).unwrap_or_else(|_| from.to_path_buf());
    let target = absolute(target);
    let a: Vec<Component> = from_dir.components().collect();
    let b: Vec<Component> = target.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> RunIdentity {
        RunIdentity {
            kind: OutputKind::Proposals,
            command: "run".into(),
            model_sha256: Some("ab".into()),
            subset: Some("validation".into()),
            videos: 3,
            videos_sha256: videos_digest(&["a".into(), "b".into(), "c".into()]),
            inputs_sha256: "cd".into(),
            classifier_sha256: None,
            settings: ResultSettings {
                soft_nms_alpha: 0.4,
                soft_nms_t1: 0.0,
                soft_nms_t2: 0.0,
                top_k: 100,
                max_proposals: None,
                layout: Some("auto".into()),
                resample: Some(false),
                top_classes: None,
                max_detections: None,
            },
        }
    }

    #[test]
    fn the_first_difference_is_named_by_its_path() {
        let a = identity();
        assert_eq!(a.first_difference(&a.clone()), None);
        let mut b = a.clone();
        b.settings.top_k = 5;
        assert_eq!(
            a.first_difference(&b),
            Some(("settings.top_k".into(), "100".into(), "5".into()))
        );
        let mut c = a.clone();
        c.kind = OutputKind::Detections;
        assert_eq!(
            a.first_difference(&c).unwrap().0,
            "kind",
            "kind is compared first"
        );
    }

    #[test]
    fn digests_depend_on_order_and_content() {
        let ab = videos_digest(&["a".into(), "b".into()]);
        assert_ne!(ab, videos_digest(&["b".into(), "a".into()]));
        assert_ne!(ab, videos_digest(&["ab".into()]));
        assert_eq!(ab.len(), 64);
    }

    #[test]
    fn relative_paths_between_directories() {
        let d = tempfile_dir();
        std::fs::create_dir_all(d.join("x/y")).unwrap();
        assert_eq!(
            relative_path(&d.join("x"), &d.join("x/a.json")),
            PathBuf::from("a.json")
        );
        assert_eq!(
            relative_path(&d.join("x/y"), &d.join("x/a.json")),
            PathBuf::from("../a.json")
        );
        assert_eq!(
            relative_path(&d.join("x"), &d.join("x/y/b.json")),
            PathBuf::from("y/b.json")
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("tcanet-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
