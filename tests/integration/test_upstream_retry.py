"""A passing osu! hiccup does not fail an update: transient failures are retried over
OSU_API_RETRY_HORIZON_SECONDS from the queue, never by a worker process that waits.

Real API, workers, Redis, Postgres and simulator (`fault_stack`); the simulator's faults
are the outage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from support.faults import FaultStack, budget_overruns, fault_stack, new_fault_user, wait_for

from osutrack import upstream_status
from osutrack.tasknames import MAINTENANCE_QUEUE

pytestmark = pytest.mark.integration

USER_PATHS = "/api/v2/users/"


@pytest.fixture
def tmp_stack(tmp_path: Path, database_url: str) -> Iterator[Any]:
    """`tmp_stack(**env)`: a private stack with an API and the given settings."""
    stacks: list[Any] = []

    def build(**env: str) -> FaultStack:
        context = fault_stack(tmp_path / f"stack{len(stacks)}", database_url=database_url, **env)
        stack = context.__enter__()
        stacks.append(context)
        stack.start_api()
        return stack

    yield build
    for context in reversed(stacks):
        context.__exit__(None, None, None)


def _printed(moment: str) -> float:
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC).timestamp()


def test_three_500s_then_normal_answers_give_the_exact_diff(tmp_stack: Any) -> None:
    # The shipped backoff and horizon: half a second, doubling, for two minutes.
    stack = tmp_stack(OSU_API_RETRY_BACKOFF_SECONDS="0.5", OSU_API_RETRY_HORIZON_SECONDS="120")
    stack.start_worker("updates", concurrency=1)
    user = new_fault_user()
    stack.simulator.add_fault(kind="http_500", count=3, path_prefix=f"{USER_PATHS}{user}/osu")
    response = stack.post_update(user, wait=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["first"] is True
    assert body["username"] == stack.simulator.truth(user, 0)["username"]
    # Three refusals, then the attempt that worked.
    assert stack.upstream_requests(user, "v2_user") == 4
    # Exactly what one fault-free update writes, and the answer is the body it stored.
    finished = stack.stored(user, 0).finished
    assert list(finished.values()) == [body]
    stack.assert_updated_once(user, 0, list(finished))


def test_an_outage_longer_than_the_horizon_fails_after_it_and_shows_the_retries(
    tmp_stack: Any,
) -> None:
    horizon = 4
    stack = tmp_stack(
        OSU_API_RETRY_BACKOFF_SECONDS="0.2", OSU_API_RETRY_HORIZON_SECONDS=str(horizon)
    )
    stack.start_worker("updates", concurrency=1)
    user = new_fault_user()
    stack.simulator.add_fault(kind="http_502", count=-1, path_prefix=f"{USER_PATHS}{user}/osu")
    accepted = stack.post_update(user, wait=0)
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    retrying: list[dict[str, Any]] = []

    def ended() -> bool:
        body = stack.get(f"/jobs/{job_id}").json()
        if body["status"] == "queued" and body["last_upstream_error"]:
            retrying.append(body)
        return body["status"] in ("finished", "failed")

    wait_for(ended, horizon + 30, "the job ends", interval=0.1)
    # While it waited, the job said why and when it would try again.
    assert retrying, "the job never showed a retry"
    assert "answered 502" in retrying[0]["last_upstream_error"]
    assert retrying[0]["next_attempt_at"] is not None
    assert retrying[-1]["attempt"] >= 1
    final = stack.get(f"/jobs/{job_id}").json()
    assert final["status"] == "failed"
    assert "answered 502" in final["error"]
    # Failed after the horizon, not before (times are printed at whole seconds).
    assert _printed(final["finished_at"]) + 1 >= _printed(final["enqueued_at"]) + horizon
    assert stack.upstream_requests(user, "v2_user") == final["attempt"] + 1


def test_refused_credentials_fail_at_once_and_health_names_them(tmp_stack: Any) -> None:
    stack = tmp_stack(OSU_API_RETRY_HORIZON_SECONDS="120")
    stack.start_worker("updates", concurrency=1)
    user = new_fault_user()
    # The token request and every API request are refused, as osu! does for bad keys.
    stack.simulator.add_fault(kind="http_401", count=-1, path_prefix="/")
    # Failed within the wait, which is shorter than the horizon: it was not retried.
    response = stack.post_update(user, wait=60)
    assert response.status_code == 502, response.text
    assert "refused our credentials" in response.json()["error"]
    job = stack.get(f"/jobs/{response.json()['job_id']}").json()
    assert (job["status"], job["attempt"]) == ("failed", 0)
    health = stack.get("/health").json()
    assert health["status"] == "degraded"
    assert "refused our credentials" in health["osu_api"]
    # Fixed credentials: the next success clears it.
    stack.simulator.clear_faults()
    assert stack.post_update(new_fault_user(), wait=60).status_code == 200
    assert stack.get("/health").json()["osu_api"] == "ok"
    assert upstream_status.auth_failure(stack.redis) is None


def test_fifty_jobs_through_a_twenty_second_outage_all_finish_within_the_budget(
    tmp_stack: Any,
) -> None:
    rate = 10
    stack = tmp_stack(
        OSU_API_RATE_LIMIT=f"{rate}/second",
        OSU_API_RETRY_BACKOFF_SECONDS="0.5",
        OSU_API_RETRY_HORIZON_SECONDS="90",
    )
    # One process for updates and upkeep: if a job held it while waiting, the upkeep task
    # sent during the outage could not run.
    worker = stack.start_worker("both", concurrency=1, queues=f"updates,{MAINTENANCE_QUEUE}")
    stack.simulator.add_fault(kind="http_503", count=-1, path_prefix=USER_PATHS)
    outage_started = time.monotonic()
    users = [new_fault_user() for _ in range(50)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        job_ids = list(pool.map(stack.accept_update, users))

    def retrying() -> int:
        states = [stack.job(job_id) for job_id in job_ids]
        return sum(1 for state in states if state is not None and state.attempt > 0)

    wait_for(lambda: retrying() >= 10, 15, "jobs retrying")
    producer = Celery("retry-test", broker=stack.redis_server.url)
    producer.send_task("osutrack.recompute_peaks", queue=MAINTENANCE_QUEUE)
    producer.close()
    wait_for(
        lambda: any(
            "osutrack.recompute_peaks" in line and "succeeded" in line
            for line in worker.output().splitlines()
        ),
        15,
        "the upkeep task runs during the outage",
    )
    time.sleep(max(0.0, 20 - (time.monotonic() - outage_started)))
    stack.simulator.clear_faults()

    states = [stack.wait_terminal(job_id, timeout=120) for job_id in job_ids]
    assert [state.status for state in states] == ["finished"] * len(job_ids)
    for user, job_id in zip(users, job_ids, strict=True):
        stack.assert_updated_once(user, 0, [job_id])
    assert budget_overruns(stack.simulator.requests_log(), rate, 1.0) == []
