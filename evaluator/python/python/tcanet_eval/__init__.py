"""tcanet_eval: leaderboard-exact ActivityNet evaluation (Rust, no network).

Functions returning what `tcanet-eval --json` prints:

    from tcanet_eval import evaluate_proposals, evaluate_detections
    report = evaluate_proposals("gt.json", "proposals.json")   # or dicts
    report["AUC"], report["AR@100"]

Drop-in replacements for the official classes (same constructor, same
attributes after evaluate()):

    from tcanet_eval import ANETproposal, ANETdetection
"""

from ._anet import ANETdetection, ANETproposal
from ._functions import evaluate_detections, evaluate_proposals
from ._inputs import EvaluationWarning
from ._native import __version__

__all__ = [
    "ANETdetection",
    "ANETproposal",
    "EvaluationWarning",
    "evaluate_detections",
    "evaluate_proposals",
    "__version__",
]
