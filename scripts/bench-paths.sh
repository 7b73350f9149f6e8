#!/usr/bin/env bash
# The exported hacs model (random weights) on both kernel paths of this host:
# ONNX Runtime's own kernels and its AVX2 kernels (scripts/ort_avx2.py), with
# glibc's AVX-512 routines off on the AVX2 leg.
#   1. fp32 against --int8 (and, with --baseline REV, against the fp32 model
#      that the exporter of git revision REV writes from the same weights),
#      2 threads, rounds interleaved (p50, p90, peak RSS);
#   2. where the time goes: ONNX Runtime's profile summed by network region,
#      1 thread (`tcanet-export bench --profile`), on each path (the
#      baseline's too).
#
# Usage (repository root): bash scripts/bench-paths.sh [--rounds R] [--baseline REV]
# Run it under `chrt -f 50` on a shared machine (every engine alike).
set -euo pipefail
rounds=3
baseline=
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    *) sed -n '12p' "$0" | sed 's/^# //' >&2; exit 2 ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "not a positive integer: $rounds" >&2; exit 2; }
if [ -n "$baseline" ]; then
  git rev-parse --verify -q "$baseline^{commit}" >/dev/null \
    || { echo "not a git revision: $baseline" >&2; exit 2; }
fi
source scripts/bench-common.sh
needs_venv
build_exporter
echo "# bash scripts/bench-paths.sh --rounds $rounds${baseline:+ --baseline $baseline}"
host_line
"$bin" random-checkpoint --preset hacs -o "$work/hacs.safetensors" 2>/dev/null
"$bin" "$work/hacs.safetensors" -o "$work/fp32.onnx" -q
"$bin" "$work/hacs.safetensors" -o "$work/int8.onnx" --int8 -q
models="fp32 int8"
if [ -n "$baseline" ]; then
  # The exporter of REV, built in the scratch directory from a detached
  # worktree (its own target directory: the current build is left alone).
  git worktree add -q --detach "$work/baseline-src" "$baseline"
  trap 'git worktree remove --force "$work/baseline-src" 2>/dev/null; rm -rf "$work"' EXIT
  (cd "$work/baseline-src" && CARGO_TARGET_DIR="$work/baseline-target" cargo build --release -q -p tcanet-exporter)
  "$work/baseline-target/release/tcanet-export" "$work/hacs.safetensors" -o "$work/base.onnx" -q
  echo "# baseline: fp32 model of $(git rev-parse --short "$baseline"), $(stat -c %s "$work/base.onnx") bytes"
  models="base fp32 int8"
fi
"$py" scripts/ort_avx2.py "$lib" "$work/avx2.so" | sed 's/^/# /'
echo "# files: fp32 $(stat -c %s "$work/fp32.onnx") bytes, int8 $(stat -c %s "$work/int8.onnx") bytes"
# bench KERNELS MODEL ARGS...: tcanet-export bench on one kernel path.
bench() {
  local kernels=$1; shift
  if [ "$kernels" = avx2 ]; then
    GLIBC_TUNABLES=$no512 "$bin" bench "$@" --ort-lib "$work/avx2.so" --isa avx2
  else
    "$bin" bench "$@" --ort-lib "$lib"
  fi
}
echo "## ${models// / and }, 2 threads, 20 runs each (p50 / p90 ms, peak RSS MiB)"
for r in $(seq "$rounds"); do
  for m in $models; do
    for k in native avx2; do
      bench $k "$work/$m.onnx" --threads 2 --runs 20 --proposals 100 --json 2>/dev/null \
        | "$py" -c "import json,sys; j=json.load(sys.stdin); print(f'round $r, $m, $k kernels: {j[\"p50_ms\"]:.1f} / {j[\"p90_ms\"]:.1f} ms, {j[\"peak_rss_mib\"]:.0f} MiB')"
    done
  done
done
for m in ${baseline:+base} fp32; do
  for k in native avx2; do
    echo "## per-region profile, $m, 1 thread, $k kernels"
    bench $k "$work/$m.onnx" --threads 1 --runs 10 --proposals 100 --profile "$work/profile-$m-$k.json" 2>&1
  done
done
