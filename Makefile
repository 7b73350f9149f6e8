# The two commands of the README: `make demo` (the main job) and `make test`
# (the whole suite). Both do all set-up first and are fast when it is done.
CARGO ?= cargo

.PHONY: setup demo test build bench dist fmt clean
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

bench: setup
	@bash scripts/bench.sh

dist: setup
	@bash scripts/dist.sh

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path evaluator/python/Cargo.toml

clean:
	$(CARGO) clean
