"""Shared pieces of the scale benchmarks: a private stack, wrk runs and process memory.

`private_postgres` starts (or reuses) a cluster in a directory with settings for data that
fits in memory; `running_api` serves `api_shim.asgi:app` exactly as devstack does
(`devstack.commands.api_command`); `run_wrk` runs one wrk measurement with a Lua script
that picks a random request each time. Every process is stopped on the way out.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from api_shim.read_connections import libpq_dsn
from devstack.commands import api_command
from devstack.env import child_env
from devstack.procs import free_port, spawn, stop_process, wait_until
from devstack.services import PostgresServer, RedisServer
from worker.bestplays import rebuild_bestplays, rebuild_month_lists
from worker.peaks import recompute_peaks

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_ROOT = REPO_ROOT / "bench" / "results"

# Postgres settings for a data set that fits in RAM on the 24 GiB benchmark machine.
POSTGRES_TUNING = {
    "shared_buffers": "6GB",
    "effective_cache_size": "16GB",
    "work_mem": "32MB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "8GB",
    "random_page_cost": "1.1",
    "jit": "off",
}


def libpq(database_url: str) -> str:
    """The libpq URI of a SQLAlchemy URL."""
    return libpq_dsn(database_url)


@contextlib.contextmanager
def private_postgres(data_dir: Path, port: int | None = None) -> Iterator[PostgresServer]:
    """A fsync-off cluster in `data_dir` (kept, so a seeded database is reused), tuned."""
    server = PostgresServer(data_dir, port or free_port(), fsync=False)
    server.start()
    try:
        conn = psycopg2.connect(server.dsn())
        conn.autocommit = True
        with conn.cursor() as cursor:
            for name, value in POSTGRES_TUNING.items():
                cursor.execute(f"ALTER SYSTEM SET {name} = %s", (value,))
            cursor.execute("SHOW shared_buffers")
            current = cursor.fetchone()[0]
        conn.close()
        if current != POSTGRES_TUNING["shared_buffers"]:
            server.restart()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def private_redis(data_dir: Path) -> Iterator[RedisServer]:
    server = RedisServer(data_dir, free_port(), appendonly=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class RunningApi:
    base_url: str
    pid: int


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def running_api(env: Mapping[str, str], log_path: Path, threads: int = 4) -> Iterator[RunningApi]:
    """granian as devstack runs it, with `env` on top of this process's environment and
    `threads` threads per process (API_THREADS)."""
    port = free_port()
    with log_path.open("ab") as log:
        proc_env = child_env({**env, "API_THREADS": str(threads)})
        proc = spawn(api_command(HOST, port), env=proc_env, stdout=log)
        try:
            base = f"http://{HOST}:{port}"
            wait_until(lambda: _answers(f"{base}/ping"), timeout=30, what="the API")
            yield RunningApi(base, proc.pid)
        finally:
            stop_process(proc)


# The last commit whose shim was a WSGI app (`api_shim.wsgi:app`), for benchmarks that
# measure it beside the current one.
LAST_WSGI_COMMIT = "67db972"


def export_tree(ref: str, parent: Path) -> tuple[str, Path]:
    """The files of commit `ref` (`git archive`) in a new folder under `parent`; returns
    the short commit id and the folder. Run from there with PYTHONPATH set to it, its
    modules are imported instead of this tree's."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = parent / f"tree-{commit}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return commit, tree


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of one process, in KiB; empty if it is gone."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    output: str


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> WrkResult:
    """Figures of `wrk --latency` output; non-2xx answers and socket errors are errors."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = 0
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if match:
        errors += int(match.group(1))
    match = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if match:
        errors += sum(int(value) for value in match.groups())
    return WrkResult(rps, p50, p99, requests, errors, output)


def lua_script(paths: str) -> str:
    """A wrk script whose `request()` returns the path built by the Lua expression `paths`.

    Each wrk thread seeds its own generator, so threads do not repeat each other's users.
    """
    return (
        "local counter = 0\n"
        "function setup(thread) counter = counter + 1; thread:set('id', counter) end\n"
        "function init(args) math.randomseed(os.time() * 1000 + id) end\n"
        f"function request() return wrk.format('GET', {paths}) end\n"
    )


def wrk_command(
    url: str, script: Path | None, duration: float, connections: int, threads: int = 2
) -> list[str]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    command += ["--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    return [*command, url]


def run_wrk(
    url: str, script: Path | None, duration: float, connections: int, threads: int = 2
) -> WrkResult:
    """One wrk run (bounded by `duration` plus a margin)."""
    threads = min(threads, connections)
    done = subprocess.run(
        wrk_command(url, script, duration, connections, threads),
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    )
    return parse_wrk(done.stdout)


def start_wrk(
    url: str, script: Path | None, duration: float, connections: int, threads: int = 2
) -> subprocess.Popen[str]:
    """wrk in the background (for load running beside a measurement)."""
    return subprocess.Popen(
        wrk_command(url, script, duration, connections, min(threads, connections)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_background(proc: subprocess.Popen[str]) -> str:
    """Wait for a background wrk (it ends by itself), kill it if it hangs; its output."""
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def settle(seconds: float) -> None:
    time.sleep(seconds)


def add_updates(
    database_url: str, updates: int, first_user: int, seed: int, spread_days: int = 3650
) -> None:
    """Commit `updates` synthetic updates of new players in mode 0: each one snapshot and
    100 hiscores, a tenth of them with pp high enough to enter a 10,000-row top list,
    with score times spread uniformly over the last `spread_days` days."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    conn = psycopg2.connect(libpq(database_url))
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(score_id), 0) FROM hiscores WHERE mode = 0")
            score_id = int(cursor.fetchone()[0])
            for user in range(first_user, first_user + updates):
                cursor.execute(
                    "INSERT INTO stats_snapshots (user_id, mode, count300, count100, count50,"
                    " playcount, ranked_score, total_score, pp_rank, level, pp_raw, accuracy,"
                    " count_rank_ss, count_rank_s, count_rank_a, captured_at)"
                    " VALUES (%s, 0, 1, 1, 1, 1, 1, 1, %s, 1, 1, 99.5, 1, 1, 1, %s)",
                    (user, rng.randint(1, 10**6), now),
                )
                rows = []
                for index in range(100):
                    score_id += 1
                    pp = 600 + rng.random() * 400 if index < 10 else rng.random() * 300
                    rows.append(
                        (score_id, user, pp, now - timedelta(days=rng.randint(0, spread_days)))
                    )
                cursor.executemany(
                    "INSERT INTO hiscores (mode, score_id, user_id, beatmap_id, score, pp, mods,"
                    " rank, score_time, update_time)"
                    " VALUES (0, %s, %s, 1, 1, %s, 0, 'A', %s, now())",
                    rows,
                )
    finally:
        conn.close()


def time_rebuilds(database_url: str, *, since: datetime | None = None) -> dict[str, float]:
    """Seconds for beat's bestplays rebuild of mode 0, month lists and table (twice: after
    the new plays, then with nothing new), and for the peaks recompute, each in its own
    transaction; the number of month lists each rebuild ranked again.

    The peaks recompute is timed for the user-modes with snapshots captured at or after
    `since` (what beat's incremental run does; pass the moment before `add_updates`), with
    the rows it wrote, then for every user-mode (the first run, `worker.admin recompute`).
    """
    engine = create_engine(database_url)
    timings: dict[str, float] = {}
    try:
        for label in ("after_updates", "nothing_new"):
            # What beat's bestplays task does for a mode: the month lists, then the table.
            began = time.monotonic()
            with Session(engine) as session, session.begin():
                months = rebuild_month_lists(session, 0, 10_000, datetime.now(UTC))
            timings[f"month_lists_{label}_s"] = round(time.monotonic() - began, 3)
            timings[f"month_lists_{label}_months"] = months.months
            began = time.monotonic()
            with Session(engine) as session, session.begin():
                rebuild_bestplays(session, 0, 10_000, datetime.now(UTC))
            timings[f"bestplays_{label}_s"] = round(time.monotonic() - began, 3)
        if since is not None:
            began = time.monotonic()
            with Session(engine) as session, session.begin():
                written = recompute_peaks(session, since=since)
            timings["peaks_recompute_since_s"] = round(time.monotonic() - began, 3)
            timings["peaks_recompute_since_rows"] = written
        began = time.monotonic()
        with Session(engine) as session, session.begin():
            recompute_peaks(session)
        timings["peaks_recompute_all_s"] = round(time.monotonic() - began, 3)
    finally:
        engine.dispose()
    return timings


def explain(database_url: str, statements: list[tuple[str, str, tuple[object, ...]]]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of each (label, sql with %s, args), as markdown blocks,
    with the session settings of the shim's read connections (`api_shim.read_connections`)."""
    conn = psycopg2.connect(
        libpq(database_url), options="-c jit=off -c max_parallel_workers_per_gather=0"
    )
    conn.autocommit = True
    parts = []
    try:
        with conn.cursor() as cursor:
            for label, sql, args in statements:
                cursor.execute(sql, args)  # warm the cache first
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, args)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                parts.append(f"{label}\n```\n{plan}\n```")
    finally:
        conn.close()
    return "\n\n".join(parts)
