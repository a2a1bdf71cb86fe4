"""What the upstream-budget and refresh-cost benchmarks share: a private stack and its log.

`Stack` starts, on 127.0.0.1 only, a private Postgres (fsync off) and Redis with the dev
stack's helpers, migrates with `python -m worker.migrate`, and starts the osu! API
simulator; on request also the API shim and Celery workers. Everything it starts is
stopped when its `ExitStack` closes, on error and on Ctrl-C too. The simulator's request
log (`/_sim/requests`) is what osu! would have seen; the functions at the end turn it into
the figures the benchmarks report.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

import redis
import requests

from devstack.commands import (
    api_command,
    migrate_command,
    simulator_command,
    simulator_osu_env,
    worker_command,
)
from devstack.env import child_env
from devstack.procs import free_port, port_open, spawn, stop_processes, tail, wait_until
from devstack.services import PostgresServer, RedisServer
from osutrack import jobs, tasknames

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 60.0
MIGRATE_TIMEOUT_SECONDS = 120
HTTP_TIMEOUT_SECONDS = 30.0
# A worker still inside a long refresh task would hold a warm shutdown for many seconds;
# the benchmark's data is throwaway, so it is killed after this.
WORKER_STOP_SECONDS = 5.0
# Where kombu's Redis transport keeps delivered but unacknowledged messages.
KOMBU_UNACKED_KEYS = ("unacked", "unacked_index", "unacked_mutex")


def exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    """Signal handler: turn SIGTERM into SystemExit so `finally` blocks stop the children."""
    raise SystemExit(128 + signum)


def machine_description() -> list[str]:
    """`nproc`, `free -h` (total), `uname -sr`, Python and `date -u`, one line each."""

    def run(*cmd: str) -> str:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        return done.stdout.strip()

    memory = next((line for line in run("free", "-h").splitlines() if line.startswith("Mem")), "")
    return [
        f"`nproc` {run('nproc')}",
        f"`free -h` {' '.join(memory.split()[:4])}",
        f"`uname -sr` {run('uname', '-sr')}",
        f"Python {platform.python_version()}",
        f"`date -u` {run('date', '-u')}",
    ]


@dataclass
class Process:
    """One child process and the log file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[Any]

    def running(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Stack:
    """Private Postgres, Redis and simulator, plus whatever API and workers are started."""

    workdir: Path
    exit_stack: contextlib.ExitStack
    postgres: PostgresServer | None = None
    redis_server: RedisServer | None = None
    simulator_url: str = ""
    proxy: ArrivalProxy | None = None
    api_url: str = ""
    workers: list[Process] = field(default_factory=list)

    # ------------------------------------------------------------------ start and stop

    def start_backing(self) -> None:
        """Postgres (migrated), Redis and the simulator; each stopped when the stack closes."""
        self.postgres = PostgresServer(self.workdir / "postgres", free_port(), fsync=False)
        self.exit_stack.callback(self.postgres.stop)
        self.postgres.start()
        self.redis_server = RedisServer(self.workdir / "redis", free_port(), appendonly=False)
        self.exit_stack.callback(self.redis_server.stop)
        self.redis_server.start()
        subprocess.run(
            migrate_command(),
            env=child_env({"DATABASE_URL": self.postgres.url}),
            cwd=REPO_ROOT,
            check=True,
            timeout=MIGRATE_TIMEOUT_SECONDS,
            stdout=subprocess.DEVNULL,
        )
        port = free_port()
        self._spawn("simulator", simulator_command(HOST, port), child_env())
        wait_until(
            lambda: port_open(HOST, port),
            timeout=START_TIMEOUT_SECONDS,
            what="simulator",
            details=lambda: tail(self.workdir / "simulator.log"),
        )
        self.simulator_url = f"http://{HOST}:{port}"
        self.proxy = ArrivalProxy(port)
        self.exit_stack.callback(self.proxy.close)

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of an API or worker process on this stack (v2 upstream).

        The workers reach the simulator through the arrival-stamping relay.
        """
        assert self.postgres is not None
        assert self.redis_server is not None
        assert self.proxy is not None
        return child_env(
            {
                "DATABASE_URL": self.postgres.url,
                "REDIS_URL": self.redis_server.url,
                **simulator_osu_env(self.proxy.url),
                "OSU_API_VERSION": "v2",
                # Every request comes from 127.0.0.1: the per-client limits would refuse it.
                "RATE_LIMIT_UPDATE": "off",
                "RATE_LIMIT_READ": "off",
                "MAX_QUEUE_DEPTH": "100000",
                "LOG_LEVEL": "WARNING",
                **overrides,
            }
        )

    def start_api(self, env: Mapping[str, str]) -> None:
        """The shim under the dev stack's granian command line; ready once /ping answers."""
        port = free_port()
        process = self._spawn("api", api_command(HOST, port), env)
        url = f"http://{HOST}:{port}"
        wait_until(
            lambda: _answers(f"{url}/ping"),
            timeout=START_TIMEOUT_SECONDS,
            what="api",
            alive=process.running,
            details=lambda: tail(process.log_path),
        )
        self.api_url = url

    def start_workers(self, specs: Sequence[tuple[str, str, Mapping[str, str]]]) -> None:
        """Start one single-process Celery worker per (name, queues, env), all at once.

        Each is ready once it logs ` ready.`; starting them together halves the wait on
        a small machine, where each spends seconds importing.
        """
        started = [
            self._spawn(
                name,
                worker_command(queues=queues, concurrency=1, hostname=f"{name}@%h"),
                env,
            )
            for name, queues, env in specs
        ]
        self.workers += started
        for process in started:
            wait_until(
                functools.partial(_logged_ready, process),
                timeout=START_TIMEOUT_SECONDS,
                what=process.name,
                alive=process.running,
                details=functools.partial(tail, process.log_path),
            )

    def stop_workers(self) -> None:
        """Stop every worker (SIGKILL after a few seconds) and drop the work still queued.

        The queues are emptied again afterwards, with kombu's record of unacknowledged
        messages: a worker shutting down hands the task it was running back to its queue,
        and one that was killed leaves it there for a later worker to restore.
        """
        queued = (tasknames.UPDATE_QUEUE, tasknames.REFRESH_QUEUE, *KOMBU_UNACKED_KEYS)
        client = self.redis()
        try:
            client.delete(*queued)
            stop_processes([w.popen for w in self.workers], timeout=WORKER_STOP_SECONDS)
            client.delete(*queued)
        finally:
            client.close()
        for worker in self.workers:
            worker.log.close()
        self.workers = []

    def _spawn(self, name: str, cmd: Sequence[str], env: Mapping[str, str]) -> Process:
        log_path = self.workdir / f"{name}.log"
        log = log_path.open("ab")
        popen = spawn(cmd, env=env, cwd=REPO_ROOT, stdout=log)
        process = Process(name, popen, log_path, log)
        self.exit_stack.callback(_stop, process)
        return process

    # ------------------------------------------------------------------ talking to it

    def redis(self) -> redis.Redis:
        """A text-mode client of the stack's Redis (database 0, the one the workers use)."""
        assert self.redis_server is not None
        return redis.Redis.from_url(self.redis_server.url, decode_responses=True)

    def clear_log(self) -> None:
        """Empty the simulator's request log and the relay's arrival stamps."""
        assert self.proxy is not None
        self.proxy.clear()
        response = requests.delete(
            f"{self.simulator_url}/_sim/requests", timeout=HTTP_TIMEOUT_SECONDS
        )
        response.raise_for_status()

    def upstream_log(self) -> list[dict[str, Any]]:
        """The upstream requests the simulator served (not its control calls), oldest first."""
        response = requests.get(f"{self.simulator_url}/_sim/requests", timeout=HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()["requests"]
        return sorted((e for e in entries if e["endpoint"]), key=lambda e: e["t"])

    def arrivals(self) -> list[tuple[float, str]]:
        """(arrival time, path) of each upstream request since the last `clear_log`."""
        assert self.proxy is not None
        return [(t, path) for t, path in self.proxy.arrivals() if not path.startswith("/_sim")]

    def advance(self, user: int, mode: int) -> None:
        """Let the simulated player `user` play one step in `mode`."""
        response = requests.post(
            f"{self.simulator_url}/_sim/users/{user}/advance",
            params={"mode": mode},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        response.raise_for_status()

    def post_update(self, http: requests.Session, user: int, mode: int = 0) -> str:
        """POST /update?wait=0 and return the job id."""
        response = http.post(
            f"{self.api_url}/update",
            params={"user": user, "mode": mode, "wait": 0},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        if response.status_code not in (200, 202):
            raise RuntimeError(f"POST /update answered {response.status_code}: {response.text}")
        job_id: str = response.json()["job_id"]
        return job_id

    def wait_jobs(self, job_ids: Iterable[str], timeout: float) -> list[jobs.JobState]:
        """Every job's final state, read from Redis (exact times); raises after `timeout`."""
        client = self.redis()
        pending = list(job_ids)
        done: dict[str, jobs.JobState] = {}
        deadline = time.monotonic() + timeout
        try:
            while pending:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(pending)} jobs did not end within {timeout:.0f} s")
                for job_id in list(pending):
                    state = jobs.read_job(client, job_id)
                    if state is not None and state.is_terminal:
                        done[job_id] = state
                        pending.remove(job_id)
                time.sleep(0.02)
        finally:
            client.close()
        return list(done.values())


def _answers(url: str) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(url, timeout=2).status_code == 200
    return False


def _logged_ready(process: Process) -> bool:
    return " ready." in process.log_path.read_text(errors="replace")


def _stop(process: Process) -> None:
    stop_processes([process.popen], sig=signal.SIGTERM, timeout=WORKER_STOP_SECONDS)
    process.log.close()


# ---------------------------------------------------------------------- reading the log


def most_in_window(times: Sequence[float], width: float) -> int:
    """The largest number of `times` in any half-open interval [t, t + width)."""
    ordered = sorted(times)
    most = 0
    first = 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= width:
            first += 1
        most = max(most, last - first + 1)
    return most


def tightest_span(times: Sequence[float], limit: int) -> float | None:
    """The shortest time covering `limit` + 1 consecutive requests (None if fewer).

    A limiter that keeps `limit` per window makes this at least the window; how far below
    it comes is the jitter between taking a slot and the simulator's stamp.
    """
    ordered = sorted(times)
    spans = [ordered[i + limit] - ordered[i] for i in range(len(ordered) - limit)]
    return min(spans) if spans else None


def mean_span(times: Sequence[float], limit: int) -> float | None:
    """The mean time covering `limit` + 1 consecutive requests (None if fewer).

    A budget used to the full keeps this at the window; the excess is time lost per window.
    """
    ordered = sorted(times)
    spans = [ordered[i + limit] - ordered[i] for i in range(len(ordered) - limit)]
    return sum(spans) / len(spans) if spans else None


def achieved_share(times: Sequence[float], limit: int, window: float) -> float:
    """Requests per second over the busy span as a share of the limit.

    A moving window lets `limit` requests go at once and then `limit` more each window,
    so n requests need at least (n / limit - 1) windows between the first and the last;
    dividing by (last - first + window) makes a limiter that is never idle score 1.0.
    """
    if len(times) < 2:
        return 0.0
    span = max(times) - min(times) + window
    return len(times) / span / (limit / window)


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def print_flush(*parts: object) -> None:
    """Progress on stdout, unbuffered (runs take minutes)."""
    print(*parts, flush=True)
    sys.stdout.flush()


# ---------------------------------------------------------------------- arrival stamps


_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ")
PROXY_BUFFER = 65536


class ArrivalProxy:
    """A TCP relay in front of the simulator that stamps when each request arrives.

    The simulator stamps a request when it has answered it, after building the body; on a
    busy machine that takes from milliseconds to a good part of a second, so its stamps
    cannot show whether a limiter kept to 10 in a second. This relay sits where osu!'s
    edge would and records `time.time()` as each request line arrives (one keep-alive
    connection carries many requests; a chunk starting with a method begins a new one).
    """

    def __init__(self, target_port: int) -> None:
        self._target = (HOST, target_port)
        self._server = socket.create_server((HOST, 0))
        self.port: int = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._arrivals: list[tuple[float, str]] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def arrivals(self) -> list[tuple[float, str]]:
        """(arrival time, path) of every request so far, oldest first."""
        with self._lock:
            return sorted(self._arrivals)

    def clear(self) -> None:
        with self._lock:
            self._arrivals.clear()

    def close(self) -> None:
        self._closed.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, stamp: bool) -> None:
        try:
            while chunk := source.recv(PROXY_BUFFER):
                if stamp and chunk.startswith(_METHODS):
                    path = chunk.split(b" ", 2)[1].decode(errors="replace")
                    with self._lock:
                        self._arrivals.append((time.time(), path))
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
