"""Celery beat's scheduler: RedBeat that rides out a Redis restart.

RedBeat's own `tick` lets a Redis connection error escape, which ends beat. Here a tick that
cannot reach Redis logs a warning and is tried again a little later; the lock, kept in
Redis, is extended as usual once Redis is back (AOF keeps it across a restart). A lock lost
meanwhile (expired, taken by another beat, or gone with Redis' data) is waited for again,
as at start-up, so two beats never schedule at once, and the schedule is stored again.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import redis
from redbeat import RedBeatScheduler
from redbeat.schedulers import acquire_distributed_beat_lock

from osutrack.settings import settings_for

log = logging.getLogger(__name__)

# How long a tick waits before trying Redis again; well below the lock timeout
# (celeryconfig.redbeat_lock_timeout), so a short outage never costs the lock.
REDIS_RETRY_SECONDS = 2.0


class RetryingRedBeatScheduler(RedBeatScheduler):
    """`celery -A worker beat` uses this scheduler (celeryconfig.beat_scheduler)."""

    lock: Any  # a redis-py Lock once taken, None before

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Beat builds its scheduler before it prints its banner or connects anywhere.
        settings_for("beat")
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            if self.lock_key and self.lock is None:
                # The lock could not be taken at start-up, or was lost: wait for it, then
                # store the schedule again (a Redis that lost its data lost that too).
                acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=self))
                self.setup_schedule()
            return float(super().tick(*args, **kwargs))
        except redis.exceptions.LockError as exc:
            log.warning("beat: lost the schedule lock (%s); waiting for it again", exc)
            self.lock = None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning(
                "beat: Redis unreachable (%s); trying again in %.0f s", exc, REDIS_RETRY_SECONDS
            )
        return REDIS_RETRY_SECONDS
