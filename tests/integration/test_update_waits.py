"""A waiting POST /update holds no server thread (issue 9, "Waiting holds no thread").

The API runs with API_THREADS at its minimum (1 thread per process, 2 processes) on a
Redis database no worker consumes, so its update jobs stay queued. More updates than the
API has threads wait on their jobs while /ping, /peak and GET /jobs/{id} are asked; then a
worker is started and every waiting update is answered with its job's result.

Under the WSGI server the shim ran before, each waiting update held one of the 2 threads:
the reads could only be answered once some updates had given up (after `wait`), so the
check that no update had answered before the reads did fails there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from support.processes import ManagedProcess, start_api, start_worker

from devstack.procs import free_port, wait_until
from osutrack import jobs

pytestmark = pytest.mark.integration

# A database of its own: the session worker must not run these jobs.
REDIS_DB = 7
API_PROCESSES = 2
API_THREADS = 1
# Four times the API's threads: under one thread per waiting update, reads would need
# threads that do not exist.
WAITING_UPDATES = 4 * API_PROCESSES * API_THREADS
WAIT_SECONDS = 60
# A range no other test of the session updates.
FIRST_USER = 8_500_001
READS_PER_PATH = 5
# Requests give up only after the longest an update may wait, plus the job's own run.
HTTP_TIMEOUT_SECONDS = WAIT_SECONDS + 30


@pytest.fixture
def held_back(
    service_env: Callable[..., dict[str, str]], redis_url: str, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str], redis.Redis]]:
    """An API of API_THREADS threads per process whose jobs no worker takes (yet)."""
    private_redis = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    env = service_env(REDIS_URL=private_redis, API_THREADS=str(API_THREADS))
    client = redis.Redis.from_url(private_redis, decode_responses=True)
    client.flushdb()
    port = free_port()
    api = start_api(env, port, log_path=tmp_path / "api.log")
    try:
        yield f"http://127.0.0.1:{port}", env, client
    finally:
        api.stop()
        client.flushdb()
        client.close()


def _post_update(base: str, user: int) -> requests.Response:
    return requests.post(
        f"{base}/update",
        params={"user": user, "mode": 0, "wait": WAIT_SECONDS},
        timeout=HTTP_TIMEOUT_SECONDS,
    )


def test_waiting_updates_hold_no_thread_while_reads_answer(
    held_back: tuple[str, dict[str, str], redis.Redis], tmp_path: Path
) -> None:
    base, env, client = held_back
    users = range(FIRST_USER, FIRST_USER + WAITING_UPDATES)
    worker: ManagedProcess | None = None
    with ThreadPoolExecutor(max_workers=WAITING_UPDATES) as pool:
        updates: list[Future[requests.Response]] = [
            pool.submit(_post_update, base, user) for user in users
        ]
        try:
            # Every update has reached the API and registered its job: all are waiting.
            wait_until(
                lambda: (
                    sum(client.exists(jobs.inflight_key(user, 0)) for user in users)
                    == WAITING_UPDATES
                ),
                timeout=HTTP_TIMEOUT_SECONDS,
                what=f"{WAITING_UPDATES} update jobs registered",
            )
            job_ids = [client.get(jobs.inflight_key(user, 0)) for user in users]
            answers: list[requests.Response] = []
            with requests.Session() as http:
                for _ in range(READS_PER_PATH):
                    answers.append(http.get(f"{base}/ping", timeout=HTTP_TIMEOUT_SECONDS))
                    answers.append(
                        http.get(
                            f"{base}/peak",
                            params={"user": FIRST_USER, "mode": 0},
                            timeout=HTTP_TIMEOUT_SECONDS,
                        )
                    )
                for job_id in job_ids:
                    answers.append(http.get(f"{base}/jobs/{job_id}", timeout=HTTP_TIMEOUT_SECONDS))
            # The reads were all answered while every update was still waiting.
            assert [update.done() for update in updates] == [False] * WAITING_UPDATES
            assert [answer.status_code for answer in answers] == [200] * len(answers)
            assert sum(answer.json() == {"status": "alive"} for answer in answers) == (
                READS_PER_PATH
            )
            peaks = [answer.json() for answer in answers if isinstance(answer.json(), list)]
            assert [len(body) for body in peaks] == [1] * READS_PER_PATH
            assert {tuple(body[0]) for body in peaks} == {
                ("best_global_rank", "best_rank_timestamp", "best_accuracy", "best_acc_timestamp")
            }
            polled = [answer.json() for answer in answers[2 * READS_PER_PATH :]]
            assert [job["job_id"] for job in polled] == job_ids
            assert {job["status"] for job in polled} == {"queued"}
            # A worker takes the queued jobs: every waiting update answers with its result.
            worker = start_worker(env, queues="updates", log_path=tmp_path / "worker.log")
            results = [update.result() for update in updates]
        finally:
            if worker is not None:
                worker.stop()
    assert [result.status_code for result in results] == [200] * WAITING_UPDATES
    assert all(result.json()["first"] is True for result in results)
    assert [client.hget(jobs.job_key(job_id), "status") for job_id in job_ids] == [
        jobs.FINISHED
    ] * WAITING_UPDATES
