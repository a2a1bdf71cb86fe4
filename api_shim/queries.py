"""The SQL of the read endpoints: constant text, bound parameters only.

Timestamps are printed by Postgres as the original API printed them (`iso_z`: UTC, whole
seconds truncated, `.000Z`), and BIGINT scores that the original sent as strings are cast
to text there too, so a row needs no per-value conversion in Python. An open end of a
date window is bound as `-infinity` / `infinity`, so one statement serves every window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api_shim.params import DateWindow
from api_shim.read_connections import Prepared
from api_shim.windows import MonthsPlan


def window_bounds(window: DateWindow) -> tuple[datetime | str, datetime | str]:
    """The inclusive bounds to bind for `window`, open ends as (-)infinity."""
    start: datetime | str = "-infinity" if window.start is None else window.start
    end: datetime | str = "infinity" if window.end is None else window.end
    return start, end


SNAPSHOT_KEYS = (
    "count300",
    "count100",
    "count50",
    "playcount",
    "ranked_score",
    "total_score",
    "pp_rank",
    "level",
    "pp_raw",
    "accuracy",
    "count_rank_ss",
    "count_rank_s",
    "count_rank_a",
    "timestamp",
)

# (user_id, mode, captured_at) is unique, so captured_at alone orders without ties and
# the unique index delivers the rows already sorted.
STATS_HISTORY = Prepared(
    "osutrack_stats_history",
    "SELECT count300, count100, count50, playcount, ranked_score::text, total_score::text,"
    " pp_rank, level, pp_raw, accuracy, count_rank_ss, count_rank_s, count_rank_a, "
    "to_char(captured_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    " FROM stats_snapshots"
    " WHERE user_id = $1 AND mode = $2 AND captured_at >= $3 AND captured_at <= $4"
    " ORDER BY captured_at",
)

HISCORE_KEYS = ("beatmap_id", "score", "pp", "mods", "rank", "score_time", "update_time")

USER_HISCORES = Prepared(
    "osutrack_user_hiscores",
    "SELECT beatmap_id, score, pp, mods, rank, "
    "to_char(score_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    ", "
    "to_char(update_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    " FROM hiscores"
    " WHERE user_id = $1 AND mode = $2 AND score_time >= $3 AND score_time <= $4"
    " ORDER BY score_time, score_id",
)

USER_ID_BY_NAME = Prepared(
    "osutrack_user_id_by_name",
    "SELECT user_id FROM tracked_users WHERE lower(username) = lower($1::text)"
    " ORDER BY last_updated_at DESC LIMIT 1",
)

PEAK_KEYS = ("best_global_rank", "best_rank_timestamp", "best_accuracy", "best_acc_timestamp")

PEAK = Prepared(
    "osutrack_peak",
    "SELECT best_global_rank, "
    "to_char(best_rank_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    ", best_accuracy, "
    "to_char(best_acc_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    " FROM peaks WHERE user_id = $1 AND mode = $2",
)

BEST_PLAY_KEYS = (
    "user",
    "beatmap_id",
    "score",
    "pp",
    "mods",
    "rank",
    "score_time",
    "update_time",
)

BESTPLAYS_STAMP = Prepared(
    "osutrack_bestplays_stamp",
    "SELECT refreshed_at FROM bestplays_refreshes WHERE mode = $1",
)

# The refresh row and the table in one statement, so both come from the same rebuild.
# Columns: refreshed_at, row_count, table_size, score_time (raw, for windows), then the
# BEST_PLAY_KEYS values; a mode whose table is empty gives one row of NULL plays.
BESTPLAYS_TABLE = Prepared(
    "osutrack_bestplays_table",
    "SELECT r.refreshed_at, r.row_count, r.table_size, b.score_time,"
    " b.user_id, b.beatmap_id, b.score, b.pp, b.mods, b.rank, "
    "to_char(b.score_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    ", "
    "to_char(b.update_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    " FROM bestplays_refreshes r LEFT JOIN bestplays b ON b.mode = r.mode"
    " WHERE r.mode = $1 ORDER BY b.position",
)

# A score time as whole microseconds since 1970 (an int: cheaper to send and compare
# than a timestamp, and as exact).
_MICROS = "(extract(epoch FROM {}) * 1000000)::bigint"
_TO_CHAR = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
_PLAY_COLUMNS = "score_id, user_id, beatmap_id, score, pp, mods, rank, score_time, update_time"

# The top `limit` hiscores of a mode inside a window, from all hiscores (before any
# rebuild, or while month lists are missing). Both candidate indexes cover every column
# here (migration 0003), so the plan reads index entries only: hiscores_mode_pp_cover
# walked by pp with the window as a filter (a window holding much of the mode), or
# hiscores_mode_time_cover over the window then a top-N sort (a narrow one). Times are
# printed outside the LIMIT, for the winners only: printed inside, to_char ran for every
# row the sort read (about half the cost of a month at 20 M hiscores). Planned per call
# (plain text, not PREPAREd), since the better plan depends on the window. Parameters:
# mode, start, end, limit.
BEST_PLAYS_LIVE = (
    # Constant text (column names, formats); every value is bound.
    "SELECT user_id, beatmap_id, score, pp, mods, rank, "  # noqa: S608
    + _TO_CHAR.format("score_time")
    + ", "
    + _TO_CHAR.format("update_time")
    + f" FROM (SELECT {_PLAY_COLUMNS} FROM hiscores"  # noqa: S608
    " WHERE mode = %s AND score_time >= %s AND score_time <= %s"
    " ORDER BY pp DESC, score_time, score_id LIMIT %s) AS top"
    " ORDER BY pp DESC, score_time, score_id"
)

# The months of a mode that hold plays (first and last, from hiscores_mode_time_cover), and
# each built month list between $2 and $3 (month starts) with its last row's sort key
# (pp, score time in microseconds since 1970, score id):
# what `api_shim.windows.plan_window` needs. One row per list; a mode without lists in the
# range gives one row of NULL list columns, a mode without plays NULL months too.
BESTPLAYS_MONTHS = Prepared(
    "osutrack_bestplays_months",
    "WITH span AS (SELECT date_trunc('month', min(score_time), 'UTC') AS first,"
    " date_trunc('month', max(score_time), 'UTC') AS last FROM hiscores WHERE mode = $1)"
    " SELECT span.first, span.last, l.month, l.row_count, l.list_size,"
    " b.pp, (extract(epoch FROM b.score_time) * 1000000)::bigint, b.score_id"
    " FROM span LEFT JOIN bestplays_month_lists l ON l.mode = $1"
    " AND l.month >= greatest(span.first, $2) AND l.month <= least(span.last, $3)"
    " LEFT JOIN bestplays_months b ON b.mode = l.mode AND b.month = l.month"
    " AND b.position = l.row_count",
)

# Positions of a month list whose pp bounds the merge (`bestplays_window_sql`): a play at
# position p guarantees p plays of its month at or above its pp. About 1.5x apart, so the
# rows a month contributes are overestimated by at most about half.
SKETCH_POSITIONS = (
    *(1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700),
    *(1000, 1500, 2000, 3000, 5000, 7000, 10000),
)


def merge_sql(exact_count: int) -> str:
    """The text of `bestplays_window` with `exact_count` exact parts (`%s` placeholders)."""
    exact_branches = "".join(
        # Constant text (column names and placeholders); every value is bound.
        f" UNION ALL (SELECT {_PLAY_COLUMNS} FROM hiscores"  # noqa: S608
        " WHERE mode = %s AND score_time >= %s AND score_time <= %s"
        " ORDER BY pp DESC, score_time, score_id LIMIT %s)"
        for _ in range(exact_count)
    )
    listed_columns = ", ".join(f"b.{name}" for name in _PLAY_COLUMNS.split(", "))
    return (
        "WITH full_months AS (SELECT unnest(%s::timestamptz[]) AS month),"  # noqa: S608
        " points AS ("
        " SELECT b.month, b.position, b.pp,"
        " b.position - coalesce(lag(b.position) OVER (PARTITION BY b.month"
        " ORDER BY b.position), 0) AS gain"
        " FROM full_months f CROSS JOIN LATERAL (SELECT month, position, pp"
        " FROM bestplays_months b WHERE b.mode = %s AND b.month = f.month"
        " AND b.position = ANY(%s::int[]) OFFSET 0) AS b),"
        " ranked AS ("
        " SELECT pp, sum(gain) OVER (ORDER BY pp DESC ROWS BETWEEN UNBOUNDED PRECEDING"
        " AND 1 PRECEDING) AS before, sum(gain) OVER () AS total FROM points),"
        " cut AS (SELECT coalesce((SELECT min(pp) FROM ranked"
        " WHERE coalesce(before, 0) < %s AND total >= %s),"
        " '-Infinity'::double precision) AS pp),"
        " full_stops AS ("
        " SELECT f.month, coalesce(min(p.position) FILTER (WHERE p.pp < cut.pp), %s + 1) AS stop"
        " FROM full_months f CROSS JOIN cut LEFT JOIN points p ON p.month = f.month"
        " GROUP BY f.month),"
        " part_stops AS ("
        " SELECT r.month, r.lo, r.hi, coalesce((SELECT min(s.position) FROM ("
        " SELECT s.position, s.pp FROM bestplays_months s WHERE s.mode = %s"
        " AND s.month = r.month AND s.position = ANY(%s::int[]) OFFSET 0) AS s"
        " WHERE s.pp < cut.pp), 2147483647) AS stop"
        " FROM unnest(%s::timestamptz[], %s::timestamptz[], %s::timestamptz[])"
        " AS r(month, lo, hi) CROSS JOIN cut),"
        " candidates AS ("
        f" SELECT {listed_columns}"
        " FROM full_stops f CROSS JOIN cut CROSS JOIN LATERAL ("
        " SELECT * FROM bestplays_months b WHERE b.mode = %s AND b.month = f.month"
        " AND b.position < f.stop AND b.pp >= cut.pp OFFSET 0) AS b"
        " UNION ALL"
        f" SELECT {listed_columns}"
        " FROM part_stops r CROSS JOIN cut CROSS JOIN LATERAL ("
        " SELECT * FROM bestplays_months b WHERE b.mode = %s AND b.month = r.month"
        " AND b.position < r.stop AND b.score_time >= r.lo AND b.score_time <= r.hi"
        " AND b.pp >= cut.pp ORDER BY b.position LIMIT %s) AS b"
        f"{exact_branches}),"
        " top AS (SELECT * FROM candidates ORDER BY pp DESC, score_time, score_id LIMIT %s)"
        " SELECT user_id, beatmap_id, score, pp, mods, rank, "
        + _TO_CHAR.format("score_time")
        + ", "
        + _TO_CHAR.format("update_time")
        + ", pp, "
        + _MICROS.format("score_time")
        + ", score_id FROM top ORDER BY pp DESC, score_time, score_id"
    )


def _numbered(sql: str) -> str:
    """`%s` placeholders as `$1`, `$2`, ... in order (for PREPARE)."""
    pieces = sql.split("%s")
    return "".join(f"{piece}${n}" for n, piece in enumerate(pieces[:-1], start=1)) + pieces[-1]


# The merge without exact parts (most light windows), PREPAREd once per connection: its
# plan is the same nested index scans whatever the months, and planning the statement
# cost more than running it for a small limit.
_MERGE_LISTS_ONLY = Prepared(
    "osutrack_bestplays_merge",
    _numbered(merge_sql(0)),
)


def bestplays_window(
    mode: int, limit: int, plan: MonthsPlan
) -> tuple[str | Prepared, tuple[Any, ...]]:
    """The statement (and its parameters) answering a window from month lists and exact
    parts, as `plan` splits it (`api_shim.windows`).

    Columns: BEST_PLAY_KEYS values (times printed), then pp, score time in microseconds
    and score_id: the sort key, for the caller's exactness check
    (`windows.answer_is_exact`). Exact parts are inlined
    as one branch each with their own bounds, so the planner picks each one's plan (a time
    range and a top-N sort) from its size.

    Cost: `cut` is the pp above which the full months' lists are sure to hold `limit`
    plays, read from each list's SKETCH_POSITIONS (a play at position p guarantees p plays
    at or above its pp; the running sum over all months in pp order reaches `limit` at
    `cut`). Each full month then gives only its rows above `cut`, a prefix of its list
    that stops at its first sketch position below `cut`: about `limit` rows in all,
    however many months. A partial month's list is read in order until `limit` of its
    rows fall inside the window. Times are printed for the `limit` winners only. `OFFSET 0`
    keeps each per-month subquery a separate, parameterized index scan on
    `bestplays_months_pkey` (mode, month, position): flattened into a join, it was planned
    from the table's statistics, which are stale right after a large build.
    """
    sql: str | Prepared = (
        _MERGE_LISTS_ONLY if not plan.exact_parts else merge_sql(len(plan.exact_parts))
    )
    months = [month for month, _, _ in plan.list_parts]
    starts = [lo for _, lo, _ in plan.list_parts]
    ends = [hi for _, _, hi in plan.list_parts]
    # A month gives at most `limit` rows, so positions past it never bound anything.
    sketch = [position for position in SKETCH_POSITIONS if position <= limit]
    args: list[Any] = [list(plan.full_months), mode, sketch, limit, limit, limit]
    args += [mode, list(SKETCH_POSITIONS), months, starts, ends, mode, mode, limit]
    for lo, hi in plan.exact_parts:
        args += [mode, lo, hi, limit]
    args.append(limit)
    return sql, tuple(args)
