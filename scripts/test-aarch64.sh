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
# It checks correctness on AArch64 (the kernels' portable code, the
# evaluator's non-x86 number reader, ONNX Runtime's AArch64 kernels), not
# speed: emulation is 5-20 times slower than a real processor.
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

triple=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
[ -x .venv/bin/python ] || die "no .venv: run 'make setup' first"
[ "$(id -u)" = 0 ] || die "needs root (binfmt_misc and a private /proc/cpuinfo); run it as root or in a container"
for tool in qemu-aarch64 aarch64-linux-gnu-gcc unshare; do
  command -v "$tool" >/dev/null \
    || die "$tool not found (Debian: apt-get install qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
done
[ -e "$sysroot/lib/libc.so.6" ] || die "no AArch64 C library in $sysroot (Debian: apt-get install libc6-dev-arm64-cross)"
rustup target list --installed 2>/dev/null | grep -qx "$triple" \
  || die "the Rust target $triple is missing (rustup target add $triple)"

# AArch64 programs started by the tests run through qemu-user.
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" \
    || die "cannot mount binfmt_misc (Debian: apt-get install qemu-user-binfmt does this for you)"
  printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$(command -v qemu-aarch64)"':OCF' \
    > "$binfmt/register" || die "cannot register qemu-aarch64 with binfmt_misc"
fi

# The AArch64 ONNX Runtime, in a venv-shaped folder whose Python is .venv's.
work=$(bash scripts/aarch64-ort.sh) || die "no AArch64 ONNX Runtime"

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

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export QEMU_LD_PREFIX=$sysroot
export TCANET_VENV=$work
crates=(-p tcanet-models -p tcanet-cli -p tcanet-evaluator -p tcanet-ort -p tcanet-runtime -p tcanet-exporter)
cargo build --release --target "$triple" --tests --bins "${crates[@]}"

# COMMAND... with an AArch64 /proc/cpuinfo of $cpu, in a private mount namespace.
as_cpu() {
  QEMU_CPU=$cpu unshare -m bash -c 'mount --bind "$1" /proc/cpuinfo && shift && exec "$@"' _ \
    "$work/cpuinfo-$cpu" "$@"
}

# The AArch64 release (scripts/dist.sh --target aarch64), unpacked elsewhere,
# runs export -> infer -> eval with an empty environment (but qemu's own
# variables) and refines a synthetic dataset as this machine's build does:
# the same AUC, AR@1 and AR@100 to 1e-6.
release_check() {
  # (Each step returns on failure: `set -e` does not apply inside `f || ...`.)
  local tmp rel arm x86 host=${CARGO_TARGET_DIR:-target}/release
  local host_venv
  host_venv=$(realpath .venv)
  tmp=$(mktemp -d)
  bash scripts/dist.sh --target aarch64 --no-build --out "$tmp/dist" >/dev/null || return 1
  mkdir "$tmp/elsewhere" && tar -xzf "$tmp"/dist/*.tar.gz -C "$tmp/elsewhere" || return 1
  rel=$(echo "$tmp"/elsewhere/tcanet-*)
  clean() { as_cpu env -i QEMU_LD_PREFIX="$sysroot" QEMU_CPU="$cpu" "$@"; }
  here() { TCANET_VENV=$host_venv "$@"; }
  cargo build --release -q -p tcanet-trainer -p tcanet-runtime -p tcanet-exporter \
    -p tcanet-evaluator --bins || return 1
  here "$host/tcanet-train" synth -q --out "$tmp/data" --train-videos 2 --val-videos 8 --seed 5 \
    || return 1
  here "$host/tcanet-export" random-checkpoint -q --preset tiny --seed 5 -o "$tmp/ckpt.safetensors" \
    || return 1
  clean "$rel/bin/tcanet-infer" doctor >/dev/null || return 1
  clean "$rel/bin/tcanet-export" -q "$tmp/ckpt.safetensors" -o "$tmp/model.onnx" || return 1
  clean "$rel/bin/tcanet-infer" run -q --model "$tmp/model.onnx" --data "$tmp/data" \
    --subset validation -o "$tmp/arm.json" --threads 1 || return 1
  here "$host/tcanet-infer" run -q --model "$tmp/model.onnx" --data "$tmp/data" \
    --subset validation -o "$tmp/x86.json" --threads 1 || return 1
  arm=$(clean "$rel/bin/tcanet-eval" proposals "$tmp/data/annotations.json" "$tmp/arm.json" --json) \
    || return 1
  x86=$(here "$host/tcanet-eval" proposals "$tmp/data/annotations.json" "$tmp/x86.json" --json) \
    || return 1
  rm -rf "$tmp"
  .venv/bin/python - "$arm" "$x86" <<'PY'
import json, sys
arm, x86 = (json.loads(a) for a in sys.argv[1:])
for key in ("AUC", "AR@1", "AR@100"):
    assert abs(arm[key] - x86[key]) <= 1e-6, f"{key}: AArch64 {arm[key]} against x86-64 {x86[key]}"
print(f"test-aarch64: the release refines as this machine's build does (AUC {arm['AUC']:.4f})")
PY
}

status=0
for cpu in $cpus; do
  echo "test-aarch64: the tests on an emulated $cpu"
  cpuinfo "$cpu" > "$work/cpuinfo-$cpu"
  as_cpu cargo test --release --target "$triple" "${crates[@]}" "${cargo_args[@]}" \
    || { status=1; echo "test-aarch64: FAILED on $cpu" >&2; }
  release_check || { status=1; echo "test-aarch64: the release FAILED on $cpu" >&2; }
done
exit $status
