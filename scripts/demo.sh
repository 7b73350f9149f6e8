#!/usr/bin/env bash
# The main job (`make demo`): builds the release binaries, then runs
# tcanet-demo (synth -> train -> export -> infer -> evaluate on the CPU),
# which writes runs/<name>/ (default runs/demo/). Arguments go to
# tcanet-demo: `make demo` takes none; `bash scripts/demo.sh --help` lists them.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
echo "demo: building the release binaries (the first time takes a few minutes)" >&2
# Two builds, not one: a single cargo invocation that also selects the
# trainer unifies tcanet-models' `tch` feature into every binary, and
# tcanet-infer / tcanet-export would then link libtorch (without a path to it).
"$CARGO" build --release -p tcanet-trainer --bins
"$CARGO" build --release -p tcanet-exporter -p tcanet-runtime -p tcanet-evaluator \
  -p tcanet-tests --bins
target=${CARGO_TARGET_DIR:-target}
exec "$target/release/tcanet-demo" "$@"
