"""Does the fleet-wide upstream budget hold, get used, and keep interactive updates first?

Run: `.venv/bin/python -m bench.upstream_budget [--jobs 50] [--samples 8]`

A private stack (`bench.budget_support`): Postgres, Redis, the osu! API simulator, the API
shim, and Celery workers with OSU_API_RATE_LIMIT=10/second. For each fleet (1, 2 or 4
single-process `updates` workers, plus one more worker started on its own on
`updates,refresh`) it measures, from the simulator's request log:

- the most upstream requests in any 1 s window (must be at most 10), and the shortest
  time covering 11 consecutive requests (at least 1 s, less the stamp jitter);
- the rate achieved over the busy span of a backlog of update jobs, as a share of the
  limit (see `achieved_share`);
- the latency of interactive updates (POST to finished, from the job's Redis times) with
  the fleet idle, and while a large refresh backlog waits, in seconds and in slots
  (seconds x 10/s), and how many refresh requests reached osu! between an update's POST
  and its last request.

A last fleet gives the refresh worker REFRESH_BUDGET_SHARE=1.0: the worst case, where the
refresh alone could fill the whole budget and an update must be handed a slot.

Output: a markdown table on stdout. Every process started here is stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
from celery import Celery

from bench.budget_support import (
    Stack,
    achieved_share,
    exit_on_sigterm,
    machine_description,
    mean_span,
    most_in_window,
    print_flush,
    tightest_span,
)
from osutrack.tasknames import REFRESH_QUEUE, UPDATE_QUEUE

LIMIT = 10
WINDOW_SECONDS = 1.0
RATE_LIMIT = f"{LIMIT}/second"
REFRESH_BATCH = 50
REFRESH_BATCHES = 8
JOB_TIMEOUT_SECONDS = 120.0
# Ids far from any fixture player; every update and refresh uses a player never seen.
_user_ids: Iterator[int] = itertools.count(5_000_001)


@dataclass(frozen=True)
class Fleet:
    """Single-process `updates` workers, plus one `updates,refresh` worker started apart."""

    update_workers: int
    refresh_share: float = 0.5

    @property
    def label(self) -> str:
        share = "" if self.refresh_share == 0.5 else f", refresh share {self.refresh_share:g}"
        return f"{self.update_workers} + 1{share}"


FLEETS = (Fleet(1), Fleet(2), Fleet(4), Fleet(2, refresh_share=1.0))


@dataclass(frozen=True)
class Result:
    """What one fleet measured (arrival stamps from the relay; `stamped_*` the simulator's)."""

    fleet: Fleet
    requests: int
    busiest_second: int
    tightest_span: float | None
    stamped_busiest_second: int
    stamped_tightest_span: float | None
    mean_span: float | None
    share_of_limit: float
    idle_latencies: list[float]
    latencies: list[float]
    refresh_in_between: list[int]


def start_fleet(stack: Stack, fleet: Fleet) -> None:
    """The update workers and, separately, the refresh-taking worker."""
    env = stack.env(OSU_API_RATE_LIMIT=RATE_LIMIT)
    stack.start_workers(
        [(f"updates{i}", UPDATE_QUEUE, env) for i in range(1, fleet.update_workers + 1)]
    )
    extra_env = env | {"REFRESH_BUDGET_SHARE": str(fleet.refresh_share)}
    stack.start_workers([("extra", f"{UPDATE_QUEUE},{REFRESH_QUEUE}", extra_env)])


def measure_throughput(
    stack: Stack, http: requests.Session, jobs: int
) -> tuple[list[float], list[float]]:
    """Queue `jobs` updates at once and wait for all; return arrival and simulator stamps."""
    stack.clear_log()
    job_ids = [stack.post_update(http, next(_user_ids)) for _ in range(jobs)]
    states = stack.wait_jobs(job_ids, JOB_TIMEOUT_SECONDS)
    failed = [s for s in states if s.status != "finished"]
    if failed:
        raise RuntimeError(f"{len(failed)} update jobs failed: {failed[0].error}")
    arrivals = [t for t, _ in stack.arrivals()]
    return arrivals, [entry["t"] for entry in stack.upstream_log()]


def one_update(stack: Stack, http: requests.Session) -> tuple[float, int]:
    """One interactive update: (seconds from POST to finished, refresh requests meanwhile)."""
    user = next(_user_ids)
    sent_at = time.time()
    (state,) = stack.wait_jobs([stack.post_update(http, user)], JOB_TIMEOUT_SECONDS)
    if state.status != "finished" or state.finished_at is None:
        raise RuntimeError(f"interactive update failed: {state.error}")
    log = stack.arrivals()
    own = f"/users/{user}/"
    last_own = max(t for t, path in log if own in path)
    others = sum(1 for t, path in log if sent_at < t <= last_own and own not in path)
    return state.finished_at - state.enqueued_at, others


def send_refresh_backlog(stack: Stack, batches: int) -> None:
    """Queue refresh tasks for never-seen players: each is a batch plus one request a user."""
    assert stack.redis_server is not None
    producer = Celery(broker=stack.redis_server.url)
    try:
        for _ in range(batches):
            batch = [[next(_user_ids), 0] for _ in range(REFRESH_BATCH)]
            producer.send_task("osutrack.refresh_users", args=[batch], queue=REFRESH_QUEUE)
    finally:
        producer.close()


def wait_for_refresh_traffic(stack: Stack, count: int, timeout: float = 30.0) -> None:
    """Block until the refresh has sent `count` requests (it has started and is busy)."""
    deadline = time.monotonic() + timeout
    while len(stack.arrivals()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the refresh backlog did not start")
        time.sleep(0.1)


def measure_latency(
    stack: Stack, http: requests.Session, samples: int
) -> tuple[list[float], list[float], list[int]]:
    """Interactive latencies idle, then with a refresh backlog waiting; refresh counts."""
    idle = [one_update(stack, http)[0] for _ in range(5)]
    time.sleep(WINDOW_SECONDS)
    stack.clear_log()
    send_refresh_backlog(stack, REFRESH_BATCHES)
    wait_for_refresh_traffic(stack, 5)
    # Into the refresh's steady rhythm before the first sample.
    time.sleep(1.0)
    busy: list[float] = []
    in_between: list[int] = []
    for _ in range(samples):
        latency, others = one_update(stack, http)
        busy.append(latency)
        in_between.append(others)
        # Spread the samples over the phases of the refresh's rhythm.
        time.sleep(random.uniform(0.1, 0.6))
    return idle, busy, in_between


def measure_fleet(stack: Stack, fleet: Fleet, jobs: int, samples: int) -> Result:
    """Start the fleet, run both measurements, stop it (queues dropped)."""
    print_flush(f"fleet {fleet.label}: starting workers")
    start_fleet(stack, fleet)
    try:
        with requests.Session() as http:
            # Warm the API's broker connection and the workers' pools before measuring.
            stack.wait_jobs([stack.post_update(http, next(_user_ids))], JOB_TIMEOUT_SECONDS)
            time.sleep(WINDOW_SECONDS)
            times, stamped = measure_throughput(stack, http, jobs)
            print_flush(f"fleet {fleet.label}: {len(times)} requests; measuring latency")
            time.sleep(WINDOW_SECONDS)
            idle, busy, in_between = measure_latency(stack, http, samples)
    finally:
        stack.stop_workers()
    # Leave the budget's window empty for the next fleet.
    time.sleep(WINDOW_SECONDS)
    return Result(
        fleet=fleet,
        requests=len(times),
        busiest_second=most_in_window(times, WINDOW_SECONDS),
        tightest_span=tightest_span(times, LIMIT),
        stamped_busiest_second=most_in_window(stamped, WINDOW_SECONDS),
        stamped_tightest_span=tightest_span(stamped, LIMIT),
        mean_span=mean_span(times, LIMIT),
        share_of_limit=achieved_share(times, LIMIT, WINDOW_SECONDS),
        idle_latencies=idle,
        latencies=busy,
        refresh_in_between=in_between,
    )


def _span(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}"


def render_tables(results: Sequence[Result]) -> str:
    """Two markdown tables: the budget under a backlog of updates, then the latency."""
    rate = LIMIT / WINDOW_SECONDS
    lines = [
        "| workers (updates + extra) | upstream requests | most in any 1 s (arrival) | "
        "shortest span of 11 (arrival, s) | most in any 1 s (simulator stamp) | "
        "shortest span of 11 (simulator stamp, s) | mean span of 11 (arrival, s) "
        "| achieved / limit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.fleet.label} | {r.requests} | {r.busiest_second} | {_span(r.tightest_span)} "
            f"| {r.stamped_busiest_second} | {_span(r.stamped_tightest_span)} "
            f"| {_span(r.mean_span)} | {r.share_of_limit:.3f} |"
        )
    lines += [
        "",
        "| workers (updates + extra) | idle p50 (s) | backlog p50 (s) | backlog max (s) "
        "| p50 / max in slots | waiting beyond idle p50, max (slots) "
        "| refresh requests in between (max) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        idle = statistics.median(r.idle_latencies)
        p50 = statistics.median(r.latencies)
        worst = max(r.latencies)
        lines.append(
            f"| {r.fleet.label} | {idle:.3f} | {p50:.3f} | {worst:.3f} "
            f"| {p50 * rate:.2f} / {worst * rate:.2f} | {(worst - idle) * rate:.2f} "
            f"| {max(r.refresh_in_between)} ({sum(r.refresh_in_between)} in "
            f"{len(r.refresh_in_between)} updates) |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read and bound the options: every loop must end in a known time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=50, help="update jobs per backlog (10-500)")
    parser.add_argument(
        "--samples", type=int, default=8, help="interactive updates during the refresh (1-50)"
    )
    args = parser.parse_args(argv)
    if not (10 <= args.jobs <= 500 and 1 <= args.samples <= 50):
        parser.error("--jobs must be 10-500 and --samples 1-50")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every fleet and print the tables; return the exit code."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    machine = machine_description()
    started = time.monotonic()
    results: list[Result] = []
    with contextlib.ExitStack() as exit_stack:
        workdir = Path(exit_stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        stack = Stack(workdir, exit_stack)
        stack.start_backing()
        stack.start_api(stack.env(OSU_API_RATE_LIMIT=RATE_LIMIT))
        for fleet in FLEETS:
            results.append(measure_fleet(stack, fleet, args.jobs, args.samples))
    print_flush()
    print_flush("; ".join(machine))
    print_flush(
        f"budget {RATE_LIMIT}, {args.jobs} update jobs per backlog, {args.samples} "
        f"interactive updates during a refresh backlog of {REFRESH_BATCHES} x "
        f"{REFRESH_BATCH} players; total {time.monotonic() - started:.0f} s\n"
    )
    print_flush(render_tables(results))
    return 0 if all(r.busiest_second <= LIMIT for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
