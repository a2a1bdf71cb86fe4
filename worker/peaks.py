"""Peak rank and accuracy per user and mode, served by /peak from the `peaks` table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select, text
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import Session

from osutrack.schema import peaks, stats_snapshots
from worker.upstream.models import PlayerStats


def record_peak(
    session: Session, user_id: int, mode: int, stats: PlayerStats, captured_at: datetime
) -> None:
    """Fold one stored snapshot into the user's peaks, in the update's own transaction.

    As the original, a peak's timestamp is the LATEST time the best value was held, so an
    equal value moves the timestamp forward. Unranked snapshots are never stored, so they
    never reach here and never count as a peak.
    """
    statement = insert(peaks).values(
        user_id=user_id,
        mode=mode,
        best_global_rank=stats.pp_rank,
        best_rank_at=captured_at,
        best_accuracy=stats.accuracy,
        best_acc_at=captured_at,
    )
    new = statement.excluded
    rank_held = new.best_global_rank <= func.coalesce(
        peaks.c.best_global_rank, new.best_global_rank
    )
    acc_held = new.best_accuracy >= func.coalesce(peaks.c.best_accuracy, new.best_accuracy)
    statement = statement.on_conflict_do_update(
        index_elements=[peaks.c.user_id, peaks.c.mode],
        set_={
            "best_global_rank": func.least(peaks.c.best_global_rank, new.best_global_rank),
            "best_rank_at": case((rank_held, new.best_rank_at), else_=peaks.c.best_rank_at),
            "best_accuracy": func.greatest(peaks.c.best_accuracy, new.best_accuracy),
            "best_acc_at": case((acc_held, new.best_acc_at), else_=peaks.c.best_acc_at),
        },
    )
    session.execute(statement)


def recompute_peaks(session: Session, user_id: int | None = None) -> int:
    """Rebuild peaks from `stats_snapshots` (all users, or one); return rows written.

    Snapshots with `pp_rank` 0 never count. Used by the beat task as a repair pass: the
    per-update fold in `record_peak` keeps the table current between runs.
    """
    ranked = stats_snapshots.c.pp_rank > 0
    scope = [ranked] if user_id is None else [ranked, stats_snapshots.c.user_id == user_id]
    best_rank = (
        select(
            stats_snapshots.c.user_id,
            stats_snapshots.c.mode,
            stats_snapshots.c.pp_rank,
            stats_snapshots.c.captured_at,
        )
        .where(*scope)
        .ext(distinct_on(stats_snapshots.c.user_id, stats_snapshots.c.mode))
        .order_by(
            stats_snapshots.c.user_id,
            stats_snapshots.c.mode,
            stats_snapshots.c.pp_rank.asc(),
            stats_snapshots.c.captured_at.desc(),
        )
        .subquery("best_rank")
    )
    best_acc = (
        select(
            stats_snapshots.c.user_id,
            stats_snapshots.c.mode,
            stats_snapshots.c.accuracy,
            stats_snapshots.c.captured_at,
        )
        .where(*scope)
        .ext(distinct_on(stats_snapshots.c.user_id, stats_snapshots.c.mode))
        .order_by(
            stats_snapshots.c.user_id,
            stats_snapshots.c.mode,
            stats_snapshots.c.accuracy.desc(),
            stats_snapshots.c.captured_at.desc(),
        )
        .subquery("best_acc")
    )
    source = select(
        best_rank.c.user_id,
        best_rank.c.mode,
        best_rank.c.pp_rank,
        best_rank.c.captured_at,
        best_acc.c.accuracy,
        best_acc.c.captured_at,
    ).join_from(
        best_rank,
        best_acc,
        (best_acc.c.user_id == best_rank.c.user_id) & (best_acc.c.mode == best_rank.c.mode),
    )
    statement = insert(peaks).from_select(
        ["user_id", "mode", "best_global_rank", "best_rank_at", "best_accuracy", "best_acc_at"],
        source,
    )
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[peaks.c.user_id, peaks.c.mode],
        set_={
            "best_global_rank": new.best_global_rank,
            "best_rank_at": new.best_rank_at,
            "best_accuracy": new.best_accuracy,
            "best_acc_at": new.best_acc_at,
        },
        # Leave rows that are already right untouched (no dead tuples on a repair pass).
        where=text(
            "(peaks.best_global_rank, peaks.best_rank_at, peaks.best_accuracy, peaks.best_acc_at)"
            " IS DISTINCT FROM (excluded.best_global_rank, excluded.best_rank_at,"
            " excluded.best_accuracy, excluded.best_acc_at)"
        ),
    )
    result = session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]
