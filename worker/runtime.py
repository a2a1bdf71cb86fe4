"""What a worker process holds between tasks: settings, engine, Redis, osu! client.

Each pool process builds its own as it starts (Celery's `worker_process_init`: in every
prefork child, including one that replaces a child that died or reached
`worker_max_tasks_per_child`, and in the solo pool's single process). Pooled connections
therefore never cross a fork: the main process, which forks the children, never builds
one. Anything else that runs tasks in its own process (tests, tools) builds it on first
use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from celery.signals import worker_process_init
from sqlalchemy import Engine

from osutrack.budget import fleet_windows
from osutrack.queue import UpdateQueue
from osutrack.redis_client import redis_client
from osutrack.settings import Settings, load_settings
from worker.db import make_engine
from worker.upstream import OsuClient, make_client


@dataclass(frozen=True)
class Runtime:
    """Per-process resources; nothing connects until first used."""

    settings: Settings
    engine: Engine
    redis: redis.Redis
    client: OsuClient
    queue: UpdateQueue


def build_runtime(settings: Settings) -> Runtime:
    redis_conn = redis_client(settings)
    return Runtime(
        settings=settings,
        engine=make_engine(settings.database_url, settings.statement_timeout_ms),
        redis=redis_conn,
        client=make_client(settings, redis_conn),
        queue=UpdateQueue(redis_conn, fleet_windows(settings.effective_rate_limit)),
    )


class _ProcessRuntime:
    current: Runtime | None = None


_process = _ProcessRuntime()


@worker_process_init.connect
def start_process_runtime(**_: Any) -> None:
    """Build this pool process's runtime (cheap: the child must report up within seconds)."""
    inherited = _process.current
    if inherited is not None:
        # From a process that forked after using its own: forget its pooled connections
        # without closing them, since that process still owns those sockets.
        inherited.engine.dispose(close=False)
    _process.current = build_runtime(load_settings())


def runtime() -> Runtime:
    """This process's runtime."""
    if _process.current is None:
        _process.current = build_runtime(load_settings())
    return _process.current
