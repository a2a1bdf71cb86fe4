"""One update of a player in one mode: fetch, compare, store, and the diff to return."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from osutrack.schema import finished_updates
from worker.hiscores import UPSERT_HISCORES_SQL, hiscores_params, new_hiscores, newhs_item
from worker.peaks import record_peak
from worker.schedule import DEFAULT_INTERVALS, UPSERT_SCHEDULE_SQL, Intervals, schedule_params
from worker.stats import DIFF_FIELD_ORDER, leveled_up, plan_snapshot, stats_diff
from worker.upstream import OsuClient
from worker.upstream.models import Player, TopPlay


def missing_user_body(mode: int) -> dict[str, Any]:
    """The body for a user osu! does not know: `exists` false, everything else empty."""
    return {
        "username": "",
        "mode": mode,
        **dict.fromkeys(DIFF_FIELD_ORDER, 0),
        "levelup": False,
        "first": False,
        "exists": False,
        "newhs": [],
    }


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
# happens under the lock.
_READ_UNDER_LOCK = """
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
        SELECT snapshot_id, count300, count100, count50, playcount, ranked_score,
               total_score, pp_rank, level, pp_raw, accuracy, count_rank_ss, count_rank_s,
               count_rank_a, captured_at
        FROM stats_snapshots
        WHERE user_id = %(user_id)s AND mode = %(mode)s
        ORDER BY captured_at DESC
        LIMIT 2
    ) AS newest ON true
    ORDER BY newest.captured_at DESC NULLS LAST
"""
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
    """Write what one fetch found and return the /update body. The caller commits.

    Writes, in one transaction: the snapshot (plateau-compacted, none when unranked),
    every top play, the peaks, the tracked user, the user-mode's next scheduled refresh,
    and the job's idempotency row. A job that already committed returns its stored body
    and writes nothing. `top_plays` None means they were not fetched because the stats
    did not change (the scheduled refresh): no play can be new then.

    Three round trips: the reads under the lock, the peak fold, and every other write as
    one batch of statements (raw SQL, nothing compiled per update).
    """
    user_id = player.user_id
    connection = session.connection()
    keys = {"user_id": user_id, "mode": mode, "now": now}
    rows = connection.exec_driver_sql(
        _READ_UNDER_LOCK, {**keys, "lock_key": user_id * 4 + mode, "job_id": job_id}
    ).all()
    first = rows[0]
    # Checked under the lock: a second copy of a running job (redelivered while the first
    # still runs) waits for the first to commit, then finds its row here.
    if job_id is not None and first.result is not None:
        stored: dict[str, Any] = first.result
        return stored
    newest_two = [row for row in rows if row.snapshot_id is not None]
    previous, snapshot_sql, snapshot_params = plan_snapshot(newest_two, player.stats)
    writes: list[str] = []
    params: dict[str, Any] = {**keys, "username": player.username}
    if snapshot_sql is None:
        # Unranked now: nothing is stored, so the diff is against the stats as they stand
        # (all zeros after an earlier snapshot), as osu!track does.
        current = previous or player.stats
        diff: dict[str, int | float] = dict.fromkeys(DIFF_FIELD_ORDER, 0)
    else:
        current = player.stats
        diff = stats_diff(previous, current)
        writes.append(snapshot_sql)
        params.update(snapshot_params)
        record_peak(session, user_id, mode, current, now)
    fresh = []
    if top_plays is not None:
        fresh = new_hiscores(first.score_ids or (), top_plays)
        plays_params = hiscores_params(top_plays)
        if plays_params is not None:
            writes.append(UPSERT_HISCORES_SQL)
            params.update(plays_params)
    writes.append(_UPSERT_TRACKED_USER_SQL)
    writes.append(UPSERT_SCHEDULE_SQL)
    params.update(
        schedule_params(
            now,
            changed=previous != player.stats,
            known_last_changed=first.last_changed_at,
            intervals=intervals,
        )
    )
    body: dict[str, Any] = {
        "username": player.username,
        "mode": mode,
        **diff,
        "levelup": leveled_up(previous, current),
        "first": previous is None,
        "exists": True,
        "newhs": [newhs_item(play, ranking) for ranking, play in fresh],
    }
    if job_id is not None:
        writes.append(_INSERT_FINISHED_SQL)
        params.update(job_id=job_id, result=orjson.dumps(body).decode())
    # psycopg2 sends the statements in one message; they run in order in this transaction.
    connection.exec_driver_sql(";".join(writes), params)
    return body


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
