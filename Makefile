# The two commands: `make run` starts Weft, `make test` runs the whole test suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-embedded install install-test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt $(VENV)/.installed
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-test.txt
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/python manage.py up

lint: install-test
	$(BIN)/ruff check .

test: install-test lint
	$(BIN)/pytest $(PYTEST_ARGS)

# The engine tests once more against the embedded PostgreSQL (no DATABASE_URL).
test-embedded: install-test
	env -u DATABASE_URL $(BIN)/pytest tests/engine -m "not workers and not chaos" $(PYTEST_ARGS)
