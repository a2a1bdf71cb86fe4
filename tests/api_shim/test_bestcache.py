"""The per-process /bestplays caches and the read connection helpers, without services."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest

from api_shim import rankings
from api_shim.bestcache import BodyCache, TableCopy
from api_shim.errors import ApiError
from api_shim.params import Window
from api_shim.reader import Prepared, libpq_dsn

KEYS = ("user", "pp")


def _table(complete: bool) -> TableCopy:
    """Users 1..4 at positions 1..4 (pp descending), score times out of order."""
    stamp = datetime(2020, 1, 1, tzinfo=UTC)
    table_size = 5 if complete else 4
    days = [5, 1, 3, 2]
    rows = [
        (stamp, 4, table_size, datetime(2020, 1, day, tzinfo=UTC), user, 100.0 - user)
        for user, day in enumerate(days, start=1)
    ]
    return TableCopy.from_rows(rows, KEYS)


def _users(body: bytes | None) -> list[int] | None:
    return None if body is None else [play["user"] for play in orjson.loads(body)]


def test_full_table_answers_limits_it_holds_and_windows_with_enough_rows() -> None:
    table = _table(complete=False)
    assert _users(table.answer(Window(), 3)) == [1, 2, 3]
    assert _users(table.answer(Window(), 4)) == [1, 2, 3, 4]
    assert table.answer(Window(), 5) is None
    after_2nd = Window(start=datetime(2020, 1, 2, tzinfo=UTC))
    assert _users(table.answer(after_2nd, 2)) == [1, 3]
    assert _users(table.answer(after_2nd, 3)) == [1, 3, 4]
    # Only three rows inside: a play below the cut-off might be the fourth.
    assert table.answer(after_2nd, 4) is None
    inclusive = Window(datetime(2020, 1, 3, tzinfo=UTC), datetime(2020, 1, 3, tzinfo=UTC))
    assert _users(table.answer(inclusive, 1)) == [3]


def test_complete_table_answers_everything() -> None:
    table = _table(complete=True)
    assert _users(table.answer(Window(), 10)) == [1, 2, 3, 4]
    empty = Window(start=datetime(2021, 1, 1, tzinfo=UTC))
    assert table.answer(empty, 10) == b"[]"


def test_empty_rebuild_has_no_plays() -> None:
    stamp = datetime(2020, 1, 1, tzinfo=UTC)
    table = TableCopy.from_rows([(stamp, 0, 10, None, None, None)], KEYS)
    assert table.complete
    assert table.answer(Window(), 100) == b"[]"


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


class _NoTableReader:
    """No rebuild yet (empty stamp), and no hiscores: every answer is computed live."""

    def fetch(self, sql: object, args: object) -> list[tuple[object, ...]]:
        return []


def test_uncached_windows_beyond_the_slots_are_refused_with_503() -> None:
    best = rankings.BestPlays(_NoTableReader)
    assert best.body(0, Window(), 10) == b"[]"
    for _ in range(rankings.LIVE_QUERY_SLOTS):
        best._live_slots.acquire()
    with pytest.raises(ApiError) as refused:
        best.body(0, Window(), 10)
    assert (refused.value.status, refused.value.retry_after) == (503, 1)
    # Beyond the queue a request is refused without waiting.
    for _ in range(rankings.LIVE_QUERY_SLOTS + rankings.LIVE_QUERY_QUEUE):
        best._live_admitted.acquire()
    started = time.monotonic()
    with pytest.raises(ApiError):
        best.body(0, Window(), 10)
    assert time.monotonic() - started < rankings.LIVE_QUERY_WAIT_SECONDS
    for _ in range(rankings.LIVE_QUERY_SLOTS + rankings.LIVE_QUERY_QUEUE):
        best._live_admitted.release()
    best._live_slots.release()
    assert best.body(0, Window(), 10) == b"[]"
