"""Beat's peaks recompute: only what changed since the last run, with a durable watermark."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from osutrack.schema import job_watermarks, peaks, stats_snapshots
from worker.peaks import PEAKS_JOB, WATERMARK_OVERLAP, recompute_changed_peaks, recompute_peaks
from worker.watermarks import database_now, read_watermark

T = datetime(2026, 6, 1, tzinfo=UTC)
FIRST_USER = 7_300_000
# A peaks row no recompute could produce: it stays only where nothing rewrote it.
WRONG = (1, datetime(2000, 1, 1, tzinfo=UTC), 1.0, datetime(2000, 1, 1, tzinfo=UTC))

Snapshot = tuple[int, float, datetime]  # pp_rank, accuracy, captured_at
Peak = tuple[int, datetime, float, datetime]


def _add_snapshots(session: Session, user_id: int, mode: int, rows: list[Snapshot]) -> None:
    session.execute(
        insert(stats_snapshots),
        [
            {
                "user_id": user_id,
                "mode": mode,
                "count300": 1,
                "count100": 1,
                "count50": 1,
                "playcount": index,
                "ranked_score": 1,
                "total_score": 1,
                "pp_rank": rank,
                "level": 1.0,
                "pp_raw": 1.0,
                "accuracy": accuracy,
                "count_rank_ss": 0,
                "count_rank_s": 0,
                "count_rank_a": 0,
                "captured_at": captured_at,
            }
            for index, (rank, accuracy, captured_at) in enumerate(rows)
        ],
    )


def _history(rng: random.Random, start: datetime, count: int) -> list[Snapshot]:
    """`count` snapshots an hour apart from `start`, with repeated ranks and accuracies (so
    ties decide) and now and then an unranked one with the best accuracy of all."""
    return [
        (
            0 if rng.random() < 0.1 else rng.choice((500, 400, 400, 700, 300, 300)),
            rng.choice((97.5, 98.25, 98.25, 96.0)) if rng.random() >= 0.1 else 100.0,
            start + timedelta(hours=hour),
        )
        for hour in range(count)
    ]


def _expected_peak(rows: list[Snapshot]) -> Peak | None:
    """The peak as osu!track defines it: best ranked value, at the LATEST time it was held."""
    ranked = [row for row in rows if row[0] > 0]
    if not ranked:
        return None
    best_rank = min(rank for rank, _, _ in ranked)
    best_acc = max(accuracy for _, accuracy, _ in ranked)
    return (
        best_rank,
        max(when for rank, _, when in ranked if rank == best_rank),
        best_acc,
        max(when for _, accuracy, when in ranked if accuracy == best_acc),
    )


def _peak(session: Session, user_id: int, mode: int) -> Peak | None:
    row = session.execute(
        select(
            peaks.c.best_global_rank,
            peaks.c.best_rank_at,
            peaks.c.best_accuracy,
            peaks.c.best_acc_at,
        ).where(peaks.c.user_id == user_id, peaks.c.mode == mode)
    ).one_or_none()
    return None if row is None else (row[0], row[1], row[2], row[3])


def _set_peak(session: Session, user_id: int, mode: int, peak: Peak) -> None:
    session.execute(delete(peaks).where(peaks.c.user_id == user_id, peaks.c.mode == mode))
    session.execute(
        insert(peaks).values(
            user_id=user_id,
            mode=mode,
            best_global_rank=peak[0],
            best_rank_at=peak[1],
            best_accuracy=peak[2],
            best_acc_at=peak[3],
        )
    )


class Seeded:
    """Six users in two modes with a history before T; every peaks row deliberately wrong.

    Then new snapshots at or after T for some user-modes (`changed`), one of them a
    player never seen before and one captured at exactly T; `history` holds every
    snapshot of each user-mode.
    """

    def __init__(self, session: Session) -> None:
        rng = random.Random(4)
        self.history: dict[tuple[int, int], list[Snapshot]] = {}
        for user_id in range(FIRST_USER, FIRST_USER + 6):
            for mode in (0, 2):
                rows = _history(rng, T - timedelta(days=30), 40)
                self.history[(user_id, mode)] = rows
                _add_snapshots(session, user_id, mode, rows)
                _set_peak(session, user_id, mode, WRONG)
        self.changed = [(FIRST_USER, 0), (FIRST_USER + 1, 2), (FIRST_USER + 3, 0)]
        newcomer = (FIRST_USER + 9, 0)
        starts_and_counts = [(T, 3), (T + timedelta(minutes=5), 3), (T, 1), (T, 3)]
        for user_mode, (start, count) in zip(
            [*self.changed, newcomer], starts_and_counts, strict=True
        ):
            rows = _history(rng, start, count)
            self.history.setdefault(user_mode, []).extend(rows)
            _add_snapshots(session, *user_mode, rows)
        self.changed.append(newcomer)
        self.unchanged = [key for key in self.history if key not in self.changed]


@pytest.fixture
def seeded(db_session: Session) -> Seeded:
    return Seeded(db_session)


def test_since_gives_the_changed_user_modes_what_a_full_recompute_gives(
    db_session: Session, seeded: Seeded
) -> None:
    written = recompute_peaks(db_session, since=T)
    assert written == len(seeded.changed)
    for user_id, mode in seeded.changed:
        expected = _expected_peak(seeded.history[(user_id, mode)])
        assert expected is not None
        assert _peak(db_session, user_id, mode) == expected
    # Run again: nothing left to write. Then the full recompute agrees on these rows.
    assert recompute_peaks(db_session, since=T) == 0
    recompute_peaks(db_session)
    for user_id, mode in seeded.changed:
        assert _peak(db_session, user_id, mode) == _expected_peak(seeded.history[(user_id, mode)])


def test_since_leaves_user_modes_with_nothing_new_untouched(
    db_session: Session, seeded: Seeded
) -> None:
    recompute_peaks(db_session, since=T)
    for user_id, mode in seeded.unchanged:
        assert _peak(db_session, user_id, mode) == WRONG
    # The full form still repairs them: they were wrong, not out of reach.
    assert recompute_peaks(db_session) >= len(seeded.unchanged)
    for user_id, mode in seeded.unchanged:
        assert _peak(db_session, user_id, mode) == _expected_peak(seeded.history[(user_id, mode)])


def test_since_and_user_id_together_take_that_players_changed_modes(
    db_session: Session, seeded: Seeded
) -> None:
    assert recompute_peaks(db_session, FIRST_USER, since=T) == 1
    assert _peak(db_session, FIRST_USER, 0) == _expected_peak(seeded.history[(FIRST_USER, 0)])
    assert _peak(db_session, FIRST_USER, 2) == WRONG
    assert _peak(db_session, FIRST_USER + 3, 0) == WRONG


def _watermark_of(session: Session) -> datetime | None:
    return read_watermark(session, PEAKS_JOB)


def _set_watermark(session: Session, watermark: datetime | None) -> None:
    session.execute(delete(job_watermarks).where(job_watermarks.c.job == PEAKS_JOB))
    if watermark is not None:
        session.execute(insert(job_watermarks).values(job=PEAKS_JOB, watermark=watermark))


def test_the_first_run_recomputes_everything_and_records_the_database_time(
    db_session: Session, seeded: Seeded
) -> None:
    _set_watermark(db_session, None)
    recompute_changed_peaks(db_session)
    for key in seeded.history:
        assert _peak(db_session, *key) == _expected_peak(seeded.history[key])
    assert _watermark_of(db_session) == database_now(db_session)


def test_a_run_looks_back_from_the_watermark_by_the_overlap(db_session: Session) -> None:
    now = database_now(db_session)
    watermark = now - timedelta(hours=1)
    _set_watermark(db_session, watermark)
    inside, outside = FIRST_USER + 20, FIRST_USER + 21
    for user_id, captured_at in (
        (inside, watermark - WATERMARK_OVERLAP + timedelta(seconds=1)),
        (outside, watermark - WATERMARK_OVERLAP - timedelta(seconds=1)),
    ):
        _add_snapshots(db_session, user_id, 0, [(100, 99.0, captured_at)])
        _set_peak(db_session, user_id, 0, WRONG)
    recompute_changed_peaks(db_session)
    assert _peak(db_session, inside, 0) != WRONG
    assert _peak(db_session, outside, 0) == WRONG
    assert _watermark_of(db_session) == now


@pytest.fixture
def committed_user(db_engine: sa.Engine) -> Iterator[int]:
    """A user-mode committed with a snapshot an hour old and a wrong peak, and the
    watermark just before it; all removed afterwards."""
    user_id = FIRST_USER + 30
    with Session(db_engine) as session, session.begin():
        now = database_now(session)
        _add_snapshots(session, user_id, 0, [(100, 99.0, now - timedelta(hours=1))])
        _set_peak(session, user_id, 0, WRONG)
        _set_watermark(session, now - timedelta(hours=1, minutes=1))
    yield user_id
    with Session(db_engine) as session, session.begin():
        for table in (stats_snapshots, peaks):
            session.execute(delete(table).where(table.c.user_id == user_id))
        _set_watermark(session, None)


def _run_as_beat(db_engine: sa.Engine, lock_timeout: str) -> datetime:
    """One committed run, as the task does it; the database time it started."""
    with Session(db_engine) as session, session.begin():
        session.execute(sa.text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
        started = database_now(session)
        recompute_changed_peaks(session)
    return started


def test_the_watermark_moves_only_when_the_run_commits(
    db_engine: sa.Engine, committed_user: int
) -> None:
    with Session(db_engine) as session:
        before = _watermark_of(session)
    assert before is not None
    # An update holding the peaks row makes the run give up on its lock wait.
    with db_engine.connect() as holder, holder.begin():
        holder.execute(select(peaks).where(peaks.c.user_id == committed_user).with_for_update())
        with pytest.raises(OperationalError):
            _run_as_beat(db_engine, "200ms")
    with Session(db_engine) as session:
        assert _watermark_of(session) == before
        assert _peak(session, committed_user, 0) == WRONG
    # The next run redoes the same window and moves the watermark.
    started = _run_as_beat(db_engine, "5s")
    with Session(db_engine) as session:
        assert _watermark_of(session) == started
        assert _peak(session, committed_user, 0) != WRONG


def test_the_watermark_never_moves_back(db_session: Session) -> None:
    now = database_now(db_session)
    _set_watermark(db_session, now + timedelta(minutes=10))
    recompute_changed_peaks(db_session)
    assert _watermark_of(db_session) == now + timedelta(minutes=10)
    db_session.execute(
        update(job_watermarks)
        .where(job_watermarks.c.job == PEAKS_JOB)
        .values(watermark=now - timedelta(minutes=10))
    )
    recompute_changed_peaks(db_session)
    assert _watermark_of(db_session) == now
