"""Every accepted update finishes: a queue paced by the upstream budget (osutrack/queue.py).

Real API, workers, Redis, Postgres and simulator (`fault_stack`); the budget is small, so
the queue, not the workers, sets the pace.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from celery import Celery
from support.faults import FaultStack, budget_overruns, fault_stack, new_fault_user, wait_for
from support.processes import wait_until_exited

from osutrack import jobs
from osutrack.tasknames import REFRESH_QUEUE

pytestmark = pytest.mark.integration

RATE = 10  # upstream requests per second
BURST = 200
REFRESH_BATCHES = 4


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[FaultStack]:
    with fault_stack(tmp_path, database_url=database_url, OSU_API_RATE_LIMIT=f"{RATE}/second") as s:
        s.start_api()
        yield s


def test_a_burst_at_a_small_budget_all_finishes_in_acceptance_order_before_the_refresh(
    stack: FaultStack,
) -> None:
    # One update process, so "starts in acceptance order" is exact; a refresh worker with
    # a backlog of its own competes for the same budget.
    stack.start_worker("updates", concurrency=1, queues="updates")
    stack.start_worker("refresher", concurrency=1, queues="refresh,maintenance")
    users = [new_fault_user() for _ in range(BURST)]
    # A quarter of the burst at once, to see concurrent acceptance work; the rest one after
    # the other, each accepted before the next is sent, so their order is defined.
    concurrent = BURST // 4
    with ThreadPoolExecutor(max_workers=16) as pool:
        job_ids = list(pool.map(stack.accept_update, users[:concurrent]))
    job_ids += [stack.accept_update(user) for user in users[concurrent:]]
    refresh_users = [new_fault_user() for _ in range(REFRESH_BATCHES * 10)]
    producer = Celery("queue-test", broker=stack.redis_server.url)
    for start in range(0, len(refresh_users), 10):
        producer.send_task(
            "osutrack.refresh_users",
            args=[[[user, 0] for user in refresh_users[start : start + 10]]],
            queue=REFRESH_QUEUE,
        )
    producer.close()

    # Positions and the wait until the estimated start go down as the queue drains.
    last = job_ids[-1]
    samples = []
    while True:
        body = stack.get(f"/jobs/{last}").json()
        if body["status"] != "queued":
            break
        eta = datetime.strptime(body["eta"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
        samples.append((body["position"], eta.timestamp() - time.time()))
        assert body["position"] is not None
        time.sleep(3)
    assert len(samples) >= 3, samples
    positions = [position for position, _ in samples]
    assert positions == sorted(positions, reverse=True)
    assert positions[-1] < positions[0]
    remaining = [seconds for _, seconds in samples]
    # Printed at whole seconds: the estimate may round up by one between two samples.
    assert all(later <= earlier + 1 for earlier, later in itertools.pairwise(remaining))
    assert remaining[-1] < remaining[0]

    states = [stack.wait_terminal(job_id, timeout=120) for job_id in job_ids]
    assert [state.status for state in states] == ["finished"] * BURST
    # Jobs accepted one after the other started in that order, after every job accepted
    # before them.
    started = {
        job_id: float(stack.redis.hget(jobs.job_key(job_id), "started_at") or 0)
        for job_id in job_ids
    }
    in_order = [started[job_id] for job_id in job_ids[concurrent:]]
    assert in_order == sorted(in_order)
    assert max(started[job_id] for job_id in job_ids[:concurrent]) < in_order[0]

    log = stack.simulator.requests_log()
    # The budget held at the simulator's door, for the updates and the refresh together.
    assert budget_overruns(log, RATE, 1.0) == []
    # The refresh got its first request only once the last update had (at most one slot
    # can go to it in the moment between the last release and that update's request).
    interactive = {f"/users/{user}/" for user in users}
    last_update = max(
        entry["arrived"] for entry in log if any(part in entry["path"] for part in interactive)
    )
    early_refresh = [
        entry
        for entry in log
        if entry["endpoint"] == "v2_users_batch" and entry["arrived"] < last_update
    ]
    assert len(early_refresh) <= 1, early_refresh
    # Each written once (checked last: the check asks the simulator itself).
    for user, job_id in zip(users, job_ids, strict=True):
        stack.assert_updated_once(user, 0, [job_id])


def test_a_worker_killed_while_jobs_wait_for_the_budget_loses_and_doubles_nothing(
    stack: FaultStack,
) -> None:
    first = stack.start_worker("first", concurrency=2, queues="updates")
    users = [new_fault_user() for _ in range(30)]
    job_ids = [stack.accept_update(user) for user in users]
    # Some jobs ran: the rest wait for the budget in Redis, not in the worker.
    wait_for(lambda: len(stack.finished_job_ids(job_ids)) >= 5, 30, "five jobs finish")
    main = psutil.Process(first.pid)
    tree = [main, *main.children(recursive=True)]
    for process in tree:
        process.kill()
    for process in tree:
        wait_until_exited(process.pid, timeout=10)
    stack.start_worker("second", concurrency=2, queues="updates")
    # A job the killed worker had taken comes back after the broker's visibility timeout.
    states = [stack.wait_terminal(job_id, timeout=150) for job_id in job_ids]
    assert [state.status for state in states] == ["finished"] * len(job_ids)
    for user, job_id in zip(users, job_ids, strict=True):
        stack.assert_updated_once(user, 0, [job_id])
