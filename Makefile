VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
QUICK ?=

.PHONY: dev test lint install install-test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Run Temporal, the worker, the API and the recorder until Ctrl-C.
dev: install
	$(VENV)/bin/callrec dev

## Install with test extras and run the whole suite.
test: install-test
	$(VENV)/bin/pytest

lint: install-test
	$(VENV)/bin/ruff check callrec tests
	$(VENV)/bin/ruff format --check callrec tests
	$(VENV)/bin/mypy callrec

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
