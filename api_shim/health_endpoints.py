"""GET /health: whether Postgres, Redis and at least one worker are up."""

from __future__ import annotations

import logging
from typing import Any

import falcon
import redis
from spectree import Response
from sqlalchemy import literal, select
from sqlalchemy.exc import SQLAlchemyError

from api_shim.docs import spec
from api_shim.models import Health, Ping
from api_shim.ratelimit import UNLIMITED
from api_shim.respond import send_json
from api_shim.services import Services
from osutrack import upstream_status

log = logging.getLogger(__name__)

# Workers refresh `osutrack:worker:{hostname}` with a 30 s TTL while they run.
WORKER_KEY_PATTERN = "osutrack:worker:*"


class HealthResource:
    """GET /health: 200 when everything is up, else 503 naming what is down."""

    rate_limit = UNLIMITED

    def __init__(self, services: Services) -> None:
        self._services = services

    def _postgres_up(self) -> bool:
        try:
            with self._services.database.engine.connect() as conn:
                conn.scalar(select(literal(1)))
        except SQLAlchemyError as err:
            log.warning("Health: Postgres is down: %s", err)
            return False
        return True

    def _redis_and_workers(self) -> tuple[bool, int, str | None]:
        try:
            client = self._services.broker.redis
            client.ping()
            # SCAN, not KEYS: it never blocks Redis for the whole keyspace.
            workers = sum(1 for _ in client.scan_iter(match=WORKER_KEY_PATTERN, count=500))
            auth_failure = upstream_status.auth_failure(client)
        except redis.RedisError as err:
            log.warning("Health: Redis is down: %s", err)
            return False, 0, None
        return True, workers, auth_failure

    @spec.validate(resp=Response(HTTP_200=Health, HTTP_503=Health), tags=["operations"])
    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Check the service's health

        200 when Postgres answers, Redis answers and at least one worker is alive;
        otherwise 503 with `error` naming the parts that are down. When osu! refused the
        service's credentials, `status` is "degraded" and `osu_api` says so: reads still
        work, but no update can succeed until the operator fixes OSU_CLIENT_ID and
        OSU_CLIENT_SECRET (or OSU_API_KEY).
        """
        body = await self._services.blocking.run(self._check)
        send_json(resp, body, 503 if "error" in body else 200)

    def _check(self) -> dict[str, Any]:
        postgres_up = self._postgres_up()
        redis_up, workers, auth_failure = self._redis_and_workers()
        down = [
            name
            for name, up in (
                ("postgres", postgres_up),
                ("redis", redis_up),
                ("workers", workers > 0),
            )
            if not up
        ]
        status = "down" if down else ("degraded" if auth_failure else "ok")
        body: dict[str, Any] = {
            "status": status,
            "postgres": "ok" if postgres_up else "down",
            "redis": "ok" if redis_up else "down",
            "workers": workers,
            "osu_api": (auth_failure or "ok") if redis_up else "unknown",
        }
        if down:
            body["error"] = "down: " + ", ".join(down)
        return body

    async def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self.on_get(req, resp)


PING_BODY = b'{"status":"alive"}'


class PingResource:
    """GET /ping: the process answers; touches nothing else.

    A liveness probe for orchestrators (restart only a process that stopped answering, not
    one whose database is away) and the framework's own ceiling in the benchmarks.
    """

    rate_limit = UNLIMITED

    @spec.validate(resp=Response(HTTP_200=Ping), tags=["operations"])
    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Check that the API process answers"""
        resp.content_type = falcon.MEDIA_JSON
        resp.data = PING_BODY
