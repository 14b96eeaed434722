# Two commands on a fresh machine: `make run` (a whole day end to end on the embedded defaults) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install run serve test test-fast browser kill lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/newsletter db upgrade
	$(BIN)/newsletter demo

serve: install
	$(BIN)/newsletter db upgrade
	$(BIN)/newsletter run

test: install
	scripts/ensure-chromium
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not browser and not kill"

browser: install
	scripts/ensure-chromium
	$(BIN)/python -m pytest -m browser

kill: install
	$(BIN)/python -m pytest -m kill

lint: install
	$(BIN)/ruff check newsletter jobs tests bench scripts
	$(BIN)/mypy
	$(BIN)/python scripts/import_graph.py
