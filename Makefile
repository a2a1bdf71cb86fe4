# The two commands a newcomer needs: `make run` (the whole service, on this machine) and
# `make test` (lint plus every test). Both build .venv from the hashed lock first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Runtime packages only (the Docker image); with the dev and local extras (.venv).
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
# A new lock or pyproject.toml makes a new venv: nothing left over from the old one.
STAMP := $(VENV)/.installed-from-lock

TYPED := osutrack worker api_shim simulator devstack bench celeryconfig.py

PYTEST := $(BIN)/python -m pytest
# Only tests that need no service. The directories and plugins that only the other layers
# use are left out, which saves seconds of imports.
UNIT := -m unit -p no:schemathesis -p no:anyio \
	--ignore=tests/integration --ignore=tests/fuzz --ignore=tests/browser
# Four xdist workers, each with its own Postgres, Redis, simulator, Celery worker and API
# (tests/conftest.py): most of a test's time is spent waiting on those processes, so more
# workers than the two cores still pay. loadscope keeps a module on one worker, so a
# module-scoped service (a rate-limited API, say) starts once; without xdist's reordering
# each worker takes modules in the order tests/support/layers.py gives them (unit, db,
# integration), so no db test runs beside that worker's session Celery worker.
WORKERS ?= 4
PARALLEL := -n $(WORKERS) --dist loadscope --no-loadscope-reorder
# In-process coverage of the service's packages (see [tool.coverage] in pyproject.toml);
# the floor is what the whole suite reaches, less a margin for runs that skip a test.
COVERAGE := --cov --cov-report=term:skip-covered --cov-fail-under=78

.PHONY: venv run worker lint format docs test test-unit lock audit clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
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

# `make test`: lint, then every test on $(WORKERS) workers with coverage.
# `make test T=tests/worker/test_stats.py` (a file, directory or node id): only that, in
# one process, without lint or coverage: the loop while working on one thing.
# ARGS go to pytest as they are: `make test T=tests/worker ARGS="-x -k peaks"`.
test: $(STAMP) $(if $(T),,lint)
	$(PYTEST) $(if $(T),$(T),$(PARALLEL) $(COVERAGE)) $(ARGS)

# Seconds: the tests of pure logic, no Postgres, Redis or process (tests/support/layers.py).
test-unit: $(STAMP)
	$(PYTEST) $(UNIT) $(ARGS)

# Both locks from pyproject.toml's pins, every file's hash included; the dev lock is
# constrained to the runtime one, so the image and .venv share every version. Transitive
# pins stay as they are unless LOCK_ARGS=--upgrade.
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
	--allow-unsafe --all-build-deps --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock: $(STAMP)
	$(PIP_COMPILE) --output-file $(LOCK) pyproject.toml
	$(PIP_COMPILE) --extra dev --extra local --constraint $(LOCK) --output-file $(DEV_LOCK) pyproject.toml

# Known vulnerabilities in the locked packages (the dev lock holds the runtime one). It
# needs the PyPI JSON API or OSV, which the development machines here cannot reach; run it
# where they can (README).
audit: $(STAMP)
	$(BIN)/pip-audit --requirement $(DEV_LOCK) --require-hashes --progress-spinner off

clean:
	rm -rf $(VENV) .osutrack .coverage .coverage.*
