"""Postgres stopped and started again during updates: jobs finish once, reads answer 503.

Mechanisms under test:
- the update task's infra retry (worker/update_job.py: DBAPIError retried with backoff, up to
  INFRA_MAX_RETRIES) and the engines' pre-ping (worker/db.py), so a worker survives a
  database restart without being restarted itself;
- the transaction around each update: an update cut off by the shutdown rolls back and
  its retry writes everything once;
- the shim's database error handler: reads answer 503 with Retry-After while Postgres is
  away (not 500), and recover without restarting the API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.faults import FaultStack, fault_stack, new_fault_user, wait_for

pytestmark = pytest.mark.integration

DOWNTIME_SECONDS = 4.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[FaultStack]:
    """Everything private, Postgres included: this test stops it."""
    with fault_stack(tmp_path) as running:
        running.start_api()
        yield running


def test_postgres_restart_during_updates_jobs_retry_and_reads_answer_503(
    stack: FaultStack,
) -> None:
    # Breaking it: without the DBAPIError retry the jobs cut off by the shutdown end as
    # failed (the status check below fails); without the database error handler the reads
    # during the outage answer 500.
    assert stack.postgres is not None
    worker = stack.start_worker("survivor", concurrency=2)
    reader = new_fault_user()
    assert stack.post_update(reader, wait=20).status_code == 200
    assert len(stack.get("/stats_history", user=reader, mode=0).json()) == 1

    stack.set_latency(1000)
    users = [new_fault_user() for _ in range(4)]
    job_ids = [stack.accept_update(user) for user in users]
    wait_for(
        lambda: sum(stack.job(j).status == "running" for j in job_ids) == 2,  # type: ignore[union-attr]
        15,
        "two updates running",
    )
    stack.postgres.stop()
    try:
        started = time.monotonic()
        while time.monotonic() - started < DOWNTIME_SECONDS:
            call_started = time.monotonic()
            read = stack.get("/stats_history", user=reader, mode=0)
            assert read.status_code == 503, (read.status_code, read.text)
            assert int(read.headers["Retry-After"]) > 0
            assert read.json()["error"]
            assert time.monotonic() - call_started < 8
            time.sleep(0.5)
    finally:
        stack.postgres.start()

    # Reads recover without an API restart (a pooled connection died with the server).
    wait_for(
        lambda: stack.get("/stats_history", user=reader, mode=0).status_code == 200,
        10,
        "reads answer again",
        interval=0.3,
    )
    stack.set_latency(0)
    for job_id in job_ids:
        state = stack.wait_terminal(job_id, timeout=40)
        assert state.status == "finished", state
    # The outage did reach the jobs (they did not all slip through before or after it).
    assert "will retry: (psycopg2.OperationalError)" in worker.output()
    for user, job_id in zip(users, job_ids, strict=True):
        stack.assert_updated_once(user, 0, [job_id])
    assert len(stack.get("/stats_history", user=reader, mode=0).json()) == 1
