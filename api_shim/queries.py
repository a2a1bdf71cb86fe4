"""The SQL of the read endpoints: constant text, bound parameters only.

Timestamps are printed by Postgres as the original API printed them (`iso_z`: UTC, whole
seconds truncated, `.000Z`), and BIGINT scores that the original sent as strings are cast
to text there too, so a row needs no per-value conversion in Python. An open end of a
date window is bound as `-infinity` / `infinity`, so one statement serves every window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from api_shim.js_json import SHORTEST_RANGE
from api_shim.params import DateWindow
from api_shim.read_connections import Prepared
from api_shim.windows import MonthsPlan
from osutrack import month_lists
from osutrack.fields import (
    BEST_PLAY_FIELDS,
    HISCORE_FIELDS,
    PLAY_COLUMNS,
    PLAY_FIELDS,
    STAT_FIELDS,
    STATS,
    TO_CHAR,
    column_list,
    printed,
)


def window_bounds(window: DateWindow) -> tuple[datetime | str, datetime | str]:
    """The inclusive bounds to bind for `window`, open ends as (-)infinity."""
    start: datetime | str = "-infinity" if window.start is None else window.start
    end: datetime | str = "infinity" if window.end is None else window.end
    return start, end


_KEY = re.compile(r"[a-z_][a-z0-9_]*")


def _as_key(column_sql: str, key: str) -> str:
    """`column_sql AS "key"`: the JSON key of a column in `row_to_json`."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a JSON key: {key!r}")
    return f'{column_sql} AS "{key}"'


def _unprintable(floats: tuple[str, ...]) -> str:
    """True for a row holding a float that Postgres prints unlike JavaScript (outside
    `SHORTEST_RANGE`, `-0`, NaN; NULL never is), by the keys of its float columns."""
    low, high = SHORTEST_RANGE
    checks = [
        f'(NOT (abs(t."{key}") >= {low!r}::float8 AND abs(t."{key}") < {high!r}::float8)'
        f" AND t.\"{key}\"::text <> '0')"
        for key in floats
    ]
    return "coalesce(bool_or(" + " OR ".join(checks) + "), false)"


def json_body(
    source: str, columns: tuple[tuple[str, str], ...], floats: tuple[str, ...], where: str
) -> str:
    """A statement answering (read version of the player's `source` rows, the JSON array
    of the rows of `source` selected and ordered by `where`, whether a float needs
    printing in Python instead); columns are (SQL, key) pairs, in key order.

    The rows are printed by Postgres (`row_to_json`: keys in column order, compact) and
    joined in the subquery's order; doubles come out in their shortest form, whole ones
    without `.0`, as the original's `JSON.stringify` printed them. $1 is the user, $2 the
    mode.
    """
    if not _KEY.fullmatch(source):
        raise ValueError(f"not a table name: {source!r}")
    selected = ", ".join(_as_key(sql, key) for sql, key in columns)
    return (
        f"SELECT {READ_VERSION_OF.format(source)},"  # noqa: S608
        " coalesce('[' || string_agg(row_to_json(t)::text, ',') || ']', '[]'),"
        f" {_unprintable(floats)}"
        f" FROM (SELECT {selected} FROM {source} WHERE {where}) AS t"
    )


# The read version of the player's rows in a table (migration 0006): 0 without a row.
READ_VERSION_OF = (
    "coalesce((SELECT version FROM read_versions WHERE user_id = $1 AND mode = $2"
    " AND source = '{}'), 0)"
)


SNAPSHOT_KEYS = (*STAT_FIELDS, "timestamp")

# A /stats_history row as printed: (SQL, key) per column.
_STATS_COLUMNS = (
    *((f"{stat.name}::text" if stat.history_as_text else stat.name, stat.name) for stat in STATS),
    (TO_CHAR.format("captured_at"), "timestamp"),
)
# The rows of a body (`*_BODY`) for Python to print, when Postgres would print a float
# unlike the original (`js_json`). (user_id, mode, captured_at) is unique, so
# captured_at alone orders without ties and the unique index delivers the rows sorted.
STATS_HISTORY = Prepared(
    "osutrack_stats_history_rows",
    f"SELECT {', '.join(sql for sql, _ in _STATS_COLUMNS)} FROM stats_snapshots"  # noqa: S608
    " WHERE user_id = $1 AND mode = $2 AND captured_at >= $3 AND captured_at <= $4"
    " ORDER BY captured_at",
)

STATS_HISTORY_VERSION = Prepared(
    "osutrack_stats_history_version", "SELECT " + READ_VERSION_OF.format("stats_snapshots")
)
# (read version, body, needs Python) of /stats_history.
STATS_HISTORY_BODY = Prepared(
    "osutrack_stats_history",
    json_body(
        "stats_snapshots",
        _STATS_COLUMNS,
        tuple(stat.name for stat in STATS if stat.kind is float),
        "user_id = $1 AND mode = $2 AND captured_at >= $3 AND captured_at <= $4"
        " ORDER BY captured_at",
    ),
)

HISCORE_KEYS = HISCORE_FIELDS
# A /hiscores row as printed.
_HISCORE_PRINTED = ", ".join(printed(name) for name in HISCORE_FIELDS)

USER_HISCORES = Prepared(
    "osutrack_user_hiscores_rows",
    f"SELECT {_HISCORE_PRINTED} FROM hiscores"  # noqa: S608
    " WHERE user_id = $1 AND mode = $2 AND score_time >= $3 AND score_time <= $4"
    " ORDER BY score_time, score_id",
)

USER_HISCORES_VERSION = Prepared(
    "osutrack_user_hiscores_version", "SELECT " + READ_VERSION_OF.format("hiscores")
)
# (read version, body, needs Python) of /hiscores.
USER_HISCORES_BODY = Prepared(
    "osutrack_user_hiscores",
    json_body(
        "hiscores",
        tuple((printed(name), name) for name in HISCORE_FIELDS),
        tuple(play.name for play in PLAY_COLUMNS if play.kind is float),
        "user_id = $1 AND mode = $2 AND score_time >= $3 AND score_time <= $4"
        " ORDER BY score_time, score_id",
    ),
)

USER_ID_BY_NAME = Prepared(
    "osutrack_user_id_by_name",
    "SELECT user_id FROM tracked_users WHERE lower(username) = lower($1::text)"
    " ORDER BY last_updated_at DESC LIMIT 1",
)

_PEAK_COLUMNS = (
    ("best_global_rank", "best_global_rank"),
    (TO_CHAR.format("best_rank_at"), "best_rank_timestamp"),
    ("best_accuracy", "best_accuracy"),
    (TO_CHAR.format("best_acc_at"), "best_acc_timestamp"),
)
PEAK_KEYS = tuple(key for _, key in _PEAK_COLUMNS)

PEAK = Prepared(
    "osutrack_peak_rows",
    f"SELECT {', '.join(sql for sql, _ in _PEAK_COLUMNS)} FROM peaks"  # noqa: S608
    " WHERE user_id = $1 AND mode = $2",
)

PEAK_VERSION = Prepared("osutrack_peak_version", "SELECT " + READ_VERSION_OF.format("peaks"))
# (read version, body, needs Python) of /peak; the body of a player without peaks is
# `[]` here (the caller answers NO_PEAK).
PEAK_BODY = Prepared(
    "osutrack_peak",
    json_body(
        "peaks",
        _PEAK_COLUMNS,
        ("best_accuracy",),
        "user_id = $1 AND mode = $2",
    ),
)

BEST_PLAY_KEYS = BEST_PLAY_FIELDS
# One /bestplays object, built by Postgres from a play row: `FROM <plays> CROSS JOIN
# {_BEST_PLAY_OBJECT}` (LEFT JOIN ... ON true), then `row_to_json(p)` prints it as the
# response does: keys in BEST_PLAY_KEYS order (the player's id, then the /hiscores row),
# no spaces, times by TO_CHAR, numbers as Postgres prints them (the shortest text that
# reads back as the same double, whole numbers without `.0`, as the original's
# JSON.stringify). The subquery has no FROM: its columns are the play row's.
_BEST_PLAY_OBJECT = (
    'LATERAL (SELECT user_id AS "user", '
    + ", ".join(f"{printed(name)} AS {name}" for name in HISCORE_FIELDS)
    + ") AS p"
)
# The body of the plays `top` joined with `_BEST_PLAY_OBJECT`: a JSON array in /bestplays
# order (`[]` for none), one text value assembled by Postgres.
_BEST_PLAYS_ARRAY = (
    "coalesce('[' || string_agg(row_to_json(p)::text, ','"
    " ORDER BY top.pp DESC, top.score_time, top.score_id) || ']', '[]')"
)

BESTPLAYS_STAMP = Prepared(
    "osutrack_bestplays_stamp",
    "SELECT refreshed_at FROM bestplays_refreshes WHERE mode = $1",
)

# The refresh row and the table in one statement, so both come from the same rebuild.
# Columns: refreshed_at, row_count, table_size, score_time (raw, for windows), then the
# play's /bestplays object as JSON text; a mode whose table is empty gives one row whose
# score_time is NULL.
BESTPLAYS_TABLE = Prepared(
    "osutrack_bestplays_table",
    "SELECT r.refreshed_at, r.row_count, r.table_size, b.score_time, row_to_json(p)::text"  # noqa: S608
    " FROM bestplays_refreshes r LEFT JOIN bestplays b ON b.mode = r.mode"
    f" LEFT JOIN {_BEST_PLAY_OBJECT} ON true"
    " WHERE r.mode = $1 ORDER BY b.position",
)

# A score time as whole microseconds since 1970 (an int: cheaper to send and compare
# than a timestamp, and as exact).
_MICROS = "(extract(epoch FROM {}) * 1000000)::bigint"
_PLAY_COLUMNS = column_list(PLAY_FIELDS)

# The body of the top `limit` hiscores of a mode inside a window, from all hiscores
# (before any rebuild, or while month lists are missing): one row, one JSON text. Both
# candidate indexes cover every column here (migration 0003), so the plan reads index
# entries only: hiscores_mode_pp_cover walked by pp with the window as a filter (a window
# holding much of the mode), or hiscores_mode_time_cover over the window then a top-N
# sort (a narrow one). Times are printed and the body assembled outside the LIMIT, for
# the winners only: printed inside, to_char ran for every row the sort read (about half
# the cost of a month at 20 M hiscores). Planned per call (plain text, not PREPAREd),
# since the better plan depends on the window. Parameters: mode, start, end, limit.
BEST_PLAYS_LIVE = (
    # Constant text (column names, formats); every value is bound.
    f"SELECT {_BEST_PLAYS_ARRAY}"  # noqa: S608
    + f" FROM (SELECT {_PLAY_COLUMNS} FROM hiscores"  # noqa: S608
    " WHERE mode = %s AND score_time >= %s AND score_time <= %s"
    f" ORDER BY pp DESC, score_time, score_id LIMIT %s) AS top CROSS JOIN {_BEST_PLAY_OBJECT}"
)


# The months of a mode that hold plays (first and last, from hiscores_mode_time_cover), and
# each built month list between $2 and $3 (month starts) with its last row's sort key
# (pp, score time in microseconds since 1970, score id):
# what `api_shim.windows.plan_window` needs. One row per list; a mode without lists in the
# range gives one row of NULL list columns, a mode without plays NULL months too.
class MonthListRow(NamedTuple):
    """A row of BESTPLAYS_MONTHS: the mode's span of months with plays, and one built
    list with its last row's sort key. The list's columns are NULL together with `month`
    (no list in range), the last row's together with `last_pp` (an empty list)."""

    first: datetime | None
    last: datetime | None
    month: datetime | None
    row_count: int
    list_size: int
    last_pp: float | None
    last_score_micros: int
    last_score_id: int


BESTPLAYS_MONTHS = Prepared(
    "osutrack_bestplays_months",
    "WITH span AS (SELECT date_trunc('month', min(score_time), 'UTC') AS first,"
    " date_trunc('month', max(score_time), 'UTC') AS last FROM hiscores WHERE mode = $1)"
    " SELECT span.first, span.last, l.month, l.row_count, l.list_size,"
    " l.last_pp, (extract(epoch FROM l.last_score_time) * 1000000)::bigint, l.last_score_id"
    " FROM span LEFT JOIN bestplays_month_lists l ON l.mode = $1"
    " AND l.month >= greatest(span.first, $2) AND l.month <= least(span.last, $3)",
)

# Ranks of a month list whose pp bounds the merge (`osutrack.month_lists`).
SKETCH_POSITIONS = month_lists.SKETCH_POSITIONS


def merge_sql(exact_count: int) -> str:
    """The text of `bestplays_window` with `exact_count` exact parts (named parameters,
    `merge_params`)."""
    exact_branches = "".join(
        # Constant text (column names and placeholders); every value is bound.
        f" UNION ALL (SELECT {_PLAY_COLUMNS} FROM hiscores"  # noqa: S608
        f" WHERE mode = %(mode)s AND score_time >= %(exact_{part}_start)s"
        f" AND score_time <= %(exact_{part}_end)s"
        " ORDER BY pp DESC, score_time, score_id LIMIT %(limit)s)"
        for part in range(exact_count)
    )
    listed_columns = column_list(PLAY_FIELDS, "b")
    return (
        "WITH full_months AS (SELECT unnest(%(full_months)s::timestamptz[]) AS month),"  # noqa: S608
        " points AS ("
        " SELECT l.month, s.position, s.pp,"
        " s.position - coalesce(lag(s.position) OVER (PARTITION BY l.month"
        " ORDER BY s.position), 0) AS gain"
        " FROM full_months f JOIN bestplays_month_lists l"
        " ON l.mode = %(mode)s AND l.month = f.month"
        " CROSS JOIN LATERAL unnest(%(all_sketch)s::int[], l.sketch_pp) AS s(position, pp)"
        " WHERE s.pp IS NOT NULL AND s.position <= %(limit)s),"
        " ranked AS ("
        " SELECT pp, sum(gain) OVER (ORDER BY pp DESC ROWS BETWEEN UNBOUNDED PRECEDING"
        " AND 1 PRECEDING) AS before, sum(gain) OVER () AS total FROM points),"
        " cut AS (SELECT coalesce((SELECT min(pp) FROM ranked"
        " WHERE coalesce(before, 0) < %(limit)s AND total >= %(limit)s),"
        " '-Infinity'::double precision) AS pp),"
        " parts AS (SELECT * FROM unnest(%(part_months)s::timestamptz[],"
        " %(part_starts)s::timestamptz[], %(part_ends)s::timestamptz[]) AS r(month, lo, hi)),"
        " candidates AS ("
        f" SELECT {listed_columns}"
        " FROM full_months f CROSS JOIN cut CROSS JOIN LATERAL ("
        " SELECT * FROM bestplays_months b WHERE b.mode = %(mode)s AND b.month = f.month"
        " AND b.pp >= cut.pp ORDER BY b.pp DESC, b.score_time, b.score_id"
        " LIMIT %(limit)s) AS b"
        " UNION ALL"
        f" SELECT {listed_columns}"
        " FROM parts r CROSS JOIN cut CROSS JOIN LATERAL ("
        " SELECT * FROM bestplays_months b WHERE b.mode = %(mode)s AND b.month = r.month"
        " AND b.score_time >= r.lo AND b.score_time <= r.hi AND b.pp >= cut.pp"
        " ORDER BY b.pp DESC, b.score_time, b.score_id LIMIT %(limit)s) AS b"
        f"{exact_branches}),"
        " top AS (SELECT * FROM candidates ORDER BY pp DESC, score_time, score_id"
        " LIMIT %(limit)s),"
        " last AS (SELECT pp, "
        + _MICROS.format("score_time")
        + " AS score_micros, score_id FROM top"  # noqa: S608
        " ORDER BY pp, score_time DESC, score_id DESC LIMIT 1)"
        " SELECT answer.plays, answer.body, last.pp, last.score_micros, last.score_id"
        f" FROM (SELECT count(*) AS plays, {_BEST_PLAYS_ARRAY} AS body"
        f" FROM top CROSS JOIN {_BEST_PLAY_OBJECT}) AS answer LEFT JOIN last ON true"
    )


def merge_params(mode: int, limit: int, plan: MonthsPlan) -> dict[str, Any]:
    """The parameters of `merge_sql(len(plan.exact_parts))`, by name."""
    params: dict[str, Any] = {
        "mode": mode,
        "limit": limit,
        "full_months": list(plan.full_months),
        "all_sketch": list(SKETCH_POSITIONS),
        "part_months": [month for month, _, _ in plan.list_parts],
        "part_starts": [lo for _, lo, _ in plan.list_parts],
        "part_ends": [hi for _, _, hi in plan.list_parts],
    }
    for part, (lo, hi) in enumerate(plan.exact_parts):
        params[f"exact_{part}_start"] = lo
        params[f"exact_{part}_end"] = hi
    return params


_NAMED = re.compile(r"%\((\w+)\)s")


def _parameter_order(sql: str) -> tuple[str, ...]:
    """The distinct named parameters of `sql`, in order of first use (`_numbered`'s $n)."""
    return tuple(dict.fromkeys(_NAMED.findall(sql)))


def _numbered(sql: str) -> str:
    """`%(name)s` placeholders as `$1`, `$2`, ... by `_parameter_order` (for PREPARE)."""
    number = {name: n for n, name in enumerate(_parameter_order(sql), start=1)}
    return _NAMED.sub(lambda match: f"${number[match.group(1)]}", sql)


def as_positional(sql: str, params: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """`sql` with `%s` placeholders, and its named `params` in their order."""
    return _NAMED.sub("%s", sql), tuple(params[name] for name in _NAMED.findall(sql))


# The merge without exact parts (most light windows), PREPAREd once per connection: its
# plan is the same nested index scans whatever the months, and planning the statement
# cost more than running it for a small limit.
_MERGE_LISTS_ONLY = Prepared(
    "osutrack_bestplays_merge",
    _numbered(merge_sql(0)),
)
_MERGE_LISTS_ONLY_PARAMETERS = _parameter_order(merge_sql(0))


def bestplays_window(
    mode: int, limit: int, plan: MonthsPlan
) -> tuple[str | Prepared, tuple[Any, ...]]:
    """The statement (and its parameters) answering a window from month lists and exact
    parts, as `plan` splits it (`api_shim.windows`).

    One row: the number of plays, the body (JSON text, `_BEST_PLAYS_ARRAY`), then the last
    play's pp, score time in microseconds and score_id (NULL without plays): its sort key,
    for the caller's exactness check (`windows.answer_is_exact`). Exact parts are inlined
    as one branch each with their own bounds, so the planner picks each one's plan (a time
    range and a top-N sort) from its size.

    Cost: `cut` is the pp above which the full months' lists are sure to hold `limit`
    plays, read from each list's SKETCH_POSITIONS (a play at position p guarantees p plays
    at or above its pp; the running sum over all months in pp order reaches `limit` at
    `cut`). Each full month then gives only its rows at or above `cut`, a prefix of its
    list read in /bestplays order from `bestplays_months_ranked`: about `limit` rows in
    all, however many months. A partial month's list is read in order until `limit` of its
    rows fall inside the window. Times are printed, and the body assembled, for the
    `limit` winners only. Each per-month subquery has its own LIMIT, which keeps it a
    separate, parameterized index scan (not flattened into a join planned from the
    table's statistics, which are stale right after a large build).
    """
    params = merge_params(mode, limit, plan)
    if not plan.exact_parts:
        return _MERGE_LISTS_ONLY, tuple(params[name] for name in _MERGE_LISTS_ONLY_PARAMETERS)
    return as_positional(merge_sql(len(plan.exact_parts)), params)
