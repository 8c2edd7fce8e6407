# `make run` starts the server, `make test` runs the tests, `make bench` the benchmarks against
# their peers (not part of `make test`); each sets up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench schema clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m server serve

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The gates CI runs before the tests: lint and format (ruff), types (mypy on server/), and the
# layer order (import-linter: an import that runs back up a layer fails).
lint: $(STAMP)
	$(VENV)/bin/ruff check server tests bench client_examples
	$(VENV)/bin/ruff format --check server tests bench client_examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Installs wrk, restic, zip, nginx and curl from Debian's packages when missing (as root);
# writes bench/results.md and bench/results.json. BENCH_ARGS: --runs N, --only NAME,NAME, --quick.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m bench $(BENCH_ARGS)

schema: $(STAMP)
	$(PY) -m server export-schema > schema.graphql

clean:
	rm -rf $(VENV) .pytest_cache
