#!/usr/bin/env bash
# `make bench`: every benchmark of the project, in one go, on this machine.
# Each block prints the figures that docs/BENCHMARKS.md records (with the
# machine's load average: quote figures only from a quiet machine, or run
# it under `chrt -f 50`).
#
# Side-by-side comparisons need the other projects' public sources, outside
# this repository:
#   ACTIVITYNET_EVAL=PATH/TO/ActivityNet/Evaluation  the official evaluation code
#   TCANET_RELEASE=PATH/TO/TCANet                    the authors' release (PyTorch forward)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p tcanet-trainer -p tcanet-exporter -p tcanet-runtime -p tcanet-evaluator
bin="$CARGO_TARGET_DIR/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

echo "## evaluator"
bash evaluator/bench.sh ${ACTIVITYNET_EVAL:+"$ACTIVITYNET_EVAL"}

echo "## exporter (export time, size, ONNX Runtime latency; 2 threads)"
bash exporter/bench.sh 2

echo "## runtime (hacs and tiny, 100 proposals per video, 2 threads; post-processing alone)"
for preset in hacs tiny; do
  "$bin/tcanet-export" random-checkpoint --preset "$preset" -o "$work/$preset.safetensors" 2>/dev/null
  "$bin/tcanet-export" "$work/$preset.safetensors" -o "$work/$preset.onnx" 2>/dev/null
  "$bin/tcanet-infer" bench "$work/$preset.onnx" --videos 10 --warmup 2 --threads 2 --proposals 100 --json
done
"$bin/tcanet-infer" bench-post --threads 2 --json

echo "## trainer (tiny training step on CPU)"
"$bin/tcanet-train" bench --preset tiny --device cpu --threads 1 --steps 20

echo "## both kernel paths: fp32 against int8, and the per-region profile"
bash scripts/bench-paths.sh

echo "## serving (8 tritonclient clients, 20 s per model, tiny and hacs)"
bash runtime/bench-serve.sh

if [ -n "${TCANET_RELEASE:-}" ]; then
  echo "## CPU inference side by side with the authors' PyTorch forward (both kernel paths)"
  bash scripts/bench-cpu.sh "$TCANET_RELEASE" --threads 2 --rounds 5 --avx2 --int8 --standard-ops
fi
