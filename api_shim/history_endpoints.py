"""GET /stats_history and GET /hiscores: one user's stored history, oldest first."""

from __future__ import annotations

import falcon
from spectree import Response

from api_shim import http_cache, player_bodies, queries
from api_shim.docs import TOO_MANY_REQUESTS, spec
from api_shim.errors import ApiError
from api_shim.models import ErrorBody, Hiscore, HiscoresQuery, StatsHistoryQuery, StatsSnapshot
from api_shim.ratelimit import READ
from api_shim.read_connections import Reader
from api_shim.replicas import ReadRouting
from api_shim.services import Services

TAGS = ["history"]


def user_id_by_name(reader: Reader, username: str) -> int | None:
    """The id last seen with `username` (case-insensitive), or None if never tracked."""
    rows = reader.fetch(queries.USER_ID_BY_NAME, (username,))
    return int(rows[0][0]) if rows else None


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
        params = (query.user, query.mode, *queries.window_bounds(query.window))
        answer = await self._services.read(
            player_bodies.cached_body,
            player_bodies.STATS_HISTORY,
            reader,
            params,
            req.get_header("If-None-Match"),
        )
        answer.respond(req, resp)

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
        answer = await self._services.read(_hiscores, reads, query, req.get_header("If-None-Match"))
        answer.respond(req, resp)

    async def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self.on_get(req, resp)


def _hiscores(
    reads: ReadRouting, query: HiscoresQuery, if_none_match: str | None
) -> http_cache.CachedBody:
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
    params = (user_id, query.mode, *queries.window_bounds(query.window))
    return player_bodies.cached_body(
        player_bodies.HISCORES, reads.reader_for(user_id), params, if_none_match
    )
