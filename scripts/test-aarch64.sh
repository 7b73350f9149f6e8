#!/usr/bin/env bash
# `make test-aarch64`: the lean crates' tests (models, cli, evaluator, ort,
# runtime, exporter: everything but libtorch) built for AArch64 and run under
# qemu-user emulation against the AArch64 build of ONNX Runtime, on two
# emulated processors:
#
#   neoverse-n1   ARMv8.2-A with float16 arithmetic (Graviton 2, Ampere Altra):
#                 float16 models are refused on the CPU (docs/ARCHITECTURE.md,
#                 "fp16"), and the tests check the refusal;
#   cortex-a72    ARMv8.0-A without it (Raspberry Pi 4): float16 models run,
#                 computed in float32 by ONNX Runtime.
#
# On each, the AArch64 release (scripts/dist.sh --target aarch64), unpacked
# elsewhere and run with an empty environment, then exports a checkpoint to
# the same bytes as this machine's build and refines a synthetic dataset to
# the same scores. It checks correctness on AArch64 (the kernels' portable
# code, the evaluator's non-x86 number reader, ONNX Runtime's AArch64
# kernels), not speed, which emulation says nothing about.
#
#   bash scripts/test-aarch64.sh [--cpu neoverse-n1|cortex-a72|all] [-- CARGO_TEST_ARGS...]
#
# Needs (Debian): qemu-user, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross,
# the Rust target aarch64-unknown-linux-gnu, `make setup` done (its Python
# runs the tests' independent checks), and root: the spawned AArch64
# programs run through binfmt_misc (registered here if it is not), and
# ONNX Runtime reads /proc/cpuinfo at load, which under qemu-user is the
# host's, so each run gets an AArch64 one in a private mount namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "test-aarch64: error: $*" >&2; exit 1; }

cpus="neoverse-n1 cortex-a72"
cargo_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu)
      case "${2:-}" in
        all) ;;
        neoverse-n1|cortex-a72) cpus=$2 ;;
        *) die "--cpu takes neoverse-n1, cortex-a72 or all" ;;
      esac
      shift ;;
    --) shift; cargo_args=("$@"); break ;;
    *) die "unknown argument $1 (use --cpu NAME, then -- and cargo test's arguments)" ;;
  esac
  shift
done

. scripts/aarch64.sh
[ -x .venv/bin/python ] || die "no .venv: run 'make setup' first"
[ "$(id -u)" = 0 ] || die "needs root (binfmt_misc and a private /proc/cpuinfo); run it as root or in a container"
for tool in qemu-aarch64 unshare; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install qemu-user)"
done
aarch64_cross_env

# AArch64 programs started by the tests run through qemu-user.
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" \
    || die "cannot mount binfmt_misc (Debian: apt-get install qemu-user-binfmt does this for you)"
  printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$(command -v qemu-aarch64)"':OCF' \
    > "$binfmt/register" || die "cannot register qemu-aarch64 with binfmt_misc"
fi

# The AArch64 ONNX Runtime, in a venv-shaped folder whose Python is .venv's.
work=$(aarch64_ort_venv)

# An AArch64 /proc/cpuinfo for a two-core processor of each kind.
cpuinfo() {  # NAME -> text
  local features="fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid" variant=0x0 part=0xd08
  if [ "$1" = neoverse-n1 ]; then
    features="$features atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp ssbs"
    variant=0x3 part=0xd0c
  fi
  for i in 0 1; do
    printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: 1\n\n' \
      "$i" "$features" "$variant" "$part"
  done
}

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
export QEMU_LD_PREFIX=$AARCH64_SYSROOT
export TCANET_VENV=$work
crates=(-p tcanet-models -p tcanet-cli -p tcanet-evaluator -p tcanet-ort -p tcanet-runtime -p tcanet-exporter)
cargo build --release --target "$AARCH64_TRIPLE" --tests --bins "${crates[@]}"

# COMMAND... with an AArch64 /proc/cpuinfo of $cpu, in a private mount namespace.
as_cpu() {
  QEMU_CPU=$cpu unshare -m bash -c 'mount --bind "$1" /proc/cpuinfo && shift && exec "$@"' _ \
    "$work/cpuinfo-$cpu" "$@"
}

# The AArch64 release (scripts/dist.sh --target aarch64) unpacked elsewhere,
# a synthetic dataset, a checkpoint, and the scores this machine's build
# gives the dataset refined by the checkpoint's model: made once, in $check.
check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
(
  host=${CARGO_TARGET_DIR:-target}/release
  export TCANET_VENV=$PWD/.venv
  bash scripts/dist.sh --target aarch64 --no-build --out "$check/dist" >/dev/null
  mkdir "$check/release"
  tar -xzf "$check"/dist/*.tar.gz -C "$check/release" --strip-components 1
  cargo build --release -q -p tcanet-trainer -p tcanet-runtime -p tcanet-exporter \
    -p tcanet-evaluator --bins
  "$host/tcanet-train" synth -q --out "$check/data" --train-videos 2 --val-videos 8 --seed 5
  "$host/tcanet-export" random-checkpoint -q --preset tiny --seed 5 -o "$check/ckpt.safetensors"
  "$host/tcanet-export" -q "$check/ckpt.safetensors" -o "$check/model.onnx"
  "$host/tcanet-infer" run -q --model "$check/model.onnx" --data "$check/data" \
    --subset validation -o "$check/x86.json" --threads 1
  "$host/tcanet-eval" proposals "$check/data/annotations.json" "$check/x86.json" --json \
    -o "$check/x86-scores.json"
) || die "preparing the release check failed"

# On the emulated $cpu, the release run with an empty environment (but
# qemu's own variables) exports the checkpoint to the same bytes, refines
# the dataset and scores it as this machine's build does: AUC, AR@1 and
# AR@100 to 1e-6.
release_check() {
  # (Each step returns on failure: `set -e` does not apply inside `f || ...`.)
  local bin=$check/release/bin
  clean() { as_cpu env -i QEMU_LD_PREFIX="$AARCH64_SYSROOT" QEMU_CPU="$cpu" "$@"; }
  clean "$bin/tcanet-infer" doctor >/dev/null || return 1
  clean "$bin/tcanet-export" -q "$check/ckpt.safetensors" -o "$check/arm.onnx" || return 1
  cmp -s "$check/arm.onnx" "$check/model.onnx" \
    || { echo "the AArch64 exporter's model differs from this machine's" >&2; return 1; }
  clean "$bin/tcanet-infer" run -q --model "$check/arm.onnx" --data "$check/data" \
    --subset validation -o "$check/arm.json" --threads 1 || return 1
  clean "$bin/tcanet-eval" proposals "$check/data/annotations.json" "$check/arm.json" --json \
    -o "$check/arm-scores.json" || return 1
  .venv/bin/python - "$check/arm-scores.json" "$check/x86-scores.json" <<'PY'
import json, sys
arm, x86 = (json.load(open(path)) for path in sys.argv[1:])
for key in ("AUC", "AR@1", "AR@100"):
    assert abs(arm[key] - x86[key]) <= 1e-6, f"{key}: AArch64 {arm[key]} against x86-64 {x86[key]}"
print(f"test-aarch64: the release refines as this machine's build does (AUC {arm['AUC']:.4f})")
PY
}

status=0
for cpu in $cpus; do
  echo "test-aarch64: the tests on an emulated $cpu"
  cpuinfo "$cpu" > "$work/cpuinfo-$cpu"
  as_cpu cargo test --release --target "$AARCH64_TRIPLE" "${crates[@]}" "${cargo_args[@]}" \
    || { status=1; echo "test-aarch64: FAILED on $cpu" >&2; }
  release_check || { status=1; echo "test-aarch64: the release FAILED on $cpu" >&2; }
done
exit $status
