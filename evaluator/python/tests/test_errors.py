"""Bad input raises OSError / ValueError with the evaluator's message
(the CLI's, for files), naming the file, video and field."""

from __future__ import annotations

import copy
import math

import pytest

import tcanet_eval
from helpers import cli_error, write_json

GT = {
    "version": "test",
    "taxonomy": [],
    "database": {
        "v_a": {"subset": "validation", "annotations": [{"segment": [0, 10], "label": "Run"}]},
        "v_b": {"subset": "validation", "annotations": [{"segment": [5, 20], "label": "Jump"}]},
    },
}
PRED = {
    "version": "test",
    "external_data": {},
    "results": {"v_a": [{"segment": [0, 10], "score": 0.9, "label": "Run"}]},
}


@pytest.fixture
def gt_file(tmp_path):
    return write_json(tmp_path / "gt.json", GT)


def raises_like_cli(cli, exc_type, call, args):
    """`call` raises `exc_type` with exactly the CLI's message for `args`."""
    with pytest.raises(exc_type) as info:
        call()
    assert str(info.value) == cli_error(cli, args)
    return str(info.value)


@pytest.mark.parametrize("task", ["proposals", "detections"])
def test_missing_file(task, gt_file, tmp_path, cli):
    missing = str(tmp_path / "missing.json")
    f = getattr(tcanet_eval, f"evaluate_{task}")
    msg = raises_like_cli(
        cli, FileNotFoundError, lambda: f(gt_file, missing), [task, str(gt_file), missing]
    )
    assert missing in msg
    msg = raises_like_cli(
        cli, FileNotFoundError, lambda: f(missing, PRED), [task, missing, str(gt_file)]
    )


def test_directory_is_an_os_error(gt_file, tmp_path):
    with pytest.raises(OSError, match="cannot read"):
        tcanet_eval.evaluate_proposals(gt_file, tmp_path)


def test_bad_json(gt_file, tmp_path, cli):
    bad = tmp_path / "bad.json"
    bad.write_text('{"results": {"v_a": [{"segment": [1, 2], "score": 0.5}')
    msg = raises_like_cli(
        cli,
        ValueError,
        lambda: tcanet_eval.evaluate_proposals(gt_file, bad),
        ["proposals", str(gt_file), str(bad)],
    )
    assert msg.startswith(f"{bad}:1:")


def test_nan_score_in_a_file(gt_file, tmp_path, cli):
    nan = tmp_path / "nan.json"
    nan.write_text('{"results": {"v_a": [{"segment": [1, 2], "score": NaN, "label": "Run"}]}}')
    for task in ("proposals", "detections"):
        f = getattr(tcanet_eval, f"evaluate_{task}")
        msg = raises_like_cli(
            cli, ValueError, lambda: f(gt_file, nan), [task, str(gt_file), str(nan)]
        )
        assert 'results["v_a"][0].score' in msg


@pytest.mark.parametrize(
    "change,message",
    [
        (
            lambda p: p["results"]["v_a"][0].update(score=math.nan),
            'pred (dict): results["v_a"][0].score is not a finite number',
        ),
        (
            lambda p: p["results"]["v_a"][0].update(score="0.9"),
            'pred (dict): results["v_a"][0].score: expected a number, found str',
        ),
        (
            lambda p: p["results"]["v_a"][0].update(segment=[0, math.inf]),
            'pred (dict): results["v_a"][0].segment[1] is not a finite number',
        ),
        (
            lambda p: p["results"]["v_a"][0].update(segment=[0, 1, 2]),
            'pred (dict): results["v_a"][0].segment has 3 value(s); it must be two finite numbers [start, end]',
        ),
        (
            lambda p: p["results"]["v_a"][0].update(segment="0,1"),
            'pred (dict): results["v_a"][0].segment: expected an array [start, end], found str',
        ),
        (
            lambda p: p["results"]["v_a"][0].pop("score"),
            'pred (dict): results["v_a"][0] has no "score"',
        ),
        (
            lambda p: p["results"].update(v_b={"segment": [0, 1]}),
            'pred (dict): results["v_b"]: expected an array of results, found dict',
        ),
        (lambda p: p.pop("results"), 'pred (dict): no "results" key at the top level'),
    ],
)
def test_bad_dict_submissions(change, message):
    pred = copy.deepcopy(PRED)
    change(pred)
    for f in (tcanet_eval.evaluate_proposals, tcanet_eval.evaluate_detections):
        with pytest.raises(ValueError) as info:
            f(GT, pred)
        assert str(info.value).startswith(message)


def test_detection_dict_without_label():
    pred = copy.deepcopy(PRED)
    del pred["results"]["v_a"][0]["label"]
    tcanet_eval.evaluate_proposals(GT, pred)  # proposals need no label
    with pytest.raises(ValueError, match=r'pred \(dict\): results\["v_a"\]\[0\] has no "label"'):
        tcanet_eval.evaluate_detections(GT, pred)


@pytest.mark.parametrize(
    "change,message",
    [
        (
            lambda g: g["database"]["v_a"].pop("subset"),
            'gt (dict): database["v_a"] has no "subset" field',
        ),
        (
            lambda g: g["database"]["v_a"]["annotations"][0].update(label=3),
            'gt (dict): database["v_a"].annotations[0].label: expected a string, found int',
        ),
        (
            lambda g: g["database"]["v_a"]["annotations"][0].update(segment=[math.nan, 1]),
            'gt (dict): database["v_a"].annotations[0].segment[0] is not a finite number',
        ),
        (
            lambda g: g["database"]["v_b"].pop("annotations"),
            'gt (dict): database["v_b"] (subset validation) has no "annotations" field',
        ),
        (
            lambda g: g.update(database=[]),
            "gt (dict): database: expected an object of videos, found list",
        ),
    ],
)
def test_bad_dict_ground_truths(change, message):
    gt = copy.deepcopy(GT)
    change(gt)
    with pytest.raises(ValueError) as info:
        tcanet_eval.evaluate_proposals(gt, PRED)
    assert str(info.value).startswith(message)


def test_arguments_swapped_get_a_hint():
    with pytest.raises(ValueError, match="looks like a submission; the ground truth comes first"):
        tcanet_eval.evaluate_proposals(PRED, GT)


def test_unknown_subset_lists_the_subsets():
    with pytest.raises(
        ValueError, match=r'no video of subset "testing"; it has: validation \(2 videos\)'
    ):
        tcanet_eval.evaluate_proposals(GT, PRED, subset="testing")


def test_unknown_labels(gt_file, tmp_path, cli):
    pred = copy.deepcopy(PRED)
    pred["results"]["v_b"] = [{"segment": [5, 20], "score": 0.5, "label": "Swim"}]
    pred_file = write_json(tmp_path / "pred.json", pred)
    raises_like_cli(
        cli,
        ValueError,
        lambda: tcanet_eval.evaluate_detections(gt_file, pred_file),
        ["detections", str(gt_file), str(pred_file)],
    )
    with pytest.warns(tcanet_eval.EvaluationWarning, match='"Swim"'):
        r = tcanet_eval.evaluate_detections(gt_file, pred_file, ignore_unknown_labels=True)
    assert r["n_dropped"] == 1 and r["ap"]["Run"] == [1.0] * 10 and r["ap"]["Jump"] == [0.0] * 10
    with pytest.raises(ValueError, match="'Swim'"):
        tcanet_eval.ANETdetection(gt_file, pred_file)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"tiou": "0.5:x:0.1"}, "invalid --tiou '0.5:x:0.1'"),
        ({"tiou": "coco"}, "unknown preset 'coco'"),
        ({"tiou": []}, "no tIoU threshold given"),
        ({"tiou": [0.5, math.nan]}, "tIoU thresholds must be finite"),
        ({"tiou": [[0.5]]}, "must be one-dimensional"),
        ({"max_proposals": 0}, "must be positive, got 0"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tcanet_eval.evaluate_proposals(GT, PRED, **kwargs)


def test_bad_argument_types():
    with pytest.raises(TypeError, match="gt must be a path .* or a dict .*, not int"):
        tcanet_eval.evaluate_proposals(3, PRED)
    with pytest.raises(TypeError, match="subset must be a str"):
        tcanet_eval.evaluate_proposals(GT, PRED, subset=None)


def test_anet_constructor_checks(gt_file, tmp_path):
    with pytest.raises(OSError, match="^Please input a valid ground truth file.$"):
        tcanet_eval.ANETproposal(None, PRED)
    with pytest.raises(OSError, match="^Please input a valid proposal file.$"):
        tcanet_eval.ANETproposal(gt_file, "")
    with pytest.raises(OSError, match="^Please input a valid prediction file.$"):
        tcanet_eval.ANETdetection(gt_file)
    # Dicts are checked for the fields, as the official code checks files.
    no_version = {k: v for k, v in PRED.items() if k != "version"}
    with pytest.raises(OSError, match=r"Please input a valid proposal file. \(missing: version\)"):
        tcanet_eval.ANETproposal(gt_file, no_version)
    tcanet_eval.ANETproposal(gt_file, no_version, proposal_fields=["results"])
    with pytest.raises(FileNotFoundError, match="cannot read"):
        tcanet_eval.ANETdetection(gt_file, tmp_path / "missing.json")
