"""The per-player bodies built by Postgres equal today's (rows -> orjson) with floats
printed as the original's JSON.stringify printed them, on the same data (real Postgres).

The oracle reads the rows with the row statements and serializes them as the endpoints
did before the bodies moved to Postgres; its floats are then reprinted by the original's
rule. Stored floats include whole numbers, long fractions and values that Postgres prints
unlike JavaScript (1e21, 1e-7, NaN...), for which the body is printed in Python.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from api_shim import player_bodies, queries
from api_shim.js_json import js_number
from api_shim.params import DateWindow
from api_shim.read_connections import Reader
from osutrack.fields import HISCORE_FIELDS, STAT_FIELDS
from osutrack.schema import hiscores, peaks, stats_snapshots

START = datetime(2021, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
# Floats a column can hold: whole, fractional, extreme, and not numbers at all.
FLOATS = (
    120.0,
    98.70355224609375,
    1044.1,
    98.7036,
    0.0,
    -0.0,
    100.0,
    1e21,
    1.5e21,
    1e15,
    999999999999999.9,
    123456789012345680000.0,
    1e-7,
    1.5e-6,
    1e-5,
    0.0001,
    5e-324,
    1.7976931348623157e308,
    math.nan,
    math.inf,
    -3.25,
)
# Users with only ordinary floats, with every kind, and without rows.
ORDINARY, EXTREME, MISSING = 0, 1, 2


def _js_floats(value: Any) -> Any:
    """A parsed body with every float as the original printed it (its text, as a
    Fragment), so serializing it gives the original's bytes."""
    if isinstance(value, list):
        return [_js_floats(item) for item in value]
    if isinstance(value, dict):
        return {key: _js_floats(item) for key, item in value.items()}
    if isinstance(value, float):
        return orjson.Fragment(js_number(value))
    return value


def _original(today: bytes) -> bytes:
    # orjson prints NaN and infinities as null: the parsed body has None there already.
    return orjson.dumps(_js_floats(orjson.loads(today)))


def _today(reader: Reader, read: str, params: tuple[Any, ...]) -> bytes:
    """The body as the endpoints serialized it before: rows -> dicts -> orjson."""
    if read == "peak":
        rows = reader.fetch(queries.PEAK, params)
        peak = dict(zip(queries.PEAK_KEYS, rows[0], strict=True)) if rows else None
        return orjson.dumps([peak or dict.fromkeys(queries.PEAK_KEYS)])
    statement, keys = {
        "stats_history": (queries.STATS_HISTORY, queries.SNAPSHOT_KEYS),
        "hiscores": (queries.USER_HISCORES, queries.HISCORE_KEYS),
    }[read]
    return orjson.dumps(
        [dict(zip(keys, row, strict=True)) for row in reader.fetch(statement, params)]
    )


_user_ids = itertools.count(7_100_001)


@pytest.fixture(scope="module")
def users(db_engine: sa.Engine) -> Iterator[tuple[int, int, int]]:
    ordinary, extreme, missing = next(_user_ids), next(_user_ids), next(_user_ids)
    ordinary_floats = [120.0, 98.70355224609375, 1044.1, 98.7036, 0.0, 100.0, -3.25]
    with db_engine.begin() as connection:
        for user, floats in ((ordinary, ordinary_floats), (extreme, list(FLOATS))):
            for mode in (0, 3):
                snapshots, plays = [], []
                for index, value in enumerate(floats):
                    moment = START + timedelta(days=index, seconds=index * 7)
                    snapshots.append(_snapshot(user, mode, index, moment, value, floats))
                    plays.append(_play(user, mode, index, moment, value))
                connection.execute(stats_snapshots.insert(), snapshots)
                connection.execute(hiscores.insert(), plays)
                connection.execute(
                    peaks.insert(),
                    {
                        "user_id": user,
                        "mode": mode,
                        "best_global_rank": 17,
                        "best_rank_at": START,
                        "best_accuracy": floats[-1 if mode else 1],
                        "best_acc_at": START + timedelta(days=3),
                    },
                )
        # A peak row with only NULL values (no rank nor accuracy ever held).
        connection.execute(peaks.insert(), {"user_id": ordinary, "mode": 1})
    yield ordinary, extreme, missing
    with db_engine.begin() as connection:
        for table in (stats_snapshots, hiscores, peaks):
            connection.execute(table.delete().where(table.c.user_id.in_((ordinary, extreme))))


def _snapshot(
    user: int, mode: int, index: int, moment: datetime, value: float, floats: list[float]
) -> dict[str, Any]:
    return {
        "user_id": user,
        "mode": mode,
        "count300": 1000 + index,
        "count100": 10,
        "count50": 1,
        "playcount": 100 + index,
        "ranked_score": 2**40 + index,
        "total_score": 2**62 + index,
        "pp_rank": 500 - index,
        "level": value,
        "pp_raw": floats[(index + 1) % len(floats)],
        "accuracy": floats[(index + 2) % len(floats)],
        "count_rank_ss": 1,
        "count_rank_s": 2,
        "count_rank_a": 3,
        "captured_at": moment,
    }


def _play(user: int, mode: int, index: int, moment: datetime, value: float) -> dict[str, Any]:
    return {
        "mode": mode,
        "score_id": user * 1000 + mode * 100 + index,
        "user_id": user,
        "beatmap_id": 4000 + index,
        "score": 2**33 + index,
        "pp": value,
        "mods": 64 + index,
        "rank": ("XH", "S", "A", "D")[index % 4],
        "score_time": moment + timedelta(microseconds=index),
        "update_time": moment + timedelta(hours=1),
    }


def _windows() -> Iterator[DateWindow]:
    yield DateWindow(None, None)
    yield DateWindow(START + timedelta(days=2), None)
    yield DateWindow(None, START + timedelta(days=5))
    yield DateWindow(START + timedelta(days=3), START + timedelta(days=9, seconds=63))
    # Empty: before any row, and a window holding none.
    yield DateWindow(None, START - timedelta(days=1))
    yield DateWindow(START + timedelta(hours=1), START + timedelta(hours=2))


@pytest.fixture(scope="module")
def reader(database_url: str) -> Iterator[Reader]:
    reader = Reader(database_url, 5000)
    yield reader
    reader.discard()


@pytest.mark.parametrize("kind", ["stats_history", "hiscores"])
def test_history_bodies_equal_todays_with_the_originals_floats(
    reader: Reader, users: tuple[int, int, int], kind: str
) -> None:
    read = {"stats_history": player_bodies.STATS_HISTORY, "hiscores": player_bodies.HISCORES}[kind]
    compared = 0
    for user, mode, window in itertools.product(users, (0, 1, 3), _windows()):
        params = (user, mode, *queries.window_bounds(window))
        body = player_bodies.cached_body(read, reader, params, None).body
        assert body == _original(_today(reader, kind, params)), (user, mode, window)
        compared += 1
    assert compared == 3 * 3 * 6


def test_history_bodies_hold_every_row_and_field(
    reader: Reader, users: tuple[int, int, int]
) -> None:
    ordinary, extreme, _ = users
    everything = queries.window_bounds(DateWindow(None, None))
    for read, keys in (
        (player_bodies.STATS_HISTORY, (*STAT_FIELDS, "timestamp")),
        (player_bodies.HISCORES, HISCORE_FIELDS),
    ):
        for user, count in ((ordinary, 7), (extreme, len(FLOATS))):
            body = player_bodies.cached_body(read, reader, (user, 0, *everything), None).body
            assert body is not None
            rows = orjson.loads(body)
            assert len(rows) == count
            assert all(tuple(row) == keys for row in rows)


def test_peak_bodies_equal_todays_with_the_originals_floats(
    reader: Reader, users: tuple[int, int, int]
) -> None:
    for user, mode in itertools.product(users, (0, 1, 2, 3)):
        body = player_bodies.cached_body(player_bodies.PEAK, reader, (user, mode), None).body
        assert body == _original(_today(reader, "peak", (user, mode))), (user, mode)


def test_whole_floats_print_without_a_fraction(reader: Reader, users: tuple[int, int, int]) -> None:
    ordinary = users[ORDINARY]
    everything = queries.window_bounds(DateWindow(None, None))
    body = player_bodies.cached_body(
        player_bodies.HISCORES, reader, (ordinary, 0, *everything), None
    ).body
    assert body is not None
    assert b'"pp":120,' in body
    assert b'"pp":98.70355224609375,' in body
    assert b'"pp":0,' in body
    assert b".0," not in body
    extreme = player_bodies.cached_body(
        player_bodies.HISCORES, reader, (users[EXTREME], 0, *everything), None
    ).body
    assert extreme is not None
    for printed in (
        b"1e+21",
        b"1.5e+21",
        b"1000000000000000",
        b"1e-7",
        b"0.0000015",
        b"5e-324",
        b"null",
    ):
        assert b'"pp":' + printed + b"," in extreme, printed
    assert b'"score":8589934592,' in extreme
    history = player_bodies.cached_body(
        player_bodies.STATS_HISTORY, reader, (ordinary, 0, *everything), None
    ).body
    assert history is not None
    assert b'"ranked_score":"1099511627776","total_score":"4611686018427387904"' in history


def test_only_unusual_floats_are_printed_in_python(
    reader: Reader, users: tuple[int, int, int]
) -> None:
    everything = queries.window_bounds(DateWindow(None, None))
    for read in (player_bodies.STATS_HISTORY, player_bodies.HISCORES):
        for user, in_python in ((users[ORDINARY], False), (users[EXTREME], True)):
            needs_python = reader.fetch(read.body, (user, 0, *everything))[0][2]
            assert needs_python is in_python, (read.name, user)
