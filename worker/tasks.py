"""Celery tasks: their stable names and delivery options, each one call into the module
that does the work (`update_job`, `refresh_jobs`, `table_jobs`)."""

from __future__ import annotations

from celery import Task

from osutrack import tasknames
from worker.app import app
from worker.refresh_jobs import queue_due_refreshes, run_refresh_batch
from worker.table_jobs import rebuild_all_bestplays, repair_peaks
from worker.update_job import (
    INFRA_MAX_RETRIES,
    UPDATE_SOFT_TIME_LIMIT,
    UPDATE_TIME_LIMIT,
    run_update_job,
)


# Acknowledged late (celeryconfig): a worker that dies mid-update leaves the message to be
# delivered again, and the update's idempotency key makes the second run publish the first.
@app.task(
    name=tasknames.UPDATE_USER,
    bind=True,
    max_retries=INFRA_MAX_RETRIES,
    soft_time_limit=UPDATE_SOFT_TIME_LIMIT,
    time_limit=UPDATE_TIME_LIMIT,
)
def update_user_task(
    self: Task, job_id: str, user_id: int, mode: int, attempt: int | None = None
) -> None:
    """Attempt `attempt` of update job `job_id` for (user_id, mode) (`attempt` None: a
    message from before attempts were numbered)."""
    run_update_job(self, job_id, user_id, mode, attempt)


# Planning, refreshing and table maintenance acknowledge on receipt: a lost refresh batch
# comes back when its reservation lease ends, and periodic tasks simply run next period,
# so none of them needs (or should hold) a message for longer than the visibility timeout.
@app.task(name=tasknames.SCHEDULE_REFRESH, ignore_result=True, acks_late=False)
def schedule_refresh_task() -> None:
    """Beat: reserve the user-modes due for a check and queue refresh tasks for them."""
    queue_due_refreshes()


@app.task(
    name=tasknames.REFRESH_USERS,
    ignore_result=True,
    acks_late=False,
    soft_time_limit=600,
    time_limit=660,
)
def refresh_users_task(
    user_modes: list[list[int]], first_attempt_at: float | None = None, attempt: int = 0
) -> None:
    """Check a batch of user-modes within the refresh share of the upstream budget.

    A transient upstream failure sends the batch again later, within the retry horizon
    from its first attempt (each user-mode already checked is simply checked again);
    past the horizon, or on a failure retrying cannot change, the batch is left for its
    next turn: its reservation lease runs out and planning takes it again. Nothing is
    marked gone or unchanged for a failure.
    """
    run_refresh_batch(user_modes, first_attempt_at, attempt)


@app.task(name=tasknames.REBUILD_BESTPLAYS, ignore_result=True, acks_late=False)
def rebuild_bestplays_task() -> None:
    """Rebuild every mode's bestplays table and its changed month lists."""
    rebuild_all_bestplays()


@app.task(name=tasknames.REBUILD_BESTPLAYS_FORMER, ignore_result=True, acks_late=False)
def rebuild_bestplays_former_name_task() -> None:
    """The rebuild under its former task name, for messages an older beat queued."""
    rebuild_all_bestplays()


@app.task(name=tasknames.RECOMPUTE_PEAKS, ignore_result=True, acks_late=False)
def recompute_peaks_task() -> None:
    """Repair pass: rebuild the peaks of the user-modes updated since the last run."""
    repair_peaks()
