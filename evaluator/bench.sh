#!/usr/bin/env bash
# Evaluator benchmark: whole runs of `tcanet-eval` (process start, reading
# and parsing both JSON files, evaluating) on the golden files and on
# generated ~470K-proposal and ~470K-detection files, with CPU time and
# peak memory; and, given a checkout of the official ActivityNet
# evaluation code, the official code on the same files (both generated
# files and the golden ones) in the same run, with the ratios.
#
#   bash evaluator/bench.sh                      (from anywhere)
#   bash evaluator/bench.sh PATH/TO/ActivityNet/Evaluation
#   PRIO="chrt -f 50" bash evaluator/bench.sh PATH/TO/ActivityNet/Evaluation
#
# PRIO, when set, is a command prefix for every timed run, ours and the
# official code's alike (e.g. `chrt -f 50`, real-time scheduling, which
# needs the privilege): on a machine shared with other work it gives both
# the processor as on an idle machine. Times are read by the shell itself
# ($EPOCHREALTIME), without starting a process to read the clock.
#
# The official code (Python 2 era) is ported on the fly into a temporary
# folder (print statements, iteritems, xrange, np.int/np.float, np.trapz,
# a stand-in urllib2: the blocked-video list is not fetched,
# check_status=False) and run with $PYTHON (default python3, which needs
# numpy, pandas and joblib). Nothing of it is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
OFFICIAL="${1:-}"
PYTHON="${PYTHON:-python3}"
RUNS="${RUNS:-5}"
PRIO="${PRIO:-}"
OUT="${TMPDIR:-/tmp}/tcanet-eval-bench"
DATA="$OUT/data"
mkdir -p "$DATA"
# The reference data carried in evaluator/tests/data, decompressed once.
for f in activitynet13_gt golden_proposals golden_detections; do
    [ -s "$DATA/$f.json" ] || xz -dc "evaluator/tests/data/$f.json.xz" > "$DATA/$f.json"
done
cargo build --release -q -p tcanet-evaluator --bin tcanet-eval --example gen_submission
BIN="$CARGO_TARGET_DIR/release/tcanet-eval"
GEN="$CARGO_TARGET_DIR/release/examples/gen_submission"
GT="$DATA/activitynet13_gt.json"
PROPS="$OUT/proposals_470k.json"
DETS="$OUT/detections_470k.json"
[ -s "$PROPS" ] || "$GEN" proposals "$GT" "$PROPS" 470000
[ -s "$DETS" ] || "$GEN" detections "$GT" "$DETS" 470000

isa=$(grep -m1 -o -w 'avx512f' /proc/cpuinfo || grep -m1 -o -w 'avx2' /proc/cpuinfo || echo "no avx2")
echo "machine: $(nproc) cores, $(uname -m) ($isa), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "$PRIO" ] || echo "timed runs under: $PRIO"

$PRIO "$BIN" bench proposals "$GT" "$DATA/golden_proposals.json" --runs 20
$PRIO "$BIN" bench proposals "$GT" "$PROPS" --runs 10
$PRIO "$BIN" bench detections "$GT" "$DATA/golden_detections.json" --runs 20
$PRIO "$BIN" bench detections "$GT" "$DETS" --runs 10

# Microseconds since the epoch, read by the shell.
now_us() {
    local t="${EPOCHREALTIME/[.,]/}"
    echo "${t:-$(( $(date +%s%N) / 1000 ))}"
}

# Wall times (microseconds) of $RUNS whole CLI runs, one a line; the loop
# runs under $PRIO, so that the shell waiting for each run has it too.
wall_times() {
    $PRIO bash -c '
        now() { local t="${EPOCHREALTIME/[.,]/}"; echo "${t:-$(( $(date +%s%N) / 1000 ))}"; }
        runs=$1; shift
        for _ in $(seq "$runs"); do
            t0=$(now); "$@" --json -q -o /dev/null 2>/dev/null; t1=$(now)
            echo $(( t1 - t0 ))
        done' _ "$RUNS" "$BIN" "$@"
}

# Median wall time (seconds) of $RUNS whole CLI runs.
median_wall() {
    wall_times "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.4f", a[int((NR+1)/2)]/1e6}'
}

# Mean CPU time (ms, all threads) of $RUNS runs, where perf can count it.
cpu_ms() {
    perf stat -x, -e task-clock -r "$RUNS" $PRIO "$BIN" "$@" --json -q -o /dev/null 2>&1 >/dev/null \
        | awk -F, '/task-clock/ {printf "%.1f", $1}'
}

for args in "proposals $GT $DATA/golden_proposals.json" "proposals $GT $PROPS" \
            "detections $GT $DATA/golden_detections.json" "detections $GT $DETS"; do
    set -- $args
    size=$(stat -c %s "$3")
    /usr/bin/time -o "$OUT/time.txt" -f "%e %U %S %M" "$BIN" "$@" --json -q -o /dev/null 2>/dev/null
    stats=$(tail -1 "$OUT/time.txt")
    read -r _ user sys rss <<< "$stats"
    cpu=$(cpu_ms "$@" || true)
    echo "$1 $(basename "$3") ($((size / 1000000)) MB): median wall $(median_wall "$@") s of $RUNS runs;" \
         "${cpu:+CPU $cpu ms a run (mean, all threads); }one run: $user s user + $sys s sys," \
         "peak RSS $((rss / 1024)) MiB ($(awk -v m="$rss" -v s="$size" 'BEGIN{printf "%.2f", m*1024/s}')x the submission)"
done

[ -n "$OFFICIAL" ] || { echo "(no official checkout given: no side-by-side ratios)"; exit 0; }
PORT="$(mktemp -d)"
trap 'rm -rf "$PORT"' EXIT
"$PYTHON" - "$OFFICIAL" "$PORT" <<'PY'
import os, re, sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
for name in ["eval_proposal.py", "eval_detection.py", "utils.py"]:
    text = open(os.path.join(src, name)).read()
    text = re.sub(r"^(\s*)print (.*)$", r"\1print(\2)", text, flags=re.M)
    text = text.replace(".iteritems()", ".items()").replace("xrange(", "range(")
    text = re.sub(r"np\.int\b", "int", text)
    text = re.sub(r"np\.float\b", "float", text)
    if not hasattr(np, "trapz"):
        text = text.replace("np.trapz(", "np.trapezoid(")
    open(os.path.join(dst, name), "w").write(text)
open(os.path.join(dst, "urllib2.py"), "w").write("")
with open(os.path.join(dst, "run_official.py"), "w") as f:
    f.write("""import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
task, gt, pred = sys.argv[2:5]
if task == "proposals":
    from eval_proposal import ANETproposal
    e = ANETproposal(gt, pred, tiou_thresholds=np.linspace(0.5, 0.95, 10), max_avg_nr_proposals=100,
                     subset="validation", verbose=False, check_status=False)
    e.evaluate()
    print("official AR@100 %.9f" % e.avg_recall[-1])
else:
    from eval_detection import ANETdetection
    e = ANETdetection(gt, pred, tiou_thresholds=np.linspace(0.5, 0.95, 10), subset="validation",
                      verbose=False, check_status=False)
    e.evaluate()
    print("official average mAP %.9f" % e.average_mAP)
""")
PY
echo "side by side (whole processes, same files, this run):"
for pair in "proposals $PROPS" "detections $DETS" \
            "proposals $DATA/golden_proposals.json" "detections $DATA/golden_detections.json"; do
    read -r task pred <<< "$pair"
    t0=$(now_us)
    official=$($PRIO "$PYTHON" "$PORT/run_official.py" "$PORT" "$task" "$GT" "$pred" 2>/dev/null | tail -1)
    t1=$(now_us)
    off=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e6}')
    ours=$(median_wall "$task" "$GT" "$pred")
    value=$("$BIN" "$task" "$GT" "$pred" --json -q 2>/dev/null | "$PYTHON" -c \
        'import json,sys; r=json.load(sys.stdin); print("%.9f" % (r["AR@100"] if "AR@100" in r else r["average_mAP"]))')
    echo "$task $(basename "$pred"): official $off s ($official), tcanet-eval $ours s (median of $RUNS; $value):" \
         "$(awk -v a="$off" -v b="$ours" 'BEGIN{printf "%.0f", a/b}')x"
done
