"""A job whose delivery keeps killing its worker is failed instead of coming back forever.

Proves the poison guard of `worker.update_job.run_update_job`: the delivery counter of a
message that came back three times (worker lost each time) stops the fourth delivery.
Without the guard, the job below would run and finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from celery import Celery
from conftest import Stack

from osutrack import jobs, tasknames

pytestmark = pytest.mark.integration


def test_a_job_delivered_too_often_is_failed_not_run(
    v2_stack: Stack, redis_url: str, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    job_id, created = jobs.create_or_join_job(client, user, 0, 3600)
    assert created
    # Three earlier deliveries of attempt 0 died with their worker.
    client.set(f"osutrack:deliveries:{job_id}:0", 3, ex=3600)
    producer = Celery("poison-test", broker=redis_url)
    producer.send_task(
        tasknames.UPDATE_USER, args=[job_id, user, 0], task_id=job_id, queue=tasknames.UPDATE_QUEUE
    )
    deadline = time.monotonic() + 30
    state = jobs.read_job(client, job_id)
    while state is not None and not state.is_terminal:
        assert time.monotonic() < deadline
        time.sleep(0.1)
        state = jobs.read_job(client, job_id)
    assert state is not None
    assert (state.status, state.http_status) == ("failed", 502)
    assert "repeatedly" in (state.error or "")
    # It was failed, not run: nothing was stored for the player.
    assert v2_stack.get("/stats_history", user=user, mode=0).json() == []
    producer.close()
