"""`make run` itself: `python -m devstack.run` with a temp OSUTRACK_DATA_DIR and free ports.

One stack for the module (private Postgres and Redis, the simulator, the API, the update
worker, the refresh worker, beat), used in order by:

- the first screen: its last lines say where the API and its docs are, which simulated
  players exist and how to lift the update limit; every request gets an access-log line;
- stack.env: the private services' URLs in a 0600 file that psql, celery and worker.admin
  attach with; without the passwords, both services refuse the connection;
- `make worker`: one more worker joins from the same data dir, takes jobs (its own log
  names them), and the upstream budget still holds across every worker process;
- supervision: each kind of child is killed with SIGKILL; the stack serves again within
  30 s (the issue's figure) and no accepted job is lost;
- Ctrl-C (SIGINT) stops every process.

A second stack shows `make run` giving up, exit status 1, on a child that keeps dying.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg2
import pytest
import redis
import requests
from support.processes import ManagedProcess, has_exited
from support.simulator import SimulatorClient

from celeryconfig import VISIBILITY_TIMEOUT_SECONDS, broker_transport_options
from devstack.env import child_env, read_env_file
from devstack.procs import free_port
from devstack.services import AOF_LOSS_WINDOW_SECONDS, find_postgres_bindir
from devstack.supervise import RestartPolicy
from simulator.identity import fixture_players

pytestmark = pytest.mark.integration

# Each step of start-up (Postgres, Redis, simulator, API and workers) has up to
# devstack.run.STARTUP_TIMEOUT_SECONDS.
STARTUP_BOUND_SECONDS = 4 * 60.0
# The promise: after any child was killed, the stack serves again within 30 s.
SERVES_AGAIN_SECONDS = 30.0
# A job held by a worker that died comes back after the visibility timeout and the next
# restore sweep; then it runs under the upstream budget below.
REDELIVERY_SECONDS = (
    VISIBILITY_TIMEOUT_SECONDS + broker_transport_options["unacked_restore_interval"]
)
JOB_BOUND_SECONDS = REDELIVERY_SECONDS + SERVES_AGAIN_SECONDS + 60.0
# make run stops commands within 15 s (SIGTERM, then SIGKILL), Redis within 15 s, Postgres
# within 30 s.
STOP_BOUND_SECONDS = 15.0 + 15.0 + 30.0 + 15.0
PROCESS_START_SECONDS = 60.0
# A small upstream budget, so that three worker processes would overrun it at once if each
# kept its own: 3 requests in any 3 seconds.
BUDGET_LIMIT = 3
BUDGET_PERIOD_SECONDS = 3.0
# The simulator stamps a request when it has answered it, up to hundreds of milliseconds
# late on a busy machine (tests/integration/test_upstream_budget.py): count over a window
# shorter by this much.
STAMP_SLACK_SECONDS = 1.0
KINDS = ("api", "worker", "beat", "simulator", "redis", "postgres")
# A worker process holding a job takes no other message (prefetch 1), so while a job is in
# flight no message is on its way from the queue to a worker: Celery's Redis transport
# moves one in two steps, and a Redis killed between them would lose it. An update makes two
# upstream requests, so at this latency it is in flight for 8 s at least, well past the
# AOF_LOSS_WINDOW_SECONDS the test waits before the kill.
IN_FLIGHT_LATENCY_MS = 4000
# Longer than the budget takes to free two requests' slots (2 of 3 per 3 s), so make run's
# single update process is still busy when the next job is released.
MAKE_WORKER_LATENCY_MS = 3000
_user_ids = iter(range(8_000_001, 9_000_000))


@dataclass
class Stack:
    """A running `python -m devstack.run`."""

    process: ManagedProcess
    base_url: str
    data_dir: Path
    simulator: SimulatorClient
    env: dict[str, str]
    http: requests.Session

    def post_update(self, user: int, wait: float = 0) -> requests.Response:
        return self.http.post(
            f"{self.base_url}/update", params={"user": user, "mode": 0, "wait": wait}, timeout=70
        )

    def set_latency(self, ms: int) -> None:
        """Make every answer of the simulator take `ms` milliseconds more."""
        self.http.put(
            f"{self.simulator.base_url}/_sim/latency", params={"ms": ms}, timeout=10
        ).raise_for_status()

    def job_status(self, job_id: str) -> str | None:
        with contextlib.suppress(requests.RequestException):
            response = self.http.get(f"{self.base_url}/jobs/{job_id}", timeout=10)
            if response.status_code == 200:
                return str(response.json()["status"])
        return None

    def accept_job(self) -> str:
        response = self.post_update(next(_user_ids))
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])


def _matches(kind: str, cmdline: list[str]) -> bool:
    text = " ".join(cmdline)
    return {
        "api": "granian" in text,
        "worker": "worker1@%h" in text,
        "refresher": "refresher1@%h" in text,
        "beat": " beat" in text and "celery" in text,
        "simulator": "-m simulator" in text,
        "redis": "redis-server" in text,
        "postgres": bool(cmdline) and cmdline[0].endswith("postgres") and "-D" in cmdline,
    }[kind]


def child(stack: Stack, kind: str) -> psutil.Process | None:
    """The running child of `make run` of that kind, if there is one."""
    for proc in psutil.Process(stack.process.pid).children():
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE and _matches(kind, proc.cmdline()):
                return proc
    return None


def until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(interval)


def stack_env(data_dir: Path, port: int, sim_port: int, **extra: str) -> dict[str, str]:
    """Environment of a `make run` on free ports with nothing of the operator's leaking in."""
    return child_env(
        {
            "OSUTRACK_DATA_DIR": str(data_dir),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "OSUTRACK_PG_PORT": str(free_port()),
            "OSUTRACK_REDIS_PORT": str(free_port()),
            "SIMULATOR_PORT": str(sim_port),
            "DATABASE_URL": "",
            "REDIS_URL": "",
            "OSU_CLIENT_ID": "",
            "OSU_CLIENT_SECRET": "",
            "OSU_API_KEY": "",
            "OSU_API_BASE_URL": "",
            "WORKER_CONCURRENCY": "1",
            "LOG_LEVEL": "INFO",
            **extra,
        }
    )


@contextlib.contextmanager
def running_stack(tmp: Path, **extra: str) -> Iterator[Stack]:
    data_dir = tmp / "data"
    port, sim_port = free_port(), free_port()
    env = stack_env(data_dir, port, sim_port, **extra)
    process = ManagedProcess(
        "make-run", [sys.executable, "-m", "devstack.run"], env, tmp / "run.log"
    )
    process.start(
        lambda p: "Ctrl-C stops every process" in p.output(), timeout=STARTUP_BOUND_SECONDS
    )
    with requests.Session() as http:
        try:
            yield Stack(
                process,
                f"http://127.0.0.1:{port}",
                data_dir,
                SimulatorClient(f"http://127.0.0.1:{sim_port}"),
                env,
                http,
            )
        finally:
            process.stop(timeout=STOP_BOUND_SECONDS)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("make-run"),
        RATE_LIMIT_UPDATE="off",
        RATE_LIMIT_READ="off",
        OSU_API_RATE_LIMIT=f"{BUDGET_LIMIT}/{BUDGET_PERIOD_SECONDS:.0f}second",
        # Requests may queue for the small budget longer than the default 15 s.
        OSU_API_SLOT_WAIT_SECONDS="60",
    ) as running:
        yield running


def test_the_first_screen_ends_with_where_to_go_and_what_to_try(stack: Stack) -> None:
    lines = stack.process.output().splitlines()
    start = next(i for i, line in enumerate(lines) if "osutrack-api is ready" in line)
    summary = "\n".join(lines[start:])

    assert f"API       {stack.base_url}/" in summary
    assert f"{stack.base_url}/docs" in summary
    for user_id, player in fixture_players().items():
        assert f"{user_id} = {player['username']}" in summary
    assert "RATE_LIMIT_UPDATE=off" in summary
    assert f"{stack.data_dir / 'stack.env'}" in summary
    assert "make worker" in summary
    # Nothing of the start-up comes after it: every worker and beat were ready before.
    after = lines[start:]
    assert not [line for line in after if re.search(r" ready\.|\[tasks\]|beat: Starting", line)]


def test_every_request_gets_an_access_log_line(stack: Stack) -> None:
    assert stack.http.get(f"{stack.base_url}/ping", timeout=10).status_code == 200
    assert stack.http.get(f"{stack.base_url}/nowhere", timeout=10).status_code == 404

    until(
        lambda: (
            re.search(r"api +\| GET /ping 200 \d+\.\d ms", stack.process.output())
            and re.search(r"api +\| GET /nowhere 404 \d+\.\d ms", stack.process.output())
        ),
        10,
        "the access-log lines",
    )


def test_stack_env_lets_psql_celery_and_admin_attach(stack: Stack) -> None:
    env_file = stack.data_dir / "stack.env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = read_env_file(env_file)
    attached = child_env(values)

    psql = subprocess.run(
        [str(find_postgres_bindir() / "psql"), "-tAc", "SELECT current_database()"],
        env=attached, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    admin = subprocess.run(
        [sys.executable, "-m", "worker.admin", "refresh-all"],
        env=attached, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    celery = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker", "inspect", "ping", "--timeout", "10"],
        env=attached, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert psql.stdout.strip() == "osutrack", psql.stderr
    assert admin.returncode == 0, admin.stderr
    assert "user-modes are due now" in admin.stdout
    assert celery.returncode == 0, celery.stderr
    assert "worker1@" in celery.stdout
    assert "refresher1@" in celery.stdout
    # The passwords are in that file only, never in the output of the stack.
    redis_password = values["REDIS_URL"].split("@")[0].rsplit(":", 1)[1]
    for password in (values["PGPASSWORD"], redis_password):
        assert len(password) >= 20
        assert password not in stack.process.output()


def test_the_private_services_refuse_connections_without_the_password(stack: Stack) -> None:
    values = read_env_file(stack.data_dir / "stack.env")
    port = int(values["PGPORT"])
    redis_port = int(values["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])

    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="osutrack")
    client = redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=5)
    try:
        with pytest.raises(redis.AuthenticationError):
            client.ping()
    finally:
        client.close()


def test_make_worker_joins_takes_jobs_and_the_budget_holds(stack: Stack, tmp_path: Path) -> None:
    stack.set_latency(MAKE_WORKER_LATENCY_MS)
    stack.http.delete(f"{stack.simulator.base_url}/_sim/requests", timeout=10)
    extra = ManagedProcess(
        "make-worker",
        [sys.executable, "-m", "devstack.worker", "--queues", "updates", "--concurrency", "2"],
        # Only the data dir tells it which stack to join.
        child_env({"OSUTRACK_DATA_DIR": str(stack.data_dir), "DATABASE_URL": "", "REDIS_URL": ""}),
        tmp_path / "make-worker.log",
    )
    extra.start(lambda p: " ready." in p.output(), timeout=PROCESS_START_SECONDS)
    try:
        hostname = re.search(r"make worker: (extra\d+@\S+) on updates", extra.output())
        assert hostname is not None, extra.output()
        assert f"{hostname.group(1)} ready." in extra.output()
        started = time.time()
        # make run's update worker is a single process, busy for two requests' latency
        # with each job: the job the budget releases next goes to the idle new worker.
        with ThreadPoolExecutor(4) as pool:
            jobs = list(pool.map(lambda _: stack.accept_job(), range(4)))
        until(
            lambda: all(stack.job_status(job) == "finished" for job in jobs),
            JOB_BOUND_SECONDS,
            "every job finished",
            interval=1,
        )

        taken = [job for job in jobs if f"job={job}" in extra.output()]
        assert taken, extra.output()[-3000:]
        stamps = sorted(
            entry["t"]
            for entry in stack.simulator.requests_log()
            if entry["endpoint"] and entry["t"] >= started
        )
        assert len(stamps) >= 2 * len(jobs)
        window = BUDGET_PERIOD_SECONDS - STAMP_SLACK_SECONDS
        busiest = max(sum(1 for t in stamps if s <= t < s + window) for s in stamps)
        assert busiest <= BUDGET_LIMIT, stamps
    finally:
        assert extra.stop() == 0
        stack.set_latency(0)


@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_child_is_restarted_and_no_accepted_job_is_lost(stack: Stack, kind: str) -> None:
    """Killed while one accepted job is in flight and another is queued."""
    stack.set_latency(IN_FLIGHT_LATENCY_MS)
    try:
        accepted = [stack.accept_job() for _ in range(2)]
        in_flight = until(
            lambda: next((job for job in accepted if stack.job_status(job) == "running"), None),
            PROCESS_START_SECONDS,
            "one of the jobs running",
        )
        # Everything Redis acknowledged so far is in its append-only file.
        time.sleep(AOF_LOSS_WINDOW_SECONDS)
        assert stack.job_status(in_flight) == "running"
        victim = child(stack, kind)
        assert victim is not None, f"no {kind} child"
        others = {
            other: proc.pid
            for other in (*KINDS, "refresher")
            if other != kind and (proc := child(stack, other)) is not None
        }
        killed_at = time.monotonic()
        victim.send_signal(signal.SIGKILL)
    finally:
        # A killed simulator comes back without latency anyway.
        with contextlib.suppress(requests.RequestException):
            stack.set_latency(0)
    until(lambda: has_exited(victim.pid), 30, f"{kind} (pid {victim.pid}) exited")

    serves_again_by = killed_at + SERVES_AGAIN_SECONDS
    restarted = until(
        lambda: (new := child(stack, kind)) is not None and new.pid != victim.pid and new,
        serves_again_by - time.monotonic(),
        f"{kind} restarted",
    )
    fresh = until(
        lambda: _finished_update(stack),
        serves_again_by - time.monotonic(),
        f"an update served again after {kind} was killed",
        interval=0.5,
    )
    assert fresh["exists"] is True
    output = stack.process.output()
    assert f"!!! {kind} (pid {victim.pid}) killed by SIGKILL: restarting it" in output
    assert f"{kind} restarted (pid {restarted.pid})" in output

    # The simulator's death can fail a job that was talking to it (a 502, never lost).
    ends = {"finished", "failed"} if kind == "simulator" else {"finished"}
    until(
        lambda: all(stack.job_status(job) in ends for job in accepted),
        JOB_BOUND_SECONDS,
        f"every job accepted before {kind} was killed ended {ends}",
        interval=1,
    )
    assert stack.process.is_running()
    # The others rode it out (a Redis or Postgres restart included) without dying.
    assert {other: getattr(child(stack, other), "pid", None) for other in others} == others


def _finished_update(stack: Stack) -> dict[str, Any] | None:
    with contextlib.suppress(requests.RequestException):
        response = stack.post_update(next(_user_ids), wait=10)
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
    return None


def test_ctrl_c_stops_every_process(stack: Stack) -> None:
    children = psutil.Process(stack.process.pid).children(recursive=True)
    assert len(children) >= len(KINDS)

    stack.process.kill(signal.SIGINT)

    assert stack.process.wait(timeout=STOP_BOUND_SECONDS) == 0
    assert not [proc for proc in children if not has_exited(proc.pid)]
    assert not (stack.data_dir / "stack.env").exists()


def test_a_child_that_keeps_dying_stops_make_run(tmp_path: Path) -> None:
    policy = RestartPolicy()
    with running_stack(tmp_path) as stack:
        children = psutil.Process(stack.process.pid).children(recursive=True)
        for death in range(1, policy.max_deaths + 1):
            victim = until(
                lambda: child(stack, "simulator"),
                policy.delay(death) + PROCESS_START_SECONDS,
                "a simulator",
            )
            victim.send_signal(signal.SIGKILL)
            until(lambda v=victim: has_exited(v.pid), 30, "the simulator exited")

        assert stack.process.wait(timeout=STOP_BOUND_SECONDS) == 1
        assert f"died {policy.max_deaths} times within" in stack.process.output()
        assert not [proc for proc in children if not has_exited(proc.pid)]
        assert not (stack.data_dir / "stack.env").exists()
