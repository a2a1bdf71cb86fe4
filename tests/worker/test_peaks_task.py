"""Beat's peaks task in a real maintenance worker: it repairs what changed and moves on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session
from support.faults import FaultStack, fault_stack, wait_for

from osutrack.schema import job_watermarks, peaks, stats_snapshots
from osutrack.tasknames import MAINTENANCE_QUEUE
from worker.peaks import PEAKS_JOB

pytestmark = pytest.mark.integration

WRONG_AT = datetime(2000, 1, 1, tzinfo=UTC)
RECENT, OLD = 61, 62


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[FaultStack]:
    """A private Postgres: the task's window is judged against the whole table."""
    with fault_stack(tmp_path, PEAKS_RECOMPUTE_SECONDS="3600") as running:
        yield running


def _seed(session: Session, now: datetime) -> None:
    """RECENT updated ten minutes ago, OLD two days ago; both with a wrong peaks row; the
    last run an hour ago."""
    for user_id, captured_at in (
        (RECENT, now - timedelta(minutes=10)),
        (OLD, now - timedelta(days=2)),
    ):
        session.execute(
            insert(stats_snapshots).values(
                user_id=user_id, mode=0, count300=1, count100=1, count50=1, playcount=1,
                ranked_score=1, total_score=1, pp_rank=1234, level=1.0, pp_raw=1.0,
                accuracy=97.0, count_rank_ss=0, count_rank_s=0, count_rank_a=0,
                captured_at=captured_at,
            )
        )  # fmt: skip
        session.execute(
            insert(peaks).values(
                user_id=user_id, mode=0, best_global_rank=1, best_rank_at=WRONG_AT,
                best_accuracy=1.0, best_acc_at=WRONG_AT,
            )
        )  # fmt: skip
    session.execute(
        insert(job_watermarks).values(job=PEAKS_JOB, watermark=now - timedelta(hours=1))
    )


def test_the_task_repairs_the_recent_user_mode_and_advances_the_watermark(
    stack: FaultStack,
) -> None:
    with Session(stack.engine) as session, session.begin():
        before = session.scalars(text("SELECT now()")).one()
        _seed(session, before)
    stack.start_worker("maintenance", queues=MAINTENANCE_QUEUE)
    producer = Celery("peaks-test", broker=stack.redis_server.url)
    producer.send_task("osutrack.recompute_peaks", queue=MAINTENANCE_QUEUE)
    producer.close()

    def watermark() -> datetime:
        with Session(stack.engine) as session:
            query = select(job_watermarks.c.watermark).where(job_watermarks.c.job == PEAKS_JOB)
            return session.scalars(query).one()

    wait_for(lambda: watermark() > before, 60, "the peaks task to commit", interval=0.2)
    with Session(stack.engine) as session:
        rows = dict(
            session.execute(
                select(peaks.c.user_id, peaks.c.best_global_rank).where(peaks.c.mode == 0)
            ).all()
        )
    assert rows == {RECENT: 1234, OLD: 1}
