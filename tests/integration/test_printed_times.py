"""`from`/`to` select by the times as printed (whole seconds), through the real API.

Rows are stored with microseconds; each test writes rows a few microseconds either side of
whole seconds into Postgres (committed, so the API process sees them), then asks the API
with the printed values and with fractional bounds between them. A row must come back
exactly when its printed time lies within [from, to].
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Stack

from osutrack.schema import hiscores, stats_snapshots

pytestmark = pytest.mark.integration

SECOND = datetime(2026, 12, 3, 15, 7, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
# Either side of three whole seconds; the middle second holds three rows.
STORED = [
    SECOND - US,
    SECOND,
    SECOND + timedelta(microseconds=500_000),
    SECOND + timedelta(seconds=1) - US,
    SECOND + timedelta(seconds=1, microseconds=1),
]
# Bounds that are not printed values: between, on and just off whole seconds.
FRACTIONAL_BOUNDS = [
    "2026-12-03T15:07:00.999999Z",
    "2026-12-03T15:07:01.000001Z",
    "2026-12-03T15:07:01.400Z",
    "2026-12-03T15:07:01.500Z",
    "2026-12-03T15:07:01.999999Z",
    "2026-12-03T15:07:02.000001Z",
]


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _expected(
    rows: list[dict[str, Any]], key: str, lower: str | None, upper: str | None
) -> list[dict[str, Any]]:
    """The rows whose printed `key` lies within [lower, upper], in their order."""
    return [
        row
        for row in rows
        if (lower is None or _parse(row[key]) >= _parse(lower))
        and (upper is None or _parse(row[key]) <= _parse(upper))
    ]


def _bound_pairs(printed: list[str]) -> Iterator[tuple[str | None, str | None]]:
    values: list[str | None] = [None, *sorted(set(printed)), *FRACTIONAL_BOUNDS]
    for lower in values:
        for upper in values:
            if lower is None or upper is None or _parse(lower) <= _parse(upper):
                yield lower, upper


def _window(lower: str | None, upper: str | None) -> dict[str, str]:
    params = {}
    if lower is not None:
        params["from"] = lower
    if upper is not None:
        params["to"] = upper
    return params


# Ids of their own rather than `new_user_id`'s: taking from that shared sequence would
# change which simulated player every later integration test gets.
_user_ids = itertools.count(3_000_001)


@pytest.fixture
def user(db_engine: sa.Engine) -> Iterator[int]:
    """A fresh user id whose rows are deleted after the test."""
    user_id = next(_user_ids)
    yield user_id
    with db_engine.begin() as connection:
        connection.execute(stats_snapshots.delete().where(stats_snapshots.c.user_id == user_id))
        connection.execute(hiscores.delete().where(hiscores.c.user_id == user_id))


def _snapshot(user_id: int, index: int, moment: datetime) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "mode": 0,
        "count300": 1000 + index,
        "count100": 10,
        "count50": 1,
        "playcount": 100 + index,
        "ranked_score": 5000,
        "total_score": 9000,
        "pp_rank": 500 - index,
        "level": 50.5,
        "pp_raw": 1000.25,
        "accuracy": 98.5,
        "count_rank_ss": 1,
        "count_rank_s": 2,
        "count_rank_a": 3,
        "captured_at": moment,
    }


def test_stats_history_selects_by_the_printed_time(
    v2_stack: Stack, db_engine: sa.Engine, user: int
) -> None:
    with db_engine.begin() as connection:
        connection.execute(
            stats_snapshots.insert(),
            [_snapshot(user, index, moment) for index, moment in enumerate(STORED)],
        )
    rows = v2_stack.get("/stats_history", user=user, mode=0).json()
    assert [row["playcount"] for row in rows] == [100 + i for i in range(len(STORED))]
    printed = [row["timestamp"] for row in rows]
    assert sorted(set(printed)) == [
        "2026-12-03T15:07:00.000Z",
        "2026-12-03T15:07:01.000Z",
        "2026-12-03T15:07:02.000Z",
    ]
    for lower, upper in _bound_pairs(printed):
        answer = v2_stack.get("/stats_history", user=user, mode=0, **_window(lower, upper))
        assert answer.status_code == 200, (lower, upper)
        assert answer.json() == _expected(rows, "timestamp", lower, upper), (lower, upper)
    # The case of the issue: the printed time as both bounds finds its rows.
    one = v2_stack.get(
        "/stats_history", user=user, mode=0, **{"from": printed[1], "to": printed[1]}
    ).json()
    assert [row["playcount"] for row in one] == [101, 102, 103]


def test_hiscores_select_by_the_printed_score_time(
    v2_stack: Stack, db_engine: sa.Engine, user: int
) -> None:
    mode = 1
    with db_engine.begin() as connection:
        connection.execute(
            hiscores.insert(),
            [
                {
                    "mode": mode,
                    "score_id": user * 100 + index,
                    "user_id": user,
                    "beatmap_id": 70_000 + index,
                    "score": 1_000_000 + index,
                    "pp": 100.5 + index,
                    "mods": 0,
                    "rank": "A",
                    "score_time": moment,
                    "update_time": moment,
                }
                for index, moment in enumerate(STORED)
            ],
        )
    rows = v2_stack.get("/hiscores", user=user, mode=mode).json()
    assert [row["beatmap_id"] for row in rows] == [70_000 + i for i in range(len(STORED))]
    printed = [row["score_time"] for row in rows]
    for lower, upper in _bound_pairs(printed):
        answer = v2_stack.get("/hiscores", user=user, mode=mode, **_window(lower, upper))
        assert answer.status_code == 200, (lower, upper)
        assert answer.json() == _expected(rows, "score_time", lower, upper), (lower, upper)
    # /bestplays reads lists beat rebuilds, so these rows may not be there yet; whatever it
    # answers must still lie within the window as printed.
    for lower, upper in itertools.pairwise(FRACTIONAL_BOUNDS):
        best = v2_stack.get("/bestplays", mode=mode, limit=10000, **_window(lower, upper))
        assert best.status_code == 200, (lower, upper, best.text)
        assert best.json() == _expected(best.json(), "score_time", lower, upper), (lower, upper)


def test_an_update_is_found_with_its_printed_time(v2_stack: Stack, user: int) -> None:
    assert v2_stack.post_update(user, 0).json()["first"] is True
    (row,) = v2_stack.get("/stats_history", user=user, mode=0).json()
    printed = row["timestamp"]
    assert printed.endswith(".000Z")
    same = v2_stack.get("/stats_history", user=user, mode=0, **{"from": printed, "to": printed})
    assert same.json() == [row]
    later = (_parse(printed) + timedelta(milliseconds=1)).isoformat().replace("+00:00", "Z")
    assert v2_stack.get("/stats_history", user=user, mode=0, **{"from": later}).json() == []
    assert v2_stack.get("/stats_history", user=user, mode=0, **{"to": later}).json() == [row]
