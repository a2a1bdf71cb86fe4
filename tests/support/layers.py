"""The three layers of the suite, one marker each, and the guard that keeps `unit` honest.

    unit         no services: pure code, in-process apps, clients of closed ports
    db           the session Postgres and/or Redis, nothing else
    integration  processes: worker, API, simulator, beat, `make run`, private servers

A test's layer comes from an explicit marker when it has one, else from its directory,
else from the fixtures it uses. A `unit` test runs under a guard that fails it when it
starts a process or connects to a listening socket, so a test that starts a service
without a fixture cannot pass as unit: it needs an explicit marker.
"""

from __future__ import annotations

import _posixsubprocess
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

UNIT, DB, INTEGRATION = "unit", "db", "integration"
LAYERS = (UNIT, DB, INTEGRATION)

MARKER_DOCS = (
    f"{UNIT}: no services; runs under a guard against processes and live sockets",
    f"{DB}: the session Postgres and/or Redis, no other process",
    f"{INTEGRATION}: real processes (worker, API, simulator, beat, make run, private servers)",
)

# Every test under these directories drives processes.
INTEGRATION_DIRS = frozenset({"integration", "browser", "fuzz"})

# Fixtures of tests/conftest.py and tests/integration/conftest.py, by what they start.
DB_FIXTURES = frozenset(
    {"pg_server", "database_url", "db_engine", "db_session", "redis_server", "redis_url",
     "redis_client"}
)  # fmt: skip
PROCESS_FIXTURES = frozenset(
    {"simulator_process", "simulator", "service_env", "worker_process", "api_url",
     "v1_processes", "stack", "v2_stack"}
)  # fmt: skip


def layer_of(item: pytest.Item, tests_root: Path) -> str:
    explicit = [name for name in LAYERS if item.get_closest_marker(name)]
    if len(explicit) > 1:
        raise pytest.UsageError(f"{item.nodeid}: more than one of {LAYERS}: {explicit}")
    if explicit:
        return explicit[0]
    top = item.path.relative_to(tests_root).parts[0]
    fixtures = set(getattr(item, "fixturenames", ()))
    if top in INTEGRATION_DIRS or fixtures & PROCESS_FIXTURES:
        return INTEGRATION
    if fixtures & DB_FIXTURES:
        return DB
    return UNIT


def assign_layers(items: list[pytest.Item], tests_root: Path) -> None:
    """Mark every item with its layer, then order modules unit, db, integration.

    A module counts as its heaviest test's layer; within a layer the modules with more
    tests go first (as xdist's own reordering would). With `--no-loadscope-reorder` every
    xdist worker takes modules in this order, so each runs all its db tests before its
    first integration test starts the session Celery worker and API, as a serial run
    does: a db test that fills the `updates` list must not feed a live worker.
    """
    module_rank: dict[Path, int] = {}
    module_size: dict[Path, int] = {}
    for item in items:
        layer = layer_of(item, tests_root)
        if not item.get_closest_marker(layer):
            item.add_marker(layer)
        rank = LAYERS.index(layer)
        module_rank[item.path] = max(module_rank.get(item.path, 0), rank)
        module_size[item.path] = module_size.get(item.path, 0) + 1
    items.sort(key=lambda item: (module_rank[item.path], -module_size[item.path]))


class ServiceUsedInUnitTest(Exception):
    """Deliberately not an OSError: client libraries that retry on OSError must not hide it."""


def _refuse(what: str, violations: list[str]) -> Callable[..., Any]:
    def refuse(*args: object, **kwargs: object) -> Any:
        violations.append(what)
        raise ServiceUsedInUnitTest(f"a unit test {what}: mark it db or integration")

    return refuse


@pytest.fixture(autouse=True)
def _unit_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail a unit test that starts a process or reaches a listening socket.

    Connecting to a closed port (the suite's "unreachable service" URLs) stays allowed:
    it needs no service. The violations are also checked after the test, in case the
    code under test swallowed the exception.
    """
    if not request.node.get_closest_marker(UNIT):
        yield
        return
    violations: list[str] = []
    spawn = _refuse("started a process", violations)
    # subprocess keeps its own reference; multiprocessing goes through the module.
    monkeypatch.setattr(subprocess, "_fork_exec", spawn)
    monkeypatch.setattr(_posixsubprocess, "fork_exec", spawn)
    for name in ("fork", "posix_spawn", "posix_spawnp", "system"):
        monkeypatch.setattr(os, name, _refuse(f"called os.{name}", violations))
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(sock: socket.socket, address: Any) -> None:
        real_connect(sock, address)
        violations.append(f"connected to {address!r}")
        sock.close()
        raise ServiceUsedInUnitTest(f"a unit test connected to {address!r}: mark it db")

    def connect_ex(sock: socket.socket, address: Any) -> int:
        code = real_connect_ex(sock, address)
        if code == 0:
            violations.append(f"connected to {address!r}")
            sock.close()
            raise ServiceUsedInUnitTest(f"a unit test connected to {address!r}: mark it db")
        return code

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield
    if violations:
        pytest.fail(f"unit test used services: {violations}", pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    for doc in MARKER_DOCS:
        config.addinivalue_line("markers", doc)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Before `-m` deselects anything, so `-m unit` sees the assigned markers."""
    assign_layers(items, Path(__file__).resolve().parents[1])
