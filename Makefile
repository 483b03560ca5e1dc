# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= .bocage-data
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck unit bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

## run: serve Bocage on this machine, on the embedded SQLite store in $(DATA)
run: $(BIN)/.installed
	$(BIN)/bocage serve --host $(HOST) --port $(PORT) --data $(DATA)

## test: lint, format check, type check and the whole test suite
test: $(BIN)/.installed lint typecheck
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy .

bench: $(BIN)/.installed
	$(BIN)/python bench/identity_ops.py
	$(BIN)/python bench/import_time.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
