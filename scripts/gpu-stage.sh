#!/usr/bin/env bash
# Stage ONNX Runtime's CUDA build for tcanet-infer on a GPU machine
# (README.md, "GPU use").
#
# The project's venv has the CPU onnxruntime; the GPU machines have no network
# and no CUDA build of ONNX Runtime. This script takes the three libraries of
# the onnxruntime-gpu 1.31.1 wheel (CUDA 13) there, compressed and split into
# parts small enough to carry, and sets up the loader paths on the GPU side.
#
#   scripts/gpu-stage.sh pack     # here (needs PyPI): download the wheel, extract
#                                 # the libs, xz -9, split into .gpu/parts/
#   scripts/gpu-stage.sh unpack   # there: check, join and extract into .gpu/ort/
#   eval "$(scripts/gpu-stage.sh env)"   # there: LD_LIBRARY_PATH, ORT_DYLIB_PATH
#
# Then, on the GPU machine:
#   target/release/tcanet-infer bench hacs.onnx --device cuda --strict-device --json
#
# .gpu/ is git-ignored. Each part is at most PART_MB MiB (default 60), so that
# one part fits in one carried path of a device run; parts carried by earlier
# runs stay on a warm machine.
set -euo pipefail

ORT_VERSION=1.31.1
PART_MB=${PART_MB:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STAGE=$ROOT/.gpu
LIBS=(
  "libonnxruntime.so.${ORT_VERSION}"
  "libonnxruntime_providers_shared.so"
  "libonnxruntime_providers_cuda.so"
)
# A Python environment on the GPU machine whose torch (CUDA 13 build) brings
# cuBLAS, cuRAND and cuDNN 9: the project's own .venv unless TORCH_VENV says.
TORCH_VENV=${TORCH_VENV:-$ROOT/.venv}

die() { echo "gpu-stage: $*" >&2; exit 1; }

pack() {
  local py=${PYTHON:-$ROOT/.venv/bin/python}
  [ -x "$py" ] || die "no python at $py (run make setup, or set PYTHON)"
  mkdir -p "$STAGE/wheel" "$STAGE/lib" "$STAGE/parts"
  local wheel
  wheel=$(ls "$STAGE"/wheel/onnxruntime_gpu-"$ORT_VERSION"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    echo "downloading onnxruntime-gpu==$ORT_VERSION (about 280 MB) ..." >&2
    "$py" -m pip download --no-deps --only-binary=:all: \
      --python-version 3.12 --platform manylinux_2_28_x86_64 \
      -d "$STAGE/wheel" "onnxruntime-gpu==$ORT_VERSION"
    wheel=$(ls "$STAGE"/wheel/onnxruntime_gpu-"$ORT_VERSION"-*.whl | head -n1)
  fi
  echo "extracting ${LIBS[*]} from $(basename "$wheel")" >&2
  "$py" - "$wheel" "$STAGE/lib" "${LIBS[@]}" <<'PY'
import sys, zipfile, os, shutil
wheel, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    members = {os.path.basename(n): n for n in z.namelist() if "/capi/" in n}
    for name in names:
        if name not in members:
            sys.exit(f"{wheel} has no onnxruntime/capi/{name}")
        with z.open(members[name]) as src, open(os.path.join(out, name), "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
  (cd "$STAGE/lib" && sha256sum "${LIBS[@]}" > SHA256SUMS)
  rm -f "$STAGE"/parts/ort-gpu.tar.xz.part-*
  echo "compressing (xz -9) and splitting into ${PART_MB} MiB parts ..." >&2
  tar -C "$STAGE/lib" -cf - "${LIBS[@]}" SHA256SUMS | xz -9 -T0 \
    | split -b "${PART_MB}M" -d -a 2 - "$STAGE/parts/ort-gpu.tar.xz.part-"
  (cd "$STAGE/parts" && sha256sum ort-gpu.tar.xz.part-* > PARTS.SHA256SUMS)
  echo "parts (carry each, with .gpu/parts/PARTS.SHA256SUMS, to the GPU machine):" >&2
  ls -l "$STAGE/parts" >&2
}

unpack() {
  [ -d "$STAGE/parts" ] || die "no $STAGE/parts: carry the parts made by 'pack' first"
  (cd "$STAGE/parts" && sha256sum -c PARTS.SHA256SUMS) >&2 \
    || die "a part is missing or damaged: carry it again"
  mkdir -p "$STAGE/ort"
  cat "$STAGE"/parts/ort-gpu.tar.xz.part-* | xz -d | tar -C "$STAGE/ort" -xf -
  (cd "$STAGE/ort" && sha256sum -c SHA256SUMS) >&2
  ln -sf "libonnxruntime.so.${ORT_VERSION}" "$STAGE/ort/libonnxruntime.so"
  echo "ONNX Runtime (CUDA) in $STAGE/ort; now: eval \"\$(scripts/gpu-stage.sh env)\"" >&2
}

env_lines() {
  local site
  site=$("$TORCH_VENV/bin/python3" -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null) \
    || die "no python at $TORCH_VENV/bin/python3 (set TORCH_VENV)"
  local dirs="$STAGE/ort"
  for d in "$site"/nvidia/*/lib; do
    [ -d "$d" ] && dirs="$dirs:$d"
  done
  echo "export LD_LIBRARY_PATH=\"$dirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
  echo "export ORT_DYLIB_PATH=\"$STAGE/ort/libonnxruntime.so.${ORT_VERSION}\""
}

case "${1:-}" in
  pack) pack ;;
  unpack) unpack ;;
  env) env_lines ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
