"""What a worker process holds between tasks: settings, engine, Redis, osu! client."""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis
from sqlalchemy import Engine

from osutrack.budget import fleet_windows
from osutrack.queue import UpdateQueue
from osutrack.redis_client import redis_client
from osutrack.settings import Settings, load_settings
from worker.db import engine_for_process
from worker.upstream import OsuClient, make_client


@dataclass(frozen=True)
class Runtime:
    """Per-process resources, built on first use in each (forked) process."""

    settings: Settings
    engine: Engine
    redis: redis.Redis
    client: OsuClient
    queue: UpdateQueue


_runtimes: dict[int, Runtime] = {}


def runtime() -> Runtime:
    """This process's resources; a forked child builds its own instead of sharing sockets."""
    pid = os.getpid()
    current = _runtimes.get(pid)
    if current is None:
        settings = load_settings()
        redis_conn = redis_client(settings)
        current = Runtime(
            settings=settings,
            engine=engine_for_process(settings.database_url, settings.statement_timeout_ms),
            redis=redis_conn,
            client=make_client(settings, redis_conn),
            queue=UpdateQueue(redis_conn, fleet_windows(settings.effective_rate_limit)),
        )
        _runtimes[pid] = current
    return current
