"""Peak rank and accuracy per user and mode, served by /peak from the `peaks` table."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, case, func, select, text, true
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import Session

from osutrack.schema import peaks, stats_snapshots
from worker.watermarks import advance_watermark, database_now, read_watermark

# The name of beat's peaks recompute in `job_watermarks`.
PEAKS_JOB = "recompute_peaks"

# How far before the last run's watermark the next run looks. A snapshot's `captured_at`
# is the worker's clock when it was stored, and it is committed later: an update commits
# within its task's hard time limit (50 s), a scheduled refresh batch within its own
# (660 s; the time is read before the batch waits for the upstream and fetches the top
# plays), and a killed task's transaction rolls back. So a snapshot the last run could not
# see has `captured_at` at most 11 minutes before that run's start on a clock in step with
# the database's. 15 minutes leaves 4 more for a worker clock running behind the database
# (NTP keeps it to milliseconds; a VM resumed from a pause can lag far more) and for the
# commit itself. An hourly run then rereads a quarter hour twice: cheap, still in
# proportion to the updates, and it also repairs a row that a run overwrote with the
# values it saw while an update was committing the same user-mode.
WATERMARK_OVERLAP = timedelta(minutes=15)

# The worker's default statement timeout bounds update work. The first run is a full
# recompute (about 20 s at 10 million snapshots) and a run after a long outage has a long
# window; this pass gets longer, but stays below the task's 30-minute Redis lock so a
# second run never starts while this one still writes.
RECOMPUTE_STATEMENT_TIMEOUT = "20min"


def record_peak(
    session: Session,
    user_id: int,
    mode: int,
    global_rank: int,
    accuracy: float,
    captured_at: datetime,
) -> None:
    """Fold one stored snapshot's rank and accuracy into the user's peaks, in the update's
    own transaction.

    As the original, a peak's timestamp is the LATEST time the best value was held, so an
    equal value moves the timestamp forward. Unranked snapshots are never stored, so they
    never reach here and never count as a peak.
    """
    statement = insert(peaks).values(
        user_id=user_id,
        mode=mode,
        best_global_rank=global_rank,
        best_rank_at=captured_at,
        best_accuracy=accuracy,
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


def recompute_peaks(
    session: Session, user_id: int | None = None, *, since: datetime | None = None
) -> int:
    """Rebuild peaks from `stats_snapshots`; return rows written.

    With neither argument every user-mode is rebuilt. `user_id` limits it to that player;
    `since` to the user-modes with a snapshot captured at or after `since` (both: that
    player's user-modes with such a snapshot). A user-mode in scope is rebuilt from ALL
    its snapshots, so its row is what a full recompute writes; rows out of scope are not
    read or written. One upsert by (user_id, mode): rerunning it writes nothing new, rows
    already right are left alone, and readers see the old row or the new one, never a gap.

    Snapshots with `pp_rank` 0 never count. A user-mode without ranked snapshots gets no
    row; a row whose snapshots are gone is kept. The per-update fold in `record_peak`
    keeps the table current between runs: this is the repair pass.
    """
    if user_id is None and since is None:
        source = _best_of_every_user_mode()
    else:
        in_scope = []
        if user_id is not None:
            in_scope.append(stats_snapshots.c.user_id == user_id)
        if since is not None:
            in_scope.append(stats_snapshots.c.captured_at >= since)
        source = _best_of_user_modes(in_scope)
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


def recompute_changed_peaks(session: Session) -> int:
    """Beat's pass: recompute the user-modes with snapshots since the last run; rows written.

    The window starts `WATERMARK_OVERLAP` before the watermark of the last successful run
    (none yet: everything). The new watermark, this transaction's start on the database's
    clock, is written in the caller's transaction with the peaks, so a run that fails
    leaves the old one and the next run redoes the window. The caller commits.
    """
    session.execute(
        text("SELECT set_config('statement_timeout', :timeout, true)"),
        {"timeout": RECOMPUTE_STATEMENT_TIMEOUT},
    )
    started_at = database_now(session)
    watermark = read_watermark(session, PEAKS_JOB)
    since = None if watermark is None else watermark - WATERMARK_OVERLAP
    written = recompute_peaks(session, since=since)
    advance_watermark(session, PEAKS_JOB, started_at)
    return written


def _best_of_every_user_mode() -> Select[tuple[object, ...]]:
    """(user_id, mode, best rank, its time, best accuracy, its time) of every user-mode.

    Two sorted passes over the whole table: cheaper than a lookup per user-mode when
    every user-mode is wanted.
    """
    ranked = stats_snapshots.c.pp_rank > 0
    best_rank = (
        select(
            stats_snapshots.c.user_id,
            stats_snapshots.c.mode,
            stats_snapshots.c.pp_rank,
            stats_snapshots.c.captured_at,
        )
        .where(ranked)
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
        .where(ranked)
        .ext(distinct_on(stats_snapshots.c.user_id, stats_snapshots.c.mode))
        .order_by(
            stats_snapshots.c.user_id,
            stats_snapshots.c.mode,
            stats_snapshots.c.accuracy.desc(),
            stats_snapshots.c.captured_at.desc(),
        )
        .subquery("best_acc")
    )
    return select(
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


def _best_of_user_modes(in_scope: list[ColumnElement[bool]]) -> Select[tuple[object, ...]]:
    """The same columns for the user-modes having a snapshot that matches `in_scope`.

    The user-modes come from an index range scan (`captured_at`, or `user_id` through the
    (user_id, mode, captured_at) key); each one's best rank and accuracy from a lookup
    of its own snapshots in that key. The work grows with the user-modes in scope and
    their histories, not with the table.
    """
    scope = (
        select(stats_snapshots.c.user_id, stats_snapshots.c.mode)
        .where(*in_scope)
        .distinct()
        .subquery("scope")
    )
    own_ranked = (
        (stats_snapshots.c.user_id == scope.c.user_id)
        & (stats_snapshots.c.mode == scope.c.mode)
        & (stats_snapshots.c.pp_rank > 0)
    )
    best_rank = (
        select(stats_snapshots.c.pp_rank, stats_snapshots.c.captured_at)
        .where(own_ranked)
        .order_by(stats_snapshots.c.pp_rank.asc(), stats_snapshots.c.captured_at.desc())
        .limit(1)
        .lateral("best_rank")
    )
    best_acc = (
        select(stats_snapshots.c.accuracy, stats_snapshots.c.captured_at)
        .where(own_ranked)
        .order_by(stats_snapshots.c.accuracy.desc(), stats_snapshots.c.captured_at.desc())
        .limit(1)
        .lateral("best_acc")
    )
    return select(
        scope.c.user_id,
        scope.c.mode,
        best_rank.c.pp_rank,
        best_rank.c.captured_at,
        best_acc.c.accuracy,
        best_acc.c.captured_at,
    ).select_from(scope.join(best_rank, true()).join(best_acc, true()))
