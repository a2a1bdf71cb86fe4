"""Update-job state in Redis: the contract between the API shim and the workers.

A job is a hash `osutrack:job:{job_id}` holding its status and, once finished, the diff
body the shim returns. The shim never calls Celery's `AsyncResult.get()` (not thread-safe,
celery issues 4480 and 6335): the worker pushes a token onto `osutrack:done:{job_id}` after
it has committed, and waiting shim threads `BLPOP` that list, each pushing the token back
for the next waiter, so any number of clients waiting on one job all wake.

`osutrack:inflight:{mode}:{user_id}` names the job currently queued or running for a user
and mode, so concurrent requests share one job and the upstream is fetched once. How queued
jobs reach the workers is `osutrack.queue`'s part.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from osutrack.queue import (
    DISPATCHED_KEY,
    JOB_KEY_PREFIX,
    ORDER_KEY,
    RELEASED_AT_KEY,
    RELEASED_KEY,
    SEQ_KEY,
)

QUEUED = "queued"
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
TERMINAL_STATUSES = frozenset({FINISHED, FAILED})

DONE_SIGNAL_TTL_SECONDS = 300
DONE_CHANNEL = "osutrack:jobs:done"


def job_key(job_id: str) -> str:
    return JOB_KEY_PREFIX + job_id


def done_key(job_id: str) -> str:
    return f"osutrack:done:{job_id}"


def inflight_key(user_id: int, mode: int) -> str:
    return f"osutrack:inflight:{mode}:{user_id}"


@dataclass(frozen=True)
class JobState:
    """What is known about one update job."""

    job_id: str
    status: str
    user_id: int
    mode: int
    enqueued_at: float
    started_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    http_status: int | None = None
    retry_after: int | None = None
    # While a job waits to retry after a transient upstream failure: that failure, and
    # when the next attempt may start (Unix seconds).
    last_error: str | None = None
    next_attempt_at: float | None = None
    # Unix seconds of the first attempt (the retry horizon counts from it), and how many
    # times the job was sent back to the queue.
    first_attempt_at: float | None = None
    attempt: int = 0

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def _optional_float(raw: str | None) -> float | None:
    return float(raw) if raw else None


def _optional_int(raw: str | None) -> int | None:
    return int(raw) if raw else None


def read_job(client: redis.Redis, job_id: str) -> JobState | None:
    """The job's current state, or None if no such job is known (or it expired)."""
    fields: dict[str, str] = client.hgetall(job_key(job_id))  # type: ignore[assignment]
    return _state_of(job_id, fields)


# One round trip when a worker takes a job's message: count the delivery (the poison guard),
# drop the job's reservation, its released copy and its place in line, and mark it
# running, unless the message
# is a stale copy (its attempt is not the job's current one). Returns the delivery count,
# the job's fields (empty when unknown) and "ok" or "stale".
_START = """
local deliveries = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[5], ARGV[2])
  redis.call('HDEL', KEYS[6], ARGV[2])
  return {deliveries, {}, 'ok'}
end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= attempt then
  return {deliveries, redis.call('HGETALL', KEYS[1]), 'stale'}
end
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('HDEL', KEYS[6], ARGV[2])
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' or status == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[4])
  redis.call('HSETNX', KEYS[1], 'first_attempt_at', ARGV[4])
  redis.call('HDEL', KEYS[1], 'next_attempt_at', 'not_before')
end
return {deliveries, redis.call('HGETALL', KEYS[1]), 'ok'}
"""


@dataclass(frozen=True)
class Start:
    """What a worker learns when it takes a job's message."""

    state: JobState | None
    deliveries: int
    stale: bool


def start_job(
    client: redis.Redis,
    job_id: str,
    attempt: int | None,
    counter_key: str,
    counter_ttl_seconds: int,
) -> Start:
    """Take the job's message (see `_START`); `attempt` None accepts any attempt."""
    deliveries, flat, verdict = client.eval(  # type: ignore[misc,str-unpack]
        _START,
        6,
        job_key(job_id),
        counter_key,
        DISPATCHED_KEY,
        ORDER_KEY,
        RELEASED_AT_KEY,
        RELEASED_KEY,
        counter_ttl_seconds,
        job_id,
        "" if attempt is None else attempt,
        repr(time.time()),
    )
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    return Start(_state_of(job_id, fields), int(deliveries), verdict == "stale")


def hold_until(client: redis.Redis, job_id: str, not_before: float) -> None:
    """Keep the queue from releasing the job before `not_before` (Unix seconds).

    Set before the retry message is sent, so no release can take that message early.
    """
    client.hset(job_key(job_id), "not_before", str(int(not_before * 1000)))


# The job is back in line with its acceptance number: queued, on its next attempt.
_REQUEUED = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'queued' and status ~= 'running' then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempt', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'last_error', ARGV[3], 'next_attempt_at', ARGV[4])
end
local seq = redis.call('HGET', KEYS[1], 'seq')
if seq then
  redis.call('ZADD', KEYS[2], seq, ARGV[1])
end
return 1
"""


def mark_requeued(
    client: redis.Redis,
    job_id: str,
    attempt: int,
    *,
    last_error: str | None = None,
    next_attempt_at: float | None = None,
) -> None:
    """Record that the job waits again at its place, on `attempt`; with `last_error`,
    after a transient upstream failure, until `next_attempt_at`."""
    client.eval(
        _REQUEUED,
        2,
        job_key(job_id),
        ORDER_KEY,
        job_id,
        attempt,
        last_error or "",
        repr(next_attempt_at or time.time()),
    )


def _state_of(job_id: str, fields: dict[str, str]) -> JobState | None:
    if not fields:
        return None
    result = fields.get("result")
    return JobState(
        job_id=job_id,
        status=fields["status"],
        user_id=int(fields["user_id"]),
        mode=int(fields["mode"]),
        enqueued_at=float(fields["enqueued_at"]),
        started_at=_optional_float(fields.get("started_at")),
        finished_at=_optional_float(fields.get("finished_at")),
        result=json.loads(result) if result else None,
        error=fields.get("error") or None,
        http_status=_optional_int(fields.get("http_status")),
        retry_after=_optional_int(fields.get("retry_after")),
        last_error=fields.get("last_error") or None,
        next_attempt_at=_optional_float(fields.get("next_attempt_at")),
        first_attempt_at=_optional_float(fields.get("first_attempt_at")),
        attempt=int(fields.get("attempt") or 0),
    )


# Atomically join the job in flight for (user, mode) or register a new one. Doing the check
# and the registration in one script closes the race where two requests both see no job and
# both enqueue one.
_CREATE_OR_JOIN = """
local existing = redis.call('GET', KEYS[1])
if existing then
  local status = redis.call('HGET', 'osutrack:job:' .. existing, 'status')
  if status == 'queued' or status == 'running' then
    return {existing, 0}
  end
end
local seq = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('HSET', KEYS[2], 'status', 'queued', 'user_id', ARGV[3], 'mode', ARGV[4],
           'enqueued_at', ARGV[5], 'seq', seq)
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[4], seq, ARGV[1])
return {ARGV[1], 1}
"""


def create_or_join_job(
    client: redis.Redis, user_id: int, mode: int, job_ttl_seconds: int
) -> tuple[str, bool]:
    """Return (job_id, created): the job in flight for this user and mode, or a new one.

    When `created` is True the caller must enqueue the task for the new job id; when it is
    False another request already did. A new job takes the next acceptance number, its
    place in the queue. The in-flight marker lives as long as the job's state: a queued
    job is never lost (it waits in Redis), so it is joined however long the queue is.
    """
    new_id = str(uuid.uuid4())
    job_id, created = client.eval(  # type: ignore[misc,str-unpack]
        _CREATE_OR_JOIN,
        4,
        inflight_key(user_id, mode),
        job_key(new_id),
        SEQ_KEY,
        ORDER_KEY,
        new_id,
        job_ttl_seconds,
        user_id,
        mode,
        repr(time.time()),
    )
    return str(job_id), bool(created)


def abandon_job(client: redis.Redis, job_id: str, user_id: int, mode: int) -> None:
    """Forget a job that could not be enqueued, so the next request creates a fresh one."""
    _release_inflight(client, job_id, user_id, mode)
    client.delete(job_key(job_id))
    client.zrem(ORDER_KEY, job_id)


# Compare-and-delete: only the job that owns the in-flight marker may clear it, so a late
# redelivered copy cannot release the marker of a newer job for the same user.
_RELEASE_INFLIGHT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _release_inflight(client: redis.Redis, job_id: str, user_id: int, mode: int) -> None:
    client.eval(_RELEASE_INFLIGHT, 1, inflight_key(user_id, mode), job_id)


def _complete(
    client: redis.Redis,
    job_id: str,
    user_id: int,
    mode: int,
    fields: dict[str, str],
    job_ttl_seconds: int,
) -> None:
    key = job_key(job_id)
    pipe = client.pipeline(transaction=True)
    pipe.hset(
        key,
        mapping={
            "user_id": str(user_id),
            "mode": str(mode),
            "finished_at": repr(time.time()),
            **fields,
        },
    )
    pipe.hsetnx(key, "enqueued_at", repr(time.time()))
    pipe.hdel(key, "next_attempt_at", "not_before")
    pipe.expire(key, job_ttl_seconds)
    pipe.zrem(ORDER_KEY, job_id)
    pipe.zrem(DISPATCHED_KEY, job_id)
    pipe.zrem(RELEASED_AT_KEY, job_id)
    pipe.hdel(RELEASED_KEY, job_id)
    pipe.delete(done_key(job_id))
    pipe.lpush(done_key(job_id), "1")
    pipe.publish(DONE_CHANNEL, job_id)
    pipe.expire(done_key(job_id), DONE_SIGNAL_TTL_SECONDS)
    # Released in the same round trip, after the state is final: a request that comes in
    # once the marker is gone finds this job terminal and starts a new one.
    pipe.eval(_RELEASE_INFLIGHT, 1, inflight_key(user_id, mode), job_id)
    pipe.execute()


def finish_job(
    client: redis.Redis,
    job_id: str,
    user_id: int,
    mode: int,
    result: dict[str, Any],
    job_ttl_seconds: int,
) -> None:
    """Publish a finished job's diff body and wake its waiters. Call after the commit."""
    _complete(
        client,
        job_id,
        user_id,
        mode,
        {"status": FINISHED, "result": json.dumps(result), "http_status": "200"},
        job_ttl_seconds,
    )


def fail_job(
    client: redis.Redis,
    job_id: str,
    user_id: int,
    mode: int,
    error: str,
    http_status: int,
    job_ttl_seconds: int,
    retry_after: int | None = None,
) -> None:
    """Publish a failed job (`http_status` is what the shim answers: 502 or 503)."""
    fields = {"status": FAILED, "error": error, "http_status": str(http_status)}
    if retry_after is not None:
        fields["retry_after"] = str(retry_after)
    _complete(client, job_id, user_id, mode, fields, job_ttl_seconds)


def wait_for_job(client: redis.Redis, job_id: str, timeout: float) -> JobState | None:
    """Wait up to `timeout` seconds for the job to finish or fail; return its state.

    Returns None if the job is unknown. The returned state may still be queued or running
    when the timeout passed first.
    """
    state = read_job(client, job_id)
    if state is None or state.is_terminal or timeout <= 0:
        return state
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        # BLPOP takes whole or fractional seconds; 0 would mean "forever".
        popped = client.blpop([done_key(job_id)], timeout=max(remaining, 0.01))
        if popped is not None:
            # Hand the token on so every other client waiting on this job wakes too.
            pipe = client.pipeline(transaction=True)
            pipe.lpush(done_key(job_id), "1")
            pipe.expire(done_key(job_id), DONE_SIGNAL_TTL_SECONDS)
            pipe.execute()
            break
        # A job can end without a token (its state expired, Redis restarted): re-check.
        state = read_job(client, job_id)
        if state is None or state.is_terminal:
            return state
    return read_job(client, job_id)
