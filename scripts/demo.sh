#!/usr/bin/env bash
# The main job (`make demo`): builds the release binaries, then runs
# tcanet-demo (synth -> train -> export -> infer -> evaluate on the CPU),
# which writes runs/<name>/ (default runs/demo/). Arguments go to
# tcanet-demo: `make demo` takes none; `bash scripts/demo.sh --help` lists them.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
echo "demo: building the release binaries (the first time takes a few minutes)" >&2
# One build: the tch modules are their own crate (tcanet-nn), so building
# the trainer with the others never links libtorch into them.
"$CARGO" build --release -p tcanet-trainer -p tcanet-exporter -p tcanet-runtime \
  -p tcanet-evaluator -p tcanet-demo --bins
target=${CARGO_TARGET_DIR:-target}
# tcanet-infer finds ONNX Runtime through TCANET_VENV (cargo sets it for
# `cargo run`/`cargo test`; the demo is run directly).
export TCANET_VENV=${TCANET_VENV:-$PWD/.venv}
exec "$target/release/tcanet-demo" "$@"
