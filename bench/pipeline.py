"""End-to-end update throughput: POST /update?wait=0 until the job is finished.

Run: `.venv/bin/python -m bench.pipeline [--updates 600] [--latency-concurrency 1,2,4,8]`

Starts a private Postgres (fsync off) and Redis, the osu! API simulator
(`python -m simulator`), the API as devstack serves it, and Celery workers on the update
queues, all with the upstream limit off (`OSU_API_RATE_LIMIT=off`) and the inbound limits
off (`RATE_LIMIT_UPDATE=off`, `RATE_LIMIT_READ=off`). Each phase posts `--updates` updates
of distinct new players (8 client threads, `wait=0`), polls their jobs (oldest first, every
20 ms) until every one is finished (or failed), and reports updates/s from the first POST
to the last finish, and CPU milliseconds per update of the worker (user + system time of
the Celery process and its children, from /proc, over the phase), of the API, of the
simulator, of Postgres (the postmaster and the backends alive at the end of the phase) and
of Redis.

Phases: zero simulator latency with each `--concurrency` (worker processes, default 1,2);
then with `PUT /_sim/latency?ms=100`, one worker at each `--latency-concurrency`.
Markdown on stdout; every process started here is stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis
import requests

from bench.scale_support import (
    cpu_seconds,
    memory_kib,
    private_postgres,
    private_redis,
    process_tree,
    running_api,
)
from devstack.commands import migrate_command, simulator_osu_env, worker_command
from devstack.env import child_env
from devstack.procs import free_port, spawn, stop_process, wait_until

HOST = "127.0.0.1"
POLL_SECONDS = 0.02
PHASE_TIMEOUT_SECONDS = 600
_users = itertools.count(2_000_001)


def _up(url: str) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(url, timeout=1).status_code < 500
    return False


@contextlib.contextmanager
def simulator(log: Path) -> Iterator[tuple[str, int]]:
    """`python -m simulator` on a free port: its base URL and pid."""
    port = free_port()
    with log.open("ab") as out:
        cmd = [sys.executable, "-m", "simulator", "--host", HOST, "--port", str(port)]
        proc = spawn(cmd, env=child_env(), stdout=out)
        try:
            base = f"http://{HOST}:{port}"
            wait_until(lambda: _up(f"{base}/_sim/latency"), timeout=30, what="simulator")
            yield base, proc.pid
        finally:
            stop_process(proc)


@contextlib.contextmanager
def worker(env: Mapping[str, str], concurrency: int, log: Path) -> Iterator[int]:
    """One Celery worker with `concurrency` prefork processes; yields its pid once ready."""
    cmd = worker_command(concurrency=concurrency, hostname=f"bench{concurrency}@%h")
    with log.open("ab") as out:
        proc = spawn(cmd, env=child_env(dict(env)), stdout=out)
        try:
            wait_until(lambda: " ready." in log.read_text(), timeout=60, what="worker")
            yield proc.pid
        finally:
            stop_process(proc)


def _post(session: requests.Session, api: str, user: int) -> str:
    answer = session.post(f"{api}/update", params={"user": user, "mode": 0, "wait": 0}, timeout=30)
    answer.raise_for_status()
    return str(answer.json()["job_id"])


def _postmaster_pid(pgdata: Path) -> int:
    # The first line of postmaster.pid; its children are the backends and helpers.
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def _redis_pid(url: str) -> int:
    info: dict[str, Any] = redis.Redis.from_url(url).info("server")  # type: ignore[assignment]
    return int(info["process_id"])


def _cpu(pid: int) -> float:
    return sum(cpu_seconds(child) for child in process_tree(pid))


def phase(api: str, pids: Mapping[str, int], updates: int) -> dict[str, Any]:
    """Post `updates` updates, wait for all; throughput and CPU per update of each of
    `pids` (worker, API, simulator: where the time goes)."""
    cpu_before = {name: _cpu(pid) for name, pid in pids.items()}
    users = [next(_users) for _ in range(updates)]
    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool, requests.Session() as session:
        jobs = list(pool.map(lambda user: _post(session, api, user), users))
        pending, failed = list(jobs), 0
        deadline = time.monotonic() + PHASE_TIMEOUT_SECONDS
        while pending and time.monotonic() < deadline:
            # Jobs run roughly in the order they were posted, so each sweep asks about the
            # oldest pending ones and stops at the first still running: about one status
            # call per job plus one per sweep, instead of every pending job every sweep
            # (which made the API's CPU mostly this client's polling). A job that finished
            # out of order is found by a later sweep; the phase still ends only when every
            # job is seen finished, at most one poll interval late.
            still_pending = []
            for index, job in enumerate(pending):
                status = session.get(f"{api}/jobs/{job}", timeout=10).json()["status"]
                if status not in ("finished", "failed"):
                    still_pending = pending[index:]
                    break
                failed += status == "failed"
            pending = still_pending
            if pending:
                time.sleep(POLL_SECONDS)
    elapsed = time.monotonic() - began
    # CPU of the processes' children that are still alive; prefork keeps them for the run.
    cpu = {name: _cpu(pid) - cpu_before[name] for name, pid in pids.items()}
    peak_rss = max(memory_kib(pid).get("VmHWM", 0) for pid in process_tree(pids["worker"]))
    done = updates - len(pending)
    return {
        "updates": updates,
        "finished_or_failed": done,
        "failed": failed,
        "seconds": round(elapsed, 2),
        "worker_peak_rss_mib": round(peak_rss / 1024, 1),
        "updates_per_s": round(done / elapsed, 1),
        **{
            f"{name}_cpu_ms_per_update": round(value * 1000 / max(done, 1), 2)
            for name, value in cpu.items()
        },
    }


def _counts(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=600)
    parser.add_argument("--latency-updates", type=int, default=120)
    parser.add_argument("--concurrency", default="1,2", help="zero-latency phases")
    parser.add_argument(
        "--latency-concurrency", default="1,2,4,8", help="100 ms phases ('' for none)"
    )
    args = parser.parse_args(argv)
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="osutrack-pipeline-") as scratch:
        root = Path(scratch)
        with (
            private_postgres(root / "pg") as pg,
            private_redis(root / "redis") as rd,
            simulator(root / "simulator.log") as (sim, sim_pid),
        ):
            env = {
                "DATABASE_URL": pg.url,
                "REDIS_URL": rd.url,
                "OSU_API_RATE_LIMIT": "off",
                "RATE_LIMIT_UPDATE": "off",
                "RATE_LIMIT_READ": "off",
                "LOG_LEVEL": "WARNING",
                **simulator_osu_env(sim),
            }
            spawn_env = child_env(env)
            subprocess.run(migrate_command(), env=spawn_env, check=True)
            with running_api(env, root / "api.log") as api:
                service_pids = {
                    "api": api.pid,
                    "simulator": sim_pid,
                    "postgres": _postmaster_pid(pg.pgdata),
                    "redis": _redis_pid(rd.url),
                }
                for concurrency in _counts(args.concurrency):
                    log = root / f"worker_{concurrency}.log"
                    with worker(env, concurrency, log) as pid:
                        pids = {"worker": pid, **service_pids}
                        phase(api.base_url, pids, 20)
                        result = phase(api.base_url, pids, args.updates)
                    rows.append((f"latency 0 ms, {concurrency} worker process(es)", result))
                    print(rows[-1], file=sys.stderr, flush=True)
                requests.put(f"{sim}/_sim/latency", params={"ms": 100}, timeout=5)
                for concurrency in _counts(args.latency_concurrency):
                    log = root / f"worker_lat_{concurrency}.log"
                    with worker(env, concurrency, log) as pid:
                        pids = {"worker": pid, **service_pids}
                        result = phase(api.base_url, pids, args.latency_updates)
                    rows.append((f"latency 100 ms, {concurrency} worker process(es)", result))
                    print(rows[-1], file=sys.stderr, flush=True)
    print(
        "| phase | updates | failed | seconds | updates/s | CPU ms/update: worker"
        " | API | simulator | Postgres | Redis | peak RSS of a worker process (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(
            f"| {name} | {r['finished_or_failed']}/{r['updates']} | {r['failed']} | "
            f"{r['seconds']} | {r['updates_per_s']} | {r['worker_cpu_ms_per_update']} | "
            f"{r['api_cpu_ms_per_update']} | {r['simulator_cpu_ms_per_update']} | "
            f"{r['postgres_cpu_ms_per_update']} | {r['redis_cpu_ms_per_update']} | "
            f"{r['worker_peak_rss_mib']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
