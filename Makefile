# Two commands for a new user: `make demo` and `make test`. Both install what they need first
# (a .venv with the Python package, node_modules with the pinned compiler and anvil) and say
# nothing about it when it is already installed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
BROWSER_STAMP := $(VENV)/.browser

.PHONY: install demo test bench chaos lint compile node serve clean

install: $(PY_STAMP) $(NPM_STAMP)

$(PY_STAMP): pyproject.toml
	@echo "installing Python dependencies into $(VENV) ..."
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tracechain needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# --ignore-scripts: anvil's install script would download a binary when its platform package is
# missing; the platform package from the registry already carries it (so do Hardhat's, the second
# node the tests run the demo on: its native parts come as platform packages too).
# `npm install --no-save` rather than `npm ci`: the lock pins every version, but it can only list
# the anvil platform packages the registry served when it was written, and `npm ci` refuses a lock
# that lacks another platform's optional package.
$(NPM_STAMP): package.json package-lock.json
	@echo "installing the Solidity compiler, OpenZeppelin, anvil and Hardhat into node_modules ..."
	@npm install --ignore-scripts --no-save --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

# The consumer page is tested in a real browser: Debian's chromium (the tests drive it headless).
$(BROWSER_STAMP):
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the browser tests ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@touch $@

demo: install
	@$(BIN)/tracechain demo

test: install $(BROWSER_STAMP)
	@$(BIN)/tracechain compile --check
	@$(MAKE) --no-print-directory lint
	@$(BIN)/python -m pytest -n 2 --dist loadgroup

# Ingest speed (naive vs batched vs merkle), gas, trace latency at 1k/100k/1M events, demo time; on
# its own anvil and PostgreSQL database. `make test` runs its --quick version (tests/test_bench.py).
bench: install
	@$(BIN)/python scripts/bench.py

# Faults on purpose (kill -9 of serve and work, a node crash, reorganisations, a database cut off,
# a poisoned batch, an unsigned capture, 200 clients) against real processes: a table per scenario
# of what was accepted, lost, duplicated, stuck, and how fast it recovered. `make test` runs --quick.
chaos: install
	@$(BIN)/python scripts/chaos.py

lint: install
	@$(BIN)/ruff check backend tests scripts
	@$(BIN)/ruff format --check --quiet backend tests scripts
	@$(BIN)/mypy

compile: install
	@$(BIN)/tracechain compile

node: install
	@$(BIN)/tracechain node

# The service on the demo's data: demo mode (its public secrets) unless you set your own.
# `make serve PORT=8080` (or TRACECHAIN_PORT) listens elsewhere; the managed node's port is
# TRACECHAIN_ANVIL_PORT (8545).
serve: install
	@TRACECHAIN_DEMO_MODE=$${TRACECHAIN_DEMO_MODE:-true} $(BIN)/tracechain serve $(if $(PORT),--port $(PORT))

clean:
	rm -rf $(VENV) node_modules .tracechain .pytest_cache .hypothesis .mypy_cache .ruff_cache
