#!/usr/bin/env bash
# Evaluator benchmark: whole runs (reading + parsing both JSON files +
# evaluating) on the golden files and on a generated ~460K-detection file,
# plus CPU time and peak memory of one CLI run each. Figures go to
# docs/BENCHMARKS.md (section evaluator).
#   bash evaluator/bench.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
OUT="${TMPDIR:-/tmp}/tcanet-eval-bench"
DATA="$OUT/data"
mkdir -p "$DATA"
# The reference data carried in evaluator/tests/data, decompressed once.
for f in activitynet13_gt golden_proposals golden_detections; do
    [ -s "$DATA/$f.json" ] || xz -dc "evaluator/tests/data/$f.json.xz" > "$DATA/$f.json"
done
cargo build --release -q -p tcanet-evaluator --bin tcanet-eval --example gen_detections
BIN="$CARGO_TARGET_DIR/release/tcanet-eval"
GT="$DATA/activitynet13_gt.json"
BIG="$OUT/detections_460k.json"
[ -s "$BIG" ] || "$CARGO_TARGET_DIR/release/examples/gen_detections" "$GT" "$BIG" 460000
echo "machine: $(nproc) cores, $(uname -m), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
date -u
"$BIN" bench proposals "$GT" "$DATA/golden_proposals.json" --runs 20
"$BIN" bench proposals "$GT" "$BIG" --runs 10   # the 460K file read as proposals (labels ignored)
"$BIN" bench detections "$GT" "$DATA/golden_detections.json" --runs 20
"$BIN" bench detections "$GT" "$BIG" --runs 10
for args in "proposals $GT $DATA/golden_proposals.json" "proposals $GT $BIG" \
            "detections $GT $DATA/golden_detections.json" "detections $GT $BIG"; do
    set -- $args
    size=$(stat -c %s "$3")
    /usr/bin/time -f "%e s wall, %U s user + %S s sys, peak RSS %M KB" "$BIN" "$@" --json >/dev/null 2>"$OUT/time.txt" || true
    echo "$1 $(basename "$3") ($((size / 1000000)) MB): $(tail -1 "$OUT/time.txt"), RSS/input $(awk -v m="$(tail -1 "$OUT/time.txt" | sed 's/.*peak RSS \([0-9]*\) KB/\1/')" -v s="$size" 'BEGIN{printf "%.2f", m*1024/s}')"
done
