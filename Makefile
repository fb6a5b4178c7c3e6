# Publisher: build, run, test. `make run` and `make test` are all a new machine needs.
SHELL := /bin/bash
CARGO ?= cargo

# Python tools the tests use (moto's DynamoDB, aiosmtpd, cargo-lambda, cfn-lint),
# installed once into a project virtualenv.
VENV ?= $(CURDIR)/.venv
PY_TOOLS := moto[server] aiosmtpd cargo-lambda cfn-lint

# Local standalone run: samples/photos copied to a scratch folder (keep and
# remove never touch the repository), served on 127.0.0.1:$(RUN_PORT) under the
# name publisher.localhost (*.localhost is loopback; the host rules refuse IP
# literals and plain `localhost`). Each run prints a fresh admin password.
RUN_DIR ?= $(CURDIR)/target/run-photos
RUN_HOST ?= publisher.localhost
RUN_PORT ?= 8000
RUN_PUBLISH ?= false
# A static configuration directory for `make run` and `make watch`
# (e.g. STATIC=samples/static); empty: the built-in defaults.
STATIC ?=

.PHONY: run test lint unit bench venv browser-test
.PHONY: build deploy watch invoke-web invoke-publish invoke-warmup cfn-lint
.PHONY: run-tenants orchestrator orchestrator-stop

# A fresh admin password in the recipe's shell ($$password, for the banner),
# and the login variables that go with it (plain HTTP: no Secure cookies).
new_password = password="$$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
login_env = WEB_SECURE_COOKIES=false WEB_ADMIN_PASSWORD="$$password" \
  WEB_SESSION_SECRET="$$(head -c 48 /dev/urandom | base64)"

# The embedded default of `make run` and `make watch`: one standalone tenant
# over $(1), a scratch copy of samples/photos made by $(call scratch_photos,$(1)),
# anyone may view, publishing on when $(2) is true, the static configuration
# of $(STATIC) when it is set. Its one publisher is a
# Telegram channel under content.debug, so a publish is a synthetic success
# that sends, writes and moves nothing (the bot token is never used).
scratch_photos = rm -rf "$(1)" && mkdir -p "$(1)" && cp -R samples/photos/. "$(1)/"
standalone_env = STORAGE_PROVIDER=local LOCAL_STORAGE_DIR="$(1)" \
  STORAGE_PATHS='{"root": "/", "keep": "keep", "remove": "reject"}' \
  AUTO_VIEW=true FEATURE_PUBLISH=$(2) CONTENT_SETTINGS='{"debug": true}' \
  PUBLISHERS='[{"type": "telegram", "channel_id": "-1001234567890"}]' \
  TELEGRAM_BOT_TOKEN=unused-under-content-debug $(login_env) \
  $(if $(STATIC),PV2_STATIC_CONFIG_DIR="$(abspath $(STATIC))")

run:
	$(call scratch_photos,$(RUN_DIR))
	$(CARGO) build -p web
	@$(new_password); \
	echo; echo "  Publisher:      http://$(RUN_HOST):$(RUN_PORT)/"; \
	echo "  Admin password: $$password"; \
	echo "  Photos:         $(RUN_DIR) (a scratch copy of samples/photos)"; \
	echo "  Static config:  $(if $(STATIC),$(abspath $(STATIC)),built-in defaults)"; echo; \
	PORT=$(RUN_PORT) $(call standalone_env,$(RUN_DIR),$(RUN_PUBLISH)) \
	exec "$(CURDIR)/target/debug/web"

# The multi-tenant mode locally: the local orchestrator serving scratch copies
# of samples/tenants/*.json, each tenant's photos in its own folder (local
# storage, allowed by LOCAL_TENANT_STORAGE_DIR), moto's DynamoDB with TABLE=1,
# and the web function orchestrated against them on 127.0.0.1:$(RUN_PORT).
TENANTS_DIR ?= $(CURDIR)/target/run-tenants
ORCHESTRATOR_PORT ?= 8100
DYNAMODB_PORT ?= 8101
TABLE ?=
LOCAL_TABLE ?= publisher-local
LOCAL_ORCHESTRATOR_TOKEN ?= local-orchestrator-token
ORCHESTRATOR := "$(CURDIR)/target/debug/local-orchestrator" \
  --listen 127.0.0.1:$(ORCHESTRATOR_PORT) --tenants "$(TENANTS_DIR)/tenants"
# The functions' variables against them (`make run-tenants`, `make watch TENANTS=1`).
tenants_env = ORCHESTRATOR_BASE_URL=http://127.0.0.1:$(ORCHESTRATOR_PORT) \
  ORCHESTRATOR_SERVICE_TOKEN=$(LOCAL_ORCHESTRATOR_TOKEN) \
  LOCAL_TENANT_STORAGE_DIR="$(TENANTS_DIR)/storage" \
  $(if $(filter 1,$(TABLE)),PUBLISHER_TABLE=$(LOCAL_TABLE) AWS_REGION=eu-central-1 \
  AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(DYNAMODB_PORT) \
  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local)

# Built by binary name across the workspace, as `cargo lambda watch` builds
# the functions: one set of build artifacts serves both.
run-tenants: venv
	$(CARGO) build --bin web --bin local-orchestrator --bin local-table
	rm -rf "$(TENANTS_DIR)" && mkdir -p "$(TENANTS_DIR)/tenants" \
	  && cp samples/tenants/*.json "$(TENANTS_DIR)/tenants/" \
	  && cp -RL samples/tenants/storage "$(TENANTS_DIR)/storage"
	@$(new_password); pids=; trap 'kill $$pids 2>/dev/null' EXIT; trap : INT TERM; \
	if [ "$(TABLE)" = 1 ]; then \
	  "$(VENV)/bin/moto_server" -H 127.0.0.1 -p $(DYNAMODB_PORT) >"$(TENANTS_DIR)/moto.log" 2>&1 & \
	  pids="$$pids $$!"; \
	  "$(CURDIR)/target/debug/local-table" --endpoint http://127.0.0.1:$(DYNAMODB_PORT) \
	    --table $(LOCAL_TABLE) || exit 1; \
	fi; \
	export ORCHESTRATOR_SERVICE_TOKEN=$(LOCAL_ORCHESTRATOR_TOKEN); \
	$(ORCHESTRATOR) & pids="$$pids $$!"; echo $$! >"$(TENANTS_DIR)/orchestrator.pid"; \
	echo; for file in samples/tenants/*.json; do tenant="$$(basename "$$file" .json)"; \
	  echo "  Tenant:         http://$$tenant.localhost:$(RUN_PORT)/"; done; \
	echo "  Admin password: $$password"; \
	echo "  Orchestrator:   http://127.0.0.1:$(ORCHESTRATOR_PORT), serving $(TENANTS_DIR)/tenants/*.json"; \
	echo "                  (edit one and change its config_version: it shows after its ttl_seconds)"; \
	echo "                  make orchestrator-stop stops it, make orchestrator starts it again"; \
	echo "  Photos:         $(TENANTS_DIR)/storage/<tenant>/photos"; \
	if [ "$(TABLE)" = 1 ]; then \
	  echo "  Table:          $(LOCAL_TABLE) on moto's DynamoDB at http://127.0.0.1:$(DYNAMODB_PORT)"; fi; \
	echo "  The functions under the Lambda emulator against these tenants: make watch TENANTS=1$(if $(filter 1,$(TABLE)), TABLE=1)"; \
	echo; \
	PORT=$(RUN_PORT) $(tenants_env) $(login_env) "$(CURDIR)/target/debug/web"

# The local orchestrator alone, in the foreground, on the files of the last
# `make run-tenants`: starts it again after `make orchestrator-stop`.
orchestrator:
	$(CARGO) build --bin local-orchestrator
	@echo $$$$ >"$(TENANTS_DIR)/orchestrator.pid"; \
	export ORCHESTRATOR_SERVICE_TOKEN=$(LOCAL_ORCHESTRATOR_TOKEN); exec $(ORCHESTRATOR)

orchestrator-stop:
	@kill "$$(cat "$(TENANTS_DIR)/orchestrator.pid")" && echo "local orchestrator stopped"

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
# Variables for `make watch` (KEY=VALUE lines, quoted as cargo lambda reads
# them: see .env.example), when the file exists; else the embedded default.
WATCH_ENV ?= .env
WATCH_PORT ?= 9000
WATCH_DIR ?= $(CURDIR)/target/watch-photos
WATCH_PUBLISH ?= true
# TENANTS=1: `make watch` runs orchestrated against `make run-tenants`.
TENANTS ?=
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

# The Lambda emulator on 127.0.0.1:$(WATCH_PORT): on the embedded default of
# `make run` (publishing on), on the variables of $(WATCH_ENV) when it exists,
# or with TENANTS=1 on those of `make run-tenants`. It always makes a fresh
# scratch copy of samples/photos in $(WATCH_DIR) first. The invoke-* targets
# talk to it: cargo lambda invoke would send to ::1, where nothing listens.
EMULATOR := --invoke-address 127.0.0.1 --invoke-port $(WATCH_PORT)

watch: venv
	@$(call scratch_photos,$(WATCH_DIR)); \
	if [ "$(TENANTS)" = 1 ]; then \
	  $(new_password); \
	  echo "make watch: the tenants of make run-tenants (orchestrator http://127.0.0.1:$(ORCHESTRATOR_PORT))"; \
	  echo "  Admin password:  $$password"; \
	  $(tenants_env) $(login_env) $(CARGO_LAMBDA) watch $(EMULATOR); \
	elif [ -f "$(WATCH_ENV)" ]; then \
	  echo "make watch: variables from $(WATCH_ENV)"; \
	  $(CARGO_LAMBDA) watch $(EMULATOR) --env-file "$(WATCH_ENV)"; \
	else \
	  $(new_password); echo; \
	  echo "  Lambda emulator: 127.0.0.1:$(WATCH_PORT) (make invoke-web, invoke-publish, invoke-warmup)"; \
	  echo "  Web over HTTP:   curl -H 'Host: $(RUN_HOST)' http://127.0.0.1:$(WATCH_PORT)/lambda-url/web/api/config/features"; \
	  echo "  Admin password:  $$password"; \
	  echo "  Photos:          $(WATCH_DIR) (a scratch copy of samples/photos)"; echo; \
	  $(call standalone_env,$(WATCH_DIR),$(WATCH_PUBLISH)) $(CARGO_LAMBDA) watch $(EMULATOR); \
	fi

invoke-web: venv
	@$(CARGO_LAMBDA) invoke $(EMULATOR) web --data-file $(WEB_EVENT)

invoke-publish: venv
	@$(CARGO_LAMBDA) invoke $(EMULATOR) publish --data-file $(PUBLISH_EVENT)

invoke-warmup: venv
	@$(CARGO_LAMBDA) invoke $(EMULATOR) warmup --data-file $(WARMUP_EVENT) || { \
	  echo "make invoke-warmup: failed. The warmup works in orchestrated mode only:" \
	    "make run-tenants, then make watch TENANTS=1, give it an orchestrator." >&2; exit 1; }

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

# The warmup keeping 10 000 hosts fresh under the orchestrator's ceiling, on
# moto's DynamoDB and a fake SQS (docs/performance.md); `make test` runs the same
# test with 500 hosts.
SCALE_HOSTS ?= 10000
.PHONY: scale
scale: venv
	PUBLISHER_VENV="$(VENV)" WARMUP_SCALE_HOSTS=$(SCALE_HOSTS) $(CARGO) test -p publisher-tests \
	  --test warmup_scale a_fleet_stays_fresh -- --nocapture
