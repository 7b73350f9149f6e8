"""evaluate_proposals / evaluate_detections: the CLI's --json as a dict."""

from __future__ import annotations

import json
from typing import Any, Dict, Sequence, Union

import numpy as np

from . import _native
from ._inputs import (
    PathOrDict,
    check_max_proposals,
    flag,
    load_detections,
    load_ground_truth,
    load_proposals,
    thresholds,
    warn_once,
)

Thresholds = Union[None, str, Sequence[float], np.ndarray]


def evaluate_proposals(
    gt: PathOrDict,
    pred: PathOrDict,
    subset: str = "validation",
    tiou: Thresholds = None,
    max_proposals: float = 100,
) -> Dict[str, Any]:
    """Average recall vs average number of proposals (AR@AN), AR@1/5/10/100
    and AUC, exactly as the official eval_proposal.py.

    gt: ground-truth file path or dict ({"database": ...}); pred: proposal
    file path or dict ({"results": ...}); subset: the ground truth's subset;
    tiou: thresholds (None: 0.5:0.95:0.05; a list/array; or text as the
    CLI's --tiou or a preset name); max_proposals: M, the maximum average
    number of proposals per video.

    Returns the dict that `tcanet-eval proposals --json` prints: "AR@1",
    "AR@5", "AR@10", "AR@100" (fractions), "AUC" (percent),
    "average_recall" and "average_nr_proposals" (100 points), "recall"
    (thresholds x 100), "tiou_thresholds", "max_avg_proposals", "n_videos",
    "n_instances", "n_proposals", "n_kept". Raises OSError (unreadable
    file) or ValueError (bad content or options), with the evaluator's
    message naming the file, video and field; non-fatal findings are
    EvaluationWarning warnings.
    """
    t = thresholds(tiou, "tiou")
    m = check_max_proposals(max_proposals, "max_proposals")
    g = load_ground_truth(gt, subset)
    p = load_proposals(pred)
    text, warnings = _native.evaluate_proposals(g, p, t, m)
    warn_once(warnings, stacklevel=2)
    return json.loads(text)


def evaluate_detections(
    gt: PathOrDict,
    pred: PathOrDict,
    subset: str = "validation",
    tiou: Thresholds = None,
    ignore_unknown_labels: bool = False,
) -> Dict[str, Any]:
    """Average precision per class and tIoU threshold, mAP and average mAP,
    exactly as the official eval_detection.py.

    gt, pred, subset, tiou: as evaluate_proposals (pred entries need a
    "label"); ignore_unknown_labels: drop detections whose label is not a
    class of the ground truth (with a warning) instead of raising.

    Returns the dict that `tcanet-eval detections --json` prints: "mAP" (per
    threshold), "average_mAP", "ap" (class -> list per threshold, in the
    ground truth's class order), "tiou_thresholds", "n_videos",
    "n_instances", "n_detections", "n_dropped". Errors and warnings as
    evaluate_proposals.
    """
    t = thresholds(tiou, "tiou")
    ignore = flag(ignore_unknown_labels, "ignore_unknown_labels")
    g = load_ground_truth(gt, subset)
    p = load_detections(pred)
    text, warnings = _native.evaluate_detections(g, p, t, ignore)
    warn_once(warnings, stacklevel=2)
    return json.loads(text)
