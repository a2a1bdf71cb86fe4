"""`api_shim.jobwait` against a real Redis: woken by the done channel, or by the recheck."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis

from api_shim.blocking import BlockingPool
from api_shim.jobwait import JobWaits
from osutrack import jobs

TTL = 600
RESULT = {"username": "peppy", "first": True}
# Far longer than any test here: a waiter woken before it was woken by the channel.
NEVER = 3600.0
# The longest a waiter waits in these tests; reaching it means nothing woke the waiter.
DEADLINE = 30.0


def _new_job(client: redis.Redis, user: int) -> str:
    job_id, created = jobs.create_or_join_job(client, user, 0, TTL)
    assert created
    return job_id


async def _until_waiting(waits: JobWaits, count: int) -> None:
    while waits.waiting < count:
        await asyncio.sleep(0.01)


def test_the_worker_publishes_the_job_id_after_the_final_state(
    redis_client: redis.Redis,
) -> None:
    job_id = _new_job(redis_client, 11)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(jobs.DONE_CHANNEL)
    try:
        jobs.finish_job(redis_client, job_id, 11, 0, RESULT, TTL)
        message = pubsub.get_message(timeout=DEADLINE)
        while message is None:
            message = pubsub.get_message(timeout=DEADLINE)
    finally:
        pubsub.close()
    assert message["data"] == job_id
    # The token of the BLPOP waiters is still pushed.
    assert redis_client.lrange(jobs.done_key(job_id), 0, -1) == ["1"]


def test_every_waiter_of_a_job_is_woken_by_the_done_channel(
    redis_client: redis.Redis, redis_url: str
) -> None:
    job_id = _new_job(redis_client, 12)
    waits = JobWaits(redis_url, BlockingPool(2), recheck_seconds=NEVER)

    async def scenario() -> list[jobs.JobState | None]:
        waiting = [
            asyncio.ensure_future(waits.wait_for_job(redis_client, job_id, DEADLINE))
            for _ in range(3)
        ]
        await _until_waiting(waits, 3)
        await asyncio.to_thread(jobs.finish_job, redis_client, job_id, 12, 0, RESULT, TTL)
        return await asyncio.gather(*waiting)

    states = asyncio.run(scenario())
    assert [state.status if state else None for state in states] == [jobs.FINISHED] * 3
    assert all(state is not None and state.result == RESULT for state in states)
    assert waits.waiting == 0


def test_a_job_that_ended_unannounced_is_found_by_the_recheck(
    redis_client: redis.Redis, redis_url: str
) -> None:
    job_id = _new_job(redis_client, 13)
    waits = JobWaits(redis_url, BlockingPool(2), recheck_seconds=0.05)

    async def scenario() -> jobs.JobState | None:
        waiting = asyncio.ensure_future(waits.wait_for_job(redis_client, job_id, DEADLINE))
        await _until_waiting(waits, 1)
        # The final state, without the message (lost across a reconnect, say).
        redis_client.hset(
            jobs.job_key(job_id),
            mapping={"status": jobs.FAILED, "error": "upstream down", "http_status": "502"},
        )
        return await waiting

    state = asyncio.run(scenario())
    assert state is not None
    assert (state.status, state.error, state.http_status) == (jobs.FAILED, "upstream down", 502)


def test_a_waiter_whose_job_vanished_gets_none(redis_client: redis.Redis, redis_url: str) -> None:
    job_id = _new_job(redis_client, 14)
    waits = JobWaits(redis_url, BlockingPool(2), recheck_seconds=0.05)

    async def scenario() -> jobs.JobState | None:
        waiting = asyncio.ensure_future(waits.wait_for_job(redis_client, job_id, DEADLINE))
        await _until_waiting(waits, 1)
        redis_client.delete(jobs.job_key(job_id))
        return await waiting

    assert asyncio.run(scenario()) is None


@pytest.mark.parametrize("timeout", [0.0, 0.2])
def test_the_wait_ends_at_its_deadline_with_the_job_still_queued(
    redis_client: redis.Redis, redis_url: str, timeout: float
) -> None:
    job_id = _new_job(redis_client, 15)
    waits = JobWaits(redis_url, BlockingPool(2), recheck_seconds=NEVER)
    state = asyncio.run(waits.wait_for_job(redis_client, job_id, timeout))
    assert state is not None
    assert (state.status, state.user_id, state.mode) == (jobs.QUEUED, 15, 0)
    assert waits.waiting == 0


def test_a_finished_job_is_answered_without_waiting(
    redis_client: redis.Redis, redis_url: str
) -> None:
    job_id = _new_job(redis_client, 16)
    jobs.finish_job(redis_client, job_id, 16, 0, RESULT, TTL)
    waits = JobWaits(redis_url, BlockingPool(2), recheck_seconds=NEVER)
    state = asyncio.run(waits.wait_for_job(redis_client, job_id, NEVER))
    assert state is not None
    assert state.status == jobs.FINISHED
    assert json.dumps(state.result) == json.dumps(RESULT)


def test_an_unknown_job_is_none(redis_client: redis.Redis, redis_url: str) -> None:
    waits = JobWaits(redis_url, BlockingPool(2), recheck_seconds=NEVER)
    missing = "00000000-0000-4000-8000-000000000000"
    assert asyncio.run(waits.wait_for_job(redis_client, missing, DEADLINE)) is None


def test_waiters_are_woken_when_the_channel_cannot_be_reached(
    redis_client: redis.Redis,
) -> None:
    job_id = _new_job(redis_client, 17)
    # The listener's Redis is a port nothing listens on: it cannot subscribe nor recheck,
    # so it wakes the waiter, which reads its job itself (through a Redis that works
    # here; while Redis is down that read fails and the request answers 503).
    waits = JobWaits("redis://127.0.0.1:9/0", BlockingPool(2), recheck_seconds=NEVER)
    state = asyncio.run(waits.wait_for_job(redis_client, job_id, NEVER))
    assert state is not None
    assert state.status == jobs.QUEUED
