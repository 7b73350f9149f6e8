#!/usr/bin/env bash
# ONNX Runtime for AArch64 in a venv-shaped folder, for the AArch64 tests
# (scripts/test-aarch64.sh) and release (scripts/dist.sh --target aarch64):
# the onnxruntime wheel of requirements.txt's version built for manylinux
# AArch64, unpacked once, with
#   DIR/onnxruntime -> the wheel's onnxruntime/capi (libonnxruntime.so.X.Y.Z),
#                      its LICENSE and ThirdPartyNotices.txt one folder up;
#   DIR/bin, lib, include, pyvenv.cfg -> .venv's (so $TCANET_VENV/bin/python
#                      is .venv's Python, which the tests' checks run).
# Prints DIR's absolute path.
#   bash scripts/aarch64-ort.sh [DIR]   (default: target/aarch64-unknown-linux-gnu-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "aarch64-ort: error: $*" >&2; exit 1; }

dir=${1:-${CARGO_TARGET_DIR:-target}/aarch64-unknown-linux-gnu-venv}
version=$(sed -n 's/^onnxruntime==//p' requirements.txt)
[ -n "$version" ] || die "requirements.txt pins no onnxruntime version"
[ -x .venv/bin/python ] || die "no .venv: run 'make setup' first"
mkdir -p "$dir"
dir=$(realpath "$dir")
if [ ! -e "$dir/onnxruntime/libonnxruntime.so.$version" ]; then
  echo "aarch64-ort: fetching the AArch64 onnxruntime==$version wheel" >&2
  rm -rf "$dir/wheel" "$dir/package" "$dir/onnxruntime"
  .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_28_aarch64 --python-version 3.11 -d "$dir/wheel" "onnxruntime==$version" >&2 \
    || die "pip could not download the AArch64 onnxruntime==$version wheel"
  .venv/bin/python - "$dir" <<'PY'
import glob, sys, zipfile
out = sys.argv[1]
wanted = ("onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt")
with zipfile.ZipFile(glob.glob(f"{out}/wheel/*.whl")[0]) as wheel:
    for name in wheel.namelist():
        if name in wanted or name.startswith("onnxruntime/capi/libonnxruntime"):
            wheel.extract(name, f"{out}/package")
PY
  rm -rf "$dir/wheel"
  ln -sfn package/onnxruntime/capi "$dir/onnxruntime"
  [ -e "$dir/onnxruntime/libonnxruntime.so.$version" ] || die "the wheel has no libonnxruntime.so.$version"
fi
venv=$(realpath .venv)
for part in bin lib include pyvenv.cfg; do
  ln -sfn "$venv/$part" "$dir/$part"
done
echo "$dir"
