# The two set-up commands of README.md: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
RUN_DIR := var
# npm writes it on every install: node_modules is current with package-lock.json.
NODE_STAMP := node_modules/.package-lock.json

.PHONY: run test test-arm64 lint typecheck jscheck contracts unit bench clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# setup.py builds the SFU's one compiled helper: a change to it or its source reinstalls.
HELPER := setup.py edge_sfu/media/seam/_fastpath.c

$(STAMP_RUN): pyproject.toml $(HELPER) | $(BIN)/python
	./scripts/system-deps.sh run
	$(BIN)/pip install -q -e '.[hw,camera]'
	touch $@

$(STAMP_TEST): pyproject.toml $(HELPER) | $(BIN)/python
	./scripts/system-deps.sh test
	$(BIN)/pip install -q -e '.[hw,camera,dev]'
	touch $@ $(STAMP_RUN)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

## Start the daemon on simulated hardware (when no Pi is found) with config and data under ./var/.
run: $(STAMP_RUN)
	$(BIN)/edge-appliance run --config $(RUN_DIR)/config.toml --data-dir $(RUN_DIR)/data --dev-config

## Lint, type-check (Python and the browser client), check import contracts, then run the whole suite.
test: $(STAMP_TEST) jscheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider

## Install and test on Raspberry Pi OS's Debian releases (trixie, bookworm) in emulated arm64
## chroots, cached under build/arm64/ (docs/install-pi.md says what runs). Needs root or sudo
## and the kernel's binfmt_misc; without them it says so and skips (exit 0).
test-arm64:
	./scripts/test-arm64.sh

lint: $(STAMP_TEST)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP_TEST)
	$(BIN)/mypy

## Type-check the served JavaScript (// @ts-check, JSDoc types; nothing is built).
jscheck: $(NODE_STAMP)
	npx --no-install tsc --noEmit -p jsconfig.json

contracts: $(STAMP_TEST)
	$(BIN)/lint-imports

## The fast tier alone (under 30 s): tests/unit mirrors the packages.
unit: $(STAMP_TEST)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

## Run every benchmark (each prints one JSON object as its last line).
bench: $(STAMP_TEST)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

## Install on a Raspberry Pi (see README.md).
install:
	./scripts/install-pi.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache node_modules
