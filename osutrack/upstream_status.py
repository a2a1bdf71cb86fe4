"""What the workers last learned about the osu! API that operators must act on.

Refused credentials are a configuration problem no retry can fix: the worker that meets
one records it here, `/health` shows it, and the next accepted request clears it.
"""

from __future__ import annotations

import logging
import time

import redis

log = logging.getLogger(__name__)

AUTH_FAILED_KEY = "osutrack:osu:auth_failed"
# Long enough for an operator to see it; a fixed configuration clears it sooner.
AUTH_FAILED_TTL_SECONDS = 3600


def record_auth_failure(client: redis.Redis, message: str) -> None:
    """Remember that osu! refused our credentials (never raises)."""
    try:
        client.set(
            AUTH_FAILED_KEY,
            f"{message} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
            ex=AUTH_FAILED_TTL_SECONDS,
        )
    except redis.RedisError as exc:
        log.warning("could not record the credentials failure: %s", exc)


def clear_auth_failure(client: redis.Redis) -> None:
    """Forget a recorded credentials failure: osu! accepted a request (never raises)."""
    try:
        client.delete(AUTH_FAILED_KEY)
    except redis.RedisError as exc:
        log.warning("could not clear the credentials failure: %s", exc)


def auth_failure(client: redis.Redis) -> str | None:
    """The recorded credentials failure, or None."""
    value = client.get(AUTH_FAILED_KEY)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
