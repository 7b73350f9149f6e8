"""Every number the official ActivityNet code computes on the golden files,
within 1e-9, through the functions and the drop-in classes, from paths and
from in-memory dicts."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

import tcanet_eval
from helpers import TOL

SOURCES = ["path", "pathlib", "dict"]


def inputs(source: str, golden: Dict[str, Path], dicts: Dict[str, dict], pred: str):
    if source == "dict":
        return dicts["activitynet13_gt"], dicts[pred]
    if source == "pathlib":
        return golden["activitynet13_gt"], golden[pred]
    return str(golden["activitynet13_gt"]), str(golden[pred])


def close(got, want, what: str) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    diff = np.abs(got - want).max()
    assert diff <= TOL, f"{what}: max difference {diff:g} from the official numbers"


def quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tcanet_eval.EvaluationWarning)
        return f(*args, **kwargs)


@pytest.mark.parametrize("source", SOURCES)
def test_evaluate_proposals(source, golden, golden_dicts, expected):
    want = expected["proposals"]
    r = quiet(
        tcanet_eval.evaluate_proposals, *inputs(source, golden, golden_dicts, "golden_proposals")
    )
    for key in ("AR@1", "AR@5", "AR@10", "AR@100", "AUC"):
        close(r[key], want[key], key)
    close(r["average_recall"], want["average_recall_curve"], "AR curve")
    close(r["average_nr_proposals"], want["average_nr_proposals_curve"], "AN curve")
    assert np.asarray(r["recall"]).shape == (10, 100)
    close(
        np.mean(r["recall"], axis=0),
        want["average_recall_curve"],
        "recall averaged over thresholds",
    )
    close(r["tiou_thresholds"], np.linspace(0.5, 0.95, 10), "thresholds")
    assert r["max_avg_proposals"] == 100
    assert r["n_proposals"] == sum(
        len(v) for v in golden_dicts["golden_proposals"]["results"].values()
    )


@pytest.mark.parametrize("source", SOURCES)
def test_evaluate_detections(source, golden, golden_dicts, expected):
    want = expected["detections"]
    r = quiet(
        tcanet_eval.evaluate_detections, *inputs(source, golden, golden_dicts, "golden_detections")
    )
    close(r["mAP"], want["mAP_per_tiou"], "mAP")
    close(r["average_mAP"], want["average_mAP"], "average mAP")
    assert list(r["ap"]) == want["classes_in_gt_order"]
    ap = np.array([r["ap"][c] for c in want["classes_in_gt_order"]]).T
    assert ap.shape == (10, 200)
    close(ap, want["ap_per_tiou_per_class"], "AP per threshold and class")


@pytest.mark.parametrize("source", SOURCES)
def test_anet_proposal(source, golden, golden_dicts, expected):
    want = expected["proposals"]
    gt, pred = inputs(source, golden, golden_dicts, "golden_proposals")
    a = tcanet_eval.ANETproposal(gt, pred, max_avg_nr_proposals=100, check_status=False)
    assert a.recall is None and a.avg_recall is None and a.proposals_per_video is None
    assert list(a.activity_index) == expected["detections"]["classes_in_gt_order"]
    assert list(a.activity_index.values()) == list(range(200))
    quiet(a.evaluate)
    assert isinstance(a.recall, np.ndarray) and a.recall.dtype == np.float64
    assert a.recall.shape == (10, 100)
    assert a.avg_recall.shape == a.proposals_per_video.shape == (100,)
    close(a.avg_recall, want["average_recall_curve"], "avg_recall")
    close(a.proposals_per_video, want["average_nr_proposals_curve"], "proposals_per_video")
    # What training loops compute from the attributes: AUC and AR@100.
    area = np.sum((a.avg_recall[1:] + a.avg_recall[:-1]) / 2 * np.diff(a.proposals_per_video))
    close(100 * area / a.proposals_per_video[-1], want["AUC"], "AUC from the attributes")
    close(a.avg_recall[-1], want["AR@100"], "AR@100 from the attributes")
    close(a.report["AUC"], want["AUC"], "report AUC")


@pytest.mark.parametrize("source", SOURCES)
def test_anet_detection(source, golden, golden_dicts, expected):
    want = expected["detections"]
    gt, pred = inputs(source, golden, golden_dicts, "golden_detections")
    d = tcanet_eval.ANETdetection(gt, pred, check_status=False)
    assert d.ap is None
    assert list(d.activity_index) == want["classes_in_gt_order"]
    quiet(d.evaluate)
    assert d.ap.dtype == np.float64 and d.ap.shape == (10, 200) and d.ap.flags.c_contiguous
    close(d.ap, want["ap_per_tiou_per_class"], "ap")
    close(d.mAP, want["mAP_per_tiou"], "mAP")
    close(d.average_mAP, want["average_mAP"], "average_mAP")
    assert isinstance(d.average_mAP, np.floating)
