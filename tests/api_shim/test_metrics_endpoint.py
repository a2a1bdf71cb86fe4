"""GET /metrics against the real test Redis and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa
from falcon import testing

from api_shim.app import create_app
from api_shim.metrics_endpoint import coverage_ratio
from osutrack import metrics
from osutrack.schema import refresh_schedule
from osutrack.settings import load_settings

CLOSED_REDIS_URL = "redis://127.0.0.1:9/0"
CLOSED_DATABASE_URL = "postgresql+psycopg2://x@127.0.0.1:9/x"
# Far from the user ids of other tests sharing the session database.
USER_IDS = (9_100_001, 9_100_002, 9_100_003)


def _client(redis_url: str, database_url: str) -> testing.TestClient:
    settings = load_settings({"REDIS_URL": redis_url, "DATABASE_URL": database_url})
    return testing.TestClient(create_app(settings))


def _samples(text: str) -> dict[str, str]:
    return dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


@pytest.fixture
def schedule_rows(db_engine: sa.Engine) -> Iterator[None]:
    """Three tracked user-modes: two checked within their interval, one overdue."""
    now = datetime.now(UTC)
    rows = [
        {
            "user_id": user_id,
            "mode": 0,
            "last_checked_at": now,
            "last_changed_at": now,
            "next_check_at": now + offset,
        }
        for user_id, offset in zip(
            USER_IDS,
            (timedelta(hours=1), timedelta(days=3), -timedelta(minutes=5)),
            strict=True,
        )
    ]
    with db_engine.begin() as conn:
        conn.execute(sa.insert(refresh_schedule), rows)
    yield
    with db_engine.begin() as conn:
        conn.execute(sa.delete(refresh_schedule).where(refresh_schedule.c.user_id.in_(USER_IDS)))


def _expected_schedule(db_engine: sa.Engine) -> tuple[int, int]:
    with db_engine.connect() as conn:
        tracked = conn.scalar(sa.select(sa.func.count()).select_from(refresh_schedule))
        current = conn.scalar(
            sa.select(sa.func.count())
            .select_from(refresh_schedule)
            .where(refresh_schedule.c.next_check_at >= sa.func.now())
        )
    return int(tracked or 0), int(current or 0)


@pytest.mark.usefixtures("schedule_rows")
def test_metrics_render_counters_and_gauges(
    redis_url: str, database_url: str, redis_client: redis.Redis, db_engine: sa.Engine
) -> None:
    metrics.record_job(redis_client, "finished", 0.3)
    metrics.record_job(redis_client, "finished", 7.0)
    metrics.record_job(redis_client, "failed", None)
    metrics.record_upstream(redis_client, "v2_user", "200")
    metrics.record_limiter_wait(redis_client, 1.5, refused=True)
    metrics.record_refresh(redis_client, "changed", 4)
    metrics.record_queue_wait(redis_client, 0.2)
    metrics.record_queue_wait(redis_client, 42.0)
    redis_client.lpush("updates", "m1", "m2")
    redis_client.lpush("updates.waiting", "m4", "m5", "m6")
    redis_client.lpush("maintenance", "m3")
    redis_client.set("osutrack:worker:w1@host", "1", ex=30)
    redis_client.set("osutrack:worker:w2@host", "1", ex=30)

    result = _client(redis_url, database_url).simulate_get("/metrics")

    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert not any(name.startswith("ratelimit-") for name in result.headers)
    assert "# TYPE osutrack_queue_depth gauge" in result.text
    assert result.text.count("# TYPE osutrack_queue_depth gauge") == 1
    samples = _samples(result.text)
    tracked, current = _expected_schedule(db_engine)
    assert tracked >= 3
    assert samples == samples | {
        'osutrack_jobs_total{outcome="finished"}': "2",
        'osutrack_jobs_total{outcome="failed"}': "1",
        'osutrack_job_latency_seconds_bucket{le="0.5"}': "1",
        'osutrack_job_latency_seconds_bucket{le="10.0"}': "2",
        "osutrack_job_latency_seconds_count": "2",
        'osutrack_upstream_requests_total{endpoint="v2_user",status="200"}': "1",
        "osutrack_limiter_refusals_total": "1",
        'osutrack_refreshed_user_modes_total{outcome="changed"}': "4",
        'osutrack_queue_wait_seconds_bucket{le="0.25"}': "1",
        'osutrack_queue_wait_seconds_bucket{le="30.0"}': "1",
        'osutrack_queue_wait_seconds_bucket{le="60.0"}': "2",
        "osutrack_queue_wait_seconds_count": "2",
        'osutrack_queue_depth{queue="updates"}': "2.0",
        'osutrack_queue_depth{queue="updates.waiting"}': "3.0",
        'osutrack_queue_depth{queue="updates.retry"}': "0.0",
        'osutrack_queue_depth{queue="refresh"}': "0.0",
        'osutrack_queue_depth{queue="maintenance"}': "1.0",
        "osutrack_workers_alive": "2.0",
        "osutrack_tracked_user_modes": f"{float(tracked)}",
    }
    assert float(samples["osutrack_queue_wait_seconds_sum"]) == pytest.approx(42.2)
    assert float(samples["osutrack_refresh_coverage_ratio"]) == pytest.approx(current / tracked)
    assert float(samples["osutrack_refresh_coverage_ratio"]) < 1.0


def test_metrics_with_redis_down_is_503(database_url: str) -> None:
    result = _client(CLOSED_REDIS_URL, database_url).simulate_get("/metrics")
    assert result.status_code == 503
    assert result.json == {"error": "redis unavailable"}
    assert result.headers["retry-after"] == "5"


def test_metrics_with_postgres_down_is_503(redis_url: str, redis_client: redis.Redis) -> None:
    result = _client(redis_url, CLOSED_DATABASE_URL).simulate_get("/metrics")
    assert result.status_code == 503
    assert result.json == {"error": "database unavailable"}


def test_coverage_ratio() -> None:
    assert coverage_ratio(0, 0) == 1.0
    assert coverage_ratio(4, 4) == 1.0
    assert coverage_ratio(4, 1) == 0.25
