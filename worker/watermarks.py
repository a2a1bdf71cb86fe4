"""Watermarks of incremental beat jobs: where each job's last successful run got to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from osutrack.schema import job_watermarks


def database_now(session: Session) -> datetime:
    """The start time of the session's transaction, on the database's clock.

    Every later statement of the transaction sees at least what was committed by then,
    and every worker's writes are compared with one clock.
    """
    return session.scalars(select(func.now())).one()


def read_watermark(session: Session, job: str) -> datetime | None:
    """The watermark of `job`'s last successful run, or None if it never succeeded."""
    query = select(job_watermarks.c.watermark).where(job_watermarks.c.job == job)
    return session.scalars(query).one_or_none()


def advance_watermark(session: Session, job: str, watermark: datetime) -> None:
    """Record `watermark` for `job` in the caller's transaction; never move it back.

    Written in the same transaction as the job's work: a run that fails rolls it back with
    that work, so the next run redoes the same window. A late commit of an older run (two
    runs overlapping after a lock expired) cannot move it backwards.
    """
    statement = insert(job_watermarks).values(job=job, watermark=watermark)
    statement = statement.on_conflict_do_update(
        index_elements=[job_watermarks.c.job],
        set_={"watermark": func.greatest(job_watermarks.c.watermark, statement.excluded.watermark)},
    )
    session.execute(statement)
