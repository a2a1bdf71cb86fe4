"""Read versions (migration 0006): every write that changes a player's rows moves the
player's version of that table, in the writing transaction; writes that change nothing
leave it. Real Postgres, through the writers themselves (the update store, the peaks
repair, the admin delete)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from osutrack.fields import PlayerStats
from osutrack.schema import hiscores, peaks, read_versions
from worker.admin import delete_user_data
from worker.peaks import recompute_peaks
from worker.update_store import store_update
from worker.upstream.models import Player, TopPlay

T0 = datetime(2026, 6, 1, tzinfo=UTC)
STATS = PlayerStats(10, 5, 1, 3, 1000, 2000, 500, 10.5, 100.0, 97.0, 0, 1, 2)
SOURCES = ("stats_snapshots", "hiscores", "peaks")


def _play(user_id: int, score_id: int, pp: float = 50.0) -> TopPlay:
    return TopPlay(score_id, 77, 1000, 10, 0, 1, 10, 0, 0, 0, False, 0, user_id, T0, "A",
                   pp, False)  # fmt: skip


def _versions(session: Session, user_id: int) -> dict[str, int]:
    rows = session.execute(
        sa.select(read_versions.c.source, read_versions.c.version).where(
            read_versions.c.user_id == user_id, read_versions.c.mode == 0
        )
    )
    return {source: int(version) for source, version in rows}


def _update(
    session: Session, user_id: int, stats: PlayerStats, plays: list[TopPlay], at: datetime
) -> None:
    store_update(
        session,
        Player(user_id, f"p{user_id}", stats),
        0,
        plays,
        job_id=f"job-{user_id}-{at}",
        now=at,
    )


def test_each_writer_moves_the_versions_of_what_it_changed(db_session: Session) -> None:
    user, other = 8_200_001, 8_200_002
    assert _versions(db_session, user) == {}
    _update(db_session, user, STATS, [_play(user, 1)], T0)
    _update(db_session, other, STATS, [_play(other, 2)], T0)
    first = _versions(db_session, user)
    assert set(first) == set(SOURCES)
    assert all(version > 0 for version in first.values())

    # Same stats and plays: the snapshot and peak times move, the stored plays do not.
    _update(db_session, user, STATS, [_play(user, 1)], T0 + timedelta(hours=1))
    same = _versions(db_session, user)
    assert same["hiscores"] == first["hiscores"]
    assert same["stats_snapshots"] != first["stats_snapshots"]

    # A play's pp rewritten, and a new play: hiscores moves.
    _update(db_session, user, dataclasses.replace(STATS, playcount=4),
            [_play(user, 1, 60.0), _play(user, 3)], T0 + timedelta(hours=2))  # fmt: skip
    changed = _versions(db_session, user)
    assert changed["hiscores"] != same["hiscores"]

    # An UPDATE to the values already stored changes nothing, so moves nothing.
    db_session.execute(sa.update(hiscores).where(hiscores.c.user_id == user).values(rank="A"))
    db_session.execute(sa.update(peaks).where(peaks.c.user_id == user).values(mode=peaks.c.mode))
    assert _versions(db_session, user) == changed

    # The peaks repair rewrites a peak that differs from the snapshots.
    db_session.execute(sa.update(peaks).where(peaks.c.user_id == user).values(best_global_rank=1))
    broken = _versions(db_session, user)
    assert broken["peaks"] != changed["peaks"]
    recompute_peaks(db_session, user)
    repaired = _versions(db_session, user)
    assert repaired["peaks"] != broken["peaks"]

    # Deleting the player moves every version (none goes back to 0, a number is never
    # reused); the other player's stay.
    others = _versions(db_session, other)
    delete_user_data(db_session, user)
    deleted = _versions(db_session, user)
    assert all(deleted[source] not in (0, repaired[source]) for source in SOURCES)
    assert _versions(db_session, other) == others
