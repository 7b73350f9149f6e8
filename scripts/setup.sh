#!/usr/bin/env bash
# All set-up on a fresh machine (Debian, Rust, python3), idempotent and fast
# when already done: a project-local .venv with the pinned Python packages
# (torch 2.11.0 provides libtorch for tch 0.24; onnxruntime 1.31.1 provides
# libonnxruntime.so for ort's load-dynamic; onnx for the exporter's checks;
# maturin builds the tcanet_eval package, pytest tests it), the
# .venv/libtorch link that .cargo/config.toml points LIBTORCH at, and the
# tcanet_eval Python package (evaluator/python) installed into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: error: $*" >&2; exit 1; }
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs), then run 'make setup' again"
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || die "$PY not found: install python3 (3.10 or newer) with venv and pip"

# The Python packages: again only when requirements.txt changed.
venv_packages() {
  echo "setup: creating .venv with $(tr '\n' ' ' < requirements.txt)(torch is about 3 GB; this takes a few minutes once)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv || die "python venv failed (Debian: apt-get install python3-venv)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  torch_dir=$(.venv/bin/python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
  ln -sfn "$(realpath --relative-to=.venv "$torch_dir")" .venv/libtorch
  ort_dir=$(.venv/bin/python -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')
  ln -sfn "$(realpath --relative-to=.venv "$ort_dir")" .venv/onnxruntime
  ls .venv/onnxruntime/libonnxruntime.so* >/dev/null || die "onnxruntime wheel has no libonnxruntime.so in $ort_dir"
  cp requirements.txt "$stamp"
  echo "setup: done (.venv/libtorch -> $torch_dir)"
}

# The sources the tcanet_eval package is built from (the evaluator crate and
# evaluator/python without its tests and benchmark), hashed.
eval_python_sources_hash() {
  find evaluator/Cargo.toml evaluator/src evaluator/python/Cargo.toml evaluator/python/Cargo.lock \
       evaluator/python/pyproject.toml evaluator/python/README.md evaluator/python/src \
       evaluator/python/python -type f ! -name '*.pyc' -print0 \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

# tcanet_eval: built by maturin (through pip) only when those sources changed;
# into the workspace's target directory, to reuse its compiled dependencies.
eval_python_package() {
  local hash
  hash=$(eval_python_sources_hash)
  if [ -f "$py_stamp" ] && [ "$(cat "$py_stamp")" = "$hash" ]; then
    return 0
  fi
  local target=${CARGO_TARGET_DIR:-target}
  [[ $target = /* ]] || target="$PWD/$target"  # pip builds from evaluator/python
  echo "setup: building and installing the tcanet_eval Python package (evaluator/python)"
  PATH="$PWD/.venv/bin:$PATH" CARGO_TARGET_DIR="$target" \
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation \
      --no-deps --force-reinstall ./evaluator/python \
    || die "building evaluator/python failed (see above); 'make setup' tries again"
  .venv/bin/python -c 'import tcanet_eval' || die "tcanet_eval was installed but does not import"
  echo "$hash" > "$py_stamp"
}

stamp=.venv/.tcanet-setup
py_stamp=.venv/.tcanet-eval-python
if ! { [ -f "$stamp" ] && cmp -s "$stamp" requirements.txt && [ -e .venv/libtorch/lib/libtorch_cpu.so ]; }; then
  venv_packages
fi
eval_python_package
