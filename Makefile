# Two commands for a newcomer: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export YOLO_OFFLINE := 1

.PHONY: run test lint venv venv-api migration clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The API alone (no torch): enough to serve.
$(VENV)/.api-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Everything: the vision extra (torch==2.14.1 and torchvision==0.29.1 from this machine's disk) and dev tools.
$(VENV)/.all-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[vision,ray,dev]'
	touch $@ $(VENV)/.api-installed

venv-api: $(VENV)/.api-installed
venv: $(VENV)/.all-installed

run: venv-api
	@bash scripts/ensure-cjk-font.sh  # the contract font, when it needs no password
	mkdir -p var
	$(BIN)/fieldops db upgrade
	$(BIN)/fieldops demo load
	@echo "fieldops serves on http://127.0.0.1:8000  (API docs: http://127.0.0.1:8000/docs)"
	$(BIN)/fieldops serve --host 127.0.0.1 --port 8000

lint: venv
	$(BIN)/ruff check field_api vision standard_kits fieldops tests benches
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	source scripts/pg-up.sh && $(BIN)/pytest -q -n 2

migration: venv
	rm -f /tmp/fieldops-migration.db
	$(BIN)/python -c "from field_api.migrations.runner import upgrade, revision; u='sqlite:////tmp/fieldops-migration.db'; upgrade(u); revision(u, '$(m)')"

clean:
	rm -rf var
