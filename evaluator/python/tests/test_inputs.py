"""Small cases computed by hand: what dict inputs may hold, the drop-in
classes' attributes (M = None, DataFrames, verbose output), warnings."""

from __future__ import annotations

import copy
import importlib.util

import numpy as np
import pytest

import tcanet_eval
from helpers import write_json

GT = {
    "version": "test",
    "taxonomy": [],
    "database": {
        "v_a": {"subset": "validation", "annotations": [{"segment": [0, 10], "label": "Run"}]},
        "v_b": {
            "subset": "validation",
            "annotations": [
                {"segment": [5, 20], "label": "Jump"},
                {"segment": [30, 40], "label": "Run"},
            ],
        },
        "v_c": {"subset": "validation", "annotations": []},
        "t": {"subset": "training", "annotations": [{"segment": [0, 1], "label": "Swim"}]},
    },
}
# v_a's proposal finds its instance, v_b's best the Jump; nothing finds v_b's Run.
PROPOSALS = {
    "version": "test",
    "external_data": {},
    "results": {
        "v_a": [{"segment": [0, 10], "score": 0.9}],
        "v_b": [{"segment": [100, 110], "score": 0.1}, {"segment": [5, 20], "score": 0.8}],
    },
}
# Run: a false positive ranked first, then both instances: precision 0, 1/2,
# 2/3 at recall 0, 1/2, 1, so AP = 2/3; Jump: AP = 1; mAP = 5/6.
DETECTIONS = {
    "version": "test",
    "external_data": {},
    "results": {
        "v_a": [{"segment": [0, 10], "score": 0.9, "label": "Run"}],
        "v_b": [
            {"segment": [5, 20], "score": 0.8, "label": "Jump"},
            {"segment": [30, 40], "score": 0.7, "label": "Run"},
            {"segment": [0, 1], "score": 0.95, "label": "Run"},
        ],
    },
}


def check_hand_recall(recall: np.ndarray) -> None:
    """M = P/V = 3/2 keeps all: v_a's proposal counts from the last point
    (int(1 * j/100) = 1 only at j = 100), v_b's best from j = 50 on."""
    assert recall.shape == (10, 100)
    assert (recall[:, :49] == 0).all()
    assert (recall[:, 49:99] == 1 / 3).all()
    assert (recall[:, 99] == 2 / 3).all()


def test_proposals_by_hand():
    r = tcanet_eval.evaluate_proposals(GT, PROPOSALS, max_proposals=1.5)
    check_hand_recall(np.array(r["recall"]))
    assert (r["n_videos"], r["n_instances"], r["n_proposals"], r["n_kept"]) == (2, 3, 3, 3)


def test_anet_proposal_default_m_keeps_every_proposal():
    a = tcanet_eval.ANETproposal(GT, PROPOSALS)
    a.evaluate()
    check_hand_recall(a.recall)
    assert a.report["max_avg_proposals"] == 1.5 and a.report["n_kept"] == 3
    np.testing.assert_array_equal(a.avg_recall, a.recall.mean(axis=0))
    np.testing.assert_allclose(
        a.proposals_per_video, np.arange(1, 101) / 100 * 1.5, rtol=0, atol=1e-12
    )
    # M = 1 per video on average: ratio M * V / P = 2/3 keeps int(1 * 2/3) = 0
    # of v_a's proposals and int(2 * 2/3) = 1 of v_b's (its best, the Jump).
    b = tcanet_eval.ANETproposal(GT, PROPOSALS, max_avg_nr_proposals=1)
    b.evaluate()
    assert b.report["n_kept"] == 1
    assert (b.recall[:, -1] == 1 / 3).all()


def test_detections_by_hand():
    r = tcanet_eval.evaluate_detections(GT, DETECTIONS, tiou=[0.5, 0.9])
    assert r["ap"] == {"Run": [pytest.approx(2 / 3)] * 2, "Jump": [1.0, 1.0]}
    assert r["mAP"] == [pytest.approx(5 / 6)] * 2
    d = tcanet_eval.ANETdetection(GT, DETECTIONS, tiou_thresholds=np.array([0.5, 0.9]))
    d.evaluate()
    np.testing.assert_allclose(d.ap, [[2 / 3, 1], [2 / 3, 1]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(d.mAP, [5 / 6, 5 / 6], rtol=0, atol=1e-15)
    assert d.average_mAP == pytest.approx(5 / 6)


def test_dicts_hold_numpy_values_tuples_and_arrays():
    """Numbers may be numpy scalars or ints, segments tuples or arrays, the
    lists tuples; the result equals that of plain JSON values."""
    want = tcanet_eval.evaluate_detections(GT, DETECTIONS)
    pred = copy.deepcopy(DETECTIONS)
    for i, entries in enumerate(pred["results"].values()):
        for e in entries:
            start, end = e["segment"]
            kinds = [
                np.array([start, end], dtype=np.float32),
                (np.int64(start), end),
                [start, np.float64(end)],
            ]
            e["segment"] = kinds[i % 3]
            e["score"] = np.float32(e["score"]) if i else e["score"]
    pred["results"]["v_b"] = tuple(pred["results"]["v_b"])
    got = tcanet_eval.evaluate_detections(GT, pred)
    assert got["ap"] == want["ap"]
    with pytest.raises(ValueError, match=r"expected a number, found bool"):
        tcanet_eval.evaluate_proposals(
            GT, {"results": {"v_a": [{"segment": [0, 1], "score": True}]}}
        )


def test_files_and_dicts_agree(tmp_path):
    gt_file = write_json(tmp_path / "gt.json", GT)
    det_file = write_json(tmp_path / "det.json", DETECTIONS)
    assert tcanet_eval.evaluate_detections(gt_file, det_file) == tcanet_eval.evaluate_detections(
        GT, DETECTIONS
    )
    assert tcanet_eval.evaluate_proposals(gt_file, det_file) == tcanet_eval.evaluate_proposals(
        GT, DETECTIONS
    )


def test_warnings_once_each():
    pred = copy.deepcopy(PROPOSALS)
    pred["results"]["v_x"] = [{"segment": [9, 3], "score": 0.5}]
    with pytest.warns(tcanet_eval.EvaluationWarning) as record:
        tcanet_eval.evaluate_proposals(GT, pred)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2, messages
    assert messages[0].startswith(
        'pred (dict): 1 predicted segment(s) are reversed (start > end), first at results["v_x"][0]'
    )
    assert messages[1].startswith(
        'pred (dict): 1 of 3 videos are not in the ground truth\'s subset "validation" (e.g. "v_x")'
    )


def test_verbose_prints_as_the_official_classes(capsys):
    a = tcanet_eval.ANETproposal(GT, PROPOSALS, tiou_thresholds=np.array([0.5, 0.75]), verbose=True)
    a.evaluate()
    d = tcanet_eval.ANETdetection(
        GT, {**DETECTIONS, "results": {"v_a": DETECTIONS["results"]["v_a"]}}, verbose=True
    )
    d.evaluate()
    lines = capsys.readouterr().out.splitlines()
    auc = a.report["AUC"]
    assert lines[:6] == [
        "[INIT] Loaded annotations from validation subset.",
        "\tNumber of ground truth instances: 3",
        "\tNumber of proposals: 3",
        "\tFixed threshold for tiou score: [0.5  0.75]",
        "[RESULTS] Performance on ActivityNet proposal task.",
        f"\tArea Under the AR vs AN curve: {auc}%",
    ]
    assert lines[6:] == [
        "[INIT] Loaded annotations from validation subset.",
        "\tNumber of ground truth instances: 3",
        "\tNumber of predictions: 1",
        f"\tFixed threshold for tiou score: {np.linspace(0.5, 0.95, 10)}",
        "Warning: No predictions of label 'Jump' were provided.",
        "[RESULTS] Performance on ActivityNet detection task.",
        f"\tAverage-mAP: {d.average_mAP}",
    ]
    # AUC: the trapezoids under the hand-computed curve, over AN[100] = 1.5.
    curve = np.where(np.arange(100) < 49, 0, np.where(np.arange(100) < 99, 1 / 3, 2 / 3))
    an = np.arange(1, 101) / 100 * 1.5
    area = np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(an))
    assert auc == pytest.approx(100 * area / 1.5, abs=1e-12)


def test_attributes_of_the_official_classes():
    a = tcanet_eval.ANETproposal(GT, PROPOSALS, subset="validation", check_status=True)
    assert a.blocked_videos == [] and a.check_status is True  # never fetched
    assert a.activity_index == {"Run": 0, "Jump": 1}
    assert a.gt_fields == ["database", "taxonomy", "version"]
    assert a.pred_fields == ["results", "version", "external_data"]
    assert a.max_avg_nr_proposals is None and a.subset == "validation"
    d = tcanet_eval.ANETdetection(GT, DETECTIONS)
    assert d.pred_fields == tcanet_eval.ANETdetection.PREDICTION_FIELDS
    assert not hasattr(d, "mAP")
    assert d.wrapper_compute_average_precision().shape == (10, 2)


def test_dataframes():
    pd = pytest.importorskip("pandas")
    a = tcanet_eval.ANETproposal(GT, PROPOSALS)
    want_gt = pd.DataFrame(
        {
            "video-id": ["v_a", "v_b", "v_b"],
            "t-start": [0.0, 5.0, 30.0],
            "t-end": [10.0, 20.0, 40.0],
            "label": [0, 1, 0],
        }
    )
    pd.testing.assert_frame_equal(a.ground_truth, want_gt)
    pd.testing.assert_frame_equal(
        a.proposal,
        pd.DataFrame(
            {
                "video-id": ["v_a", "v_b", "v_b"],
                "t-start": [0.0, 100.0, 5.0],
                "t-end": [10.0, 110.0, 20.0],
                "score": [0.9, 0.1, 0.8],
            }
        ),
    )
    assert a.proposal is a.proposal  # built once
    with pytest.raises(AttributeError):
        a.proposal = None
    d = tcanet_eval.ANETdetection(
        GT, {**DETECTIONS, "results": {"v_b": DETECTIONS["results"]["v_b"]}}
    )
    pd.testing.assert_frame_equal(d.ground_truth, want_gt)
    pd.testing.assert_frame_equal(
        d.prediction,
        pd.DataFrame(
            {
                "video-id": ["v_b"] * 3,
                "t-start": [5.0, 30.0, 0.0],
                "t-end": [20.0, 40.0, 1.0],
                "label": [1, 0, 0],  # the ground truth's class indices
                "score": [0.8, 0.7, 0.95],
            }
        ),
    )


def test_dataframes_need_pandas():
    if importlib.util.find_spec("pandas") is not None:
        pytest.skip("pandas is installed (test_dataframes covers the DataFrames)")
    a = tcanet_eval.ANETproposal(GT, PROPOSALS)
    a.evaluate()  # evaluation does not need pandas
    with pytest.raises(ImportError, match=r"pip install pandas"):
        a.ground_truth
