"""Celery tasks: thin wrappers that open a session and call the update functions."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError

from osutrack import jobs
from worker.app import app
from worker.bestplays import MODES, refresh_bestplays
from worker.db import session_scope
from worker.peaks import recompute_peaks
from worker.runtime import runtime
from worker.updates import finished_result, update_user
from worker.upstream.errors import UpstreamError

log = logging.getLogger(__name__)

# Postgres or Redis away: wait for it (backoff up to 30 s) for about 3 minutes in all,
# then report the job failed rather than leave its client waiting forever.
INFRA_MAX_RETRIES = 8


@app.task(
    name=jobs.UPDATE_TASK_NAME,
    bind=True,
    max_retries=INFRA_MAX_RETRIES,
    soft_time_limit=90,
    time_limit=120,
)
def update_user_task(self: Task, job_id: str, user_id: int, mode: int) -> None:
    """Run update job `job_id` for (user_id, mode) and publish its outcome in Redis."""
    rt = runtime()
    ttl = rt.settings.job_ttl_seconds
    try:
        with session_scope(rt.engine) as session:
            stored = finished_result(session, job_id)
        if stored is None:
            jobs.mark_running(rt.redis, job_id)
            with session_scope(rt.engine) as session:
                stored = update_user(session, rt.client, user_id, mode, job_id=job_id)
        # Published only after the commit: a waiting client never sees data that could
        # still roll back.
        jobs.finish_job(rt.redis, job_id, user_id, mode, stored, ttl)
    except UpstreamError as exc:
        log.warning("job %s user %s mode %s failed upstream: %s", job_id, user_id, mode, exc)
        jobs.fail_job(
            rt.redis, job_id, user_id, mode, str(exc), exc.http_status, ttl, exc.retry_after
        )
    except SoftTimeLimitExceeded:
        log.warning("job %s user %s mode %s timed out", job_id, user_id, mode)
        jobs.fail_job(rt.redis, job_id, user_id, mode, "the update timed out", 504, ttl)
    except (DBAPIError, redis.RedisError) as exc:
        if self.request.retries >= INFRA_MAX_RETRIES:
            log.error("job %s user %s mode %s gave up: %s", job_id, user_id, mode, exc)
            jobs.fail_job(rt.redis, job_id, user_id, mode, "storage is unavailable", 503, ttl, 30)
            return
        log.warning("job %s user %s mode %s will retry: %s", job_id, user_id, mode, exc)
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 30)) from exc


@app.task(name="osutrack.refresh_bestplays", ignore_result=True)
def refresh_bestplays_task() -> None:
    """Rebuild every mode's bestplays table (one transaction per mode)."""
    rt = runtime()
    # One refresh at a time even if beat fires again while a slow one runs.
    with rt.redis.lock("osutrack:lock:bestplays", timeout=300, blocking_timeout=0) as held:
        if not held:
            return
        for mode in MODES:
            with session_scope(rt.engine) as session:
                refresh_bestplays(
                    session, mode, rt.settings.bestplays_table_size, datetime.now(UTC)
                )


@app.task(name="osutrack.recompute_peaks", ignore_result=True)
def recompute_peaks_task() -> None:
    """Repair pass: rebuild the peaks table from the stored snapshots."""
    rt = runtime()
    with rt.redis.lock("osutrack:lock:peaks", timeout=1800, blocking_timeout=0) as held:
        if not held:
            return
        with session_scope(rt.engine) as session:
            recompute_peaks(session)
