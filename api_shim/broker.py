"""Redis and the Celery producer of one API process.

The shim only sends update tasks (by name, never importing the worker) and reads job
state from Redis; it never waits on Celery results.
"""

from __future__ import annotations

import redis
from celery import Celery

from osutrack import tasknames
from osutrack.budget import RateWindow, fleet_windows
from osutrack.queue import UpdateQueue
from osutrack.redis_client import redis_client
from osutrack.settings import Settings
from osutrack.tasknames import WAITING_QUEUE

# Enqueueing gives up quickly when the broker is down: the request answers 503 and the
# client retries, instead of a server thread sitting in kombu's reconnect loop.
SEND_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}


class Broker:
    """This process's Redis client (job state), Celery app (task producer) and update queue.

    Built at the process's start (`api_shim.services`); nothing connects before it is used.
    """

    def __init__(self, settings: Settings) -> None:
        self.budget_windows: list[RateWindow] = fleet_windows(settings.effective_rate_limit)
        # Decoded replies, its own connection pool.
        self.redis: redis.Redis = redis_client(settings)
        # A producer only, sending JSON messages to the Redis broker.
        self.celery: Celery = _producer_app(settings)
        # To release the jobs the budget has room for.
        self.queue = UpdateQueue(self.redis, self.budget_windows)

    def send_update(self, job_id: str, user_id: int, mode: int) -> None:
        """Queue attempt 0 of a job just created, behind the jobs accepted before it;
        raises if the broker is down. `UpdateQueue.release` hands it to the workers."""
        self.celery.send_task(
            tasknames.UPDATE_USER,
            args=[job_id, user_id, mode, 0],
            task_id=job_id,
            queue=WAITING_QUEUE,
            retry=True,
            retry_policy=SEND_RETRY_POLICY,
        )


def _producer_app(settings: Settings) -> Celery:
    app = Celery("osutrack", set_as_current=False)
    app.conf.update(
        broker_url=settings.redis_url,
        broker_connection_timeout=3,
        broker_transport_options={"socket_connect_timeout": 3, "socket_timeout": 10},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        timezone="UTC",
        enable_utc=True,
    )
    return app
