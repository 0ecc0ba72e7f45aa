# The two commands of the README's quick start: `make run` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV   ?= .venv
SIM    ?= 5
PORT   ?= 8000
STAMP  := $(VENV)/.installed

.PHONY: run test setup lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

## run: set up, then serve the API and web panel with $(SIM) simulated drones on SQLite (http://127.0.0.1:$(PORT)/)
run: $(STAMP)
	$(VENV)/bin/skywarden serve --host 127.0.0.1 --port $(PORT) --sim $(SIM) --demo-login

## test: set up (venv, Chromium, Mosquitto, PostgreSQL), then run the whole suite
test: $(STAMP)
	bash scripts/test-env
	bash scripts/run-tests $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis skywarden.db*
