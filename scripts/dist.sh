#!/usr/bin/env bash
# `make dist`: a relocatable release of the lean binaries.
#
#   dist/tcanet-VERSION-linux-x86_64.tar.gz   tcanet-infer, tcanet-eval, tcanet-export,
#                                              the ONNX Runtime CPU library they load
#                                              (beside them), the licenses, a README
#   dist/tcanet_eval-*.whl                     the evaluator's Python package (abi3)
#
# Unpacked anywhere, the binaries run with a clean environment (env -i): no
# Python, no venv, no path of this machine (checked below). The trainer is
# not part of it: it needs libtorch (see the README's trainer section).
#   bash scripts/dist.sh [--no-wheel] [--no-build] [--out DIR]
# (--no-build packs the binaries already in the target directory.)
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "dist: error: $*" >&2; exit 1; }

out=dist
wheel=1
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-wheel) wheel=0 ;;
    --no-build) build=0 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    *) die "unknown argument $1 (use --no-wheel, --no-build, --out DIR)" ;;
  esac
  shift
done

target=${CARGO_TARGET_DIR:-target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(uname -m)
name="tcanet-$version-linux-$arch"
ort_lib=$(ls .venv/onnxruntime/libonnxruntime.so.*.*.* 2>/dev/null | head -1) \
  || true
[ -n "$ort_lib" ] || die "no .venv/onnxruntime/libonnxruntime.so.X.Y.Z: run 'make setup' first"
ort_pkg=$(dirname "$(readlink -f .venv/onnxruntime)")

if [ "$build" = 1 ]; then
  cargo build --release -q -p tcanet-exporter -p tcanet-runtime -p tcanet-evaluator --bins
fi
for b in tcanet-infer tcanet-eval tcanet-export; do
  [ -x "$target/release/$b" ] || die "$target/release/$b is missing (build it, or drop --no-build)"
done
stage="$target/dist/$name"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/licenses"
for b in tcanet-infer tcanet-eval tcanet-export; do
  # Debug information carries source paths; the release keeps none.
  strip --strip-debug -o "$stage/bin/$b" "$target/release/$b"
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
