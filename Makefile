# smoltbot self-hosted gateway. `make help` lists the targets.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV ?= uv
RUN := $(UV) run --frozen
PACKAGES := smoltbot_contracts smoltbot_config smoltbot_logging smoltbot_metrics smoltbot_resilience smoltbot_health \
	smoltbot_db smoltbot_web smoltbot_bus smoltbot_analysis smoltbot_agentstate smoltbot_testing smoltbot_gateway smoltbot_observer \
	smoltbot_verifier smoltbot_persister smoltbot_api smoltbot_notifier smoltbot_cli

# Local development defaults (override in the environment or a .env you source yourself).
DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/smoltbot
REDIS_URL ?= redis://127.0.0.1:6379/0
SMOLTBOT_ADMIN_TOKEN ?= dev-admin-token-change-me
export DATABASE_URL REDIS_URL SMOLTBOT_ADMIN_TOKEN

.PHONY: help install lock lint fmt test test-chaos run smoke bench-gateway bench-install services db migrate schemas clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

install: ## Create .venv with every workspace package (from uv.lock, nothing by hand)
	$(UV) sync --all-packages --frozen

lock: ## Re-resolve uv.lock after a dependency change
	$(UV) lock

lint: install ## ruff, ruff format --check, mypy --strict, import rules
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy $(addprefix -p ,$(PACKAGES))
	$(RUN) lint-imports
	$(RUN) hadolint deploy/Containerfile

fmt: install ## Format and autofix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

services: ## Start the machine's Redis/PostgreSQL if they are down
	@deploy/dev/ensure-services.sh

test: install services ## Unit, integration and end-to-end tests (real Redis/PostgreSQL)
	$(RUN) pytest -m "not chaos" -p no:cacheprovider

test-chaos: install services ## Fault-injection tests (kills, cuts, restarts)
	$(RUN) pytest -m chaos -p no:cacheprovider

.PHONY: test-charts
test-charts: install ## Helm chart: strict lint, render every ci/ scenario, k8s 1.27-1.31 schemas (also in `make test`)
	$(RUN) pytest -p no:cacheprovider tests/charts

db: services ## Create the development database if it does not exist
	@psql "$(dir $(DATABASE_URL))postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='$(notdir $(DATABASE_URL))'" | grep -q 1 \
		|| psql "$(dir $(DATABASE_URL))postgres" -qc 'CREATE DATABASE "$(notdir $(DATABASE_URL))"'

migrate: install db ## Apply SQL migrations to DATABASE_URL
	$(RUN) smoltbot migrate

# Bodies on the bus are encrypted by default: without SMOLTBOT_EVENT_KEY, `make run` makes a key
# once in $(EVENT_KEY_FILE) (ignored by git) and hands it to every service.
EVENT_KEY_FILE := .smoltbot/event.key

run: migrate $(if $(SMOLTBOT_EVENT_KEY),,$(EVENT_KEY_FILE)) ## Run every service (FAKE=1 adds the fake LLM providers)
	SMOLTBOT_EVENT_KEY="$${SMOLTBOT_EVENT_KEY:-$$(cat $(EVENT_KEY_FILE))}" \
		$(RUN) smoltbot up $(if $(filter 1,$(FAKE)),--fake-upstream,)

$(EVENT_KEY_FILE):
	@mkdir -p $(@D) && printf '*\n' > $(@D)/.gitignore
	@umask 077 && $(RUN) python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())' > $@.new
	@mv $@.new $@ && echo "event key: made $@ (bodies on the bus are encrypted with it)"

smoke: install ## make run FAKE=1 in the background, one SDK call traced end to end, clean stop
	$(RUN) python deploy/dev/smoke.py

.PHONY: images test-deploy env-example

images: install ## Build the debootstrap base (cached) and every image with podman
	$(RUN) python deploy/images/build.py $(IMAGES_ARGS)

test-deploy: images services ## The images under compose (podman): migrate, one SDK call traced, teardown
	SMOLTBOT_TEST_DEPLOY=1 $(RUN) pytest -p no:cacheprovider tests/deploy/test_containers.py

env-example: install ## Regenerate .env.example from the settings classes
	$(RUN) python deploy/env_example.py

bench-gateway: install services ## Gateway vs nginx direct, LiteLLM, Portkey (BENCH_ARGS="--help")
	$(RUN) python deploy/bench/gateway_overhead.py $(BENCH_ARGS)

.PHONY: bench-analysis
bench-analysis: install ## Integrity analyzer vs the labelled corpus (BENCH_ARGS="--json|--markdown|--backend X")
	$(RUN) python deploy/bench/analysis_bench.py $(BENCH_ARGS)

.PHONY: bench-persister
bench-persister: install ## Persister rows/s, executemany vs COPY, into docs/benchmarks.md (BENCH_ARGS="--json")
	$(RUN) python deploy/bench/persister_bench.py $(BENCH_ARGS)

bench-install: install ## Install the bench's wrk, nginx, LiteLLM, Portkey (outside uv.lock)
	$(RUN) python deploy/bench/gateway_overhead.py --install-only $(BENCH_ARGS)

schemas: install ## Regenerate contracts/schemas from the event structs
	$(RUN) python -m smoltbot_contracts.schemas contracts/schemas

.PHONY: openapi
openapi: install ## Regenerate contracts/openapi/api.json from the api's routes (a test checks it)
	$(RUN) python -m smoltbot_api.openapi_file contracts/openapi/api.json

clean: ## Remove caches and the virtualenv
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
