# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   -> creates .venv, installs skytrace (no extras), runs the kyiv-night demo end to end
#   make test   -> creates .venv, installs skytrace with its test extras, runs ruff, the import-layer contract,
#                  mypy and the test suite against real servers (installs the Debian packages mosquitto,
#                  postgresql-15-postgis-3, chromium if missing, starts them on 127.0.0.1, stops them after)
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
STAMP_TEST = $(VENV)/.installed-test

.PHONY: demo test lint bench smoke clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP) $(STAMP_TEST)

demo: $(STAMP)
	$(BIN)/skytrace demo --out demo-out

lint: $(STAMP_TEST)
	$(BIN)/ruff check --output-format concise src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	bash .ci/with-services.sh $(BIN)/python -m pytest -q

smoke:
	bash .ci/smoke-install.sh $(PYTHON)

bench: $(STAMP_TEST)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
