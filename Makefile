# Two commands on a fresh machine: `make run` (a whole day end to end on the embedded defaults) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install install-llm run serve demo-site test test-fast browser kill llm travel lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

# The real LLM server of the `llm` tests: llama-cpp-python is compiled once per machine into a wheel cache.
$(BIN)/.installed-llm: $(BIN)/.installed scripts/install-llm
	$(BIN)/python scripts/install-llm --python $(BIN)/python
	touch $@

install-llm: $(BIN)/.installed-llm

run: install
	$(BIN)/newsletter db upgrade
	$(BIN)/newsletter demo

serve: install
	$(BIN)/newsletter db upgrade
	$(BIN)/newsletter run

# The site on the database `make run` filled, so the demo emails' links (report, preferences, unsubscribe) work.
demo-site: install
	DATABASE_URL=sqlite:///$(CURDIR)/instance/demo.sqlite3 $(BIN)/newsletter run

test: install install-llm
	scripts/ensure-chromium
	scripts/ensure-axe
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not browser and not kill and not llm"

browser: install
	scripts/ensure-chromium
	scripts/ensure-axe
	$(BIN)/python -m pytest -m browser

kill: install
	$(BIN)/python -m pytest -m kill

travel: install
	$(BIN)/python -m pytest -m travel

llm: install-llm
	$(BIN)/python -m pytest -m llm

lint: install
	$(BIN)/ruff check newsletter jobs tests bench scripts
	$(BIN)/mypy
	$(BIN)/python scripts/import_graph.py
