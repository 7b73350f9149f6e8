"""Drop-in replacements for the official ActivityNet evaluation classes.

`ANETproposal` and `ANETdetection` take the official constructors'
arguments and, after `evaluate()`, carry the official attributes with the
same shapes, dtypes and values (recall, avg_recall, proposals_per_video;
ap, mAP, average_mAP), computed by the Rust evaluator. Differences, all
deliberate:

- nothing is fetched from the network: `check_status` is accepted and
  ignored, and `blocked_videos` is always empty;
- the file and prediction arguments may also be dicts (the JSON content);
- for dicts, `ground_truth_fields` / `proposal_fields` / `prediction_fields`
  are checked as the official code does; files are never parsed in Python,
  so for them only "database" / "results" are required;
- `ground_truth`, `proposal` and `prediction` are pandas DataFrames built
  on first access (pandas is needed only then), read-only;
- `report` holds the full result (the dict of evaluate_proposals /
  evaluate_detections, with AUC and AR@k), and every distinct warning is
  issued once as an EvaluationWarning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Dict, List, Optional

import numpy as np

from . import _native
from ._inputs import (
    check_max_proposals,
    load_detections,
    load_ground_truth,
    load_proposals,
    thresholds,
    warn_once,
)


def _require(value: Any, what: str) -> None:
    """The official constructors' check: a falsy argument is an IOError."""
    empty = value is None or (isinstance(value, (str, bytes, Mapping)) and not value)
    if empty:
        raise IOError(f"Please input a valid {what} file.")


def _check_fields(data: Any, fields: List[str], what: str) -> None:
    """The official format check, for dicts (files are read by the evaluator)."""
    if isinstance(data, Mapping):
        missing = [f for f in fields if f not in data]
        if missing:
            raise IOError(f"Please input a valid {what} file. (missing: {', '.join(missing)})")


def _frame(table: Any, names: List[str], dtypes: List[Any]) -> Any:
    """A pandas DataFrame of a native object's columns ('video-id' first)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "this attribute is a pandas DataFrame and pandas is not installed "
            "(pip install pandas); evaluate() does not need it"
        ) from None
    ids, counts, raw = table.columns()
    video = np.repeat(np.array(ids, dtype=object), np.asarray(counts, dtype=np.int64))
    data: Dict[str, Any] = {"video-id": video.tolist()}
    for name, column, dtype in zip(names, raw, dtypes):
        data[name] = np.frombuffer(column, dtype=dtype).copy()
    return pd.DataFrame(data)


class _Base:
    """What both classes share: the ground truth and the lazy DataFrames."""

    GROUND_TRUTH_FIELDS = ["database", "taxonomy", "version"]

    def _load_ground_truth(self, ground_truth: Any, fields: List[str], subset: str) -> None:
        _check_fields(ground_truth, fields, "ground truth")
        self._gt = load_ground_truth(ground_truth, subset, name="ground_truth")
        self.activity_index = {name: i for i, name in enumerate(self._gt.labels)}
        self._frames: Dict[str, Any] = {}

    @property
    def ground_truth(self) -> Any:
        """DataFrame of the subset's instances: video-id, t-start, t-end, label."""
        if "gt" not in self._frames:
            self._frames["gt"] = _frame(
                self._gt, ["t-start", "t-end", "label"], [np.float64, np.float64, np.int64]
            )
        return self._frames["gt"]

    def _print_init(self, subset: str, what: str, count: int) -> None:
        print("[INIT] Loaded annotations from {} subset.".format(subset))
        print("\tNumber of ground truth instances: {}".format(self._gt.n_instances))
        print("\tNumber of {}: {}".format(what, count))
        print("\tFixed threshold for tiou score: {}".format(self.tiou_thresholds))


class ANETproposal(_Base):
    """AR@AN of a proposal file, as the official ANETproposal.

    After evaluate(): recall (float64 [thresholds x 100]), avg_recall
    ([100], recall.mean(axis=0)), proposals_per_video ([100], the AN of each
    point), and report (the evaluate_proposals dict, with "AUC").
    max_avg_nr_proposals None (or 0) keeps every proposal, as the official
    code: M = number of proposals / number of annotated videos.
    """

    PROPOSAL_FIELDS = ["results", "version", "external_data"]

    def __init__(
        self,
        ground_truth_filename: Any = None,
        proposal_filename: Any = None,
        ground_truth_fields: List[str] = _Base.GROUND_TRUTH_FIELDS,
        proposal_fields: List[str] = PROPOSAL_FIELDS,
        tiou_thresholds: Any = np.linspace(0.5, 0.95, 10),
        max_avg_nr_proposals: Optional[float] = None,
        subset: str = "validation",
        verbose: bool = False,
        check_status: bool = True,
    ) -> None:
        _require(ground_truth_filename, "ground truth")
        _require(proposal_filename, "proposal")
        # Checked here to fail early, and again by evaluate() (they may change).
        thresholds(tiou_thresholds, "tiou_thresholds")
        check_max_proposals(max_avg_nr_proposals, "max_avg_nr_proposals", zero_keeps_all=True)
        self.subset = subset
        self.tiou_thresholds = tiou_thresholds
        self.max_avg_nr_proposals = max_avg_nr_proposals
        self.verbose = verbose
        self.gt_fields = ground_truth_fields
        self.pred_fields = proposal_fields
        self.recall = None
        self.avg_recall = None
        self.proposals_per_video = None
        self.report: Optional[Dict[str, Any]] = None
        self.check_status = check_status
        self.blocked_videos: List[str] = []
        self._load_ground_truth(ground_truth_filename, ground_truth_fields, subset)
        _check_fields(proposal_filename, proposal_fields, "proposal")
        self._proposals = load_proposals(proposal_filename, name="proposal")
        if self.verbose:
            self._print_init(subset, "proposals", len(self._proposals))

    @property
    def proposal(self) -> Any:
        """DataFrame of all proposals: video-id, t-start, t-end, score."""
        if "proposal" not in self._frames:
            self._frames["proposal"] = _frame(
                self._proposals, ["t-start", "t-end", "score"], [np.float64] * 3
            )
        return self._frames["proposal"]

    def evaluate(self) -> None:
        """Computes recall, avg_recall, proposals_per_video (and report)."""
        t = thresholds(self.tiou_thresholds, "tiou_thresholds")
        m = check_max_proposals(
            self.max_avg_nr_proposals, "max_avg_nr_proposals", zero_keeps_all=True
        )
        if m is None:
            n_proposals, n_videos = len(self._proposals), self._gt.n_annotated_videos
            # With nothing to divide, any M lets the evaluator name the problem.
            m = n_proposals / n_videos if n_proposals and n_videos else 1.0
        text, warnings = _native.evaluate_proposals(self._gt, self._proposals, t, float(m))
        warn_once(warnings, stacklevel=2)
        report = json.loads(text)
        self.recall = np.array(report["recall"], dtype=np.float64)
        self.avg_recall = self.recall.mean(axis=0)
        self.proposals_per_video = np.array(report["average_nr_proposals"], dtype=np.float64)
        self.report = report
        if self.verbose:
            print("[RESULTS] Performance on ActivityNet proposal task.")
            print("\tArea Under the AR vs AN curve: {}%".format(report["AUC"]))


class ANETdetection(_Base):
    """mAP of a detection file, as the official ANETdetection.

    After evaluate(): ap (float64 [thresholds x classes], classes in the
    official order: first appearance in the ground truth's subset, see
    activity_index), mAP (ap.mean(axis=1)), average_mAP (mAP.mean()), and
    report (the evaluate_detections dict). Like the official code, it prints
    a line for each class without any prediction, and a prediction label
    that is not a class of the ground truth is an error (raised here at
    construction, as ValueError).
    """

    PREDICTION_FIELDS = ["results", "version", "external_data"]

    def __init__(
        self,
        ground_truth_filename: Any = None,
        prediction_filename: Any = None,
        ground_truth_fields: List[str] = _Base.GROUND_TRUTH_FIELDS,
        prediction_fields: List[str] = PREDICTION_FIELDS,
        tiou_thresholds: Any = np.linspace(0.5, 0.95, 10),
        subset: str = "validation",
        verbose: bool = False,
        check_status: bool = True,
    ) -> None:
        _require(ground_truth_filename, "ground truth")
        _require(prediction_filename, "prediction")
        thresholds(tiou_thresholds, "tiou_thresholds")  # early; again by evaluate()
        self.subset = subset
        self.tiou_thresholds = tiou_thresholds
        self.verbose = verbose
        self.gt_fields = ground_truth_fields
        self.pred_fields = prediction_fields
        self.ap = None
        self.report: Optional[Dict[str, Any]] = None
        self.check_status = check_status
        self.blocked_videos: List[str] = []
        self._load_ground_truth(ground_truth_filename, ground_truth_fields, subset)
        _check_fields(prediction_filename, prediction_fields, "prediction")
        self._detections = load_detections(prediction_filename, name="prediction")
        unknown = [name for name in self._detections.labels if name not in self.activity_index]
        if unknown:
            shown = ", ".join(repr(name) for name in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise ValueError(
                f"{self._detections.source}: {len(unknown)} label(s) of the predictions are not "
                f'classes of the ground truth\'s subset "{subset}": {shown}{more} (the official '
                "code stops on these too; evaluate_detections(..., ignore_unknown_labels=True) "
                "drops them)"
            )
        if self.verbose:
            self._print_init(subset, "predictions", len(self._detections))

    @property
    def prediction(self) -> Any:
        """DataFrame of all predictions: video-id, t-start, t-end, label
        (the ground truth's class index), score."""
        if "prediction" not in self._frames:
            frame = _frame(
                self._detections,
                ["t-start", "t-end", "label", "score"],
                [np.float64, np.float64, np.int64, np.float64],
            )
            to_gt = np.array(
                [self.activity_index[name] for name in self._detections.labels], dtype=np.int64
            )
            if len(frame):
                frame["label"] = to_gt[frame["label"].to_numpy()]
            self._frames["prediction"] = frame
        return self._frames["prediction"]

    def wrapper_compute_average_precision(self) -> np.ndarray:
        """AP of each class at each threshold, [thresholds x classes]."""
        t = thresholds(self.tiou_thresholds, "tiou_thresholds")
        counts = dict(zip(self._detections.labels, self._detections.label_counts()))
        for name in self.activity_index:
            if not counts.get(name):
                print("Warning: No predictions of label '%s' were provided." % name)
        text, warnings = _native.evaluate_detections(self._gt, self._detections, t, False)
        warn_once(warnings, stacklevel=3)
        self.report = json.loads(text)
        per_class = [self.report["ap"][name] for name in self._gt.labels]
        return np.ascontiguousarray(np.array(per_class, dtype=np.float64).T)

    def evaluate(self) -> None:
        """Computes ap, mAP and average_mAP (and report)."""
        self.ap = self.wrapper_compute_average_precision()
        self.mAP = self.ap.mean(axis=1)
        self.average_mAP = self.mAP.mean()
        if self.verbose:
            print("[RESULTS] Performance on ActivityNet detection task.")
            print("\tAverage-mAP: {}".format(self.average_mAP))
