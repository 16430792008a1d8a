# Two commands do everything on a fresh machine (see README.md):
#   make book   - set up .venv and build the book (fast mode) into _build/html
#   make test   - set up .venv and run every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup book book-full browser test lint clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed

# The book (book/, _config.yml, _toc.yml). Fast mode runs on a CPU: from a fresh clone on the
# 2-core CI machine, 2.5-4 minutes; book-full, 10.5 minutes there (its long training run needs a GPU).
# Both fetch the book's JavaScript from the npm registry once (scripts/vendor_assets.py).
book: setup
	$(PY) scripts/build_book.py

book-full: setup
	$(PY) scripts/build_book.py --full

# The browser tests of the book use Debian's Chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
		echo "note: chromium is not installed (apt-get install -y chromium); the book's browser tests will fail"

test: setup browser
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check colorlib tests benchmarks scripts

clean:
	rm -rf _build .pytest_cache tests/artifacts

# Plant known bugs one at a time in a copy of the last commit and report which the tests catch,
# without and with the data folder (scripts/mutation.py; 18 minutes on the 2-core CPU).
.PHONY: mutation
mutation: setup
	$(PY) scripts/mutation.py --markdown _build/mutation.md
