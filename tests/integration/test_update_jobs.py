"""POST /update as a job: waiting, 202 and polling, sharing one job, failures upstream."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from conftest import Stack
from support.simulator import SimulatorClient

from worker.upstream.limiter import COOLDOWN_KEY

pytestmark = pytest.mark.integration


def _user_requests(simulator: SimulatorClient, user: int) -> list[dict[str, Any]]:
    return [
        entry
        for entry in simulator.requests_log()
        if entry["endpoint"] == "v2_user" and f"/users/{user}/" in entry["path"]
    ]


def _poll(stack: Stack, location: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = stack.http.get(stack.api_url + location, timeout=10).json()
        if job["status"] in ("finished", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {location} did not end in {timeout} s")


def test_slow_update_answers_202_and_the_job_finishes(
    v2_stack: Stack, simulator: SimulatorClient, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    simulator.session.put(f"{simulator.base_url}/_sim/latency", params={"ms": 700}, timeout=5)
    response = v2_stack.post_update(user, 0, wait=0)
    assert response.status_code == 202
    location = response.headers["Location"]
    assert location.startswith("/jobs/")
    accepted = response.json()
    assert accepted["status"] in ("queued", "running")
    assert (accepted["user"], accepted["mode"]) == (user, 0)
    job = _poll(v2_stack, location)
    assert job["status"] == "finished"
    assert job["result"]["first"] is True
    assert job["result"]["username"] == simulator.truth(user, 0)["username"]
    assert job["finished_at"].endswith(".000Z")


def test_concurrent_requests_share_one_job_and_one_fetch(
    v2_stack: Stack, simulator: SimulatorClient, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    simulator.session.put(f"{simulator.base_url}/_sim/latency", params={"ms": 500}, timeout=5)
    # Four clients waiting on the one job at once.
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda _: v2_stack.post_update(user, 0), range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    bodies = [r.json() for r in responses]
    assert all(body == bodies[0] for body in bodies)
    assert len(_user_requests(simulator, user)) == 1
    history = v2_stack.get("/stats_history", user=user, mode=0).json()
    assert len(history) == 1


def test_unknown_user_is_exists_false_and_stores_nothing(v2_stack: Stack) -> None:
    user = 100_000_123
    response = v2_stack.post_update(user, 1)
    assert response.status_code == 200
    body = response.json()
    assert body["exists"] is False
    assert body["newhs"] == []
    assert v2_stack.get("/stats_history", user=user, mode=1).json() == []
    assert v2_stack.get("/hiscores", user=user, mode=1).json() == []


def test_upstream_5xx_after_retries_is_a_502_not_a_missing_user(
    v2_stack: Stack, simulator: SimulatorClient, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    simulator.add_fault(kind="http_500", count=-1, path_prefix="/api/v2/users")
    response = v2_stack.post_update(user, 0)
    assert response.status_code == 502
    assert "500" in response.json()["error"]
    assert v2_stack.get("/stats_history", user=user, mode=0).json() == []
    simulator.clear_faults()
    # The failure left no trace: the next update is this player's first.
    assert v2_stack.post_update(user, 0).json()["first"] is True


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_malformed_upstream_bodies_fail_the_job(
    v2_stack: Stack, simulator: SimulatorClient, new_user_id: Callable[[], int], kind: str
) -> None:
    user = new_user_id()
    simulator.add_fault(kind=kind, count=-1, path_prefix="/api/v2/users")
    response = v2_stack.post_update(user, 0)
    assert response.status_code == 502
    assert "malformed" in response.json()["error"]
    assert v2_stack.get("/stats_history", user=user, mode=0).json() == []


def test_short_429_is_waited_out(
    v2_stack: Stack, simulator: SimulatorClient, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    simulator.add_fault(kind="http_429", count=1, retry_after=1, path_prefix="/api/v2/users")
    started = time.monotonic()
    response = v2_stack.post_update(user, 0)
    assert response.status_code == 200
    assert time.monotonic() - started >= 1.0
    assert response.json()["first"] is True


def test_long_429_fails_the_job_and_pauses_every_worker(
    v2_stack: Stack, simulator: SimulatorClient, redis_url: str, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    simulator.add_fault(
        kind="http_429", count=1, retry_after=1800, body="edge", path_prefix="/api/v2/users"
    )
    # A Retry-After beyond the retry horizon: retrying within it cannot help.
    response = v2_stack.post_update(user, 0)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1800"
    assert "rate limiting" in response.json()["error"]
    simulator.session.delete(f"{simulator.base_url}/_sim/requests", timeout=5)
    # The whole fleet now waits: the next update is accepted and queued, without asking
    # osu!, and expected to start when the pause ends.
    paused = v2_stack.post_update(new_user_id(), 0, wait=1)
    assert paused.status_code == 202
    job = paused.json()
    assert (job["status"], job["position"]) == ("queued", 0)
    assert int(paused.headers["Retry-After"]) > 1700
    assert simulator.requests_log() == []
    # Once the pause is over, the queued job runs.
    redis.Redis.from_url(redis_url).delete(COOLDOWN_KEY)
    assert _poll(v2_stack, paused.headers["Location"])["status"] == "finished"


def test_restricted_player_reads_as_missing_but_keeps_history(
    v2_stack: Stack, simulator: SimulatorClient, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    assert v2_stack.post_update(user, 0).status_code == 200
    simulator.add_fault(kind="empty_user", count=1, path_prefix="/api/v2/users")
    assert v2_stack.post_update(user, 0).json()["exists"] is False
    assert len(v2_stack.get("/stats_history", user=user, mode=0).json()) == 1


def test_unknown_job_is_404(v2_stack: Stack) -> None:
    response = v2_stack.get("/jobs/6f1c1c3e-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json() == {"error": "Job not found"}


def test_health_sees_postgres_redis_and_the_worker(v2_stack: Stack) -> None:
    response = v2_stack.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["workers"] >= 1


def test_without_prefer_the_request_waits_for_the_original_answer(
    v2_stack: Stack, new_user_id: Callable[[], int]
) -> None:
    response = v2_stack.post_update(new_user_id(), 0)
    assert response.status_code == 200
    assert response.json()["first"] is True
    assert "Preference-Applied" not in response.headers


def test_prefer_respond_async_answers_202_at_once_with_the_estimated_start(
    v2_stack: Stack, simulator: SimulatorClient, new_user_id: Callable[[], int]
) -> None:
    user = new_user_id()
    # The job takes longer than the request: the answer cannot be the finished update.
    simulator.session.put(f"{simulator.base_url}/_sim/latency", params={"ms": 700}, timeout=5)
    response = v2_stack.http.post(
        f"{v2_stack.api_url}/update",
        params={"user": user, "mode": 0},
        headers={"Prefer": "respond-async"},
        timeout=70,
    )
    assert response.status_code == 202
    assert response.headers["Preference-Applied"] == "respond-async"
    assert int(response.headers["Retry-After"]) >= 1
    job = response.json()
    assert job["status"] in ("queued", "running")
    if job["status"] == "queued":
        assert job["position"] == 0
        assert job["eta"] is not None
    assert _poll(v2_stack, response.headers["Location"])["status"] == "finished"


def test_prefer_wait_sets_the_wait_and_says_so(
    v2_stack: Stack, new_user_id: Callable[[], int]
) -> None:
    response = v2_stack.http.post(
        f"{v2_stack.api_url}/update",
        params={"user": new_user_id(), "mode": 0},
        headers={"Prefer": "wait=30"},
        timeout=70,
    )
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == "wait=30"
    assert response.json()["first"] is True
