"""Drives `tcanet-infer serve` with Triton's own HTTP client (tritonclient.http).

Run by runtime/tests/serve.rs and runtime/bench-serve.sh with the project venv's
python. Each subcommand prints one JSON object on stdout and exits non-zero (with
the reason on stderr) when a check fails.

  check     health, metadata, both models with binary and JSON tensors, 8 threads:
            tcanet_refine against `tcanet-infer run`'s refined.json, tcanet against
            onnxruntime on the same arrays
  bad       wrong shape, datatype, NaN, missing input, unknown model, oversize
  limits    a full queue (503) and a request past its time limit (504)
  shutdown  8 requests queued, SIGTERM to the server, all 8 must be answered
  load      N clients for S seconds (after a warm-up): throughput, p50/p99 latency,
            errors, the server's CPU time per request and RSS
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.request

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

TOL = 1e-6


def fail(msg):
    print(f"FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def client(url):
    # One client per thread: InferenceServerClient is not thread-safe.
    return httpclient.InferenceServerClient(url=url, connection_timeout=60, network_timeout=120)


def load_videos(data_dir, subset="validation"):
    """The dataset as `tcanet-infer run` reads it: features [C, steps], proposals, duration."""
    with open(os.path.join(data_dir, "annotations.json")) as f:
        db = json.load(f)["database"]
    with open(os.path.join(data_dir, "proposals.json")) as f:
        props = json.load(f)["results"]
    videos = []
    for vid, info in db.items():
        if info["subset"] != subset:
            continue
        feats = np.load(os.path.join(data_dir, "features", f"{vid}.npy")).astype(np.float32)
        videos.append(
            {
                "id": vid,
                "features": np.ascontiguousarray(feats.T),  # [T, C] file -> [C, T]
                "proposals": np.array([p["segment"] for p in props[vid]], dtype=np.float64),
                "scores": np.array([p["score"] for p in props[vid]], dtype=np.float64),
                "duration": float(info["duration"]),
            }
        )
    return videos


def refine_inputs(vs, binary):
    """The inputs of a batch of videos (of the same steps and proposal count)."""

    def batch(key):
        return vs[0][key][None] if len(vs) == 1 else np.stack([v[key] for v in vs])

    arrays = [
        ("features", batch("features"), "FP32"),
        ("proposals", batch("proposals"), "FP64"),
        ("proposal_scores", batch("scores"), "FP64"),
        ("duration", np.array([[v["duration"]] for v in vs], dtype=np.float64), "FP64"),
    ]
    inputs = []
    for name, arr, dtype in arrays:
        inp = httpclient.InferInput(name, list(arr.shape), dtype)
        inp.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(inp)
    return inputs


def refine(c, v, binary):
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("segments", "scores", "count")]
    r = c.infer("tcanet_refine", refine_inputs([v], binary), outputs=outputs, request_id=v["id"])
    k = int(r.as_numpy("count")[0, 0])
    return r.as_numpy("segments")[0, :k], r.as_numpy("scores")[0, :k], r.get_response()


def compare_refined(v, segs, scores, expected):
    want = expected[v["id"]]
    expect(len(want) == len(segs), f"{v['id']}: {len(segs)} proposals, run wrote {len(want)}")
    worst = 0.0
    for (s, e), sc, w in zip(segs, scores, want):
        worst = max(worst, abs(s - w["segment"][0]), abs(e - w["segment"][1]), abs(sc - w["score"]))
    expect(worst <= TOL, f"{v['id']}: differs from run by {worst}")
    return worst


def check(args):
    videos = load_videos(args.data)
    with open(args.refined) as f:
        expected = json.load(f)["results"]
    c = client(args.url)
    expect(c.is_server_live() and c.is_server_ready(), "server not live/ready")
    meta = c.get_server_metadata()
    expect("binary_tensor_data" in meta["extensions"], f"server metadata {meta}")
    for name in ("tcanet", "tcanet_refine"):
        expect(c.is_model_ready(name), f"{name} not ready")
    raw_meta = c.get_model_metadata("tcanet")
    refine_meta = c.get_model_metadata("tcanet_refine")
    config = c.get_model_config("tcanet")
    index = c.get_model_repository_index()
    expect({m["name"] for m in index} == {"tcanet", "tcanet_refine"}, f"index {index}")

    # tcanet_refine, binary and JSON, one client per thread, 8 threads.
    worst = [0.0]
    errors = []
    lock = threading.Lock()

    def worker(part, binary):
        try:
            cc = client(args.url)
            for v in part:
                segs, scores, resp = refine(cc, v, binary)
                expect(resp.get("id") == v["id"], f"id echoed: {resp.get('id')}")
                w = compare_refined(v, segs, scores, expected)
                with lock:
                    worst[0] = max(worst[0], w)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    for binary in (True, False):
        threads = [threading.Thread(target=worker, args=(videos[i::8], binary)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    expect(not errors, f"refine errors: {errors}")

    # tcanet (raw) against onnxruntime on the same arrays, B = 2, binary and JSON.
    import onnxruntime as ort

    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    shape = raw_meta["inputs"][0]["shape"]
    c_dim, t_dim = shape[1], shape[2] if shape[2] > 0 else 48
    raw_worst = 0.0
    for binary in (True, False):
        feats = rng.uniform(-1, 1, (2, c_dim, t_dim)).astype(np.float32)
        starts = rng.uniform(0, 0.7, (2, 9, 1))
        props = np.concatenate([starts, starts + rng.uniform(0.05, 0.3, (2, 9, 1))], axis=2).astype(np.float32)
        inputs = []
        for name, arr in (("features", feats), ("proposals", props)):
            inp = httpclient.InferInput(name, list(arr.shape), "FP32")
            inp.set_data_from_numpy(arr, binary_data=binary)
            inputs.append(inp)
        outs = ["proposals_1", "proposals_2", "proposals_3", "iou_1", "iou_2", "iou_3"]
        r = c.infer("tcanet", inputs, outputs=[httpclient.InferRequestedOutput(n, binary_data=binary) for n in outs])
        want = sess.run(outs, {"features": feats, "proposals": props})
        for name, w in zip(outs, want):
            got = r.as_numpy(name)
            expect(got.dtype == np.float32 and got.shape == w.shape, f"{name}: {got.dtype} {got.shape}")
            raw_worst = max(raw_worst, float(np.max(np.abs(got - w))))
        # No outputs named: all six come back, binary (tritonclient asks binary_data_output).
        r = c.infer("tcanet", inputs)
        expect(len(r.get_response()["outputs"]) == 6, "all outputs by default")
    expect(raw_worst <= TOL, f"raw outputs differ from onnxruntime by {raw_worst}")

    metrics = urllib.request.urlopen(f"http://{args.url}/metrics").read().decode()

    # Two videos in one tcanet_refine request (B = 2), binary and JSON: each
    # row as the video alone (both cut to the shorter one's steps and
    # proposals). After reading the metrics, which count the requests above.
    steps = min(v["features"].shape[1] for v in videos[:2])
    n = min(len(v["scores"]) for v in videos[:2])
    pair = [
        {**v, "features": np.ascontiguousarray(v["features"][:, :steps]), "proposals": v["proposals"][:n], "scores": v["scores"][:n]}
        for v in videos[:2]
    ]
    alone = [refine(c, v, True)[:2] for v in pair]
    batch_worst = 0.0
    for binary in (True, False):
        outputs = [httpclient.InferRequestedOutput(o, binary_data=binary) for o in ("segments", "scores", "count")]
        r = c.infer("tcanet_refine", refine_inputs(pair, binary), outputs=outputs)
        for i, (segs, scores) in enumerate(alone):
            k = int(r.as_numpy("count")[i, 0])
            expect(k == len(segs), f"batch item {i}: {k} proposals, {len(segs)} alone")
            batch_worst = max(
                batch_worst,
                float(np.max(np.abs(r.as_numpy("segments")[i, :k] - segs), initial=0.0)),
                float(np.max(np.abs(r.as_numpy("scores")[i, :k] - scores), initial=0.0)),
            )
    expect(batch_worst <= TOL, f"a batch of two differs from the videos alone by {batch_worst}")

    print(
        json.dumps(
            {
                "videos": len(videos),
                "refine_worst_abs_diff": worst[0],
                "raw_worst_abs_diff": raw_worst,
                "refine_batch_worst_abs_diff": batch_worst,
                "raw_metadata": raw_meta,
                "refine_metadata": refine_meta,
                "config": config,
                "metrics": metrics,
            }
        )
    )


def expect_error(call, status, *needles):
    try:
        call()
    except InferenceServerException as e:
        msg = e.message() or ""
        expect(e.status() == str(status), f"status {e.status()} (wanted {status}): {msg}")
        for n in needles:
            expect(n in msg, f"'{n}' not in: {msg}")
        return msg
    fail(f"no error (wanted {status} with {needles})")


def bad(args):
    videos = load_videos(args.data)
    v = videos[0]
    c = client(args.url)
    report = {}

    def with_inputs(mutate):
        inputs = refine_inputs([v], True)
        mutate(inputs)
        return lambda: c.infer("tcanet_refine", inputs)

    # Wrong shape: features with one channel too few.
    def shape(inputs):
        f = v["features"][None, :-1]
        inputs[0] = httpclient.InferInput("features", list(f.shape), "FP32")
        inputs[0].set_data_from_numpy(f)

    report["shape"] = expect_error(with_inputs(shape), 400, "'features'", "shape")

    # Wrong datatype: proposals as FP32.
    def dtype(inputs):
        p = v["proposals"][None].astype(np.float32)
        inputs[1] = httpclient.InferInput("proposals", list(p.shape), "FP32")
        inputs[1].set_data_from_numpy(p)

    report["datatype"] = expect_error(with_inputs(dtype), 400, "'proposals'", "FP32", "FP64")

    # NaN in the features (binary), and in the scores (JSON).
    def nan(inputs):
        f = v["features"][None].copy()
        f[0, 3, 5] = np.nan
        inputs[0].set_data_from_numpy(f)

    report["nan_binary"] = expect_error(with_inputs(nan), 400, "'features'", "not finite")

    def nan_json(inputs):
        s = v["scores"][None].copy()
        s[0, 1] = np.inf
        inputs[2].set_data_from_numpy(s, binary_data=False)

    try:
        report["nan_json"] = expect_error(with_inputs(nan_json), 400, "'proposal_scores'", "not finite")
    except ValueError:
        report["nan_json"] = "the client refuses to write Infinity in JSON"

    # A proposal beyond the video.
    def beyond(inputs):
        p = v["proposals"][None].copy()
        p[0, 0, 1] = v["duration"] * 2
        inputs[1].set_data_from_numpy(p)

    report["beyond"] = expect_error(with_inputs(beyond), 400, "proposals[0]", "beyond the video")
    report["missing"] = expect_error(with_inputs(lambda i: i.pop(3)), 400, "missing input 'duration'")
    report["unknown_model"] = expect_error(lambda: c.infer("nope", refine_inputs([v], True)), 404, "unknown model 'nope'")
    expect(not c.is_model_ready("nope"), "an unknown model is not ready")
    status = urllib.request.urlopen(f"http://{args.url}/v2/models/tcanet_refine/versions/1/ready").status
    expect(status == 200, f"version 1 ready: {status}")
    report["unknown_output"] = expect_error(
        lambda: c.infer("tcanet_refine", refine_inputs([v], True), outputs=[httpclient.InferRequestedOutput("x")]),
        400,
        "'x'",
    )
    big = np.zeros((1, v["features"].shape[0], (args.max_request_mib << 20) // (4 * v["features"].shape[0]) + 1), np.float32)
    inputs = refine_inputs([v], True)
    inputs[0] = httpclient.InferInput("features", list(big.shape), "FP32")
    inputs[0].set_data_from_numpy(big)
    report["oversize"] = expect_error(lambda: c.infer("tcanet_refine", inputs), 413, "--max-request-mib")
    # Still serving, and still right.
    expect(client(args.url).is_server_ready(), "not ready after bad requests")
    with open(args.refined) as f:
        compare_refined(v, *refine(client(args.url), v, True)[:2], json.load(f)["results"])
    print(json.dumps(report))


def queue_depth(url):
    text = urllib.request.urlopen(f"http://{url}/metrics").read().decode()
    for line in text.splitlines():
        if line.startswith("tcanet_queue_depth "):
            return int(line.split()[1])
    fail("no tcanet_queue_depth in /metrics")


def shutdown(args):
    """8 requests wait in the queue (long queue delay); SIGTERM; all must be answered."""
    videos = load_videos(args.data)[:8]
    with open(args.refined) as f:
        expected = json.load(f)["results"]
    results, errors = {}, []

    def one(v):
        try:
            segs, scores, _ = refine(client(args.url), v, True)
            results[v["id"]] = compare_refined(v, segs, scores, expected)
        except BaseException as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(v,)) for v in videos]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while queue_depth(args.url) < len(videos) and time.time() < deadline:
        time.sleep(0.01)
    depth = queue_depth(args.url)
    os.kill(args.pid, signal.SIGTERM)
    for t in threads:
        t.join()
    expect(not errors, f"in-flight requests failed: {errors}")
    expect(len(results) == len(videos), f"{len(results)} of {len(videos)} answered")
    refused = False
    try:
        client(args.url).is_server_live()
    except Exception:  # noqa: BLE001 - connection refused after shutdown
        refused = True
    print(json.dumps({"queued_at_sigterm": depth, "answered": len(results), "refused_after": refused}))


def limits(args):
    """With --max-queue-size 1, a long queue delay and a short time limit:
    a second request while one waits is refused (503), the waiting one times out (504)."""
    v = load_videos(args.data)[0]
    first = {}

    def wait_in_queue():
        try:
            refine(client(args.url), v, True)
            first["error"] = "answered"
        except InferenceServerException as e:
            first["status"], first["message"] = e.status(), e.message()

    t = threading.Thread(target=wait_in_queue)
    t.start()
    deadline = time.time() + 30
    while queue_depth(args.url) < 1 and time.time() < deadline:
        time.sleep(0.005)
    full = expect_error(lambda: refine(client(args.url), v, True), 503, "queue is full")
    t.join()
    expect(first.get("status") == "504", f"the queued request: {first}")
    expect("--request-timeout-s" in first["message"], first["message"])
    expect(queue_depth(args.url) == 0, "the timed-out request left the queue")
    expect(client(args.url).is_server_ready(), "not ready after the limits")
    print(json.dumps({"queue_full": full, "timeout": first["message"]}))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User + system CPU seconds the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # from field 3 (state) on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_side(url):
    """From /metrics: model calls, videos per call, time per call and per request."""
    text = urllib.request.urlopen(f"http://{url}/metrics").read().decode()
    values = {}
    for line in text.splitlines():
        if not line.startswith("#") and " " in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    calls = values.get("tcanet_batch_videos_count", 0)
    requests = values.get('tcanet_infer_request_duration_seconds_count{model="tcanet_refine"}', 0)
    return {
        "model_calls": int(calls),
        "videos_per_call": round(values.get("tcanet_batch_videos_sum", 0) / max(calls, 1), 2),
        "ms_per_call": round(1e3 * values.get("tcanet_model_call_duration_seconds_sum", 0) / max(calls, 1), 2),
        "server_ms_per_request": round(
            1e3 * values.get('tcanet_infer_request_duration_seconds_sum{model="tcanet_refine"}', 0) / max(requests, 1), 2
        ),
    }


def load(args):
    videos = load_videos(args.data)
    warm_until = time.time() + args.warmup
    stop_at = warm_until + args.seconds
    latencies, errors = [], []
    lock = threading.Lock()
    rss = []

    def worker(i):
        c = client(args.url)
        j = i
        measured = 0
        # Until the time is up, and at least --min-requests measured ones
        # (a slow machine still sends each client's share).
        while time.time() < stop_at or measured < args.min_requests:
            v = videos[j % len(videos)]
            j += args.clients
            t0 = time.perf_counter()
            warm = time.time() < warm_until
            try:
                refine(c, v, True)
                if not warm:
                    measured += 1
                    with lock:
                        latencies.append(time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001 - counted
                measured += not warm
                with lock:
                    errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(max(warm_until - time.time(), 0))
    started = time.time()
    cpu_start = cpu_seconds(args.pid)
    while any(t.is_alive() for t in threads):
        rss.append((round(time.time() - started, 2), rss_kib(args.pid)))
        time.sleep(max(args.seconds / 20, 0.1))
    for t in threads:
        t.join()
    elapsed = time.time() - started
    cpu = cpu_seconds(args.pid) - cpu_start
    lat = np.array(latencies) * 1e3
    # p50/p99 by nearest rank (numpy's inverted_cdf), the rule of the bench commands.
    server = server_side(args.url)
    print(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": round(elapsed, 2),
                "requests": len(latencies),
                "errors": len(errors),
                "first_errors": errors[:3],
                "throughput_rps": round(len(latencies) / elapsed, 2),
                "p50_ms": round(float(np.percentile(lat, 50, method="inverted_cdf")), 2) if len(lat) else None,
                "p99_ms": round(float(np.percentile(lat, 99, method="inverted_cdf")), 2) if len(lat) else None,
                "server_cpu_ms_per_request": round(1e3 * cpu / max(len(latencies), 1), 1),
                "rss_kib": rss,
                "server": server,
            }
        )
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["check", "bad", "limits", "shutdown", "load"])
    p.add_argument("--url", required=True, help="host:port")
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--refined", help="tcanet-infer run's output on --data")
    p.add_argument("--model", help="the served .onnx (check)")
    p.add_argument("--pid", type=int, help="the server's process id (shutdown, load)")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--warmup", type=float, default=0.0, help="seconds of load before measuring (load)")
    p.add_argument("--min-requests", type=int, default=0, help="measured requests per client at least (load)")
    p.add_argument("--max-request-mib", type=int, default=1)
    args = p.parse_args()
    commands = {"check": check, "bad": bad, "limits": limits, "shutdown": shutdown, "load": load}
    commands[args.command](args)


if __name__ == "__main__":
    main()
