"""/bestplays answers for any window and limit equal a brute-force ranking of all hiscores.

Runs the shim's own statements (`api_shim.queries`) and its table cache
(`api_shim.rankings.BestPlays`) inside the test's transaction, against a precomputed table
much smaller than the data, so windows are answered both from the table and from hiscores.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api_shim.params import Window
from api_shim.rankings import BestPlays
from api_shim.reader import Prepared
from osutrack.schema import hiscores
from osutrack.timefmt import iso_z
from worker.bestplays import refresh_bestplays

MODE = 2
TABLE_SIZE = 60
START = datetime(2016, 1, 1, tzinfo=UTC)


class SessionReader:
    """The `Reader.fetch` contract on the test's transaction (no PREPARE needed here)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def fetch(self, sql: str | Prepared, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        text = re.sub(r"\$\d+", "%s", sql.sql) if isinstance(sql, Prepared) else sql
        result = self._session.connection().exec_driver_sql(text, tuple(args))
        return [tuple(row) for row in result]


@pytest.fixture
def plays(db_session: Session) -> list[dict[str, Any]]:
    """400 hiscores over two years with repeated pp values and score times (ties)."""
    # Only this test's plays in the mode (integration tests may commit theirs to the same
    # database; the deletion is rolled back with the test).
    db_session.execute(hiscores.delete().where(hiscores.c.mode == MODE))
    rng = random.Random(7)
    rows = []
    for score_id in range(1, 401):
        moment = START + timedelta(days=rng.randint(0, 730), microseconds=rng.choice([0, 999_999]))
        rows.append(
            {
                "mode": MODE,
                "score_id": 10_000 + score_id * rng.choice([1, 3]),
                "user_id": rng.randint(1, 50),
                "beatmap_id": rng.randint(1, 10_000),
                "score": rng.randint(1, 10**8),
                "pp": float(rng.choice([100, 250.5, 300]) + rng.randint(0, 40)),
                "mods": rng.choice([0, 8, 64]),
                "rank": rng.choice(["S", "A", "XH"]),
                "score_time": moment,
                "update_time": moment + timedelta(minutes=5, seconds=rng.randint(0, 59)),
            }
        )
    unique = {row["score_id"]: row for row in rows}
    db_session.execute(hiscores.insert(), list(unique.values()))
    refresh_bestplays(db_session, MODE, TABLE_SIZE, datetime.now(UTC))
    return list(unique.values())


def brute_force(plays: list[dict[str, Any]], window: Window, limit: int) -> list[Any]:
    inside = [
        row
        for row in plays
        if (window.start is None or row["score_time"] >= window.start)
        and (window.end is None or row["score_time"] <= window.end)
    ]
    inside.sort(key=lambda row: (-row["pp"], row["score_time"], row["score_id"]))
    return [
        {
            "user": row["user_id"],
            "beatmap_id": row["beatmap_id"],
            "score": row["score"],
            "pp": row["pp"],
            "mods": row["mods"],
            "rank": row["rank"],
            "score_time": iso_z(row["score_time"]),
            "update_time": iso_z(row["update_time"]),
        }
        for row in inside[:limit]
    ]


def _windows(rng: random.Random) -> list[Window]:
    windows = [Window(), Window(start=START + timedelta(days=700)), Window(end=START)]
    for _ in range(40):
        a = START + timedelta(days=rng.randint(-10, 740), seconds=rng.choice([0, 86399]))
        b = a + timedelta(days=rng.choice([0, 1, 30, 365, 900]))
        windows.append(Window(a, b))
    return windows


def test_every_window_and_limit_matches_brute_force(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    best = BestPlays(lambda: SessionReader(db_session))
    rng = random.Random(11)
    answered_from_table = 0
    for window in _windows(rng):
        for limit in (1, 7, TABLE_SIZE, TABLE_SIZE + 1, 10_000):
            expected = brute_force(plays, window, limit)
            # Twice: the second answer comes from the per-process caches.
            for _ in range(2):
                assert orjson.loads(best.body(MODE, window, limit)) == expected, (window, limit)
            table = best._tables[MODE]
            answered_from_table += table.answer(window, limit) is not None
    assert answered_from_table > 0


def test_without_a_rebuild_hiscores_answer(db_session: Session) -> None:
    moment = datetime(2020, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    db_session.execute(hiscores.delete().where(hiscores.c.mode == 3))
    db_session.execute(
        hiscores.insert(),
        [
            {
                "mode": 3,
                "score_id": 1,
                "user_id": 9,
                "beatmap_id": 2,
                "score": 3,
                "pp": 4.5,
                "mods": 0,
                "rank": "A",
                "score_time": moment,
                "update_time": moment,
            }
        ],
    )
    db_session.execute(sa.text("DELETE FROM bestplays_refreshes WHERE mode = 3"))
    body = orjson.loads(BestPlays(lambda: SessionReader(db_session)).body(3, Window(), 10))
    assert body == [
        {
            "user": 9,
            "beatmap_id": 2,
            "score": 3,
            "pp": 4.5,
            "mods": 0,
            "rank": "A",
            "score_time": "2020-05-01T12:00:00.000Z",
            "update_time": "2020-05-01T12:00:00.000Z",
        }
    ]


def _table(db_session: Session) -> dict[int, tuple[str, int]]:
    rows = db_session.execute(
        sa.text("SELECT position, ctid::text, score_id FROM bestplays WHERE mode = :m"),
        {"m": MODE},
    )
    return {row.position: (row.ctid, row.score_id) for row in rows}


def test_a_refresh_rewrites_only_the_positions_that_changed(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    before = _table(db_session)
    refresh_bestplays(db_session, MODE, TABLE_SIZE, datetime.now(UTC))
    assert _table(db_session) == before
    # A play with a pp between two neighbours' enters at position k and shifts only k..60.
    k = next(k for k in range(50, TABLE_SIZE) if plays_pp(plays, k) > plays_pp(plays, k + 1))
    k += 1
    entering = dict(
        plays[0], score_id=999_999, pp=(plays_pp(plays, k - 1) + plays_pp(plays, k)) / 2
    )
    db_session.execute(hiscores.insert(), [entering])
    refresh_bestplays(db_session, MODE, TABLE_SIZE, datetime.now(UTC))
    after = _table(db_session)
    assert {p: after[p] for p in range(1, k)} == {p: before[p] for p in range(1, k)}
    assert after[k][1] == 999_999
    assert all(after[p][0] != before[p][0] for p in range(k, TABLE_SIZE + 1))
    assert list(after) == sorted(before)
    expected = brute_force([*plays, entering], Window(), TABLE_SIZE)
    best = BestPlays(lambda: SessionReader(db_session))
    assert orjson.loads(best.body(MODE, Window(), TABLE_SIZE)) == expected


def plays_pp(plays: list[dict[str, Any]], position: int) -> float:
    ranked = sorted(plays, key=lambda row: (-row["pp"], row["score_time"], row["score_id"]))
    return float(ranked[position - 1]["pp"])
