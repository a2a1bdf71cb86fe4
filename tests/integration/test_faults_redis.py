"""Redis restarted while jobs wait in the queue: they survive and run, exactly once.

Mechanisms under test:
- Redis' append-only file (`RedisServer(appendonly=True)`, as in production): the queue,
  the job hashes and the in-flight markers outlive a restart;
- the shim's Redis error handler (api_shim/errors.py) and its bounded Redis timeouts
  (`osutrack.redis_client`, the producer's SEND_RETRY_POLICY): while Redis is away POST /update
  and GET /jobs/{id} answer 503 JSON with Retry-After, promptly, never 500 and never hang,
  and they recover by themselves once Redis is back (no API restart).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.faults import FaultStack, fault_stack, new_fault_user

pytestmark = pytest.mark.integration

# A 503 must come back well within this (the shim's Redis connect timeout is 3 s).
PROMPT_SECONDS = 8.0


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[FaultStack]:
    """A private Redis (AOF on), simulator and API on the session Postgres."""
    with fault_stack(tmp_path, database_url=database_url) as running:
        running.start_api()
        yield running


def _assert_prompt_503(call: requests.Response, started: float) -> None:
    assert call.status_code == 503, (call.status_code, call.text)
    assert call.headers["Content-Type"].startswith("application/json")
    assert int(call.headers["Retry-After"]) > 0
    assert call.json()["error"]
    assert time.monotonic() - started < PROMPT_SECONDS


def test_queued_jobs_survive_a_redis_restart_and_the_shim_answers_503_meanwhile(
    stack: FaultStack,
) -> None:
    # Breaking it: with appendonly off the restart empties Redis, the queue and job hashes
    # are gone, and the job lookups after the restart answer 404 (the first assertion after
    # the restart fails). A shim without the RedisError handler answers 500.
    users = [new_fault_user() for _ in range(3)]
    job_ids = [stack.accept_update(user) for user in users]
    assert stack.redis.llen("updates") == 3
    # Pending AOF writes are flushed on SIGTERM, but a crash would lose up to a second of
    # them (appendfsync everysec): wait past that, so the test does not depend on it.
    time.sleep(1.2)

    stack.redis_server.stop()
    try:
        for attempt in range(3):
            started = time.monotonic()
            _assert_prompt_503(stack.post_update(new_fault_user(), wait=5), started)
            started = time.monotonic()
            _assert_prompt_503(stack.get(f"/jobs/{job_ids[attempt]}"), started)
    finally:
        stack.redis_server.start()

    for job_id in job_ids:
        state = stack.job(job_id)
        assert state is not None
        assert state.status == "queued"
    assert stack.redis.llen("updates") == 3
    # The API recovered without a restart.
    assert stack.get(f"/jobs/{job_ids[0]}").json()["status"] == "queued"

    stack.start_worker("after-restart", concurrency=2)
    for job_id in job_ids:
        body = stack.poll_job(job_id, timeout=30)
        assert body["status"] == "finished", body
    for user, job_id in zip(users, job_ids, strict=True):
        stack.assert_updated_once(user, 0, [job_id])
    # And new work flows end to end again.
    late = new_fault_user()
    response = stack.post_update(late, wait=20)
    assert response.status_code == 200, response.text
    assert response.json()["first"] is True
