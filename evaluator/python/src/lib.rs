//! `tcanet_eval._native`: the extension module under the `tcanet_eval`
//! Python package. It loads inputs (files through `tcanet-evaluator`'s
//! readers, in-memory dicts walked in [`from_dict`]), holds them as Python
//! objects, and evaluates with the GIL released. The public Python API
//! (functions returning the `--json` dict, drop-in `ANETproposal` /
//! `ANETdetection` with numpy arrays) is in `python/tcanet_eval/`.

mod errors;
mod from_dict;

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use tcanet_evaluator::{
    evaluate_detections as eval_detections, evaluate_proposals as eval_proposals,
    preset_thresholds, threshold_list, DetectionOptions, DetectionSet, GroundTruth,
    ProposalOptions, ProposalSet, VideoResults,
};

use errors::to_py;

/// Columns of a table, one row per instance: the video ids with the number
/// of rows of each (for `numpy.repeat`), then float64 / int64 columns as
/// native-endian bytes (for `numpy.frombuffer`).
type Columns<'py> = (Vec<String>, Vec<u64>, Vec<Bound<'py, PyBytes>>);

fn f64_bytes<'py>(py: Python<'py>, values: impl Iterator<Item = f64>) -> Bound<'py, PyBytes> {
    let bytes: Vec<u8> = values.flat_map(f64::to_ne_bytes).collect();
    PyBytes::new(py, &bytes)
}

fn i64_bytes<'py>(py: Python<'py>, values: impl Iterator<Item = i64>) -> Bound<'py, PyBytes> {
    let bytes: Vec<u8> = values.flat_map(i64::to_ne_bytes).collect();
    PyBytes::new(py, &bytes)
}

/// The ground truth of one subset, loaded once (from a file or a dict).
#[pyclass(frozen, module = "tcanet_eval._native", name = "GroundTruth")]
struct PyGroundTruth {
    inner: GroundTruth,
}

#[pymethods]
impl PyGroundTruth {
    /// Reads a ground-truth file and keeps `subset`.
    #[staticmethod]
    fn from_path(py: Python<'_>, path: PathBuf, subset: &str) -> PyResult<Self> {
        let inner = py
            .detach(|| GroundTruth::from_path(&path, subset))
            .map_err(to_py)?;
        Ok(PyGroundTruth { inner })
    }

    /// Walks `{"database": ...}` (Python objects) and keeps `subset`;
    /// `source` names it in messages.
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyDict>, subset: &str, source: &str) -> PyResult<Self> {
        let inner = from_dict::ground_truth(data, subset, source)?;
        Ok(PyGroundTruth { inner })
    }

    /// Where it came from (a path or the argument's name), for messages.
    #[getter]
    fn source(&self) -> &str {
        &self.inner.source
    }

    /// The subset kept.
    #[getter]
    fn subset(&self) -> &str {
        &self.inner.subset
    }

    /// Class names in order of first appearance in the subset (the official
    /// code's class indices).
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.inner.labels.clone()
    }

    /// Non-fatal findings of reading (reversed segments, duplicate keys).
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings.clone()
    }

    /// Annotated instances of the subset.
    #[getter]
    fn n_instances(&self) -> usize {
        self.inner.n_instances()
    }

    /// Videos of the subset with at least one annotation (those evaluated).
    #[getter]
    fn n_annotated_videos(&self) -> usize {
        self.inner
            .videos
            .iter()
            .filter(|v| !v.instances.is_empty())
            .count()
    }

    /// `(video ids, rows per video, [t-start, t-end, label])`, one row per
    /// instance in file order; labels index [`Self::labels`].
    fn columns<'py>(&self, py: Python<'py>) -> Columns<'py> {
        let videos = &self.inner.videos;
        let all = || videos.iter().flat_map(|v| v.instances.iter());
        (
            videos.iter().map(|v| v.id.clone()).collect(),
            videos.iter().map(|v| v.instances.len() as u64).collect(),
            vec![
                f64_bytes(py, all().map(|g| g.segment[0])),
                f64_bytes(py, all().map(|g| g.segment[1])),
                i64_bytes(py, all().map(|g| g.label as i64)),
            ],
        )
    }
}

fn video_ids<T>(videos: &[VideoResults<T>]) -> (Vec<String>, Vec<u64>) {
    (
        videos.iter().map(|v| v.video.clone()).collect(),
        videos.iter().map(|v| v.entries.len() as u64).collect(),
    )
}

/// A proposal submission, loaded once (from a file or a dict).
#[pyclass(frozen, module = "tcanet_eval._native", name = "Proposals")]
struct PyProposals {
    inner: ProposalSet,
}

#[pymethods]
impl PyProposals {
    /// Reads a proposal (or detection) file.
    #[staticmethod]
    fn from_path(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py.detach(|| ProposalSet::from_path(&path)).map_err(to_py)?;
        Ok(PyProposals { inner })
    }

    /// Walks `{"results": ...}` (Python objects); `source` names it in messages.
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyDict>, source: &str) -> PyResult<Self> {
        let inner = from_dict::proposals(data, source)?;
        Ok(PyProposals { inner })
    }

    /// Where it came from, for messages.
    #[getter]
    fn source(&self) -> &str {
        &self.inner.source
    }

    /// Non-fatal findings of reading.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings.clone()
    }

    /// Number of proposals (all videos).
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// `(video ids, rows per video, [t-start, t-end, score])` in file order.
    fn columns<'py>(&self, py: Python<'py>) -> Columns<'py> {
        let videos = &self.inner.videos;
        let all = || videos.iter().flat_map(|v| v.entries.iter());
        let (ids, counts) = video_ids(videos);
        (
            ids,
            counts,
            vec![
                f64_bytes(py, all().map(|p| p.segment[0])),
                f64_bytes(py, all().map(|p| p.segment[1])),
                f64_bytes(py, all().map(|p| p.score)),
            ],
        )
    }
}

/// A detection submission, loaded once (from a file or a dict).
#[pyclass(frozen, module = "tcanet_eval._native", name = "Detections")]
struct PyDetections {
    inner: DetectionSet,
}

// Repeats PyProposals' loaders and getters on purpose: a #[pyclass] cannot be generic.
#[pymethods]
impl PyDetections {
    /// Reads a detection file.
    #[staticmethod]
    fn from_path(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py
            .detach(|| DetectionSet::from_path(&path))
            .map_err(to_py)?;
        Ok(PyDetections { inner })
    }

    /// Walks `{"results": ...}` (Python objects); `source` names it in messages.
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyDict>, source: &str) -> PyResult<Self> {
        let inner = from_dict::detections(data, source)?;
        Ok(PyDetections { inner })
    }

    /// Where it came from, for messages.
    #[getter]
    fn source(&self) -> &str {
        &self.inner.source
    }

    /// The submission's class names, in order of first appearance.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.inner.labels.clone()
    }

    /// Non-fatal findings of reading.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings.clone()
    }

    /// Number of detections (all videos).
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Detections per class of [`Self::labels`].
    fn label_counts(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.inner.labels.len()];
        for d in self.inner.videos.iter().flat_map(|v| v.entries.iter()) {
            counts[d.label] += 1;
        }
        counts
    }

    /// `(video ids, rows per video, [t-start, t-end, label, score])` in
    /// file order; labels index [`Self::labels`].
    fn columns<'py>(&self, py: Python<'py>) -> Columns<'py> {
        let videos = &self.inner.videos;
        let all = || videos.iter().flat_map(|v| v.entries.iter());
        let (ids, counts) = video_ids(videos);
        (
            ids,
            counts,
            vec![
                f64_bytes(py, all().map(|d| d.segment[0])),
                f64_bytes(py, all().map(|d| d.segment[1])),
                i64_bytes(py, all().map(|d| d.label as i64)),
                f64_bytes(py, all().map(|d| d.score)),
            ],
        )
    }
}

/// Runs one evaluation with the GIL released and returns the report as
/// `tcanet-eval --json` writes it (same serializer) with its warnings.
fn evaluate_to_json<R: serde::Serialize + Send>(
    py: Python<'_>,
    evaluate: impl FnOnce() -> Result<R, tcanet_evaluator::Error> + Send,
    warnings: impl FnOnce(R) -> Vec<String>,
) -> PyResult<(String, Vec<String>)> {
    let report = py.detach(evaluate).map_err(to_py)?;
    let json = serde_json::to_string(&report)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("report to JSON: {e}")))?;
    Ok((json, warnings(report)))
}

/// Evaluates proposals (AR@AN, AUC); returns the `--json` text and the
/// warnings. `tiou` None means the ActivityNet thresholds.
#[pyfunction]
#[pyo3(signature = (gt, pred, tiou, max_avg_proposals))]
fn evaluate_proposals(
    py: Python<'_>,
    gt: &PyGroundTruth,
    pred: &PyProposals,
    tiou: Option<Vec<f64>>,
    max_avg_proposals: f64,
) -> PyResult<(String, Vec<String>)> {
    let defaults = ProposalOptions::default();
    let opts = ProposalOptions {
        max_avg_proposals,
        tiou_thresholds: tiou.unwrap_or(defaults.tiou_thresholds),
    };
    evaluate_to_json(
        py,
        || eval_proposals(&gt.inner, &pred.inner, &opts),
        |r| r.warnings,
    )
}

/// Evaluates detections (AP per class, mAP); returns the `--json` text and
/// the warnings. `tiou` None means the ActivityNet thresholds.
#[pyfunction]
#[pyo3(signature = (gt, pred, tiou, ignore_unknown_labels))]
fn evaluate_detections(
    py: Python<'_>,
    gt: &PyGroundTruth,
    pred: &PyDetections,
    tiou: Option<Vec<f64>>,
    ignore_unknown_labels: bool,
) -> PyResult<(String, Vec<String>)> {
    let defaults = DetectionOptions::default();
    let opts = DetectionOptions {
        ignore_unknown_labels,
        tiou_thresholds: tiou.unwrap_or(defaults.tiou_thresholds),
    };
    evaluate_to_json(
        py,
        || eval_detections(&gt.inner, &pred.inner, &opts),
        |r| r.warnings,
    )
}

/// The CLI's advice after a bad `--tiou`, kept the same here.
const THRESHOLDS_HINT: &str = "use a list like 0.3,0.5,0.7 or a range like 0.5:0.95:0.05";

/// ValueError: `value` of `argument` is not a threshold list, because `why`.
fn bad_thresholds(argument: &str, value: &str, why: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!(
        "invalid value {value} for {argument}: {why}; {THRESHOLDS_HINT}"
    ))
}

/// Thresholds from text, as the CLI's `--tiou` / `--preset`: a preset name
/// (`activitynet`, `thumos14`), a list (`0.3,0.5,0.7`) or a range with the
/// stop included (`0.5:0.95:0.05`). Errors name `argument`.
#[pyfunction]
#[pyo3(signature = (text, argument))]
fn thresholds_from_text(text: &str, argument: &str) -> PyResult<Vec<f64>> {
    let numeric = text.contains([',', ':']) || text.trim().parse::<f64>().is_ok();
    if numeric {
        threshold_list(text).map_err(|why| bad_thresholds(argument, &format!("'{text}'"), why))
    } else {
        preset_thresholds(text.trim())
            .map_err(|e| PyValueError::new_err(format!("{argument}: {e}")))
    }
}

/// Thresholds given as numbers (a list, an array, one number), checked by
/// the CLI's own rule and message: the values go through the very parser of
/// `--tiou` (`threshold_list`), written in the shortest form that reads back
/// as the same f64 (Rust's `Display`), so the rule (each in (0, 1], finite,
/// at most 10,000) is defined once. Errors name `argument`.
#[pyfunction]
#[pyo3(signature = (values, argument))]
fn check_thresholds(values: Vec<f64>, argument: &str) -> PyResult<Vec<f64>> {
    let shown = || {
        let head: Vec<String> = values.iter().take(10).map(|v| format!("{v:?}")).collect();
        let more = if values.len() > 10 {
            format!(", ... ({} values)", values.len())
        } else {
            String::new()
        };
        format!("[{}{more}]", head.join(", "))
    };
    if values.is_empty() {
        return Err(bad_thresholds(argument, "[]", "no tIoU threshold given"));
    }
    let text: Vec<String> = values.iter().map(f64::to_string).collect();
    let parsed =
        threshold_list(&text.join(",")).map_err(|why| bad_thresholds(argument, &shown(), why))?;
    debug_assert!(parsed
        .iter()
        .zip(&values)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    Ok(parsed)
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyGroundTruth>()?;
    m.add_class::<PyProposals>()?;
    m.add_class::<PyDetections>()?;
    m.add_function(wrap_pyfunction!(evaluate_proposals, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate_detections, m)?)?;
    m.add_function(wrap_pyfunction!(thresholds_from_text, m)?)?;
    m.add_function(wrap_pyfunction!(check_thresholds, m)?)?;
    Ok(())
}
