"""GET /metrics: the fleet's counters and current gauges in Prometheus text format."""

from __future__ import annotations

import falcon
from spectree import Response
from sqlalchemy import func, select

from api_shim.docs import spec
from api_shim.health_endpoints import WORKER_KEY_PATTERN
from api_shim.models import ErrorBody
from api_shim.ratelimit import UNLIMITED
from api_shim.services import Services
from osutrack import metrics as fleet_metrics
from osutrack import tasknames
from osutrack.schema import refresh_schedule

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The Celery queues in Redis: updates released to the workers, updates waiting for the
# upstream budget (first attempts, then retries), the scheduled refresh, beat's upkeep.
QUEUES = (
    tasknames.UPDATE_QUEUE,
    tasknames.WAITING_QUEUE,
    tasknames.RETRY_QUEUE,
    tasknames.REFRESH_QUEUE,
    tasknames.MAINTENANCE_QUEUE,
)

Gauges = dict[str, tuple[str, float]]


def coverage_ratio(tracked: int, checked_in_time: int) -> float:
    """Share of tracked user-modes checked within their interval; 1.0 when none are tracked."""
    return checked_in_time / tracked if tracked else 1.0


class MetricsResource:
    """GET /metrics: counters recorded by every process, plus gauges read now."""

    rate_limit = UNLIMITED

    def __init__(self, services: Services) -> None:
        self._services = services

    def _redis_gauges(self) -> Gauges:
        client = self._services.broker.redis
        pipe = client.pipeline(transaction=False)
        for name in QUEUES:
            pipe.llen(name)
        depths = pipe.execute()
        gauges: Gauges = {
            f'osutrack_queue_depth{{queue="{name}"}}': (
                "Messages waiting in a task queue.",
                float(depth),
            )
            for name, depth in zip(QUEUES, depths, strict=True)
        }
        # SCAN, not KEYS: it never blocks Redis for the whole keyspace.
        workers = sum(1 for _ in client.scan_iter(match=WORKER_KEY_PATTERN, count=500))
        gauges["osutrack_workers_alive"] = (
            "Worker processes whose heartbeat is current.",
            float(workers),
        )
        return gauges

    def _schedule_gauges(self) -> Gauges:
        checked_in_time = func.count().filter(refresh_schedule.c.next_check_at >= func.now())
        query = select(func.count(), checked_in_time).select_from(refresh_schedule)
        with self._services.database.engine.connect() as conn:
            tracked, current = conn.execute(query).one()
        return {
            "osutrack_tracked_user_modes": (
                "User-modes the scheduled refresh keeps up to date.",
                float(tracked),
            ),
            "osutrack_refresh_coverage_ratio": (
                "Share of tracked user-modes checked within their refresh interval.",
                coverage_ratio(tracked, current),
            ),
        }

    @spec.validate(
        resp=Response(
            HTTP_200=(
                None,
                "Prometheus text exposition format 0.0.4: job outcomes and latency, "
                "upstream requests, limiter waits and refresh outcomes (counters summed "
                "over every process), queue depths, live workers, tracked user-modes, "
                "refresh coverage, and each read replica's lag and use (gauges).",
            ),
            HTTP_503=ErrorBody,
        ),
        tags=["operations"],
    )
    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Get Prometheus metrics

        A 503 names Redis or Postgres when either cannot be read, rather than a partial
        exposition that would look like a drop to zero.
        """
        body = await self._services.blocking.run(self._exposition)
        resp.content_type = PROMETHEUS_CONTENT_TYPE
        resp.text = body

    def _exposition(self) -> str:
        gauges = self._redis_gauges()
        gauges |= self._schedule_gauges()
        gauges |= self._services.database.reads.gauges()
        return fleet_metrics.render(self._services.broker.redis, gauges)
