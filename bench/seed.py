"""Fill a migrated database with a realistic osu!track population, through COPY.

Run: `.venv/bin/python -m bench.seed --database-url URL (--size small|large | --users N)`

Users are ids 1..N, all in mode 0 (as the original's benchmark data set,
`../shared/notes/original-at-scale.md`, so figures compare). Per user:

- 30-70 stats snapshots (mean 50) from a per-user start date to 2026-11-01; stats only
  grow, the rank walks, and about a third of the changes are followed by an unchanged
  sighting stored as a second identical row (the plateau form the worker writes);
- 60-140 hiscores (mean 100; 20 M at 200,000 users, the original's size): pp is a
  per-user skill (lognormal, median 150) times a per-play factor (lognormal, sigma 0.25),
  soft-capped at 1200; score times uniform over the ten years to 2026-11-01, update
  time 1 minute to 2 days later; score ids unique;
- a tracked_users row, a refresh_schedule row, and the peaks row computed from its own
  snapshots (best rank and accuracy, latest time held).

The secondary indexes of `hiscores` and `stats_snapshots` are dropped for the load and
rebuilt from `osutrack.schema` afterwards (faster than maintaining them row by row), then
every mode's bestplays table and month lists are built by `worker.bestplays` and the
database is VACUUM ANALYZEd (visibility map set, so index-only scans skip the heap).
Data is deterministic for a given `--seed`. Prints a JSON summary (timings, row counts,
database size) on stdout.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg2
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.scale_support import libpq
from devstack.commands import migrate_command
from devstack.env import child_env
from osutrack.schema import hiscores, stats_snapshots
from worker.admin import EVERY_MONTH
from worker.bestplays import MODES, rebuild_bestplays, rebuild_month_lists

SIZES = {"small": 10_000, "large": 200_000}
END = datetime(2026, 11, 1, tzinfo=UTC)
END_S = END.timestamp()
SPAN_S = 10 * 365.25 * 86400
START_S = END_S - SPAN_S
RANKS = ("XH", "X", "SH", "S", "A", "B", "C", "D")
RANK_WEIGHTS = (2, 6, 10, 30, 35, 12, 4, 1)
MODS = (0, 8, 16, 24, 64, 72, 88, 584, 576)
MOD_WEIGHTS = (40, 20, 10, 5, 15, 5, 2, 2, 1)
RANK_CUMULATIVE = list(itertools.accumulate(w / sum(RANK_WEIGHTS) for w in RANK_WEIGHTS))[:-1]
MOD_CUMULATIVE = list(itertools.accumulate(w / sum(MOD_WEIGHTS) for w in MOD_WEIGHTS))[:-1]
TABLE_SIZE = 10_000
BATCH_USERS = 500


_DAYS: dict[int, str] = {}


def _ts(seconds: float) -> str:
    """A COPY text timestamptz (UTC, microseconds); day strings are cached (speed)."""
    micros = int(seconds * 1_000_000)
    day, rest = divmod(micros, 86_400_000_000)
    text = _DAYS.get(day)
    if text is None:
        text = _DAYS[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
    second, micro = divmod(rest, 1_000_000)
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{text} {hour:02}:{minute:02}:{second:02}.{micro:06}+00"


class _Stream:
    """A file-like `read()` over generated text chunks, for `copy_expert`."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        # A short read is fine (COPY reads until b""); slicing from an offset keeps each
        # byte copied once instead of re-copying the rest of a large chunk per read.
        if self._pos >= len(self._buffer):
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buffer, self._pos = chunk.encode(), 0
        end = len(self._buffer) if size < 0 else self._pos + size
        out = self._buffer[self._pos : end]
        self._pos = end
        return out

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def hiscore_lines(users: int, seed: int) -> Iterator[str]:
    """COPY lines for `hiscores` (mode 0), users 1..`users`, BATCH_USERS per chunk."""
    rng = random.Random(seed)
    score_id = 1_000_000_000
    lines: list[str] = []
    for user in range(1, users + 1):
        skill = 150.0 * math.exp(rng.gauss(0.0, 0.35))
        for _ in range(rng.randint(60, 140)):
            score_id += rng.randint(1, 40)
            pp = 1200.0 * math.tanh(skill * math.exp(rng.gauss(0.0, 0.25)) / 1200.0)
            played = START_S + rng.random() * SPAN_S
            recorded = played + 60 + rng.random() * 172_740
            rank = RANKS[bisect.bisect(RANK_CUMULATIVE, rng.random())]
            mods = MODS[bisect.bisect(MOD_CUMULATIVE, rng.random())]
            score = int(pp * 40_000 * (0.5 + rng.random()))
            lines.append(
                f"0\t{score_id}\t{user}\t{rng.randint(1, 4_000_000)}\t{score}\t"
                f"{round(pp, 3)}\t{mods}\t{rank}\t{_ts(played)}\t{_ts(recorded)}\n"
            )
        if user % BATCH_USERS == 0 or user == users:
            yield "".join(lines)
            lines = []


def user_history(rng: random.Random) -> list[tuple[Any, ...]]:
    """One user's snapshots, oldest first: the stats columns of `stats_snapshots`."""
    count = rng.randint(30, 70)
    start = START_S + rng.random() * (SPAN_S - 86400 * 60)
    times = sorted(start + rng.random() * (END_S - start) for _ in range(count))
    rank = rng.randint(1_000, 2_000_000)
    acc = 90.0 + rng.random() * 8.0
    c300 = c100 = c50 = playcount = ranked = total = ss = s = a = 0
    level = 1.0
    pp = 0.0
    rows: list[tuple[Any, ...]] = []
    plateau = False
    for moment in times:
        if not plateau or not rows:
            plays = rng.randint(5, 400)
            playcount += plays
            c300 += plays * rng.randint(200, 600)
            c100 += plays * rng.randint(10, 60)
            c50 += plays * rng.randint(0, 10)
            gained = plays * rng.randint(100_000, 3_000_000)
            ranked += gained
            total += gained * 3
            level = min(level + plays * 0.02, 120.0)
            rank = max(1, int(rank * math.exp(rng.gauss(-0.05, 0.15))))
            pp = round(20_000.0 / (1 + math.log10(rank)) ** 1.5, 3)
            acc = min(100.0, max(80.0, acc + rng.gauss(0.0, 0.15)))
            ss += rng.randint(0, 2)
            s += rng.randint(0, 5)
            a += rng.randint(0, 8)
            plateau = rng.random() < 0.33
        else:
            plateau = False
        counts = (c300, c100, c50, playcount, ranked, total, rank)
        rows.append((*counts, round(level, 4), pp, acc, ss, s, a, moment))
    return rows


def snapshot_tables(users: int, seed: int) -> Callable[[], Iterator[tuple[str, str]]]:
    """A generator factory of (table, COPY chunk) for snapshots and per-user rows."""

    def generate() -> Iterator[tuple[str, str]]:
        rng = random.Random(seed + 1)
        snaps: list[str] = []
        others: dict[str, list[str]] = {"peaks": [], "tracked_users": [], "refresh_schedule": []}
        for user in range(1, users + 1):
            rows = user_history(rng)
            for row in rows:
                stats = "\t".join(map(str, row[:13]))
                snaps.append(f"{user}\t0\t{stats}\t{_ts(row[13])}\n")
            best_rank = min(row[6] for row in rows)
            rank_at = max(row[13] for row in rows if row[6] == best_rank)
            best_acc = max(row[9] for row in rows)
            acc_at = max(row[13] for row in rows if row[9] == best_acc)
            first, last = rows[0][13], rows[-1][13]
            others["peaks"].append(
                f"{user}\t0\t{best_rank}\t{_ts(rank_at)}\t{best_acc}\t{_ts(acc_at)}\n"
            )
            others["tracked_users"].append(f"{user}\tplayer{user}\t{_ts(first)}\t{_ts(last)}\n")
            others["refresh_schedule"].append(
                f"{user}\t0\t{_ts(last)}\t{_ts(last)}\t{_ts(last + 7 * 86400)}\n"
            )
            if user % BATCH_USERS == 0 or user == users:
                yield "stats_snapshots", "".join(snaps)
                snaps = []
                for table, lines in others.items():
                    yield table, "".join(lines)
                    lines.clear()

    return generate


COLUMNS = {
    "stats_snapshots": "(user_id, mode, count300, count100, count50, playcount, ranked_score,"
    " total_score, pp_rank, level, pp_raw, accuracy, count_rank_ss, count_rank_s, count_rank_a,"
    " captured_at)",
    "peaks": "(user_id, mode, best_global_rank, best_rank_at, best_accuracy, best_acc_at)",
    "tracked_users": "(user_id, username, first_seen_at, last_updated_at)",
    "refresh_schedule": "(user_id, mode, last_checked_at, last_changed_at, next_check_at)",
    "hiscores": "(mode, score_id, user_id, beatmap_id, score, pp, mods, rank, score_time,"
    " update_time)",
}
COPY_SQL = {table: f"COPY {table} {columns} FROM STDIN" for table, columns in COLUMNS.items()}


def _copy_split(cursor: Any, chunks: Iterator[tuple[str, str]]) -> None:
    """COPY each (table, chunk) as it comes: several tables from one generator."""
    for table, chunk in chunks:
        if chunk:
            cursor.copy_expert(COPY_SQL[table], _Stream(iter([chunk])))


def seed(database_url: str, users: int, seed_value: int) -> dict[str, Any]:
    """Migrate, load, index, build bestplays and analyze; return the summary."""
    timings: dict[str, float] = {}
    began = time.monotonic()
    subprocess.run(migrate_command(), env=child_env({"DATABASE_URL": database_url}), check=True)
    timings["migrate_s"] = time.monotonic() - began
    conn = psycopg2.connect(libpq(database_url))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            cursor.execute(
                "TRUNCATE hiscores, stats_snapshots, peaks, tracked_users, refresh_schedule,"
                " bestplays, bestplays_refreshes, bestplays_months, bestplays_month_lists,"
                " bestplays_month_changes"
            )
            indexes = [*hiscores.indexes, *stats_snapshots.indexes]
            for index in indexes:
                cursor.execute(f"DROP INDEX IF EXISTS {index.name}")
            step = time.monotonic()
            cursor.copy_expert(COPY_SQL["hiscores"], _Stream(hiscore_lines(users, seed_value)))
            timings["copy_hiscores_s"] = time.monotonic() - step
            step = time.monotonic()
            _copy_split(cursor, snapshot_tables(users, seed_value)())
            timings["copy_snapshots_and_users_s"] = time.monotonic() - step
            step = time.monotonic()
            engine = create_engine(database_url)
            try:
                with engine.begin() as connection:
                    connection.exec_driver_sql("SET maintenance_work_mem = '1GB'")
                    for index in indexes:
                        index.create(connection)
                timings["create_indexes_s"] = time.monotonic() - step
                step = time.monotonic()
                cursor.execute("VACUUM ANALYZE")
                timings["vacuum_analyze_s"] = time.monotonic() - step
                step = time.monotonic()
                with Session(engine) as session, session.begin():
                    built = {
                        mode: rebuild_bestplays(session, mode, TABLE_SIZE, datetime.now(UTC))
                        for mode in MODES
                    }
                cursor.execute("VACUUM ANALYZE bestplays")
                timings["bestplays_s"] = time.monotonic() - step
                step = time.monotonic()
                # The COPY's trigger logged every month as changed; the first build ranks
                # them all anyway, as beat would over its first runs.
                cursor.execute("TRUNCATE bestplays_month_changes")
                with Session(engine) as session, session.begin():
                    for mode in MODES:
                        rebuild_month_lists(
                            session, mode, TABLE_SIZE, datetime.now(UTC), max_new_months=EVERY_MONTH
                        )
                cursor.execute("VACUUM ANALYZE bestplays_months")
                timings["month_lists_s"] = time.monotonic() - step
            finally:
                engine.dispose()
            counts = {}
            for table in (*COLUMNS, "bestplays"):
                cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - constant names
                counts[table] = cursor.fetchone()[0]
            cursor.execute("SELECT pg_database_size(current_database())")
            size = cursor.fetchone()[0]
    finally:
        conn.close()
    timings["total_s"] = time.monotonic() - began
    return {
        "users": users,
        "seed": seed_value,
        "rows": counts,
        "bestplays_built": built,
        "database_bytes": size,
        "database_gib": round(size / 2**30, 2),
        "timings": {key: round(value, 1) for key, value in timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="SQLAlchemy URL, as DATABASE_URL")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--size", choices=sorted(SIZES))
    group.add_argument("--users", type=int)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    users = SIZES[args.size] if args.size else args.users
    summary = seed(args.database_url, users, args.seed)
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
