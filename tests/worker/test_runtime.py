"""Each worker pool process builds its own runtime when Celery starts it."""

from __future__ import annotations

import pytest
from celery.signals import worker_process_init

from worker import runtime as runtime_module
from worker.runtime import runtime, start_process_runtime

# Nothing connects while a runtime is built, so unreachable addresses are enough.
CLOSED_ENV = {
    "DATABASE_URL": "postgresql+psycopg2://x@127.0.0.1:9/x",
    "REDIS_URL": "redis://127.0.0.1:9/0",
}


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CLOSED_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(runtime_module._process, "current", None)


def test_a_process_keeps_one_runtime() -> None:
    assert runtime() is runtime()


def test_worker_process_init_builds_the_runtime_of_a_new_pool_process() -> None:
    worker_process_init.send(sender=None)
    built = runtime_module._process.current
    assert built is not None
    assert runtime() is built


def test_a_runtime_inherited_across_a_fork_is_replaced_and_its_pool_dropped() -> None:
    inherited = runtime()
    inherited_pool = inherited.engine.pool
    start_process_runtime()
    assert runtime() is not inherited
    assert runtime().engine is not inherited.engine
    # Disposed (without closing the parent's connections): the engine has a new pool.
    assert inherited.engine.pool is not inherited_pool
