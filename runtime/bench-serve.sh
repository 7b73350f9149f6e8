#!/usr/bin/env bash
# Load test of `tcanet-infer serve` with Triton's HTTP client: 8 clients (one
# tritonclient.http client per thread) send tcanet_refine requests with binary
# tensors for 20 s each to a server with the tiny and the hacs model (random
# weights, written by tcanet-export), on synthetic videos in the real formats.
# Prints throughput, p50/p99 latency, errors, the server's CPU time per
# request and its RSS over time (one JSON object per model; "server" holds
# the model calls, videos per call and milliseconds per call from /metrics),
# then `tcanet-infer bench` on the same model for reference, with the
# command, host ISA and date.
#
#   bash runtime/bench-serve.sh [--seconds 20] [--clients 8] [--threads 2] [--instances 1]
#                               [--max-batch-size 8] [--models "tiny hacs"]
#
# Needs `make setup` (the venv with tritonclient) and the release binaries
# (cargo build --release -p tcanet-runtime -p tcanet-exporter).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=20 clients=8 threads=2 models="tiny hacs" instances=1 batch=8
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --instances) instances=$2; shift 2 ;;
    --max-batch-size) batch=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "bench-serve: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
bin=${CARGO_TARGET_DIR:-target}/release
py=.venv/bin/python
export TCANET_VENV=${TCANET_VENV:-$PWD/.venv}  # where tcanet-infer finds ONNX Runtime
for b in tcanet-infer tcanet-export; do
  [ -x "$bin/$b" ] || { echo "bench-serve: $bin/$b missing: cargo build --release -p tcanet-runtime -p tcanet-exporter" >&2; exit 1; }
done
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

isa=$(grep -o -w -m1 -E 'avx512f' /proc/cpuinfo || grep -o -w -m1 -E 'avx2' /proc/cpuinfo || echo "no avx2")
echo "# bash runtime/bench-serve.sh --seconds $seconds --clients $clients --threads $threads --instances $instances --max-batch-size $batch --models \"$models\""
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, ISA $isa, load $(cut -d' ' -f1-3 /proc/loadavg)"

# A synthetic dataset for the model's config: 40 validation videos, 100
# proposals each (ActivityNet-style lengths for tiny, HACS-style for hacs).
make_data() {  # DIR C T NORMALIZE INTERVAL
  "$py" - "$@" <<'EOF'
import json, os, sys
import numpy as np
out, c, t, normalize, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", float(sys.argv[5])
rng = np.random.default_rng(0)
os.makedirs(f"{out}/features", exist_ok=True)
db, results = {}, {}
for i in range(40):
    vid = f"v_{i:03d}"
    steps = int(rng.integers(t // 2, t + 1)) if not normalize else int(rng.integers(t // 2, 2 * t))
    duration = steps * interval if not normalize else float(rng.uniform(20, 200))
    np.save(f"{out}/features/{vid}.npy", rng.standard_normal((steps, c)).astype(np.float32))
    db[vid] = {"subset": "validation", "duration": duration, "annotations": []}
    length = duration * rng.uniform(0.05, 0.5, 100)
    start = (duration - length) * rng.uniform(0, 1, 100)
    results[vid] = [{"segment": [float(s), float(s + l)], "score": float(x)}
                    for s, l, x in zip(start, length, rng.uniform(0.05, 0.95, 100))]
json.dump({"database": db}, open(f"{out}/annotations.json", "w"))
json.dump({"results": results}, open(f"{out}/proposals.json", "w"))
EOF
}

for model in $models; do
  case $model in
    tiny) make_data "$work/$model" 32 64 1 0.015625 ;;
    hacs) make_data "$work/$model" 2304 1000 0 0.5333333333333333 ;;
    *) echo "bench-serve: unknown model $model (tiny or hacs)" >&2; exit 2 ;;
  esac
  "$bin/tcanet-export" random-checkpoint --preset "$model" -o "$work/$model.safetensors" 2>/dev/null
  "$bin/tcanet-export" "$work/$model.safetensors" -o "$work/$model.onnx" 2>/dev/null
  "$bin/tcanet-infer" serve --model "$work/$model.onnx" --listen 127.0.0.1:0 --threads "$threads" \
    --instances "$instances" --max-batch-size "$batch" --quiet 2> "$work/$model.log" &
  server_pid=$!
  for _ in $(seq 600); do grep -q "listening on" "$work/$model.log" && break; sleep 0.1; done
  url=$(grep -o 'http://[^ ]*' "$work/$model.log" | head -1 | sed 's#http://##')
  [ -n "$url" ] || { cat "$work/$model.log" >&2; exit 1; }
  echo "## $model ($url)"
  "$py" runtime/tests/serve_client.py load --url "$url" --data "$work/$model" --pid "$server_pid" \
    --seconds "$seconds" --clients "$clients"
  kill -TERM "$server_pid"; wait "$server_pid"; server_pid=
  # The same model without the server, one video at a time, right after:
  # the per-video time the server's throughput compares with.
  echo "## $model: tcanet-infer bench (no server, 100 proposals, $threads threads)"
  "$bin/tcanet-infer" bench "$work/$model.onnx" --proposals 100 --videos 10 --threads "$threads" --json 2>/dev/null
done
