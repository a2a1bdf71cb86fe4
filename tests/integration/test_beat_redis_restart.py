"""Beat rides out a Redis restart: it keeps running, warns, and schedules again afterwards.

A real `celery -A worker beat` on a Redis of its own, with 1-second periods so that a tick
falls in every outage. With the append-only file kept, the schedule lock survives the
restart; with the data lost, beat notices that it no longer holds the lock, takes it again
and goes on (a second beat would have kept it waiting instead).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.processes import ManagedProcess, start_beat

from celeryconfig import beat_max_loop_interval
from devstack.env import child_env
from devstack.procs import free_port, wait_until
from devstack.services import RedisServer
from worker.beat import REDIS_RETRY_SECONDS

pytestmark = pytest.mark.integration

SENT = "Sending due task rebuild-bestplays"
UNREACHABLE = "beat: Redis unreachable"
LOST_LOCK = "beat: lost the schedule lock"
# A tick comes at least every beat_max_loop_interval seconds, and one that failed is tried
# again after REDIS_RETRY_SECONDS; the margin covers a busy machine.
TICK_BOUND_SECONDS = beat_max_loop_interval + REDIS_RETRY_SECONDS + 20.0


@pytest.fixture
def beat_on_own_redis(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[RedisServer, ManagedProcess]]:
    server = RedisServer(tmp_path / "redis", free_port(), appendonly=request.param)
    server.start()
    beat = None
    try:
        env = child_env(
            {
                "REDIS_URL": server.url,
                "DATABASE_URL": "",
                "BESTPLAYS_REFRESH_SECONDS": "1",
                "LOG_LEVEL": "INFO",
            }
        )
        beat = start_beat(env, log_path=tmp_path / "beat.log")
        yield server, beat
    finally:
        if beat is not None:
            beat.stop()
        server.stop()


def _until(check: Callable[[], bool], what: str, beat: ManagedProcess) -> None:
    wait_until(
        check,
        timeout=TICK_BOUND_SECONDS,
        what=what,
        alive=beat.is_running,
        details=lambda: beat.output()[-3000:],
    )


@pytest.mark.parametrize(
    ("beat_on_own_redis", "lock_survives"),
    [(True, True), (False, False)],
    ids=["redis-data-kept", "redis-data-lost"],
    indirect=["beat_on_own_redis"],
)
def test_beat_keeps_scheduling_across_a_redis_restart(
    beat_on_own_redis: tuple[RedisServer, ManagedProcess], lock_survives: bool
) -> None:
    server, beat = beat_on_own_redis
    _until(lambda: SENT in beat.output(), "beat's first due task", beat)

    server.stop()
    _until(lambda: UNREACHABLE in beat.output(), "beat noticing that Redis is down", beat)
    sent_before = beat.output().count(SENT)
    server.start()
    _until(
        lambda: beat.output().count(SENT) > sent_before, "a due task sent after the restart", beat
    )

    assert beat.is_running()
    assert (LOST_LOCK in beat.output()) is not lock_survives
