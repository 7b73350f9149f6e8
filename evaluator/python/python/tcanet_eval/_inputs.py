"""Turning the arguments of the public API into loaded native objects."""

from __future__ import annotations

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


def thresholds(tiou: Union[None, str, float, Sequence[float], np.ndarray]) -> Optional[List[float]]:
    """tIoU thresholds as a list of floats (None: the ActivityNet ones).

    A string is a preset name (activitynet, thumos14), a list (0.3,0.5,0.7)
    or a range with the stop included (0.5:0.95:0.05), as the CLI's --tiou.
    """
    if tiou is None:
        return None
    if isinstance(tiou, str):
        return _native.thresholds_from_text(tiou)
    try:
        values = np.asarray(tiou, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"tIoU thresholds must be numbers, got {tiou!r}") from None
    if values.ndim > 1:
        raise ValueError(f"tIoU thresholds must be one-dimensional, got shape {values.shape}")
    return values.reshape(-1).tolist()


def warn_once(messages: Sequence[str], stacklevel: int) -> None:
    """Issues each distinct message as an EvaluationWarning."""
    seen = set()
    for message in messages:
        if message not in seen:
            seen.add(message)
            warnings.warn(message, EvaluationWarning, stacklevel=stacklevel + 1)
