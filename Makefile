# Publisher: build, run, test. `make run` and `make test` are all a new machine needs.
SHELL := /bin/bash
CARGO ?= cargo

# Local standalone run over a scratch folder.
RUN_DIR ?= $(CURDIR)/target/run-photos

.PHONY: run test lint unit bench

run:
	mkdir -p "$(RUN_DIR)"
	PORT=8000 STORAGE_PROVIDER=local LOCAL_STORAGE_DIR="$(RUN_DIR)" \
	STORAGE_PATHS='{"root": "/"}' AUTO_VIEW=true \
	$(CARGO) run -p web

test: lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

bench:
	$(CARGO) bench -p publisher-tests --bench warm_request
