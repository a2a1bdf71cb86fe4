"""The per-process /bestplays caches and the read connection helpers, without services."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg2
import pytest

from api_shim import queries, ranking_endpoints
from api_shim.bestcache import BodyCache, TableCopy
from api_shim.params import DateWindow
from api_shim.read_connections import Prepared, Reader, libpq_dsn


def _table(complete: bool) -> TableCopy:
    """Users 1..4 at positions 1..4 (pp descending), score times out of order."""
    stamp = datetime(2020, 1, 1, tzinfo=UTC)
    table_size = 5 if complete else 4
    days = [5, 1, 3, 2]
    rows = [
        (
            stamp,
            4,
            table_size,
            datetime(2020, 1, day, tzinfo=UTC),
            orjson.dumps({"user": user, "pp": 100.0 - user}).decode(),
        )
        for user, day in enumerate(days, start=1)
    ]
    return TableCopy.from_rows(rows)


def _users(body: bytes | None) -> list[int] | None:
    return None if body is None else [play["user"] for play in orjson.loads(body)]


def test_full_table_answers_limits_it_holds_and_windows_with_enough_rows() -> None:
    table = _table(complete=False)
    assert _users(table.answer(DateWindow(), 3)) == [1, 2, 3]
    assert _users(table.answer(DateWindow(), 4)) == [1, 2, 3, 4]
    assert table.answer(DateWindow(), 5) is None
    after_2nd = DateWindow(start=datetime(2020, 1, 2, tzinfo=UTC))
    assert _users(table.answer(after_2nd, 2)) == [1, 3]
    assert _users(table.answer(after_2nd, 3)) == [1, 3, 4]
    # Only three rows inside: a play below the cut-off might be the fourth.
    assert table.answer(after_2nd, 4) is None
    inclusive = DateWindow(datetime(2020, 1, 3, tzinfo=UTC), datetime(2020, 1, 3, tzinfo=UTC))
    assert _users(table.answer(inclusive, 1)) == [3]


def test_complete_table_answers_everything() -> None:
    table = _table(complete=True)
    assert _users(table.answer(DateWindow(), 10)) == [1, 2, 3, 4]
    empty = DateWindow(start=datetime(2021, 1, 1, tzinfo=UTC))
    assert table.answer(empty, 10) == b"[]"


def test_empty_rebuild_has_no_plays() -> None:
    stamp = datetime(2020, 1, 1, tzinfo=UTC)
    table = TableCopy.from_rows([(stamp, 0, 10, None, None)])
    assert table.complete
    assert table.answer(DateWindow(), 100) == b"[]"


def test_body_cache_evicts_least_recent_by_count_and_bytes() -> None:
    cache = BodyCache(max_entries=2, max_bytes=10)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"
    cache.put("c", b"1234")
    assert cache.get("b") is None
    assert cache.get("a") == b"1234"
    cache.put("d", b"12345678")
    assert len(cache) == 1
    assert cache.get("d") == b"12345678"
    cache.put("huge", b"x" * 11)
    assert cache.get("huge") is None
    assert cache.get("d") == b"12345678"


def test_prepared_statements_execute_with_one_placeholder_per_parameter() -> None:
    statement = Prepared("q", "SELECT $1 WHERE a = $2 AND b >= $3 AND c <= $4")
    assert statement.execute_sql == "EXECUTE q(%s, %s, %s, %s)"
    assert Prepared("p", "SELECT 1").execute_sql == "EXECUTE p()"


def test_libpq_dsn_drops_the_driver_and_keeps_credentials() -> None:
    url = "postgresql+psycopg2://user:secret@127.0.0.1:5432/osutrack"
    assert libpq_dsn(url) == "postgresql://user:secret@127.0.0.1:5432/osutrack"


class _NoStampReader:
    """A real read connection, but no rebuild yet: every answer is a heavy statement."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def fetch(self, sql: str | Prepared, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        if sql is queries.BESTPLAYS_STAMP:
            return []
        return self._reader.fetch(sql, args)

    def discard(self) -> None:
        self._reader.discard()


class _FailingReleaseReader(_NoStampReader):
    """As `_NoStampReader`, but the release of the heavy slot fails in Postgres (as a
    cancelled statement would), with the session and its lock still alive."""

    def fetch(self, sql: str | Prepared, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        if sql == ranking_endpoints._RELEASE_HEAVY:
            return super().fetch("SELECT 1 / 0", ())
        return super().fetch(sql, args)


NO_PLAYS = DateWindow(datetime(1990, 1, 1, tzinfo=UTC), datetime(1990, 3, 1, tzinfo=UTC))


def test_heavy_statements_take_one_slot_for_the_whole_server(database_url: str) -> None:
    reader = Reader(database_url, 5000)
    best = ranking_endpoints.BestPlays(lambda: _NoStampReader(reader))
    # Heavy work needs the process's turn first; without it nothing heavy runs.
    with pytest.raises(ranking_endpoints.HeavyTurnNeeded):
        best.body(0, NO_PLAYS, 10)
    assert best.body(0, NO_PLAYS, 10, turn=True) == b"[]"
    # The heavy statement's own timeout is undone afterwards.
    assert reader.fetch("SHOW statement_timeout", ()) == [("5s",)]
    # Another API process (another connection) holds the slot: the caller is told to
    # wait (on its event loop, holding no thread), at once.
    holder = psycopg2.connect(libpq_dsn(database_url))
    holder.autocommit = True
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (ranking_endpoints.HEAVY_LOCK_KEY,))
        with pytest.raises(ranking_endpoints.ServerBusy):
            best.body(0, NO_PLAYS, 10, turn=True)
        assert reader.fetch("SHOW statement_timeout", ()) == [("5s",)]
    finally:
        # Unlocked before closing: a closed session's locks go only when its backend ends.
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (ranking_endpoints.HEAVY_LOCK_KEY,))
        holder.close()
    assert best.body(0, NO_PLAYS, 10, turn=True) == b"[]"
    # The slot was released after each statement: another connection can take it.
    other = Reader(database_url, 5000)
    assert other.fetch("SELECT pg_try_advisory_lock(%s)", (ranking_endpoints.HEAVY_LOCK_KEY,)) == [
        (True,)
    ]
    other.fetch("SELECT pg_advisory_unlock(%s)", (ranking_endpoints.HEAVY_LOCK_KEY,))


class _NoTableReader:
    """No rebuild yet (empty stamp), and no hiscores; the slot is always free."""

    def fetch(self, sql: object, args: object) -> list[tuple[object, ...]]:
        if isinstance(sql, str) and "pg_try_advisory_lock" in sql:
            return [(True, "3000")]
        if sql == queries.BEST_PLAYS_LIVE:
            return [("[]",)]  # Postgres's body of no plays
        return []


def test_without_a_rebuild_answers_are_computed_in_the_slot() -> None:
    best = ranking_endpoints.BestPlays(_NoTableReader)
    with pytest.raises(ranking_endpoints.HeavyTurnNeeded):
        best.body(0, DateWindow(), 10)
    assert best.body(0, DateWindow(), 10, turn=True) == b"[]"


def test_a_failed_release_does_not_keep_the_heavy_slot(database_url: str) -> None:
    reader = Reader(database_url, 5000)
    best = ranking_endpoints.BestPlays(lambda: _FailingReleaseReader(reader))
    with pytest.raises(psycopg2.DataError):
        best.body(0, NO_PLAYS, 10, turn=True)
    # The session that held the lock is gone: another API process can take the slot, and
    # this thread's next read runs with the connection's own timeout again.
    other = Reader(database_url, 5000)
    assert other.fetch("SELECT pg_try_advisory_lock(%s)", (ranking_endpoints.HEAVY_LOCK_KEY,)) == [
        (True,)
    ]
    other.fetch("SELECT pg_advisory_unlock(%s)", (ranking_endpoints.HEAVY_LOCK_KEY,))
    assert reader.fetch("SHOW statement_timeout", ()) == [("5s",)]
