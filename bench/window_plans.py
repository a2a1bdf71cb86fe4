"""Single-statement cost of /bestplays windows: one statement on hiscores vs the month lists.

Run: `.venv/bin/python -m bench.window_plans --database-url URL [--mode 0] [--repeat 5]
[--plans]`

For each window (a day, a month across a month boundary, three months, a year, ten years,
a window inside one month) and limit (10000, 100), with the read connections' own settings
(`api_shim.read_connections.Reader`: jit off, no parallel workers):

- `one statement`: the Execution Time of EXPLAIN ANALYZE of `queries.BEST_PLAYS_LIVE`
  (the statement every uncovered window ran before the month lists), and the wall time
  of building the body with it (`ranking_endpoints.live_best_plays`);
- `month lists`: the Execution Time of the first merge statement, and the wall time of
  `BestPlays._window_body` (the month-list lookup, the merge, and the exact retry when
  the lists could not tell): what an uncached window costs now.

Medians of `--repeat` runs, warm cache. Read-only: the month lists must have been built
(`--build` builds them first, committing, and prints how long that took).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from api_shim import queries, windows
from api_shim.params import DateWindow
from api_shim.ranking_endpoints import BestPlays, live_best_plays
from api_shim.read_connections import Reader
from worker.bestplays import rebuild_month_lists

END_OF_DAY = (23, 59, 59, 999999)


def _window(a: str, b: str) -> DateWindow:
    start = datetime.fromisoformat(a).replace(tzinfo=UTC)
    end = datetime.fromisoformat(b).replace(tzinfo=UTC)
    return DateWindow(start, end.replace(hour=23, minute=59, second=59, microsecond=999999))


WINDOWS = {
    "one day": _window("2021-06-15", "2021-06-15"),
    "inside one month (15 days)": _window("2021-06-10", "2021-06-24"),
    "one month (Jun 15 - Jul 15)": _window("2021-06-15", "2021-07-15"),
    "calendar month": _window("2021-06-01", "2021-06-30"),
    "three months": _window("2021-06-15", "2021-09-14"),
    "one year": _window("2021-06-15", "2022-06-14"),
    "one year, older": _window("2017-03-10", "2018-03-09"),
    "ten years": _window("2016-11-01", "2026-10-31"),
}

# For a mode whose plays are as dense per month as the large data set (about 170,000 a
# month) but span only January to June 2020: see `--dense`.
DENSE_WINDOWS = {
    "one day": _window("2020-03-15", "2020-03-15"),
    "one week": _window("2020-03-10", "2020-03-16"),
    "inside one month (15 days)": _window("2020-03-10", "2020-03-24"),
    "one month (Mar 15 - Apr 15)": _window("2020-03-15", "2020-04-15"),
    "calendar month": _window("2020-04-01", "2020-04-30"),
    "six weeks": _window("2020-03-10", "2020-04-20"),
    "three months": _window("2020-02-15", "2020-05-14"),
}


def _execution_ms(reader: Reader, sql: str, args: tuple[Any, ...]) -> float:
    rows = reader.fetch("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, args)
    return float(rows[0][0][0]["Execution Time"])


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--mode", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--build", action="store_true", help="build the month lists first")
    parser.add_argument(
        "--rebuild", action="store_true", help="drop the mode's month lists, then build them"
    )
    parser.add_argument("--list-size", type=int, default=10000)
    parser.add_argument(
        "--dense",
        action="store_true",
        help="windows in 2020-01..06, for a mode filled by bench/dense_mode.sql",
    )
    parser.add_argument("--plans", action="store_true", help="print the merge plans")
    parser.add_argument(
        "--refresh-cost",
        type=int,
        default=0,
        metavar="N",
        help="time the month-list rebuild after N new plays in the newest month (written,"
        " then deleted again)",
    )
    args = parser.parse_args()

    if args.build or args.rebuild:
        engine = create_engine(args.database_url)
        if args.rebuild:
            with engine.begin() as connection:
                connection.execute(
                    text("DELETE FROM bestplays_month_lists WHERE mode = :m"), {"m": args.mode}
                )
        started = time.perf_counter()
        built = 0
        while True:
            with Session(engine) as session, session.begin():
                done = rebuild_month_lists(
                    session, args.mode, args.list_size, datetime.now(UTC), max_new_months=10_000
                )
            built += done.months
            if not done.months:
                break
        print(f"built {built} month lists in {time.perf_counter() - started:.1f} s")

    if args.refresh_cost:
        _refresh_cost(args.database_url, args.mode, args.list_size, args.refresh_cost)
        return
    reader = Reader(args.database_url, 60_000)
    best = BestPlays(lambda: reader)
    print(
        "| window | limit | one statement: EXPLAIN ms | body ms"
        " | month lists: merge EXPLAIN ms | body ms |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, window in (DENSE_WINDOWS if args.dense else WINDOWS).items():
        for limit in (10000, 100):
            start, end = queries.window_bounds(window)
            live = (args.mode, start, end, limit)
            before = [
                _execution_ms(reader, queries.BEST_PLAYS_LIVE, live) for _ in range(args.repeat)
            ]
            live_walls = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                live_best_plays(reader, args.mode, window, limit)
                live_walls.append((time.perf_counter() - began) * 1000)
            walls = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                best._window_body(reader, args.mode, window, limit, True, True)
                walls.append((time.perf_counter() - began) * 1000)
            plan = _plan(reader, args.mode, window, limit)
            # As text, for EXPLAIN (the lists-only merge runs PREPAREd in the API).
            sql, sql_args = queries.as_positional(
                queries.merge_sql(len(plan.exact_parts)),
                queries.merge_params(args.mode, limit, plan),
            )
            merge = [_execution_ms(reader, sql, sql_args) for _ in range(args.repeat)]
            print(
                f"| {name} | {limit} | {_median(before)} | {_median(live_walls)}"
                f" | {_median(merge)} | {_median(walls)} |"
            )
            if args.plans:
                rows = reader.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, sql_args)
                print("```\n" + "\n".join(row[0] for row in rows) + "\n```")


def _timed_rebuild(engine: Any, mode: int, list_size: int) -> str:
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        done = rebuild_month_lists(session, mode, list_size, datetime.now(UTC))
    return (
        f"{(time.perf_counter() - started) * 1000:.0f} ms ({done.months} months,"
        f" {done.written} rows written, {done.removed} removed)"
    )


def _refresh_cost(database_url: str, mode: int, list_size: int, plays: int) -> None:
    """Beat's month-list rebuild after `plays` new plays (copies of the newest month's
    best plays, pp +1, new score ids), then with nothing new, then after deleting them."""
    engine = create_engine(database_url)
    print("nothing new:", _timed_rebuild(engine, mode, list_size))
    copy = text(
        "INSERT INTO hiscores (mode, score_id, user_id, beatmap_id, score, pp, mods, rank,"
        " score_time, update_time)"
        " SELECT mode, score_id + 9000000000000, user_id, beatmap_id, score, pp + 1, mods,"
        " rank, score_time, update_time FROM hiscores WHERE mode = :mode AND score_time >="
        " (SELECT date_trunc('month', max(score_time), 'UTC') FROM hiscores WHERE mode = :mode)"
        " AND score_id < 9000000000000 ORDER BY pp DESC LIMIT :n"
    )
    with engine.begin() as connection:
        connection.execute(copy, {"mode": mode, "n": plays})
    print(f"after {plays} new plays:", _timed_rebuild(engine, mode, list_size))
    print("nothing new:", _timed_rebuild(engine, mode, list_size))
    with engine.begin() as connection:
        connection.execute(
            text("DELETE FROM hiscores WHERE mode = :mode AND score_id >= 9000000000000"),
            {"mode": mode},
        )
    print("after deleting them:", _timed_rebuild(engine, mode, list_size))


def _plan(reader: Reader, mode: int, window: DateWindow, limit: int) -> windows.MonthsPlan:
    """The first-try plan `BestPlays._window_body` builds for the window."""
    bound_start = "-infinity" if window.start is None else windows.month_start(window.start)
    bound_end = "infinity" if window.end is None else windows.month_start(window.end)
    rows = reader.fetch(queries.BESTPLAYS_MONTHS, (mode, bound_start, bound_end))
    lists = {
        row[2]: windows.MonthList(
            row[3], row[4], None if row[5] is None else windows.sort_key(*row[5:8])
        )
        for row in rows
        if row[2] is not None
    }
    return windows.plan_window(window, limit, (rows[0][0], rows[0][1]), lists)


if __name__ == "__main__":
    main()
