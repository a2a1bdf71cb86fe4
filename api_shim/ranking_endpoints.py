"""GET /peak (a user's best rank and accuracy) and GET /bestplays (top plays by pp)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import falcon
import orjson
import psycopg2
from spectree import Response

from api_shim import http_cache, params, player_bodies, queries, windows
from api_shim.bestcache import BodyCache, TableCopy
from api_shim.docs import TOO_MANY_REQUESTS, spec
from api_shim.errors import ApiError
from api_shim.models import BestPlay, BestPlaysQuery, ErrorBody, Peak, UserModeQuery
from api_shim.ratelimit import READ
from api_shim.read_connections import Reader
from api_shim.services import Services

T = TypeVar("T")

# Bodies of windows not answered by the table: at most this many, and this many bytes
# (a limit=10000 body is about 1.7 MB), per process.
LIVE_BODIES_MAX_ENTRIES = 256
LIVE_BODIES_MAX_BYTES = 64 * 1024 * 1024
# Heavy work runs one at a time on the whole server: a window body with more than
# LIGHT_LIMIT plays (its merge, sort and a body of up to 1.7 MB take tens of milliseconds
# of CPU), a window part of more than HEAVY_EXACT_SPAN of score time read from hiscores,
# and whole windows from hiscores (before any rebuild, or while month lists are missing).
# It holds a Postgres advisory lock, so however many API processes there are, at most one
# core goes to it and cheap reads (/peak, small windows) keep the other: ten clients
# asking for heavy windows at once no longer take both cores. A request waits at most
# HEAVY_WAIT_SECONDS for it, then gets a 503 with Retry-After; at most HEAVY_WAITERS
# threads per process wait or run one (the others get the 503 at once), so a burst cannot
# take every serving thread either. Heavy statements are cancelled after
# HEAVY_STATEMENT_TIMEOUT_MS (a 503 as any timeout).
LIGHT_LIMIT = 1000
HEAVY_EXACT_SPAN = timedelta(days=2)
HEAVY_LOCK_KEY = 0x6F73_7574_6263_6B01  # any constant; "osutbck" + 1
HEAVY_WAITERS = 2
HEAVY_WAIT_SECONDS = 0.25
HEAVY_POLL_SECONDS = 0.01
HEAVY_STATEMENT_TIMEOUT_MS = 3000
BUSY_MESSAGE = "Too many uncached /bestplays windows at once; retry shortly"

_TAKE_HEAVY = "SELECT pg_try_advisory_lock(%s), set_config('statement_timeout', %s, false)"
# RESET returns to the connection's own statement_timeout (set at connect).
_RELEASE_HEAVY = "RESET statement_timeout; SELECT pg_advisory_unlock(%s)"
_RELEASE_TIMEOUT = "RESET statement_timeout; SELECT 1"


def live_best_plays(reader: Reader, mode: int, window: params.DateWindow, limit: int) -> bytes:
    """The body of the top `limit` plays of the mode inside `window`, from all hiscores."""
    start, end = queries.window_bounds(window)
    rows = reader.fetch(queries.BEST_PLAYS_LIVE, (mode, start, end, limit))
    keys = queries.BEST_PLAY_KEYS
    return orjson.dumps([dict(zip(keys, row, strict=True)) for row in rows])


def _month_bound(moment: datetime | None, open_end: str) -> datetime | str:
    return open_end if moment is None else windows.month_start(moment)


class BestPlays:
    """Answers /bestplays bodies: the top plays by pp (pp DESC, score_time, score_id).

    The precomputed table (the mode's top BESTPLAYS_TABLE_SIZE hiscores) answers every
    request it covers (`TableCopy.answer`); other windows merge the per-month top lists
    with exact queries for what the lists cannot answer (`api_shim.windows`). Both are
    cached per process until the mode's next rebuild (`bestcache`), which also rebuilds
    the lists. Before any rebuild of a mode, every request is answered from hiscores,
    uncached.
    """

    def __init__(self, reader_of: Any) -> None:
        self._reader_of = reader_of
        self._tables: dict[int, TableCopy] = {}
        self._load_lock = threading.Lock()
        self._live = BodyCache(LIVE_BODIES_MAX_ENTRIES, LIVE_BODIES_MAX_BYTES)
        self._heavy_admitted = threading.BoundedSemaphore(HEAVY_WAITERS)

    def known_body(self, mode: int, window: params.DateWindow, limit: int) -> bytes | None:
        """The body when this process already has it: answered by the current table copy,
        or kept in the LRU since the current rebuild. One stamp lookup, no other statement
        and no table load, so it is cheap enough for the event loop; None means `body`
        has to work for it."""
        reader: Reader = self._reader_of()
        stamp = reader.fetch(queries.BESTPLAYS_STAMP, (mode,))
        if not stamp:
            return None
        table = self._tables.get(mode)
        if table is None or table.refreshed_at != stamp[0][0]:
            return None
        answer = table.answer(window, limit)
        if answer is not None:
            return answer
        return self._live.get((mode, window.start, window.end, limit, table.refreshed_at))

    def body(self, mode: int, window: params.DateWindow, limit: int) -> bytes:
        reader: Reader = self._reader_of()
        stamp = reader.fetch(queries.BESTPLAYS_STAMP, (mode,))
        if not stamp:
            return self._heavy(reader, lambda: live_best_plays(reader, mode, window, limit))
        table = self._table(reader, mode, stamp[0][0])
        answer = table.answer(window, limit)
        if answer is not None:
            return answer
        key = (mode, window.start, window.end, limit, table.refreshed_at)
        body = self._live.get(key)
        if body is None:
            if limit > LIGHT_LIMIT:
                body = self._heavy(
                    reader, lambda: self._window_body(reader, mode, window, limit, True)
                )
            else:
                body = self._window_body(reader, mode, window, limit, False)
            self._live.put(key, body)
        return body

    def _window_body(
        self, reader: Reader, mode: int, window: params.DateWindow, limit: int, in_slot: bool
    ) -> bytes:
        """The window from the month lists, with exact parts where they cannot tell;
        `in_slot` when the caller already holds the heavy slot."""
        rows = [
            queries.MonthListRow(*row)
            for row in reader.fetch(
                queries.BESTPLAYS_MONTHS,
                (
                    mode,
                    _month_bound(window.start, "-infinity"),
                    _month_bound(window.end, "infinity"),
                ),
            )
        ]
        first, last = rows[0].first, rows[0].last
        if first is None or last is None:
            return b"[]"
        lists = {
            row.month: windows.MonthList(
                row.row_count,
                row.list_size,
                None
                if row.last_pp is None
                else windows.sort_key(row.last_pp, row.last_score_micros, row.last_score_id),
            )
            for row in rows
            if row.month is not None
        }
        plan = windows.plan_window(window, limit, (first, last), lists)
        if plan.unbuilt_months:
            if in_slot:
                return live_best_plays(reader, mode, window, limit)
            return self._heavy(reader, lambda: live_best_plays(reader, mode, window, limit))
        answer = self._run_plan(reader, mode, limit, plan, in_slot)
        last_key = windows.sort_key(*queries.merge_row_parts(answer[-1])[1]) if answer else None
        if not windows.answer_is_exact(plan, len(answer), last_key, limit):
            exact = windows.plan_window(window, limit, (first, last), lists, exact_edges=True)
            answer = self._run_plan(reader, mode, limit, exact, in_slot)
        names = queries.BEST_PLAY_KEYS
        return orjson.dumps(
            [dict(zip(names, queries.merge_row_parts(row)[0], strict=True)) for row in answer]
        )

    def _run_plan(
        self, reader: Reader, mode: int, limit: int, plan: windows.MonthsPlan, in_slot: bool
    ) -> list[tuple[Any, ...]]:
        sql, args = queries.bestplays_window(mode, limit, plan)
        if not in_slot and plan.exact_span() > HEAVY_EXACT_SPAN:
            return self._heavy(reader, lambda: reader.fetch(sql, args))
        return reader.fetch(sql, args)

    def _heavy(self, reader: Reader, run: Callable[[], T]) -> T:
        """`run()` holding the server-wide heavy-statement lock, else a 503."""
        if not self._heavy_admitted.acquire(blocking=False):
            raise ApiError(503, BUSY_MESSAGE, retry_after=1)
        try:
            deadline = time.monotonic() + HEAVY_WAIT_SECONDS
            timeout = str(HEAVY_STATEMENT_TIMEOUT_MS)
            try:
                while not reader.fetch(_TAKE_HEAVY, (HEAVY_LOCK_KEY, timeout))[0][0]:
                    if time.monotonic() >= deadline:
                        reader.fetch(_RELEASE_TIMEOUT, ())
                        raise ApiError(503, BUSY_MESSAGE, retry_after=1)
                    time.sleep(HEAVY_POLL_SECONDS)
                try:
                    return run()
                finally:
                    reader.fetch(_RELEASE_HEAVY, (HEAVY_LOCK_KEY,))
            except psycopg2.Error:
                # A statement failed while this session may hold the lock or the heavy
                # timeout (a release cancelled by an operator, say). A session kept like
                # that would refuse every heavy request of the server until it restarts;
                # ending it releases both, whichever statement failed.
                reader.discard()
                raise
        finally:
            self._heavy_admitted.release()

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

    rate_limit = READ

    def __init__(self, services: Services) -> None:
        self._services = services

    @spec.validate(
        query=UserModeQuery,
        resp=Response(
            HTTP_200=list[Peak], HTTP_400=ErrorBody, HTTP_429=TOO_MANY_REQUESTS, HTTP_503=ErrorBody
        ),
        tags=["rankings"],
    )
    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Get the peak rank and accuracy for a user

        Always a one-element array (as the original); the values are null when the user
        has no recorded stats in the mode. The timestamps are the latest time each best
        value was held.
        """
        query: UserModeQuery = req.context.query
        reader = self._services.database.reads.reader_for(query.user)
        answer = await self._services.read(
            player_bodies.cached_body,
            player_bodies.PEAK,
            reader,
            (query.user, query.mode),
            req.get_header("If-None-Match"),
        )
        answer.respond(req, resp)

    async def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self.on_get(req, resp)


class BestPlaysResource:
    """GET /bestplays."""

    rate_limit = READ

    def __init__(self, services: Services) -> None:
        self._services = services
        self._best_plays = BestPlays(services.database.reads.reader_for)

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
    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Get the best plays by pp for all users in a mode

        Descending by pp (ties: earlier play first), filtered on when the play happened.
        A 503 with Retry-After when too many uncached windows are being computed at once.
        """
        query: BestPlaysQuery = req.context.query
        best_plays, services = self._best_plays, self._services
        # HTTP caching (api_shim.http_cache): the rebuild stamp names the answer.
        validator = await services.read(
            http_cache.bestplays_validator,
            services.database.reads.reader_for(),
            (query.mode, *queries.window_bounds(query.window), query.limit),
            services.settings.bestplays_refresh_seconds,
            datetime.now(UTC),
        )
        if validator.not_modified(req, resp):
            return
        body = None
        if query.limit <= LIGHT_LIMIT:
            # Larger bodies take milliseconds to join even from memory: not on the loop.
            body = await services.read(best_plays.known_body, query.mode, query.window, query.limit)
        if body is None:
            # Loading a rebuilt table, merging month lists or waiting for the heavy slot
            # would stall every request of this process's event loop.
            body = await services.blocking.run(
                best_plays.body, query.mode, query.window, query.limit
            )
        validator.send(resp, body)

    async def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self.on_get(req, resp)
