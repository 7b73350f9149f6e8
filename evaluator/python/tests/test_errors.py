"""Bad input raises OSError / ValueError with the evaluator's message
(the CLI's, for files), naming the file, video and field."""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

import tcanet_eval
from helpers import cli_error, run_cli, write_json

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
            lambda p: p["results"]["v_a"][0].update(score=2**1024),
            'pred (dict): results["v_a"][0].score is not a finite number',
        ),
        (
            lambda p: p["results"]["v_a"][0].update(segment=[0, -(2**1030)]),
            'pred (dict): results["v_a"][0].segment[1] is not a finite number',
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
        ({"tiou": "0.5:x:0.1"}, "invalid value '0.5:x:0.1' for tiou: 'x' is not a number"),
        ({"tiou": "coco"}, "tiou: unknown preset 'coco'"),
        ({"tiou": []}, r"invalid value \[\] for tiou: no tIoU threshold given"),
        ({"tiou": [0.5, math.nan]}, r"invalid value \[0.5, NaN\] for tiou: 'NaN' is not finite"),
        ({"tiou": [[0.5]]}, r"tiou must be one-dimensional, got shape \(1, 1\)"),
        ({"max_proposals": 0}, "max_proposals must be a number from 1 to 1000000, got 0"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tcanet_eval.evaluate_proposals(GT, PRED, **kwargs)


# tIoU thresholds the CLI refuses ("thresholds lie in (0, 1]"), as numbers:
# (value, the same as --tiou text).
OUT_OF_RANGE_THRESHOLDS = [
    (0, "0"),
    (-0.0, "-0"),
    ([-0.1], "-0.1"),
    ([0.0, 2.0], "0,2"),
    (1.5, "1.5"),
    ([1.0000001], "1.0000001"),
    ((0.5, 1.0 + 2**-52), "0.5,1.0000000000000002"),
    (np.array([0.5, 0.0]), "0.5,0"),
    (np.float32(-0.5), "-0.5"),
    (np.linspace(0.5, 1.5, 3), "0.5,1,1.5"),
]


@pytest.mark.parametrize("task", ["proposals", "detections"])
@pytest.mark.parametrize("tiou,text", OUT_OF_RANGE_THRESHOLDS)
def test_thresholds_out_of_range(task, tiou, text, gt_file, tmp_path, cli):
    """Numbers go through the CLI's rule and message, naming the argument,
    as the same thresholds given as text do."""
    pred_file = write_json(tmp_path / "pred.json", PRED)
    done = run_cli(cli, [task, str(gt_file), str(pred_file), "--tiou", text])
    assert done.returncode == 2, done.stderr
    first = done.stderr.splitlines()[0]  # clap: error: invalid value 'TEXT' for '--tiou ...': WHY
    assert first.startswith(f"error: invalid value '{text}' for '--tiou"), done.stderr
    why = first.split("': ", 1)[1]
    assert why.startswith("thresholds lie in (0, 1]; use a list like")
    f = getattr(tcanet_eval, f"evaluate_{task}")
    for value in (tiou, text):
        with pytest.raises(ValueError) as info:
            f(GT, PRED, tiou=value)
        message = str(info.value)
        assert message.startswith("invalid value ") and message.endswith(f" for tiou: {why}")


def test_too_many_thresholds():
    message = r"\(10001 values\)\] for tiou: more than 10000 thresholds"
    with pytest.raises(ValueError, match=message):
        tcanet_eval.evaluate_proposals(GT, PRED, tiou=np.full(10_001, 0.5))
    r = tcanet_eval.evaluate_proposals(GT, PRED, tiou=np.full(10_000, 0.5))
    assert len(r["tiou_thresholds"]) == 10_000


@pytest.mark.parametrize(
    "tiou", [["0.5"], [0.5, "x"], [True], np.array([True]), b"0.5", {"a": 0.5}, [None], object()]
)
def test_thresholds_not_numbers(tiou):
    with pytest.raises(TypeError, match="^tiou must be None, a number, a sequence or 1-D array"):
        tcanet_eval.evaluate_proposals(GT, PRED, tiou=tiou)


def test_thresholds_of_any_real_number_type():
    want = tcanet_eval.evaluate_proposals(GT, PRED, tiou=[0.5, 0.75])
    same = ([Fraction(1, 2), Fraction(3, 4)], np.array([0.5, 0.75], dtype=np.float32), (0.5, 0.75))
    for tiou in same:
        assert tcanet_eval.evaluate_proposals(GT, PRED, tiou=tiou) == want
    one = tcanet_eval.evaluate_proposals(GT, PRED, tiou=np.float64(1))
    assert one["tiou_thresholds"] == [1.0]
    assert tcanet_eval.evaluate_proposals(GT, PRED, tiou=[Decimal("0.5"), 0.75]) == want
    with pytest.raises(ValueError, match=r"^invalid value \[inf\] for tiou: 'inf' is not finite"):
        tcanet_eval.evaluate_proposals(GT, PRED, tiou=[10**400])


def test_anet_thresholds_out_of_range(gt_file):
    message = r"^invalid value \[0.0\] for tiou_thresholds: thresholds lie in \(0, 1\]"
    with pytest.raises(ValueError, match=message):
        tcanet_eval.ANETproposal(gt_file, PRED, tiou_thresholds=[0.0])
    with pytest.raises(ValueError, match=message.replace("0.0", "-1.0")):
        tcanet_eval.ANETdetection(gt_file, PRED, tiou_thresholds=[-1.0])
    with pytest.raises(ValueError, match="for tiou_thresholds: thresholds lie in"):
        tcanet_eval.ANETdetection(gt_file, PRED, tiou_thresholds=np.linspace(0, 1, 11))
    # The attribute may change after construction: evaluate() checks it too.
    a = tcanet_eval.ANETproposal(gt_file, PRED, check_status=False)
    a.tiou_thresholds = 1.5
    with pytest.raises(ValueError, match=r"^invalid value \[1.5\] for tiou_thresholds"):
        a.evaluate()
    d = tcanet_eval.ANETdetection(gt_file, PRED)
    d.tiou_thresholds = "0:1:0.1"
    with pytest.raises(ValueError, match="^invalid value '0:1:0.1' for tiou_thresholds"):
        d.evaluate()


BAD_MAX_PROPOSALS = [
    (None, TypeError, "not NoneType"),
    ([1], TypeError, "not list"),
    ("abc", TypeError, "not str"),
    (True, TypeError, "not bool"),
    (np.array([]), TypeError, r"not ndarray of shape \(0,\)"),
    (np.array([50]), TypeError, r"not ndarray of shape \(1,\)"),
    pytest.param(
        10**400, ValueError, r"got 10000000000000000000\.\.\. \(401 characters\)", id="10**400"
    ),
    (1e300, ValueError, r"got 1e\+300"),
    (1_000_001, ValueError, "got 1000001"),
    (0.5, ValueError, "got 0.5"),
    (-3, ValueError, "got -3"),
    (math.nan, ValueError, "got nan"),
    (math.inf, ValueError, "got inf"),
]


@pytest.mark.parametrize("value,exc_type,detail", BAD_MAX_PROPOSALS)
def test_bad_max_proposals(value, exc_type, detail, gt_file):
    must = "must be a number from 1 to 1000000"
    with pytest.raises(exc_type, match=f"^max_proposals {must}, {detail}"):
        tcanet_eval.evaluate_proposals(GT, PRED, max_proposals=value)
    if value is None:
        return  # None keeps every proposal in ANETproposal, as the official code
    with pytest.raises(exc_type, match=f"^max_avg_nr_proposals {must}, {detail}"):
        tcanet_eval.ANETproposal(gt_file, PRED, max_avg_nr_proposals=value)


def test_max_proposals_of_any_real_number_type(gt_file):
    want = tcanet_eval.evaluate_proposals(GT, PRED, max_proposals=50)
    for m in (50.0, np.int64(50), np.float32(50), np.array(50), Fraction(100, 2), Decimal(50)):
        assert tcanet_eval.evaluate_proposals(GT, PRED, max_proposals=m) == want
    # None and 0 keep every proposal in ANETproposal (official); checked at evaluate() too.
    for m in (None, 0, 0.0, np.int64(0)):
        tcanet_eval.ANETproposal(gt_file, PRED, max_avg_nr_proposals=m).evaluate()
    a = tcanet_eval.ANETproposal(gt_file, PRED)
    a.max_avg_nr_proposals = "100"
    with pytest.raises(TypeError, match="^max_avg_nr_proposals must be a number"):
        a.evaluate()


@pytest.mark.parametrize("value", ["no", "", 1, 0, None, np.array([True])])
def test_ignore_unknown_labels_is_a_bool(value):
    with pytest.raises(TypeError, match="^ignore_unknown_labels must be a bool"):
        tcanet_eval.evaluate_detections(GT, PRED, ignore_unknown_labels=value)


def test_ignore_unknown_labels_numpy_bool():
    r = tcanet_eval.evaluate_detections(GT, PRED, ignore_unknown_labels=np.bool_(True))
    assert r == tcanet_eval.evaluate_detections(GT, PRED, ignore_unknown_labels=True)


class ClearsOnFloat:
    """A score whose conversion (Python code: `__float__`) changes the
    containers being walked, as another thread could meanwhile."""

    def __init__(self, change):
        self.change = change

    def __float__(self):
        self.change()
        return 0.5


def test_results_cleared_during_the_walk():
    pred = copy.deepcopy(PRED)
    pred["results"]["v_b"] = [{"segment": [5, 20], "score": 0.5, "label": "Jump"}]
    pred["results"]["v_a"][0]["score"] = ClearsOnFloat(lambda: pred["results"].clear())
    message = r"^pred \(dict\): results changed size during evaluation$"
    with pytest.raises(RuntimeError, match=message):
        tcanet_eval.evaluate_proposals(GT, pred)


def test_results_grown_during_the_walk():
    pred = copy.deepcopy(PRED)
    grow = lambda: pred["results"].setdefault(f"v_{len(pred['results'])}", [])  # noqa: E731
    pred["results"]["v_a"][0]["score"] = ClearsOnFloat(grow)
    with pytest.raises(RuntimeError, match="results changed size during evaluation"):
        tcanet_eval.evaluate_detections(GT, pred)


def test_video_results_cleared_during_the_walk():
    pred = copy.deepcopy(PRED)
    entries = pred["results"]["v_a"]
    entries.append({"segment": [1, 9], "score": ClearsOnFloat(entries.clear), "label": "Run"})
    entries.append({"segment": [2, 9], "score": 0.1, "label": "Run"})
    with pytest.raises(
        RuntimeError,
        match=r'^pred \(dict\): results\["v_a"\] changed size during evaluation$',
    ):
        tcanet_eval.evaluate_detections(GT, pred)


def test_database_grown_during_the_walk():
    gt = copy.deepcopy(GT)
    add = lambda: gt["database"].setdefault(  # noqa: E731
        "v_c", {"subset": "validation", "annotations": []}
    )
    gt["database"]["v_a"]["annotations"][0]["segment"][1] = ClearsOnFloat(add)
    message = r"^gt \(dict\): database changed size during evaluation$"
    with pytest.raises(RuntimeError, match=message):
        tcanet_eval.evaluate_proposals(gt, PRED)
    with pytest.raises(
        RuntimeError, match=r"^ground_truth \(dict\): database changed size during evaluation$"
    ):
        gt["database"].pop("v_c")
        tcanet_eval.ANETproposal(gt, PRED, ground_truth_fields=["database"])


def test_fraction_scores_unchanged_dict():
    """Scores whose conversion runs Python code, changing nothing: evaluated."""
    pred = copy.deepcopy(PRED)
    pred["results"]["v_a"][0]["score"] = Fraction(9, 10)
    assert tcanet_eval.evaluate_detections(GT, pred) == tcanet_eval.evaluate_detections(GT, PRED)


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
