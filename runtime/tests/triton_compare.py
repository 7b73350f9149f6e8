"""Compares `tcanet-infer serve` with Triton Inference Server on the model `tcanet`.

Triton here is PyTriton's (PyPI `nvidia-pytriton`) serving a Python function that
runs the same ONNX file through onnxruntime (`--serve-triton MODEL PORT` starts it;
it needs a python whose libpython is shared, e.g. Debian's python3.11). The
comparison sends the same raw HTTP requests to both servers and compares what a
client sees: status codes, metadata, response headers and JSON layout, binary and
JSON outputs, and the error bodies (printed side by side; the wording differs).

  python triton_compare.py --ours HOST:PORT --triton HOST:PORT
  python triton_compare.py --serve-triton model.onnx 8500     # in PyTriton's venv
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

import numpy as np

OUTPUTS = ["proposals_1", "proposals_2", "proposals_3", "iou_1", "iou_2", "iou_3"]


def serve_triton(model, port):
    import onnxruntime as ort
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    c, t = sess.get_inputs()[0].shape[1:]

    @batch
    def infer(features, proposals):
        return dict(zip(OUTPUTS, sess.run(OUTPUTS, {"features": features, "proposals": proposals})))

    outputs = [Tensor(name=n, dtype=np.float32, shape=(-1, 2) if n.startswith("proposals") else (-1,)) for n in OUTPUTS]
    config = TritonConfig(http_port=port, grpc_port=port + 1, metrics_port=port + 2)
    with Triton(config=config) as triton:
        triton.bind(
            model_name="tcanet",
            infer_func=infer,
            inputs=[
                Tensor(name="features", dtype=np.float32, shape=(int(c), int(t) if isinstance(t, int) else -1)),
                Tensor(name="proposals", dtype=np.float32, shape=(-1, 2)),
            ],
            outputs=outputs,
            config=ModelConfig(max_batch_size=8, batcher=DynamicBatcher(max_queue_delay_microseconds=1000)),
        )
        print("READY", flush=True)
        triton.serve()


def http(url, path, body=None, headers=None):
    req = urllib.request.Request(f"http://{url}{path}", data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def infer_body(tensors, outputs=None, binary_in=True, params=None):
    """A KServe v2 request: JSON header (+ binary tensors)."""
    inputs, blobs = [], []
    for name, arr, dtype in tensors:
        entry = {"name": name, "datatype": dtype, "shape": list(arr.shape)}
        if binary_in:
            raw = arr.tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = arr.flatten().tolist()
        inputs.append(entry)
    header = {"inputs": inputs}
    if outputs is not None:
        header["outputs"] = outputs
    if params:
        header["parameters"] = params
    text = json.dumps(header).encode()
    headers = {"Content-Type": "application/octet-stream"}
    if binary_in:
        headers["Inference-Header-Content-Length"] = str(len(text))
    return text + b"".join(blobs), headers


def decode(status, headers, body):
    """(header JSON, {name: array}) of a response."""
    lower = {k.lower(): v for k, v in headers.items()}
    n = int(lower.get("inference-header-content-length", len(body)))
    head = json.loads(body[:n])
    arrays, offset = {}, n
    for out in head.get("outputs", []):
        size = out.get("parameters", {}).get("binary_data_size")
        if size is not None:
            arrays[out["name"]] = np.frombuffer(body[offset : offset + size], dtype=np.float32).reshape(out["shape"])
            offset += size
        else:
            arrays[out["name"]] = np.array(out["data"], dtype=np.float32).reshape(out["shape"])
    return head, arrays


def compare(ours, triton):
    rows, worst = [], 0.0
    both = {"ours": ours, "triton": triton}

    def row(case, results, same_status=True):
        statuses = {k: v[0] for k, v in results.items()}
        bodies = {k: v[2][:300].decode(errors="replace") for k, v in results.items()}
        ok = (statuses["ours"] == statuses["triton"]) or not same_status
        rows.append({"case": case, "status": statuses, "same": statuses["ours"] == statuses["triton"], "body": bodies})
        return ok

    for path in ["/v2/health/live", "/v2/health/ready", "/v2/models/tcanet/ready", "/v2/models/nope/ready"]:
        row(f"GET {path}", {k: http(u, path) for k, u in both.items()})
    meta = {k: json.loads(http(u, "/v2/models/tcanet")[2]) for k, u in both.items()}
    same_meta = all(meta["ours"][k] == meta["triton"][k] for k in ("name", "versions", "inputs", "outputs"))
    rows.append({"case": "model metadata (name, versions, inputs, outputs)", "same": same_meta,
                 "platform": {k: m["platform"] for k, m in meta.items()}})

    rng = np.random.default_rng(1)
    c, t = meta["ours"]["inputs"][0]["shape"][1:]
    feats = rng.uniform(-1, 1, (2, c, t)).astype(np.float32)
    s = rng.uniform(0, 0.7, (2, 7, 1))
    props = np.concatenate([s, s + rng.uniform(0.05, 0.3, (2, 7, 1))], axis=2).astype(np.float32)
    good = [("features", feats, "FP32"), ("proposals", props, "FP32")]

    for case, kwargs in [
        ("binary in, binary out", dict(outputs=[{"name": n, "parameters": {"binary_data": True}} for n in OUTPUTS])),
        ("JSON in, JSON out", dict(outputs=[{"name": n} for n in OUTPUTS], binary_in=False)),
        ("no outputs named, binary_data_output", dict(params={"binary_data_output": True})),
        ("two outputs asked", dict(outputs=[{"name": "iou_3", "parameters": {"binary_data": True}}, {"name": "proposals_3"}])),
    ]:
        body, headers = infer_body(good, **kwargs)
        res = {k: http(u, "/v2/models/tcanet/infer", body, headers) for k, u in both.items()}
        row(case, res)
        decoded = {k: decode(*v) for k, v in res.items()}
        layout = {k: [(o["name"], o["datatype"], o["shape"], sorted(o.keys()), o.get("parameters")) for o in h["outputs"]]
                  for k, (h, _) in decoded.items()}
        rows[-1]["same_layout"] = layout["ours"] == layout["triton"]
        rows[-1]["header_length"] = {k: "inference-header-content-length" in {h.lower() for h in v[1]} for k, v in res.items()}
        rows[-1]["top_keys"] = {k: sorted(h.keys()) for k, (h, _) in decoded.items()}
        for name, arr in decoded["ours"][1].items():
            worst = max(worst, float(np.max(np.abs(arr - decoded["triton"][1][name]))))

    bad_cases = [
        ("wrong shape (C-1)", [("features", feats[:, :-1], "FP32"), ("proposals", props, "FP32")]),
        ("wrong datatype (FP64 features)", [("features", feats.astype(np.float64), "FP64"), ("proposals", props, "FP32")]),
        ("missing input", [("features", feats, "FP32")]),
        ("unexpected input", good + [("extra", props, "FP32")]),
        ("batch 9 > max 8", [("features", np.repeat(feats, 5, 0)[:9], "FP32"), ("proposals", np.repeat(props, 5, 0)[:9], "FP32")]),
        ("batch sizes differ", [("features", feats[:1], "FP32"), ("proposals", props, "FP32")]),
    ]
    for case, tensors in bad_cases:
        body, headers = infer_body(tensors)
        row(case, {k: http(u, "/v2/models/tcanet/infer", body, headers) for k, u in both.items()})
    nan = feats.copy()
    nan[0, 1, 2] = np.nan
    body, headers = infer_body([("features", nan, "FP32"), ("proposals", props, "FP32")])
    row("NaN in features", {k: http(u, "/v2/models/tcanet/infer", body, headers) for k, u in both.items()})
    body, headers = infer_body(good)
    row("unknown model", {k: http(u, "/v2/models/nope/infer", body, headers) for k, u in both.items()})
    row("unknown output", {k: http(u, "/v2/models/tcanet/infer", *infer_body(good, outputs=[{"name": "x"}]))
                           for k, u in both.items()})
    row("header length past the body", {k: http(u, "/v2/models/tcanet/infer", body, {**headers, "Inference-Header-Content-Length": str(len(body) + 5)})
                                        for k, u in both.items()})
    row("not JSON", {k: http(u, "/v2/models/tcanet/infer", b"{nope", {}) for k, u in both.items()})
    return {"rows": rows, "worst_abs_diff_vs_triton": worst}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ours")
    p.add_argument("--triton")
    p.add_argument("--serve-triton", nargs=2, metavar=("MODEL", "PORT"))
    a = p.parse_args()
    if a.serve_triton:
        serve_triton(a.serve_triton[0], int(a.serve_triton[1]))
        return
    if not (a.ours and a.triton):
        p.error("give --ours and --triton, or --serve-triton")
    json.dump(compare(a.ours, a.triton), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
