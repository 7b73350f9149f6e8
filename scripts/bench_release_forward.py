"""Times the authors' PyTorch TCANet forward (inference mode) on random
weights of the hacs shapes, from a checkout of their public release given on
the command line (their code is imported from there, never copied here).

Usage: python scripts/bench_release_forward.py RELEASE_DIR --threads 2 --runs 5 [--proposals 100]
Prints one JSON object: per-run latencies (ms), p50, p90 and the process's
peak RSS (MiB).
"""
import argparse
import json
import resource
import sys
import time
import types
import warnings

from nearest_rank import percentile


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("release_dir", help="checkout of the authors' TCANet release")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--proposals", type=int, default=100)
    args = ap.parse_args()
    if args.threads < 1 or args.runs < 1 or args.proposals < 1 or args.warmup < 0:
        ap.error("--threads, --runs and --proposals must be at least 1, --warmup at least 0")

    import torch

    # The release calls affine_grid/grid_sample without align_corners
    # (False, what it was trained with); PyTorch warns about the default.
    warnings.filterwarnings("ignore", category=UserWarning)

    torch.set_num_threads(args.threads)
    sys.path.insert(0, args.release_dir)
    # The release imports a debugger it never calls at inference.
    sys.modules.setdefault("ipdb", types.SimpleNamespace(set_trace=lambda: None))
    from tcanet import TCANet  # noqa: E402  (the release's module)

    # The release's HACS defaults (its opts.py).
    opt = dict(feat_dim=2304, lgte_num=2, temporal_scale=1000, window_size=9,
               start_sample_num=32, end_sample_num=32, action_sample_num=64,
               prop_boundary_ratio=0.5, temporal_interval=8.0 / 15.0)
    torch.manual_seed(0)
    model = TCANet("inference", opt).eval()
    duration = opt["temporal_scale"] * opt["temporal_interval"]
    g = torch.Generator().manual_seed(1)
    features = torch.randn(1, opt["feat_dim"], opt["temporal_scale"], generator=g)
    start = torch.rand(1, args.proposals, generator=g) * 0.8 * duration
    length = (0.02 + 0.28 * torch.rand(1, args.proposals, generator=g)) * duration
    video_sec = torch.tensor([duration])

    def forward():
        # [B, N, 3]: start, end, and a column the release overwrites with the video index.
        proposals = torch.stack([start, start + length, torch.zeros_like(start)], dim=2)
        with torch.no_grad():
            return model((features, video_sec, proposals, None, None))

    for _ in range(args.warmup):
        forward()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        forward()
        times.append((time.perf_counter() - t0) * 1e3)
    pick = lambda q: percentile(times, q)
    print(json.dumps({
        "engine": f"pytorch {torch.__version__}",
        "threads": args.threads,
        "proposals": args.proposals,
        "times_ms": times,
        "p50_ms": pick(0.5),
        "p90_ms": pick(0.9),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
