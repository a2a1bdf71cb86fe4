"""Top plays: which are new since the last update, and storing every play ever seen."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from osutrack.schema import hiscores
from osutrack.timefmt import v1_date
from worker.upstream.models import TopPlay


def new_hiscores(
    known_score_ids: Iterable[int], top_plays: list[TopPlay]
) -> list[tuple[int, TopPlay]]:
    """(ranking, play) for each top play not recorded before, in top-list order.

    `ranking` is the play's 0-based position in the top list sorted by pp, taken before
    skipping, as osu!track does. A play is identified by its score id (a deliberate
    difference from osu!track's (beatmap, score, pp) match): after a pp rework an old play
    is not new again. Plays on beatmap 0 are skipped, as osu!track does.
    """
    known = set(known_score_ids)
    ordered = sorted(top_plays, key=lambda play: play.pp, reverse=True)
    return [
        (ranking, play)
        for ranking, play in enumerate(ordered)
        if play.beatmap_id != 0 and play.score_id not in known
    ]


def _pp_text(pp: float) -> str:
    # v1 prints pp without a trailing ".0" ("200", "82.9195"); Python's repr otherwise.
    text = repr(pp)
    return text[:-2] if text.endswith(".0") else text


def newhs_item(play: TopPlay, ranking: int) -> dict[str, Any]:
    """A `newhs` entry: v1 `get_user_best` fields, every value a string, plus `ranking`."""
    return {
        "beatmap_id": str(play.beatmap_id),
        "score_id": str(play.score_id),
        "score": str(play.score),
        "maxcombo": str(play.maxcombo),
        "count50": str(play.count50),
        "count100": str(play.count100),
        "count300": str(play.count300),
        "countmiss": str(play.countmiss),
        "countkatu": str(play.countkatu),
        "countgeki": str(play.countgeki),
        "perfect": "1" if play.perfect else "0",
        "enabled_mods": str(play.enabled_mods),
        "user_id": str(play.user_id),
        "date": v1_date(play.score_time),
        "rank": play.rank,
        "pp": _pp_text(play.pp),
        "replay_available": "1" if play.replay_available else "0",
        "ranking": ranking,
    }


def known_score_ids(session: Session, user_id: int, mode: int) -> set[int]:
    """Score ids of every play ever recorded for the user and mode."""
    query = select(hiscores.c.score_id).where(
        hiscores.c.user_id == user_id, hiscores.c.mode == mode
    )
    return set(session.scalars(query))


# All of a player's fetched plays in one statement and one round trip: the rows travel as
# arrays and are unnested server-side. Constant raw SQL (psycopg2 pyformat), so nothing is
# compiled per update (building `.values(rows)` compiled a 100-row statement each time,
# about 30 ms of CPU, and executemany sent 100 statements); `worker.updates.store_update`
# sends it in one batch with the update's other writes. A play seen before keeps its row
# and only gets its current pp; an unchanged row is not rewritten (no dead tuple).
UPSERT_HISCORES_SQL = """
    INSERT INTO hiscores (mode, score_id, user_id, beatmap_id, score, pp, mods, rank,
                          score_time, update_time)
    SELECT %(mode)s, play.score_id, %(user_id)s, play.beatmap_id, play.score, play.pp,
           play.mods, play.rank, play.score_time, %(now)s
    FROM unnest(CAST(%(score_ids)s AS bigint[]), CAST(%(beatmap_ids)s AS bigint[]),
                CAST(%(scores)s AS bigint[]), CAST(%(pps)s AS double precision[]),
                CAST(%(mods)s AS bigint[]), CAST(%(ranks)s AS text[]),
                CAST(%(score_times)s AS timestamptz[]))
         AS play(score_id, beatmap_id, score, pp, mods, rank, score_time)
    ON CONFLICT (mode, score_id) DO UPDATE SET pp = EXCLUDED.pp
    WHERE hiscores.pp IS DISTINCT FROM EXCLUDED.pp
"""


def hiscores_params(top_plays: list[TopPlay]) -> dict[str, Any] | None:
    """The array parameters of `UPSERT_HISCORES_SQL` (besides mode, user_id and now) for
    every play not on beatmap 0, or None when there is nothing to store."""
    plays = [play for play in top_plays if play.beatmap_id != 0]
    if not plays:
        return None
    return {
        "score_ids": [play.score_id for play in plays],
        "beatmap_ids": [play.beatmap_id for play in plays],
        "scores": [play.score for play in plays],
        "pps": [play.pp for play in plays],
        "mods": [play.enabled_mods for play in plays],
        "ranks": [play.rank for play in plays],
        "score_times": [play.score_time for play in plays],
    }


def record_hiscores(
    session: Session, user_id: int, mode: int, top_plays: list[TopPlay], now: datetime
) -> None:
    """Store every fetched play; a play seen before keeps its row and gets its current pp.

    Keyed by (mode, score_id), so a redelivered update writes nothing twice. `update_time`
    stays the time the play was first recorded.
    """
    params = hiscores_params(top_plays)
    if params is None:
        return
    session.connection().exec_driver_sql(
        UPSERT_HISCORES_SQL, {"mode": mode, "user_id": user_id, "now": now, **params}
    )
