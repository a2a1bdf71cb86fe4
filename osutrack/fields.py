"""The stat fields of a player and the stored fields of a top play: declared once here.

`PlayerStats` is the declaration of the 13 stats: its field order is the column order of
`stats_snapshots` and of /stats_history rows; each field's metadata gives its place in the
/update diff and whether /stats_history prints it as a string. `PLAY_COLUMNS` declares the
stored columns of a play (`hiscores`, `bestplays`, `bestplays_months`). The tables, the SQL
column lists, the response orders and the API models derive from these two.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_type_hints

# How Postgres prints a stored time in a response: UTC, whole seconds, `.000Z`, as the
# original API printed them. `{}` is the column.
TO_CHAR = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"


def _stat(diff_position: int, *, history_as_text: bool = False) -> dict[str, Any]:
    # `history_as_text`: BIGINT scores, sent as strings by the original (mysqljs).
    return {"diff_position": diff_position, "history_as_text": history_as_text}


@dataclass(frozen=True)
class PlayerStats:
    """The 13 statistics osu!track records per snapshot, in the v1 meaning of each field.

    `pp_rank` is 0 when the player has no global rank in the mode (v2 `global_rank` null,
    v1 `pp_raw` 0); such stats are never stored as a snapshot. `_stat(n)`: the field's
    place in the /update diff (osu!track's documented order).
    """

    count300: int = field(metadata=_stat(6))
    count100: int = field(metadata=_stat(8))
    count50: int = field(metadata=_stat(7))
    playcount: int = field(metadata=_stat(0))
    ranked_score: int = field(metadata=_stat(5, history_as_text=True))
    total_score: int = field(metadata=_stat(4, history_as_text=True))
    pp_rank: int = field(metadata=_stat(1))
    level: float = field(metadata=_stat(9))
    pp_raw: float = field(metadata=_stat(2))
    accuracy: float = field(metadata=_stat(3))
    count_rank_ss: int = field(metadata=_stat(12))
    count_rank_s: int = field(metadata=_stat(11))
    count_rank_a: int = field(metadata=_stat(10))

    @property
    def is_ranked(self) -> bool:
        return self.pp_rank > 0


@dataclass(frozen=True)
class StatField:
    """One field of `PlayerStats`, as the SQL and the models need it."""

    name: str
    kind: type[int] | type[float]
    diff_position: int
    history_as_text: bool


def _stat_fields() -> tuple[StatField, ...]:
    hints = get_type_hints(PlayerStats)
    return tuple(
        StatField(
            name=stat.name,
            kind=hints[stat.name],
            diff_position=stat.metadata["diff_position"],
            history_as_text=stat.metadata["history_as_text"],
        )
        for stat in dataclasses.fields(PlayerStats)
    )


STATS: tuple[StatField, ...] = _stat_fields()
# Column order (`stats_snapshots`, /stats_history).
STAT_FIELDS: tuple[str, ...] = tuple(stat.name for stat in STATS)
# The order of the stat fields in the /update body, as in osu!track's documentation.
DIFF_FIELD_ORDER: tuple[str, ...] = tuple(
    stat.name for stat in sorted(STATS, key=lambda stat: stat.diff_position)
)
UNRANKED = PlayerStats(0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0, 0, 0)


@dataclass(frozen=True)
class PlayColumn:
    """A stored column of a top play. `sql_type` names its Postgres type (array casts)."""

    name: str
    kind: type[int] | type[float] | type[str] | type[datetime]
    sql_type: str


# Stored columns of a play, besides its `mode` (and a table's position keys), in the
# order the tables declare them.
PLAY_COLUMNS: tuple[PlayColumn, ...] = (
    PlayColumn("score_id", int, "bigint"),
    PlayColumn("user_id", int, "bigint"),
    PlayColumn("beatmap_id", int, "bigint"),
    PlayColumn("score", int, "bigint"),
    PlayColumn("pp", float, "double precision"),
    PlayColumn("mods", int, "bigint"),
    PlayColumn("rank", str, "text"),
    PlayColumn("score_time", datetime, "timestamptz"),
    PlayColumn("update_time", datetime, "timestamptz"),
)
PLAY_FIELDS: tuple[str, ...] = tuple(column.name for column in PLAY_COLUMNS)
# The columns a /hiscores row prints, in its order (times printed with TO_CHAR); a
# /bestplays row prints the player's id first, as `user`.
HISCORE_FIELDS: tuple[str, ...] = PLAY_FIELDS[2:]
BEST_PLAY_FIELDS: tuple[str, ...] = ("user", *HISCORE_FIELDS)


def printed(column: str, prefix: str = "") -> str:
    """The SQL that prints a play column in a response row (times with TO_CHAR); with a
    prefix, the column of that table alias."""
    kind = next(play.kind for play in PLAY_COLUMNS if play.name == column)
    qualified = f"{prefix}.{column}" if prefix else column
    return TO_CHAR.format(qualified) if kind is datetime else qualified


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def column_list(names: tuple[str, ...], prefix: str = "") -> str:
    """`a, b, c` (each as `prefix.a` with a prefix) of declared column names."""
    return ", ".join(f"{prefix}.{name}" if prefix else name for name in names)


def upsert_changed(alias: str, key: tuple[str, ...], updated: tuple[str, ...]) -> str:
    """`ON CONFLICT (key) DO UPDATE SET` of the `updated` columns from the new row, only
    where one of them differs (`alias` names the stored row): an unchanged row is not
    rewritten, so it leaves no dead tuple. Names must be plain identifiers: they become
    SQL text."""
    for name in (alias, *key, *updated):
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"not a column name: {name!r}")
    return (
        f"ON CONFLICT ({column_list(key)}) DO UPDATE SET "
        + ", ".join(f"{name} = excluded.{name}" for name in updated)
        + f" WHERE ({column_list(updated, alias)}) IS DISTINCT FROM"
        f" ({column_list(updated, 'excluded')})"
    )
