#!/usr/bin/env bash
# `make dist`: a relocatable release of the lean binaries.
#
#   dist/tcanet-VERSION-linux-ARCH.tar.gz     tcanet-infer, tcanet-eval, tcanet-export,
#                                              the ONNX Runtime CPU library they load
#                                              (beside them), the licenses, a README
#   dist/tcanet_eval-*.whl                     the evaluator's Python package (abi3)
#
# Unpacked anywhere, the binaries run with a clean environment (env -i): no
# Python, no venv, no path of this machine (checked below). The trainer is
# not part of it: it needs libtorch (see the README's trainer section).
#   bash scripts/dist.sh [--no-wheel] [--no-build] [--out DIR] [--target aarch64]
# (--no-build packs the binaries already in the target directory.)
# ARCH is this machine's; `--target aarch64` cross-builds the AArch64
# release instead (Debian: gcc-aarch64-linux-gnu, libc6-dev-arm64-cross;
# rustup target add aarch64-unknown-linux-gnu), with the AArch64 build of
# the same ONNX Runtime (scripts/aarch64.sh) and no wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "dist: error: $*" >&2; exit 1; }

out=dist
wheel=1
build=1
cross=
while [ $# -gt 0 ]; do
  case "$1" in
    --no-wheel) wheel=0 ;;
    --no-build) build=0 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --target)
      [ "${2:-}" = aarch64 ] || die "--target takes aarch64 (the default is this machine's)"
      cross=1; wheel=0; shift ;;
    *) die "unknown argument $1 (use --no-wheel, --no-build, --out DIR, --target aarch64)" ;;
  esac
  shift
done

target=${CARGO_TARGET_DIR:-target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
venv=.venv
strip=strip
cargo_target=()
bins="$target/release"
arch=$(uname -m)
if [ -n "$cross" ]; then
  . scripts/aarch64.sh
  aarch64_cross_env
  venv=$(aarch64_ort_venv)
  strip=aarch64-linux-gnu-strip
  cargo_target=(--target "$AARCH64_TRIPLE")
  bins="$target/$AARCH64_TRIPLE/release"
  arch=aarch64
fi
name="tcanet-$version-linux-$arch"
ort_lib=$(ls "$venv"/onnxruntime/libonnxruntime.so.*.*.* 2>/dev/null | head -1) \
  || true
[ -n "$ort_lib" ] || die "no $venv/onnxruntime/libonnxruntime.so.X.Y.Z: run 'make setup' first"
ort_pkg=$(dirname "$(readlink -f "$venv/onnxruntime")")

if [ "$build" = 1 ]; then
  cargo build --release -q "${cargo_target[@]}" -p tcanet-exporter -p tcanet-runtime -p tcanet-evaluator --bins
fi
for b in tcanet-infer tcanet-eval tcanet-export; do
  [ -x "$bins/$b" ] || die "$bins/$b is missing (build it, or drop --no-build)"
done
stage="$target/dist/$name"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/licenses"
for b in tcanet-infer tcanet-eval tcanet-export; do
  # Debug information carries source paths; the release keeps none.
  "$strip" --strip-debug -o "$stage/bin/$b" "$bins/$b"
done
cp "$ort_lib" "$stage/bin/"
cp LICENSE-MIT LICENSE-APACHE "$stage/licenses/"
cp "$ort_pkg/LICENSE" "$stage/licenses/onnxruntime-LICENSE.txt"
cp "$ort_pkg/ThirdPartyNotices.txt" "$stage/licenses/onnxruntime-ThirdPartyNotices.txt"
cp evaluator/assets/DejaVuSans-LICENSE.txt "$stage/licenses/DejaVuSans-LICENSE.txt"
sed -e "s/@VERSION@/$version/g" -e "s/@ORT@/$(basename "$ort_lib")/g" scripts/dist-README.md > "$stage/README.md"

# No binary may carry the path of this build.
here=$(pwd -P)
for b in "$stage"/bin/tcanet-*; do
  if strings "$b" | grep -qF "$here"; then
    die "$b contains the build directory's path ($here)"
  fi
done

mkdir -p "$out"
tar -C "$target/dist" -czf "$out/$name.tar.gz" "$name"
echo "dist: wrote $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1))"
if [ "$wheel" = 1 ]; then
  PATH="$PWD/.venv/bin:$PATH" .venv/bin/maturin build --release -q \
    -m evaluator/python/Cargo.toml -o "$out" \
    || die "building the tcanet_eval wheel failed"
  echo "dist: wrote $(ls "$out"/tcanet_eval-*.whl | tail -1)"
fi
