# The two commands a newcomer needs: `make run` (the whole service, on this machine) and
# `make test` (lint plus every test). Both build .venv from pyproject.toml first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall only when pyproject.toml changes.
STAMP := $(VENV)/.installed-from-pyproject

TYPED := osutrack worker api_shim simulator devstack bench celeryconfig.py

.PHONY: venv run worker lint format docs test lock audit clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,local]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devstack.run

# One more worker for the stack `make run` runs from the same OSUTRACK_DATA_DIR:
# `QUEUES=updates CONCURRENCY=4 make worker` (defaults: updates, WORKER_CONCURRENCY).
worker: $(STAMP)
	$(BIN)/python -m devstack.worker $(if $(QUEUES),--queues $(QUEUES)) $(if $(CONCURRENCY),--concurrency $(CONCURRENCY))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# README's configuration table, from the declarations in osutrack/settings.py.
docs: $(STAMP)
	$(BIN)/python -m osutrack.settings --write README.md

test: $(STAMP) lint
	$(BIN)/python -m pytest

# Every installed package at its exact version, for audits and reproducible deployments.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check > requirements.lock

# Known vulnerabilities in the locked packages. It needs the PyPI JSON API or OSV, which
# the development machines here cannot reach; run it where they can (README).
audit: $(STAMP)
	$(BIN)/pip-audit --requirement requirements.lock --no-deps --progress-spinner off

clean:
	rm -rf $(VENV) .osutrack
