"""The life of an update job on a worker: start it, run it, publish its outcome.

A job's attempt is started once per delivery (`jobs.start_job` counts deliveries and drops
stale copies), runs the update in one transaction (`update_store`), and is published in
Redis only after the commit. An upstream failure sends it back to the queue as its next
attempt while the retry horizon lasts; Postgres or Redis trouble retries the same message.
"""

from __future__ import annotations

import logging
import time

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from osutrack import jobs, metrics, tasknames, write_marks
from osutrack.tasknames import RETRY_QUEUE
from worker.app import app
from worker.db import session_scope
from worker.logcontext import log_context
from worker.retry import next_retry_at
from worker.runtime import Runtime, runtime
from worker.update_store import finished_result, update_user
from worker.upstream.errors import BudgetExhausted, UpstreamError, is_transient

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


def run_update_job(task: Task, job_id: str, user_id: int, mode: int, attempt: int | None) -> None:
    """Run attempt `attempt` of update job `job_id` for (user_id, mode) on the delivery
    `task` is handling, and publish its outcome in Redis."""
    with log_context(job_id=job_id, user_id=user_id, mode=mode):
        rt = runtime()
        start = jobs.start_job(
            rt.redis,
            job_id,
            attempt,
            _delivery_key(job_id, attempt or 0, task.request.retries),
            DELIVERY_COUNT_TTL_SECONDS,
        )
        if start.stale:
            log.info("stale copy of attempt %s dropped", attempt)
            return
        outcome = _outcome_of(task, rt, start, job_id, user_id, mode, attempt or 0)
        # Something may have freed room in the budget or the queue: release what may run.
        _release_quietly(rt)
        if outcome is not None:
            state = start.state
            latency = time.time() - state.enqueued_at if state else None
            metrics.record_job(rt.redis, outcome, latency)
            log.info("job %s", outcome)


def _outcome_of(
    task: Task, rt: Runtime, start: jobs.Start, job_id: str, user_id: int, mode: int, attempt: int
) -> str | None:
    if start.deliveries > MAX_DELIVERIES:
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
        return "failed_poison"
    state = start.state
    if state is not None and start.deliveries == 1 and task.request.retries == 0:
        metrics.record_queue_wait(rt.redis, time.time() - state.enqueued_at)
    # Only a redelivered message, a retry or a later attempt can find its job committed.
    first_try = start.deliveries == 1 and attempt == 0 and task.request.retries == 0
    first_attempt_at = (state.first_attempt_at if state else None) or time.time()
    return _run_update(
        task, rt, job_id, user_id, mode, attempt, first_try=first_try,
        first_attempt_at=first_attempt_at,
    )  # fmt: skip


def _delivery_key(job_id: str, attempt: int, celery_retry: int) -> str:
    # Counted per attempt and infrastructure retry: those are new messages, not redeliveries.
    suffix = f":{celery_retry}" if celery_retry else ""
    return f"osutrack:deliveries:{job_id}:{attempt}{suffix}"


def _release_quietly(rt: Runtime) -> None:
    try:
        rt.queue.release()
    except redis.RedisError as exc:
        log.warning("could not release queued updates: %s", exc)


def _run_update(
    task: Task,
    rt: Runtime,
    job_id: str,
    user_id: int,
    mode: int,
    attempt: int,
    *,
    first_try: bool,
    first_attempt_at: float,
) -> str | None:
    """Do the update and publish it; return the outcome for metrics (None: not over yet).

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
        # still roll back. Marked first: the client may read at once, from any replica.
        _mark_written(rt, user_id)
        jobs.finish_job(rt.redis, job_id, user_id, mode, stored, ttl)
    except BudgetExhausted:
        # Not osu!'s failure: the job waits again at its place for the budget to free.
        log.info("no upstream slot in time; back to the queue")
        _send_again(rt, job_id, user_id, mode, attempt, time.time())
        return None
    except UpstreamError as exc:
        return _after_upstream_failure(rt, job_id, user_id, mode, attempt, exc, first_attempt_at)
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


def _mark_written(rt: Runtime, user_id: int) -> None:
    """Record how far a replica must have replayed to show this update (`write_marks`)."""
    with rt.engine.connect() as conn:
        lsn = conn.execute(text(write_marks.CURRENT_POSITION_SQL)).scalar_one()
    ttl = write_marks.ttl_seconds(rt.settings.replica_max_lag_seconds)
    write_marks.record(rt.redis, user_id, lsn, ttl)


def _after_upstream_failure(
    rt: Runtime,
    job_id: str,
    user_id: int,
    mode: int,
    attempt: int,
    exc: UpstreamError,
    first_attempt_at: float,
) -> str | None:
    """Retry a transient failure later while the horizon lasts; fail anything else."""
    settings = rt.settings
    now = time.time()
    horizon_ends = first_attempt_at + settings.osu_api_retry_horizon_seconds
    retry_at = next_retry_at(
        now, attempt, settings.osu_api_retry_backoff_seconds, exc.retry_after, horizon_ends
    )
    if not is_transient(exc) or retry_at is None:
        log.warning("failed upstream: %s", exc)
        jobs.fail_job(
            rt.redis, job_id, user_id, mode, str(exc), exc.http_status,
            settings.job_ttl_seconds, exc.retry_after,
        )  # fmt: skip
        return "failed_upstream"
    log.warning("upstream failed (%s); attempt %d again in %.1f s", exc, attempt + 2,
                retry_at - now)  # fmt: skip
    _send_again(rt, job_id, user_id, mode, attempt, retry_at, last_error=str(exc))
    return None


def _send_again(
    rt: Runtime,
    job_id: str,
    user_id: int,
    mode: int,
    attempt: int,
    not_before: float,
    *,
    last_error: str | None = None,
) -> None:
    """Put the job back in line as its next attempt, released no earlier than
    `not_before`. Its message goes to the retry queue, which is released before the
    jobs accepted after it; the job keeps its acceptance number for `/jobs`."""
    jobs.hold_until(rt.redis, job_id, not_before)
    app.send_task(
        tasknames.UPDATE_USER,
        args=[job_id, user_id, mode, attempt + 1],
        task_id=job_id,
        queue=RETRY_QUEUE,
    )
    jobs.mark_requeued(
        rt.redis,
        job_id,
        attempt + 1,
        last_error=last_error,
        next_attempt_at=not_before if last_error else None,
    )
