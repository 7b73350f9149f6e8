# The set-up the exporter's benchmark scripts share; sourced (repository root).

# needs_venv: sets `py` and `lib` (the project venv's Python and ONNX Runtime,
# or TCANET_PYTHON / ORT_DYLIB_PATH), or stops with exit 2.
needs_venv() {
  py=${TCANET_PYTHON:-.venv/bin/python}
  lib=${ORT_DYLIB_PATH:-.venv/onnxruntime/libonnxruntime.so.1.31.1}
  [ -x "$py" ] && [ -f "$lib" ] || { echo "needs the project venv (make setup): $py, $lib" >&2; exit 2; }
}

# build_exporter: builds tcanet-export, sets `bin` to it and `work` to a
# scratch directory removed when the script exits.
build_exporter() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
  cargo build --release -q -p tcanet-exporter
  bin="$CARGO_TARGET_DIR/release/tcanet-export"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
}

# host_line: the date, processor, CPU count, vector ISA flags and load
# average, as one comment line (every figure names its host).
host_line() {
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "$(nproc) CPUs; ISA flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f' | sort | xargs);" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# GLIBC_TUNABLES of an AVX2 leg: glibc's own AVX-512 routines off, as on an
# AVX2 host (ONNX Runtime's kernels are limited by scripts/ort_avx2.py).
no512="glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD"
