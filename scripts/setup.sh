#!/usr/bin/env bash
# All set-up on a fresh machine (Debian, Rust, python3), idempotent and fast
# when already done: a project-local .venv with the pinned Python packages
# (torch 2.11.0 provides libtorch for tch 0.24; onnxruntime 1.31.1 provides
# libonnxruntime.so for ort's load-dynamic; onnx for the exporter's checks),
# and the .venv/libtorch link that .cargo/config.toml points LIBTORCH at.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: error: $*" >&2; exit 1; }
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs), then run 'make setup' again"
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || die "$PY not found: install python3 (3.10 or newer) with venv and pip"

stamp=.venv/.tcanet-setup
if [ -f "$stamp" ] && cmp -s "$stamp" requirements.txt && [ -e .venv/libtorch/lib/libtorch_cpu.so ]; then
  exit 0
fi
echo "setup: creating .venv with $(tr '\n' ' ' < requirements.txt)(torch is about 3 GB; this takes a few minutes once)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv || die "python venv failed (Debian: apt-get install python3-venv)"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
torch_dir=$(.venv/bin/python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
ln -sfn "$torch_dir" .venv/libtorch
ort_dir=$(.venv/bin/python -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')
ln -sfn "$ort_dir" .venv/onnxruntime
ls .venv/onnxruntime/libonnxruntime.so* >/dev/null || die "onnxruntime wheel has no libonnxruntime.so in $ort_dir"
cp requirements.txt "$stamp"
echo "setup: done (.venv/libtorch -> $torch_dir)"
