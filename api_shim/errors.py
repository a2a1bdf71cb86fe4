"""Turning every failure into a JSON `{"error": ...}` response with the right status.

Client mistakes are 4xx, a dependency that is down is 503 with Retry-After, and only a
genuine bug in the shim is a 500 (logged with its traceback).
"""

from __future__ import annotations

import logging
from typing import Any

import falcon
import falcon.asgi
import psycopg2
import redis
from sqlalchemy import exc as sa_exc

from api_shim.params import ParamError
from api_shim.respond import RETRY_AFTER_SECONDS, send_error

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "database unavailable"
REDIS_UNAVAILABLE = "redis unavailable"

# Failures that mean "Postgres cannot answer right now": refused or dropped connections,
# a statement cancelled by statement_timeout, or no pooled connection free in time. The
# read endpoints use psycopg2 directly (`api_shim.read_connections`), so its errors are listed too.
DATABASE_DOWN_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
)


class ApiError(Exception):
    """An error answer decided by a resource: status, message and extra body fields."""

    def __init__(
        self, status: int, message: str, *, retry_after: int | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.extra = extra


async def _api_error(
    req: falcon.Request, resp: falcon.Response, ex: ApiError, _params: Any
) -> None:
    send_error(resp, ex.status, ex.message, retry_after=ex.retry_after, **ex.extra)


async def _param_error(
    req: falcon.Request, resp: falcon.Response, ex: ParamError, _params: Any
) -> None:
    send_error(resp, 400, str(ex))


async def _http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, _params: Any
) -> None:
    if ex.headers:
        resp.set_headers(ex.headers)
    send_error(resp, ex.status_code, ex.description or ex.title)


async def _route_not_found(
    req: falcon.Request, resp: falcon.Response, _ex: falcon.HTTPError, _params: Any
) -> None:
    send_error(resp, 404, f"Not found: {req.method} {req.path}")


async def _method_not_allowed(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPMethodNotAllowed, _params: Any
) -> None:
    # OPTIONS is always answered, so it is left out: Allow names the methods to use.
    allow = dict(ex.headers or {}).get("Allow", "")
    allowed = [
        method.strip()
        for method in allow.split(",")
        if method.strip() and method.strip() != "OPTIONS"
    ]
    listed = ", ".join(allowed)
    resp.set_header("Allow", listed)
    send_error(resp, 405, f"Method {req.method} is not allowed on {req.path}; use {listed}")


async def _database_down(
    req: falcon.Request, resp: falcon.Response, ex: Exception, _params: Any
) -> None:
    log.warning("Postgres unavailable for %s %s: %s", req.method, req.path, ex)
    send_error(resp, 503, DATABASE_UNAVAILABLE, retry_after=RETRY_AFTER_SECONDS)


async def _redis_down(
    req: falcon.Request, resp: falcon.Response, ex: Exception, _params: Any
) -> None:
    log.warning("Redis unavailable for %s %s: %s", req.method, req.path, ex)
    send_error(resp, 503, REDIS_UNAVAILABLE, retry_after=RETRY_AFTER_SECONDS)


async def _bug(req: falcon.Request, resp: falcon.Response, _ex: Exception, _params: Any) -> None:
    log.exception("Unhandled error in %s %s", req.method, req.path)
    send_error(resp, 500, "Internal server error")


def install(app: falcon.asgi.App) -> None:
    """Register the JSON error handlers; Falcon picks the most specific match."""
    app.add_error_handler(Exception, _bug)
    app.add_error_handler(falcon.HTTPError, _http_error)
    app.add_error_handler(falcon.HTTPRouteNotFound, _route_not_found)
    app.add_error_handler(falcon.HTTPMethodNotAllowed, _method_not_allowed)
    app.add_error_handler(ApiError, _api_error)
    app.add_error_handler(ParamError, _param_error)
    for database_error in DATABASE_DOWN_ERRORS:
        app.add_error_handler(database_error, _database_down)
    app.add_error_handler(redis.RedisError, _redis_down)
