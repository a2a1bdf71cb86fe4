"""When each tracked user-mode is checked next: sooner for players who played recently."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from osutrack.schema import refresh_schedule
from osutrack.settings import Intervals, Settings

# ((max idle seconds, check every N seconds), ...), the last with an infinite idle limit;
# see `osutrack.settings.parse_refresh_intervals`. `Settings.refresh_intervals`, the class
# attribute, is the declared default.
DEFAULT_INTERVALS: Intervals = Settings.refresh_intervals
# How long a user-mode handed to a refresh task stays reserved, so the next planning
# round does not queue it again while it waits for the budget.
PLANNED_LEASE = timedelta(minutes=15)


def check_interval(idle: timedelta, intervals: Intervals) -> timedelta:
    """The refresh interval of a player whose stats last changed `idle` ago."""
    idle_seconds = max(idle.total_seconds(), 0.0)
    for max_idle, every in intervals:
        if idle_seconds <= max_idle:
            return timedelta(seconds=every)
    return timedelta(seconds=intervals[-1][1])


# Raw SQL (psycopg2 pyformat), shared by `schedule_next_check` and the batched write of
# `worker.update_store.write_plan`.
UPSERT_SCHEDULE_SQL = """
    INSERT INTO refresh_schedule (user_id, mode, last_checked_at, last_changed_at,
                                  next_check_at)
    VALUES (%(user_id)s, %(mode)s, %(now)s, %(last_changed_at)s, %(next_check_at)s)
    ON CONFLICT (user_id, mode) DO UPDATE SET
        last_checked_at = EXCLUDED.last_checked_at,
        last_changed_at = EXCLUDED.last_changed_at,
        next_check_at = EXCLUDED.next_check_at
"""


@dataclass(frozen=True)
class Schedule:
    """A user-mode's refresh schedule after a check."""

    last_changed_at: datetime
    next_check_at: datetime


def next_schedule(
    now: datetime, *, changed: bool, known_last_changed: datetime | None, intervals: Intervals
) -> Schedule:
    """The schedule after a check at `now` (written by UPSERT_SCHEDULE_SQL).

    `known_last_changed` is the stored `last_changed_at`, if any: it stays when the stats
    did not change.
    """
    last_changed = now if changed else known_last_changed or now
    return Schedule(last_changed, now + check_interval(now - last_changed, intervals))


def schedule_next_check(
    session: Session,
    user_id: int,
    mode: int,
    now: datetime,
    *,
    changed: bool,
    intervals: Intervals,
) -> None:
    """Record a check of (user, mode) at `now` and when the next one is due."""
    known = None
    if not changed:
        known = session.scalar(
            select(refresh_schedule.c.last_changed_at).where(
                refresh_schedule.c.user_id == user_id, refresh_schedule.c.mode == mode
            )
        )
    schedule = next_schedule(now, changed=changed, known_last_changed=known, intervals=intervals)
    session.connection().exec_driver_sql(
        UPSERT_SCHEDULE_SQL, {"user_id": user_id, "mode": mode, "now": now, **asdict(schedule)}
    )


def take_due(session: Session, now: datetime, limit: int) -> list[tuple[int, int]]:
    """Reserve up to `limit` user-modes whose check is due, most overdue first.

    Their `next_check_at` moves forward by a lease; the check that follows sets the real
    next time. SKIP LOCKED lets two planners (a beat failover) never take the same rows.
    """
    due = (
        select(refresh_schedule.c.user_id, refresh_schedule.c.mode)
        .where(refresh_schedule.c.next_check_at <= now)
        .order_by(refresh_schedule.c.next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .subquery("due")
    )
    reserve = (
        update(refresh_schedule)
        .where(refresh_schedule.c.user_id == due.c.user_id, refresh_schedule.c.mode == due.c.mode)
        .values(next_check_at=now + PLANNED_LEASE)
        .returning(refresh_schedule.c.user_id, refresh_schedule.c.mode)
    )
    return sorted((int(row.user_id), int(row.mode)) for row in session.execute(reserve))


# Without an upstream limit (the simulator), a planning round still stops somewhere.
UNLIMITED_ROUND_SIZE = 5000


def refresh_round_size(settings: Settings) -> int:
    """How many user-modes one planning round may reserve.

    The refresh may spend `refresh_budget_share` of the upstream budget, so one round of
    `refresh_schedule_seconds` has about `rate x share x period` requests to spend. With
    v2 a user-mode costs 1/50 of a batch request plus one request if its stats changed;
    planning ten user-modes per request matches a population where up to about 8% changed
    (the rest of the budget stays unused, never overspent: the limiter enforces the cap).
    With v1 each check costs at least one request.
    """
    rate_limit = settings.effective_rate_limit
    if rate_limit.off:
        return UNLIMITED_ROUND_SIZE
    per_second = min(rate.amount / rate.period_seconds for rate in rate_limit.rates)
    requests = per_second * settings.refresh_budget_share * settings.refresh_schedule_seconds
    per_request = 10 if settings.effective_api_version == "v2" else 1
    return max(1, int(requests * per_request))
