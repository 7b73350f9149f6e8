"""Times the official ActivityNet evaluation classes and tcanet_eval's
drop-in ones side by side, in one process, on the golden files and on a
large generated file; prints both times, the ratios, the host ISA and the
date, and checks that both give the same numbers.

    python evaluator/python/bench.py --official PATH/TO/ActivityNet

PATH is a checkout of the official code (github.com/activitynet/ActivityNet,
its root or its Evaluation/ folder), outside this repository. The Python
environment needs numpy, pandas and joblib (the official code's
dependencies) and tcanet_eval. The official sources are Python-2 era; they
are ported in memory at import (print statements, iteritems, xrange,
np.int / np.float / np.trapz, and an empty `urllib2` since check_status is
False), nothing is written. Not run by `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import lzma
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATA = REPO / "evaluator" / "tests" / "data"


def port_source(text: str) -> str:
    """The Python-3 reading of a Python-2 era official source file."""
    text = re.sub(r"(?m)^(\s*)print (.+)$", r"\1print(\2)", text)
    text = text.replace(".iteritems()", ".items()")
    text = re.sub(r"\bxrange\(", "range(", text)
    text = re.sub(r"\bnp\.(int|float)\b(?![\w.])", r"\1", text)
    if not hasattr(np, "trapz"):
        text = text.replace("np.trapz(", "np.trapezoid(")
    text = re.sub(r"(?m)^from \.?utils import", "from anet_official_utils import", text)
    return text


def load_module(path: Path, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = str(path)
    code = compile(port_source(path.read_text()), str(path), "exec")
    exec(code, module.__dict__)
    return module


def load_official(checkout: Path, jobs: int) -> Tuple[Any, Any]:
    """The official ANETproposal and ANETdetection classes from `checkout`;
    `jobs` > 0 caps the detection's joblib workers (one per class as written).

    The modules stay out of sys.modules afterwards, so that joblib pickles
    the official worker function by value for its subprocesses.
    """
    folder = checkout / "Evaluation" if (checkout / "Evaluation").is_dir() else checkout
    for f in ("eval_proposal.py", "eval_detection.py", "utils.py"):
        if not (folder / f).is_file():
            sys.exit(
                f"bench: {folder / f} not found: --official is a checkout of the ActivityNet repository"
            )
    saved = {k: sys.modules.get(k) for k in ("urllib2", "anet_official_utils")}
    try:
        sys.modules["urllib2"] = types.ModuleType("urllib2")  # only for get_blocked_videos
        sys.modules["anet_official_utils"] = load_module(folder / "utils.py", "anet_official_utils")
        proposal = load_module(folder / "eval_proposal.py", "anet_official_eval_proposal")
        detection = load_module(folder / "eval_detection.py", "anet_official_eval_detection")
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    if jobs > 0:
        import joblib

        def parallel(n_jobs: int = 1, **kwargs: Any) -> Any:
            return joblib.Parallel(n_jobs=min(n_jobs, jobs), **kwargs)

        detection.Parallel = parallel  # the global its method calls
    return proposal.ANETproposal, detection.ANETdetection


def host() -> str:
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line
                break
    except OSError:
        pass
    isa = [f for f in ("avx512f", "avx2") if re.search(rf"\b{f}\b", flags)]
    return (
        f"{platform.machine()} ({', '.join(isa) or 'no avx2'}), {os.cpu_count()} cores, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def data_files(workdir: Path, n_big: int) -> Dict[str, Path]:
    """The golden files (decompressed) and a generated ~n_big-detection file."""
    files = {}
    for name in ("activitynet13_gt", "golden_proposals", "golden_detections"):
        out = workdir / f"{name}.json"
        if not out.exists():
            out.write_bytes(lzma.decompress((DATA / f"{name}.json.xz").read_bytes()))
        files[name] = out
    big = workdir / f"generated_{n_big}.json"
    if not big.exists():
        print(f"generating {big.name} with the crate's gen_detections example ...", flush=True)
        subprocess.run(
            [
                "cargo",
                "run",
                "--release",
                "-q",
                "-p",
                "tcanet-evaluator",
                "--example",
                "gen_detections",
                "--",
                str(files["activitynet13_gt"]),
                str(big),
                str(n_big),
            ],
            cwd=REPO,
            check=True,
        )
    files["big"] = big
    return files


def timed(runs: int, f: Callable[[], Any]) -> Tuple[float, Any]:
    """The fastest of `runs` runs (seconds) and the last result."""
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = f()
        best = min(best, time.perf_counter() - start)
    return best, result


def proposal_run(cls: Any, gt: Path, pred: Path) -> Callable[[], Any]:
    def run() -> Any:
        a = cls(str(gt), str(pred), max_avg_nr_proposals=100, check_status=False)
        a.evaluate()
        return a

    return run


def detection_run(cls: Any, gt: Path, pred: Path) -> Callable[[], Any]:
    def run() -> Any:
        with contextlib.redirect_stdout(io.StringIO()):  # per-class "no predictions" lines
            a = cls(str(gt), str(pred), check_status=False)
            a.evaluate()
        return a

    return run


def largest_difference(ours: Any, official: Any) -> float:
    """The largest difference between the attributes both set."""
    if hasattr(ours, "recall"):
        pairs = [
            (ours.recall, official.recall),
            (ours.avg_recall, official.avg_recall),
            (ours.proposals_per_video, official.proposals_per_video),
        ]
    else:
        pairs = [(ours.ap, official.ap), (ours.mAP, official.mAP)]
    return max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in pairs)


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--official", type=Path, required=True, help="checkout of the official ActivityNet code"
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tcanet-eval-pybench",
        help="where the decompressed and generated files go (default: %(default)s)",
    )
    ap.add_argument(
        "--big",
        type=int,
        default=470_000,
        help="detections in the generated file (default: %(default)s)",
    )
    ap.add_argument(
        "--runs",
        type=int,
        default=5,
        help="runs of ours; the fastest counts (default: %(default)s)",
    )
    ap.add_argument(
        "--official-runs",
        type=int,
        default=1,
        help="runs of the official code (default: %(default)s)",
    )
    ap.add_argument(
        "--official-jobs",
        type=int,
        default=0,
        help="cap the official detection's joblib workers (default: one per class, as written)",
    )
    ap.add_argument(
        "--skip-official-big",
        action="store_true",
        help="time the official code on the golden files only",
    )
    args = ap.parse_args()
    if args.runs < 1 or args.official_runs < 1 or args.big < 1 or args.official_jobs < 0:
        ap.error("--runs, --official-runs and --big must be at least 1, --official-jobs at least 0")
    return args


def main() -> None:
    args = arguments()
    import pandas
    import tcanet_eval

    warnings.simplefilter("ignore", tcanet_eval.EvaluationWarning)
    official_proposal, official_detection = load_official(
        args.official.resolve(), args.official_jobs
    )
    args.workdir.mkdir(parents=True, exist_ok=True)
    files = data_files(args.workdir, args.big)
    gt = files["activitynet13_gt"]
    print(f"host: {host()}")
    print(f"date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pandas.__version__}, "
        f"tcanet_eval {tcanet_eval.__version__}; official code from {args.official}, "
        f"detection workers: {args.official_jobs or 'one per class'}"
    )
    print(f"{'task':<11} {'file':<28} {'official s':>11} {'ours s':>9} {'ratio':>8}  max |diff|")
    cases = [
        (
            "proposals",
            files["golden_proposals"],
            proposal_run,
            official_proposal,
            tcanet_eval.ANETproposal,
        ),
        ("proposals", files["big"], proposal_run, official_proposal, tcanet_eval.ANETproposal),
        (
            "detections",
            files["golden_detections"],
            detection_run,
            official_detection,
            tcanet_eval.ANETdetection,
        ),
        ("detections", files["big"], detection_run, official_detection, tcanet_eval.ANETdetection),
    ]
    for task, pred, make_run, official_cls, ours_cls in cases:
        t_ours, ours = timed(args.runs, make_run(ours_cls, gt, pred))
        if args.skip_official_big and pred == files["big"]:
            print(f"{task:<11} {pred.name:<28} {'-':>11} {t_ours:>9.3f} {'-':>8}", flush=True)
            continue
        t_off, off = timed(args.official_runs, make_run(official_cls, gt, pred))
        diff = largest_difference(ours, off)
        print(
            f"{task:<11} {pred.name:<28} {t_off:>11.3f} {t_ours:>9.3f} {t_off / t_ours:>7.0f}x  {diff:.3g}",
            flush=True,
        )
    print(
        f"(times: constructor + evaluate(), JSON reading included; ours the fastest of {args.runs} runs, "
        f"official of {args.official_runs})"
    )


if __name__ == "__main__":
    main()
