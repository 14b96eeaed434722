# Two commands on a fresh machine: `make run` (the service on its embedded defaults) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install run test test-fast browser lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: install
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

lint: install
	$(BIN)/ruff check newsletter jobs tests bench
