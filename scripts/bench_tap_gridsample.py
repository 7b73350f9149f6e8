"""Times ONNX `GridSample` as an alternative for the interpolation of one
TBR stage's three XW taps (hacs: 512 channels, a padded timeline of 1002
steps, 100 proposals x 64 outputs): three GridSample nodes (bilinear, zero
padding, align_corners=0) on a height-1 image, then Sum. Compare with the
per-region profile of `tcanet-export bench --profile` (docs/BENCHMARKS.md).

Usage (repository root): .venv/bin/python scripts/bench_tap_gridsample.py [--threads N] [--runs N]
"""
import argparse
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from nearest_rank import percentile

CHANNELS, STEPS, PROPOSALS, OUTPUTS = 512, 1002, 100, 64


def model() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS, 1, STEPS])
    g = helper.make_tensor_value_info("g", TensorProto.FLOAT, [1, PROPOSALS, OUTPUTS, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CHANNELS, PROPOSALS, OUTPUTS])
    taps = [
        helper.make_node("GridSample", ["x", "g"], [f"tap{k}"], mode="linear",
                         padding_mode="zeros", align_corners=0)
        for k in range(3)
    ]
    graph = helper.make_graph(taps + [helper.make_node("Sum", ["tap0", "tap1", "tap2"], ["y"])],
                              "taps", [x, g], [y])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    m.ir_version = 10
    onnx.checker.check_model(m)
    return m.SerializeToString()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, choices=range(1, 1025), metavar="N")
    ap.add_argument("--runs", type=int, default=20, choices=range(1, 100001), metavar="N")
    a = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    s = ort.InferenceSession(model(), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, CHANNELS, 1, STEPS), dtype=np.float32)
    g = np.zeros((1, PROPOSALS, OUTPUTS, 2), np.float32)
    g[..., 0] = rng.uniform(-1, 1, (1, PROPOSALS, OUTPUTS))
    for _ in range(3):
        s.run(None, {"x": x, "g": g})
    times = []
    for _ in range(a.runs):
        t = time.perf_counter()
        s.run(None, {"x": x, "g": g})
        times.append(time.perf_counter() - t)
    p50 = percentile(times, 0.5)
    print(f"3 GridSample + Sum, {a.threads} threads, {a.runs} runs: p50 {p50 * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
