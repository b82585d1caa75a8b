# Two commands on a fresh machine (Python 3.11+ and pip only):
#   make run    set up .venv and run the offline arena (API on http://127.0.0.1:8888)
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.nof0-installed
CONSTRAINTS := etc/constraints.txt
ARGS ?=

.PHONY: run test integration ccxt browser property lint typecheck bench check clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv installs in seconds; plain pip is the fallback when uv cannot be had.
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 || true
	@if $(BIN)/python -m uv --version >/dev/null 2>&1; then \
		$(BIN)/python -m uv pip install --quiet --python $(BIN)/python -c $(CONSTRAINTS) -e ".[dev]"; \
	else \
		$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"; \
	fi
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/nof0 run $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

integration: $(STAMP)
	$(BIN)/nox -s integration $(ARGS)

ccxt: $(STAMP)
	$(BIN)/nox -s ccxt $(ARGS)

browser: $(STAMP)
	$(BIN)/nox -s browser $(ARGS)

property: $(STAMP)
	$(BIN)/nox -s property

lint: $(STAMP)
	$(BIN)/nox -s lint

typecheck: $(STAMP)
	$(BIN)/nox -s typecheck

bench: $(STAMP)
	$(BIN)/nox -s bench

check: $(STAMP)
	$(BIN)/nof0 check $(ARGS)

clean:
	rm -rf $(VENV) .nox .artifacts .pytest_cache .mypy_cache .ruff_cache .hypothesis
