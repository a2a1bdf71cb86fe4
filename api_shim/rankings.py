"""GET /peak (a user's best rank and accuracy) and GET /bestplays (top plays by pp)."""

from __future__ import annotations

from typing import Any

import falcon
from spectree import Response
from sqlalchemy import Connection, Row, Select, select

from api_shim import params
from api_shim.db import window_filter
from api_shim.docs import TOO_MANY_REQUESTS, spec
from api_shim.models import BestPlay, BestPlaysQuery, ErrorBody, Peak, UserModeQuery
from api_shim.respond import send_json
from api_shim.services import Services
from osutrack.schema import bestplays, bestplays_refreshes, hiscores, peaks
from osutrack.timefmt import iso_z

NO_PEAK = {
    "best_global_rank": None,
    "best_rank_timestamp": None,
    "best_accuracy": None,
    "best_acc_timestamp": None,
}


def peak(conn: Connection, user_id: int, mode: int) -> dict[str, Any]:
    """The user's peaks in the mode, all None when nothing is recorded."""
    p = peaks.c
    row = conn.execute(
        select(p.best_global_rank, p.best_rank_at, p.best_accuracy, p.best_acc_at).where(
            p.user_id == user_id, p.mode == mode
        )
    ).first()
    if row is None:
        return dict(NO_PEAK)
    return {
        "best_global_rank": row.best_global_rank,
        "best_rank_timestamp": iso_z(row.best_rank_at),
        "best_accuracy": row.best_accuracy,
        "best_acc_timestamp": iso_z(row.best_acc_at),
    }


def _from_bestplays(mode: int, window: params.Window, limit: int) -> Select[Any]:
    b = bestplays.c
    return (
        select(b.user_id, b.beatmap_id, b.score, b.pp, b.mods, b.rank, b.score_time, b.update_time)
        .where(b.mode == mode, *window_filter(b.score_time, window))
        .order_by(b.position)
        .limit(limit)
    )


def _from_hiscores(mode: int, window: params.Window, limit: int) -> Select[Any]:
    h = hiscores.c
    return (
        select(h.user_id, h.beatmap_id, h.score, h.pp, h.mods, h.rank, h.score_time, h.update_time)
        .where(h.mode == mode, *window_filter(h.score_time, window))
        .order_by(h.pp.desc(), h.score_time, h.score_id)
        .limit(limit)
    )


def best_plays(conn: Connection, mode: int, window: params.Window, limit: int) -> list[Any]:
    """The top `limit` plays of the mode by pp inside `window` (pp DESC, score_time, score_id).

    The precomputed `bestplays` table (the mode's top BESTPLAYS_TABLE_SIZE hiscores,
    ordered by `position`) answers when it has been built for the mode and either holds
    every hiscore of the mode (`row_count < table_size`) or has at least `limit` rows inside
    the window: then its first `limit` rows in the window are exactly the answer. Otherwise
    (a narrow window reaching below the table's cut-off, or no table yet) the same query
    runs on `hiscores`. Run it in one REPEATABLE READ transaction so the refresh row and
    the table rows come from the same rebuild.
    """
    r = bestplays_refreshes.c
    refresh = conn.execute(select(r.row_count, r.table_size).where(r.mode == mode)).first()
    if refresh is not None:
        rows = conn.execute(_from_bestplays(mode, window, limit)).all()
        if refresh.row_count < refresh.table_size or len(rows) >= limit:
            return [_best_play(row) for row in rows]
    return [_best_play(row) for row in conn.execute(_from_hiscores(mode, window, limit))]


def _best_play(row: Row[Any]) -> dict[str, Any]:
    return {
        "user": row.user_id,
        "beatmap_id": row.beatmap_id,
        "score": row.score,
        "pp": row.pp,
        "mods": row.mods,
        "rank": row.rank,
        "score_time": iso_z(row.score_time),
        "update_time": iso_z(row.update_time),
    }


class PeakResource:
    """GET /peak."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @spec.validate(
        query=UserModeQuery,
        resp=Response(
            HTTP_200=list[Peak], HTTP_400=ErrorBody, HTTP_429=TOO_MANY_REQUESTS, HTTP_503=ErrorBody
        ),
        tags=["rankings"],
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Get the peak rank and accuracy for a user

        Always a one-element array (as the original); the values are null when the user
        has no recorded stats in the mode. The timestamps are the latest time each best
        value was held.
        """
        query: UserModeQuery = req.context.query
        with self._services.database.engine.connect() as conn:
            body = [peak(conn, query.user, query.mode)]
        send_json(resp, body)

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.on_get(req, resp)


class BestPlaysResource:
    """GET /bestplays."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @spec.validate(
        query=BestPlaysQuery,
        resp=Response(
            HTTP_200=list[BestPlay],
            HTTP_400=ErrorBody,
            HTTP_429=TOO_MANY_REQUESTS,
            HTTP_503=ErrorBody,
        ),
        tags=["rankings"],
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Get the best plays by pp for all users in a mode

        Descending by pp (ties: earlier play first), filtered on when the play happened.
        """
        query: BestPlaysQuery = req.context.query
        engine = self._services.database.engine
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            body = best_plays(conn, query.mode, query.window, query.limit)
        send_json(resp, body)

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.on_get(req, resp)
