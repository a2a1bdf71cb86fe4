"""One update of a player in one mode: fetch, compare, store, and the diff to return."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from osutrack.schema import finished_updates, tracked_users
from worker.hiscores import known_score_ids, new_hiscores, newhs_item, record_hiscores
from worker.peaks import record_peak
from worker.schedule import DEFAULT_INTERVALS, Intervals, schedule_next_check
from worker.stats import DIFF_FIELD_ORDER, leveled_up, record_snapshot, stats_diff
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


def _lock_user_mode(session: Session, user_id: int, mode: int) -> None:
    # Two jobs for one player and mode (an interactive one and a refresh, or a redelivered
    # copy) must not interleave: both would read the same "previous" snapshot. A
    # transaction-scoped advisory lock serialises them without a lock table.
    session.execute(select(func.pg_advisory_xact_lock(user_id * 4 + mode)))


def _upsert_tracked_user(session: Session, player: Player, now: datetime) -> None:
    statement = insert(tracked_users).values(
        user_id=player.user_id, username=player.username, first_seen_at=now, last_updated_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[tracked_users.c.user_id],
            set_={"username": statement.excluded.username, "last_updated_at": now},
        )
    )


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
    """
    user_id = player.user_id
    _lock_user_mode(session, user_id, mode)
    # Checked under the lock: a second copy of a running job (redelivered while the first
    # still runs) waits for the first to commit, then finds its row here.
    if job_id is not None:
        stored = finished_result(session, job_id)
        if stored is not None:
            return stored
    previous, stored_at = record_snapshot(session, user_id, mode, player.stats, now)
    if stored_at is None:
        # Unranked now: nothing is stored, so the diff is against the stats as they stand
        # (all zeros after an earlier snapshot), as osu!track does.
        current = previous or player.stats
        diff: dict[str, int | float] = dict.fromkeys(DIFF_FIELD_ORDER, 0)
    else:
        current = player.stats
        diff = stats_diff(previous, current)
        record_peak(session, user_id, mode, current, stored_at)
    fresh = []
    if top_plays is not None:
        fresh = new_hiscores(known_score_ids(session, user_id, mode), top_plays)
        record_hiscores(session, user_id, mode, top_plays, now)
    _upsert_tracked_user(session, player, now)
    schedule_next_check(
        session, user_id, mode, now, changed=previous != player.stats, intervals=intervals
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
        session.execute(
            insert(finished_updates)
            .values(job_id=job_id, user_id=user_id, mode=mode, finished_at=now, result=body)
            .on_conflict_do_nothing(index_elements=[finished_updates.c.job_id])
        )
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
