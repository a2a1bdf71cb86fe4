"""Read endpoints under load on a seeded database (`bench.seed`), with wrk on loopback.

Run: `.venv/bin/python -m bench.read_load --database-url URL --redis-url URL --users N
[--runs 3] [--duration 8] [--soak 300]`

Serves `api_shim.asgi:app` as devstack does (granian, 2 workers, API_THREADS 4) with
`RATE_LIMIT_READ=off` and `RATE_LIMIT_UPDATE=off`, and per run measures each case below with
`wrk -t2 -cC -dDs --latency` after a 2 s warm-up; a random user (1..N) or a random window
per request. Then the isolation case (a /peak client while 10 connections ask for the
heaviest uncached windows), the read cases again with the inbound limiter on (a limit no
wrk run reaches, so every request pays the limiter's Redis call but none is refused),
the peak RSS of the API processes, and an optional soak (RSS sampled every 10 s).

The report gives per case the median over runs of requests/second and of p99, and the rate
as a fraction of `/ping` on the same server in the same run. Output: markdown on stdout;
`summary.json`, raw wrk outputs and the server log in `bench/results/<UTC timestamp>/`.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api_shim import queries
from api_shim.read_connections import Prepared
from bench.scale_support import (
    RESULTS_ROOT,
    add_updates,
    explain,
    lua_script,
    memory_kib,
    parse_wrk,
    process_tree,
    run_wrk,
    running_api,
    start_wrk,
    stop_background,
    time_rebuilds,
)

# Lua: `&from=&to=` of a window of `days` + 1 days starting on a random day of the seeded
# ten years (2016-11-01 .. 2026-10-31).
_WINDOW = (
    "local function win(days) local s = 1477958400 + math.random(0, 3650 - 370) * 86400"
    " return '&from=' .. os.date('!%Y-%m-%d', s) .. '&to=' .. os.date('!%Y-%m-%d',"
    " s + days * 86400) end\n"
)


@dataclass(frozen=True)
class Case:
    name: str
    path: str  # a Lua expression giving the request path
    connections: int = 10


def cases(users: int) -> list[Case]:
    user = f"math.random(1, {users})"

    def window(days: int, limit: int) -> str:
        return f"'/bestplays?mode=0&limit={limit}' .. win({days})"

    read = [
        Case("/ping", "'/ping'"),
        Case("/stats_history", f"'/stats_history?mode=0&user=' .. {user}"),
        Case("/peak", f"'/peak?mode=0&user=' .. {user}"),
        Case("/hiscores", f"'/hiscores?mode=0&user=' .. {user}"),
        Case("/bestplays?limit=100", "'/bestplays?mode=0&limit=100'"),
        Case("/bestplays?limit=10000 (c=2)", "'/bestplays?mode=0&limit=10000'", 2),
    ]
    # Windows start on a random day, so nearly every request misses the body cache.
    for label, days in (("year", 364), ("month", 30), ("day", 0)):
        read.append(Case(f"/bestplays?limit=100, random {label}", window(days, 100)))
        read.append(Case(f"/bestplays?limit=10000, random {label} (c=2)", window(days, 10000), 2))
    # Heavy windows waiting their turn (issue 14): 8 clients at once.
    for label, days in (("year", 364), ("month", 30)):
        read.append(Case(f"/bestplays?limit=10000, random {label} (c=8)", window(days, 10000), 8))
    return read


LIMITER_CASES = ("/ping", "/stats_history", "/peak", "/hiscores", "/bestplays?limit=100")
HEAVY = "/bestplays?limit=10000, random month (c=2)"


def _script(out: Path, case: Case) -> Path:
    path = out / ("case_" + "".join(c if c.isalnum() else "_" for c in case.name) + ".lua")
    path.write_text(_WINDOW + lua_script(case.path))
    return path


def _api_memory(api_pid: int) -> dict[str, int]:
    return {str(pid): memory_kib(pid).get("VmHWM", 0) for pid in process_tree(api_pid)}


def _measure(base: str, out: Path, case: Case, duration: float, tag: str) -> dict[str, Any]:
    script = _script(out, case)
    run_wrk(base, script, 2, case.connections)
    result = run_wrk(base, script, duration, case.connections)
    (out / f"wrk_{tag}_{script.stem}.txt").write_text(result.output)
    return {"rps": result.rps, "p99_ms": result.p99_ms, "errors": result.errors}


def _isolation(base: str, out: Path, users: int, duration: float, tag: str) -> dict[str, Any]:
    heavy = next(case for case in cases(users) if case.name == HEAVY)
    heavy_script = _script(out, Case("heavy10", heavy.path, 10))
    peak_script = _script(
        out, Case("peak_probe", f"'/peak?mode=0&user=' .. math.random(1, {users})")
    )
    background = start_wrk(base, heavy_script, duration + 4, 10)
    try:
        time.sleep(2)
        probe = run_wrk(base, peak_script, duration, 2, threads=1)
    finally:
        heavy_out = stop_background(background)
    (out / f"wrk_{tag}_isolation_peak.txt").write_text(probe.output)
    (out / f"wrk_{tag}_isolation_heavy.txt").write_text(heavy_out)
    heavy_result = parse_wrk(heavy_out)
    return {
        "peak_rps": probe.rps,
        "peak_p99_ms": probe.p99_ms,
        "peak_errors": probe.errors,
        "heavy_rps": heavy_result.rps,
        "heavy_p99_ms": heavy_result.p99_ms,
        "heavy_errors": heavy_result.errors,
    }


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def run(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    env = {
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "RATE_LIMIT_UPDATE": "off",
        "RATE_LIMIT_READ": "off",
    }
    summary: dict[str, Any] = {"runs": {}, "limiter_on": {}, "isolation": [], "soak": []}
    wanted = args.only.split(",")
    all_cases = [
        case
        for case in cases(args.users)
        if case.name == "/ping" or any(text in case.name for text in wanted)
    ]
    with running_api(env, out / "api.log", args.api_threads) as api:
        for run_index in range(args.runs):
            for case in all_cases:
                figures = _measure(api.base_url, out, case, args.duration, f"r{run_index}")
                summary["runs"].setdefault(case.name, []).append(figures)
                print(case.name, run_index, figures, file=sys.stderr, flush=True)
            if args.isolation:
                summary["isolation"].append(
                    _isolation(api.base_url, out, args.users, args.duration, f"r{run_index}")
                )
                print("isolation", summary["isolation"][-1], file=sys.stderr, flush=True)
        summary["api_peak_rss_kib"] = _api_memory(api.pid)
        if args.soak:
            soak_cases = [c for c in all_cases if c.connections == 10 and c.name != "/ping"]
            began = time.monotonic()
            while time.monotonic() - began < args.soak:
                for case in soak_cases:
                    run_wrk(api.base_url, _script(out, case), 2, 10)
                rss = {str(pid): memory_kib(pid).get("VmRSS", 0) for pid in process_tree(api.pid)}
                summary["soak"].append({"t_s": round(time.monotonic() - began), "rss_kib": rss})
    if not args.limiter:
        return summary
    limited = dict(env, RATE_LIMIT_READ="100000000/minute")
    with running_api(limited, out / "api_limiter.log", args.api_threads) as api:
        for run_index in range(args.runs):
            for case in all_cases:
                if case.name in LIMITER_CASES:
                    figures = _measure(api.base_url, out, case, args.duration, f"lim{run_index}")
                    summary["limiter_on"].setdefault(case.name, []).append(figures)
                    print("limiter", case.name, figures, file=sys.stderr, flush=True)
    return summary


def table(summary: dict[str, Any]) -> str:
    lines = [
        "| case | median rps | median p99 (ms) | rps / /ping | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    for section, label in (("runs", ""), ("limiter_on", " (limiter on)")):
        figures = summary[section]
        if "/ping" not in figures:
            continue
        pings = [run["rps"] for run in figures["/ping"]]
        for name, runs in figures.items():
            ratios = [run["rps"] / ping for run, ping in zip(runs, pings, strict=False)]
            lines.append(
                f"| {name}{label} | {_median([r['rps'] for r in runs]):,.0f} "
                f"| {_median([r['p99_ms'] for r in runs])} | {_median(ratios):.3f} "
                f"| {sum(r['errors'] for r in runs)} |"
            )
    iso = summary["isolation"]
    if iso:
        lines.append(
            f"| /peak (c=2) while 10 connections ask random-month limit=10000 | "
            f"{_median([i['peak_rps'] for i in iso]):,.0f} | "
            f"{_median([i['peak_p99_ms'] for i in iso])} | | "
            f"{sum(i['peak_errors'] for i in iso)} |"
        )
        lines.append(
            "| (the 10 heavy connections meanwhile) | "
            f"{_median([i['heavy_rps'] for i in iso]):,.0f} | "
            f"{_median([i['heavy_p99_ms'] for i in iso])} | | "
            f"{sum(i['heavy_errors'] for i in iso)} |"
        )
    return "\n".join(lines)


def _plain(statement: Prepared) -> str:
    return re.sub(r"\$\d+", "%s", statement.sql)


def read_plans(database_url: str, users: int) -> str:
    """EXPLAIN ANALYZE of every read statement, for one user (users // 2) and windows."""
    user = users // 2
    everything = ("-infinity", "infinity")
    statements: list[tuple[str, str, tuple[object, ...]]] = [
        ("/peak", _plain(queries.PEAK_BODY), (user, 0)),
        ("/stats_history", _plain(queries.STATS_HISTORY_BODY), (user, 0, *everything)),
        ("/hiscores", _plain(queries.USER_HISCORES_BODY), (user, 0, *everything)),
        ("/hiscores?userMode=username", _plain(queries.USER_ID_BY_NAME), (f"PLAYER{user}",)),
        ("/bestplays stamp (every request)", _plain(queries.BESTPLAYS_STAMP), (0,)),
        ("/bestplays table load (once per rebuild)", _plain(queries.BESTPLAYS_TABLE), (0,)),
    ]
    windows = {
        "one day": ("2021-06-15", "2021-06-15 23:59:59.999999+00"),
        "one month": ("2021-06-15", "2021-07-15 23:59:59.999999+00"),
        "one year": ("2021-06-15", "2022-06-14 23:59:59.999999+00"),
        "three months": ("2021-06-15", "2021-09-14 23:59:59.999999+00"),
    }
    for label, (start, end) in windows.items():
        for limit in (100, 10_000):
            statements.append(
                (
                    f"/bestplays window {label}, limit={limit} (from hiscores)",
                    queries.BEST_PLAYS_LIVE,
                    (0, start, end, limit),
                )
            )
    return explain(database_url, statements)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of soak (0: none)")
    parser.add_argument("--skip-load", action="store_true", help="only plans / refresh cost")
    parser.add_argument(
        "--only",
        default="",
        help="only /ping and the cases whose name has one of these comma-separated texts",
    )
    parser.add_argument(
        "--no-isolation", dest="isolation", action="store_false", help="skip the isolation case"
    )
    parser.add_argument(
        "--no-limiter", dest="limiter", action="store_false", help="skip the limiter-on cases"
    )
    parser.add_argument(
        "--api-threads",
        type=int,
        default=4,
        help="threads of each API process's pool (API_THREADS; devstack's default 4)",
    )
    parser.add_argument("--explain", action="store_true", help="write plans.md")
    parser.add_argument(
        "--refresh-updates",
        type=int,
        default=0,
        help="commit this many synthetic updates, then time the beat rebuilds",
    )
    parser.add_argument(
        "--refresh-spread-days",
        type=int,
        default=3650,
        help="score times of those updates' plays: uniform over this many days back",
    )
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_ROOT / f"read_load_{stamp}"
    out.mkdir(parents=True)
    print(f"results: {out}\n")
    if args.explain:
        (out / "plans.md").write_text(read_plans(args.database_url, args.users))
        print(f"plans: {out / 'plans.md'}")
    if args.refresh_updates:
        updates_since = datetime.now(UTC)
        add_updates(
            args.database_url,
            args.refresh_updates,
            10**8,
            seed=3,
            spread_days=args.refresh_spread_days,
        )
        timings = time_rebuilds(args.database_url, since=updates_since)
        (out / "refresh.json").write_text(json.dumps(timings))
        print(f"refresh after {args.refresh_updates} updates:", timings)
    if args.skip_load:
        return 0
    summary = run(args, out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(table(summary))
    print("\nAPI peak RSS (VmHWM, KiB):", summary["api_peak_rss_kib"])
    if summary["soak"]:
        print("soak RSS samples:", json.dumps(summary["soak"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
