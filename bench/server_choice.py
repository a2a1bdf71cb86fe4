"""Choose the WSGI server for the API shim by measurement.

Run: `.venv/bin/python -m bench.server_choice [--duration 8] [--connections 10] [--runs 3]
[--wsgi-ref REF]`

It starts a private Postgres and Redis (the dev stack's own helpers), migrates and seeds
the database, then serves the shim under each server configuration in turn and
loads it with `wrk` on 127.0.0.1. Every run visits every configuration once, so slow drift
of the machine (caches, thermal, a noisy neighbour) is spread over all of them instead of
landing on whichever configuration happened to run last. The report gives, per
configuration and endpoint, the median requests/second and the median p99 latency over the
runs, and each endpoint's rate as a fraction of the same server's `/ping` (the ceiling of
server plus framework with no database work).

The shim is an ASGI app now (bench/README.md, "Waiting holds no thread"): the devstack
configuration serves this tree's `api_shim.asgi:app`; the WSGI configurations serve
`api_shim.wsgi:app` of `--wsgi-ref` (by default the last commit that had it), exported to a
temporary folder.

Output: a markdown table on stdout, and the table, every raw wrk output and the server logs
in `bench/results/<UTC timestamp>/` (git-ignored). Every process started here is stopped on
exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, NoReturn

import psycopg2
from sqlalchemy import Table, create_engine
from sqlalchemy.orm import Session

from bench.scale_support import LAST_WSGI_COMMIT, export_tree
from devstack.commands import api_command, migrate_command
from devstack.env import child_env
from devstack.procs import free_port, spawn, stop_process, tail, wait_until
from devstack.services import PostgresServer, RedisServer
from osutrack.schema import hiscores, peaks, stats_snapshots, tracked_users

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_ROOT = REPO_ROOT / "bench" / "results"

# Seed sizes: enough rows that the indexed lookups are real index scans, small enough to
# load in a few seconds.
USERS = 20_000
HISTORY_USERS = 2_000
SNAPSHOTS_PER_USER = 50
HISCORES_PER_USER = 100
BESTPLAYS_TABLE_SIZE = 10_000
MODE = 0

WARMUP_SECONDS = 2
WRK_THREADS = 2
SERVER_START_TIMEOUT = 30.0
# wrk stops itself after --duration; this only guards against a wedged wrk.
WRK_GRACE_SECONDS = 30
MIGRATE_TIMEOUT_SECONDS = 120


# --------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class ServerConfig:
    """One way of serving the shim: a label and the command line for a given port."""

    name: str
    command: Callable[[int], list[str]]
    # Served from the exported tree of `--wsgi-ref`.
    wsgi: bool = True


def _granian(blocking_threads: int) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", "granian",
            "--interface", "wsgi",
            "--host", HOST, "--port", str(port),
            "--workers", "2", "--blocking-threads", str(blocking_threads),
            "api_shim.wsgi:app",
        ]  # fmt: skip

    return command


def _gunicorn(*options: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", "gunicorn",
            "--bind", f"{HOST}:{port}",
            *options,
            "api_shim.wsgi:app",
        ]  # fmt: skip

    return command


CONFIGS: tuple[ServerConfig, ...] = (
    # Exactly what `make run` uses, so the dev stack's choice is measured, not a copy of it.
    ServerConfig("granian ASGI w2 (devstack)", lambda port: api_command(HOST, port), wsgi=False),
    ServerConfig("granian w2 bt4", _granian(4)),
    ServerConfig("granian w2 bt2", _granian(2)),
    ServerConfig(
        "gunicorn gthread w2 t8", _gunicorn("-k", "gthread", "--workers", "2", "--threads", "8")
    ),
    ServerConfig("gunicorn sync w3", _gunicorn("--workers", "3")),
)


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class Endpoint:
    """A URL pattern to load; `{user}` is replaced per request by a random id in `users`."""

    name: str
    path: str
    users: tuple[int, int] | None = None

    def lua(self) -> str:
        """A wrk script choosing a random user per request, or "" for a fixed path.

        Each wrk thread has its own Lua state; `setup` hands each a distinct number so
        the threads do not draw the same sequence of ids.
        """
        if self.users is None:
            return ""
        low, high = self.users
        fmt = self.path.replace("{user}", "%d")
        return (
            "local counter = 0\n"
            "function setup(thread)\n"
            "  counter = counter + 1\n"
            "  thread:set('seed', counter)\n"
            "end\n"
            "function init(args)\n"
            "  math.randomseed(os.time() * 100 + seed)\n"
            "end\n"
            "function request()\n"
            f"  return wrk.format('GET', string.format('{fmt}', math.random({low}, {high})))\n"
            "end\n"
        )

    def fixed_path(self) -> str:
        """The path wrk is given on its command line (the script overrides it if any)."""
        return self.path.replace("{user}", "1")


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/ping", "/ping"),
    Endpoint("/peak", f"/peak?user={{user}}&mode={MODE}", (1, USERS)),
    Endpoint("/stats_history", f"/stats_history?user={{user}}&mode={MODE}", (1, HISTORY_USERS)),
    Endpoint("/bestplays", f"/bestplays?mode={MODE}&limit=100"),
)


# --------------------------------------------------------------------------- wrk results


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reported."""

    rps: float
    p99_ms: float
    errors: int  # socket errors plus non-2xx/3xx responses


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> WrkResult:
    """Pull requests/second, the 99th percentile latency and the error count from wrk."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if rps is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    return WrkResult(
        rps=float(rps.group(1)),
        p99_ms=float(p99.group(1)) * _UNIT_MS[p99.group(2)],
        errors=errors,
    )


def run_wrk(
    port: int, endpoint: Endpoint, *, duration: int, connections: int, script_dir: Path
) -> str:
    """Load one endpoint for `duration` seconds; return wrk's full output."""
    cmd = [
        "wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration}s", "--latency",
        "--timeout", "10s",
    ]  # fmt: skip
    script = endpoint.lua()
    if script:
        path = script_dir / f"{endpoint.name.strip('/')}.lua"
        path.write_text(script)
        cmd += ["-s", str(path)]
    cmd.append(f"http://{HOST}:{port}{endpoint.fixed_path()}")
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=duration + WRK_GRACE_SECONDS, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


# --------------------------------------------------------------------------- services and data


@dataclass
class Backing:
    """The private Postgres and Redis the API talks to."""

    postgres: PostgresServer
    redis: RedisServer

    def api_env(self) -> dict[str, str]:
        """The API's environment: our databases, and per-client limits off.

        Every wrk request comes from 127.0.0.1, so the inbound limits (RATE_LIMIT_READ,
        RATE_LIMIT_UPDATE) would answer almost all of them with 429 and the run would
        measure refusals. Code without those settings ignores the variables.
        """
        return child_env(
            {
                "DATABASE_URL": self.postgres.url,
                "REDIS_URL": self.redis.url,
                "RATE_LIMIT_READ": "off",
                "RATE_LIMIT_UPDATE": "off",
            }
        )


def start_backing(stack: contextlib.ExitStack, workdir: Path) -> Backing:
    """Start Postgres (fsync off: the data is throwaway) and Redis; stop them on exit."""
    postgres = PostgresServer(workdir / "postgres", free_port(), fsync=False)
    stack.callback(postgres.stop)
    postgres.start()
    redis_server = RedisServer(workdir / "redis", free_port())
    stack.callback(redis_server.stop)
    redis_server.start()
    return Backing(postgres, redis_server)


def migrate(backing: Backing) -> None:
    """Bring the schema to head with the project's own migration entry point."""
    subprocess.run(
        migrate_command(),
        env=child_env({"DATABASE_URL": backing.postgres.url}),
        cwd=REPO_ROOT,
        check=True,
        timeout=MIGRATE_TIMEOUT_SECONDS,
    )


def _copy(cur: Any, table: Table, rows: Iterator[Sequence[object]]) -> None:
    """COPY rows into `table`; an order of magnitude faster than INSERT for bulk loads.

    Rows list the table's columns in `osutrack.schema` order, minus identity columns
    (Postgres numbers those itself).
    """
    columns = [column.name for column in table.columns if column.identity is None]
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(str(value) for value in row))
        buffer.write("\n")
    buffer.seek(0)
    cur.copy_expert(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN", buffer)


def _peak_rows(rng: random.Random, base: datetime) -> Iterator[Sequence[object]]:
    for user in range(1, USERS + 1):
        at = (base + timedelta(minutes=user)).isoformat()
        yield (user, MODE, rng.randint(1, 2_000_000), at, round(rng.uniform(80, 100), 4), at)


def _user_rows(base: datetime) -> Iterator[Sequence[object]]:
    for user in range(1, USERS + 1):
        at = (base + timedelta(minutes=user)).isoformat()
        yield (user, f"player{user}", at, at)


def _snapshot_rows(rng: random.Random, base: datetime) -> Iterator[Sequence[object]]:
    for user in range(1, HISTORY_USERS + 1):
        playcount = rng.randint(100, 10_000)
        for i in range(SNAPSHOTS_PER_USER):
            playcount += rng.randint(1, 50)
            yield (
                user, MODE, playcount * 300, playcount * 30, playcount * 3, playcount,
                playcount * 100_000, playcount * 150_000, rng.randint(1, 2_000_000),
                round(rng.uniform(50, 100), 4), round(rng.uniform(0, 12_000), 2),
                round(rng.uniform(80, 100), 4), rng.randint(0, 500), rng.randint(0, 2_000),
                rng.randint(0, 5_000), (base + timedelta(days=i)).isoformat(),
            )  # fmt: skip


def _hiscore_rows(rng: random.Random, base: datetime) -> Iterator[Sequence[object]]:
    score_id = 0
    for user in range(1, HISTORY_USERS + 1):
        for _ in range(HISCORES_PER_USER):
            score_id += 1
            played = base + timedelta(minutes=rng.randint(0, 500_000))
            yield (
                MODE, score_id, user, rng.randint(1, 4_000_000), rng.randint(100_000, 10**8),
                round(rng.uniform(10, 1_200), 3), rng.choice((0, 8, 16, 64, 72)),
                rng.choice(("XH", "X", "SH", "S", "A", "B")), played.isoformat(),
                (played + timedelta(hours=1)).isoformat(),
            )  # fmt: skip


def seed(backing: Backing) -> None:
    """Load users, peaks, snapshots and hiscores, then build mode 0's bestplays table.

    The generator is seeded, so every invocation measures the same data.
    """
    rng = random.Random(20_240_101)
    base = datetime(2023, 1, 1, tzinfo=UTC)
    conn = psycopg2.connect(backing.postgres.dsn())
    try:
        with conn, conn.cursor() as cur:
            _copy(cur, tracked_users, _user_rows(base))
            _copy(cur, peaks, _peak_rows(rng, base))
            _copy(cur, stats_snapshots, _snapshot_rows(rng, base))
            _copy(cur, hiscores, _hiscore_rows(rng, base))
    finally:
        conn.close()
    _rebuild_bestplays(backing.postgres.url)
    _analyze(backing.postgres.dsn())


def _rebuild_bestplays(url: str) -> None:
    # Imported here: importing `worker` builds the Celery app, which only the seeding needs.
    from worker.bestplays import rebuild_bestplays  # noqa: PLC0415

    engine = create_engine(url)
    try:
        with Session(engine) as session:
            rebuild_bestplays(session, MODE, BESTPLAYS_TABLE_SIZE, datetime.now(UTC))
            session.commit()
    finally:
        engine.dispose()


def _analyze(dsn: str) -> None:
    """Fresh planner statistics, so the first server measured gets the same plans as the last."""
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()


# --------------------------------------------------------------------------- the API server


def _pings(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/ping", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def check_answers(port: int) -> None:
    """Fail unless every endpoint answers 200 with a JSON array holding real data.

    A benchmark of 404s or empty results would measure nothing useful, and wrk alone
    would not notice an empty 200.
    """
    for endpoint in ENDPOINTS:
        if endpoint.name == "/ping":
            continue
        url = f"http://{HOST}:{port}{endpoint.fixed_path()}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
        # /peak always answers one element; its values are all null for an unknown user.
        if not (isinstance(body, list) and body and any(v is not None for v in body[0].values())):
            raise RuntimeError(f"{url} answered {body!r:.200}; is the data seeded?")


@contextlib.contextmanager
def serving(
    config: ServerConfig, backing: Backing, log_path: Path, wsgi_tree: Path
) -> Iterator[int]:
    """Run the shim under `config` until the block exits; yield its port."""
    port = free_port()
    log: IO[Any]
    env, cwd = backing.api_env(), REPO_ROOT
    if config.wsgi:
        env, cwd = {**env, "PYTHONPATH": str(wsgi_tree)}, wsgi_tree
    with log_path.open("ab") as log:
        proc = spawn(config.command(port), env=env, cwd=cwd, stdout=log)
        try:
            wait_until(
                lambda: _pings(port),
                timeout=SERVER_START_TIMEOUT,
                what=config.name,
                alive=lambda: proc.poll() is None,
                details=lambda: tail(log_path),
            )
            yield port
        finally:
            stop_process(proc, sig=signal.SIGTERM, timeout=15.0)


# --------------------------------------------------------------------------- the measurement


@dataclass
class Measurements:
    """Every wrk result, keyed by (configuration, endpoint), one entry per run."""

    results: dict[tuple[str, str], list[WrkResult]] = field(default_factory=dict)

    def add(self, config: str, endpoint: str, result: WrkResult) -> None:
        """Record one run's result."""
        self.results.setdefault((config, endpoint), []).append(result)

    def median_rps(self, config: str, endpoint: str) -> float:
        """Median requests/second over the runs."""
        return statistics.median(r.rps for r in self.results[(config, endpoint)])

    def median_p99(self, config: str, endpoint: str) -> float:
        """Median of the runs' p99 latencies, in milliseconds."""
        return statistics.median(r.p99_ms for r in self.results[(config, endpoint)])

    def errors(self, config: str, endpoint: str) -> int:
        """Failed requests summed over the runs."""
        return sum(r.errors for r in self.results[(config, endpoint)])


@dataclass(frozen=True)
class Options:
    """The command-line options."""

    duration: int
    connections: int
    runs: int
    wsgi_ref: str
    wsgi_tree: Path = Path()


def measure_config(
    config: ServerConfig,
    backing: Backing,
    options: Options,
    run: int,
    out_dir: Path,
    measurements: Measurements,
) -> None:
    """Start one server, warm every endpoint up, load each in turn, stop the server.

    A fresh server per run means each run also pays (and hides) the pools' first
    connections in its warm-up, as a freshly deployed server would.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", config.name.lower()).strip("-")
    with serving(config, backing, out_dir / f"server-{slug}.log", options.wsgi_tree) as port:
        check_answers(port)
        for endpoint in ENDPOINTS:
            # Warm-up: fills connection pools, imports lazily loaded code, primes caches.
            run_wrk(
                port, endpoint, duration=WARMUP_SECONDS, connections=options.connections,
                script_dir=out_dir,
            )  # fmt: skip
            output = run_wrk(
                port, endpoint, duration=options.duration, connections=options.connections,
                script_dir=out_dir,
            )  # fmt: skip
            name = f"run{run}-{slug}-{endpoint.name.strip('/')}.txt"
            (out_dir / name).write_text(output)
            result = parse_wrk(output)
            measurements.add(config.name, endpoint.name, result)
            print(
                f"  run {run} {config.name:28} {endpoint.name:15} "
                f"{result.rps:9.1f} rps  p99 {result.p99_ms:8.2f} ms  errors {result.errors}",
                flush=True,
            )


def render_table(measurements: Measurements) -> str:
    """The markdown report: one row per configuration and endpoint."""
    lines = [
        "| server | endpoint | median rps | median p99 (ms) | rps / same server's /ping | failed requests |",  # noqa: E501
        "|---|---|---:|---:|---:|---:|",
    ]
    for config in CONFIGS:
        ping = measurements.median_rps(config.name, "/ping")
        for endpoint in ENDPOINTS:
            rps = measurements.median_rps(config.name, endpoint.name)
            lines.append(
                f"| {config.name} | {endpoint.name} | {rps:.0f} "
                f"| {measurements.median_p99(config.name, endpoint.name):.1f} "
                f"| {rps / ping:.2f} | {measurements.errors(config.name, endpoint.name)} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> Options:
    """Read and bound the options: every loop here must end in a known time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run (1-60)")
    parser.add_argument("--connections", type=int, default=10, help="wrk connections (1-200)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions (1-10)")
    parser.add_argument("--wsgi-ref", default=LAST_WSGI_COMMIT, help="commit of the WSGI shim")
    args = parser.parse_args(argv)
    if not (1 <= args.duration <= 60 and 1 <= args.connections <= 200 and 1 <= args.runs <= 10):
        parser.error("--duration must be 1-60, --connections 1-200, --runs 1-10")
    return Options(
        duration=args.duration, connections=args.connections, runs=args.runs, wsgi_ref=args.wsgi_ref
    )


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    # Turn SIGTERM into an exception so the `finally` blocks stop the children.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the whole measurement; return the exit code."""
    options = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = RESULTS_ROOT / stamp
    out_dir.mkdir(parents=True)
    started = time.monotonic()
    measurements = Measurements()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        _, wsgi_tree = export_tree(options.wsgi_ref, workdir)
        options = dataclasses.replace(options, wsgi_tree=wsgi_tree)
        backing = start_backing(stack, workdir)
        migrate(backing)
        seed(backing)
        print(f"seeded in {time.monotonic() - started:.0f} s; results in {out_dir}", flush=True)
        for run in range(1, options.runs + 1):
            for config in CONFIGS:
                measure_config(config, backing, options, run, out_dir, measurements)
    table = render_table(measurements)
    header = (
        f"wrk -t{WRK_THREADS} -c{options.connections} -d{options.duration}s --latency, "
        f"{options.runs} runs, {WARMUP_SECONDS} s warm-up per endpoint; "
        f"total {time.monotonic() - started:.0f} s\n\n"
    )
    (out_dir / "table.md").write_text(header + table)
    print()
    print(header + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
