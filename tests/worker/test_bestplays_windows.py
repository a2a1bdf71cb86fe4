"""/bestplays answers for any window and limit equal a brute-force ranking of all hiscores.

Runs the shim's own statements (`api_shim.queries`) and its table cache
(`api_shim.ranking_endpoints.BestPlays`) inside the test's transaction, against a precomputed table
and per-month lists much smaller than the data, so windows are answered from the table,
from merged month lists, from hiscores, and from mixes of lists and exact edge parts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg2
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api_shim.params import DateWindow
from api_shim.ranking_endpoints import HEAVY_LOCK_KEY, BestPlays, HeavyTurnNeeded, ServerBusy
from api_shim.read_connections import Prepared, libpq_dsn
from osutrack.month_lists import SKETCH_POSITIONS
from osutrack.schema import (
    bestplays_month_changes,
    bestplays_month_lists,
    bestplays_months,
    hiscores,
)
from osutrack.timefmt import iso_z
from worker.bestplays import rebuild_bestplays, rebuild_month_lists

MODE = 2
TABLE_SIZE = 60
# Months hold about 16 plays each: lists of 8 leave most months incomplete (exact only down
# to their cut-off), a few complete.
LIST_SIZE = 8
START = datetime(2016, 1, 1, tzinfo=UTC)
# No play is dated in this month: an empty month inside the data's span.
EMPTY_MONTH = datetime(2016, 5, 1, tzinfo=UTC)


class SessionReader:
    """The `Reader.fetch` contract on the test's transaction (no PREPARE needed here)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def fetch(self, sql: str | Prepared, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        if isinstance(sql, Prepared):
            # `$n` may repeat: bind by name.
            text = re.sub(r"\$(\d+)", r"%(p\1)s", sql.sql)
            named = {f"p{n}": value for n, value in enumerate(args, start=1)}
            result = self._session.connection().exec_driver_sql(text, named)
        else:
            result = self._session.connection().exec_driver_sql(sql, tuple(args))
        return [tuple(row) for row in result]


@pytest.fixture
def plays(db_session: Session) -> list[dict[str, Any]]:
    """400 hiscores over two years with repeated pp values and score times (ties)."""
    # Only this test's plays and lists in the mode (integration tests may commit theirs,
    # and beat its month lists, to the same database; the deletions are rolled back with
    # the test). The change log goes last: deleting the plays logs their months.
    db_session.execute(hiscores.delete().where(hiscores.c.mode == MODE))
    for table in (bestplays_months, bestplays_month_lists, bestplays_month_changes):
        db_session.execute(table.delete().where(table.c.mode == MODE))
    rng = random.Random(7)
    rows = []
    for score_id in range(1, 401):
        moment = START + timedelta(days=rng.randint(0, 730), microseconds=rng.choice([0, 999_999]))
        if EMPTY_MONTH <= moment < datetime(2016, 6, 1, tzinfo=UTC):
            moment += timedelta(days=31)
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
    rebuild(db_session)
    return list(unique.values())


def rebuild(db_session: Session, max_new_months: int = 1000) -> int:
    """Beat's refresh of the mode: month lists then table; the months rebuilt."""
    now = datetime.now(UTC)
    done = rebuild_month_lists(db_session, MODE, LIST_SIZE, now, max_new_months)
    rebuild_bestplays(db_session, MODE, TABLE_SIZE, now)
    return done.months


def answer(best: BestPlays, mode: int, window: DateWindow, limit: int) -> bytes:
    """As the endpoint asks: without a heavy turn first, in one when the body needs it."""
    try:
        return best.body(mode, window, limit)
    except HeavyTurnNeeded:
        return best.body(mode, window, limit, turn=True)


def original_body(rows: list[dict[str, Any]]) -> bytes:
    """The oracle for a body: the rows serialized as the shim did before Postgres built
    them (orjson), with whole-number floats printed as the original's JSON.stringify does
    (`264`, not `264.0`; osu! pp lies where JavaScript prints no exponent)."""
    return orjson.dumps(
        [
            {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in row.items()}
            for row in rows
        ]
    )


def brute_force(plays: list[dict[str, Any]], window: DateWindow, limit: int) -> list[Any]:
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


def _month(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


TICK = timedelta(microseconds=1)

# Windows on month boundaries: whole months, one month, across boundaries by a microsecond,
# inside one month, the empty month, and windows reaching past the data.
BOUNDARY_WINDOWS = [
    DateWindow(_month(2016, 3), _month(2016, 4) - TICK),
    DateWindow(_month(2016, 3), _month(2017, 3) - TICK),
    DateWindow(_month(2016, 3) - TICK, _month(2016, 4)),
    DateWindow(_month(2016, 3) + TICK, _month(2016, 4) - 2 * TICK),
    DateWindow(_month(2016, 7) + timedelta(days=3), _month(2016, 7) + timedelta(days=20)),
    DateWindow(_month(2016, 7) + timedelta(days=12), _month(2016, 9) + timedelta(days=2)),
    DateWindow(EMPTY_MONTH, _month(2016, 6) - TICK),
    DateWindow(EMPTY_MONTH + timedelta(days=4), _month(2016, 6) + timedelta(days=4)),
    DateWindow(_month(2016, 4), _month(2016, 7) - TICK),
    DateWindow(_month(2015, 11), _month(2016, 2) - TICK),
    DateWindow(_month(2017, 10), _month(2018, 6)),
    DateWindow(start=_month(2017, 6)),
    DateWindow(end=_month(2016, 9) - TICK),
    DateWindow(_month(2014, 1), _month(2015, 1)),
]


def _windows(rng: random.Random) -> list[DateWindow]:
    windows = [DateWindow(), DateWindow(start=START + timedelta(days=700)), DateWindow(end=START)]
    windows += BOUNDARY_WINDOWS
    for _ in range(40):
        a = START + timedelta(days=rng.randint(-10, 740), seconds=rng.choice([0, 86399]))
        b = a + timedelta(days=rng.choice([0, 1, 30, 45, 65, 365, 900]))
        windows.append(DateWindow(a, b))
    return windows


def assert_every_window_matches(db_session: Session, plays: list[dict[str, Any]]) -> int:
    """Every window and limit against brute force; how many the table answered."""
    best = BestPlays(lambda: SessionReader(db_session))
    rng = random.Random(11)
    answered_from_table = 0
    for window in _windows(rng):
        for limit in (1, 7, LIST_SIZE, LIST_SIZE + 1, TABLE_SIZE, TABLE_SIZE + 1, 10_000):
            expected = brute_force(plays, window, limit)
            # Twice: the second answer comes from the per-process caches.
            for _ in range(2):
                assert answer(best, MODE, window, limit) == original_body(expected), (window, limit)
            table = best._tables[MODE]
            answered_from_table += table.answer(window, limit) is not None
    return answered_from_table


def test_every_window_and_limit_matches_brute_force(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    assert assert_every_window_matches(db_session, plays) > 0


def test_months_not_built_yet_are_answered_from_hiscores(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    db_session.execute(sa.text("DELETE FROM bestplays_month_lists WHERE mode = :m"), {"m": MODE})
    db_session.execute(sa.text("DELETE FROM bestplays_months WHERE mode = :m"), {"m": MODE})
    # The first build, spread over runs: 5 months (the newest) now, the rest never.
    assert rebuild(db_session, max_new_months=5) == 5
    built = _month_lists(db_session)
    assert len(built) == 5
    assert max(built) == max(month_of(row) for row in plays)
    assert_every_window_matches(db_session, plays)


def month_of(row: dict[str, Any]) -> datetime:
    moment = row["score_time"]
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def _month_lists(db_session: Session) -> dict[datetime, int]:
    rows = db_session.execute(
        sa.text("SELECT month, row_count FROM bestplays_month_lists WHERE mode = :m"),
        {"m": MODE},
    )
    return {row.month: row.row_count for row in rows}


def _list_rows(db_session: Session) -> dict[tuple[datetime, int], tuple[str, int]]:
    """Each list row by (month, rank in /bestplays order): its physical place and play."""
    rows = db_session.execute(
        sa.text(
            "SELECT month, row_number() OVER (PARTITION BY month"
            " ORDER BY pp DESC, score_time, score_id) AS position, ctid::text, score_id"
            " FROM bestplays_months WHERE mode = :m"
        ),
        {"m": MODE},
    )
    return {(row.month, row.position): (row.ctid, row.score_id) for row in rows}


def test_month_lists_hold_each_months_top_plays(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    lists = _month_lists(db_session)
    months = {month_of(row) for row in plays}
    # Every month of the span is built, the empty one with no rows.
    assert EMPTY_MONTH not in months
    assert lists[EMPTY_MONTH] == 0
    assert set(lists) == months | {EMPTY_MONTH}
    stored = _list_rows(db_session)
    for month in months:
        inside = DateWindow(month, (month + timedelta(days=32)).replace(day=1) - TICK)
        expected = [row["score_id"] for row in _ranked(plays, inside)][:LIST_SIZE]
        assert lists[month] == len(expected)
        assert [stored[(month, p)][1] for p in range(1, len(expected) + 1)] == expected
    # Each list's summary: its last play's sort key, and the pp at each sketch position.
    summaries = db_session.execute(
        sa.text(
            "SELECT month, last_pp, last_score_time, last_score_id, sketch_pp"
            " FROM bestplays_month_lists WHERE mode = :m"
        ),
        {"m": MODE},
    )
    for row in summaries:
        inside = DateWindow(row.month, (row.month + timedelta(days=32)).replace(day=1) - TICK)
        listed = _ranked(plays, inside)[:LIST_SIZE]
        last = (
            (listed[-1]["pp"], listed[-1]["score_time"], listed[-1]["score_id"]) if listed else None
        )
        assert (last or (None, None, None)) == (row.last_pp, row.last_score_time, row.last_score_id)
        sketch = [listed[p - 1]["pp"] for p in SKETCH_POSITIONS if p <= len(listed)]
        assert row.sketch_pp == sketch


def test_a_play_entering_a_full_list_writes_itself_and_the_play_it_pushes_out(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    full = _full_lists(db_session)
    month = sorted(full)[4]
    before = _list_rows(db_session)
    best_pp = max(row["pp"] for row in plays if month_of(row) == month)
    # At the top of its month: every listed play moves down a rank.
    entering = _new_play(plays[0], 700_003, best_pp + 1, month + timedelta(days=1))
    db_session.execute(hiscores.insert(), [entering])
    now = datetime.now(UTC)
    done = rebuild_month_lists(db_session, MODE, LIST_SIZE, now, 1000)
    assert (done.months, done.written, done.removed) == (1, 1, 1)
    rebuild_bestplays(db_session, MODE, TABLE_SIZE, now)
    after = _list_rows(db_session)
    assert after[(month, 1)][1] == 700_003
    # The plays that stayed were not written: same physical rows, one rank lower.
    for rank in range(1, LIST_SIZE):
        assert after[(month, rank + 1)] == before[(month, rank)]
    assert_every_window_matches(db_session, [*plays, entering])


def _ranked(plays: list[dict[str, Any]], window: DateWindow) -> list[dict[str, Any]]:
    inside = [
        row
        for row in plays
        if (window.start is None or row["score_time"] >= window.start)
        and (window.end is None or row["score_time"] <= window.end)
    ]
    return sorted(inside, key=lambda row: (-row["pp"], row["score_time"], row["score_id"]))


def test_stale_month_lists_are_rebuilt_for_the_months_that_changed_only(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    before = _list_rows(db_session)
    assert rebuild(db_session) == 0, "nothing changed: no month is ranked again"
    assert _list_rows(db_session) == before
    ranked = _ranked(plays, DateWindow())
    # Three months change: a new best play in one, the best play of another deleted (a
    # deleted user), and a pp change (a rework) in a third.
    newcomer = dict(ranked[0], score_id=888_888, pp=ranked[0]["pp"] + 1)
    deleted = next(row for row in ranked if month_of(row) != month_of(newcomer))
    reworked = next(
        row for row in ranked if month_of(row) not in (month_of(newcomer), month_of(deleted))
    )
    db_session.execute(hiscores.insert(), [newcomer])
    db_session.execute(
        hiscores.delete().where(hiscores.c.mode == MODE, hiscores.c.score_id == deleted["score_id"])
    )
    db_session.execute(
        hiscores.update()
        .where(hiscores.c.mode == MODE, hiscores.c.score_id == reworked["score_id"])
        .values(pp=1.0)
    )
    changed = {month_of(newcomer), month_of(deleted), month_of(reworked)}
    # Until the next refresh the lists are the months as of the previous one.
    assert _list_rows(db_session) == before
    assert rebuild(db_session) == 3
    after = _list_rows(db_session)
    assert {key: value for key, value in after.items() if key[0] not in changed} == {
        key: value for key, value in before.items() if key[0] not in changed
    }
    assert after[(month_of(newcomer), 1)][1] == 888_888
    listed = {score_id for _, score_id in after.values()}
    assert deleted["score_id"] not in listed
    current = [
        *(row for row in plays if row["score_id"] != deleted["score_id"] and row is not reworked),
        newcomer,
        dict(reworked, pp=1.0),
    ]
    assert_every_window_matches(db_session, current)


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
    body = orjson.loads(answer(BestPlays(lambda: SessionReader(db_session)), 3, DateWindow(), 10))
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
    rebuild_bestplays(db_session, MODE, TABLE_SIZE, datetime.now(UTC))
    assert _table(db_session) == before
    # A play with a pp between two neighbours' enters at position k and shifts only k..60.
    k = next(k for k in range(50, TABLE_SIZE) if plays_pp(plays, k) > plays_pp(plays, k + 1))
    k += 1
    entering = dict(
        plays[0], score_id=999_999, pp=(plays_pp(plays, k - 1) + plays_pp(plays, k)) / 2
    )
    db_session.execute(hiscores.insert(), [entering])
    rebuild_bestplays(db_session, MODE, TABLE_SIZE, datetime.now(UTC))
    after = _table(db_session)
    assert {p: after[p] for p in range(1, k)} == {p: before[p] for p in range(1, k)}
    assert after[k][1] == 999_999
    assert all(after[p][0] != before[p][0] for p in range(k, TABLE_SIZE + 1))
    assert list(after) == sorted(before)
    expected = brute_force([*plays, entering], DateWindow(), TABLE_SIZE)
    best = BestPlays(lambda: SessionReader(db_session))
    assert orjson.loads(answer(best, MODE, DateWindow(), TABLE_SIZE)) == expected


def plays_pp(plays: list[dict[str, Any]], position: int) -> float:
    ranked = sorted(plays, key=lambda row: (-row["pp"], row["score_time"], row["score_id"]))
    return float(ranked[position - 1]["pp"])


def test_small_month_list_merges_need_no_heavy_slot(
    db_session: Session, plays: list[dict[str, Any]], database_url: str
) -> None:
    best = BestPlays(lambda: SessionReader(db_session))
    holder = psycopg2.connect(libpq_dsn(database_url))
    holder.autocommit = True
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (HEAVY_LOCK_KEY,))
        # Whole months whose lists hold `limit` rows each: a merge of lists only.
        whole_year = DateWindow(_month(2016, 3), _month(2017, 3) - TICK)
        body = best.body(MODE, whole_year, LIST_SIZE)
        assert orjson.loads(body) == brute_force(plays, whole_year, LIST_SIZE)
        # A body of more than LIGHT_LIMIT plays is heavy work: it needs the process's
        # turn, then the server's slot.
        with pytest.raises(HeavyTurnNeeded):
            best.body(MODE, whole_year, 10_000)
        with pytest.raises(ServerBusy):
            best.body(MODE, whole_year, 10_000, turn=True)
    finally:
        # Unlocked before closing: a closed session's locks go only when its backend ends.
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (HEAVY_LOCK_KEY,))
        holder.close()
    assert orjson.loads(best.body(MODE, whole_year, 10_000, turn=True)) == brute_force(
        plays, whole_year, 10_000
    )


def _full_lists(db_session: Session) -> dict[datetime, tuple[float, datetime]]:
    """Each full month list's last play: (pp, score time)."""
    rows = db_session.execute(
        sa.text(
            "SELECT month, last_pp, last_score_time FROM bestplays_month_lists"
            " WHERE mode = :m AND row_count = list_size"
        ),
        {"m": MODE},
    )
    return {row.month: (row.last_pp, row.last_score_time) for row in rows}


def _new_play(
    template: dict[str, Any], score_id: int, pp: float, moment: datetime
) -> dict[str, Any]:
    return dict(template, score_id=score_id, pp=pp, score_time=moment, update_time=moment)


def test_plays_below_every_full_lists_last_play_rank_no_month_again(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    full = _full_lists(db_session)
    assert len(full) > 10
    before = _list_rows(db_session)
    # One new play per full month, each just below that list's last play (a new player
    # whose plays span the years).
    low = [
        _new_play(plays[0], 700_000 + n, last_pp - 0.5, month + timedelta(days=2))
        for n, (month, (last_pp, _)) in enumerate(sorted(full.items()))
    ]
    db_session.execute(hiscores.insert(), low)
    assert rebuild(db_session) == 0
    assert _list_rows(db_session) == before
    assert assert_every_window_matches(db_session, [*plays, *low]) > 0
    # A list that is not full holds every play of its month: any new play ranks it again.
    assert _month_lists(db_session)[EMPTY_MONTH] == 0
    lonely = _new_play(plays[0], 799_999, 1.0, EMPTY_MONTH + timedelta(days=3))
    db_session.execute(hiscores.insert(), [lonely])
    assert rebuild(db_session) == 1
    assert _month_lists(db_session)[EMPTY_MONTH] == 1
    assert_every_window_matches(db_session, [*plays, *low, lonely])


def test_a_play_above_a_full_lists_last_play_ranks_that_month_only(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    full = _full_lists(db_session)
    month, (last_pp, _) = sorted(full.items())[3]
    entering = _new_play(plays[0], 700_001, last_pp + 0.5, month + timedelta(days=2))
    db_session.execute(hiscores.insert(), [entering])
    assert rebuild(db_session) == 1
    assert 700_001 in {score_id for _, score_id in _list_rows(db_session).values()}
    assert_every_window_matches(db_session, [*plays, entering])


def test_a_listed_play_whose_pp_falls_below_the_last_ranks_its_month_again(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    # A month with more plays than its list: the fallen play leaves the list.
    month = sorted(
        month
        for month in _full_lists(db_session)
        if sum(month_of(row) == month for row in plays) > LIST_SIZE
    )[2]
    # Only the update's old image is at or above the cut-off: the new one is below it.
    listed_id = _list_rows(db_session)[(month, 1)][1]
    db_session.execute(
        hiscores.update()
        .where(hiscores.c.mode == MODE, hiscores.c.score_id == listed_id)
        .values(pp=1.0)
    )
    assert rebuild(db_session) == 1
    assert listed_id not in {score_id for _, score_id in _list_rows(db_session).values()}
    current = [dict(row, pp=1.0) if row["score_id"] == listed_id else row for row in plays]
    assert_every_window_matches(db_session, current)


def test_deleting_a_play_below_a_full_lists_last_play_ranks_no_month_again(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    full = _full_lists(db_session)
    below = next(
        row for row in plays if month_of(row) in full and row["pp"] < full[month_of(row)][0]
    )
    before = _list_rows(db_session)
    db_session.execute(
        hiscores.delete().where(hiscores.c.mode == MODE, hiscores.c.score_id == below["score_id"])
    )
    assert rebuild(db_session) == 0
    assert _list_rows(db_session) == before
    assert_every_window_matches(db_session, [row for row in plays if row is not below])


def test_a_play_tied_with_a_full_lists_last_play_ranks_that_month_again(
    db_session: Session, plays: list[dict[str, Any]]
) -> None:
    # Equal pp, earlier score time: the new play comes before the last listed one.
    month, (last_pp, _) = next(
        (month, last) for month, last in sorted(_full_lists(db_session).items()) if last[1] > month
    )
    tied = _new_play(plays[0], 700_002, last_pp, month)
    db_session.execute(hiscores.insert(), [tied])
    assert rebuild(db_session) == 1
    assert 700_002 in {score_id for _, score_id in _list_rows(db_session).values()}
    assert_every_window_matches(db_session, [*plays, tied])


# pp values whose shortest text is long, whole, tiny or large for a play: the bodies
# Postgres prints must be byte-identical to the rows serialized in Python.
AWKWARD_PP = (264.0, 98.70355224609375, 1044.1, 0.1 + 0.2, 1000 / 3, 0.5, 0.0001, 1200.0, 7e-3)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_bodies_are_the_rows_as_the_original_printed_them(db_session: Session, mode: int) -> None:
    db_session.execute(hiscores.delete().where(hiscores.c.mode == mode))
    for table in (bestplays_months, bestplays_month_lists, bestplays_month_changes):
        db_session.execute(table.delete().where(table.c.mode == mode))
    rng = random.Random(mode)
    rows = []
    for score_id in range(1, 121):
        moment = START + timedelta(days=rng.randint(0, 400), seconds=rng.randint(0, 86399))
        rows.append(
            {
                "mode": mode,
                "score_id": score_id,
                "user_id": rng.randint(1, 30),
                "beatmap_id": rng.randint(1, 10**7),
                "score": rng.randint(1, 10**9),
                "pp": rng.choice(AWKWARD_PP) * rng.choice([1, 1, 3, 10]),
                "mods": rng.choice([0, 8, 64, 1 << 30]),
                "rank": rng.choice(["S", "A", "XH", "D"]),
                "score_time": moment,
                "update_time": moment + timedelta(hours=1),
            }
        )
    db_session.execute(hiscores.insert(), rows)
    best = BestPlays(lambda: SessionReader(db_session))
    windows = [DateWindow(), *BOUNDARY_WINDOWS, *_windows(random.Random(mode))[:15]]
    # Before any rebuild (from hiscores), then from the table and the month lists.
    for rebuilt in (False, True):
        if rebuilt:
            now = datetime.now(UTC)
            rebuild_month_lists(db_session, mode, LIST_SIZE, now, 1000)
            rebuild_bestplays(db_session, mode, TABLE_SIZE, now)
        else:
            db_session.execute(
                sa.text("DELETE FROM bestplays_refreshes WHERE mode = :m"), {"m": mode}
            )
        for window in windows:
            for limit in (1, LIST_SIZE + 1, TABLE_SIZE + 1, 10_000):
                expected = original_body(brute_force(rows, window, limit))
                assert answer(best, mode, window, limit) == expected, (rebuilt, window, limit)
