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

# Free space (GiB, rounded down) on the filesystem holding $1.
free_gib() { df -Pk "$1" | awk 'NR == 2 { print int($4 / 1048576) }'; }

# The packages take about 5 GiB installed (torch with its CUDA libraries,
# which the trainer links even on a CPU), and pip holds the downloaded wheels
# (about 3 GiB) in its temporary directory until it has installed them all.
# Stop before pip when that cannot fit, rather than half-way through it.
check_disk_space() {
  local tmp=${TMPDIR:-/tmp} need_venv=5 need_tmp=3
  local venv_fs tmp_fs
  venv_fs=$(df -P . | awk 'NR == 2 { print $1 }')
  tmp_fs=$(df -P "$tmp" | awk 'NR == 2 { print $1 }')
  if [ "$venv_fs" = "$tmp_fs" ]; then
    [ "$(free_gib .)" -ge $((need_venv + need_tmp)) ] || die "the Python packages need about $((need_venv + need_tmp)) GiB free on the disk of $PWD (5 GiB installed in .venv, 3 GiB of downloads in $tmp meanwhile); it has $(free_gib .) GiB: free some space, or set TMPDIR to a directory on another disk, then run 'make setup' again"
  else
    [ "$(free_gib .)" -ge $need_venv ] || die "the Python packages need about $need_venv GiB free for .venv in $PWD; that disk has $(free_gib .) GiB: free some space, then run 'make setup' again"
    [ "$(free_gib "$tmp")" -ge $need_tmp ] || die "pip needs about $need_tmp GiB free in $tmp for its downloads; it has $(free_gib "$tmp") GiB: free some space or set TMPDIR to a directory with room, then run 'make setup' again"
  fi
}

# The Python packages: again only when requirements.txt changed. No pip cache:
# the wheels would stay on disk (3 GiB) beside the packages made from them.
venv_packages() {
  echo "setup: creating .venv with $(tr '\n' ' ' < requirements.txt)(about 5 GiB with torch; this takes a few minutes once)"
  [ -x .venv/bin/python ] || check_disk_space
  [ -x .venv/bin/python ] || "$PY" -m venv .venv || die "python venv failed (Debian: apt-get install python3-venv)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-cache-dir --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-cache-dir -r requirements.txt \
    || die "installing the Python packages failed (see pip's message above; $(free_gib .) GiB free on the disk of .venv now); 'make setup' tries again"
  torch_dir=$(.venv/bin/python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
  ln -sfn "$(realpath --relative-to=.venv "$torch_dir")" .venv/libtorch
  ort_dir=$(.venv/bin/python -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')
  ln -sfn "$(realpath --relative-to=.venv "$ort_dir")" .venv/onnxruntime
  ls .venv/onnxruntime/libonnxruntime.so* >/dev/null || die "onnxruntime wheel has no libonnxruntime.so in $ort_dir"
  cp requirements.txt "$stamp"
  echo "setup: done (.venv/libtorch -> $torch_dir)"
}

# The sources the tcanet_eval package is built from (the evaluator crate, the
# cli crates it depends on, and evaluator/python without its tests and
# benchmark), hashed.
eval_python_sources_hash() {
  find evaluator/Cargo.toml evaluator/src cli/Cargo.toml cli/src cli/version \
       evaluator/python/Cargo.toml evaluator/python/Cargo.lock \
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
