"""A whole stack per upstream flavour: granian + Celery worker + Postgres + Redis + simulator.

The v2 stack uses the session-wide worker and API. The v1 stack runs its own worker and
API on another Redis database (so the two workers never take each other's jobs) with the
simulator's API key. Both write the same Postgres, so each test uses user ids of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
from support.processes import ManagedProcess, start_api, start_worker
from support.simulator import SimulatorClient

from devstack.procs import free_port

SIMULATOR_API_KEY = "0123456789abcdef0123456789abcdef01234567"
_user_ids = itertools.count(1_000_001)


@dataclass
class Stack:
    """The URL of a running API and the upstream flavour its worker uses."""

    api_url: str
    flavour: str
    http: requests.Session

    def post_update(self, user: int, mode: int, **params: object) -> requests.Response:
        return self.http.post(
            f"{self.api_url}/update", params={"user": user, "mode": mode, **params}, timeout=70
        )

    def get(self, path: str, **params: object) -> requests.Response:
        return self.http.get(f"{self.api_url}{path}", params=params, timeout=30)


@pytest.fixture
def new_user_id() -> Callable[[], int]:
    """Fresh user ids: the database is shared by every integration test of the session."""
    return lambda: next(_user_ids)


@pytest.fixture(scope="session")
def v1_processes(
    service_env: Callable[..., dict[str, str]],
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ManagedProcess, str]]:
    env = service_env(
        REDIS_URL=redis_url.rsplit("/", 1)[0] + "/1",
        OSU_API_VERSION="v1",
        OSU_API_KEY=SIMULATOR_API_KEY,
        OSU_CLIENT_ID="",
        OSU_CLIENT_SECRET="",
    )
    logs = tmp_path_factory.mktemp("v1-stack")
    worker = start_worker(env, hostname="worker-v1@%h", log_path=logs / "worker.log")
    port = free_port()
    api = start_api(env, port, log_path=logs / "api.log")
    yield worker, f"http://127.0.0.1:{port}"
    api.stop()
    worker.stop()


@pytest.fixture(params=["v2", "v1"])
def stack(request: pytest.FixtureRequest, simulator: SimulatorClient) -> Iterator[Stack]:
    """The stack for one upstream flavour, with the simulator reset after the test."""
    if request.param == "v2":
        request.getfixturevalue("worker_process")
        api_url = request.getfixturevalue("api_url")
    else:
        _, api_url = request.getfixturevalue("v1_processes")
    with requests.Session() as http:
        yield Stack(api_url=api_url, flavour=request.param, http=http)


@pytest.fixture
def v2_stack(
    worker_process: ManagedProcess, api_url: str, simulator: SimulatorClient
) -> Iterator[Stack]:
    """Only the v2 stack, for behaviour that does not depend on the flavour."""
    with requests.Session() as http:
        yield Stack(api_url=api_url, flavour="v2", http=http)
