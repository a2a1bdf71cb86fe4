"""The scheduled refresh: check tracked players without anyone asking, within its budget.

Planning (a beat task) reserves the user-modes whose check is due and hands them to refresh
tasks in batches. With osu! API v2 one request returns every mode's stats of up to 50
players; only the user-modes whose stats changed cost a further request (their top
plays). What a check finds is stored exactly as an interactive update would store it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from worker.schedule import Intervals, schedule_next_check, take_due
from worker.stats import latest_stats
from worker.update_store import store_update
from worker.upstream import OsuClient
from worker.upstream.v2 import BATCH_MAX_IDS

log = logging.getLogger(__name__)


def plan_refresh(
    session: Session, now: datetime, max_user_modes: int
) -> list[list[tuple[int, int]]]:
    """Reserve due user-modes (at most `max_user_modes`) and group them into task batches.

    A batch holds every due mode of up to 50 players, so one v2 batch request serves it.
    The caller commits, then enqueues one refresh task per batch.
    """
    by_user: dict[int, list[tuple[int, int]]] = {}
    for user_id, mode in take_due(session, now, max_user_modes):
        by_user.setdefault(user_id, []).append((user_id, mode))
    users = sorted(by_user)
    return [
        [pair for user_id in users[start : start + BATCH_MAX_IDS] for pair in by_user[user_id]]
        for start in range(0, len(users), BATCH_MAX_IDS)
    ]


def refresh_user_modes(
    session: Session,
    client: OsuClient,
    user_modes: Iterable[tuple[int, int]],
    *,
    now: Callable[[], datetime],
    intervals: Intervals,
) -> Counter[str]:
    """Check each user-mode and store what changed; return counts by outcome.

    Outcomes: "changed" (stored; top plays fetched when pp moved), "unchanged" (no further
    request; the snapshot's plateau is extended as an update would), "missing" (osu! does
    not know the user now: nothing is deleted, checked again later). Each user-mode is
    committed on its own, so a failure halfway keeps the work already done.
    """
    pairs = list(user_modes)
    outcomes: Counter[str] = Counter()
    for (user_id, mode), player in client.fetch_players(pairs).items():
        checked_at = now()
        if player is None:
            schedule_next_check(
                session, user_id, mode, checked_at, changed=False, intervals=intervals
            )
            session.commit()
            outcomes["missing"] += 1
            continue
        previous = latest_stats(session, user_id, mode)
        session.commit()
        changed = player.stats != previous and player.stats.is_ranked
        # A play can only enter the top 100 by moving the weighted pp total (a pp rework
        # moves it too), so a change that leaves pp alone (more plays, more score) cannot
        # bring a new top play: its best scores are not worth a request.
        plays_may_differ = changed and (previous is None or player.stats.pp_raw != previous.pp_raw)
        top_plays = client.fetch_top_plays(user_id, mode) if plays_may_differ else None
        if plays_may_differ and top_plays is None:
            # Restricted between the batch and this call: store nothing for now.
            schedule_next_check(
                session, user_id, mode, checked_at, changed=False, intervals=intervals
            )
            session.commit()
            outcomes["missing"] += 1
            continue
        store_update(
            session, player, mode, top_plays, job_id=None, now=checked_at, intervals=intervals
        )
        session.commit()
        outcomes["changed" if changed else "unchanged"] += 1
    return outcomes
