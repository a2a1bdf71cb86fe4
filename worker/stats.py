"""Stats snapshots: the diff a bot shows, and plateau-compacted storage of the series."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from osutrack.schema import stats_snapshots
from worker.upstream.models import STAT_FIELDS, PlayerStats

# The order of the stat fields in the /update body, as in osu!track's documentation.
DIFF_FIELD_ORDER = (
    "playcount",
    "pp_rank",
    "pp_raw",
    "accuracy",
    "total_score",
    "ranked_score",
    "count300",
    "count50",
    "count100",
    "level",
    "count_rank_a",
    "count_rank_s",
    "count_rank_ss",
)

_ZERO = PlayerStats(0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0, 0, 0)


def stats_diff(previous: PlayerStats | None, current: PlayerStats) -> dict[str, int | float]:
    """New minus old for every stat field, in response order.

    With no previous snapshot the diff is the full current values, as the original (which
    subtracted a missing row as zeros). `pp_rank` is positive when the rank got worse.
    """
    base = previous or _ZERO
    return {name: getattr(current, name) - getattr(base, name) for name in DIFF_FIELD_ORDER}


def leveled_up(previous: PlayerStats | None, current: PlayerStats) -> bool:
    """Whether the integer part of `level` changed since the previous snapshot."""
    return previous is not None and int(previous.level) != int(current.level)


def _stats_of(row: Any) -> PlayerStats:
    return PlayerStats(**{name: getattr(row, name) for name in STAT_FIELDS})


def latest_snapshots(session: Session, user_id: int, mode: int) -> list[Any]:
    """The newest two snapshot rows of a user and mode, newest first."""
    query = (
        select(stats_snapshots)
        .where(stats_snapshots.c.user_id == user_id, stats_snapshots.c.mode == mode)
        .order_by(stats_snapshots.c.captured_at.desc())
        .limit(2)
    )
    return list(session.execute(query))


def latest_stats(session: Session, user_id: int, mode: int) -> PlayerStats | None:
    """The stats of the newest stored snapshot, or None if there is none."""
    newest = latest_snapshots(session, user_id, mode)
    return _stats_of(newest[0]) if newest else None


# Raw SQL (psycopg2 pyformat), shared by `record_snapshot` and the batched write of
# `worker.updates.store_update`: constant text, so nothing is compiled per update.
INSERT_SNAPSHOT_SQL = """
    INSERT INTO stats_snapshots (user_id, mode, captured_at, count300, count100, count50,
        playcount, ranked_score, total_score, pp_rank, level, pp_raw, accuracy,
        count_rank_ss, count_rank_s, count_rank_a)
    VALUES (%(user_id)s, %(mode)s, %(now)s, %(count300)s, %(count100)s, %(count50)s,
        %(playcount)s, %(ranked_score)s, %(total_score)s, %(pp_rank)s, %(level)s,
        %(pp_raw)s, %(accuracy)s, %(count_rank_ss)s, %(count_rank_s)s, %(count_rank_a)s)
"""
TOUCH_SNAPSHOT_SQL = (
    "UPDATE stats_snapshots SET captured_at = %(now)s WHERE snapshot_id = %(snapshot_id)s"
)


def plan_snapshot(
    newest_two: list[Any], current: PlayerStats
) -> tuple[PlayerStats | None, str | None, dict[str, Any]]:
    """What storing `current` takes, given the newest two snapshot rows (newest first).

    Returns (previous stats, SQL to run or None, its parameters besides user_id, mode and
    now). Plateau compaction as osu!track: when the newest two rows and `current` are all
    equal, the newest row's time moves to `now` instead of adding a row, so an unchanged
    stretch is kept as exactly two rows (first seen, last seen). Unranked stats (`pp_rank`
    0) are not stored at all (no SQL).
    """
    previous = _stats_of(newest_two[0]) if newest_two else None
    if not current.is_ranked:
        return previous, None, {}
    plateau = len(newest_two) == 2 and previous == current and _stats_of(newest_two[1]) == current
    if plateau:
        return previous, TOUCH_SNAPSHOT_SQL, {"snapshot_id": newest_two[0].snapshot_id}
    return previous, INSERT_SNAPSHOT_SQL, asdict(current)


def record_snapshot(
    session: Session, user_id: int, mode: int, current: PlayerStats, now: datetime
) -> tuple[PlayerStats | None, datetime | None]:
    """Store `current` as the newest snapshot; return (previous stats, time stored at).

    See `plan_snapshot` for the plateau compaction. Unranked stats are not stored and the
    time returned is None; the previous stats are still returned so the caller can report
    a zero diff.
    """
    previous, sql, params = plan_snapshot(latest_snapshots(session, user_id, mode), current)
    if sql is None:
        return previous, None
    session.connection().exec_driver_sql(
        sql, {"user_id": user_id, "mode": mode, "now": now, **params}
    )
    return previous, now
