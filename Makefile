VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
QUICK ?=

.PHONY: dev test lint install install-test clean bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-test pyproject.toml
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Run Temporal, the worker, the API and the recorder until Ctrl-C.
dev: install
	$(VENV)/bin/callrec dev

## Install with test extras and run the whole suite.
test: install-test
	$(VENV)/bin/pytest

## Benchmarks beside their direct-path twins; a table and bench/results.json (QUICK=1: small sizes).
bench: $(VENV)/.installed-bench
	$(VENV)/bin/python -m bench.run $(if $(QUICK),--quick,) $(if $(PROFILE),--profile $(PROFILE),)

lint: install-test
	$(VENV)/bin/ruff check callrec tests bench
	$(VENV)/bin/ruff format --check callrec tests bench
	$(VENV)/bin/mypy callrec bench
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
