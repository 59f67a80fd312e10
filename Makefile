# The two commands of the README: `make run` and `make test`. Both install what they need, once.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# the page tests drive Debian's Chromium headless (installed once, if missing)
BROWSER := $(shell command -v chromium 2>/dev/null)

.PHONY: run test lint install unit clean browser

install: $(PY_STAMP) $(NODE_STAMP) browser

$(PY_STAMP): requirements.txt requirements-dev.txt scoring/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

browser:
ifeq ($(BROWSER),)
	apt-get install -y --no-install-recommends chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)
endif

run: install
	$(PY) -m cli run

lint: install
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest

unit: install
	$(PY) -m pytest tests/unit tests/data

clean:
	rm -rf .mlops .devhost .pytest_cache .mypy_cache .ruff_cache
