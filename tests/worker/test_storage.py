"""Snapshots, hiscores, peaks and bestplays as stored in a real Postgres."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from osutrack.fields import DIFF_FIELD_ORDER, PlayerStats
from osutrack.schema import bestplays, bestplays_refreshes, hiscores, peaks, stats_snapshots
from worker.bestplays import rebuild_bestplays
from worker.peaks import recompute_peaks
from worker.update_store import store_update
from worker.upstream.models import Player, TopPlay

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STATS = PlayerStats(1000, 100, 10, 50, 5_000_000, 20_000_000, 8000, 99.5, 4000.0, 98.5, 3, 40, 60)
USER = 4242


def _times(session: Session, user_id: int = USER, mode: int = 0) -> list[datetime]:
    query = (
        select(stats_snapshots.c.captured_at)
        .where(stats_snapshots.c.user_id == user_id, stats_snapshots.c.mode == mode)
        .order_by(stats_snapshots.c.captured_at)
    )
    return list(session.scalars(query))


def _store(
    session: Session,
    stats: PlayerStats,
    at: datetime,
    plays: list[TopPlay] | None = None,
    mode: int = 0,
) -> dict[str, Any]:
    return store_update(session, Player(USER, "u", stats), mode, plays, job_id=None, now=at)


def test_unchanged_stretch_is_kept_as_first_and_last_seen(db_session: Session) -> None:
    for hour in range(4):
        _store(db_session, STATS, T0 + timedelta(hours=hour))
    assert _times(db_session) == [T0, T0 + timedelta(hours=3)]


def test_a_change_starts_a_new_plateau(db_session: Session) -> None:
    changed = replace(STATS, playcount=51)
    sequence = [STATS, STATS, STATS, changed, changed, changed]
    bodies = [
        _store(db_session, stats, T0 + timedelta(hours=hour)) for hour, stats in enumerate(sequence)
    ]
    assert _times(db_session) == [T0 + timedelta(hours=h) for h in (0, 2, 3, 5)]
    # Each update compares with the newest stored snapshot, plateau or not.
    assert [body["first"] for body in bodies] == [True] + [False] * 5
    assert [body["playcount"] for body in bodies] == [50, 0, 0, 1, 0, 0]


def test_unranked_stats_are_not_stored(db_session: Session) -> None:
    _store(db_session, STATS, T0)
    body = _store(db_session, replace(STATS, pp_rank=0), T0 + timedelta(hours=1))
    assert not body["first"]
    assert all(body[name] == 0 for name in DIFF_FIELD_ORDER)
    assert _times(db_session) == [T0]


def _peak(session: Session) -> tuple[object, ...]:
    row = session.execute(
        select(
            peaks.c.best_global_rank,
            peaks.c.best_rank_at,
            peaks.c.best_accuracy,
            peaks.c.best_acc_at,
        ).where(peaks.c.user_id == USER, peaks.c.mode == 0)
    ).one()
    return tuple(row)


def test_peaks_keep_the_latest_time_the_best_value_was_held(db_session: Session) -> None:
    sequence = [(100, 97.0), (50, 98.0), (80, 99.0), (50, 96.0)]
    for hour, (rank, accuracy) in enumerate(sequence):
        stats = replace(STATS, pp_rank=rank, accuracy=accuracy, playcount=hour)
        _store(db_session, stats, T0 + timedelta(hours=hour))
    # An unranked update is no peak (and stores no snapshot).
    _store(db_session, replace(STATS, pp_rank=0, accuracy=100.0), T0 + timedelta(hours=4))
    incremental = _peak(db_session)
    assert incremental == (50, T0 + timedelta(hours=3), 99.0, T0 + timedelta(hours=2))
    db_session.execute(peaks.delete())
    recompute_peaks(db_session)
    assert _peak(db_session) == incremental


def _play(score_id: int, pp: float, when: datetime, beatmap_id: int = 1) -> TopPlay:
    return TopPlay(
        score_id=score_id,
        beatmap_id=beatmap_id,
        score=1_000_000,
        maxcombo=500,
        count50=0,
        count100=1,
        count300=300,
        countmiss=0,
        countkatu=0,
        countgeki=0,
        perfect=False,
        enabled_mods=0,
        user_id=USER,
        score_time=when,
        rank="A",
        pp=pp,
        replay_available=False,
    )


def test_hiscores_are_written_once_and_follow_pp_reworks(db_session: Session) -> None:
    plays = [_play(1, 300.0, T0), _play(2, 200.0, T0, beatmap_id=2)]
    _store(db_session, STATS, T0, plays)
    reworked = [replace(play, pp=play.pp * 1.5) for play in plays]
    # A play on beatmap 0 is never stored.
    ignored = _play(3, 900.0, T0, beatmap_id=0)
    _store(db_session, STATS, T0 + timedelta(days=1), [*reworked, ignored])
    rows = db_session.execute(
        select(hiscores.c.score_id, hiscores.c.pp, hiscores.c.update_time)
        .where(hiscores.c.user_id == USER)
        .order_by(hiscores.c.score_id)
    ).all()
    assert [tuple(row) for row in rows] == [(1, 450.0, T0), (2, 300.0, T0)]


def test_bestplays_orders_by_pp_then_time_then_id(db_session: Session) -> None:
    # Only this test's plays in the mode (integration tests commit theirs to the same
    # database; this deletion is rolled back with the test).
    db_session.execute(hiscores.delete().where(hiscores.c.mode == 3))
    plays = [
        _play(30, 500.0, T0 + timedelta(days=2)),
        _play(20, 500.0, T0 + timedelta(days=1)),
        _play(10, 500.0, T0 + timedelta(days=1)),
        _play(40, 700.0, T0 + timedelta(days=5)),
    ]
    _store(db_session, STATS, T0, plays, mode=3)
    assert rebuild_bestplays(db_session, 3, 10_000, T0) == 4
    order = db_session.scalars(
        select(bestplays.c.score_id).where(bestplays.c.mode == 3).order_by(bestplays.c.position)
    ).all()
    assert order == [40, 10, 20, 30]
    refreshed = db_session.execute(
        select(bestplays_refreshes.c.row_count, bestplays_refreshes.c.table_size).where(
            bestplays_refreshes.c.mode == 3
        )
    ).one()
    assert tuple(refreshed) == (4, 10_000)
    # A second refresh replaces the table instead of adding to it.
    rebuild_bestplays(db_session, 3, 10_000, T0)
    count = db_session.scalar(
        select(func.count()).select_from(bestplays).where(bestplays.c.mode == 3)
    )
    assert count == 4
