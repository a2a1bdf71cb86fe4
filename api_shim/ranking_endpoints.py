"""GET /peak (a user's best rank and accuracy) and GET /bestplays (top plays by pp)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import falcon
import psycopg2
from spectree import Response

from api_shim import http_cache, params, player_bodies, queries, windows
from api_shim.bestcache import BodyCache, TableCopy
from api_shim.docs import TOO_MANY_REQUESTS, spec
from api_shim.errors import ApiError
from api_shim.heavy_queue import HeavyQueue, QueueFull
from api_shim.models import BestPlay, BestPlaysQuery, ErrorBody, Peak, UserModeQuery
from api_shim.ratelimit import READ
from api_shim.read_connections import Reader
from api_shim.services import Services

T = TypeVar("T")

# Bodies of windows not answered by the table: at most this many, and this many bytes
# (a limit=10000 body is about 1.7 MB), per process.
LIVE_BODIES_MAX_ENTRIES = 256
LIVE_BODIES_MAX_BYTES = 64 * 1024 * 1024
# Heavy work: a window body with more than LIGHT_LIMIT plays, a window part of more than
# HEAVY_EXACT_SPAN of score time read from hiscores, and whole windows from hiscores
# (before any rebuild, or while month lists are missing). It takes its turn:
# - in its process, a FIFO of turns on the event loop (`api_shim.heavy_queue`): one
#   request of the process (HEAVY_RUNNING) runs heavy work, up to HEAVY_QUEUE_BOUND more
#   wait in line, holding no thread and no connection; a request arriving past that bound
#   gets a 503 with Retry-After: 1, the only refusal;
# - on the server, a Postgres advisory lock: however many API processes, one heavy
#   statement runs at a time, so at most one core goes to it and cheap reads (/peak, small
#   windows) keep the other. The request whose turn it is tries the lock from a pool
#   thread; when another process holds it, it waits HEAVY_POLL_SECONDS on the event loop
#   (keeping its turn, holding no thread) and tries again, for up to HEAVY_WAIT_SECONDS
#   in all (then a 503 with Retry-After, a server stuck behind something else).
# Heavy statements are cancelled after HEAVY_STATEMENT_TIMEOUT_MS (a 503 as any timeout).
LIGHT_LIMIT = 1000
HEAVY_EXACT_SPAN = timedelta(days=2)
HEAVY_LOCK_KEY = 0x6F73_7574_6263_6B01  # any constant; "osutbck" + 1
HEAVY_RUNNING = 1
HEAVY_QUEUE_BOUND = 32
HEAVY_WAIT_SECONDS = 20.0
HEAVY_POLL_SECONDS = 0.005
HEAVY_STATEMENT_TIMEOUT_MS = 3000
BUSY_MESSAGE = "Too many uncached /bestplays windows waiting; retry shortly"

_TAKE_HEAVY = "SELECT pg_try_advisory_lock(%s), set_config('statement_timeout', %s, false)"
# RESET returns to the connection's own statement_timeout (set at connect).
_RELEASE_HEAVY = "RESET statement_timeout; SELECT pg_advisory_unlock(%s)"
_RELEASE_TIMEOUT = "RESET statement_timeout; SELECT 1"


class HeavyTurnNeeded(Exception):
    """The body needs heavy work and the caller holds no heavy turn."""


class ServerBusy(Exception):
    """Another process of the server holds the heavy lock."""


def live_best_plays(reader: Reader, mode: int, window: params.DateWindow, limit: int) -> bytes:
    """The body of the top `limit` plays of the mode inside `window`, from all hiscores
    (assembled by Postgres)."""
    start, end = queries.window_bounds(window)
    body: str = reader.fetch(queries.BEST_PLAYS_LIVE, (mode, start, end, limit))[0][0]
    return body.encode()


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

    def stamp(self, mode: int) -> datetime | None:
        """When the mode's table was last rebuilt (None: never): one primary-key lookup."""
        rows = self._reader_of().fetch(queries.BESTPLAYS_STAMP, (mode,))
        return rows[0][0] if rows else None

    def known_body(
        self, refreshed_at: datetime, mode: int, window: params.DateWindow, limit: int
    ) -> bytes | None:
        """The body when this process already has it for the rebuild of `refreshed_at`:
        answered by the table copy, or kept in the LRU since that rebuild. No statement
        and no table load, so it is cheap enough for the event loop; None means `body`
        has to work for it."""
        table = self._tables.get(mode)
        if table is None or table.refreshed_at != refreshed_at:
            return None
        answer = table.answer(window, limit)
        if answer is not None:
            return answer
        return self._live.get((mode, window.start, window.end, limit, table.refreshed_at))

    def body(self, mode: int, window: params.DateWindow, limit: int, turn: bool = False) -> bytes:
        """The body; `turn` when the caller holds its process's heavy turn, else heavy work
        raises HeavyTurnNeeded before it starts (and ServerBusy when another process holds
        the server's heavy lock)."""
        reader: Reader = self._reader_of()
        stamp = reader.fetch(queries.BESTPLAYS_STAMP, (mode,))
        if not stamp:
            return self._heavy(reader, turn, lambda: live_best_plays(reader, mode, window, limit))
        table = self._table(reader, mode, stamp[0][0])
        answer = table.answer(window, limit)
        if answer is not None:
            return answer
        key = (mode, window.start, window.end, limit, table.refreshed_at)
        body = self._live.get(key)
        if body is None:
            if limit > LIGHT_LIMIT:
                body = self._heavy(
                    reader, turn, lambda: self._window_body(reader, mode, window, limit, turn, True)
                )
            else:
                body = self._window_body(reader, mode, window, limit, turn, False)
            self._live.put(key, body)
        return body

    def _window_body(
        self,
        reader: Reader,
        mode: int,
        window: params.DateWindow,
        limit: int,
        turn: bool,
        in_slot: bool,
    ) -> bytes:
        """The window from the month lists, with exact parts where they cannot tell;
        `in_slot` when the caller already holds the server's heavy lock."""
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
            return self._heavy(reader, turn, lambda: live_best_plays(reader, mode, window, limit))
        plays, body, last_key = self._run_plan(reader, mode, limit, plan, turn, in_slot)
        if not windows.answer_is_exact(plan, plays, last_key, limit):
            exact = windows.plan_window(window, limit, (first, last), lists, exact_edges=True)
            _, body, _ = self._run_plan(reader, mode, limit, exact, turn, in_slot)
        return body.encode()

    def _run_plan(
        self,
        reader: Reader,
        mode: int,
        limit: int,
        plan: windows.MonthsPlan,
        turn: bool,
        in_slot: bool,
    ) -> tuple[int, str, windows.SortKey | None]:
        """The plan's answer: its number of plays, its body (JSON text) and its last
        play's sort key."""
        sql, args = queries.bestplays_window(mode, limit, plan)
        if not in_slot and plan.exact_span() > HEAVY_EXACT_SPAN:
            rows = self._heavy(reader, turn, lambda: reader.fetch(sql, args))
        else:
            rows = reader.fetch(sql, args)
        plays, body, last_pp, last_micros, last_id = rows[0]
        last_key = None if last_pp is None else windows.sort_key(last_pp, last_micros, last_id)
        return plays, body, last_key

    def _heavy(self, reader: Reader, turn: bool, run: Callable[[], T]) -> T:
        """`run()` holding the server-wide heavy lock: HeavyTurnNeeded without the
        process's turn, ServerBusy when another process holds the lock."""
        if not turn:
            raise HeavyTurnNeeded
        try:
            if not reader.fetch(_TAKE_HEAVY, (HEAVY_LOCK_KEY, str(HEAVY_STATEMENT_TIMEOUT_MS)))[0][
                0
            ]:
                reader.fetch(_RELEASE_TIMEOUT, ())
                raise ServerBusy
            try:
                return run()
            finally:
                reader.fetch(_RELEASE_HEAVY, (HEAVY_LOCK_KEY,))
        except psycopg2.Error:
            # A statement failed while this session may hold the lock or the heavy
            # timeout (a release cancelled by an operator, say). A session kept like that
            # would refuse every heavy request of the server until it restarts; ending it
            # releases both, whichever statement failed.
            reader.discard()
            raise

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
                table = TableCopy.from_rows(rows)
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
        self._best_plays = BestPlays(self._reader)
        self._heavy_queue = HeavyQueue(HEAVY_RUNNING, HEAVY_QUEUE_BOUND)

    def _reader(self) -> Reader:
        # Looked up per call: the process's database is built when it starts serving.
        return self._services.database.reads.reader_for()

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
        An uncached window needing heavy work waits its turn; a 503 with Retry-After
        only when more than the queue's bound already wait.
        """
        query: BestPlaysQuery = req.context.query
        best_plays, services = self._best_plays, self._services
        args = (query.mode, query.window, query.limit)
        refreshed_at = await services.read(best_plays.stamp, query.mode)
        # HTTP caching (api_shim.http_cache): fresh until the mode's next rebuild.
        validator = http_cache.bestplays_validator(
            refreshed_at, services.settings.bestplays_refresh_seconds, datetime.now(UTC)
        )
        body = None
        if query.limit <= LIGHT_LIMIT and refreshed_at is not None:
            # Larger bodies take milliseconds to join even from memory: not on the loop.
            body = best_plays.known_body(refreshed_at, *args)
        if body is None:
            try:
                # Loading a rebuilt table or merging month lists would stall every
                # request of this process's event loop.
                body = await services.blocking.run(best_plays.body, *args)
            except HeavyTurnNeeded:
                body = await self._heavy_body(*args)
        # Named by its bytes: a window's exact parts read hiscores as they are, so two
        # processes may answer one window differently between two rebuilds.
        validator = validator.naming(body)
        if not validator.not_modified(req, resp):
            validator.send(resp, body)

    async def _heavy_body(self, mode: int, window: params.DateWindow, limit: int) -> bytes:
        """The body computed in this process's heavy turn, under the server's heavy lock
        (module comment above LIGHT_LIMIT)."""
        deadline = time.monotonic() + HEAVY_WAIT_SECONDS
        try:
            async with self._heavy_queue.turn() as turn:
                while True:
                    try:
                        return await turn.run(
                            self._services.blocking,
                            self._best_plays.body,
                            mode,
                            window,
                            limit,
                            True,
                        )
                    except ServerBusy:
                        if time.monotonic() >= deadline:
                            raise ApiError(503, BUSY_MESSAGE, retry_after=1) from None
                        await asyncio.sleep(HEAVY_POLL_SECONDS)
        except QueueFull:
            raise ApiError(503, BUSY_MESSAGE, retry_after=1) from None

    async def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self.on_get(req, resp)
