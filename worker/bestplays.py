"""The precomputed /bestplays table: the top plays by pp of each mode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from osutrack.fields import PLAY_FIELDS, column_list, upsert_changed
from osutrack.schema import bestplays_refreshes

MODES = (0, 1, 2, 3)


# One statement: rank the mode's top `size` hiscores (one walk of `hiscores_mode_pp_cover`, so
# the cost does not grow with the number of hiscores), upsert each position but write it
# only when its play differs from the stored one, and drop positions past the new end.
# The upsert touches positions 1..n and the delete positions > n, so they never meet.
_PLAYS = column_list(PLAY_FIELDS)
_REBUILD_SQL = (
    """
    WITH fresh AS (
        SELECT row_number() OVER (ORDER BY pp DESC, score_time, score_id)::int AS position,
               """  # noqa: S608
    + _PLAYS
    + """
        FROM (SELECT """
    + _PLAYS
    + """
              FROM hiscores WHERE mode = :mode
              ORDER BY pp DESC, score_time, score_id LIMIT :size) AS top
    ),
    written AS (
        INSERT INTO bestplays AS b (mode, position, """
    + _PLAYS
    + """)
        SELECT :mode, position, """
    + _PLAYS
    + """
        FROM fresh
        """
    + upsert_changed("b", ("mode", "position"), PLAY_FIELDS)
    + """
        RETURNING 1
    ),
    removed AS (
        DELETE FROM bestplays
        WHERE mode = :mode AND position > (SELECT count(*) FROM fresh)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM fresh), (SELECT count(*) FROM written),
           (SELECT count(*) FROM removed)
    """
)
_REBUILD = text(_REBUILD_SQL)


def rebuild_bestplays(session: Session, mode: int, table_size: int, now: datetime) -> int:
    """Bring one mode's bestplays table up to date in the caller's transaction; return its
    row count.

    Order: pp descending, ties by score time then score id (stable across rebuilds). Only
    positions whose play changed are written (`_REBUILD`): a rebuild after a few new plays
    rewrites the positions at and below where they entered, one with nothing new writes
    no row of the table. It commits with the caller's transaction, so readers see either
    the old or the new table, and it takes no lock a reader waits for.
    """
    counts = session.execute(_REBUILD, {"mode": mode, "size": table_size}).one()
    row_count = int(counts[0])
    upsert = insert(bestplays_refreshes).values(
        mode=mode, refreshed_at=now, row_count=row_count, table_size=table_size
    )
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=[bestplays_refreshes.c.mode],
            set_={
                "refreshed_at": upsert.excluded.refreshed_at,
                "row_count": upsert.excluded.row_count,
                "table_size": upsert.excluded.table_size,
            },
        )
    )
    return row_count


# Months with no list yet that one rebuild builds at most (newest first): the first build
# of a large database is spread over a few runs, each a bounded transaction, and readers
# answer a month without a list from hiscores until then.
MONTHS_BUILT_PER_REBUILD = 24

# One statement, so one snapshot: it consumes the change-log rows that snapshot sees and
# rebuilds their months from hiscores as that same snapshot sees them, so a change whose
# writer commits later keeps its log row for the next run (`bestplays_month_changes`).
# Targets: months with logged changes, plus months inside the mode's span of score times
# that have no list yet. A changed month is skipped (its log rows still consumed) when its
# list is full and every changed row, before and after the change, has pp strictly below
# the list's last play. That is exact: the list is the month's top `list_size` as of the
# run that last ranked it (a skipped run leaves it so, by this same argument), and since
# then no row with pp >= the last play's was added, removed or altered: the listed rows
# are unchanged and still outrank every other row of the month. An equal pp must rank
# again (ties go by score time and id, a new tie could come first). A list that is not
# full holds every play of its month, so any change ranks it again. The last play is one
# primary-key lookup per changed month. Each target month is ranked from
# `hiscores_mode_time_cover` (the month's plays, then a top-N sort); like the table, only
# positions whose play changed are written and positions past the new end deleted. A
# month left without plays keeps an empty list row (built, nothing in it). Month
# arithmetic is done in UTC, whatever the session's time zone.
_REBUILD_MONTHS_SQL = (
    """
    WITH changed AS (
        DELETE FROM bestplays_month_changes WHERE mode = :mode RETURNING month, max_pp
    ),
    changed_months AS (
        SELECT month, max(max_pp) AS max_pp FROM changed GROUP BY month
    ),
    ranked_again AS (
        SELECT c.month FROM changed_months c
        WHERE NOT EXISTS (
            SELECT 1
            FROM bestplays_month_lists l
            JOIN bestplays_months last
              ON last.mode = l.mode AND last.month = l.month AND last.position = l.row_count
            WHERE l.mode = :mode AND l.month = c.month AND l.row_count = l.list_size
              AND c.max_pp < last.pp
        )
    ),
    span AS (
        SELECT date_trunc('month', min(score_time), 'UTC') AS first,
               date_trunc('month', max(score_time), 'UTC') AS last
        FROM hiscores WHERE mode = :mode
    ),
    unbuilt AS (
        SELECT g.local AT TIME ZONE 'UTC' AS month
        FROM span, generate_series(span.first AT TIME ZONE 'UTC', span.last AT TIME ZONE 'UTC',
                                   interval '1 month') AS g(local)
        WHERE NOT EXISTS (SELECT 1 FROM bestplays_month_lists l
                          WHERE l.mode = :mode AND l.month = g.local AT TIME ZONE 'UTC')
        ORDER BY 1 DESC
        LIMIT :max_new
    ),
    targets AS (
        SELECT month FROM ranked_again UNION SELECT month FROM unbuilt
    ),
    fresh AS (
        SELECT t.month,
               row_number() OVER (PARTITION BY t.month
                                  ORDER BY h.pp DESC, h.score_time, h.score_id)::int AS position,
               """  # noqa: S608
    + column_list(PLAY_FIELDS, "h")
    + """
        FROM targets t
        CROSS JOIN LATERAL (
            SELECT """
    + _PLAYS
    + """
            FROM hiscores
            WHERE mode = :mode AND score_time >= t.month
              AND score_time < (t.month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC'
            ORDER BY pp DESC, score_time, score_id LIMIT :size
        ) AS h
    ),
    counts AS (
        SELECT t.month, count(f.position)::int AS row_count
        FROM targets t LEFT JOIN fresh f ON f.month = t.month
        GROUP BY t.month
    ),
    written AS (
        INSERT INTO bestplays_months AS b (mode, month, position, """
    + _PLAYS
    + """)
        SELECT :mode, month, position, """
    + _PLAYS
    + """
        FROM fresh
        """
    + upsert_changed("b", ("mode", "month", "position"), PLAY_FIELDS)
    + """
        RETURNING 1
    ),
    removed AS (
        DELETE FROM bestplays_months b USING counts c
        WHERE b.mode = :mode AND b.month = c.month AND b.position > c.row_count
        RETURNING 1
    ),
    listed AS (
        INSERT INTO bestplays_month_lists AS l (mode, month, built_at, row_count, list_size)
        SELECT :mode, month, :now, row_count, :size FROM counts
        ON CONFLICT (mode, month) DO UPDATE SET
            built_at = excluded.built_at, row_count = excluded.row_count,
            list_size = excluded.list_size
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM counts), (SELECT count(*) FROM written),
           (SELECT count(*) FROM removed), (SELECT count(*) FROM listed)
    """
)
_REBUILD_MONTHS = text(_REBUILD_MONTHS_SQL)


@dataclass(frozen=True)
class MonthListsRebuild:
    """What one rebuild of the month lists did: months rebuilt, list rows written/removed."""

    months: int
    written: int
    removed: int


def rebuild_month_lists(
    session: Session,
    mode: int,
    list_size: int,
    now: datetime,
    max_new_months: int = MONTHS_BUILT_PER_REBUILD,
) -> MonthListsRebuild:
    """Rebuild the month lists of one mode that changed or were never built, in the
    caller's transaction.

    Cost is proportional to what changed: only months whose hiscores were inserted,
    updated (pp) or deleted since the last run (the trigger log), plus at most
    `max_new_months` never-built months, are ranked again, each one from its own month of
    score times; a full list that no changed play (pp strictly below its last play's) can
    enter, leave or move within is not ranked again. A play that left hiscores (a deleted
    user) or changed pp leaves or moves in its month's list at the next run. Readers see
    the old or the new lists (one statement, MVCC) and wait for no lock; until the next
    run a list is the month as of the previous one.
    """
    counts = session.execute(
        _REBUILD_MONTHS,
        {"mode": mode, "size": list_size, "now": now, "max_new": max_new_months},
    ).one()
    return MonthListsRebuild(months=int(counts[0]), written=int(counts[1]), removed=int(counts[2]))
