"""Celery beat keeps the precomputed bestplays table fresh."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from conftest import Stack
from support.processes import ManagedProcess, start_beat

from osutrack.schema import bestplays_refreshes

pytestmark = pytest.mark.integration


@pytest.fixture
def beat(
    service_env: Callable[..., dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagedProcess]:
    process = start_beat(
        service_env(BESTPLAYS_REFRESH_SECONDS="1"),
        log_path=tmp_path_factory.mktemp("beat") / "beat.log",
    )
    yield process
    process.stop()


def _refreshed_at(engine: sa.Engine, mode: int) -> object:
    with engine.connect() as connection:
        return connection.scalar(
            sa.select(bestplays_refreshes.c.refreshed_at).where(bestplays_refreshes.c.mode == mode)
        )


def test_beat_refreshes_bestplays_and_the_table_answers_like_the_source(
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
