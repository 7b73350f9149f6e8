#!/usr/bin/env bash
# How much does refinement gain over the input proposals on a dataset?
#
# Trains the tiny preset (or takes a checkpoint), exports it once per
# start/end decode scale asked for (se_decode_scale_infer, through
# `tcanet-export --config`), refines the validation videos with
# `tcanet-infer run`, and scores with `tcanet-eval` the input proposals, the
# input through the post-processing alone (`tcanet-infer postprocess`) and
# each refined set: AUC, AR@100, their gains over the input, the detection mAP,
# and the wall time of every stage. The binaries come from ${BIN:-target/release}.
#
# Examples:
#   scripts/refine-check.sh --synth --out runs/rc-ours                       # the demo's data and training
#   scripts/refine-check.sh --independent moderate --epochs 18 --decode-scales "0.2 0.5 1.0"
#   scripts/refine-check.sh --data runs/rc-ours/data --checkpoint runs/rc-ours/train/best.safetensors \
#       --decode-scales "0.2 0.35 0.5 0.75 1.0" --out runs/rc-scales          # no training
#   scripts/refine-check.sh --synth --holdout 64 --decode-scales "0.5 1.0 1.5"  # would calibration on
#       64 held-out training videos pick the scale that is best on the validation videos?
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/refine-check.sh DATA [TRAINING] [SCORING]

DATA (one of):
  --data DIR              an existing dataset: DIR/annotations.json, DIR/features/, DIR/proposals.json
                          (and DIR/classifier.json for the detection mAP, when present)
  --synth                 generate the demo's dataset with `tcanet-train synth` (the demo's flags) into OUT/data
  --independent LEVEL     generate with tests/data/synth_independent.py --difficulty LEVEL
                          (moderate or hard) into OUT/data
  --data-seed N           seed of a generated dataset (default: --seed)
  --train-videos N        training videos of a generated dataset (default 320, the demo's)
  --val-videos N          validation videos of a generated dataset (default 160, the demo's)

TRAINING (the demo's settings by default):
  --epochs N (6)  --batch-size N (16)  --lr X (1e-3)  --warmup-iters N (20)
  --lr-decay-epoch N (default: the demo's, the first epoch of the last third)  --lr-decay X (0.1)
  --seed N (0)    --threads N (1: libtorch and ONNX Runtime threads)
  --train-arg ARG         one more argument for `tcanet-train train` (repeatable)
  --checkpoint CKPT       no training: score this checkpoint
  --holdout K             hold K training videos out of training (spread evenly over the file's
                          training videos, subset renamed "holdout") and score every decode scale
                          on them too: what a calibration on held-out training videos would pick

SCORING:
  --decode-scales "G ..." export once per start/end decode scale (se_decode_scale_infer) and score
                          each (default: the checkpoint's own, exported as it is)
  --out DIR               output directory (default runs/refine-check; a previous run of this
                          script there is replaced, any other non-empty directory is refused)
  --python PY             Python with numpy for --independent (default .venv/bin/python, else python3)

Prints a table (AUC, AR@100 in percent and their gains over the input) and the seconds per stage,
and writes OUT/summary.json. Binaries: $BIN/tcanet-{train,export,infer,eval} (default: the
repository's target/release). Relative paths are taken from the directory the script is called from.
EOF
}

die_usage() { echo "refine-check: $*" >&2; echo "(see --help)" >&2; exit 2; }
die() { echo "refine-check: $*" >&2; exit 1; }

caller=$PWD
cd "$(dirname "$0")/.."
# Paths given relative to where the script was called from.
from_caller() { if [[ -n $1 && $1 != /* ]]; then echo "$caller/$1"; else echo "$1"; fi; }
if [[ -n ${BIN:-} ]]; then BIN=$(from_caller "$BIN"); else BIN=$PWD/target/release; fi
data="" ; gen="" ; level="" ; data_seed="" ; train_videos=320 ; val_videos=160
epochs=6 ; batch=16 ; lr=1e-3 ; warmup=20 ; decay_epoch="" ; decay=0.1 ; seed=0 ; threads=1
checkpoint="" ; holdout=0 ; scales="" ; out=runs/refine-check ; python="" ; train_args=()

need() { [[ $# -ge 2 && -n $2 ]] || die_usage "$1 needs a value"; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_num() { [[ $1 =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]]; }
while [[ $# -gt 0 ]]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --data) need "$@"; data=$2; gen=given; shift 2 ;;
    --synth) gen=synth; shift ;;
    --independent) need "$@"; gen=independent; level=$2; shift 2 ;;
    --data-seed) need "$@"; data_seed=$2; shift 2 ;;
    --train-videos) need "$@"; train_videos=$2; shift 2 ;;
    --val-videos) need "$@"; val_videos=$2; shift 2 ;;
    --epochs) need "$@"; epochs=$2; shift 2 ;;
    --batch-size) need "$@"; batch=$2; shift 2 ;;
    --lr) need "$@"; lr=$2; shift 2 ;;
    --warmup-iters) need "$@"; warmup=$2; shift 2 ;;
    --lr-decay-epoch) need "$@"; decay_epoch=$2; shift 2 ;;
    --lr-decay) need "$@"; decay=$2; shift 2 ;;
    --seed) need "$@"; seed=$2; shift 2 ;;
    --threads) need "$@"; threads=$2; shift 2 ;;
    --train-arg) need "$@"; train_args+=("$2"); shift 2 ;;
    --checkpoint) need "$@"; checkpoint=$2; shift 2 ;;
    --holdout) need "$@"; holdout=$2; shift 2 ;;
    --decode-scales) need "$@"; scales=$2; shift 2 ;;
    --out) need "$@"; out=$2; shift 2 ;;
    --python) need "$@"; python=$2; shift 2 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done

[[ -n $gen ]] || die_usage "choose the data: --data DIR, --synth or --independent LEVEL"
data=$(from_caller "$data"); checkpoint=$(from_caller "$checkpoint"); out=$(from_caller "$out")
[[ $python != */* ]] || python=$(from_caller "$python")
[[ $gen != independent || $level == moderate || $level == hard ]] \
  || die_usage "--independent takes moderate or hard, not '$level'"
data_seed=${data_seed:-$seed}
for v in data_seed train_videos val_videos epochs batch warmup seed threads holdout; do
  is_uint "${!v}" || die_usage "--${v//_/-} must be a non-negative integer, not '${!v}'"
done
for v in train_videos val_videos epochs batch threads; do
  [[ ${!v} -ge 1 ]] || die_usage "--${v//_/-} must be at least 1"
done
[[ $epochs -le 1000 && $batch -le 4096 && $threads -le 256 ]] || die_usage "--epochs, --batch-size or --threads out of range"
is_num "$lr" || die_usage "--lr must be a positive number, not '$lr'"
is_num "$decay" || die_usage "--lr-decay must be a non-negative number, not '$decay'"
# The demo's decay: the last third of the epochs (at least the last one).
[[ -n $decay_epoch ]] || decay_epoch=$(( epochs - epochs / 3 + 1 ))
is_uint "$decay_epoch" && [[ $decay_epoch -ge 1 ]] || die_usage "--lr-decay-epoch must be at least 1"
for g in $scales; do
  is_num "$g" || die_usage "--decode-scales: '$g' is not a non-negative number"
done
[[ -z $checkpoint || -f $checkpoint ]] || die_usage "--checkpoint $checkpoint: no such file"
for b in tcanet-train tcanet-export tcanet-infer tcanet-eval; do
  [[ -x $BIN/$b ]] || die_usage "$BIN/$b not found: build the release binaries or set BIN"
done
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
if [[ $gen == independent ]]; then
  if [[ -z $python ]]; then
    if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python3; fi
  fi
  "$python" -c 'import numpy' 2>/dev/null || die_usage "$python has no numpy (give --python)"
fi

# --- the output directory ---------------------------------------------------
marker=.refine-check
if [[ -d $out && -n $(ls -A "$out") ]]; then
  [[ -f $out/$marker ]] || die_usage "$out is not empty and was not written by refine-check; choose another --out"
  for keep in "$data" "$checkpoint"; do
    if [[ -n $keep ]]; then
      case $(realpath -m "$keep")/ in
        "$(realpath -m "$out")"/*) die_usage "$keep lies inside --out $out, which would be replaced" ;;
      esac
    fi
  done
  rm -rf -- "$out"
fi
mkdir -p "$out"
echo "written by scripts/refine-check.sh; the next run with this --out replaces it" > "$out/$marker"

now() { date +%s.%N; }
declare -a stage_names=() stage_secs=()
timed() { # timed NAME CMD...: runs CMD, logs it, records its wall seconds
  local name=$1; shift
  local t0; t0=$(now)
  echo "+ $*" >&2
  "$@" || die "stage '$name' failed (exit $?): $*"
  stage_names+=("$name"); stage_secs+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')")
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
isa=$(grep -qw avx512f /proc/cpuinfo && echo avx512f || { grep -qw avx2 /proc/cpuinfo && echo avx2 || echo "no avx2"; })
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# --- data --------------------------------------------------------------------
case $gen in
  synth)
    data=$out/data
    # The demo's dataset (tests/src/bin/tcanet-demo.rs).
    timed data "$BIN/tcanet-train" synth --out "$data" --seed "$data_seed" \
      --train-videos "$train_videos" --val-videos "$val_videos" --boundary-error 0.35 --noise 0.5 \
      --channels 32 --steps 64 --classes 10 --proposals-per-video 100 >/dev/null ;;
  independent)
    data=$out/data
    total=$(( train_videos + val_videos ))
    frac=$(awk -v v="$val_videos" -v n="$total" 'BEGIN{printf "%.12f", v/n}')
    timed data "$python" tests/data/synth_independent.py --out "$data" --seed "$data_seed" \
      --videos "$total" --val-fraction "$frac" --difficulty "$level" >/dev/null ;;
esac
ann=$data/annotations.json
for f in "$ann" "$data/proposals.json"; do [[ -f $f ]] || die_usage "$f: no such file"; done
[[ -d $data/features ]] || die_usage "$data/features: no such directory"
if [[ $holdout -gt 0 ]]; then
  # K training videos, evenly spread over the file's training videos, become subset "holdout".
  jq -c --argjson k "$holdout" '
    [.database | to_entries[] | select(.value.subset == "training") | .key] as $ids
    | if ($ids | length) <= $k then error("only \($ids | length) training videos for --holdout \($k)") else . end
    | (($ids | length) / $k | floor) as $m
    | ([range(0; $k) | $ids[. * $m]] | map({key: ., value: true}) | from_entries) as $held
    | .database |= with_entries(if $held[.key] then .value.subset = "holdout" else . end)' \
    "$ann" > "$out/annotations-holdout.json" || die_usage "--holdout $holdout: see the message above"
  ann=$out/annotations-holdout.json
fi
# Every stage reads the same three inputs (the annotations with the held-out subset, if any).
src=(--annotations "$ann" --features "$data/features" --proposals "$data/proposals.json")

# --- training ----------------------------------------------------------------
trained_here=false
if [[ -z $checkpoint ]]; then
  trained_here=true
  timed train "$BIN/tcanet-train" train "${src[@]}" --preset tiny --out "$out/train" \
    --epochs "$epochs" --batch-size "$batch" --lr "$lr" --warmup-iters "$warmup" \
    --lr-decay-epoch "$decay_epoch" --lr-decay "$decay" --seed "$seed" \
    --device cpu --threads "$threads" --workers 1 --no-validation --quiet "${train_args[@]}"
  # The epoch that scored best on the held-out training videos, with the decode
  # scale calibrated on them: what the demo and the docs export.
  checkpoint=$out/train/best.safetensors
fi

# The checkpoint's model config (safetensors: u64 LE header length, JSON header).
checkpoint_config() {
  local n; n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  [[ $n =~ ^[0-9]+$ && $n -gt 0 && $n -lt 100000000 ]] || die "$1: not a safetensors file"
  head -c $(( 8 + n )) "$1" | tail -c "$n" | jq -er '.__metadata__["tcanet.config"]' \
    || die "$1: no tcanet.config in its metadata"
}
own_scale=$(checkpoint_config "$checkpoint" | jq -r '.se_decode_scale_infer')

# --- scoring -----------------------------------------------------------------
score() { # score FILE DETECTIONS|- [SUBSET]: tcanet-eval's JSON of the proposals (+ average_mAP)
  local props dets="null" subset=${3:-validation}
  props=$("$BIN/tcanet-eval" proposals "$ann" "$1" --subset "$subset" --json) || die "tcanet-eval failed on $1"
  if [[ $2 != - ]]; then
    dets=$("$BIN/tcanet-eval" detections "$ann" "$2" --subset "$subset" --json --ignore-unknown-labels \
      2>/dev/null | jq '.average_mAP') || die "tcanet-eval detections failed on $2"
  fi
  jq -c --argjson map "$dets" '{AUC, "AR@1", "AR@10", "AR@100", average_mAP: $map}' <<<"$props"
}

t0=$(now)
subset_of_input() { # subset_of_input SUBSET OUT: the input proposals of that subset's videos
  jq -c --slurpfile a "$ann" --arg s "$1" \
    '{results: (.results | with_entries(select($a[0].database[.key].subset == $s)))}' \
    "$data/proposals.json" > "$2"
}
subset_of_input validation "$out/input.json"
input=$(score "$out/input.json" -)
input_hold=null
if [[ $holdout -gt 0 ]]; then
  subset_of_input holdout "$out/input-holdout.json"
  input_hold=$(score "$out/input-holdout.json" - holdout)
fi
stage_names+=(score_input); stage_secs+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')")

timed soft_nms "$BIN/tcanet-infer" postprocess --subset validation "${src[@]}" -o "$out/input_soft_nms.json" >/dev/null
soft_nms=$(score "$out/input_soft_nms.json" -)

declare -a labels=() results=() held=()
refine() { # refine TAG MODEL: tcanet-infer run, then its scores appended to results
  local det=() detfile=-
  if [[ -f $data/classifier.json ]]; then
    detfile=$out/detections-$1.json
    det=(--classifier "$data/classifier.json" --detections-output "$detfile")
  fi
  timed "infer_$1" "$BIN/tcanet-infer" run --subset validation --device cpu --model "$2" "${src[@]}" \
    -o "$out/refined-$1.json" "${det[@]}" --threads "$threads" >/dev/null
  local t1; t1=$(now)
  results+=("$(score "$out/refined-$1.json" "$detfile")")
  if [[ $holdout -gt 0 ]]; then
    "$BIN/tcanet-infer" run --subset holdout --device cpu --model "$2" "${src[@]}" \
      -o "$out/refined-holdout-$1.json" --threads "$threads" >/dev/null 2>&1 \
      || die "tcanet-infer run --subset holdout failed with $2"
    held+=("$(score "$out/refined-holdout-$1.json" - holdout)")
  else
    held+=(null)
  fi
  stage_names+=("score_$1"); stage_secs+=("$(awk -v a="$t1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')")
}
if [[ -z $scales ]]; then
  timed export "$BIN/tcanet-export" "$checkpoint" -o "$out/model.onnx" >/dev/null
  labels+=("$own_scale"); refine "g$own_scale" "$out/model.onnx"
else
  for g in $scales; do
    checkpoint_config "$checkpoint" | jq --argjson g "$g" '.se_decode_scale_infer = $g' > "$out/config-g$g.json"
    timed "export_g$g" "$BIN/tcanet-export" "$checkpoint" --config "$out/config-g$g.json" -o "$out/model-g$g.onnx" >/dev/null
    # The exported graph must carry the scale asked for.
    got=$(grep -ao '"se_decode_scale_infer": *[0-9.eE+-]*' "$out/model-g$g.onnx" | head -1 | sed 's/.*: *//')
    awk -v a="$got" -v b="$g" 'BEGIN{exit !(a != "" && a + 0 == b + 0)}' \
      || die "$out/model-g$g.onnx carries se_decode_scale_infer '$got', not $g"
    labels+=("$g"); refine "g$g" "$out/model-g$g.onnx"
  done
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------
row() { # row LABEL JSON: one table row, figures in percent with two decimals
  jq -r --arg l "$1" --argjson in "$input" \
    '[$l, .AUC, .["AR@100"] * 100, .AUC - $in.AUC, (.["AR@100"] - $in["AR@100"]) * 100,
      (if .average_mAP == null then "" else .average_mAP * 100 end)] | @tsv' <<<"$2" \
    | awk -F'\t' '{printf "| %s | %.2f | %.2f | %+.2f | %+.2f | %s |\n", $1, $2, $3, $4, $5,
        ($6 == "" ? "" : sprintf("%.2f", $6))}'
}
echo
echo "| proposals (validation, %) | AUC | AR@100 | AUC gain | AR@100 gain | det. mAP |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
row input "$input"
row "input + Soft-NMS" "$soft_nms"
for i in "${!labels[@]}"; do row "refined, decode scale ${labels[$i]}" "${results[$i]}"; done
if [[ $holdout -gt 0 ]]; then
  echo
  echo "| held-out training videos ($holdout, %) | AUC | AR@100 | AUC gain | AR@100 gain | |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  input_val=$input; input=$input_hold
  row input "$input_hold"
  for i in "${!labels[@]}"; do row "refined, decode scale ${labels[$i]}" "${held[$i]}"; done
  input=$input_val
fi
if [[ ${#labels[@]} -gt 1 ]]; then
  best() { # best JSON...: index of the highest AUC (the first on ties)
    local i bi=0 b=-1
    for i in $(seq 0 $(( $# - 1 ))); do
      local a; a=$(jq '.AUC' <<<"${@:$(( i + 1 )):1}")
      if awk -v a="$a" -v b="$b" 'BEGIN{exit !(a > b)}'; then b=$a; bi=$i; fi
    done
    echo "$bi"
  }
  bv=$(best "${results[@]}")
  echo
  echo "best decode scale on the validation videos: ${labels[$bv]} (AUC $(jq '.AUC*100|round/100' <<<"${results[$bv]}"))"
  if [[ $holdout -gt 0 ]]; then
    bh=$(best "${held[@]}")
    echo "best on the held-out training videos: ${labels[$bh]}; validation AUC there $(jq '.AUC*100|round/100' <<<"${results[$bh]}")"
  fi
fi
secs=$(for i in "${!stage_names[@]}"; do printf '%s %s\n' "${stage_names[$i]}" "${stage_secs[$i]}"; done)
echo
echo "seconds: $(tr '\n' ',' <<<"$secs" | sed 's/,$//; s/,/, /g')"
echo "host: $(nproc) cores, $isa; load average $load_start at the start, $load_end at the end; $started"

refined_json=$(for i in "${!labels[@]}"; do
  jq -c --argjson g "${labels[$i]}" --argjson h "${held[$i]}" '. + {decode_scale: $g, holdout: $h}' \
    <<<"${results[$i]}"; done | jq -s -c .)
secs_json=$(awk '{printf "%s\"%s\": %s", (NR>1?", ":""), $1, $2} END{print ""}' <<<"$secs" | sed 's/^/{/; s/$/}/')
jq -n --argjson input "$input" --argjson input_hold "$input_hold" --argjson soft "$soft_nms" --argjson refined "$refined_json" \
  --argjson seconds "$secs_json" --arg data "$data" --arg gen "$gen" --arg level "$level" \
  --arg checkpoint "$checkpoint" --arg isa "$isa" --arg started "$started" \
  --arg load_start "$load_start" --arg load_end "$load_end" \
  --argjson settings "$(jq -n --argjson e "$epochs" --argjson b "$batch" --arg lr "$lr" \
      --argjson w "$warmup" --argjson de "$decay_epoch" --arg d "$decay" --argjson s "$seed" \
      --argjson ds "$data_seed" --argjson tv "$train_videos" --argjson vv "$val_videos" \
      --argjson t "$threads" --argjson trained "$trained_here" --arg extra "${train_args[*]:-}" \
      '{trained_here: $trained, epochs: $e, batch_size: $b, lr: ($lr|tonumber), warmup_iters: $w, lr_decay_epoch: $de,
        lr_decay: ($d|tonumber), seed: $s, data_seed: $ds, train_videos: $tv, val_videos: $vv,
        threads: $t, extra_train_args: $extra}')" \
  '{units: "AUC in percent, AR@k and average_mAP as fractions (as tcanet-eval --json)",
    data: $data, generator: $gen, level: $level, checkpoint: $checkpoint, settings: $settings,
    input: $input, input_holdout: $input_hold, holdout_videos: '"$holdout"', input_soft_nms: $soft, refined: $refined, seconds: $seconds,
    host: {isa: $isa, started: $started, load_start: $load_start, load_end: $load_end}}' \
  > "$out/summary.json"
echo "wrote $out/summary.json"
