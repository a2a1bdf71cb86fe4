"""Issue 5, "Load held": many concurrent clients against `make run`'s stack with the simulator.

Run: `.venv/bin/python -m bench.load_test [--clients 200] [--duration 120]
[--upstream-limit off|default|LIMIT] [--seed 1]`

Starts `python -m devstack.run` (what `make run` runs) on free loopback ports with a fresh
data directory, no osu! credentials (so it starts the simulator) and the per-IP inbound
limits off: every client here is 127.0.0.1, so `RATE_LIMIT_UPDATE`/`RATE_LIMIT_READ` would
answer 429 to nearly everything and measure the limiter instead of the service. Once
`/health` answers 200, `--clients` threads (one `requests.Session` each, no think time)
loop until `--duration` is over, mostly reading (`/stats_history`, `/hiscores`, `/peak`,
`/bestplays`, `/jobs/{id}`) and sometimes posting `POST /update` for a pool of a few hundred
user ids, so that concurrent updates of the same user and mode join one job.

Afterwards every job seen (in a 202 answer, a failure answer or `/jobs/{id}`) is polled
until it is `finished` or `failed`, for at most `--drain-timeout` seconds; one that never
gets there, or whose state disappears, is lost. The checks: no 5xx answer, no lost job.

Output: a markdown report on stdout; in `bench/results/load_<UTC timestamp>/` the raw
per-request CSV, the report, the stack's output and the Postgres and Redis logs. Exit
status 0 when both checks hold, 1 otherwise. Ctrl-C or SIGTERM stops the clients and the
stack.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

import requests

from devstack.env import child_env
from devstack.procs import free_port, spawn, tail, wait_until

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_ROOT = REPO_ROOT / "bench" / "results"
# First start runs initdb, migrations and three Celery processes on a busy 2-core machine.
STARTUP_TIMEOUT_SECONDS = 240.0
# devstack.run gives its children 15 s and then stops Postgres and Redis; this leaves room
# for all of it before the launcher is killed outright.
STOP_TIMEOUT_SECONDS = 90.0
HEALTH_TIMEOUT_SECONDS = 5.0
POLL_TIMEOUT_SECONDS = 30.0
# Once the deadline passes, a client finishes its request in flight (at most the client
# timeout); this is how much longer than that the main thread waits for it.
JOIN_GRACE_SECONDS = 10.0
# The drain re-polls pending jobs at this pace, so that polling a backlog of a thousand
# jobs does not take the CPU the workers need to clear it.
DRAIN_PAUSE_SECONDS = 5.0
# How often the update queue's depth is sampled from /metrics during the load.
QUEUE_SAMPLE_SECONDS = 10.0
USER_ID_BASE = 1000
TERMINAL = frozenset({"finished", "failed"})

# Relative weights of the request kinds: a read-heavy mix, as the public site sees.
# `/bestplays?limit=10000` is the heaviest body the API serves, so it is kept rare.
MIX: tuple[tuple[str, int], ...] = (
    ("/stats_history", 22),
    ("/hiscores", 18),
    ("/peak", 22),
    ("/bestplays?limit=100", 12),
    ("/bestplays?limit=10000", 2),
    ("/jobs/{id}", 9),
    ("POST /update", 15),
)
UPDATE = "POST /update"
JOBS = "/jobs/{id}"


class _Stop(Exception):
    """Raised in the main thread by the SIGTERM handler, so `finally` blocks run."""


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop("SIGTERM")


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """A running `devstack.run` and where to reach and read it."""

    base: str
    proc: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path


def stack_env(data_dir: Path, upstream_limit: str) -> tuple[dict[str, str], int]:
    """The environment for `devstack.run` and the API port it will serve on.

    Variables the operator may have exported are blanked: an external DATABASE_URL or
    REDIS_URL would point the test at a shared server, osu! credentials would skip the
    simulator and send the load to osu! itself.
    """
    port = free_port()
    env = child_env(
        {
            "OSUTRACK_DATA_DIR": str(data_dir),
            "HOST": HOST,
            "PORT": str(port),
            "OSUTRACK_PG_PORT": str(free_port()),
            "OSUTRACK_REDIS_PORT": str(free_port()),
            "SIMULATOR_PORT": str(free_port()),
            "DATABASE_URL": "",
            "REDIS_URL": "",
            "OSU_CLIENT_ID": "",
            "OSU_CLIENT_SECRET": "",
            "OSU_API_KEY": "",
            "OSU_API_BASE_URL": "",
            "RATE_LIMIT_UPDATE": "off",
            "RATE_LIMIT_READ": "off",
            # A log line per request would be part of what is measured.
            "ACCESS_LOG": "off",
            # Empty means the default for the API version (60/minute for v2).
            "OSU_API_RATE_LIMIT": "" if upstream_limit == "default" else upstream_limit,
        }
    )
    return env, port


def _healthy(base: str) -> bool:
    """True when `/health` answers 200 (Postgres, Redis and a worker are up)."""
    try:
        return requests.get(f"{base}/health", timeout=HEALTH_TIMEOUT_SECONDS).status_code == 200
    except requests.RequestException:
        return False


@contextlib.contextmanager
def running_stack(out: Path, upstream_limit: str) -> Iterator[Stack]:
    """`python -m devstack.run` until the block ends; it is stopped whatever happens."""
    data_dir = Path(tempfile.mkdtemp(prefix="osutrack-load-"))
    env, port = stack_env(data_dir, upstream_limit)
    log_path = out / "stack.log"
    log: IO[bytes] = log_path.open("wb")
    proc: subprocess.Popen[bytes] | None = None
    try:
        # spawn: own session (a terminal Ctrl-C reaches only this script, which then stops
        # the stack in order) and a parent-death signal (nothing outlives a SIGKILL here).
        proc = spawn([sys.executable, "-m", "devstack.run"], env=env, cwd=REPO_ROOT, stdout=log)
        stack = Stack(f"http://{HOST}:{port}", proc, data_dir, log_path)
        running = proc
        wait_until(
            lambda: _healthy(stack.base),
            timeout=STARTUP_TIMEOUT_SECONDS,
            what="devstack.run's /health",
            alive=lambda: running.poll() is None,
            details=lambda: tail(log_path, 40),
            interval=1.0,
        )
        yield stack
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave the stack running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if proc is not None:
            stop_stack(proc)
        log.close()
        _keep_service_logs(data_dir, out)
        shutil.rmtree(data_dir, ignore_errors=True)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_stack(proc: subprocess.Popen[bytes]) -> int:
    """SIGINT (as Ctrl-C under `make run`) to the launcher's group, then SIGKILL if stuck.

    The launcher stops its own children (each in a session of its own) and the private
    Postgres and Redis; the children would also get SIGTERM from their parent-death signal.
    """
    _signal_group(proc, signal.SIGINT)
    try:
        return proc.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"devstack.run did not stop in {STOP_TIMEOUT_SECONDS:.0f} s: killing it")
        _signal_group(proc, signal.SIGKILL)
        return proc.wait()


def _keep_service_logs(data_dir: Path, out: Path) -> None:
    """Copy Postgres's and Redis's logs out of the data directory before it is deleted."""
    for name in ("postgres", "redis"):
        source = data_dir / name / f"{name}.log"
        with contextlib.suppress(OSError):
            shutil.copyfile(source, out / f"{name}.log")


# ------------------------------------------------------------------------- the clients


@dataclass(frozen=True)
class Sample:
    """One request as a client saw it."""

    phase: str
    client: int
    started: float  # seconds since the load began
    endpoint: str
    status: str  # the HTTP status, or the name of the exception that replaced it
    ms: float
    job_id: str = ""
    detail: str = ""  # the error message of a non-2xx answer


@dataclass
class JobBook:
    """Every update job the clients heard of, with the last status seen; thread-safe."""

    status: dict[str, str] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    finished_inline: int = 0  # 200 answers to POST /update: a job ended within `wait`
    lost_inline: int = 0  # 503 "update job was lost" answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, job_id: str, status: str) -> None:
        """Record `status` for `job_id`; a terminal status is final and never replaced."""
        with self.lock:
            if job_id not in self.status:
                self.ids.append(job_id)
            if self.status.get(job_id) not in TERMINAL:
                self.status[job_id] = status

    def any_id(self, rng: random.Random) -> str | None:
        """A job id some client has seen, for `/jobs/{id}` reads."""
        with self.lock:
            return rng.choice(self.ids) if self.ids else None

    def unfinished(self) -> list[str]:
        """Ids of jobs not yet seen `finished` or `failed`."""
        with self.lock:
            return [job_id for job_id, status in self.status.items() if status not in TERMINAL]

    def count(self, status: str) -> int:
        with self.lock:
            return sum(1 for seen in self.status.values() if seen == status)

    def note_inline(self, *, finished: bool = False, lost: bool = False) -> None:
        with self.lock:
            self.finished_inline += finished
            self.lost_inline += lost


@dataclass(frozen=True)
class Plan:
    """What one client thread does and until when."""

    base: str
    deadline: float
    started: float
    users: tuple[int, ...]
    timeout: float
    seed: int
    max_wait: int


def _read_path(kind: str, rng: random.Random, users: Sequence[int]) -> str:
    """The path of a read request of `kind` for a random pooled user and mode."""
    user, mode = rng.choice(users), rng.randrange(4)
    if kind.startswith("/bestplays"):
        return f"{kind}&mode={mode}"
    return f"{kind}?user={user}&mode={mode}"


def next_request(rng: random.Random, plan: Plan, book: JobBook) -> tuple[str, str, str]:
    """(endpoint label, method, path) of the next request, drawn from `MIX`."""
    labels, weights = zip(*MIX, strict=True)
    kind = rng.choices(labels, weights)[0]
    if kind == UPDATE:
        user, mode, wait = rng.choice(plan.users), rng.randrange(4), rng.randint(0, plan.max_wait)
        return kind, "POST", f"/update?user={user}&mode={mode}&wait={wait}"
    if kind == JOBS:
        job_id = book.any_id(rng)
        if job_id is not None:
            return kind, "GET", f"/jobs/{job_id}"
        kind = "/peak"  # no job seen yet: read something else instead
    return kind, "GET", _read_path(kind, rng, plan.users)


def _body(resp: requests.Response) -> dict[str, Any]:
    """The JSON object of an answer, or {} when it is not one."""
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _account(endpoint: str, resp: requests.Response, book: JobBook) -> tuple[str, str]:
    """Note what an update or job answer says about its job; returns (job_id, detail)."""
    body = _body(resp) if endpoint in (UPDATE, JOBS) or resp.status_code >= 400 else {}
    job_id = str(body.get("job_id") or "")
    detail = str(body.get("error") or "")[:80] if resp.status_code >= 400 else ""
    if endpoint == UPDATE:
        if resp.status_code == 200:
            book.note_inline(finished=True)
        elif job_id:
            # 202 carries the job's status; a failure answer means the job failed.
            book.saw(job_id, str(body.get("status") or "failed"))
        elif "lost" in detail:
            book.note_inline(lost=True)
    elif endpoint == JOBS and job_id:
        book.saw(job_id, str(body.get("status")))
    return job_id, detail


def send(
    session: requests.Session,
    base: str,
    request: tuple[str, str, str],
    timeout: float,
    book: JobBook,
) -> tuple[str, float, str, str]:
    """Send one request; (status, milliseconds, job_id, detail)."""
    endpoint, method, path = request
    begin = time.perf_counter()
    try:
        resp = session.request(method, base + path, timeout=timeout)
    except requests.RequestException as err:
        return type(err).__name__, (time.perf_counter() - begin) * 1000, "", str(err)[:80]
    elapsed = (time.perf_counter() - begin) * 1000
    job_id, detail = _account(endpoint, resp, book)
    return str(resp.status_code), elapsed, job_id, detail


def client(index: int, plan: Plan, book: JobBook, stop: threading.Event, out: list[Sample]) -> None:
    """One client: requests back to back until the deadline (or a stop), into `out`."""
    rng = random.Random(plan.seed * 100_003 + index)
    with requests.Session() as session:
        while not stop.is_set() and time.monotonic() < plan.deadline:
            request = next_request(rng, plan, book)
            started = time.monotonic() - plan.started
            status, ms, job_id, detail = send(session, plan.base, request, plan.timeout, book)
            out.append(Sample("load", index, started, request[0], status, ms, job_id, detail))


def watch_queue(plan: Plan, stop: threading.Event, depths: list[str]) -> None:
    """Sample the update queue's depth every `QUEUE_SAMPLE_SECONDS` until the deadline."""
    while not stop.is_set() and time.monotonic() < plan.deadline:
        depths.append(update_queue_depth(plan.base))
        stop.wait(QUEUE_SAMPLE_SECONDS)


def run_clients(plan: Plan, clients: int, book: JobBook, depths: list[str]) -> list[Sample]:
    """Run `clients` threads to the deadline; on Ctrl-C/SIGTERM stop them and re-raise.

    A further thread samples the update queue's depth into `depths`.
    """
    stop = threading.Event()
    outputs: list[list[Sample]] = [[] for _ in range(clients)]
    threads = [
        threading.Thread(target=client, args=(i, plan, book, stop, outputs[i]), daemon=True)
        for i in range(clients)
    ]
    threads.append(threading.Thread(target=watch_queue, args=(plan, stop, depths), daemon=True))
    try:
        for thread in threads:
            thread.start()
        give_up = plan.deadline + plan.timeout + JOIN_GRACE_SECONDS
        for thread in threads:
            thread.join(max(0.0, give_up - time.monotonic()))
    finally:
        stop.set()
        # Daemon threads: any still blocked in a request dies with the process.
        still = sum(thread.is_alive() for thread in threads)
        if still:
            print(f"{still} client threads still in a request when the load ended")
    return [sample for output in outputs for sample in output]


def drain(base: str, book: JobBook, started: float, timeout: float) -> list[Sample]:
    """Poll every unfinished job until all are finished or failed, for at most `timeout` s.

    A job that answers 404 is kept in the book as `missing`: its state is gone, so unless a
    later poll finds it, it is lost.
    """
    samples: list[Sample] = []
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        while (pending := book.unfinished()) and time.monotonic() < deadline:
            for job_id in pending:
                request = (JOBS, "GET", f"/jobs/{job_id}")
                at = time.monotonic() - started
                status, ms, _, detail = send(session, base, request, POLL_TIMEOUT_SECONDS, book)
                if status == "404":
                    book.saw(job_id, "missing")
                samples.append(Sample("drain", -1, at, JOBS, status, ms, job_id, detail))
            time.sleep(DRAIN_PAUSE_SECONDS)
    return samples


def update_queue_depth(base: str) -> str:
    """The `updates` queue's length from `/metrics` (should be 0 once jobs are drained)."""
    try:
        text = requests.get(f"{base}/metrics", timeout=POLL_TIMEOUT_SECONDS).text
    except requests.RequestException as err:
        return f"unknown ({type(err).__name__})"
    for line in text.splitlines():
        if line.startswith('osutrack_queue_depth{queue="updates"}'):
            return f"{float(line.split()[-1]):.0f}"
    return "unknown (no gauge)"


# ---------------------------------------------------------------------------- the report


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


def _is_5xx(status: str) -> bool:
    return status.isdigit() and status.startswith("5")


def endpoint_table(samples: Sequence[Sample], duration: float) -> str:
    """Per endpoint: requests, rate, status mix and latency percentiles (markdown)."""
    lines = [
        "| endpoint | requests | req/s | status mix | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for endpoint in [*(label for label, _ in MIX), "all"]:
        chosen = [s for s in samples if endpoint in ("all", s.endpoint)]
        if not chosen:
            continue
        ms = sorted(s.ms for s in chosen)
        mix = ", ".join(f"{k}: {v}" for k, v in sorted(Counter(s.status for s in chosen).items()))
        stats = " | ".join(f"{percentile(ms, p):.0f}" for p in (0.5, 0.95, 0.99, 1.0))
        label = f"**{endpoint}**" if endpoint == "all" else f"`{endpoint}`"
        lines.append(
            f"| {label} | {len(chosen)} | {len(chosen) / duration:.1f} | {mix} | {stats} |"
        )
    return "\n".join(lines)


def error_mix(samples: Sequence[Sample]) -> str:
    """Every answer that was not 2xx, by endpoint, status and message (markdown)."""
    errors = Counter(
        (s.endpoint, s.status, s.detail) for s in samples if not s.status.startswith("2")
    )
    if not errors:
        return "No answer other than 2xx."
    lines = ["| endpoint | status | message | count |", "|---|---|---|---:|"]
    for (endpoint, status, detail), count in errors.most_common():
        lines.append(f"| `{endpoint}` | {status} | {detail or '-'} | {count} |")
    return "\n".join(lines)


def jobs_summary(book: JobBook, depth: str) -> tuple[str, int]:
    """The job accounting (markdown) and the number of jobs not shown to have ended.

    That number counts jobs whose state vanished (404, 503 "lost") and jobs still queued
    or running when the drain's bound ran out: the check needs every job seen to end.
    """
    missing = book.count("missing") + book.lost_inline
    pending = Counter(book.status[job_id] for job_id in book.unfinished())
    pending.pop("missing", None)
    not_ended = missing + sum(pending.values())
    still = ", ".join(f"{status} {n}" for status, n in sorted(pending.items())) or "none"
    lines = [
        f"- `POST /update` answered 200 (its job finished within `wait`): {book.finished_inline}",
        f"- distinct jobs seen by id (202, failure answers, `/jobs`): {len(book.status)}; "
        f"finished {book.count('finished')}, failed {book.count('failed')}",
        f"- still queued or running when the drain's bound ran out: {still}",
        f'- lost (state gone: 404 from `/jobs`, or a 503 "update job was lost"): {missing}',
        f"- `updates` queue depth after the drain: {depth}",
        f"- **jobs not shown to end: {not_ended}**",
    ]
    return "\n".join(lines), not_ended


def _command_output(*cmd: str) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"({' '.join(cmd)}: {err})"
    return done.stdout.strip()


def machine() -> str:
    """`nproc`, `free -h`'s memory line, `uname -sr`, Python, `date -u` and `uptime`."""
    memory = next(
        (line for line in _command_output("free", "-h").splitlines() if line.startswith("Mem")),
        "?",
    )
    return "\n".join(
        [
            f"- `nproc` {os.cpu_count()}; `free -h` {' '.join(memory.split())}; "
            f"`uname -sr` {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}",
            f"- `date -u`: {_command_output('date', '-u')}",
            f"- `uptime`: {_command_output('uptime').strip()}",
        ]
    )


def write_csv(path: Path, samples: Sequence[Sample]) -> None:
    """One row per request, load and drain phases both."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["phase", "client", "started_s", "endpoint", "status", "ms", "job_id", "detail"]
        )
        for s in samples:
            writer.writerow(
                [
                    s.phase,
                    s.client,
                    f"{s.started:.3f}",
                    s.endpoint,
                    s.status,
                    f"{s.ms:.1f}",
                    s.job_id,
                    s.detail,
                ]
            )


# ---------------------------------------------------------------------------- the run


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load_test", description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--users", type=int, default=300, help="size of the user id pool")
    parser.add_argument("--timeout", type=float, default=70.0, help="client timeout, seconds")
    parser.add_argument(
        "--upstream-limit",
        default="off",
        help="OSU_API_RATE_LIMIT for the stack: off, default (60/minute), or a limit",
    )
    parser.add_argument(
        "--max-wait", type=int, default=5, help="POST /update's wait is drawn from 0..this"
    )
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or args.users < 1 or args.max_wait < 0:
        parser.error("--clients, --duration, --users must be positive, --max-wait not negative")
    return args


@dataclass
class Outcome:
    """What the load and the drain produced."""

    samples: list[Sample]
    book: JobBook
    load_seconds: float
    drain_seconds: float
    depths: list[str]


def load(stack: Stack, args: argparse.Namespace) -> Outcome:
    """The load phase, then the drain."""
    book = JobBook()
    depths: list[str] = []
    users = tuple(range(USER_ID_BASE, USER_ID_BASE + args.users))
    started = time.monotonic()
    plan = Plan(
        stack.base, started + args.duration, started, users, args.timeout, args.seed, args.max_wait
    )
    print(f"load: {args.clients} clients for {args.duration:.0f} s against {stack.base}")
    samples = run_clients(plan, args.clients, book, depths)
    elapsed = time.monotonic() - started
    print(f"load done in {elapsed:.0f} s; draining {len(book.unfinished())} unfinished jobs")
    samples += drain(stack.base, book, started, args.drain_timeout)
    drained = time.monotonic() - started - elapsed
    return Outcome(samples, book, elapsed, drained, depths)


def report(args: argparse.Namespace, outcome: Outcome, stack: Stack) -> tuple[str, bool]:
    """The markdown report and whether both checks held."""
    samples, elapsed = outcome.samples, outcome.load_seconds
    loaded = [s for s in samples if s.phase == "load"]
    fives = sum(_is_5xx(s.status) for s in samples)
    jobs_text, lost = jobs_summary(outcome.book, update_queue_depth(stack.base))
    queue = (
        f"- `updates` queue depth every {QUEUE_SAMPLE_SECONDS:g} s during the load: "
        f"{', '.join(outcome.depths)}\n- drain (until every job ended): "
        f"{outcome.drain_seconds:.0f} s"
    )
    text = "\n\n".join(
        [
            f"Command: `.venv/bin/python -m bench.load_test --clients {args.clients} "
            f"--duration {args.duration:g} --upstream-limit {args.upstream_limit} "
            f"--max-wait {args.max_wait}` "
            f"(load phase {elapsed:.0f} s)",
            machine(),
            endpoint_table(loaded, elapsed),
            "Error mix (load and drain):\n\n" + error_mix(samples),
            "Jobs:\n\n" + jobs_text + "\n" + queue,
            f"**5xx answers: {fives}**",
        ]
    )
    return text, fives == 0 and lost == 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    out = RESULTS_ROOT / f"load_{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"results in {out}")
    print(machine())
    try:
        with running_stack(out, args.upstream_limit) as stack:
            outcome = load(stack, args)
            text, held = report(args, outcome, stack)
    except (KeyboardInterrupt, _Stop) as exc:
        print(f"stopped ({type(exc).__name__}); the stack was shut down")
        return 130
    write_csv(out / "requests.csv", outcome.samples)
    (out / "report.md").write_text(text + "\n")
    print(text)
    print(f"\n{'checks held' if held else 'CHECKS FAILED'}; raw data in {out}")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
