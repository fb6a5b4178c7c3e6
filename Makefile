# Publisher: build, run, test. `make run` and `make test` are all a new machine needs.
SHELL := /bin/bash
CARGO ?= cargo

# Python tools the tests use (moto's DynamoDB, aiosmtpd, cargo-lambda, cfn-lint),
# installed once into a project virtualenv.
VENV ?= $(CURDIR)/.venv
PY_TOOLS := moto[server] aiosmtpd cargo-lambda cfn-lint

# Local standalone run over a scratch folder.
RUN_DIR ?= $(CURDIR)/target/run-photos

.PHONY: run test lint unit bench venv

run:
	mkdir -p "$(RUN_DIR)"
	PORT=8000 STORAGE_PROVIDER=local LOCAL_STORAGE_DIR="$(RUN_DIR)" \
	STORAGE_PATHS='{"root": "/"}' AUTO_VIEW=true \
	$(CARGO) run -p web

test: lint venv unit

venv: $(VENV)/.installed

$(VENV)/.installed:
	python3 -m venv "$(VENV)"
	"$(VENV)/bin/pip" install --quiet --upgrade pip
	"$(VENV)/bin/pip" install --quiet $(foreach t,$(PY_TOOLS),'$(t)')
	touch "$@"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

bench:
	$(CARGO) bench -p publisher-tests --bench warm_request
