"""Celery tasks: thin wrappers that open a session and call the update functions."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from osutrack import jobs, metrics
from osutrack.jobs import REFRESH_QUEUE
from worker.app import app
from worker.bestplays import MODES, refresh_bestplays, refresh_month_lists
from worker.db import session_scope
from worker.logcontext import log_context
from worker.peaks import recompute_changed_peaks
from worker.refresh import plan_refresh, refresh_user_modes
from worker.runtime import Runtime, runtime
from worker.schedule import refresh_round_size
from worker.updates import finished_result, update_user
from worker.upstream.errors import UpstreamError
from worker.upstream.limiter import COOLDOWN_KEY, REFRESH, upstream_priority

log = logging.getLogger(__name__)

# Postgres or Redis away: wait for it (backoff up to 30 s) for about 3 minutes in all,
# then report the job failed rather than leave its client waiting forever.
INFRA_MAX_RETRIES = 8
# A message whose worker died mid-job comes back (acks late, reject on worker lost). One
# that kills its worker every time would come back forever: after this many deliveries of
# the same attempt the job is failed instead.
MAX_DELIVERIES = 3
DELIVERY_COUNT_TTL_SECONDS = 86400
# Hard limit of an update, kept below the broker's visibility timeout (celeryconfig) so a
# running update is never handed to a second worker.
UPDATE_SOFT_TIME_LIMIT = 40
UPDATE_TIME_LIMIT = 50


@app.task(
    name=jobs.UPDATE_TASK_NAME,
    bind=True,
    max_retries=INFRA_MAX_RETRIES,
    soft_time_limit=UPDATE_SOFT_TIME_LIMIT,
    time_limit=UPDATE_TIME_LIMIT,
)
def update_user_task(self: Task, job_id: str, user_id: int, mode: int) -> None:
    """Run update job `job_id` for (user_id, mode) and publish its outcome in Redis."""
    with log_context(job_id=job_id, user_id=user_id, mode=mode):
        rt = runtime()
        attempt = self.request.retries
        state, deliveries = jobs.count_delivery(
            rt.redis,
            job_id,
            _delivery_key(self.request.id or job_id, attempt),
            DELIVERY_COUNT_TTL_SECONDS,
        )
        if deliveries > MAX_DELIVERIES:
            log.error("job delivered %d times without finishing; giving up", MAX_DELIVERIES)
            jobs.fail_job(
                rt.redis,
                job_id,
                user_id,
                mode,
                "the update failed repeatedly; try again later",
                502,
                rt.settings.job_ttl_seconds,
            )
            outcome: str | None = "failed_poison"
        else:
            # Only a redelivered message or a retry can find its job already committed.
            first_try = deliveries == 1 and attempt == 0
            outcome = _run_update(self, rt, job_id, user_id, mode, first_try=first_try)
        if outcome is not None:
            latency = time.time() - state.enqueued_at if state else None
            metrics.record_job(rt.redis, outcome, latency)
            log.info("job %s", outcome)


def _delivery_key(task_id: str, attempt: int) -> str:
    # Counted per attempt: a retry keeps the task id and is a new attempt, not a redelivery.
    return f"osutrack:deliveries:{task_id}:{attempt}"


def _run_update(
    task: Task, rt: Runtime, job_id: str, user_id: int, mode: int, *, first_try: bool
) -> str | None:
    """Do the update and publish it; return the outcome for metrics (None: will retry).

    A job that committed before (a redelivered message or a retry, never `first_try`) is
    published from its stored body without asking osu! again; `store_update` checks once
    more under its lock either way, so skipping the early look is only a saving.
    """
    ttl = rt.settings.job_ttl_seconds
    try:
        stored = None
        if not first_try:
            with session_scope(rt.engine) as session:
                stored = finished_result(session, job_id)
        if stored is None:
            jobs.mark_running(rt.redis, job_id)
            with session_scope(rt.engine) as session:
                stored = update_user(
                    session,
                    rt.client,
                    user_id,
                    mode,
                    job_id=job_id,
                    intervals=rt.settings.refresh_intervals,
                )
        # Published only after the commit: a waiting client never sees data that could
        # still roll back.
        jobs.finish_job(rt.redis, job_id, user_id, mode, stored, ttl)
    except UpstreamError as exc:
        log.warning("failed upstream: %s", exc)
        jobs.fail_job(
            rt.redis, job_id, user_id, mode, str(exc), exc.http_status, ttl, exc.retry_after
        )
        return "failed_upstream"
    except SoftTimeLimitExceeded:
        log.warning("timed out")
        jobs.fail_job(rt.redis, job_id, user_id, mode, "the update timed out", 504, ttl)
        return "failed_timeout"
    except (DBAPIError, redis.RedisError) as exc:
        if task.request.retries >= INFRA_MAX_RETRIES:
            log.error("gave up: %s", exc)
            jobs.fail_job(rt.redis, job_id, user_id, mode, "storage is unavailable", 503, ttl, 30)
            return "failed_storage"
        log.warning("will retry: %s", exc)
        raise task.retry(exc=exc, countdown=min(2**task.request.retries, 30)) from exc
    return "finished"


# Planning, refreshing and table maintenance acknowledge on receipt: a lost refresh batch
# comes back when its reservation lease ends, and periodic tasks simply run next period,
# so none of them needs (or should hold) a message for longer than the visibility timeout.
@app.task(name="osutrack.schedule_refresh", ignore_result=True, acks_late=False)
def schedule_refresh_task() -> None:
    """Beat: reserve the user-modes due for a check and queue refresh tasks for them."""
    rt = runtime()
    limiter_paused = rt.redis.exists(COOLDOWN_KEY)
    if limiter_paused:
        # osu! told us to back off: queueing now would only fill the queue with waiting work.
        log.info("refresh planning skipped: upstream pause in effect")
        return
    with session_scope(rt.engine) as session:
        batches = plan_refresh(session, datetime.now(UTC), refresh_round_size(rt.settings))
    # Sent only after the reservation committed (a rollback would leave queued work for
    # user-modes that are not reserved, and the next round would queue them again).
    for batch in batches:
        app.send_task(
            "osutrack.refresh_users", args=[[list(pair) for pair in batch]], queue=REFRESH_QUEUE
        )
    if batches:
        log.info("queued %d refresh batches", len(batches))


@app.task(
    name="osutrack.refresh_users",
    ignore_result=True,
    acks_late=False,
    soft_time_limit=600,
    time_limit=660,
)
def refresh_users_task(user_modes: list[list[int]]) -> None:
    """Check a batch of user-modes within the refresh share of the upstream budget."""
    rt = runtime()
    pairs = [(int(user_id), int(mode)) for user_id, mode in user_modes]
    try:
        with upstream_priority(REFRESH), Session(rt.engine, expire_on_commit=False) as session:
            outcomes = refresh_user_modes(
                session,
                rt.client,
                pairs,
                now=lambda: datetime.now(UTC),
                intervals=rt.settings.refresh_intervals,
            )
    except UpstreamError as exc:
        # The reservation lease runs out and the next planning round takes them again.
        log.warning("refresh of %d user-modes failed upstream: %s", len(pairs), exc)
        metrics.record_refresh(rt.redis, "failed", len(pairs))
        return
    for outcome, count in outcomes.items():
        metrics.record_refresh(rt.redis, outcome, count)


@app.task(name="osutrack.refresh_bestplays", ignore_result=True, acks_late=False)
def refresh_bestplays_task() -> None:
    """Rebuild every mode's bestplays table and its changed month lists (one transaction
    per mode, so readers see a mode's table, lists and stamp move together)."""
    rt = runtime()
    # One refresh at a time even if beat fires again while a slow one runs.
    with rt.redis.lock("osutrack:lock:bestplays", timeout=300, blocking_timeout=0) as held:
        if not held:
            return
        size = rt.settings.bestplays_table_size
        for mode in MODES:
            with session_scope(rt.engine) as session:
                now = datetime.now(UTC)
                months = refresh_month_lists(session, mode, size, now)
                refresh_bestplays(session, mode, size, now)
            if months.months:
                log.info("mode %d: rebuilt %d month lists", mode, months.months)


@app.task(name="osutrack.recompute_peaks", ignore_result=True, acks_late=False)
def recompute_peaks_task() -> None:
    """Repair pass: rebuild the peaks of the user-modes updated since the last run."""
    rt = runtime()
    with rt.redis.lock("osutrack:lock:peaks", timeout=1800, blocking_timeout=0) as held:
        if not held:
            return
        with session_scope(rt.engine) as session:
            recompute_changed_peaks(session)
