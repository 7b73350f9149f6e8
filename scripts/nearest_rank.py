"""The percentile rule of the project's bench commands, for its Python
benchmark scripts: nearest rank, as `tcanet_models::stats::percentile`
computes it (the sample of 1-based rank ceil(q * n), at least 1, with a
product within 1e-9 of a whole number counted as that number)."""
import math


def percentile(samples, q):
    """The `q` percentile (0 <= q <= 1) of `samples` (any order); NaN when
    there is none."""
    s = sorted(samples)
    if not s:
        return float("nan")
    return s[min(len(s), max(1, math.ceil(q * len(s) - 1e-9))) - 1]
