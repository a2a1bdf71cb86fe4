"""One update of a player in one mode: fetch, read under the lock, write the plan.

The decisions are `worker.update_plan.plan_update`'s; this module does the I/O around it:
the osu! API first, then, in the caller's transaction, the locked read and the plan's
writes.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from osutrack.fields import STAT_FIELDS, PlayerStats, column_list
from osutrack.schema import finished_updates
from worker.hiscores import UPSERT_HISCORES_SQL, hiscores_params
from worker.peaks import record_peak
from worker.schedule import DEFAULT_INTERVALS, UPSERT_SCHEDULE_SQL, Intervals
from worker.update_plan import (
    LockedState,
    SnapshotAction,
    StoredSnapshot,
    UpdatePlan,
    missing_user_body,
    plan_update,
)
from worker.upstream import OsuClient
from worker.upstream.models import Player, TopPlay


def finished_result(session: Session, job_id: str) -> dict[str, Any] | None:
    """The stored body of a job whose update already committed, if any."""
    result: dict[str, Any] | None = session.scalar(
        select(finished_updates.c.result).where(finished_updates.c.job_id == job_id)
    )
    return result


# Everything the update reads, in one round trip after the lock: the job's stored body,
# the newest two snapshots, the stored score ids and the stored `last_changed_at`. One
# row per snapshot (at most two; one with NULL snapshot columns when there is none).
#
# Two jobs for one player and mode (an interactive one and a refresh, or a redelivered
# copy) must not interleave: both would read the same "previous" snapshot. The
# transaction-scoped advisory lock serialises them without a lock table; psycopg2 sends
# both statements in one message and Postgres runs them in order, so every read below
# happens under the lock. Constant text (declared column names), so nothing is compiled
# per update.
_READ_UNDER_LOCK = (
    """
    SELECT pg_advisory_xact_lock(%(lock_key)s);
    SELECT done.result, known.score_ids, planned.last_changed_at, newest.*
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT result FROM finished_updates WHERE job_id = %(job_id)s
    ) AS done ON true
    LEFT JOIN LATERAL (
        SELECT array_agg(score_id) AS score_ids FROM hiscores
        WHERE user_id = %(user_id)s AND mode = %(mode)s
    ) AS known ON true
    LEFT JOIN LATERAL (
        SELECT last_changed_at FROM refresh_schedule
        WHERE user_id = %(user_id)s AND mode = %(mode)s
    ) AS planned ON true
    LEFT JOIN LATERAL (
        SELECT snapshot_id, captured_at, """  # noqa: S608
    + column_list(STAT_FIELDS)
    + """
        FROM stats_snapshots
        WHERE user_id = %(user_id)s AND mode = %(mode)s
        ORDER BY captured_at DESC
        LIMIT 2
    ) AS newest ON true
    ORDER BY newest.captured_at DESC NULLS LAST
"""
)
INSERT_SNAPSHOT_SQL = (
    "INSERT INTO stats_snapshots (user_id, mode, captured_at, "  # noqa: S608
    + column_list(STAT_FIELDS)
    + ") VALUES (%(user_id)s, %(mode)s, %(now)s, "
    + ", ".join(f"%({name})s" for name in STAT_FIELDS)
    + ")"
)
TOUCH_SNAPSHOT_SQL = (
    "UPDATE stats_snapshots SET captured_at = %(now)s WHERE snapshot_id = %(snapshot_id)s"
)
_UPSERT_TRACKED_USER_SQL = """
    INSERT INTO tracked_users (user_id, username, first_seen_at, last_updated_at)
    VALUES (%(user_id)s, %(username)s, %(now)s, %(now)s)
    ON CONFLICT (user_id) DO UPDATE SET
        username = EXCLUDED.username, last_updated_at = EXCLUDED.last_updated_at
"""
_INSERT_FINISHED_SQL = """
    INSERT INTO finished_updates (job_id, user_id, mode, finished_at, result)
    VALUES (%(job_id)s, %(user_id)s, %(mode)s, %(now)s, CAST(%(result)s AS jsonb))
    ON CONFLICT (job_id) DO NOTHING
"""


def read_locked_state(
    connection: Connection, user_id: int, mode: int, job_id: str | None
) -> LockedState:
    """Take the (user, mode) lock for the rest of the transaction and read what the plan
    needs, in one round trip."""
    rows = connection.exec_driver_sql(
        _READ_UNDER_LOCK,
        {"lock_key": user_id * 4 + mode, "job_id": job_id, "user_id": user_id, "mode": mode},
    ).all()
    first = rows[0]._mapping
    newest = tuple(
        StoredSnapshot(
            row.snapshot_id, PlayerStats(**{name: row._mapping[name] for name in STAT_FIELDS})
        )
        for row in rows
        if row.snapshot_id is not None
    )
    return LockedState(
        finished_body=first["result"],
        known_score_ids=frozenset(first["score_ids"] or ()),
        last_changed_at=first["last_changed_at"],
        newest=newest,
    )


def write_plan(session: Session, plan: UpdatePlan) -> None:
    """Write everything `plan` says in the caller's transaction (the caller commits).

    Two round trips: the peak fold, then every other write as one batch of statements
    (raw SQL, nothing compiled per update). Every write is keyed (snapshot time, score id,
    user, user-mode, job id), so the batch is the update's whole effect.
    """
    writes: list[str] = []
    params: dict[str, Any] = {
        "user_id": plan.user_id,
        "mode": plan.mode,
        "now": plan.now,
        "username": plan.username,
    }
    if plan.snapshot is SnapshotAction.INSERT:
        writes.append(INSERT_SNAPSHOT_SQL)
        params.update(asdict(plan.stats))
    elif plan.snapshot is SnapshotAction.EXTEND_PLATEAU:
        writes.append(TOUCH_SNAPSHOT_SQL)
        params["snapshot_id"] = plan.plateau_snapshot_id
    if plan.peak is not None:
        record_peak(
            session,
            plan.user_id,
            plan.mode,
            plan.peak.global_rank,
            plan.peak.accuracy,
            plan.peak.at,
        )
    if plan.plays_to_store:
        writes.append(UPSERT_HISCORES_SQL)
        params.update(hiscores_params(plan.plays_to_store))
    writes.append(_UPSERT_TRACKED_USER_SQL)
    writes.append(UPSERT_SCHEDULE_SQL)
    params.update(asdict(plan.schedule))
    if plan.job_id is not None:
        writes.append(_INSERT_FINISHED_SQL)
        params.update(job_id=plan.job_id, result=orjson.dumps(plan.body).decode())
    # psycopg2 sends the statements in one message; they run in order in this transaction.
    session.connection().exec_driver_sql(";".join(writes), params)


def store_update(
    session: Session,
    player: Player,
    mode: int,
    top_plays: list[TopPlay] | None,
    *,
    job_id: str | None,
    now: datetime,
    intervals: Intervals = DEFAULT_INTERVALS,
) -> dict[str, Any]:
    """Read under the lock, plan, write; return the /update body. The caller commits.

    A job that already committed returns its stored body and writes nothing: checked
    under the lock, so a second copy of a running job (redelivered while the first still
    runs) waits for the first to commit, then finds its row.
    """
    state = read_locked_state(session.connection(), player.user_id, mode, job_id)
    if job_id is not None and state.finished_body is not None:
        return state.finished_body
    plan = plan_update(state, player, mode, top_plays, job_id=job_id, now=now, intervals=intervals)
    write_plan(session, plan)
    return dict(plan.body)


def update_user(
    session: Session,
    client: OsuClient,
    user_id: int,
    mode: int,
    *,
    job_id: str | None = None,
    now: datetime | None = None,
    intervals: Intervals = DEFAULT_INTERVALS,
) -> dict[str, Any]:
    """Update one player in one mode and return the /update body. The caller commits.

    The upstream is asked first, before the session touches the database, so no
    connection sits idle in a transaction while osu! answers. Raises `UpstreamError` when
    the osu! API fails (nothing is written then); a user osu! does not know gives the
    `exists: false` body and writes nothing.
    """
    player = client.fetch_player(user_id, mode)
    if player is None:
        return missing_user_body(mode)
    top_plays = client.fetch_top_plays(user_id, mode)
    if top_plays is None:
        # The user vanished between the two calls (restricted meanwhile): store nothing,
        # rather than a snapshot without its plays.
        return missing_user_body(mode)
    return store_update(
        session,
        player,
        mode,
        top_plays,
        job_id=job_id,
        now=now or datetime.now(UTC),
        intervals=intervals,
    )
