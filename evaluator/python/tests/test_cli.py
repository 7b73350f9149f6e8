"""The functions return exactly what `tcanet-eval --json` prints, for
files and dicts, with default and other options."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tcanet_eval
from helpers import cli_json


def quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tcanet_eval.EvaluationWarning)
        return f(*args, **kwargs)


PROPOSAL_OPTIONS = [
    ({}, []),
    (
        {"tiou": "0.3,0.5,0.7", "max_proposals": 50},
        ["--tiou", "0.3,0.5,0.7", "--max-proposals", "50"],
    ),
    (
        {"tiou": [0.3, 0.5, 0.7], "max_proposals": 50},
        ["--tiou", "0.3,0.5,0.7", "--max-proposals", "50"],
    ),
    ({"tiou": "thumos14", "max_proposals": 7}, ["--preset", "thumos14", "--max-proposals", "7"]),
    ({"tiou": "0.1:0.9:0.1"}, ["--tiou", "0.1:0.9:0.1"]),
    # The ends of the ranges the CLI allows, as numbers.
    ({"tiou": 1, "max_proposals": 1}, ["--tiou", "1", "--max-proposals", "1"]),
    (
        {"tiou": np.array([1e-9, 1.0]), "max_proposals": np.int64(1_000_000)},
        ["--tiou", "1e-9,1", "--max-proposals", "1000000"],
    ),
]


@pytest.mark.parametrize("kwargs,flags", PROPOSAL_OPTIONS)
def test_proposals_equal_cli_json(kwargs, flags, golden, golden_dicts, cli):
    gt, pred = golden["activitynet13_gt"], golden["golden_proposals"]
    want = cli_json(cli, ["proposals", str(gt), str(pred), *flags])
    assert quiet(tcanet_eval.evaluate_proposals, gt, pred, **kwargs) == want
    dicts = golden_dicts["activitynet13_gt"], golden_dicts["golden_proposals"]
    assert quiet(tcanet_eval.evaluate_proposals, *dicts, **kwargs) == want


DETECTION_OPTIONS = [
    ({}, []),
    ({"tiou": (0.5, 0.75, 0.95)}, ["--tiou", "0.5,0.75,0.95"]),
    ({"tiou": "activitynet"}, ["--preset", "activitynet"]),
]


@pytest.mark.parametrize("kwargs,flags", DETECTION_OPTIONS)
def test_detections_equal_cli_json(kwargs, flags, golden, golden_dicts, cli):
    gt, pred = golden["activitynet13_gt"], golden["golden_detections"]
    want = cli_json(cli, ["detections", str(gt), str(pred), *flags])
    got = quiet(tcanet_eval.evaluate_detections, gt, pred, **kwargs)
    assert got == want
    dicts = golden_dicts["activitynet13_gt"], golden_dicts["golden_detections"]
    assert quiet(tcanet_eval.evaluate_detections, *dicts, **kwargs) == want


def test_detection_files_read_as_proposals_equal_cli(golden, cli):
    gt, pred = golden["activitynet13_gt"], golden["golden_detections"]
    want = cli_json(cli, ["proposals", str(gt), str(pred)])
    assert quiet(tcanet_eval.evaluate_proposals, gt, pred) == want
