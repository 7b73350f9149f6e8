"""Times layouts of one TBR stage's XW head after its tap sums (hacs:
100 proposals, 64 tap-sum outputs of 512 channels in 4 groups, the conv
`reg_1d_b.2` (kernel 3, stride 2) to 32 outputs, then `reg_1d_o.0` over
those 32 outputs), as one-stage ONNX Runtime models on random weights:

* graph: the exported graph's form, channels-last input, `Transpose`, the
  grouped `Conv` + `Relu` (ONNX Runtime's blocked conv and its layout
  reorders), then `reg_1d_o.0` as one batched `MatMul` over the groups;
* graph, channels-first: the same from a channels-first input (no
  `Transpose`; ONNX Runtime's input reorder then starts from NCHW);
* batched: the conv windows of every group as one `[4, 3200, 384]` input,
  one batched `MatMul` + bias + `Relu`, then `reg_1d_o.0` as a batched
  `MatMul` (no blocked conv; windows not timed, as below);
* per group: each group's conv windows as a `[3200, 384]` input, a 2-D
  `MatMul` + bias + `Relu`, then `reg_1d_o.0` as a 2-D `MatMul`, the
  groups concatenated (no blocked conv; the windows would have to be read
  by the tap sums, which this does not time);
* odd Winograd: the conv as y_j = W1·x_2j + (W0·x_2j−1 + W2·x_2j+1), the
  odd inputs' two-tap part by Winograd's F(2, 2), 2.5 products per output
  instead of 3. Per tile m of two outputs, y_2m = [x_4m | x_4m−1 − x_4m+1]
  @ [W1; W0] + P and y_2m+1 = [x_4m+2 | x_4m+3 − x_4m+1] @ [W1; W2] + P,
  with P = x_4m+1 @ (W0 + W2): one batched `MatMul` of K = 256 for both
  outputs, one of K = 128 for P, the `Add`s, bias, `Relu`, the reorder
  to each proposal's outputs and `reg_1d_o.0` (tiles as inputs, as the tap
  sums would have to write them; not timed). Built into the whole graph,
  this form was slower than the graph's (docs/BENCHMARKS.md): writing the
  tiles costs the tap sums more than this model shows.

Prints each model's sum of per-node minimum kernel times (ONNX Runtime's
profiler) and its nodes.

Usage (repository root): .venv/bin/python scripts/bench_xw_head_layouts.py [--threads N] [--runs N]
"""
import argparse
import collections
import json
import os
import tempfile

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

PROPOSALS, OUTPUTS, CHANNELS, GROUPS, KERNEL = 100, 64, 512, 4, 3
OUT = OUTPUTS // 2  # stride 2, padding 1
PER_GROUP = CHANNELS // GROUPS


def session(nodes, inputs, inits, threads, prefix):
    graph = helper.make_graph(
        nodes, "xw_head", inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.enable_profiling = True
    opts.profile_file_prefix = prefix
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def node_minima(sess, feeds, runs):
    """{node: min kernel ms} over `runs` runs after 5 warm-up runs."""
    for _ in range(5 + runs):
        sess.run(None, feeds)
    path = sess.end_profiling()
    times = collections.defaultdict(list)
    with open(path) as f:
        for e in json.load(f):
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                times[e["name"][: -len("_kernel_time")]].append(e["dur"])
    os.remove(path)
    return {k: min(v) / 1000 for k, v in times.items()}


def graph_form(rng, threads, prefix, channels_first=False):
    f32 = np.float32
    w = (rng.standard_normal((CHANNELS, PER_GROUP, 1, KERNEL)) * 0.05).astype(f32)
    wo = (rng.standard_normal((GROUPS, OUT * PER_GROUP, PER_GROUP)) * 0.01).astype(f32)
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["xt", "w", "b"], ["c"], group=GROUPS,
                         kernel_shape=[1, KERNEL], pads=[0, 1, 0, 1], strides=[1, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Reshape", ["r", "per_group"], ["g"]),
        helper.make_node("Transpose", ["g"], ["gt"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["gt", "wo"], ["o"]),
        helper.make_node("Transpose", ["o"], ["ot"], perm=[1, 0, 2]),
        helper.make_node("Reshape", ["ot", "merged"], ["m"]),
        helper.make_node("Add", ["m", "bo"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.zeros(CHANNELS, f32), "b"),
        numpy_helper.from_array(wo, "wo"),
        numpy_helper.from_array(np.zeros(CHANNELS, f32), "bo"),
        numpy_helper.from_array(np.array([PROPOSALS, GROUPS, OUT * PER_GROUP], np.int64), "per_group"),
        numpy_helper.from_array(np.array([PROPOSALS, CHANNELS], np.int64), "merged"),
    ]
    shape = (PROPOSALS, 1, OUTPUTS, CHANNELS)
    if channels_first:
        nodes[0] = helper.make_node("Identity", ["x"], ["xt"])
        shape = (PROPOSALS, CHANNELS, 1, OUTPUTS)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    sess = session(nodes, [x], inits, threads, prefix + "graph")
    return sess, {"x": rng.standard_normal(shape).astype(f32)}


def full_conv_tail(rng, relu_out):
    """`reg_1d_o.0` as one batched `MatMul` on `relu_out` (each group's
    outputs of a proposal in a row: `[G, P, OUT·C/G]` once reshaped), then
    the groups side by side and the bias: the nodes and initializers."""
    f32 = np.float32
    wo = (rng.standard_normal((GROUPS, OUT * PER_GROUP, PER_GROUP)) * 0.01).astype(f32)
    nodes = [
        helper.make_node("Reshape", [relu_out, "per_group"], ["g"]),
        helper.make_node("MatMul", ["g", "wo"], ["o"]),
        helper.make_node("Transpose", ["o"], ["ot"], perm=[1, 0, 2]),
        helper.make_node("Reshape", ["ot", "merged"], ["c"]),
        helper.make_node("Add", ["c", "bo"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(wo, "wo"),
        numpy_helper.from_array(np.zeros(CHANNELS, f32), "bo"),
        numpy_helper.from_array(np.array([GROUPS, PROPOSALS, OUT * PER_GROUP], np.int64), "per_group"),
        numpy_helper.from_array(np.array([PROPOSALS, CHANNELS], np.int64), "merged"),
    ]
    return nodes, inits


def batched_form(rng, threads, prefix):
    f32 = np.float32
    rows, cols = PROPOSALS * OUT, KERNEL * PER_GROUP
    w = (rng.standard_normal((GROUPS, cols, PER_GROUP)) * 0.05).astype(f32)
    tail, tail_inits = full_conv_tail(rng, "r")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
    ] + tail
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.zeros((GROUPS, 1, PER_GROUP), f32), "b"),
    ] + tail_inits
    shape = (GROUPS, rows, cols)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    sess = session(nodes, [x], inits, threads, prefix + "batched")
    return sess, {"x": rng.standard_normal(shape).astype(f32)}


def per_group_form(rng, threads, prefix):
    f32 = np.float32
    rows, cols = PROPOSALS * OUT, KERNEL * PER_GROUP
    nodes, inits, inputs, feeds = [], [], [], {}
    inits.append(numpy_helper.from_array(np.array([PROPOSALS, OUT * PER_GROUP], np.int64), "flat"))
    for g in range(GROUPS):
        w = (rng.standard_normal((cols, PER_GROUP)) * 0.05).astype(f32)
        wo = (rng.standard_normal((OUT * PER_GROUP, PER_GROUP)) * 0.01).astype(f32)
        inits += [numpy_helper.from_array(w, f"w{g}"),
                  numpy_helper.from_array(np.zeros(PER_GROUP, f32), f"b{g}"),
                  numpy_helper.from_array(wo, f"wo{g}")]
        nodes += [helper.make_node("MatMul", [f"x{g}", f"w{g}"], [f"m{g}"]),
                  helper.make_node("Add", [f"m{g}", f"b{g}"], [f"a{g}"]),
                  helper.make_node("Relu", [f"a{g}"], [f"r{g}"]),
                  helper.make_node("Reshape", [f"r{g}", "flat"], [f"q{g}"]),
                  helper.make_node("MatMul", [f"q{g}", f"wo{g}"], [f"o{g}"])]
        inputs.append(helper.make_tensor_value_info(f"x{g}", TensorProto.FLOAT, (rows, cols)))
        feeds[f"x{g}"] = rng.standard_normal((rows, cols)).astype(f32)
    inits.append(numpy_helper.from_array(np.zeros(CHANNELS, f32), "bo"))
    nodes += [helper.make_node("Concat", [f"o{g}" for g in range(GROUPS)], ["c"], axis=1),
              helper.make_node("Add", ["c", "bo"], ["y"])]
    return session(nodes, inputs, inits, threads, prefix + "per_group"), feeds


def odd_winograd_form(rng, threads, prefix):
    f32 = np.float32
    tiles = PROPOSALS * OUT // 2
    w = (rng.standard_normal((GROUPS, 2, 2 * PER_GROUP, PER_GROUP)) * 0.05).astype(f32)
    wp = (rng.standard_normal((GROUPS, 1, PER_GROUP, PER_GROUP)) * 0.05).astype(f32)
    tail, tail_inits = full_conv_tail(rng, "rt")
    nodes = [
        helper.make_node("MatMul", ["pairs", "w"], ["q"]),  # [G, 2, tiles, C/G]
        helper.make_node("MatMul", ["middle", "wp"], ["p"]),  # [G, 1, tiles, C/G]
        helper.make_node("Add", ["q", "p"], ["s"]),
        helper.make_node("Add", ["s", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        # [G, parity, P, tile, C/G] → [G, P, parity·tile·C/G]
        helper.make_node("Reshape", ["r", "by_proposal"], ["rp"]),
        helper.make_node("Transpose", ["rp"], ["rt"], perm=[0, 2, 1, 3, 4]),
    ] + tail
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(wp, "wp"),
        numpy_helper.from_array(np.zeros((GROUPS, 1, 1, PER_GROUP), f32), "b"),
        numpy_helper.from_array(
            np.array([GROUPS, 2, PROPOSALS, OUT // 2, PER_GROUP], np.int64), "by_proposal"),
    ] + tail_inits
    shapes = {"pairs": (GROUPS, 2, tiles, 2 * PER_GROUP), "middle": (GROUPS, 1, tiles, PER_GROUP)}
    inputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in shapes.items()]
    feeds = {k: rng.standard_normal(v).astype(f32) for k, v in shapes.items()}
    return session(nodes, inputs, inits, threads, prefix + "odd_winograd"), feeds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    if args.threads < 1 or args.runs < 1:
        ap.error("--threads and --runs must be at least 1")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "profile_")
        forms = [
            ("graph", graph_form),
            ("graph, channels-first",
             lambda *a: graph_form(*a, channels_first=True)),
            ("batched", batched_form),
            ("per group", per_group_form),
            ("odd Winograd", odd_winograd_form),
        ]
        for name, build in forms:
            sess, feeds = build(rng, args.threads, prefix)
            minima = node_minima(sess, feeds, args.runs)
            parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(minima.items()))
            print(f"{name}: {sum(minima.values()):.2f} ms ({args.threads} threads; {parts})")


if __name__ == "__main__":
    main()
