"""GET /stats_history and GET /hiscores: one user's stored history, oldest first."""

from __future__ import annotations

from typing import Any

import falcon
from spectree import Response
from sqlalchemy import Connection, Row, Select, func, select

from api_shim import params
from api_shim.db import window_filter
from api_shim.docs import TOO_MANY_REQUESTS, spec
from api_shim.errors import ApiError
from api_shim.models import ErrorBody, Hiscore, HiscoresQuery, StatsHistoryQuery, StatsSnapshot
from api_shim.respond import send_json
from api_shim.services import Services
from osutrack.schema import hiscores, stats_snapshots, tracked_users
from osutrack.timefmt import iso_z

TAGS = ["history"]


def stats_history(conn: Connection, user_id: int, mode: int, window: params.Window) -> list[Any]:
    """The user's snapshots in the mode with `captured_at` inside `window`, oldest first."""
    s = stats_snapshots.c
    query: Select[Any] = (
        select(
            s.count300,
            s.count100,
            s.count50,
            s.playcount,
            s.ranked_score,
            s.total_score,
            s.pp_rank,
            s.level,
            s.pp_raw,
            s.accuracy,
            s.count_rank_ss,
            s.count_rank_s,
            s.count_rank_a,
            s.captured_at,
        )
        .where(s.user_id == user_id, s.mode == mode, *window_filter(s.captured_at, window))
        .order_by(s.captured_at, s.snapshot_id)
    )
    return [_snapshot(row) for row in conn.execute(query)]


def _snapshot(row: Row[Any]) -> dict[str, Any]:
    # Scores are strings, as the original's BIGINT columns came out of mysqljs.
    return {
        "count300": row.count300,
        "count100": row.count100,
        "count50": row.count50,
        "playcount": row.playcount,
        "ranked_score": str(row.ranked_score),
        "total_score": str(row.total_score),
        "pp_rank": row.pp_rank,
        "level": row.level,
        "pp_raw": row.pp_raw,
        "accuracy": row.accuracy,
        "count_rank_ss": row.count_rank_ss,
        "count_rank_s": row.count_rank_s,
        "count_rank_a": row.count_rank_a,
        "timestamp": iso_z(row.captured_at),
    }


def user_id_by_name(conn: Connection, username: str) -> int | None:
    """The id last seen with `username` (case-insensitive), or None if never tracked."""
    u = tracked_users.c
    query = (
        select(u.user_id)
        .where(func.lower(u.username) == func.lower(username))
        .order_by(u.last_updated_at.desc())
        .limit(1)
    )
    return conn.scalar(query)


def user_hiscores(conn: Connection, user_id: int, mode: int, window: params.Window) -> list[Any]:
    """Every recorded top play of the user in the mode, by `score_time` inside `window`."""
    h = hiscores.c
    query = (
        select(h.beatmap_id, h.score, h.pp, h.mods, h.rank, h.score_time, h.update_time)
        .where(h.user_id == user_id, h.mode == mode, *window_filter(h.score_time, window))
        .order_by(h.score_time, h.score_id)
    )
    return [
        {
            "beatmap_id": row.beatmap_id,
            "score": row.score,
            "pp": row.pp,
            "mods": row.mods,
            "rank": row.rank,
            "score_time": iso_z(row.score_time),
            "update_time": iso_z(row.update_time),
        }
        for row in conn.execute(query)
    ]


class StatsHistoryResource:
    """GET /stats_history."""

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
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Get all stats updates for a user

        Snapshots of the user's stats in the mode, oldest first; `[]` for an unknown
        user. An unchanged stretch is stored as its first and last sighting.
        """
        query: StatsHistoryQuery = req.context.query
        with self._services.database.engine.connect() as conn:
            body = stats_history(conn, query.user, query.mode, query.window)
        send_json(resp, body)

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.on_get(req, resp)


class HiscoresResource:
    """GET /hiscores."""

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
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Get all recorded hiscores for a user

        Every top play ever recorded for the user in the mode (also those that left the
        top 100), by when they were played. With `userMode=username`, `user` is matched
        case-insensitively against tracked users' latest names (404 if none).
        """
        query: HiscoresQuery = req.context.query
        with self._services.database.engine.connect() as conn:
            if isinstance(query.user, str):
                user_id = user_id_by_name(conn, query.user)
                if user_id is None:
                    raise ApiError(404, "User not found")
            else:
                user_id = query.user
            body = user_hiscores(conn, user_id, query.mode, query.window)
        send_json(resp, body)

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.on_get(req, resp)
