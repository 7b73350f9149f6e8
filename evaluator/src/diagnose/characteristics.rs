//! Instance characteristics and DETAD's buckets.
//!
//! From the ground truth: **coverage** (length over the video's duration),
//! **length** (seconds) and **instances** (annotations in the video, any
//! class). From an optional DETAD characteristics file: **context size**,
//! **context distance** and **agreement**.
//!
//! Buckets are right-closed intervals `(lo, hi]`, the first one also
//! holding `lo` (pandas' `cut` with `include_lowest`); a value in none of
//! them (or none at all) puts the instance in no bucket of that
//! characteristic.

use std::path::Path;

use serde::Serialize;

use super::prepare::Prepared;
use super::BucketPreset;
use crate::json::FastMap as HashMap;
use crate::numeric::linspace;
use crate::{Error, GroundTruth};

/// One bucket of a characteristic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Its name (`XS`, `S`, ..., or a count for context size).
    pub label: String,
    /// Lower bound (excluded, but for the first bucket).
    pub lo: f64,
    /// Upper bound (included; `null` in JSON for no bound).
    #[serde(serialize_with = "finite_or_null")]
    pub hi: f64,
    /// Whether `lo` itself belongs to the bucket (the first one).
    pub includes_lo: bool,
}

fn finite_or_null<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(*x)
    } else {
        s.serialize_none()
    }
}

impl Bucket {
    /// Whether `v` falls in the bucket.
    pub fn contains(&self, v: f64) -> bool {
        (self.includes_lo && v == self.lo) || (self.lo < v && v <= self.hi)
    }

    /// The interval as text: `[0, 0.2]`, `(180, ∞)`.
    pub fn range(&self) -> String {
        let open = if self.includes_lo { '[' } else { '(' };
        if self.hi.is_finite() {
            format!("{open}{}, {}]", self.lo, self.hi)
        } else {
            format!("{open}{}, ∞)", self.lo)
        }
    }
}

/// Buckets from edges and labels (`edges.len() == labels.len() + 1`).
fn buckets(edges: &[f64], labels: &[&str]) -> Vec<Bucket> {
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| Bucket {
            label: l.to_string(),
            lo: edges[i],
            hi: edges[i + 1],
            includes_lo: i == 0,
        })
        .collect()
}

/// The DETAD buckets of a characteristic under a preset.
pub(super) fn preset_buckets(name: &str, preset: BucketPreset) -> Vec<Bucket> {
    const SIZES: [&str; 5] = ["XS", "S", "M", "L", "XL"];
    let inf = f64::INFINITY;
    match (name, preset) {
        ("coverage", BucketPreset::ActivityNet) => buckets(&linspace(0.0, 1.0, 6), &SIZES),
        ("coverage", BucketPreset::Thumos14) => {
            buckets(&[0.0, 0.02, 0.04, 0.06, 0.08, 1.0], &SIZES)
        }
        ("length", BucketPreset::ActivityNet) => {
            buckets(&[0.0, 30.0, 60.0, 120.0, 180.0, inf], &SIZES)
        }
        ("length", BucketPreset::Thumos14) => buckets(&[0.0, 3.0, 6.0, 12.0, 18.0, inf], &SIZES),
        ("num-instances", BucketPreset::ActivityNet) => {
            buckets(&[-1.0, 1.0, 4.0, 8.0, inf], &SIZES[..4])
        }
        ("num-instances", BucketPreset::Thumos14) => {
            buckets(&[-1.0, 1.0, 40.0, 80.0, inf], &SIZES[..4])
        }
        ("context-size", _) => buckets(
            &[-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            &["0", "1", "2", "3", "4", "5", "6"],
        ),
        ("context-distance", _) => buckets(&[-1.0, 0.0, 1.0, 2.0, 3.0], &["Inf", "N", "M", "F"]),
        ("agreement", _) => buckets(&linspace(0.0, 1.0, 6), &["XW", "W", "M", "H", "XH"]),
        _ => Vec::new(),
    }
}

/// A characteristic of the kept instances and their buckets.
pub(super) struct Characteristic {
    /// Its key (`coverage`, `length`, `num-instances`, `context-size`, ...).
    pub name: &'static str,
    /// Its name in figures.
    pub title: &'static str,
    /// The buckets.
    pub buckets: Vec<Bucket>,
    /// Per kept instance: its bucket.
    pub bucket_of: Vec<Option<u8>>,
}

impl Characteristic {
    fn new(
        name: &'static str,
        title: &'static str,
        preset: BucketPreset,
        values: &[Option<f64>],
    ) -> Self {
        let buckets = preset_buckets(name, preset);
        let bucket_of = values
            .iter()
            .map(|v| v.and_then(|v| buckets.iter().position(|b| b.contains(v)).map(|i| i as u8)))
            .collect();
        Characteristic {
            name,
            title,
            buckets,
            bucket_of,
        }
    }
}

/// An extra characteristic: its key in the file (and name), its title in
/// figures, and the values it may take.
struct Extra {
    key: &'static str,
    title: &'static str,
    lo: f64,
    hi: f64,
    /// Only whole numbers (a count or a category).
    whole: bool,
}

/// The extra characteristics, in the order of [`ExtraRow`]'s values.
const EXTRA: [Extra; 3] = [
    Extra {
        key: "context-size",
        title: "Context size",
        lo: 0.0,
        hi: 6.0,
        whole: true,
    },
    Extra {
        key: "context-distance",
        title: "Context distance",
        lo: 0.0,
        hi: 3.0,
        whole: true,
    },
    Extra {
        key: "agreement",
        title: "Agreement",
        lo: 0.0,
        hi: 1.0,
        whole: false,
    },
];

impl Extra {
    /// The value of an annotation's field: a number in range, or `None`
    /// for `null` or no field; the error says what is wrong with it.
    fn value(&self, x: Option<&serde_json::Value>) -> Result<Option<f64>, String> {
        let v = match x {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(x) => x
                .as_f64()
                .filter(|v| v.is_finite())
                .ok_or("is not a finite number or null")?,
        };
        if (self.lo..=self.hi).contains(&v) && (!self.whole || v.fract() == 0.0) {
            return Ok(Some(v));
        }
        let kind = if self.whole {
            "a whole number"
        } else {
            "a number"
        };
        Err(format!(
            "is {v}; it must be {kind} from {} to {}, or null",
            self.lo, self.hi
        ))
    }
}

/// One annotation of a characteristics file: its label and its context
/// size, context distance and agreement.
type ExtraRow = (String, [Option<f64>; 3]);

/// Characteristics only annotators can give, from a file in DETAD's
/// format: a ground-truth file whose annotations also carry
/// `"context-size"` (0 to 6: how many other instances of the class the
/// video has around it), `"context-distance"` (0 to 3: Inf, N, M, F) and
/// `"agreement"` (0 to 1: how much annotators agree), each a number or
/// `null`: `{"database": {VIDEO: {"annotations": [{"segment": [s, e],
/// "label": NAME, "context-size": 2, "context-distance": 1, "agreement":
/// 0.8}, ...]}}}`. Annotations are matched to the ground truth's by video
/// and position, and must have the same labels.
#[derive(Debug, Clone, Default)]
pub struct ExtraCharacteristics {
    source: String,
    /// Per video: per annotation, its label and the three values.
    videos: HashMap<String, Vec<ExtraRow>>,
}

impl ExtraCharacteristics {
    /// Reads a characteristics file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|cause| Error::Read {
            path: path.display().to_string(),
            cause,
        })?;
        Self::from_slice(&bytes, &path.display().to_string())
    }

    /// Parses a characteristics file's bytes; `source` names it in messages.
    pub fn from_slice(bytes: &[u8], source: &str) -> Result<Self, Error> {
        let content = |message: String| Error::Content {
            file: source.to_string(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| syntax_error(bytes, source, &e))?;
        let db = value
            .get("database")
            .and_then(|d| d.as_object())
            .ok_or_else(|| {
                content("no \"database\" object at the top level (DETAD's format)".into())
            })?;
        let mut videos = HashMap::default();
        for (id, v) in db {
            let anns = v
                .get("annotations")
                .and_then(|a| a.as_array())
                .ok_or_else(|| {
                    content(format!("database[\"{id}\"] has no \"annotations\" array"))
                })?;
            let rows = anns
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    extra_row(a, &|field| {
                        format!("database[\"{id}\"].annotations[{i}].{field}")
                    })
                })
                .collect::<Result<_, _>>()
                .map_err(content)?;
            videos.insert(id.clone(), rows);
        }
        Ok(ExtraCharacteristics {
            source: source.to_string(),
            videos,
        })
    }
}

/// One annotation of a characteristics file; `at` names a field of it in
/// messages.
fn extra_row(a: &serde_json::Value, at: &dyn Fn(&str) -> String) -> Result<ExtraRow, String> {
    let label = a
        .get("label")
        .and_then(|l| l.as_str())
        .ok_or_else(|| format!("{} is missing or not a string", at("label")))?;
    let mut values = [None; 3];
    for (slot, x) in values.iter_mut().zip(&EXTRA) {
        *slot = x
            .value(a.get(x.key))
            .map_err(|why| format!("{} {why}", at(x.key)))?;
    }
    Ok((label.to_string(), values))
}

/// A file serde_json cannot parse: where and why, with the path to the
/// value at fault when the crate's parser finds the same fault.
fn syntax_error(bytes: &[u8], source: &str, e: &serde_json::Error) -> Error {
    crate::load::locate_syntax_error(bytes, source).unwrap_or_else(|| {
        let text = e.to_string();
        let place = format!(" at line {} column {}", e.line(), e.column());
        Error::Syntax {
            file: source.to_string(),
            line: e.line(),
            column: e.column(),
            message: text.strip_suffix(&place).unwrap_or(&text).to_string(),
        }
    })
}

/// The characteristics of the kept instances: coverage (when durations
/// are known), length, instances per video, and the extra ones given.
pub(super) fn compute(
    gt: &GroundTruth,
    p: &Prepared,
    preset: BucketPreset,
    extra: Option<&ExtraCharacteristics>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Characteristic>, Error> {
    let n = p.n_instances();
    let mut coverage = Vec::with_capacity(n);
    let mut length = Vec::with_capacity(n);
    let mut count = Vec::with_capacity(n);
    for (v, video) in p.gt.videos.iter().enumerate() {
        for g in &video.instances {
            let len = g.segment[1] - g.segment[0];
            length.push(Some(len));
            coverage.push(video.duration.filter(|&d| d > 0.0).map(|d| len / d));
            count.push(Some(gt.videos[v].instances.len() as f64));
        }
    }
    let mut out = Vec::new();
    if coverage.iter().any(Option::is_some) {
        let missing = coverage.iter().filter(|c| c.is_none()).count();
        if missing > 0 {
            warnings.push(format!(
                "{}: {missing} instance(s) are in videos without a duration; they have no coverage",
                gt.source
            ));
        }
        out.push(Characteristic::new(
            "coverage", "Coverage", preset, &coverage,
        ));
    } else {
        warnings.push(format!(
            "{}: no video has a \"duration\", so coverage is not analysed",
            gt.source
        ));
    }
    out.push(Characteristic::new("length", "Length", preset, &length));
    out.push(Characteristic::new(
        "num-instances",
        "# Instances",
        preset,
        &count,
    ));
    if let Some(extra) = extra {
        let values = extra_values(gt, p, extra, warnings)?;
        for (k, x) in EXTRA.iter().enumerate() {
            let col: Vec<Option<f64>> = values.iter().map(|v| v[k]).collect();
            if col.iter().any(Option::is_some) {
                out.push(Characteristic::new(x.key, x.title, preset, &col));
            }
        }
    }
    Ok(out)
}

/// The extra values of each kept instance, checked against the ground
/// truth `gt` (as many annotations per video, same labels at the same
/// positions); `p` keeps some of `gt`'s instances, video by video.
fn extra_values(
    gt: &GroundTruth,
    p: &Prepared,
    extra: &ExtraCharacteristics,
    warnings: &mut Vec<String>,
) -> Result<Vec<[Option<f64>; 3]>, Error> {
    let mut out = Vec::with_capacity(p.n_instances());
    let mut missing_videos = 0usize;
    let mut i = 0usize;
    for (video, all) in p.gt.videos.iter().zip(&gt.videos) {
        let rows = extra.videos.get(&video.id);
        if rows.is_none() && !video.instances.is_empty() {
            missing_videos += 1;
        }
        if let Some(rows) = rows {
            extra.check_count(&video.id, rows.len(), all.instances.len())?;
        }
        for g in &video.instances {
            let a = p.inst_annotation[i] as usize;
            i += 1;
            let Some((label, values)) = rows.map(|r| &r[a]) else {
                out.push([None; 3]);
                continue;
            };
            let want = &p.gt.labels[g.label];
            if label != want {
                return Err(extra.mismatch(format!(
                    "database[\"{}\"].annotations[{a}].label is \"{label}\" where the ground \
                     truth has \"{want}\"",
                    video.id
                )));
            }
            out.push(*values);
        }
    }
    if missing_videos > 0 {
        warnings.push(format!(
            "{}: {missing_videos} annotated video(s) of the ground truth are not in it; their \
             instances have no context size, context distance or agreement",
            extra.source
        ));
    }
    Ok(out)
}

impl ExtraCharacteristics {
    /// Fails unless a video has as many annotations here (`have`) as in
    /// the ground truth (`want`).
    fn check_count(&self, video: &str, have: usize, want: usize) -> Result<(), Error> {
        if have == want {
            return Ok(());
        }
        Err(self.mismatch(format!(
            "database[\"{video}\"] has {have} annotation(s) where the ground truth has {want}"
        )))
    }

    /// The error for a file that does not follow the ground truth.
    fn mismatch(&self, what: String) -> Error {
        Error::Content {
            file: self.source.clone(),
            message: format!(
                "{what}: the characteristics file must list the same annotations in the same order"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label_of(name: &str, preset: BucketPreset, v: f64) -> Option<String> {
        preset_buckets(name, preset)
            .into_iter()
            .find(|b| b.contains(v))
            .map(|b| b.label)
    }

    #[test]
    fn activitynet_buckets_are_right_closed_with_the_lowest_included() {
        let a = BucketPreset::ActivityNet;
        let l = |name, v| label_of(name, a, v);
        assert_eq!(l("coverage", 0.0).as_deref(), Some("XS"));
        assert_eq!(l("coverage", 0.2).as_deref(), Some("XS"));
        assert_eq!(l("coverage", 0.2000001).as_deref(), Some("S"));
        assert_eq!(
            l("coverage", 0.6).as_deref(),
            Some("M"),
            "0.6 <= linspace's 0.6000000000000001"
        );
        assert_eq!(l("coverage", 0.8).as_deref(), Some("L"));
        assert_eq!(l("coverage", 1.0).as_deref(), Some("XL"));
        assert_eq!(l("coverage", 1.01), None);
        assert_eq!(l("coverage", -0.1), None);
        assert_eq!(l("length", 0.0).as_deref(), Some("XS"));
        assert_eq!(l("length", 30.0).as_deref(), Some("XS"));
        assert_eq!(l("length", 30.5).as_deref(), Some("S"));
        assert_eq!(l("length", 120.0).as_deref(), Some("M"));
        assert_eq!(l("length", 180.0).as_deref(), Some("L"));
        assert_eq!(l("length", 1e6).as_deref(), Some("XL"));
        assert_eq!(l("num-instances", 1.0).as_deref(), Some("XS"));
        assert_eq!(l("num-instances", 2.0).as_deref(), Some("S"));
        assert_eq!(l("num-instances", 4.0).as_deref(), Some("S"));
        assert_eq!(l("num-instances", 5.0).as_deref(), Some("M"));
        assert_eq!(l("num-instances", 8.0).as_deref(), Some("M"));
        assert_eq!(l("num-instances", 9.0).as_deref(), Some("L"));
    }

    #[test]
    fn thumos_and_extra_buckets() {
        let t = BucketPreset::Thumos14;
        let l = |name, v| label_of(name, t, v);
        assert_eq!(l("coverage", 0.02).as_deref(), Some("XS"));
        assert_eq!(l("coverage", 0.05).as_deref(), Some("M"));
        assert_eq!(l("coverage", 0.07).as_deref(), Some("L"));
        assert_eq!(l("coverage", 0.5).as_deref(), Some("XL"));
        assert_eq!(l("length", 3.0).as_deref(), Some("XS"));
        assert_eq!(l("length", 12.5).as_deref(), Some("L"));
        assert_eq!(l("num-instances", 40.0).as_deref(), Some("S"));
        assert_eq!(l("num-instances", 81.0).as_deref(), Some("L"));
        assert_eq!(l("context-size", 0.0).as_deref(), Some("0"));
        assert_eq!(l("context-size", 6.0).as_deref(), Some("6"));
        assert_eq!(l("context-size", 7.0), None);
        assert_eq!(l("context-distance", 0.0).as_deref(), Some("Inf"));
        assert_eq!(l("context-distance", 3.0).as_deref(), Some("F"));
        assert_eq!(l("agreement", 0.0).as_deref(), Some("XW"));
        assert_eq!(l("agreement", 0.9).as_deref(), Some("XH"));
        let b = &preset_buckets("length", BucketPreset::ActivityNet)[4];
        assert_eq!(b.range(), "(180, ∞)");
        assert_eq!(preset_buckets("coverage", t)[0].range(), "[0, 0.02]");
    }

    #[test]
    fn extra_file_values_and_errors() {
        let x = ExtraCharacteristics::from_slice(
            br#"{"database": {"v": {"annotations": [
                {"label": "a", "segment": [0, 1], "context-size": 2, "context-distance": null, "agreement": 0.5},
                {"label": "b", "segment": [0, 1]}]}}}"#,
            "x.json",
        )
        .unwrap();
        let rows = &x.videos["v"];
        assert_eq!(rows[0], ("a".to_string(), [Some(2.0), None, Some(0.5)]));
        assert_eq!(rows[1].1, [None; 3]);
        let e = ExtraCharacteristics::from_slice(
            br#"{"database": {"v": {"annotations": [{"label": "a", "agreement": "high"}]}}}"#,
            "x.json",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "x.json: database[\"v\"].annotations[0].agreement is not a finite number or null"
        );
        let e = ExtraCharacteristics::from_slice(b"{\"results\": {}}", "x.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no \"database\""), "{e}");
    }
}
