"""Celery beat keeps the precomputed bestplays table fresh."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from conftest import Stack
from support.processes import ManagedProcess, start_beat
from support.simulator import SimulatorClient

from osutrack.schema import bestplays_refreshes, refresh_schedule, stats_snapshots

pytestmark = pytest.mark.integration


@pytest.fixture
def beat(
    service_env: Callable[..., dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagedProcess]:
    process = start_beat(
        service_env(BESTPLAYS_REFRESH_SECONDS="1", REFRESH_SCHEDULE_SECONDS="1"),
        log_path=tmp_path_factory.mktemp("beat") / "beat.log",
    )
    yield process
    process.stop()


def _refreshed_at(engine: sa.Engine, mode: int) -> object:
    with engine.connect() as connection:
        return connection.scalar(
            sa.select(bestplays_refreshes.c.refreshed_at).where(bestplays_refreshes.c.mode == mode)
        )


def test_beat_rebuilds_bestplays_and_the_table_answers_like_the_source(
    v2_stack: Stack,
    beat: ManagedProcess,
    db_engine: sa.Engine,
    new_user_id: Callable[[], int],
) -> None:
    user = new_user_id()
    assert v2_stack.post_update(user, 3).status_code == 200
    before = _refreshed_at(db_engine, 3)
    deadline = time.monotonic() + 30
    while _refreshed_at(db_engine, 3) in (None, before):
        assert time.monotonic() < deadline, beat.output()[-2000:]
        time.sleep(0.2)
    served = v2_stack.get("/bestplays", mode=3, limit=10000).json()
    assert {row["user"] for row in served} >= {user}
    keys = [(-row["pp"], row["score_time"]) for row in served]
    assert keys == sorted(keys)
    # A window the table covers fully gives the same rows as asking hiscores directly.
    window = v2_stack.get("/bestplays", mode=3, limit=50, **{"from": "2000-01-01"}).json()
    assert window == served[:50]


def _snapshots(engine: sa.Engine, user: int) -> list[int]:
    with engine.connect() as connection:
        return list(
            connection.scalars(
                sa.select(stats_snapshots.c.playcount)
                .where(stats_snapshots.c.user_id == user, stats_snapshots.c.mode == 0)
                .order_by(stats_snapshots.c.captured_at)
            )
        )


def test_beat_refresh_records_changes_and_skips_unchanged_players(
    v2_stack: Stack,
    simulator: SimulatorClient,
    db_engine: sa.Engine,
    new_user_id: Callable[[], int],
    beat: ManagedProcess,
) -> None:
    changed, unchanged = new_user_id(), new_user_id()
    for user in (changed, unchanged):
        assert v2_stack.post_update(user, 0).status_code == 200
    # The refresh fetches top plays only when pp moved (worker/refresh.py); a new play
    # just above the 100th can leave the rounded pp where it was, so play until it moves.
    stored = simulator.truth(changed, 0)
    for _ in range(20):
        truth = simulator.advance(changed, 0, new_top_plays=1)
        if truth["stats"]["pp_raw"] != stored["stats"]["pp_raw"]:
            break
    else:
        pytest.fail("pp never moved")
    # Plays stored are kept: the new ones are those of the top 100 the refresh fetches.
    seen = {play["score_id"] for play in stored["top_plays"]}
    entered = [play for play in truth["top_plays"] if play["score_id"] not in seen]
    assert entered
    simulator.session.delete(f"{simulator.base_url}/_sim/requests", timeout=5)
    with db_engine.begin() as connection:
        connection.execute(
            sa.update(refresh_schedule)
            .where(refresh_schedule.c.user_id.in_([changed, unchanged]))
            .values(next_check_at=sa.func.now() - sa.text("interval '1 minute'"))
        )
    deadline = time.monotonic() + 30
    while len(_snapshots(db_engine, unchanged)) < 2 or len(_snapshots(db_engine, changed)) < 2:
        assert time.monotonic() < deadline, beat.output()[-2000:]
        time.sleep(0.2)
    assert _snapshots(db_engine, changed)[-1] == truth["stats"]["playcount"]
    newest = v2_stack.get("/hiscores", user=changed, mode=0).json()
    assert len(newest) == len(stored["top_plays"]) + len(entered)
    best_paths = [e["path"] for e in simulator.requests_log() if e["endpoint"] == "v2_best"]
    assert any(f"/users/{changed}/" in path for path in best_paths)
    assert not any(f"/users/{unchanged}/" in path for path in best_paths)
