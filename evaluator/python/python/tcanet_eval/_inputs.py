"""Turning the arguments of the public API into loaded native objects."""

from __future__ import annotations

import decimal
import math
import numbers
import os
import warnings
from collections.abc import Mapping
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from . import _native

PathOrDict = Union[str, "os.PathLike[str]", Mapping]
"""A JSON file's path, or its content as Python objects (what json.load returns)."""


class EvaluationWarning(UserWarning):
    """A non-fatal finding about the inputs (ids not in the ground truth,
    reversed segments, ...), issued once per evaluation."""


def _path(value: Any, name: str) -> str:
    try:
        path = os.fspath(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a path (str or os.PathLike) or a dict in the ActivityNet "
            f"JSON format, not {type(value).__name__}"
        ) from None
    return os.fsdecode(path)


def _dict(value: Mapping) -> dict:
    return value if isinstance(value, dict) else dict(value)


def load_ground_truth(gt: PathOrDict, subset: str, name: str = "gt") -> _native.GroundTruth:
    """The ground truth of `subset` from a file or a dict."""
    if not isinstance(subset, str):
        raise TypeError(f"subset must be a str, not {type(subset).__name__}")
    if isinstance(gt, Mapping):
        return _native.GroundTruth.from_dict(_dict(gt), subset, f"{name} (dict)")
    return _native.GroundTruth.from_path(_path(gt, name), subset)


def load_proposals(pred: PathOrDict, name: str = "pred") -> _native.Proposals:
    """A proposal submission from a file or a dict."""
    if isinstance(pred, Mapping):
        return _native.Proposals.from_dict(_dict(pred), f"{name} (dict)")
    return _native.Proposals.from_path(_path(pred, name))


def load_detections(pred: PathOrDict, name: str = "pred") -> _native.Detections:
    """A detection submission from a file or a dict."""
    if isinstance(pred, Mapping):
        return _native.Detections.from_dict(_dict(pred), f"{name} (dict)")
    return _native.Detections.from_path(_path(pred, name))


def thresholds(
    tiou: Union[None, str, float, Sequence[float], np.ndarray], name: str = "tiou"
) -> Optional[List[float]]:
    """tIoU thresholds as a list of floats (None: the ActivityNet ones).

    A string is a preset name (activitynet, thumos14), a list (0.3,0.5,0.7)
    or a range with the stop included (0.5:0.95:0.05), as the CLI's --tiou.
    Numbers (one, a sequence, a 1-D array) are checked by the same rule as
    the text, the CLI's (in the extension): each in (0, 1], at least one,
    at most 10,000. Errors name the argument `name`.
    """
    if tiou is None:
        return None
    if isinstance(tiou, str):
        return _native.thresholds_from_text(tiou, name)
    if isinstance(tiou, (bytes, Mapping)):
        raise TypeError(_THRESHOLDS_TYPE.format(name=name, type=type(tiou).__name__))
    try:
        raw = np.asarray(tiou)
        kind = raw.dtype.kind
        if kind == "O":
            # Python objects (Fraction, Decimal, huge ints, ...): real numbers only.
            items = raw.reshape(-1).tolist()
            if not all(_is_real(v) for v in items):
                raise TypeError
            values = np.array([_float(v) for v in items], dtype=np.float64).reshape(raw.shape)
        elif kind in "iuf":
            values = raw.astype(np.float64)
        else:
            raise TypeError
    except (TypeError, ValueError):
        raise TypeError(_THRESHOLDS_TYPE.format(name=name, type=type(tiou).__name__)) from None
    if values.ndim > 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {values.shape}")
    return _native.check_thresholds(values.reshape(-1).tolist(), name)


_THRESHOLDS_TYPE = (
    "{name} must be None, a number, a sequence or 1-D array of numbers, or text "
    "(a preset, 0.3,0.5,0.7 or 0.5:0.95:0.05), not {type}"
)


def _is_real(value: Any) -> bool:
    """A real number, not a bool (numpy's bool is not a numbers.Real)."""
    return isinstance(value, (numbers.Real, decimal.Decimal)) and not isinstance(value, bool)


def _float(value: Any) -> float:
    """A real number as a float, one too large for it as an infinity."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


#: The range of M, the CLI's --max-proposals.
MAX_PROPOSALS_RANGE = (1, 1_000_000)


def check_max_proposals(value: Any, name: str, zero_keeps_all: bool = False) -> Optional[float]:
    """M, the maximum average number of proposals per video: a real number
    (int, float, numpy scalar or 0-d array; not a bool) in the CLI's range,
    1 to 1,000,000. With `zero_keeps_all` (the official ANETproposal's
    max_avg_nr_proposals), None or 0 is None: keep every proposal. Errors
    name the argument `name`."""
    lo, hi = MAX_PROPOSALS_RANGE
    number = value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        number = value[()]
    if zero_keeps_all and (value is None or (_is_real(number) and number == 0)):
        return None
    if not _is_real(number):
        shape = f" of shape {value.shape}" if isinstance(value, np.ndarray) else ""
        raise TypeError(
            f"{name} must be a number from {lo} to {hi}, not {type(value).__name__}{shape}"
        )
    m = _float(number)
    if not lo <= m <= hi:
        shown = repr(number)
        if len(shown) > 40:
            shown = f"{shown[:20]}... ({len(shown)} characters)"
        raise ValueError(f"{name} must be a number from {lo} to {hi}, got {shown}")
    return m


def flag(value: Any, name: str) -> bool:
    """A real bool (Python's or numpy's): "no" or 1 is not a yes."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool (True or False), not {type(value).__name__}")


def warn_once(messages: Sequence[str], stacklevel: int) -> None:
    """Issues each distinct message as an EvaluationWarning."""
    seen = set()
    for message in messages:
        if message not in seen:
            seen.add(message)
            warnings.warn(message, EvaluationWarning, stacklevel=stacklevel + 1)
