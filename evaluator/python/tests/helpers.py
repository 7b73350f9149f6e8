"""Helpers of the tests: the repository's paths, the CLI binary, JSON files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "evaluator" / "tests" / "data"

# Every number is compared within this (the Rust tests' tolerance).
TOL = 1e-9


def cli_path() -> Path:
    """The tcanet-eval binary that `make test` builds before running pytest."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / "release" / "tcanet-eval"


def run_cli(cli: Path, args: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(cli), *args], capture_output=True, text=True)


def cli_json(cli: Path, args: List[str]) -> dict:
    done = run_cli(cli, [*args, "--json"])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def cli_error(cli: Path, args: List[str]) -> str:
    """The CLI's error message (without `error: `) for bad input (exit 2)."""
    done = run_cli(cli, args)
    assert done.returncode == 2, (done.returncode, done.stderr)
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), done.stderr
    return line[len("error: ") :]


def write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path
