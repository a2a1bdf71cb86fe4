"""GET /peak (a user's best rank and accuracy) and GET /bestplays (top plays by pp)."""

from __future__ import annotations

import threading
from typing import Any

import falcon
import orjson
from spectree import Response

from api_shim import params, queries
from api_shim.bestcache import BodyCache, TableCopy
from api_shim.docs import TOO_MANY_REQUESTS, spec
from api_shim.errors import ApiError
from api_shim.models import BestPlay, BestPlaysQuery, ErrorBody, Peak, UserModeQuery
from api_shim.reader import Reader
from api_shim.respond import send_json
from api_shim.services import Services

NO_PEAK = {
    "best_global_rank": None,
    "best_rank_timestamp": None,
    "best_accuracy": None,
    "best_acc_timestamp": None,
}

# Bodies of windows answered from all hiscores: at most this many, and this many bytes
# (a limit=10000 body is about 1.7 MB), per process.
LIVE_BODIES_MAX_ENTRIES = 256
LIVE_BODIES_MAX_BYTES = 64 * 1024 * 1024
# Uncached answers from all hiscores running at once per process, how many more requests
# may wait for a slot (others get a 503 at once), and how long one waits before a 503:
# a burst of expensive windows then holds at most LIVE_QUERY_SLOTS + LIVE_QUERY_QUEUE
# serving threads of a process and one core's worth of queries, so cheap reads (/peak)
# keep being served.
LIVE_QUERY_SLOTS = 1
LIVE_QUERY_QUEUE = 1
LIVE_QUERY_WAIT_SECONDS = 2.0
BUSY_MESSAGE = "Too many uncached /bestplays windows at once; retry shortly"


def peak(reader: Reader, user_id: int, mode: int) -> dict[str, Any]:
    """The user's peaks in the mode, all None when nothing is recorded."""
    rows = reader.fetch(queries.PEAK, (user_id, mode))
    if not rows:
        return dict(NO_PEAK)
    return dict(zip(queries.PEAK_KEYS, rows[0], strict=True))


def live_best_plays(reader: Reader, mode: int, window: params.Window, limit: int) -> bytes:
    """The body of the top `limit` plays of the mode inside `window`, from all hiscores."""
    start, end = queries.window_bounds(window)
    rows = reader.fetch(queries.BEST_PLAYS_LIVE, (mode, start, end, limit))
    keys = queries.BEST_PLAY_KEYS
    return orjson.dumps([dict(zip(keys, row, strict=True)) for row in rows])


class BestPlays:
    """Answers /bestplays bodies: the top plays by pp (pp DESC, score_time, score_id).

    The precomputed table (the mode's top BESTPLAYS_TABLE_SIZE hiscores) answers every
    request it covers (`TableCopy.answer`); other windows run the same order on all
    hiscores. Both are cached per process until the mode's next rebuild (`bestcache`).
    Before any rebuild of a mode, every request is answered from hiscores, uncached.
    """

    def __init__(self, reader_of: Any) -> None:
        self._reader_of = reader_of
        self._tables: dict[int, TableCopy] = {}
        self._load_lock = threading.Lock()
        self._live = BodyCache(LIVE_BODIES_MAX_ENTRIES, LIVE_BODIES_MAX_BYTES)
        self._live_slots = threading.BoundedSemaphore(LIVE_QUERY_SLOTS)
        self._live_admitted = threading.BoundedSemaphore(LIVE_QUERY_SLOTS + LIVE_QUERY_QUEUE)

    def body(self, mode: int, window: params.Window, limit: int) -> bytes:
        reader: Reader = self._reader_of()
        stamp = reader.fetch(queries.BESTPLAYS_STAMP, (mode,))
        if not stamp:
            return self._live_body(reader, mode, window, limit)
        table = self._table(reader, mode, stamp[0][0])
        answer = table.answer(window, limit)
        if answer is not None:
            return answer
        key = (mode, window.start, window.end, limit, table.refreshed_at)
        body = self._live.get(key)
        if body is None:
            body = self._live_body(reader, mode, window, limit)
            self._live.put(key, body)
        return body

    def _live_body(self, reader: Reader, mode: int, window: params.Window, limit: int) -> bytes:
        """`live_best_plays` in one of the process's LIVE_QUERY_SLOTS, else a 503."""
        if not self._live_admitted.acquire(blocking=False):
            raise ApiError(503, BUSY_MESSAGE, retry_after=1)
        try:
            if not self._live_slots.acquire(timeout=LIVE_QUERY_WAIT_SECONDS):
                raise ApiError(503, BUSY_MESSAGE, retry_after=1)
            try:
                return live_best_plays(reader, mode, window, limit)
            finally:
                self._live_slots.release()
        finally:
            self._live_admitted.release()

    def _table(self, reader: Reader, mode: int, refreshed_at: Any) -> TableCopy:
        table = self._tables.get(mode)
        if table is not None and table.refreshed_at == refreshed_at:
            return table
        # One thread loads a new rebuild; the others wait for it instead of all loading.
        with self._load_lock:
            table = self._tables.get(mode)
            if table is None or table.refreshed_at != refreshed_at:
                rows = reader.fetch(queries.BESTPLAYS_TABLE, (mode,))
                if not rows:
                    # The refresh row vanished between the two reads: answer from the
                    # stamp seen, with an empty (incomplete) table, i.e. from hiscores.
                    return TableCopy(refreshed_at, False, (), ())
                table = TableCopy.from_rows(rows, queries.BEST_PLAY_KEYS)
                self._tables[mode] = table
            return table


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
        send_json(resp, [peak(self._services.database.reader, query.user, query.mode)])

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.on_get(req, resp)


class BestPlaysResource:
    """GET /bestplays."""

    def __init__(self, services: Services) -> None:
        self._best_plays = BestPlays(lambda: services.database.reader)

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
        A 503 with Retry-After when too many uncached windows are being computed at once.
        """
        query: BestPlaysQuery = req.context.query
        resp.status = 200
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._best_plays.body(query.mode, query.window, query.limit)

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.on_get(req, resp)
