"""Stats snapshots: the diff a bot shows, and the newest stored stats."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from osutrack.fields import DIFF_FIELD_ORDER, STAT_FIELDS, UNRANKED, PlayerStats
from osutrack.schema import stats_snapshots


def stats_diff(previous: PlayerStats | None, current: PlayerStats) -> dict[str, int | float]:
    """New minus old for every stat field, in response order.

    With no previous snapshot the diff is the full current values, as the original (which
    subtracted a missing row as zeros). `pp_rank` is positive when the rank got worse.
    """
    base = previous or UNRANKED
    return {name: getattr(current, name) - getattr(base, name) for name in DIFF_FIELD_ORDER}


def leveled_up(previous: PlayerStats | None, current: PlayerStats) -> bool:
    """Whether the integer part of `level` changed since the previous snapshot."""
    return previous is not None and int(previous.level) != int(current.level)


def latest_stats(session: Session, user_id: int, mode: int) -> PlayerStats | None:
    """The stats of the newest stored snapshot, or None if there is none."""
    query = (
        select(*(stats_snapshots.c[name] for name in STAT_FIELDS))
        .where(stats_snapshots.c.user_id == user_id, stats_snapshots.c.mode == mode)
        .order_by(stats_snapshots.c.captured_at.desc())
        .limit(1)
    )
    row = session.execute(query).first()
    return None if row is None else PlayerStats(**row._mapping)
