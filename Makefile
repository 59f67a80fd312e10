# The two commands of the README: `make run` and `make test`. Both install what they need, once.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# the page tests drive Debian's Chromium headless (installed once, if missing)
BROWSER := $(shell command -v chromium 2>/dev/null)
# checkov's dependencies clash with the app's pins: it gets a venv of its own (inside .venv, so ignored like it)
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# azureml-inference-server-http, for the test (and benchmark) of scoring/score.py on Azure ML's standard path
AZML_VENV := benchmarks/.venv-azml
AZML_STAMP := $(AZML_VENV)/.installed

.PHONY: run test lint install unit clean browser azml

install: $(PY_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP) browser

$(PY_STAMP): requirements.txt requirements-dev.txt scoring/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(CHECKOV_STAMP): infra/requirements-checkov.txt $(PY_STAMP)
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r infra/requirements-checkov.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

browser:
ifeq ($(BROWSER),)
	apt-get install -y --no-install-recommends chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)
endif

azml: $(AZML_STAMP)

$(AZML_STAMP): benchmarks/scoring/azml-requirements.txt
	test -x $(AZML_VENV)/bin/python || $(PYTHON) -m venv $(AZML_VENV)
	$(AZML_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/scoring/azml-requirements.txt
	touch $@

run: install
	$(PY) -m cli run

lint: install
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/ruff format --check --no-cache .
	$(VENV)/bin/mypy
	infra/lint.sh

test: lint $(AZML_STAMP)
	$(PY) -m coverage run -m pytest
	$(PY) -m coverage report

unit: install
	$(PY) -m pytest tests/unit tests/data

clean:
	rm -rf .mlops .devhost .pytest_cache .mypy_cache .ruff_cache
