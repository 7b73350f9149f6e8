#!/usr/bin/env bash
# Exporter benchmarks: export time and file size for the hacs config (random
# weights), ONNX Runtime CPU latency per video with 100 proposals (fp32 and
# fp16), and the tiny config. Figures go to docs/BENCHMARKS.md (exporter).
# Usage: bash exporter/bench.sh [THREADS]   (from the repository root)
set -euo pipefail
threads="${1:-2}"
source scripts/bench-common.sh
build_exporter
host_line
for preset in hacs tiny; do
  "$bin" random-checkpoint --preset "$preset" -o "$work/$preset.safetensors" 2>/dev/null
  for prec in fp32 fp16; do
    flag=""; [ "$prec" = fp16 ] && flag="--fp16"
    out="$work/$preset-$prec.onnx"
    start=$(date +%s%N)
    "$bin" "$work/$preset.safetensors" -o "$out" $flag 2>/dev/null
    end=$(date +%s%N)
    awk -v p="$preset" -v q="$prec" -v ns=$((end - start)) -v b="$(stat -c %s "$out")" \
      'BEGIN { printf "%s %s: export %.2f s (process wall), %.1f MB\n", p, q, ns / 1e9, b / 1e6 }'
    runs=10; [ "$preset" = tiny ] && runs=50
    "$bin" bench "$out" --proposals 100 --runs "$runs" --threads "$threads"
  done
done
