"""Stats snapshots: the diff a bot shows, and plateau-compacted storage of the series."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
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


def record_snapshot(
    session: Session, user_id: int, mode: int, current: PlayerStats, now: datetime
) -> tuple[PlayerStats | None, datetime | None]:
    """Store `current` as the newest snapshot; return (previous stats, time stored at).

    Plateau compaction as osu!track: when the newest two rows and `current` are all equal,
    the newest row's time moves to `now` instead of adding a row, so an unchanged stretch
    is kept as exactly two rows (first seen, last seen). Unranked stats (`pp_rank` 0) are
    not stored at all and the time returned is None; the previous stats are still
    returned so the caller can report a zero diff.
    """
    newest_two = latest_snapshots(session, user_id, mode)
    previous = _stats_of(newest_two[0]) if newest_two else None
    if not current.is_ranked:
        return previous, None
    plateau = len(newest_two) == 2 and previous == current and _stats_of(newest_two[1]) == current
    if plateau:
        session.execute(
            update(stats_snapshots)
            .where(stats_snapshots.c.snapshot_id == newest_two[0].snapshot_id)
            .values(captured_at=now)
        )
    else:
        session.execute(
            insert(stats_snapshots).values(
                user_id=user_id, mode=mode, captured_at=now, **asdict(current)
            )
        )
    return previous, now
