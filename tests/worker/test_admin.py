"""Operator commands act on the right rows, and run from the command line."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devstack.env import child_env
from osutrack.fields import PlayerStats
from osutrack.schema import (
    bestplays_month_changes,
    bestplays_month_lists,
    bestplays_months,
    refresh_schedule,
)
from worker.admin import USER_TABLES, delete_user_data, recompute_tables, refresh_all
from worker.bestplays import rebuild_month_lists
from worker.update_store import store_update
from worker.upstream.models import Player, TopPlay

T0 = datetime(2026, 5, 1, tzinfo=UTC)
STATS = PlayerStats(10, 5, 1, 3, 1000, 2000, 500, 10.5, 100.0, 97.0, 0, 1, 2)


def _play(user_id: int, score_id: int) -> TopPlay:
    return TopPlay(score_id, 77, 1000, 10, 0, 1, 10, 0, 0, 0, False, 0, user_id, T0, "A",
                   50.0, False)  # fmt: skip


def _rows(session: Session, user_id: int) -> int:
    return sum(
        int(session.scalar(select(func.count()).select_from(t).where(t.c.user_id == user_id)) or 0)
        for t in USER_TABLES
    )


def test_delete_user_removes_only_that_players_rows(db_session: Session) -> None:
    for user_id in (8_100_001, 8_100_002):
        store_update(
            db_session,
            Player(user_id, f"p{user_id}", STATS),
            0,
            [_play(user_id, user_id * 10)],
            job_id=f"job-{user_id}",
            now=T0,
        )
    counts = delete_user_data(db_session, 8_100_001)
    assert counts["hiscores"] == 1
    assert counts["stats_snapshots"] == 1
    assert counts["tracked_users"] == 1
    assert counts["finished_updates"] == 1
    assert _rows(db_session, 8_100_001) == 0
    assert _rows(db_session, 8_100_002) > 0


def test_refresh_all_makes_everyone_due(db_session: Session) -> None:
    store_update(db_session, Player(8_100_003, "x", STATS), 0, None, job_id=None, now=T0)
    assert refresh_all(db_session) >= 1
    due = db_session.scalar(
        select(refresh_schedule.c.next_check_at).where(refresh_schedule.c.user_id == 8_100_003)
    )
    assert due is not None
    assert due <= datetime.now(UTC) + timedelta(seconds=1)


def test_cli_deletes_a_user(database_url: str, db_engine: sa.Engine) -> None:
    with Session(db_engine) as session, session.begin():
        store_update(
            session, Player(8_100_009, "gone", STATS), 0, [_play(8_100_009, 81000090)],
            job_id=None, now=T0,
        )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "worker.admin", "delete-user", "8100009"],
        env=child_env({"DATABASE_URL": database_url}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "hiscores: 1 rows deleted" in done.stdout
    with Session(db_engine) as session:
        assert _rows(session, 8_100_009) == 0


def _month_list(session: Session, month: datetime) -> list[tuple[int, float]]:
    rows = session.execute(
        select(bestplays_months.c.score_id, bestplays_months.c.pp)
        .where(bestplays_months.c.mode == 0, bestplays_months.c.month == month)
        .order_by(
            bestplays_months.c.pp.desc(), bestplays_months.c.score_time, bestplays_months.c.score_id
        )
    )
    return [(int(score_id), float(pp)) for score_id, pp in rows]


def _month_top(session: Session, month: datetime, size: int) -> list[tuple[int, float]]:
    """The month's top plays straight from hiscores, in /bestplays order."""
    rows = session.execute(
        sa.text(
            "SELECT score_id, pp FROM hiscores WHERE mode = 0 AND score_time >= :start"
            " AND score_time < :start + interval '1 month'"
            " ORDER BY pp DESC, score_time, score_id LIMIT :size"
        ),
        {"start": month, "size": size},
    )
    return [(int(score_id), float(pp)) for score_id, pp in rows]


def test_recompute_rebuilds_month_lists_that_beat_would_not_touch(db_session: Session) -> None:
    march = datetime(2026, 3, 1, tzinfo=UTC)
    plays = [
        dataclasses.replace(_play(8_100_020, 810002001), score_time=T0, pp=310.0),
        dataclasses.replace(_play(8_100_020, 810002002), score_time=march, pp=320.0),
    ]
    store_update(db_session, Player(8_100_020, "lists", STATS), 0, plays, job_id=None, now=T0)
    rebuild_month_lists(db_session, 0, 10_000, T0, max_new_months=1000)
    # A corrupted list with no change logged: beat's refresh has no reason to look at it.
    db_session.execute(
        sa.update(bestplays_months)
        .where(bestplays_months.c.mode == 0, bestplays_months.c.month.in_([T0, march]))
        .values(pp=-1.0)
    )
    db_session.execute(sa.delete(bestplays_month_changes))
    assert rebuild_month_lists(db_session, 0, 10_000, T0).months == 0
    assert all(pp == -1.0 for _, pp in _month_list(db_session, march))

    counts = recompute_tables(db_session, 10_000)

    assert counts["month lists mode 0"] >= 2
    for month in (T0, march):
        listed = _month_list(db_session, month)
        assert listed == _month_top(db_session, month, 10_000)
        assert any(score_id in (810002001, 810002002) for score_id, _ in listed)


def test_delete_user_drops_the_month_lists_holding_their_plays(db_session: Session) -> None:
    march = datetime(2026, 3, 1, tzinfo=UTC)
    banned = dataclasses.replace(_play(8_100_030, 810003001), score_time=march, pp=990.0)
    kept = dataclasses.replace(_play(8_100_031, 810003101), score_time=T0, pp=980.0)
    store_update(db_session, Player(8_100_030, "banned", STATS), 0, [banned], job_id=None, now=T0)
    store_update(db_session, Player(8_100_031, "kept", STATS), 0, [kept], job_id=None, now=T0)
    rebuild_month_lists(db_session, 0, 10_000, T0, max_new_months=1000)
    assert 810003001 in [score_id for score_id, _ in _month_list(db_session, march)]

    counts = delete_user_data(db_session, 8_100_030)

    assert counts["bestplays_months"] >= 1
    # No list shows the banned player's play any more: their month has no list (answered
    # from hiscores until beat rebuilds it), and other months keep theirs.
    assert _month_list(db_session, march) == []
    built = db_session.scalar(
        select(func.count())
        .select_from(bestplays_month_lists)
        .where(bestplays_month_lists.c.mode == 0, bestplays_month_lists.c.month == march)
    )
    assert built == 0
    assert 810003101 in [score_id for score_id, _ in _month_list(db_session, T0)]
    rebuilt = rebuild_month_lists(db_session, 0, 10_000, T0, max_new_months=1000)
    assert rebuilt.months >= 1
    assert _month_list(db_session, march) == _month_top(db_session, march, 10_000)
