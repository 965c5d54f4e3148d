# Two commands for a fresh machine with only Python 3.11 and make:
#   make demo   run the whole product locally (embedded Postgres, OpenPhone sandbox, receiver, Dagster)
#   make test   run the whole test suite (starts its own embedded Postgres)

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=/path/to/python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/openphone-local demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/upsert.py
	$(BIN)/python benchmarks/receiver.py
	$(BIN)/python benchmarks/retry_sweep.py
	$(BIN)/python benchmarks/reconcile.py

clean:
	-$(BIN)/openphone-local postgres stop
	rm -rf $(VENV) .local
