"""A worker stopped during a burst of updates: no job is lost and none runs twice.

Mechanisms under test:
- SIGTERM is Celery's warm shutdown: the worker stops taking messages, lets the running
  updates finish, acknowledges them, and leaves every other message in the queue;
- `worker_prefetch_multiplier = 1` with acks late: a worker holds only the messages it
  is running, so nothing waiting sits reserved inside a worker that is going away;
- SIGQUIT (a cold shutdown, also what SIGTERM becomes with REMAP_SIGTERM=SIGQUIT) first
  gets `worker_soft_shutdown_timeout` (10 s) of warm phase, then cancels the running
  updates and hands their unacknowledged messages back to Redis at once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.faults import FaultStack, fault_stack, new_fault_user, wait_for

pytestmark = pytest.mark.integration

BURST = 10


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[FaultStack]:
    """A private Redis, simulator and API on the session Postgres."""
    with fault_stack(tmp_path, database_url=database_url) as running:
        running.start_api()
        yield running


def _running(stack: FaultStack, job_ids: list[str]) -> list[str]:
    return [j for j in job_ids if (state := stack.job(j)) is not None and state.status == "running"]


def test_sigterm_during_a_burst_finishes_running_jobs_and_leaves_the_rest_queued(
    stack: FaultStack,
) -> None:
    # Breaking it: with acks early (task_acks_late=False) and a prefetching worker, the
    # messages reserved by the stopping worker would be acknowledged or dropped and some
    # jobs would never finish; with a cold shutdown the running ones would run twice.
    stack.set_latency(1500)
    worker = stack.start_worker("stopping", concurrency=2)
    users = [new_fault_user() for _ in range(BURST)]
    job_ids = [stack.accept_update(user) for user in users]
    wait_for(lambda: len(_running(stack, job_ids)) == 2, 15, "two jobs running")
    running = _running(stack, job_ids)
    worker.kill(signal.SIGTERM)
    # Warm shutdown waits for the two running updates (two 1.5 s upstream calls each).
    assert worker.wait(timeout=30) == 0, worker.output()[-3000:]
    for job_id in running:
        state = stack.job(job_id)
        assert state is not None
        assert state.status == "finished", state
    # Everything else is still queued, untouched: no delivery was attempted.
    waiting = [j for j in job_ids if j not in running]
    assert [stack.job(j).status for j in waiting] == ["queued"] * len(waiting)  # type: ignore[union-attr]
    assert stack.finished_job_ids(waiting) == set()

    stack.set_latency(0)
    stack.start_worker("successor", concurrency=2)
    for job_id in job_ids:
        assert stack.wait_terminal(job_id, timeout=30).status == "finished"
    for user, job_id in zip(users, job_ids, strict=True):
        # Each player was fetched once: no job ran twice.
        assert stack.upstream_requests(user, "v2_user") == 1
        stack.assert_updated_once(user, 0, [job_id])


def test_sigquit_cancels_running_jobs_after_the_soft_shutdown_and_returns_them(
    stack: FaultStack,
) -> None:
    # The two running updates hang upstream (25 s), far longer than the 10 s soft
    # shutdown: the worker
    # must give up on them, and their messages must be back in the queue at once (not
    # after the visibility timeout) for the next worker, which runs them again.
    # A read timeout beyond the hang: the requests are still waiting when the soft
    # shutdown ends, however the two timers meet.
    worker = stack.start_worker("stopping", concurrency=2, OSU_API_TIMEOUT_SECONDS="60")
    users = [new_fault_user() for _ in range(4)]
    for user in users[:2]:
        stack.simulator.add_fault(
            kind="slow", delay_ms=25000, count=-1, path_prefix=f"/api/v2/users/{user}/scores"
        )
    job_ids = [stack.accept_update(user) for user in users[:2]]
    wait_for(lambda: len(_running(stack, job_ids)) == 2, 15, "two jobs running")
    wait_for(
        lambda: all(stack.upstream_requests(u, "v2_user") == 1 for u in users[:2]),
        10,
        "both stuck in their best-scores call",
    )
    job_ids += [stack.accept_update(user) for user in users[2:]]
    stopped = time.monotonic()
    worker.kill(signal.SIGQUIT)
    assert worker.wait(timeout=25) is not None
    assert time.monotonic() - stopped < 20
    assert stack.finished_job_ids(job_ids) == set()

    stack.simulator.clear_faults()
    stack.start_worker("successor", concurrency=2)
    for job_id in job_ids:
        assert stack.wait_terminal(job_id, timeout=30).status == "finished"
    for user, job_id in zip(users, job_ids, strict=True):
        stack.assert_updated_once(user, 0, [job_id])
