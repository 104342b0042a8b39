# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   -> creates .venv, installs skytrace, runs the kyiv-night demo end to end
#   make test   -> creates .venv, installs skytrace with its test extras, runs ruff and the test suite against
#                  real servers (installs the Debian packages mosquitto, postgresql-15-postgis-3, chromium if
#                  missing, starts them on 127.0.0.1, stops them after)
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/skytrace demo --out demo-out

test: $(STAMP)
	$(BIN)/ruff check --output-format concise src tests bench
	bash .ci/with-services.sh $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
