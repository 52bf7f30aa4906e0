PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install run test lint unit bench-serve bench-load bench-detectors bench-monitor bench-loop demo test-slow clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/driftloop db upgrade
	$(BIN)/driftloop bootstrap --if-missing
	$(BIN)/driftloop serve --host 127.0.0.1 --port 8000

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

bench-loop: install
	$(BIN)/python -m bench.loop

demo: install  # migrates and bootstraps its own scratch folder (data/demo)
	$(BIN)/driftloop demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
