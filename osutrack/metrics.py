"""Fleet-wide counters in Redis, rendered by the shim's GET /metrics (Prometheus text).

Workers and API processes are many and short-lived (prefork children, granian workers),
so per-process counters would each tell part of the story. Every process adds to the same
Redis hashes instead; their field sets are small and fixed, so they need no expiry.
Recording never raises: losing a metric must not fail a job or a request.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping

import redis

log = logging.getLogger(__name__)

JOBS_KEY = "osutrack:metrics:jobs"
JOB_LATENCY_KEY = "osutrack:metrics:job_latency"
QUEUE_WAIT_KEY = "osutrack:metrics:queue_wait"
UPSTREAM_KEY = "osutrack:metrics:upstream"
LIMITER_KEY = "osutrack:metrics:limiter"
REFRESH_KEY = "osutrack:metrics:refresh"

# Seconds from enqueue to outcome; an update is about 2 upstream requests, so at 60/min
# most land under a few seconds and a backlog shows up in the upper buckets.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def _safely(action: str, client: redis.Redis, commands: Iterable[tuple[str, tuple]]) -> None:
    try:
        pipe = client.pipeline(transaction=False)
        for name, args in commands:
            getattr(pipe, name)(*args)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not record %s metrics: %s", action, exc)


def _observation(key: str, seconds: float) -> list[tuple[str, tuple]]:
    """The commands that add one observation to the histogram kept in hash `key`."""
    seconds = max(seconds, 0.0)
    commands: list[tuple[str, tuple]] = [
        ("hincrby", (key, f"le:{bound}", 1)) for bound in LATENCY_BUCKETS if seconds <= bound
    ]
    commands.append(("hincrby", (key, "le:+Inf", 1)))
    commands.append(("hincrbyfloat", (key, "sum", seconds)))
    return commands


def record_job(client: redis.Redis, outcome: str, latency_seconds: float | None) -> None:
    """Count one job outcome (finished, failed, ...) and its latency since enqueue."""
    commands: list[tuple[str, tuple]] = [("hincrby", (JOBS_KEY, outcome, 1))]
    if latency_seconds is not None and math.isfinite(latency_seconds):
        commands += _observation(JOB_LATENCY_KEY, latency_seconds)
    _safely("job", client, commands)


def record_queue_wait(client: redis.Redis, waited_seconds: float) -> None:
    """Observe how long a job waited in the queue before its first attempt started."""
    if math.isfinite(waited_seconds):
        _safely("queue wait", client, _observation(QUEUE_WAIT_KEY, waited_seconds))


def record_upstream(client: redis.Redis, endpoint: str, status: str) -> None:
    """Count one upstream request by endpoint ("v2_user", ...) and status ("200", "timeout")."""
    _safely("upstream", client, [("hincrby", (UPSTREAM_KEY, f"{endpoint}|{status}", 1))])


def record_limiter_wait(client: redis.Redis, waited_seconds: float, refused: bool) -> None:
    """Count one limiter acquisition that had to wait (or gave up)."""
    commands: list[tuple[str, tuple]] = [
        ("hincrby", (LIMITER_KEY, "waits", 1)),
        ("hincrbyfloat", (LIMITER_KEY, "wait_seconds", waited_seconds)),
    ]
    if refused:
        commands.append(("hincrby", (LIMITER_KEY, "refusals", 1)))
    _safely("limiter", client, commands)


def record_refresh(client: redis.Redis, outcome: str, count: int = 1) -> None:
    """Count refreshed user-modes by outcome ("changed", "unchanged", "missing", "failed")."""
    _safely("refresh", client, [("hincrby", (REFRESH_KEY, outcome, count))])


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _counter_lines(name: str, help_text: str, label: str, values: Mapping[str, str]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
    lines += [
        f'{name}{{{label}="{_escape(key)}"}} {value}' for key, value in sorted(values.items())
    ]
    return lines


def _histogram_lines(name: str, help_text: str, values: Mapping[str, str]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for bound in [*(str(b) for b in LATENCY_BUCKETS), "+Inf"]:
        lines.append(f'{name}_bucket{{le="{bound}"}} {values.get(f"le:{bound}", "0")}')
    lines.append(f"{name}_sum {values.get('sum', '0')}")
    lines.append(f"{name}_count {values.get('le:+Inf', '0')}")
    return lines


def render(client: redis.Redis, gauges: Mapping[str, tuple[str, float]]) -> str:
    """The Prometheus text exposition of every counter, plus `gauges` computed by the caller.

    `gauges` maps a metric name (labels included, e.g. 'osutrack_queue_depth{queue="x"}')
    to (help text, value).
    """
    jobs: dict[str, str] = client.hgetall(JOBS_KEY)  # type: ignore[assignment]
    latency: dict[str, str] = client.hgetall(JOB_LATENCY_KEY)  # type: ignore[assignment]
    upstream: dict[str, str] = client.hgetall(UPSTREAM_KEY)  # type: ignore[assignment]
    limiter: dict[str, str] = client.hgetall(LIMITER_KEY)  # type: ignore[assignment]
    refresh: dict[str, str] = client.hgetall(REFRESH_KEY)  # type: ignore[assignment]

    queue_wait: dict[str, str] = client.hgetall(QUEUE_WAIT_KEY)  # type: ignore[assignment]

    lines = _counter_lines("osutrack_jobs_total", "Update jobs by outcome.", "outcome", jobs)
    lines += _histogram_lines(
        "osutrack_job_latency_seconds", "Seconds from enqueue to the job's outcome.", latency
    )
    lines += _histogram_lines(
        "osutrack_queue_wait_seconds",
        "Seconds an update job waited in the queue before its first attempt started.",
        queue_wait,
    )

    lines += [
        "# HELP osutrack_upstream_requests_total Requests to the osu! API by endpoint and status.",
        "# TYPE osutrack_upstream_requests_total counter",
    ]
    for key, value in sorted(upstream.items()):
        endpoint, _, status = key.partition("|")
        lines.append(
            f'osutrack_upstream_requests_total{{endpoint="{_escape(endpoint)}",'
            f'status="{_escape(status)}"}} {value}'
        )
    lines += [
        "# HELP osutrack_limiter_waits_total Upstream requests that waited for a budget slot.",
        "# TYPE osutrack_limiter_waits_total counter",
        f"osutrack_limiter_waits_total {limiter.get('waits', '0')}",
        "# HELP osutrack_limiter_wait_seconds_total Seconds spent waiting for budget slots.",
        "# TYPE osutrack_limiter_wait_seconds_total counter",
        f"osutrack_limiter_wait_seconds_total {limiter.get('wait_seconds', '0')}",
        "# HELP osutrack_limiter_refusals_total Waits that gave up (the job went back to the "
        "queue, or the refresh batch to its next turn).",
        "# TYPE osutrack_limiter_refusals_total counter",
        f"osutrack_limiter_refusals_total {limiter.get('refusals', '0')}",
    ]
    lines += _counter_lines(
        "osutrack_refreshed_user_modes_total",
        "User-modes checked by the scheduled refresh, by outcome.",
        "outcome",
        refresh,
    )
    seen: set[str] = set()
    for metric, (help_text, gauge) in gauges.items():
        base = metric.split("{", 1)[0]
        if base not in seen:
            lines += [f"# HELP {base} {help_text}", f"# TYPE {base} gauge"]
            seen.add(base)
        lines.append(f"{metric} {gauge}")
    return "\n".join(lines) + "\n"
