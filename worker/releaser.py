"""Every worker's main process releases queued update jobs as the upstream budget frees.

The budget frees with time, not with an event, so something must look again a few times a
second while jobs wait; every worker does (the release is one atomic Lua script, so any
number of them at once move each job exactly once), and the queue keeps moving as long as
one worker runs.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from celery.signals import worker_ready, worker_shutdown

from osutrack.budget import fleet_windows
from osutrack.queue import RELEASE_INTERVAL_SECONDS, UpdateQueue
from osutrack.redis_client import redis_client
from osutrack.settings import load_settings

log = logging.getLogger(__name__)

# While Redis is away every tick would log; one warning a minute says it enough.
WARNING_INTERVAL_TICKS = int(60 / RELEASE_INTERVAL_SECONDS)
_stop = threading.Event()


def _release_forever(queue: UpdateQueue) -> None:
    failures = 0
    while not _stop.is_set():
        try:
            queue.release()
            failures = 0
        except redis.RedisError as exc:
            if failures % WARNING_INTERVAL_TICKS == 0:
                log.warning("could not release queued updates: %s", exc)
            failures += 1
        _stop.wait(RELEASE_INTERVAL_SECONDS)


@worker_ready.connect
def start_releasing(sender: Any = None, **_: Any) -> None:
    """Start the release timer in the worker's main process once it consumes."""
    settings = load_settings()
    queue = UpdateQueue(redis_client(settings), fleet_windows(settings.effective_rate_limit))
    threading.Thread(
        target=_release_forever, args=(queue,), name="update-releaser", daemon=True
    ).start()


@worker_shutdown.connect
def stop_releasing(sender: Any = None, **_: Any) -> None:
    _stop.set()
