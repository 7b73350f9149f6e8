//! Ground-truth files: `{"database": {VIDEO: {"subset": ..., "duration":
//! ..., "annotations": [{"segment": [s, e], "label": NAME}]}}}`.

use std::borrow::Cow;

use super::{repeated_top_level_key, segment, syntax, within};
use crate::json::FastMap as HashMap;
use crate::json::{line_column, JResult, JsonError, Parser};
use crate::{Error, GroundTruth, GtInstance, GtVideo, InvalidDuration};

/// A video of `database` as first seen: where its annotations are, to be
/// read only when it is in the subset.
struct RawGtVideo<'a> {
    id: Cow<'a, str>,
    key_at: usize,
    subset: Option<Cow<'a, str>>,
    annotations_at: Option<usize>,
    duration: Option<f64>,
    /// A "duration" there but not a positive finite number.
    duration_fault: Option<JsonError>,
}

/// Class names numbered in order of first appearance.
#[derive(Default)]
struct Labels {
    names: Vec<String>,
    ids: HashMap<String, usize>,
}

impl Labels {
    fn id(&mut self, name: &str) -> usize {
        if let Some(&i) = self.ids.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }
}

/// The first reversed segment (start > end) and how many there are.
#[derive(Default)]
struct Reversed {
    count: usize,
    first: String,
}

/// Parses a ground-truth file and keeps the videos of `subset`.
pub(crate) fn ground_truth(bytes: &[u8], file: &str, subset: &str) -> Result<GroundTruth, Error> {
    let mut warnings = Vec::new();
    let raw = top_level(bytes, file, &mut warnings)?;
    let err = |e: JsonError| syntax(bytes, file, e);
    let mut subsets: Vec<(String, usize)> = Vec::new();
    let mut videos = Vec::new();
    let mut labels = Labels::default();
    let mut reversed = Reversed::default();
    let mut invalid_durations = Vec::new();
    for v in &raw {
        let Some(s) = &v.subset else {
            return Err(err(JsonError {
                offset: v.key_at,
                message: format!("database[\"{}\"] has no \"subset\" field", v.id),
            }));
        };
        match subsets.iter_mut().find(|(name, _)| name == s) {
            Some((_, n)) => *n += 1,
            None => subsets.push((s.to_string(), 1)),
        }
        if s != subset {
            continue;
        }
        let Some(at) = v.annotations_at else {
            return Err(err(JsonError {
                offset: v.key_at,
                message: format!(
                    "database[\"{}\"] (subset {subset}) has no \"annotations\" field",
                    v.id
                ),
            }));
        };
        let instances = annotations(
            &mut Parser::new(bytes, at),
            &v.id,
            &mut labels,
            &mut reversed,
        )
        .map_err(err)?;
        if let Some(e) = &v.duration_fault {
            invalid_durations.push(invalid_duration(bytes, &v.id, e));
        }
        videos.push(GtVideo {
            id: v.id.to_string(),
            duration: v.duration,
            instances,
        });
    }
    if videos.is_empty() {
        return Err(no_such_subset(file, subset, &subsets));
    }
    if reversed.count > 0 {
        warnings.push(format!(
            "{file}: {} ground-truth segment(s) are reversed (start > end), first at \
             {}; they are used as written, as the official code does",
            reversed.count, reversed.first
        ));
    }
    let mut gt = GroundTruth::new(
        file.to_string(),
        subset.to_string(),
        labels.names,
        videos,
        warnings,
    );
    gt.invalid_durations = invalid_durations;
    Ok(gt)
}

/// A video's duration fault, placed.
fn invalid_duration(bytes: &[u8], video: &str, e: &JsonError) -> InvalidDuration {
    let (line, column) = line_column(bytes, e.offset);
    InvalidDuration {
        video: video.to_string(),
        line,
        column,
        message: e.message.clone(),
    }
}

/// Reads the top-level object: the videos of `database` (located, not yet
/// read), failing with a hint when there is none. A repeated `database`
/// keeps the last one (with a warning), as Python's `json` does.
fn top_level<'a>(
    bytes: &'a [u8],
    file: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<RawGtVideo<'a>>, Error> {
    let err = |e: JsonError| syntax(bytes, file, e);
    let mut p = Parser::new(bytes, 0);
    p.begin_object("a JSON object at the top level")
        .map_err(err)?;
    let mut first = true;
    let mut raw: Vec<RawGtVideo> = Vec::new();
    let mut found_database = false;
    let mut has_results = false;
    let mut database_warnings = Vec::new();
    while let Some(key) = p.next_key(&mut first).map_err(err)? {
        if key == "database" {
            if found_database {
                let key_at = p.key_at;
                warnings.push(repeated_top_level_key(bytes, file, "database", key_at));
            }
            found_database = true;
            (raw, database_warnings) = (Vec::new(), Vec::new());
            database(&mut p, &mut raw, &mut database_warnings, bytes, file)?;
        } else {
            has_results |= key == "results";
            p.skip_value().map_err(err)?;
        }
    }
    p.end().map_err(err)?;
    if found_database {
        warnings.extend(database_warnings);
        return Ok(raw);
    }
    let hint = if has_results {
        " It has \"results\": this looks like a submission; the ground truth comes first (GT PRED)."
    } else {
        ""
    };
    Err(Error::Content {
        file: file.into(),
        message: format!(
            "no \"database\" key at the top level, so this is not a ground-truth file in the \
             ActivityNet format ({{\"database\": {{VIDEO: {{\"subset\": ..., \"annotations\": [...]}}}}}}).{hint}"
        ),
    })
}

/// The error for a subset without videos, listing the subsets there are.
fn no_such_subset(file: &str, subset: &str, subsets: &[(String, usize)]) -> Error {
    let present: Vec<String> = subsets
        .iter()
        .map(|(s, n)| format!("{s} ({n} video{})", if *n == 1 { "" } else { "s" }))
        .collect();
    Error::Content {
        file: file.into(),
        message: format!(
            "no video of subset \"{subset}\"; the file has: {}. Choose one with --subset.",
            if present.is_empty() {
                "no videos at all".to_string()
            } else {
                present.join(", ")
            }
        ),
    }
}

/// Reads a video's `annotations` array.
fn annotations(
    q: &mut Parser,
    video: &str,
    labels: &mut Labels,
    reversed: &mut Reversed,
) -> Result<Vec<GtInstance>, JsonError> {
    let mut instances = Vec::new();
    let vpath = || format!("database[\"{video}\"].annotations");
    q.begin_array("an array of annotations")
        .map_err(within(vpath))?;
    let mut first = true;
    let mut n = 0usize;
    while q.next_element(&mut first)? {
        let path = || format!("database[\"{video}\"].annotations[{n}]");
        let obj_at = q.pos;
        q.begin_object("an object {\"segment\": [s, e], \"label\": NAME}")
            .map_err(within(path))?;
        let mut firstk = true;
        let mut seg = None;
        let mut label: Option<Cow<str>> = None;
        while let Some(k) = q.next_key_among(&mut firstk, &["segment", "label"])? {
            match k.as_ref() {
                "segment" => seg = Some(segment(q, &path)?),
                "label" => {
                    label = Some(q.string().map_err(within(|| format!("{}.label", path())))?)
                }
                _ => q.skip_value()?,
            }
        }
        let missing = |field: &str| JsonError {
            offset: obj_at,
            message: format!("{} has no \"{field}\"", path()),
        };
        let seg = seg.ok_or_else(|| missing("segment"))?;
        let label = label.ok_or_else(|| missing("label"))?;
        if seg[0] > seg[1] {
            reversed.count += 1;
            if reversed.first.is_empty() {
                reversed.first = path();
            }
        }
        instances.push(GtInstance {
            segment: seg,
            label: labels.id(&label),
        });
        n += 1;
    }
    Ok(instances)
}

/// Moves past an `annotations` array in the usual layout, `[{"segment":
/// [s, e], "label": NAME}, ...]` with Python's default separators, checking
/// it as [`Parser::skip_value`] does (`true`); for anything else, the
/// parser stays where it was (`false`) and the general skip takes it.
fn skip_usual_annotations(p: &mut Parser) -> bool {
    let start = p.pos;
    let skipped = (|| {
        if !p.at(b"[") {
            return Some(false);
        }
        p.pos += 1;
        if p.at(b"]") {
            p.pos += 1;
            return Some(true);
        }
        loop {
            if !p.at(b"{\"segment\": [") {
                return Some(false);
            }
            p.pos += 13;
            p.skip_number().ok()?;
            if !p.at(b", ") {
                return Some(false);
            }
            p.pos += 2;
            p.skip_number().ok()?;
            if !p.at(b"], \"label\": \"") {
                return Some(false);
            }
            p.pos += 12;
            p.skip_string().ok()?;
            if p.at(b"}, {") {
                p.pos += 3;
            } else if p.at(b"}]") {
                p.pos += 2;
                return Some(true);
            } else {
                return Some(false);
            }
        }
    })()
    .unwrap_or(false);
    if !skipped {
        p.pos = start;
    }
    skipped
}

/// Reads one entry of `database` (its fields located, annotations skipped).
fn database_video<'a>(p: &mut Parser<'a>, id: Cow<'a, str>) -> Result<RawGtVideo<'a>, JsonError> {
    let key_at = p.key_at;
    let path = || format!("database[\"{id}\"]");
    p.begin_object("an object {\"subset\": ..., \"annotations\": [...]}")
        .map_err(within(path))?;
    let mut v = RawGtVideo {
        id: id.clone(),
        key_at,
        subset: None,
        annotations_at: None,
        duration: None,
        duration_fault: None,
    };
    let mut firstk = true;
    while let Some(k) = p.next_key_among(&mut firstk, &["subset", "annotations", "duration"])? {
        match k.as_ref() {
            "subset" => {
                v.subset = Some(
                    p.string()
                        .map_err(within(|| format!("{}.subset", path())))?,
                )
            }
            "annotations" => {
                p.peek();
                v.annotations_at = Some(p.pos);
                if !skip_usual_annotations(p) {
                    p.skip_value()?;
                }
            }
            "duration" => duration(p, &mut v, &path)?,
            _ => p.skip_value()?,
        }
    }
    Ok(v)
}

/// Reads a video's `duration`: a positive finite number is kept; `null`
/// is no duration; anything else is kept as a fault (with no duration),
/// which only the diagnosis reports: the official evaluation ignores
/// durations.
fn duration(p: &mut Parser, v: &mut RawGtVideo, path: &dyn Fn() -> String) -> JResult<()> {
    let kind = p.describe_here();
    let at = p.pos;
    let d = match kind.as_str() {
        "a number" => p.number("a number")?,
        _ => p.skip_value().map(|()| f64::NAN)?,
    };
    if d.is_finite() && d > 0.0 {
        v.duration = Some(d);
    } else if kind != "null" {
        let text = String::from_utf8_lossy(&p.bytes[at..p.pos]);
        let shown: String = text.chars().take(40).collect();
        let more = if shown.len() < text.len() { "..." } else { "" };
        v.duration_fault = Some(p.error_at(
            at,
            format!(
                "{}.duration is {shown}{more}; it must be a positive finite number of seconds (or null)",
                path()
            ),
        ));
    }
    Ok(())
}

/// Reads `database`: every video located; a repeated key keeps its first
/// place and its last value (with a warning), as Python's `json` does.
fn database<'a>(
    p: &mut Parser<'a>,
    raw: &mut Vec<RawGtVideo<'a>>,
    warnings: &mut Vec<String>,
    bytes: &[u8],
    file: &str,
) -> Result<(), Error> {
    let err = |e: JsonError| syntax(bytes, file, e);
    p.begin_object("an object of videos as the value of \"database\"")
        .map_err(err)?;
    let mut index: HashMap<Cow<'a, str>, usize> =
        HashMap::with_capacity_and_hasher(bytes.len() / 128, Default::default());
    let mut first = true;
    while let Some(id) = p.next_key(&mut first).map_err(err)? {
        let mut v = database_video(p, id.clone()).map_err(err)?;
        match index.get(&id) {
            Some(&i) => {
                let (line, _) = line_column(bytes, v.key_at);
                warnings.push(format!(
                    "{file}:{line}: video \"{id}\" appears twice in \"database\"; the last one \
                     is used (in the place of the first), as Python's json does"
                ));
                v.key_at = raw[i].key_at;
                raw[i] = v;
            }
            None => {
                index.insert(id, raw.len());
                raw.push(v);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ground_truth_duplicates_and_reversed_segments_warn() {
        let gt = ground_truth(
            br#"{"database": {
                "a": {"subset": "validation", "annotations": [{"segment": [5, 1], "label": "x"}]},
                "b": {"annotations": [{"segment": [0, 1], "label": "y"}], "subset": "validation"},
                "a": {"subset": "validation", "annotations": [{"segment": [0, 2], "label": "z"}]}}}"#,
            "gt.json",
            "validation",
        )
        .unwrap();
        let ids: Vec<&str> = gt.videos.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(gt.labels, ["z", "y"]);
        assert!(gt
            .warnings
            .iter()
            .any(|w| w.contains("gt.json:4: video \"a\" appears twice")));
        // The reversed segment was in the replaced value.
        assert!(!gt.warnings.iter().any(|w| w.contains("reversed")));
        let err = ground_truth(
            br#"{"database": {"a": {"subset": "validation", "annotations": [{"segment": [0, 1]}]}}}"#,
            "gt.json",
            "validation",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("database[\"a\"].annotations[0] has no \"label\""),
            "{err}"
        );
    }

    #[test]
    fn usual_annotations_are_skipped_as_any_value() {
        // Each array, then more text: skipped by the usual-layout skipper
        // (or left to the general skip) to where the general skip ends,
        // and refused where the general skip fails.
        let cases = [
            r#"[]"#,
            r#"[{"segment": [6.195294851794072, 77.73085420904837], "label": "Ballet"}]"#,
            r#"[{"segment": [0.01, 12.5], "label": "A"}, {"segment": [3, 4], "label": "B \"q\" \u00e9"}]"#,
            r#"[{"segment": [1e2, -0.5], "label": "x"}, {"segment": [1.5, 2.5], "label": "y"}]"#,
            r#"[{"segment": [1.5, 2.5], "label": "x", "extra": [1]}]"#,
            r#"[{"label": "x", "segment": [1.5, 2.5]}]"#,
            r#"[ {"segment": [1.5, 2.5], "label": "x"} ]"#,
            r#"[{"segment": [1.5, 2.5, 3.5], "label": "x"}]"#,
            r#"[{"segment": [01.5, 2.5], "label": "x"}]"#,
            r#"[{"segment": [1.5, 2.5], "label": "x\q"}]"#,
            r#"[{"segment": [1.5, 2.5], "label": "x"},]"#,
            r#"[{"segment": [1.5, 2.5], "label": "x"}"#,
            r#"[{"segment": [1.5, 2.5], "label": 7}]"#,
        ];
        let tail = r#", "subset": "validation", "duration": 12.25}, "v2": {}}"#;
        for case in cases {
            let text = format!(r#"{{"v": {{"annotations": {case}{tail}"#);
            let at = text.find('[').unwrap();
            let mut general = Parser::new(text.as_bytes(), at);
            let want = general.skip_value().map(|()| general.pos);
            let mut p = Parser::new(text.as_bytes(), at);
            if skip_usual_annotations(&mut p) {
                assert_eq!(want.as_ref().ok(), Some(&p.pos), "{case}");
            } else {
                assert_eq!(p.pos, at, "{case}");
            }
        }
        // The usual layouts themselves take the fast path.
        for case in &cases[..4] {
            let text = format!("{case}{tail}");
            assert!(
                skip_usual_annotations(&mut Parser::new(text.as_bytes(), 0)),
                "{case}"
            );
        }
    }

    #[test]
    fn reversed_ground_truth_segments_are_counted() {
        let gt = ground_truth(
            br#"{"database": {"a": {"subset": "validation", "duration": 9.5, "annotations": [
                {"segment": [5, 1], "label": "x"}, {"segment": [0, 1], "label": "x"},
                {"segment": [3, 2], "label": "y"}]}}}"#,
            "gt.json",
            "validation",
        )
        .unwrap();
        assert_eq!(gt.videos[0].duration, Some(9.5));
        assert!(
            gt.warnings
                .iter()
                .any(|w| w.contains("2 ground-truth segment(s) are reversed")
                    && w.contains("database[\"a\"].annotations[0]")),
            "{:?}",
            gt.warnings
        );
    }
}
