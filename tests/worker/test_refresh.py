"""The scheduled refresh against the simulator: one batch request, best scores only on change."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from support.simulator import SimulatorClient

from osutrack.schema import refresh_schedule, stats_snapshots
from osutrack.settings import load_settings, parse_refresh_intervals
from worker.refresh import plan_refresh, refresh_user_modes
from worker.schedule import check_interval, refresh_round_size
from worker.update_store import update_user
from worker.upstream import OsuClient, make_client

INTERVALS = parse_refresh_intervals("1d=1h,7d=6h,*=7d")
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_interval_follows_idle_time() -> None:
    assert check_interval(timedelta(hours=3), INTERVALS) == timedelta(hours=1)
    assert check_interval(timedelta(days=3), INTERVALS) == timedelta(hours=6)
    assert check_interval(timedelta(days=400), INTERVALS) == timedelta(days=7)


def test_round_size_follows_the_refresh_share_of_the_budget() -> None:
    settings = load_settings(
        {"OSU_API_RATE_LIMIT": "60/minute", "REFRESH_BUDGET_SHARE": "0.5", "OSU_CLIENT_ID": "1",
         "OSU_CLIENT_SECRET": "s", "REFRESH_SCHEDULE_SECONDS": "60"}
    )  # fmt: skip
    # 1 request/s x 0.5 x 60 s = 30 requests; v2 plans 10 user-modes per request.
    assert refresh_round_size(settings) == 300
    v1 = load_settings({"OSU_API_RATE_LIMIT": "60/minute", "OSU_API_KEY": "k"})
    assert refresh_round_size(v1) == 30


@pytest.fixture
def client_for(
    redis_url: str, simulator: SimulatorClient, redis_client: redis.Redis
) -> Callable[[str], OsuClient]:
    def build(flavour: str) -> OsuClient:
        env = {
            "REDIS_URL": redis_url,
            "OSU_API_BASE_URL": simulator.base_url,
            "OSU_API_RATE_LIMIT": "off",
            "OSU_API_VERSION": flavour,
            "OSU_CLIENT_ID": "1",
            "OSU_CLIENT_SECRET": "simulator-secret",
            "OSU_API_KEY": "0123456789abcdef0123456789abcdef01234567",
        }
        settings = load_settings(env)
        return make_client(settings, redis.Redis.from_url(redis_url, decode_responses=True))

    return build


def _snapshot_count(session: Session, user_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(stats_snapshots)
            .where(stats_snapshots.c.user_id == user_id)
        )
        or 0
    )


def _endpoints(simulator: SimulatorClient) -> Counter[str]:
    return Counter(entry["endpoint"] for entry in simulator.requests_log())


@pytest.mark.parametrize("flavour", ["v2", "v1"])
def test_refresh_fetches_best_scores_only_for_changed_players(
    db_session: Session,
    simulator: SimulatorClient,
    client_for: Callable[[str], OsuClient],
    flavour: str,
) -> None:
    client = client_for(flavour)
    users = [3_000_101, 3_000_102, 3_000_103, 3_000_104]
    for user_id in users:
        update_user(db_session, client, user_id, 0, now=T0, intervals=INTERVALS)
    db_session.commit()
    simulator.advance(users[0], 0, new_top_plays=1)
    simulator.session.delete(f"{simulator.base_url}/_sim/requests", timeout=5)

    # Everyone is due two hours later (their interval after a change is one hour).
    later = T0 + timedelta(hours=2)
    batches = plan_refresh(db_session, later, max_user_modes=100)
    planned = {pair for batch in batches for pair in batch}
    assert {(user_id, 0) for user_id in users} <= planned
    ours = [(user_id, 0) for user_id in users]
    outcomes = refresh_user_modes(db_session, client, ours, now=lambda: later, intervals=INTERVALS)
    assert outcomes == Counter(changed=1, unchanged=3)

    requests = _endpoints(simulator)
    if flavour == "v2":
        assert requests == Counter(v2_users_batch=1, v2_best=1)
    else:
        assert requests == Counter(v1_get_user=4, v1_get_user_best=1)
    assert _snapshot_count(db_session, users[0]) == 2
    # An unchanged check extends the plateau as an update would: a second row, last seen.
    assert all(_snapshot_count(db_session, user_id) == 2 for user_id in users[1:])
    next_checks = dict(
        db_session.execute(
            select(refresh_schedule.c.user_id, refresh_schedule.c.next_check_at).where(
                refresh_schedule.c.user_id.in_(users)
            )
        ).all()
    )
    assert next_checks[users[0]] == later + timedelta(hours=1)
    # Idle for two hours: still within "1d=1h".
    assert next_checks[users[1]] == later + timedelta(hours=1)


def test_planning_reserves_due_user_modes_once(db_session: Session) -> None:
    db_session.execute(refresh_schedule.delete())
    rows = [
        {"user_id": user_id, "mode": mode, "last_checked_at": T0, "last_changed_at": T0,
         "next_check_at": T0 + timedelta(minutes=user_id)}
        for user_id in range(1, 121) for mode in (0, 3)
    ]  # fmt: skip
    db_session.execute(refresh_schedule.insert(), rows)
    now = T0 + timedelta(minutes=100)
    batches = plan_refresh(db_session, now, max_user_modes=1000)
    planned = [pair for batch in batches for pair in batch]
    assert len(planned) == 200  # users 1..100 are due, in both modes
    assert all(len({user for user, _ in batch}) <= 50 for batch in batches)
    # Both modes of a user travel in the same batch (one batch request covers them).
    assert all({(user, 0), (user, 3)} <= set(batch) for batch in batches for user, _ in batch)
    assert plan_refresh(db_session, now, max_user_modes=1000) == []


def test_a_change_without_pp_movement_costs_no_best_scores_request(
    db_session: Session,
    simulator: SimulatorClient,
    client_for: Callable[[str], OsuClient],
) -> None:
    client = client_for("v2")
    user = 3_000_201
    before = simulator.truth(user, 0)
    update_user(db_session, client, user, 0, now=T0, intervals=INTERVALS)
    db_session.commit()
    after = simulator.advance(user, 0, new_top_plays=0)
    # The player played (more plays, more score) without a new top play.
    assert after["stats"]["playcount"] > before["stats"]["playcount"]
    assert after["stats"]["pp_raw"] == before["stats"]["pp_raw"]
    simulator.session.delete(f"{simulator.base_url}/_sim/requests", timeout=5)
    later = T0 + timedelta(hours=2)
    outcomes = refresh_user_modes(
        db_session, client, [(user, 0)], now=lambda: later, intervals=INTERVALS
    )
    assert outcomes == Counter(changed=1)
    assert _endpoints(simulator) == Counter(v2_users_batch=1)
    assert _snapshot_count(db_session, user) == 2
