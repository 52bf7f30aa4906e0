PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
export PATH := $(abspath $(BIN)):$(PATH)
PORT ?= 8000
# `make test` runs the PostgreSQL and browser tests, or fails naming what is missing (set to 0 to skip them)
export DRIFTLOOP_REQUIRE_PG ?= 1
export DRIFTLOOP_REQUIRE_BROWSER ?= 1

.PHONY: install install-runtime run test lint unit bench-serve bench-load bench-detectors bench-monitor bench-loop bench-retention demo test-slow clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# `make run` needs the service only; the dev tools (linters, type checker, test runners) are for `make test`
$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

$(DEV_STAMP): pyproject.toml $(RUNTIME_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

install-runtime: $(RUNTIME_STAMP)

run: install-runtime
	$(BIN)/driftloop db upgrade
	$(BIN)/driftloop bootstrap --if-missing
	$(BIN)/driftloop serve --host 127.0.0.1 --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy detectors retrain service
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -n 2 -m "not slow" detectors retrain service tests

test: lint unit

test-slow: install
	$(BIN)/pytest -m slow tests

bench-serve: install
	$(BIN)/python -m bench.serve

bench-load: install
	$(BIN)/python -m bench.load

bench-detectors: install
	$(BIN)/python -m bench.detectors

bench-monitor: install
	$(BIN)/python -m bench.monitor

bench-loop: install  # the concept streams with the user's own model, then the demo stream's three policies
	$(BIN)/python -m bench.loop --concept severe,mild,regression,null
	$(BIN)/python -m bench.loop

bench-retention: install  # ROWS=10000000 by default; fewer for a quick look
	$(BIN)/python -m bench.retention --rows $(or $(ROWS),10000000)

demo: install-runtime  # migrates and bootstraps its own scratch folder (data/demo)
	$(BIN)/driftloop demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
