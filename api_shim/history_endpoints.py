"""GET /stats_history and GET /hiscores: one user's stored history, oldest first."""

from __future__ import annotations

from typing import Any

import falcon
from spectree import Response

from api_shim import params, queries
from api_shim.docs import TOO_MANY_REQUESTS, spec
from api_shim.errors import ApiError
from api_shim.models import ErrorBody, Hiscore, HiscoresQuery, StatsHistoryQuery, StatsSnapshot
from api_shim.ratelimit import READ
from api_shim.read_connections import Reader
from api_shim.replicas import ReadRouting
from api_shim.respond import send_json
from api_shim.services import Services

TAGS = ["history"]


def stats_history(
    reader: Reader, user_id: int, mode: int, window: params.DateWindow
) -> list[dict[str, Any]]:
    """The user's snapshots in the mode with `captured_at` inside `window`, oldest first.

    Scores are strings, as the original's BIGINT columns came out of mysqljs.
    """
    rows = reader.fetch(queries.STATS_HISTORY, (user_id, mode, *queries.window_bounds(window)))
    keys = queries.SNAPSHOT_KEYS
    return [dict(zip(keys, row, strict=True)) for row in rows]


def user_id_by_name(reader: Reader, username: str) -> int | None:
    """The id last seen with `username` (case-insensitive), or None if never tracked."""
    rows = reader.fetch(queries.USER_ID_BY_NAME, (username,))
    return int(rows[0][0]) if rows else None


def user_hiscores(
    reader: Reader, user_id: int, mode: int, window: params.DateWindow
) -> list[dict[str, Any]]:
    """Every recorded top play of the user in the mode, by `score_time` inside `window`."""
    rows = reader.fetch(queries.USER_HISCORES, (user_id, mode, *queries.window_bounds(window)))
    keys = queries.HISCORE_KEYS
    return [dict(zip(keys, row, strict=True)) for row in rows]


class StatsHistoryResource:
    """GET /stats_history."""

    rate_limit = READ

    def __init__(self, services: Services) -> None:
        self._services = services

    @spec.validate(
        query=StatsHistoryQuery,
        resp=Response(
            HTTP_200=list[StatsSnapshot],
            HTTP_400=ErrorBody,
            HTTP_429=TOO_MANY_REQUESTS,
            HTTP_503=ErrorBody,
        ),
        tags=TAGS,
    )
    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Get all stats updates for a user

        Snapshots of the user's stats in the mode, oldest first; `[]` for an unknown
        user. An unchanged stretch is stored as its first and last sighting.
        """
        query: StatsHistoryQuery = req.context.query
        reader = self._services.database.reads.reader_for(query.user)
        body = await self._services.read(
            stats_history, reader, query.user, query.mode, query.window
        )
        send_json(resp, body)

    async def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self.on_get(req, resp)


class HiscoresResource:
    """GET /hiscores."""

    rate_limit = READ

    def __init__(self, services: Services) -> None:
        self._services = services

    @spec.validate(
        query=HiscoresQuery,
        resp=Response(
            HTTP_200=list[Hiscore],
            HTTP_400=ErrorBody,
            HTTP_404=ErrorBody,
            HTTP_429=TOO_MANY_REQUESTS,
            HTTP_503=ErrorBody,
        ),
        tags=TAGS,
    )
    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Get all recorded hiscores for a user

        Every top play ever recorded for the user in the mode (also those that left the
        top 100), by when they were played. With `userMode=username`, `user` is matched
        case-insensitively against tracked users' latest names (404 if none).
        """
        query: HiscoresQuery = req.context.query
        reads = self._services.database.reads
        send_json(resp, await self._services.read(_hiscores, reads, query))

    async def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self.on_get(req, resp)


def _hiscores(reads: ReadRouting, query: HiscoresQuery) -> list[dict[str, Any]]:
    if isinstance(query.user, str):
        reader = reads.reader_for()
        user_id = user_id_by_name(reader, query.user)
        if user_id is None and reader is not reads.primary:
            # A player first tracked moments ago may not have reached the replica yet.
            user_id = user_id_by_name(reads.primary, query.user)
        if user_id is None:
            raise ApiError(404, "User not found")
    else:
        user_id = query.user
    return user_hiscores(reads.reader_for(user_id), user_id, query.mode, query.window)
