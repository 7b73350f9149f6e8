//! In-memory inputs: the JSON structure as Python objects (what `json.load`
//! returns, or what a training loop builds) walked directly into the
//! evaluator's types, without writing JSON text. The checks are the file
//! readers' (two finite numbers per segment, a finite score, a string
//! label, the required keys), and messages name the argument, video and
//! field the same way: `pred (dict): results["v_a"][0].score is not a
//! finite number`.
//!
//! Numbers may be any real Python number (int, float, numpy scalars);
//! segments any list, tuple or 1-D array of two numbers.
//!
//! Converting a number may run Python code (`__float__`, `__index__`) that
//! changes the dicts and lists being walked, as may another thread while
//! it runs. So every dict and list is walked over a snapshot taken first
//! (`dict.items()`, a tuple of the list), never over the live object, and
//! one whose size differs once walked is a `RuntimeError` (`pred (dict):
//! results changed size during evaluation`), as Python's own iteration
//! raises: never a panic, nor a score of a half-changed input.

use pyo3::exceptions::{PyOverflowError, PyRuntimeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString, PyTuple};
use tcanet_evaluator::{Detection, DetectionSet, Error, GroundTruth, Proposal, ProposalSet};

use crate::errors::to_py;

/// Where values come from (`gt (dict)`, `pred (dict)`), for messages.
struct Walker<'a> {
    source: &'a str,
}

/// The first of several reversed segments (start > end), for one warning.
#[derive(Default)]
struct Reversed {
    count: usize,
    first: Option<String>,
}

impl Reversed {
    fn check(&mut self, segment: [f64; 2], path: impl FnOnce() -> String) {
        if segment[0] > segment[1] {
            self.count += 1;
            self.first.get_or_insert_with(path);
        }
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an object of unknown type".into())
}

impl Walker<'_> {
    fn fail(&self, message: String) -> PyErr {
        to_py(Error::Content {
            file: self.source.to_string(),
            message,
        })
    }

    /// RuntimeError unless `obj` still has the `len` items of its snapshot.
    fn unchanged(&self, obj: &Bound<'_, PyAny>, len: usize, path: &str) -> PyResult<()> {
        match obj.len() {
            Ok(now) if now == len => Ok(()),
            _ => Err(PyRuntimeError::new_err(format!(
                "{}: {path} changed size during evaluation",
                self.source
            ))),
        }
    }

    /// The items of `dict`, snapshot (`dict.items()`): safe whatever the
    /// walk of its values does to it.
    fn items<'py>(
        &self,
        dict: &Bound<'py, PyDict>,
    ) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        dict.items()
            .iter()
            .map(|item| item.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>())
            .collect()
    }

    fn expected(&self, path: &str, what: &str, obj: &Bound<'_, PyAny>) -> PyErr {
        self.fail(format!("{path}: expected {what}, found {}", type_name(obj)))
    }

    fn dict<'py>(
        &self,
        obj: &Bound<'py, PyAny>,
        path: impl FnOnce() -> String,
        what: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        obj.cast::<PyDict>()
            .cloned()
            .map_err(|_| self.expected(&path(), what, obj))
    }

    /// `obj[key]`, or None when absent.
    fn get<'py>(
        &self,
        obj: &Bound<'py, PyDict>,
        key: &Bound<'py, PyString>,
        path: impl FnOnce() -> String,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        obj.get_item(key)
            .map_err(|e| self.fail(format!("{}.{key}: {e}", path())))
    }

    fn string(&self, obj: &Bound<'_, PyAny>, path: impl Fn() -> String) -> PyResult<String> {
        let s = obj
            .cast::<PyString>()
            .map_err(|_| self.expected(&path(), "a string", obj))?;
        s.to_cow()
            .map(|c| c.into_owned())
            .map_err(|e| self.fail(format!("{}: {e}", path())))
    }

    fn number(&self, obj: &Bound<'_, PyAny>, path: impl Fn() -> String) -> PyResult<f64> {
        if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyString>() {
            return Err(self.expected(&path(), "a number", obj));
        }
        // An int too large for a float64 (2**1024 and up) fails the
        // conversion with OverflowError: like 1e400 in a file, not finite.
        let v: f64 = match obj.extract() {
            Ok(v) => v,
            Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => f64::INFINITY,
            Err(_) => return Err(self.expected(&path(), "a number", obj)),
        };
        if !v.is_finite() {
            return Err(self.fail(format!("{} is not a finite number", path())));
        }
        Ok(v)
    }

    /// `[start, end]`: a list, tuple or array of two finite numbers.
    fn segment(&self, obj: &Bound<'_, PyAny>, path: &dyn Fn() -> String) -> PyResult<[f64; 2]> {
        let seg_path = || format!("{}.segment", path());
        if obj.is_instance_of::<PyString>()
            || obj.is_instance_of::<PyBytes>()
            || obj.is_instance_of::<PyDict>()
        {
            return Err(self.expected(&seg_path(), "an array [start, end]", obj));
        }
        let n = obj
            .len()
            .map_err(|_| self.expected(&seg_path(), "an array [start, end]", obj))?;
        if n != 2 {
            return Err(self.fail(format!(
                "{} has {n} value(s); it must be two finite numbers [start, end]",
                seg_path()
            )));
        }
        let mut out = [0.0; 2];
        for (i, slot) in out.iter_mut().enumerate() {
            let item_path = || format!("{}.segment[{i}]", path());
            let item = obj
                .get_item(i)
                .map_err(|e| self.fail(format!("{}: {e}", item_path())))?;
            *slot = self.number(&item, item_path)?;
        }
        Ok(out)
    }

    /// Calls `f(i, item)` for each item of a list (a snapshot of it) or tuple.
    fn each<'py>(
        &self,
        obj: &Bound<'py, PyAny>,
        path: impl Fn() -> String,
        what: &str,
        mut f: impl FnMut(usize, &Bound<'py, PyAny>) -> PyResult<()>,
    ) -> PyResult<()> {
        let items = if let Ok(list) = obj.cast::<PyList>() {
            list.to_tuple()
        } else if let Ok(tuple) = obj.cast::<PyTuple>() {
            tuple.clone()
        } else {
            return Err(self.expected(&path(), what, obj));
        };
        for (i, item) in items.iter().enumerate() {
            f(i, &item)?;
        }
        self.unchanged(obj, items.len(), &path())
    }

    fn key(&self, obj: &Bound<'_, PyAny>, within: &str) -> PyResult<String> {
        self.string(obj, || {
            format!(
                "a key of {within} ({})",
                obj.repr().map_or_else(|_| "?".into(), |r| r.to_string())
            )
        })
    }
}

/// A video's annotations: segment and class name, in order.
type Annotations = Vec<([f64; 2], String)>;

/// The ground truth of `subset` from `{"database": {VIDEO: {"subset": ...,
/// "annotations": [{"segment": [s, e], "label": NAME}]}}}`.
pub(crate) fn ground_truth(
    data: &Bound<'_, PyDict>,
    subset: &str,
    source: &str,
) -> PyResult<GroundTruth> {
    let py = data.py();
    let w = Walker { source };
    let Some(db) = w.get(data, intern!(py, "database"), || "top level".into())? else {
        let hint = if data.contains("results").unwrap_or(false) {
            " It has \"results\": this looks like a submission; the ground truth comes first."
        } else {
            ""
        };
        return Err(w.fail(format!(
            "no \"database\" key at the top level, so this is not a ground truth in the \
             ActivityNet format ({{\"database\": {{VIDEO: {{\"subset\": ..., \"annotations\": [...]}}}}}}).{hint}"
        )));
    };
    let db = w.dict(&db, || "database".into(), "an object of videos")?;
    let mut subsets: Vec<(String, usize)> = Vec::new();
    let mut videos: Vec<(String, Annotations)> = Vec::new();
    let mut reversed = Reversed::default();
    let items = w.items(&db)?;
    for (key, value) in &items {
        let id = w.key(key, "\"database\"")?;
        let path = || format!("database[\"{id}\"]");
        let video = w.dict(
            value,
            path,
            "an object {\"subset\": ..., \"annotations\": [...]}",
        )?;
        let Some(s) = w.get(&video, intern!(py, "subset"), path)? else {
            return Err(w.fail(format!("{} has no \"subset\" field", path())));
        };
        let s = w.string(&s, || format!("{}.subset", path()))?;
        match subsets.iter_mut().find(|(name, _)| *name == s) {
            Some((_, n)) => *n += 1,
            None => subsets.push((s.clone(), 1)),
        }
        if s == subset {
            let annotations = annotations(&w, &video, &path, subset, &mut reversed)?;
            videos.push((id, annotations));
        }
    }
    w.unchanged(&db, items.len(), "database")?;
    if videos.is_empty() {
        return Err(no_such_subset(&w, subset, &subsets));
    }
    let mut gt = GroundTruth::from_videos(
        subset,
        videos.iter().map(|(id, anns)| {
            (
                id.as_str(),
                anns.iter().map(|(s, l)| (*s, l.as_str())).collect(),
            )
        }),
    );
    gt.source = source.to_string();
    if let Some(first) = reversed.first {
        gt.warnings.push(format!(
            "{source}: {} ground-truth segment(s) are reversed (start > end), first at {first}; \
             they are used as written, as the official code does",
            reversed.count
        ));
    }
    Ok(gt)
}

/// The `annotations` of a video of the subset.
fn annotations(
    w: &Walker<'_>,
    video: &Bound<'_, PyDict>,
    path: &dyn Fn() -> String,
    subset: &str,
    reversed: &mut Reversed,
) -> PyResult<Annotations> {
    let py = video.py();
    let Some(anns) = w.get(video, intern!(py, "annotations"), path)? else {
        return Err(w.fail(format!(
            "{} (subset {subset}) has no \"annotations\" field",
            path()
        )));
    };
    let mut out = Vec::new();
    let anns_path = || format!("{}.annotations", path());
    w.each(&anns, anns_path, "an array of annotations", |i, ann| {
        let at = || format!("{}[{i}]", anns_path());
        let ann = w.dict(ann, at, "an object {\"segment\": [s, e], \"label\": NAME}")?;
        let missing = |field: &str| w.fail(format!("{} has no \"{field}\"", at()));
        let seg = w
            .get(&ann, intern!(py, "segment"), at)?
            .ok_or_else(|| missing("segment"))?;
        let segment = w.segment(&seg, &at)?;
        let label = w
            .get(&ann, intern!(py, "label"), at)?
            .ok_or_else(|| missing("label"))?;
        let label = w.string(&label, || format!("{}.label", at()))?;
        reversed.check(segment, at);
        out.push((segment, label));
        Ok(())
    })?;
    Ok(out)
}

/// No video of `subset`: say which subsets there are.
fn no_such_subset(w: &Walker<'_>, subset: &str, subsets: &[(String, usize)]) -> PyErr {
    let present: Vec<String> = subsets
        .iter()
        .map(|(s, n)| format!("{s} ({n} video{})", if *n == 1 { "" } else { "s" }))
        .collect();
    w.fail(format!(
        "no video of subset \"{subset}\"; it has: {}. Choose one with subset=.",
        if present.is_empty() {
            "no videos at all".to_string()
        } else {
            present.join(", ")
        }
    ))
}

/// One result of a submission: its segment and score, and the object for
/// any further field.
struct ResultEntry<'py> {
    segment: [f64; 2],
    score: f64,
    object: Bound<'py, PyDict>,
}

/// Walks `{"results": {VIDEO: [{"segment": [s, e], "score": x, ...}]}}`,
/// calling `video(id, entries)` for each video in order.
fn results<'py>(
    data: &Bound<'py, PyDict>,
    w: &Walker<'_>,
    what: &str,
    mut video: impl FnMut(String, Vec<ResultEntry<'py>>) -> PyResult<()>,
) -> PyResult<Reversed> {
    let py = data.py();
    let Some(results) = w.get(data, intern!(py, "results"), || "top level".into())? else {
        let hint = if data.contains("database").unwrap_or(false) {
            " It has \"database\": this looks like a ground truth; the ground truth comes first."
        } else {
            ""
        };
        return Err(w.fail(format!(
            "no \"results\" key at the top level, so this is not a submission \
             ({{\"results\": {{VIDEO: [{{\"segment\": [s, e], \"score\": x}}, ...]}}}}).{hint}"
        )));
    };
    let results = w.dict(&results, || "results".into(), "an object {VIDEO: [...]}")?;
    let mut reversed = Reversed::default();
    let items = w.items(&results)?;
    for (key, value) in &items {
        let id = w.key(key, "\"results\"")?;
        let path = || format!("results[\"{id}\"]");
        let mut entries = Vec::new();
        w.each(value, path, "an array of results", |i, item| {
            let at = || format!("{}[{i}]", path());
            let object = w.dict(item, at, what)?;
            let missing = |field: &str| w.fail(format!("{} has no \"{field}\"", at()));
            let seg = w
                .get(&object, intern!(py, "segment"), at)?
                .ok_or_else(|| missing("segment"))?;
            let segment = w.segment(&seg, &at)?;
            let score = w
                .get(&object, intern!(py, "score"), at)?
                .ok_or_else(|| missing("score"))?;
            let score = w.number(&score, || format!("{}.score", at()))?;
            reversed.check(segment, at);
            entries.push(ResultEntry {
                segment,
                score,
                object,
            });
            Ok(())
        })?;
        video(id, entries)?;
    }
    w.unchanged(&results, items.len(), "results")?;
    Ok(reversed)
}

fn reversed_warning(source: &str, reversed: Reversed) -> Option<String> {
    reversed.first.map(|first| {
        format!(
            "{source}: {} predicted segment(s) are reversed (start > end), first at {first}; \
             they are evaluated as written (tIoU as the official code computes it)",
            reversed.count
        )
    })
}

/// A proposal submission (labels, if any, are ignored).
pub(crate) fn proposals(data: &Bound<'_, PyDict>, source: &str) -> PyResult<ProposalSet> {
    let w = Walker { source };
    let mut set = ProposalSet::new();
    set.source = source.to_string();
    let what = "an object {\"segment\": [s, e], \"score\": x}";
    let reversed = results(data, &w, what, |id, entries| {
        let proposals = entries
            .iter()
            .map(|e| Proposal {
                segment: e.segment,
                score: e.score,
            })
            .collect();
        set.push(id, proposals);
        Ok(())
    })?;
    set.warnings.extend(reversed_warning(source, reversed));
    Ok(set)
}

/// A detection submission: every result needs a string `label`.
pub(crate) fn detections(data: &Bound<'_, PyDict>, source: &str) -> PyResult<DetectionSet> {
    let py = data.py();
    let w = Walker { source };
    let mut set = DetectionSet::new();
    set.source = source.to_string();
    let what = "an object {\"segment\": [s, e], \"score\": x, \"label\": NAME}";
    let reversed = results(data, &w, what, |id, entries| {
        let mut detections = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let at = || format!("results[\"{id}\"][{i}]");
            let Some(label) = w.get(&e.object, intern!(py, "label"), at)? else {
                return Err(w.fail(format!(
                    "{} has no \"label\" (every detection needs one; for class-agnostic \
                     proposals use evaluate_proposals)",
                    at()
                )));
            };
            let name = w.string(&label, || format!("{}.label", at()))?;
            detections.push(Detection {
                segment: e.segment,
                score: e.score,
                label: set.label_id(&name),
            });
        }
        set.push(id, detections);
        Ok(())
    })?;
    set.warnings.extend(reversed_warning(source, reversed));
    Ok(set)
}
