# Ductwork: two commands do all the set-up.
#   make demo   creates .venv, installs Ductwork, runs the example pipelines end to end
#   make test   the same set-up, then ruff, mypy and the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck venv system-deps clean benchmark screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

demo: $(STAMP) system-deps
	@bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) system-deps lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

benchmark: $(STAMP)
	$(BIN)/python benchmarks/run.py

# PNGs of every page of the web UI, from a real standalone server running demo flows (needs Chromium).
screenshots: $(STAMP) system-deps
	$(BIN)/python benchmarks/web.py --screenshots docs/screenshots

clean:
	rm -rf $(VENV) .ductwork demo-output .pytest_cache .mypy_cache .ruff_cache
