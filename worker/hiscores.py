"""Top plays: which are new since the last update, and storing every play ever seen."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from osutrack.fields import PLAY_COLUMNS, PLAY_FIELDS, column_list, upsert_changed
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


# All of a player's fetched plays in one statement and one round trip: the rows travel as
# arrays and are unnested server-side. Constant raw SQL (psycopg2 pyformat, declared
# column names), so nothing is compiled per update (building `.values(rows)` compiled a
# 100-row statement each time, about 30 ms of CPU, and executemany sent 100 statements);
# `worker.update_store.write_plan` sends it in one batch with the update's other writes.
# A play seen before keeps its row and only gets its current pp; an unchanged row is not
# rewritten (no dead tuple). Keyed by (mode, score_id), so a redelivered update writes
# nothing twice; `update_time` stays the time the play was first recorded.
_UNNESTED = tuple(name for name in PLAY_FIELDS if name not in ("user_id", "update_time"))
# TopPlay keeps the v1 name of the mods column.
_PLAY_ATTRIBUTE = {"mods": "enabled_mods"}
_SQL_TYPE = {column.name: column.sql_type for column in PLAY_COLUMNS}
UPSERT_HISCORES_SQL = (
    "INSERT INTO hiscores AS stored (mode, "  # noqa: S608
    + column_list(PLAY_FIELDS)
    + ") SELECT %(mode)s, "
    + ", ".join(
        {"user_id": "%(user_id)s", "update_time": "%(now)s"}.get(name, f"play.{name}")
        for name in PLAY_FIELDS
    )
    + " FROM unnest("
    + ", ".join(f"CAST(%(play_{name})s AS {_SQL_TYPE[name]}[])" for name in _UNNESTED)
    + ") AS play("
    + column_list(_UNNESTED)
    + ") "
    + upsert_changed("stored", ("mode", "score_id"), ("pp",))
)


def hiscores_params(plays: Iterable[TopPlay]) -> dict[str, list[Any]]:
    """The array parameters of `UPSERT_HISCORES_SQL` (besides mode, user_id and now)."""
    listed = list(plays)
    return {
        f"play_{name}": [getattr(play, _PLAY_ATTRIBUTE.get(name, name)) for play in listed]
        for name in _UNNESTED
    }
