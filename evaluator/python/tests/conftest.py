"""Shared fixtures: the golden data of evaluator/tests/data (decompressed
once per session), the official code's numbers on it, and the built
tcanet-eval binary (for comparisons with the CLI's --json)."""

from __future__ import annotations

import json
import lzma
from pathlib import Path
from typing import Dict

import pytest

from helpers import DATA, cli_path


@pytest.fixture(scope="session")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """Paths of the decompressed ground truth and golden submissions."""
    out = tmp_path_factory.mktemp("golden")
    files = {}
    for name in ("activitynet13_gt", "golden_proposals", "golden_detections"):
        path = out / f"{name}.json"
        path.write_bytes(lzma.decompress((DATA / f"{name}.json.xz").read_bytes()))
        files[name] = path
    return files


@pytest.fixture(scope="session")
def golden_dicts(golden: Dict[str, Path]) -> Dict[str, dict]:
    """The same files as Python objects (json.load)."""
    return {name: json.loads(path.read_text()) for name, path in golden.items()}


@pytest.fixture(scope="session")
def expected() -> dict:
    """What the official ActivityNet code computes on the golden files."""
    return json.loads((DATA / "golden_expected.json").read_text())


@pytest.fixture(scope="session")
def cli() -> Path:
    path = cli_path()
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: build it first (cargo build --release -p tcanet-evaluator; "
            "make test does), with the same CARGO_TARGET_DIR"
        )
    return path
