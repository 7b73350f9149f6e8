#!/usr/bin/env bash
# CPU inference side by side in one run: the exported hacs model (random
# weights) in ONNX Runtime through `tcanet-export bench` — on the host's own
# kernels and, with --avx2, on MLAS's AVX2 kernels (scripts/ort_avx2.py) —
# against the authors' PyTorch forward on random weights of the same shapes
# (with --avx2 also with ATen, MKL and oneDNN limited to AVX2),
# imported from a checkout of their public release (never copied here).
# Rounds are interleaved so that every engine sees the same machine load.
#
# With --int8 the int8 model (`tcanet-export --int8`) runs too, as a
# further engine on each kernel path; with --standard-ops the float model
# runs again with its functions (TapSum, LocalAttention, the Winograd
# tiles) as their standard-op bodies (what other ONNX runtimes run) instead of the
# project's kernels.
#
# With --hugepages every engine (both) runs with glibc's malloc asking for
# transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, glibc
# 2.35 and later), as on a host whose THP setting is "always".
#
# Usage (repository root):
#   bash scripts/bench-cpu.sh RELEASE_DIR [--threads N] [--rounds R] [--proposals N] [--avx2] [--int8] [--standard-ops] [--hugepages]
# Prints: command, date, host ISA and load average, then p50 / p90 per video,
# peak RSS, GFLOP/s (the network's multiply-adds × 2 over the p50, the same
# count for both engines) and % of the nominal peak, and the speed-up (over
# all runs, and the median and range of the rounds' own speed-ups).
set -euo pipefail
# The usage lines of the header above (found by their text, not by number).
usage() { sed -n '/^# Usage/,/^#   bash/s/^# //p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
release=$1; shift
threads=2; rounds=3; proposals=100; avx2=0; int8=0; standard=0; huge=0
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --proposals) proposals=$2; shift 2 ;;
    --avx2) avx2=1; shift ;;
    --int8) int8=1; shift ;;
    --standard-ops) standard=1; shift ;;
    --hugepages) huge=1; shift ;;
    *) usage ;;
  esac
done
for v in "$threads" "$rounds" "$proposals"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "not a positive integer: $v" >&2; exit 2; }
done
[ -f "$release/tcanet.py" ] || { echo "$release has no tcanet.py: not a checkout of the TCANet release" >&2; exit 2; }
source scripts/bench-common.sh
needs_venv
build_exporter

echo "# bash scripts/bench-cpu.sh $release --threads $threads --rounds $rounds --proposals $proposals$([ $avx2 = 1 ] && echo ' --avx2')$([ $int8 = 1 ] && echo ' --int8')$([ $standard = 1 ] && echo ' --standard-ops')$([ $huge = 1 ] && echo ' --hugepages')"
echo "# transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)"
# The tunables of every engine, and of the AVX2 legs.
own=""; [ $huge = 1 ] && own="glibc.malloc.hugetlb=1"
leg="$no512${own:+:$own}"
host_line
"$bin" random-checkpoint --preset hacs -o "$work/hacs.safetensors" 2>/dev/null
"$bin" "$work/hacs.safetensors" -o "$work/hacs.onnx" 2>&1 | sed 's/^/# /'
models=hacs
if [ $int8 = 1 ]; then
  "$bin" "$work/hacs.safetensors" -o "$work/hacs-int8.onnx" --int8 2>&1 | sed 's/^/# /'
  models="hacs hacs-int8"
fi
[ $standard = 1 ] && models="$models hacs-std"
if [ $avx2 = 1 ]; then
  "$py" scripts/ort_avx2.py "$lib" "$work/libonnxruntime-avx2.so" | sed 's/^/# /'
fi
for r in $(seq "$rounds"); do
  for m in $models; do
    bench=(bench "$work/${m%-std}.onnx" --threads "$threads" --runs 20 --proposals "$proposals" --json)
    [ "$m" = hacs-std ] && bench+=(--standard-ops)
    tag=${m#hacs}
    GLIBC_TUNABLES=$own "$bin" "${bench[@]}" --ort-lib "$lib" > "$work/onnxruntime$tag-$r.json" 2>/dev/null
    if [ $avx2 = 1 ]; then
      GLIBC_TUNABLES=$leg "$bin" "${bench[@]}" --ort-lib "$work/libonnxruntime-avx2.so" --isa avx2 \
        > "$work/onnxruntime$tag-avx2-$r.json" 2>/dev/null
    fi
  done
  GLIBC_TUNABLES=$own "$py" scripts/bench_release_forward.py "$release" --threads "$threads" --runs 5 \
    --proposals "$proposals" > "$work/pytorch-$r.json"
  if [ $avx2 = 1 ]; then
    # PyTorch limited to AVX2 as well (ATen's dispatch, MKL, oneDNN), as on an AVX2 host.
    GLIBC_TUNABLES=$leg ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
      ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 \
      "$py" scripts/bench_release_forward.py "$release" --threads "$threads" --runs 5 \
      --proposals "$proposals" > "$work/pytorch-avx2-$r.json"
  fi
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" - "$work" <<'EOF'
import glob, json, os, sys
work = sys.argv[1]
ours = json.load(open(os.path.join(work, "onnxruntime-1.json")))
gflop, peak = ours["gflop_per_call"], ours["nominal_peak_gflops"]
sys.path.insert(0, "scripts")
from nearest_rank import percentile as nearest  # the rule of the bench commands

rows = []
for name, label, kernels in [
        ("onnxruntime", f"ONNX Runtime ({ours['isa']} kernels)", "own"),
        ("onnxruntime-int8", f"ONNX Runtime, int8 model ({ours['isa']} kernels)", "own"),
        ("onnxruntime-std", f"ONNX Runtime, functions as standard ops ({ours['isa']} kernels)", "own"),
        ("pytorch", f"authors' PyTorch forward ({ours['isa']} kernels)", "own"),
        ("onnxruntime-avx2", "ONNX Runtime (AVX2 kernels)", "avx2"),
        ("onnxruntime-int8-avx2", "ONNX Runtime, int8 model (AVX2 kernels)", "avx2"),
        ("onnxruntime-std-avx2", "ONNX Runtime, functions as standard ops (AVX2 kernels)", "avx2"),
        ("pytorch-avx2", "authors' PyTorch forward (AVX2 kernels)", "avx2")]:
    files = glob.glob(os.path.join(work, f"{name}-[0-9]*.json"))
    if not files:
        continue
    by_round = {int(f.rsplit("-", 1)[1].split(".")[0]): json.load(open(f)) for f in files}
    times = [t for r in by_round.values() for t in r["times_ms"]]
    rows.append(dict(label=label, kernels=kernels, n=len(times),
                     p50=nearest(times, 0.5), p90=nearest(times, 0.9),
                     rss=max(r["peak_rss_mib"] for r in by_round.values()),
                     round_p50={k: nearest(r["times_ms"], 0.5) for k, r in by_round.items()}))
print(f"hacs, 1 video × {ours['proposals']} proposals, {ours['threads']} threads; "
      f"{gflop:.2f} GFLOP per video; nominal peak {peak:.0f} GFLOP/s ({ours['isa']}, {ours['cpu_ghz']:.2f} GHz)")
print("| engine | runs | p50 ms | p90 ms | peak RSS MiB | GFLOP/s | % of peak |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    rate = gflop / r["p50"] * 1e3
    print(f"| {r['label']} | {r['n']} | {r['p50']:.1f} | {r['p90']:.1f} | {r['rss']:.0f} | {rate:.1f} | {100 * rate / peak:.0f}% |")
# Each ONNX Runtime row against the PyTorch row of the same kernels: over
# all runs, and round by round (each round's engines ran back to back, so
# the per-round ratios are less exposed to the machine's drift).
for r in rows:
    base = [b for b in rows if b["kernels"] == r["kernels"] and b["label"].startswith("authors")]
    if not base or r["label"].startswith("authors"):
        continue
    b = base[0]
    per_round = sorted(b["round_p50"][k] / r["round_p50"][k] for k in r["round_p50"] if k in b["round_p50"])
    print(f"speed-up of {r['label']} over {b['label']} (p50): {b['p50'] / r['p50']:.2f}x; "
          f"per round: median {nearest(per_round, 0.5):.2f}x, {per_round[0]:.2f}x to {per_round[-1]:.2f}x")
EOF
