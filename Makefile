# Publisher: build, run, test. `make run` and `make test` are all a new machine needs.
SHELL := /bin/bash
CARGO ?= cargo

# Python tools the tests use (moto's DynamoDB, aiosmtpd, cargo-lambda, cfn-lint),
# installed once into a project virtualenv.
VENV ?= $(CURDIR)/.venv
PY_TOOLS := moto[server] aiosmtpd cargo-lambda cfn-lint

# Local standalone run: samples/photos copied to a scratch folder (keep and
# remove never touch the repository), served on 127.0.0.1:8000 under the name
# publisher.localhost (*.localhost is loopback; the host rules refuse IP
# literals and plain `localhost`). Each run prints a fresh admin password.
RUN_DIR ?= $(CURDIR)/target/run-photos
RUN_HOST ?= publisher.localhost
RUN_PUBLISH ?= false

.PHONY: run test lint unit bench venv browser-test
.PHONY: build deploy watch invoke-web invoke-publish invoke-warmup cfn-lint

run:
	rm -rf "$(RUN_DIR)" && mkdir -p "$(RUN_DIR)" && cp -R samples/photos/. "$(RUN_DIR)/"
	$(CARGO) build -p web
	@password="$$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"; \
	echo; echo "  Publisher:      http://$(RUN_HOST):8000/"; \
	echo "  Admin password: $$password"; \
	echo "  Photos:         $(RUN_DIR) (a scratch copy of samples/photos)"; echo; \
	PORT=8000 STORAGE_PROVIDER=local LOCAL_STORAGE_DIR="$(RUN_DIR)" \
	STORAGE_PATHS='{"root": "/", "keep": "keep", "remove": "reject"}' \
	AUTO_VIEW=true FEATURE_PUBLISH=$(RUN_PUBLISH) WEB_SECURE_COOKIES=false \
	WEB_ADMIN_PASSWORD="$$password" WEB_SESSION_SECRET="$$(head -c 48 /dev/urandom | base64)" \
	exec "$(CURDIR)/target/debug/web"

test: lint venv cfn-lint unit browser-test

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

# The HTML UI in Debian's chromium, driven by playwright-core (its own browser
# download does not work here); installs both when missing.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BROWSER_DIR := $(CURDIR)/tests/browser

browser-test: $(BROWSER_DIR)/node_modules/.installed
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; fi
	$(CARGO) build -p web
	cd "$(BROWSER_DIR)" && CHROMIUM="$(CHROMIUM)" WEB_BIN="$(CURDIR)/target/debug/web" node --test ui.test.mjs

$(BROWSER_DIR)/node_modules/.installed: $(BROWSER_DIR)/package-lock.json
	@if ! command -v npm >/dev/null; then \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm; fi
	cd "$(BROWSER_DIR)" && npm ci --no-audit --no-fund
	touch "$@"

# ---- Lambda: build, run locally, invoke, deploy (see docs/operations.md) ----
# PATH: cargo-lambda links the arm64 build with zig from the virtualenv (ziglang).
CARGO_LAMBDA := PATH="$(VENV)/bin:$$PATH" "$(VENV)/bin/cargo-lambda" lambda
SAM ?= sam
STACK_NAME ?= publisher
# e.g. DEPLOY_PARAMS="OrchestratorBaseUrl=https://... SecretsId=publisher DropboxAppKey=..."
DEPLOY_PARAMS ?=
# Variables for `make watch` (KEY=VALUE lines), when the file exists.
WATCH_ENV ?= .env
WEB_EVENT ?= events/web_http_api.json
PUBLISH_EVENT ?= events/publish_dry_run.json
WARMUP_EVENT ?= events/warmup_event.json

# Release bootstraps for Lambda (arm64): target/lambda/{web,publish,warmup}/bootstrap.
build: venv
	$(CARGO_LAMBDA) build --release --arm64 -p web -p publish -p warmup

deploy: build cfn-lint
	@command -v $(SAM) >/dev/null || { echo "deploy needs the AWS SAM CLI (pip install aws-sam-cli)"; exit 1; }
	$(SAM) deploy --template-file template.yaml --stack-name "$(STACK_NAME)" \
	  --resolve-s3 --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
	  $(if $(DEPLOY_PARAMS),--parameter-overrides $(DEPLOY_PARAMS))

# The Lambda emulator on 127.0.0.1:9000; the invoke-* targets talk to it.
watch: venv
	$(CARGO_LAMBDA) watch --invoke-address 127.0.0.1 $(if $(wildcard $(WATCH_ENV)),--env-file $(WATCH_ENV))

invoke-web: venv
	$(CARGO_LAMBDA) invoke web --data-file $(WEB_EVENT)

invoke-publish: venv
	$(CARGO_LAMBDA) invoke publish --data-file $(PUBLISH_EVENT)

invoke-warmup: venv
	$(CARGO_LAMBDA) invoke warmup --data-file $(WARMUP_EVENT)

cfn-lint: venv
	"$(VENV)/bin/cfn-lint" template.yaml

# ---- Long runs, outside `make test` (see docs/development.md) ----
# Every property test (the tests under a `properties` module) at FUZZ_CASES
# cases each instead of proptest's default 256.
FUZZ_CASES ?= 20000
# The release web binary under load and outages for SOAK_SECONDS.
SOAK_SECONDS ?= 600
CARGO_TARGET ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

.PHONY: fuzz soak

fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --workspace -- properties::

soak: venv
	$(CARGO) build --release -p web
	$(CARGO) build -p publisher-tests --example soak
	SOAK_SECONDS=$(SOAK_SECONDS) PUBLISHER_VENV="$(VENV)" WEB_BIN="$(CARGO_TARGET)/release/web" \
	  "$(CARGO_TARGET)/debug/examples/soak"
