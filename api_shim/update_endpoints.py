"""POST /update (enqueue or join an update job, wait for it) and GET /jobs/{job_id}."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

import falcon.asgi
import redis
from spectree import Response

from api_shim import params
from api_shim.docs import TOO_MANY_REQUESTS, spec
from api_shim.errors import ApiError
from api_shim.models import ErrorBody, Job, JobError, UpdateDiff, UpdateQuery
from api_shim.prefer import choose_wait, parse_prefer
from api_shim.ratelimit import READ, UPDATE, InboundRateLimit
from api_shim.respond import RETRY_AFTER_SECONDS, send_error, send_json
from api_shim.services import Services
from osutrack import jobs, queue
from osutrack.budget import RateWindow
from osutrack.timefmt import iso_z

log = logging.getLogger(__name__)

TAGS = ["update"]
# Job ids are uuid4 strings made by `jobs.create_or_join_job`; anything else cannot exist,
# so it is answered without a Redis round trip.
_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_FAILED_STATUSES = range(400, 600)
# A backlog over MAX_QUEUE_DEPTH drains at the upstream budget's pace (minutes, not
# seconds), so clients are asked to come back after a minute rather than hammer it.
QUEUE_FULL_RETRY_AFTER_SECONDS = 60


def _iso(moment: float | None) -> str | None:
    return None if moment is None else iso_z(datetime.fromtimestamp(moment, UTC))


def place_of(client: redis.Redis, state: jobs.JobState, windows: list[RateWindow]) -> queue.Place:
    """Where the job stands: its queue place while queued, else 0 and now."""
    if state.status == jobs.QUEUED:
        return queue.place_of(client, state.job_id, windows)
    return queue.Place(0, time.time())


def job_body(state: jobs.JobState, place: queue.Place) -> dict[str, Any]:
    """The job resource, in its documented key order."""
    queued = state.status == jobs.QUEUED
    return {
        "job_id": state.job_id,
        "status": state.status,
        "user": state.user_id,
        "mode": state.mode,
        "position": place.position if queued else None,
        "eta": _iso(place.eta) if queued else None,
        "enqueued_at": _iso(state.enqueued_at),
        "started_at": _iso(state.started_at),
        "finished_at": _iso(state.finished_at),
        "result": state.result if state.status == jobs.FINISHED else None,
        "error": state.error,
        "last_upstream_error": state.last_error if not state.is_terminal else None,
        "next_attempt_at": _iso(state.next_attempt_at) if queued else None,
        "attempt": state.attempt,
    }


class UpdateResource:
    """POST /update: one job per user and mode in flight, shared by concurrent callers."""

    rate_limit = UPDATE

    def __init__(self, services: Services, inbound_limit: InboundRateLimit) -> None:
        self._services = services
        self._inbound_limit = inbound_limit

    @spec.validate(
        query=UpdateQuery,
        resp=Response(
            HTTP_200=UpdateDiff,
            HTTP_202=Job,
            HTTP_400=ErrorBody,
            HTTP_429=TOO_MANY_REQUESTS,
            HTTP_502=JobError,
            HTTP_503=(
                ErrorBody,
                "Redis or the broker is down, or more than MAX_QUEUE_DEPTH updates are "
                "queued and this request would add one (joining the update in flight for "
                "the same user and mode is still answered); `Retry-After` gives the "
                "seconds to wait.",
            ),
        ),
        tags=TAGS,
    )
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Update a user

        Fetches the user's current stats and top plays, stores them, and answers the
        change since their previous update. A request joins the update already in flight
        for the same user and mode. Every accepted job runs in its turn, as the osu! API
        budget allows. The request waits up to `wait` seconds (default
        UPDATE_WAIT_SECONDS); `Prefer: respond-async` (RFC 7240) asks for 202 at once and
        `Prefer: wait=N` sets the wait, and `Preference-Applied` says what was honoured.
        When the job is not done in time, the answer is 202 with the job, `Location:
        /jobs/{job_id}` to poll and `Retry-After` with the estimated start.
        """
        query: UpdateQuery = req.context.query
        settings = self._services.settings
        # Checked after user and mode (the model's rules), as its bound is a setting.
        wait_param = (
            None
            if query.wait is None
            else params.parse_wait(query.wait, 0.0, settings.update_wait_max_seconds)
        )
        choice = choose_wait(
            parse_prefer(req.get_header("Prefer")),
            wait_param,
            settings.update_wait_seconds,
            settings.update_wait_max_seconds,
        )
        self._inbound_limit.take_update(req)
        if choice.applied:
            resp.set_header("Preference-Applied", choice.applied)
        broker = self._services.broker
        client = broker.redis
        blocking = self._services.blocking
        job_id = await blocking.run(self._create_or_join, client, query.user, query.mode)
        state = await self._services.job_waits.wait_for_job(client, job_id, choice.seconds)
        if state is None:
            # The job's state expired or was dropped (e.g. Redis restarted) meanwhile.
            raise ApiError(503, "update job was lost; try again", retry_after=RETRY_AFTER_SECONDS)
        if state.status == jobs.FINISHED:
            send_json(resp, state.result)
        elif state.status == jobs.FAILED:
            _send_failure(resp, state)
        else:
            place = await blocking.run(place_of, client, state, broker.budget_windows)
            resp.set_header("Location", f"/jobs/{job_id}")
            resp.set_header("Retry-After", str(queue.retry_after_seconds(place)))
            send_json(resp, job_body(state, place), 202)

    def _create_or_join(self, client: redis.Redis, user_id: int, mode: int) -> str:
        """The id of the job in flight for this user and mode, enqueued if it is new."""
        settings = self._services.settings
        _refuse_when_backlogged(client, user_id, mode, settings.max_queue_depth)
        job_id, created = jobs.create_or_join_job(client, user_id, mode, settings.job_ttl_seconds)
        if created:
            self._enqueue(client, job_id, user_id, mode)
        return job_id

    def _enqueue(self, client: redis.Redis, job_id: str, user_id: int, mode: int) -> None:
        broker = self._services.broker
        try:
            broker.send_update(job_id, user_id, mode)
        except Exception as err:
            # Whatever stopped the send, the job must not stay registered as in flight,
            # or every later request would join a job no worker will ever run.
            log.warning("Could not enqueue update job %s: %s", job_id, err)
            jobs.abandon_job(client, job_id, user_id, mode)
            raise ApiError(
                503, "update queue unavailable", retry_after=RETRY_AFTER_SECONDS
            ) from err
        try:
            # The job may run at once if the budget has room; otherwise a worker's timer
            # releases it in its turn.
            broker.queue.release()
        except redis.RedisError as err:
            log.warning("Could not release queued updates: %s", err)


def _refuse_when_backlogged(client: redis.Redis, user_id: int, mode: int, max_depth: int) -> None:
    """Raise 503 instead of queueing a new job while the update queue is over `max_depth`.

    A request that will join the job already in flight for its user and mode queues
    nothing, so it is let through. Checking here and creating the job afterwards is not
    atomic: concurrent requests may each see room and push the queue a few messages past
    the cap, which only bounds the backlog a little less tightly.
    """
    depth = queue.depth(client)
    if depth <= max_depth or client.exists(jobs.inflight_key(user_id, mode)):
        return
    raise ApiError(
        503,
        "Too many updates queued; try again later",
        retry_after=QUEUE_FULL_RETRY_AFTER_SECONDS,
    )


def _send_failure(resp: falcon.asgi.Response, state: jobs.JobState) -> None:
    status = state.http_status or 502
    if status not in _FAILED_STATUSES:
        status = 502
    retry_after = state.retry_after
    if retry_after is None and status == 503:
        retry_after = RETRY_AFTER_SECONDS
    send_error(
        resp,
        status,
        state.error or "update failed",
        retry_after=retry_after,
        job_id=state.job_id,
    )


class JobResource:
    """GET /jobs/{job_id}: the state of an update job."""

    rate_limit = READ

    def __init__(self, services: Services) -> None:
        self._services = services

    @spec.validate(
        resp=Response(
            HTTP_200=Job, HTTP_404=ErrorBody, HTTP_429=TOO_MANY_REQUESTS, HTTP_503=ErrorBody
        ),
        tags=TAGS,
        path_parameter_descriptions={"job_id": "The id from a 202 answer of POST /update"},
    )
    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, job_id: str
    ) -> None:
        """Get an update job

        Jobs are kept for JOB_TTL_SECONDS after they finish. While the job is queued,
        `position` is its 0-based place in the update queue and `eta` its estimated
        start; after a transient osu! API failure it waits for `next_attempt_at`, with
        that failure in `last_upstream_error`.
        """
        if not _JOB_ID.fullmatch(job_id):
            raise ApiError(404, "Job not found")
        broker = self._services.broker
        body = await self._services.blocking.run(
            _job_resource, broker.redis, job_id, broker.budget_windows
        )
        if body is None:
            raise ApiError(404, "Job not found")
        send_json(resp, body)

    async def on_head(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, job_id: str
    ) -> None:
        await self.on_get(req, resp, job_id)


def _job_resource(
    client: redis.Redis, job_id: str, windows: list[RateWindow]
) -> dict[str, Any] | None:
    state = jobs.read_job(client, job_id)
    return None if state is None else job_body(state, place_of(client, state, windows))
