"""Worker liveness for /health: each worker keeps a short-lived key fresh in Redis."""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from celery.signals import worker_ready, worker_shutdown

from osutrack.redis_client import redis_client
from osutrack.settings import load_settings

log = logging.getLogger(__name__)

HEARTBEAT_TTL_SECONDS = 30
HEARTBEAT_INTERVAL_SECONDS = 10
_stop = threading.Event()


def heartbeat_key(hostname: str) -> str:
    return f"osutrack:worker:{hostname}"


def _beat(client: redis.Redis, key: str) -> None:
    while not _stop.is_set():
        try:
            client.set(key, "1", ex=HEARTBEAT_TTL_SECONDS)
        except redis.RedisError as exc:
            # Redis away: /health reports the worker missing, which is the truth for now.
            log.warning("heartbeat failed: %s", exc)
        _stop.wait(HEARTBEAT_INTERVAL_SECONDS)


@worker_ready.connect
def start_heartbeat(sender: Any = None, **_: Any) -> None:
    """Start refreshing this worker's key from the main process once it consumes."""
    hostname = getattr(sender, "hostname", "worker")
    client = redis_client(load_settings())
    thread = threading.Thread(
        target=_beat, args=(client, heartbeat_key(hostname)), name="heartbeat", daemon=True
    )
    thread.start()


@worker_shutdown.connect
def stop_heartbeat(sender: Any = None, **_: Any) -> None:
    """Stop the heartbeat and remove the key so /health notices at once."""
    _stop.set()
    hostname = getattr(sender, "hostname", "worker")
    try:
        redis_client(load_settings()).delete(heartbeat_key(hostname))
    except redis.RedisError:
        log.warning("could not remove the heartbeat key of %s", hostname)
