"""The Redis client of job state, queues, locks and metrics, as every process builds it."""

from __future__ import annotations

import redis

from osutrack.settings import Settings


def redis_client(settings: Settings) -> redis.Redis:
    """A Redis client for job state and locks: text replies, bounded socket timeouts.

    The socket timeout stays above the longest BLPOP a shim thread makes
    (UPDATE_WAIT_MAX_SECONDS), so a wait is never cut short by the client itself.
    """
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=3,
        socket_timeout=settings.update_wait_max_seconds + 5,
        health_check_interval=30,
    )
