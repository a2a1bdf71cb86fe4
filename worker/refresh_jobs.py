"""The scheduled refresh on the workers: queue the due batches, check one batch.

Both acknowledge their message on receipt: a lost batch comes back when its reservation
lease ends (`refresh.plan_refresh`), so neither holds a message for long.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from osutrack import metrics, tasknames
from osutrack.tasknames import REFRESH_QUEUE
from worker.app import app
from worker.db import session_scope
from worker.refresh import plan_refresh, refresh_user_modes
from worker.retry import next_retry_at
from worker.runtime import runtime
from worker.schedule import refresh_round_size
from worker.upstream.errors import BudgetExhausted, UpstreamError, is_transient
from worker.upstream.limiter import COOLDOWN_KEY, REFRESH, upstream_priority

log = logging.getLogger(__name__)


def queue_due_refreshes() -> None:
    """Reserve the user-modes due for a check and queue a refresh batch for each group."""
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
            tasknames.REFRESH_USERS, args=[[list(pair) for pair in batch]], queue=REFRESH_QUEUE
        )
    if batches:
        log.info("queued %d refresh batches", len(batches))


def run_refresh_batch(
    user_modes: list[list[int]], first_attempt_at: float | None, attempt: int
) -> None:
    """Check a batch of user-modes within the refresh share of the upstream budget; a
    transient upstream failure sends the batch again within the retry horizon."""
    rt = runtime()
    pairs = [(int(user_id), int(mode)) for user_id, mode in user_modes]
    started = first_attempt_at or time.time()
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
        retry_at = None
        if is_transient(exc) and not isinstance(exc, BudgetExhausted):
            retry_at = next_retry_at(
                time.time(),
                attempt,
                rt.settings.osu_api_retry_backoff_seconds,
                exc.retry_after,
                started + rt.settings.osu_api_retry_horizon_seconds,
            )
        if retry_at is None:
            log.warning("refresh of %d user-modes failed upstream: %s", len(pairs), exc)
            metrics.record_refresh(rt.redis, "failed", len(pairs))
            return
        log.warning("refresh of %d user-modes failed upstream (%s); again in %.1f s",
                    len(pairs), exc, retry_at - time.time())  # fmt: skip
        # A countdown below the broker's visibility timeout (retry.MAX_RETRY_DELAY_SECONDS),
        # so the worker holding the message until then is never mistaken for a dead one.
        app.send_task(
            tasknames.REFRESH_USERS,
            args=[user_modes, started, attempt + 1],
            countdown=max(retry_at - time.time(), 0.0),
            queue=REFRESH_QUEUE,
        )
        return
    for outcome, count in outcomes.items():
        metrics.record_refresh(rt.redis, outcome, count)
