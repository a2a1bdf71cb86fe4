"""How many upstream requests does the scheduled refresh spend per tracked user-mode?

Run: `.venv/bin/python -m bench.refresh_cost [--users 2000] [--modes 1] [--changed 0.05]`

A private Postgres, Redis and osu! API simulator (`bench.budget_support`). The population
(`--users` players in each of the first `--modes` modes) is tracked by one refresh over
all of it with the upstream limit off (a first check finds every user-mode changed). Then
the simulator advances `--changed` of the ranked user-modes by one step, the request log is
cleared, and one refresh checks every user-mode again, in batches as `plan_refresh` forms
them (every mode of up to 50 players). The refresh runs in this process with
`worker.refresh.refresh_user_modes` and the workers' own osu! client.

Reported: upstream requests per refreshed user-mode (osu!track spends 2: user and best
scores), the breakdown by endpoint, and checks that the changed user-modes got new stats
and top plays while the unchanged ones cost no request of their own and kept their stats.

Output: a markdown table on stdout. Every process started here is stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.budget_support import Stack, exit_on_sigterm, machine_description, print_flush
from osutrack.redis_client import redis_client
from osutrack.schema import stats_snapshots
from osutrack.settings import Settings, load_settings

FIRST_USER = 5_000_001
BATCH_USERS = 50
TRACKING_THREADS = 4
SEED = 20_261_127
GOAL = 0.05
OSU_TRACK_COST = 2

UserMode = tuple[int, int]


@dataclass(frozen=True)
class Options:
    """The command-line options."""

    users: int
    modes: int
    changed: float


def batches(user_modes: Sequence[UserMode]) -> list[list[UserMode]]:
    """Every mode of up to 50 players per batch, as `plan_refresh` groups them."""
    by_user: dict[int, list[UserMode]] = {}
    for user_id, mode in user_modes:
        by_user.setdefault(user_id, []).append((user_id, mode))
    users = sorted(by_user)
    return [
        [pair for user_id in users[start : start + BATCH_USERS] for pair in by_user[user_id]]
        for start in range(0, len(users), BATCH_USERS)
    ]


def refresh(settings: Settings, engine: sa.Engine, batch: list[UserMode]) -> Counter[str]:
    """One refresh task's work on `batch`, with a client of its own (thread-safe use)."""
    # Imported here: importing `worker` builds the Celery app from the environment.
    from worker.refresh import refresh_user_modes  # noqa: PLC0415
    from worker.upstream import make_client  # noqa: PLC0415

    conn = redis_client(settings)
    try:
        client = make_client(settings, conn)
        with Session(engine, expire_on_commit=False) as session:
            return refresh_user_modes(
                session,
                client,
                batch,
                now=lambda: datetime.now(UTC),
                intervals=settings.refresh_intervals,
            )
    finally:
        conn.close()


def latest_playcounts(engine: sa.Engine) -> dict[UserMode, tuple[int, int]]:
    """(newest snapshot id, its playcount) of every user-mode with a snapshot."""
    rows = sa.select(
        stats_snapshots.c.user_id,
        stats_snapshots.c.mode,
        stats_snapshots.c.snapshot_id,
        stats_snapshots.c.playcount,
    ).order_by(stats_snapshots.c.captured_at, stats_snapshots.c.snapshot_id)
    with engine.connect() as conn:
        # Oldest first, so each user-mode ends up with its newest row.
        return {(r.user_id, r.mode): (r.snapshot_id, r.playcount) for r in conn.execute(rows)}


def best_request_owner(path: str) -> int:
    """The user id in `/api/v2/users/{id}/scores/best`."""
    return int(path.split("/")[4])


@dataclass(frozen=True)
class Findings:
    """The second refresh: its requests, outcomes, and the checks on what it stored."""

    population: int
    advanced: int
    by_endpoint: Counter[str]
    outcomes: Counter[str]
    changed_with_new_stats: int
    unchanged_kept: int
    unchanged: int
    best_for_unadvanced: int

    @property
    def total(self) -> int:
        return sum(self.by_endpoint.values())


def run(stack: Stack, options: Options) -> Findings:
    """Track the population, advance some of it, refresh all of it, and compare."""
    settings = load_settings(stack.env(OSU_API_RATE_LIMIT="off"))
    engine = sa.create_engine(settings.database_url, pool_size=TRACKING_THREADS + 1)
    try:
        population = [
            (user_id, mode)
            for user_id in range(FIRST_USER, FIRST_USER + options.users)
            for mode in range(options.modes)
        ]
        started = time.monotonic()
        with ThreadPoolExecutor(TRACKING_THREADS) as pool:
            tracked = sum(
                pool.map(lambda b: refresh(settings, engine, b), batches(population)), Counter()
            )
        print_flush(f"tracked in {time.monotonic() - started:.0f} s: {dict(tracked)}")
        before = latest_playcounts(engine)
        ranked = sorted(before)
        advanced = set(random.Random(SEED).sample(ranked, round(len(ranked) * options.changed)))
        for user_id, mode in sorted(advanced):
            stack.advance(user_id, mode)
        stack.clear_log()
        outcomes: Counter[str] = Counter()
        for batch in batches(population):
            outcomes += refresh(settings, engine, batch)
        log = stack.upstream_log()
        after = latest_playcounts(engine)
    finally:
        engine.dispose()
    best_users = [best_request_owner(e["path"]) for e in log if e["endpoint"] == "v2_best"]
    advanced_users = {user_id for user_id, _ in advanced}
    unchanged = [pair for pair in ranked if pair not in advanced]
    return Findings(
        population=len(population),
        advanced=len(advanced),
        by_endpoint=Counter(e["endpoint"] for e in log),
        outcomes=outcomes,
        changed_with_new_stats=sum(1 for p in advanced if after[p][1] > before[p][1]),
        unchanged_kept=sum(1 for p in unchanged if after[p][1] == before[p][1]),
        unchanged=len(unchanged),
        best_for_unadvanced=sum(1 for user in best_users if user not in advanced_users),
    )


def render(findings: Findings) -> str:
    """The markdown report: the cost, then the breakdown and the checks."""
    per = findings.total / findings.population
    lines = [
        "| user-modes refreshed | changed (advanced) | upstream requests | per user-mode "
        "| goal | osu!track |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {findings.population} | {findings.advanced} | {findings.total} | {per:.4f} "
        f"| <= {GOAL} | {OSU_TRACK_COST} |",
        "",
        "| endpoint | requests | per user-mode |",
        "|---|---:|---:|",
    ]
    for endpoint, count in sorted(findings.by_endpoint.items()):
        lines.append(f"| {endpoint} | {count} | {count / findings.population:.4f} |")
    lines += [
        "",
        "| check | result |",
        "|---|---|",
        f"| refresh outcomes | {dict(sorted(findings.outcomes.items()))} |",
        f"| advanced user-modes whose newest snapshot has the new stats "
        f"| {findings.changed_with_new_stats} of {findings.advanced} |",
        f"| unchanged ranked user-modes whose newest snapshot kept its stats "
        f"| {findings.unchanged_kept} of {findings.unchanged} |",
        f"| best-scores requests for players not advanced | {findings.best_for_unadvanced} |",
    ]
    return "\n".join(lines) + "\n"


def checks_pass(findings: Findings) -> bool:
    """True when the changed were stored and the unchanged skipped."""
    return (
        findings.outcomes["changed"] == findings.advanced
        and findings.changed_with_new_stats == findings.advanced
        and findings.unchanged_kept == findings.unchanged
        and findings.best_for_unadvanced == 0
    )


def parse_args(argv: Sequence[str] | None) -> Options:
    """Read and bound the options: every loop must end in a known time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=2000, help="players (50-20000)")
    parser.add_argument("--modes", type=int, default=1, help="modes tracked per player (1-4)")
    parser.add_argument("--changed", type=float, default=0.05, help="share advanced (0-1)")
    args = parser.parse_args(argv)
    if not (50 <= args.users <= 20_000 and 1 <= args.modes <= 4 and 0 <= args.changed <= 1):
        parser.error("--users must be 50-20000, --modes 1-4 and --changed 0-1")
    return Options(users=args.users, modes=args.modes, changed=args.changed)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurement and print the report; return the exit code."""
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    machine = machine_description()
    started = time.monotonic()
    with contextlib.ExitStack() as exit_stack:
        workdir = Path(exit_stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        stack = Stack(workdir, exit_stack)
        stack.start_backing()
        findings = run(stack, options)
    print_flush()
    print_flush("; ".join(machine))
    print_flush(
        f"{options.users} players x {options.modes} mode(s), {options.changed:.0%} of the "
        f"ranked user-modes advanced; total {time.monotonic() - started:.0f} s\n"
    )
    print_flush(render(findings))
    return 0 if checks_pass(findings) else 1


if __name__ == "__main__":
    sys.exit(main())
