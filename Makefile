# Two commands do everything on a fresh machine (see README.md):
#   make book   - set up .venv and build the book (fast mode) into _build/html
#   make test   - set up .venv and run every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup book test samples lint clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed

samples: setup
	$(PY) scripts/colorize_samples.py

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check colorlib tests benchmarks scripts

clean:
	rm -rf _build .pytest_cache tests/artifacts
