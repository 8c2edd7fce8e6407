# `make run` starts the server, `make test` runs the tests, `make bench` the benchmarks against
# their peers (not part of `make test`); each sets up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench schema error-codes clean web screenshots examples docs

# The reference page at / and GraphiQL at /graphql (web/, built into web/dist by Vite from npm
# packages, no CDN): rebuilt when a source is newer.
WEB_SOURCES := $(shell find web/src -type f -not -path 'web/src/gql/*' 2>/dev/null) web/index.html web/graphiql.html \
	web/package.json web/package-lock.json web/vite.config.ts web/codegen.ts web/tsconfig.json schema.graphql
HAVE_NODE = command -v npm >/dev/null 2>&1 && node -e 'process.exit(parseInt(process.versions.node) < 20 ? 1 : 0)'

LINT_STAMP := $(VENV)/.lint-stamp
RUN_STAMP := $(VENV)/.run-stamp
EXAMPLES_STAMP := $(VENV)/.examples-stamp
DOCS_STAMP := $(VENV)/.docs-stamp

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,lint]'
	@touch $(STAMP) $(LINT_STAMP) $(RUN_STAMP) $(EXAMPLES_STAMP)

# Serving needs the server's own dependencies only: no test tools (a browser driver, an object
# store), no linters.
$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $(RUN_STAMP)

# The client examples' GraphQL client (gql) and HTTP client, beside the server's dependencies.
$(EXAMPLES_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[examples]'
	@touch $(EXAMPLES_STAMP) $(RUN_STAMP)

# The gates need the server's own dependencies (for the types) and the linters, not the test
# tools (a browser driver, an object store): on a fresh clone `make lint` is ready sooner.
$(LINT_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[lint]'
	@touch $(LINT_STAMP)

# The manual: MkDocs with the Material theme, from docs/ into site/ (git-ignored). --strict: a
# link to a missing page or anchor fails the build (not --quiet: it hides the warnings that strict
# counts, and the build passes). NO_MKDOCS_2_WARNING: Material's end-of-life notice, printed at
# every build, is answered in docs/index.md. Open site/index.html.
$(DOCS_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[docs]'
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --clean

# Without Node.js 20+ the API is served all the same; the page at / then says how to build it.
# The venv's bin/ goes first on the server's PATH (its commands and hooks find `backups`); the
# banner prints the form that works in the shell that ran make (BACKUPS_SHELL_PATH: its PATH):
# `backups` when the venv is active there, else .venv/bin/backups (server/notices.py).
run: $(RUN_STAMP)
	@if $(HAVE_NODE); then $(MAKE) --no-print-directory web || echo "The page's build failed (see above): serving the API without it."; \
	else echo "No Node.js 20+ with npm here: serving the API only; install Node.js 20+ and run 'make web' for the page at /."; fi
	BACKUPS_SHELL_PATH="$$PATH" PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m server serve

web: web/dist/index.html

# `make examples` once, then `.venv/bin/python client_examples/...` (see README).
examples: $(EXAMPLES_STAMP)

web/dist/index.html: $(WEB_SOURCES)
	cd web && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } && npm run build
	@touch $@

# The browser tests save their screenshots of the main views in tests/screenshots/ (and the
# performance figures in perf.json): every view at 1280x800 (desktop-*.png) and 390x844
# (phone-*.png) by tests/browser/test_page_phone.py. Two small ones (1000x700) are README's, in
# docs/; the page's manual (docs/page.md) shows the desktop's first screen and three of the phone's,
# and links every view at both sizes (docs/screenshots/).
DOCS_SHOTS := docs-main:page-main docs-apply-preview:page-apply-preview desktop-main:page-desktop \
	phone-main:page-phone-main phone-points:page-phone-points phone-apply:page-phone-apply
screenshots: $(STAMP) web
	$(PY) -m pytest tests/browser -q
	@for pair in $(DOCS_SHOTS); do cp tests/screenshots/$${pair%%:*}.png docs/$${pair##*:}.png || exit 1; done
	mkdir -p docs/screenshots && rm -f docs/screenshots/*.png
	cp tests/screenshots/desktop-*.png tests/screenshots/phone-*.png docs/screenshots/
	@echo "Screenshots: tests/screenshots/ (in docs/: $(foreach pair,$(DOCS_SHOTS),$(lastword $(subst :, ,$(pair))).png), and every view at both sizes in docs/screenshots/)"

# The tests mostly wait on servers and subprocesses, so 4 pytest-xdist workers pay even on 2
# cores; loadgroup keeps the modules that share one server or browser on one worker (see
# tests/conftest.py). PYTEST_WORKERS= runs them serially; PYTEST_ARGS picks tests or options.
PYTEST_WORKERS ?= -n 4 --dist loadgroup
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The gates CI runs before the tests: lint and format (ruff), types (mypy on server/), and the
# layer order (import-linter: an import that runs back up a layer fails).
lint: $(LINT_STAMP)
	$(VENV)/bin/ruff check server tests bench client_examples
	$(VENV)/bin/ruff format --check server tests bench client_examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Installs wrk, restic, zip, nginx and curl from Debian's packages when missing (as root);
# writes bench/results.md and bench/results.json. BENCH_ARGS: --runs N, --only NAME,NAME, --quick.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m bench $(BENCH_ARGS)

schema: $(RUN_STAMP)
	$(PY) -m server export-schema > schema.graphql

# docs/reference/error-codes.md from the code enums in server/model/errors.py (a test checks it).
error-codes: $(RUN_STAMP)
	$(PY) -m server.api.error_table

clean:
	rm -rf $(VENV) .pytest_cache site web/dist web/node_modules web/src/gql
