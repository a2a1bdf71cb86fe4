"""A burst of waiting `POST /update` against the reads, before and after, in one run.

Run: `.venv/bin/python -m bench.update_burst [--updates 1000] [--users 5000]
[--before-ref REF] [--runs 2] [--duration 8] [--finish-rate 50/second]
[--drain-timeout 300]`

Starts on 127.0.0.1 a private Postgres (fsync off, seeded with `bench.seed`), Redis and the
osu! API simulator (`bench.budget_support.Stack`), then for each server:

- "before": the WSGI shim of `--before-ref` (a `git archive` of that commit in a temporary
  directory, served by that commit's own `devstack.commands.api_command`); "" skips it;
- "after": this tree's shim as `make run` serves it (`devstack.commands.api_command`);
- "after, reads on the pool": the same with the per-user reads on the thread pool
  (`bench.asgi_pooled_reads`), the alternative to reading on the event loop;

1. the read cases with `wrk -t2 -c10 --latency` (2 s warm-up, then `--duration` s; a
   random seeded user per request), servers alternating, `--runs` times;
2. the burst: two single-process `updates` workers with an exhausted upstream budget
   (OSU_API_RATE_LIMIT=1/hour, a slot wait longer than the run), so no job finishes;
   /peak at 10 connections with nothing waiting, then `--updates` concurrent
   `POST /update?wait=60` for distinct simulated users, and /peak again once they are all
   sent and waiting. Reported: p50/p99 of both, their ratio, non-2xx or failed reads,
   how many updates answered meanwhile and how many jobs existed. The waiting requests
   are then dropped and the server stopped;
3. the drain: the same burst with a budget that lets the jobs finish (`--finish-rate`):
   the time from the first request until the last job finished (jobs' `finished_at` in
   Redis) against the budget's floor (jobs x 2 requests / rate), the answers' status mix
   and the failed jobs, and /peak meanwhile.

Output: a markdown table on stdout; `summary.json`, wrk outputs and every log in
`bench/results/update_burst_<UTC timestamp>/`. Every loop is bounded; every process is
stopped on the way out (Ctrl-C and SIGTERM too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import seed as bench_seed
from bench.budget_support import (
    HOST,
    REPO_ROOT,
    Stack,
    exit_on_sigterm,
    machine_description,
    print_flush,
)
from bench.scale_support import (
    LAST_WSGI_COMMIT,
    RESULTS_ROOT,
    WrkResult,
    export_tree,
    lua_script,
    parse_wrk,
    run_wrk,
    start_wrk,
)
from devstack.commands import api_command, simulator_osu_env
from devstack.env import child_env
from devstack.procs import free_port, spawn, stop_process, tail, wait_until
from osutrack import jobs

START_TIMEOUT_SECONDS = 60.0
UPDATE_WAIT_SECONDS = 60
# Simulated players the burst updates: far above the seeded users, so the reads' data
# does not change under them.
FIRST_BURST_USER = 5_000_001
# Connections opened at once by the burst client: below the server's accept backlog.
CONNECT_CONCURRENCY = 200
# Longest a burst may take to be sent in full, and the drain to end (`--drain-timeout`).
SEND_TIMEOUT_SECONDS = 60.0
DRAIN_TIMEOUT_SECONDS = 300.0
PATIENCE_SECONDS = 2.0


@dataclass(frozen=True)
class Case:
    name: str
    path: str  # a Lua expression
    connections: int = 10


def read_cases(users: int) -> list[Case]:
    user = f"math.random(1, {users})"
    return [
        Case("/ping", "'/ping'"),
        Case("/peak", f"'/peak?mode=0&user=' .. {user}"),
        Case("/stats_history", f"'/stats_history?mode=0&user=' .. {user}"),
        Case("/hiscores", f"'/hiscores?mode=0&user=' .. {user}"),
        Case("/bestplays?limit=100", "'/bestplays?mode=0&limit=100'"),
        Case("/bestplays?limit=10000 (c=2)", "'/bestplays?mode=0&limit=10000'", 2),
    ]


@dataclass(frozen=True)
class Server:
    """How to start one API variant: command line, working directory, extra env."""

    label: str
    cmd: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


def before_server(ref: str, parent: Path) -> Server:
    """The shim of commit `ref`, exported under `parent`, as that commit's devstack ran it."""
    commit, tree = export_tree(ref, parent)
    probe = (
        "import json; from devstack.commands import api_command; "
        f"print(json.dumps(api_command({HOST!r}, 0)))"
    )
    cmd = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe],
            cwd=tree,
            env=child_env({"PYTHONPATH": str(tree)}),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    interface = cmd[cmd.index("--interface") + 1].upper()
    return Server(f"before ({commit}, {interface})", cmd, tree, {"PYTHONPATH": str(tree)})


def after_servers(port: int, pooled: bool) -> list[Server]:
    servers = [Server("after (ASGI)", api_command(HOST, port), REPO_ROOT)]
    if pooled:
        cmd = [*api_command(HOST, port)[:-1], "bench.asgi_pooled_reads:app"]
        servers.append(Server("after (ASGI), reads on the pool", cmd, REPO_ROOT))
    return servers


@contextlib.contextmanager
def running(server: Server, port: int, env: Mapping[str, str], log: Path) -> Iterator[str]:
    """The server on `port`, ready once /ping answers; stopped on the way out."""
    with log.open("ab") as out:
        proc = spawn(server.cmd, env={**env, **server.env}, cwd=server.cwd, stdout=out)
        try:
            url = f"http://{HOST}:{port}"
            wait_until(
                lambda: _answers(url + "/ping"),
                timeout=START_TIMEOUT_SECONDS,
                what=server.label,
                alive=lambda: proc.poll() is None,
                details=lambda: tail(log),
            )
            yield url
        finally:
            stop_process(proc)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


# --------------------------------------------------------------------------- the burst


class Burst:
    """`count` concurrent `POST /update` on their own connections, from one event loop in
    a thread of its own; `drop()` closes those still waiting."""

    def __init__(self, base_url: str, count: int, first_user: int, wait: int) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self._host, self._port = host, int(port)
        self._paths = [f"/update?user={first_user + i}&mode=0&wait={wait}" for i in range(count)]
        self.sent = 0
        self.answers: list[tuple[float, int]] = []  # (seconds since start, status)
        self.errors = 0
        self.started = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()
        self.started = time.monotonic()
        asyncio.run_coroutine_threadsafe(self._launch(), self._loop).result(timeout=10)

    async def _launch(self) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        self._tasks = [asyncio.create_task(self._one(path, gate)) for path in self._paths]

    async def _one(self, path: str, gate: asyncio.Semaphore) -> None:
        writer = None
        try:
            async with gate:
                reader, writer = await asyncio.open_connection(self._host, self._port)
                request = (
                    f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                writer.write(request.encode())
                await writer.drain()
            with self._lock:
                self.sent += 1
            data = await reader.read()
            status = int(data.split(b" ", 2)[1])
            with self._lock:
                self.answers.append((time.monotonic() - self.started, status))
        except (OSError, ValueError, IndexError):
            with self._lock:
                self.errors += 1
        finally:
            if writer is not None:
                writer.close()

    def wait_sent(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.sent + self.errors < len(self._paths) and time.monotonic() < deadline:
            time.sleep(0.05)

    def wait_done(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answers) + self.errors < len(self._paths):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)

    def drop(self) -> None:
        """Close every connection still waiting, and stop the loop."""

        async def cancel() -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def statuses(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(Counter(str(status) for _, status in self.answers).items()))


# --------------------------------------------------------------------------- measuring


def _script(out: Path, case: Case) -> Path:
    path = out / ("case_" + "".join(c if c.isalnum() else "_" for c in case.name) + ".lua")
    path.write_text(lua_script(case.path))
    return path


def _figures(result: WrkResult) -> dict[str, float]:
    return {
        "rps": result.rps,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "requests": result.requests,
        "errors": result.errors,
    }


def measure(url: str, out: Path, case: Case, duration: float, tag: str) -> dict[str, float]:
    script = _script(out, case)
    run_wrk(url, script, 2, case.connections)
    result = run_wrk(url, script, duration, case.connections)
    (out / f"wrk_{tag}_{script.stem}.txt").write_text(result.output)
    return _figures(result)


def count_jobs(stack: Stack) -> int:
    client = stack.redis()
    try:
        return sum(1 for _ in client.scan_iter(match=jobs.job_key("*"), count=1000))
    finally:
        client.close()


def reset_redis(stack: Stack) -> None:
    """Forget every job, queue and budget of the previous phase (workers re-declare their
    queue bindings when they start)."""
    client = stack.redis()
    try:
        client.flushdb()
    finally:
        client.close()


def worker_env(stack: Stack, rate: str, slot_wait: float) -> dict[str, str]:
    assert stack.simulator_url
    return stack.env(
        **simulator_osu_env(stack.simulator_url),
        OSU_API_RATE_LIMIT=rate,
        OSU_API_SLOT_WAIT_SECONDS=str(slot_wait),
    )


def burst_phase(
    stack: Stack,
    server: Server,
    args: argparse.Namespace,
    out: Path,
    tag: str,
) -> dict[str, Any]:
    """/peak idle, then while `--updates` requests wait on jobs that cannot finish."""
    reset_redis(stack)
    # One request an hour, and a slot wait longer than that: the workers wait for a slot
    # instead of failing the job at once.
    env = worker_env(stack, "1/hour", 7200)
    stack.start_workers([("w1", "updates", env), ("w2", "updates", env)])
    port = free_port()
    cmd_server = _on_port(server, port)
    peak = read_cases(args.users)[1]
    result: dict[str, Any] = {}
    try:
        with running(cmd_server, port, env, out / f"api_{tag}.log") as url:
            result["idle"] = measure(url, out, peak, args.duration, f"{tag}_idle")
            burst = Burst(url, args.updates, FIRST_BURST_USER, UPDATE_WAIT_SECONDS)
            burst.start()
            try:
                burst.wait_sent(SEND_TIMEOUT_SECONDS)
                time.sleep(PATIENCE_SECONDS)
                result["sent"] = burst.sent
                result["jobs_at_start"] = count_jobs(stack)
                script = _script(out, peak)
                during = run_wrk(url, script, args.duration, peak.connections)
                (out / f"wrk_{tag}_burst.txt").write_text(during.output)
                result["burst"] = _figures(during)
                result["jobs_at_end"] = count_jobs(stack)
                result["answered_meanwhile"] = burst.statuses()
                result["client_errors"] = burst.errors
                result["seconds_since_burst"] = round(time.monotonic() - burst.started, 1)
            finally:
                burst.drop()
    finally:
        stack.stop_workers()
    idle, busy = result["idle"]["p99_ms"], result["burst"]["p99_ms"]
    result["p99_ratio"] = round(busy / idle, 2) if idle else None
    return result


def drain_phase(
    stack: Stack, server: Server, args: argparse.Namespace, out: Path, tag: str
) -> dict[str, Any]:
    """The burst with a budget that lets every job finish: time to the last one."""
    reset_redis(stack)
    env = worker_env(stack, args.finish_rate, 15)
    stack.start_workers([("w1", "updates", env), ("w2", "updates", env)])
    port = free_port()
    peak = read_cases(args.users)[1]
    result: dict[str, Any] = {}
    try:
        with running(_on_port(server, port), port, env, out / f"api_{tag}.log") as url:
            began_wall = time.time()
            burst = Burst(url, args.updates, FIRST_BURST_USER + args.updates, UPDATE_WAIT_SECONDS)
            burst.start()
            try:
                probe = start_wrk(url, _script(out, peak), args.duration, peak.connections)
                probe_out, _ = probe.communicate(timeout=args.duration + 60)
                (out / f"wrk_{tag}_drain.txt").write_text(probe_out)
                result["peak_meanwhile"] = _figures(parse_wrk(probe_out))
                burst.wait_done(args.drain_timeout)
                result["answers"] = burst.statuses()
                result["client_errors"] = burst.errors
                result["last_answer_s"] = round(max((t for t, _ in burst.answers), default=0), 1)
            finally:
                burst.drop()
            result.update(_job_outcomes(stack, began_wall, args.updates, args.drain_timeout))
    finally:
        stack.stop_workers()
    amount, _, per = args.finish_rate.partition("/")
    period = {"second": 1, "minute": 60, "hour": 3600}[per.strip()]
    result["floor_s"] = round(args.updates * 2 / (int(amount) / period), 1)
    return result


def _job_outcomes(stack: Stack, began_wall: float, expected: int, timeout: float) -> dict[str, Any]:
    """Every job's final state in Redis (polled until they all ended, bounded)."""
    client = stack.redis()
    try:
        deadline = time.monotonic() + timeout
        states: list[jobs.JobState] = []
        while time.monotonic() < deadline:
            keys = list(client.scan_iter(match=jobs.job_key("*"), count=1000))
            states = [
                state
                for key in keys
                if (state := jobs.read_job(client, key.rsplit(":", 1)[1])) is not None
            ]
            if len(states) >= expected and all(state.is_terminal for state in states):
                break
            time.sleep(0.5)
    finally:
        client.close()
    finished = [s for s in states if s.status == jobs.FINISHED]
    ends = [s.finished_at for s in states if s.finished_at is not None]
    return {
        "jobs": len(states),
        "jobs_finished": len(finished),
        "jobs_failed": sum(1 for s in states if s.status == jobs.FAILED),
        "jobs_not_ended": sum(1 for s in states if not s.is_terminal),
        "last_finished_s": round(max(ends) - began_wall, 1) if ends else None,
    }


def _on_port(server: Server, port: int) -> Server:
    cmd = list(server.cmd)
    cmd[cmd.index("--port") + 1] = str(port)
    return Server(server.label, cmd, server.cwd, server.env)


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = {"machine": machine_description(), "args": vars(args)}
    with contextlib.ExitStack() as exits:
        stack = Stack(out, exits)
        stack.start_backing()
        assert stack.postgres is not None
        print_flush("seeding", args.users, "users")
        summary["seed"] = bench_seed.seed(stack.postgres.url, args.users, 1)["timings"]
        servers = after_servers(0, args.pooled)
        if args.before_ref:
            # Outside the repository, where neither lint nor tests would take it for ours.
            tree_root = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="before-")))
            servers.insert(0, before_server(args.before_ref, tree_root))
        # Reads only: no worker, limits off; the default API_THREADS.
        read_env = stack.env()
        reads: dict[str, dict[str, list[dict[str, float]]]] = {s.label: {} for s in servers}
        for run_index in range(args.runs):
            for server in servers:
                port = free_port()
                log = out / f"api_reads_{len(reads[server.label])}.log"
                with running(_on_port(server, port), port, read_env, log) as url:
                    for case in read_cases(args.users):
                        tag = f"r{run_index}_{servers.index(server)}"
                        figures = measure(url, out, case, args.duration, tag)
                        reads[server.label].setdefault(case.name, []).append(figures)
                        print_flush(server.label, case.name, run_index, figures)
        summary["reads"] = reads
        summary["burst"] = {}
        summary["drain"] = {}
        for index, server in enumerate(servers):
            summary["burst"][server.label] = burst_phase(stack, server, args, out, f"b{index}")
            print_flush("burst", server.label, summary["burst"][server.label])
            if not args.skip_drain:
                summary["drain"][server.label] = drain_phase(stack, server, args, out, f"d{index}")
                print_flush("drain", server.label, summary["drain"][server.label])
    return summary


def _median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 2)


def report(summary: dict[str, Any]) -> str:
    lines = ["Machine: " + "; ".join(summary["machine"]), ""]
    reads = summary["reads"]
    labels = list(reads)
    base_ping = [run["rps"] for run in reads[labels[0]]["/ping"]]
    lines += [
        "| server | endpoint | median rps | median p99 (ms) | rps / own /ping "
        f"| rps / {labels[0]} /ping | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label in labels:
        pings = [run["rps"] for run in reads[label]["/ping"]]
        for name, runs in reads[label].items():
            rps = [run["rps"] for run in runs]
            own = [r / p for r, p in zip(rps, pings, strict=True)]
            base = [r / p for r, p in zip(rps, base_ping, strict=True)]
            lines.append(
                f"| {label} | {name} | {_median(rps):,.0f} "
                f"| {_median([run['p99_ms'] for run in runs])} | {_median(own):.3f} "
                f"| {_median(base):.3f} | {sum(run['errors'] for run in runs):.0f} |"
            )
    lines += [
        "",
        "| server | /peak p50 idle (ms) | p99 idle | p50 with the burst | p99 with the burst "
        "| p99 ratio | /peak requests (errors) with the burst | updates sent | jobs at start "
        "/ end | updates answered meanwhile |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for label, burst in summary["burst"].items():
        idle, busy = burst["idle"], burst["burst"]
        lines.append(
            f"| {label} | {idle['p50_ms']} | {idle['p99_ms']} | {busy['p50_ms']} "
            f"| {busy['p99_ms']} | {burst['p99_ratio']} "
            f"| {busy['requests']:.0f} ({busy['errors']:.0f}) | {burst['sent']} "
            f"| {burst['jobs_at_start']} / {burst['jobs_at_end']} "
            f"| {burst['answered_meanwhile'] or 'none'} |"
        )
    if summary["drain"]:
        lines += [
            "",
            "| server | last job finished (s) | floor (s) | jobs finished / failed / not "
            "ended | answers | last answer (s) | /peak p50 / p99 meanwhile (ms, errors) |",
            "|---|---:|---:|---|---|---:|---|",
        ]
        for label, drain in summary["drain"].items():
            peak = drain["peak_meanwhile"]
            lines.append(
                f"| {label} | {drain['last_finished_s']} | {drain['floor_s']} "
                f"| {drain['jobs_finished']} / {drain['jobs_failed']} / "
                f"{drain['jobs_not_ended']} | {drain['answers']} | {drain['last_answer_s']} "
                f"| {peak['p50_ms']} / {peak['p99_ms']} ({peak['errors']:.0f}) |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=1000, help="waiting updates (1-5000)")
    parser.add_argument("--users", type=int, default=5000, help="seeded users for the reads")
    parser.add_argument(
        "--before-ref",
        default=LAST_WSGI_COMMIT,
        help='git ref of "before" (default: the last WSGI shim); "" skips',
    )
    parser.add_argument("--runs", type=int, default=2, help="read-case repetitions (1-5)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument(
        "--finish-rate", default="50/second", help="upstream budget of the drain phase"
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=DRAIN_TIMEOUT_SECONDS,
        help="longest wait, in s, for the drain's jobs to end (60-3600)",
    )
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument(
        "--no-pooled",
        dest="pooled",
        action="store_false",
        help='skip "after, reads on the pool"',
    )
    args = parser.parse_args(argv)
    if not (1 <= args.updates <= 5000 and 1 <= args.runs <= 5 and 1 <= args.duration <= 60):
        parser.error("--updates 1-5000, --runs 1-5, --duration 1-60")
    if not 60 <= args.drain_timeout <= 3600:
        parser.error("--drain-timeout 60-3600")
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_ROOT / f"update_burst_{stamp}"
    out.mkdir(parents=True)
    print_flush(f"results: {out}")
    summary = run(args, out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    text = report(summary)
    (out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
