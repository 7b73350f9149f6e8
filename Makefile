# The two commands of the README: `make demo` (the main job) and `make test`
# (the whole suite). Both do all set-up first and are fast when it is done.
CARGO ?= cargo

.PHONY: setup demo test test-aarch64 build bench dist fmt clean
setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace

demo: setup
	@bash scripts/demo.sh

test: setup
	$(CARGO) build --release --workspace --bins
	$(CARGO) test --release --workspace
	.venv/bin/python -m pytest -q evaluator/python/tests

# The lean crates' tests for AArch64 under qemu-user (needs root; not in CI).
test-aarch64: setup
	@bash scripts/test-aarch64.sh

bench: setup
	@bash scripts/bench.sh

dist: setup
	@bash scripts/dist.sh

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path evaluator/python/Cargo.toml

clean:
	$(CARGO) clean
