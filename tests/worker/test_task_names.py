"""Every task name of `osutrack.tasknames` is registered by the worker and routed."""

from __future__ import annotations

import pytest

from osutrack import tasknames

TASK_NAMES = [
    tasknames.UPDATE_USER,
    tasknames.SCHEDULE_REFRESH,
    tasknames.REFRESH_USERS,
    tasknames.REBUILD_BESTPLAYS,
    tasknames.REBUILD_BESTPLAYS_FORMER,
    tasknames.RECOMPUTE_PEAKS,
]


@pytest.fixture(autouse=True)
def closed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing the Celery app reads the settings; nothing connects.
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://x@127.0.0.1:9/x")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")


@pytest.mark.parametrize("name", TASK_NAMES)
def test_the_worker_registers_and_routes_each_task_name(name: str) -> None:
    from worker.app import app  # noqa: PLC0415 (reads the environment set above)

    # What `celery -A worker worker` does at start: import the app's `include` modules.
    app.loader.import_default_modules()
    assert name in app.tasks
    assert name in tasknames.TASK_ROUTES


def test_beat_sends_only_registered_names() -> None:
    import celeryconfig  # noqa: PLC0415 (reads the environment set above)

    sent = {entry["task"] for entry in celeryconfig.beat_schedule.values()}
    assert sent == {
        tasknames.SCHEDULE_REFRESH,
        tasknames.REBUILD_BESTPLAYS,
        tasknames.RECOMPUTE_PEAKS,
    }
