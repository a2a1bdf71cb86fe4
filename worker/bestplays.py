"""The precomputed /bestplays table: the top plays by pp of each mode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from osutrack.fields import PLAY_FIELDS, column_list, upsert_changed
from osutrack.month_lists import SKETCH_POSITIONS
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
# full holds every play of its month, so any change ranks it again. Each target month is
# ranked from `hiscores_mode_time_cover` (the month's plays, then a top-N sort). List rows
# are keyed by play, with no stored rank: the new ranking is compared with the stored
# list in one join (`moved`), and only plays that entered the list are inserted, plays
# whose columns changed updated, and plays that left it deleted; a play that stays is
# not written, however far the plays above it moved. Each list's row keeps its last
# play's sort key and its sketch (the pp at SKETCH_POSITIONS). A month left without plays
# keeps an empty list row (built, nothing in it). Month arithmetic is done in UTC,
# whatever the session's time zone.
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
            SELECT 1 FROM bestplays_month_lists l
            WHERE l.mode = :mode AND l.month = c.month AND l.row_count = l.list_size
              AND c.max_pp < l.last_pp
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
        SELECT t.month, h.place, h.plays, """  # noqa: S608
    + column_list(PLAY_FIELDS, "h")
    + """
        FROM targets t
        CROSS JOIN LATERAL (
            SELECT row_number() OVER (ORDER BY pp DESC, score_time, score_id)::int AS place,
                   count(*) OVER ()::int AS plays, """
    + _PLAYS
    + """
            FROM (SELECT """
    + _PLAYS
    + """
                  FROM hiscores
                  WHERE mode = :mode AND score_time >= t.month
                    AND score_time < (t.month AT TIME ZONE 'UTC' + interval '1 month')
                                     AT TIME ZONE 'UTC'
                  ORDER BY pp DESC, score_time, score_id LIMIT :size) AS top
        ) AS h
    ),
    summaries AS (
        SELECT t.month, coalesce(max(f.plays), 0) AS row_count,
               max(f.pp) FILTER (WHERE f.place = f.plays) AS last_pp,
               max(f.score_time) FILTER (WHERE f.place = f.plays) AS last_score_time,
               max(f.score_id) FILTER (WHERE f.place = f.plays) AS last_score_id,
               coalesce(array_agg(f.pp ORDER BY f.place)
                        FILTER (WHERE f.place = ANY(CAST(:sketch AS int[]))),
                        '{}') AS sketch_pp
        FROM targets t
        LEFT JOIN (SELECT * FROM fresh
                   WHERE place = plays OR place = ANY(CAST(:sketch AS int[]))) AS f
          ON f.month = t.month
        GROUP BY t.month
    ),
    stored AS (
        SELECT b.* FROM targets t
        JOIN bestplays_months b ON b.mode = :mode AND b.month = t.month
    ),
    moved AS (
        SELECT f.month AS fresh_month, s.month AS stored_month, s.score_id AS stored_score_id, """
    + column_list(PLAY_FIELDS, "f")
    + """
        FROM fresh f FULL JOIN stored s ON s.month = f.month AND s.score_id = f.score_id
        WHERE f.month IS NULL OR s.month IS NULL
           OR ("""
    + column_list(PLAY_FIELDS, "f")
    + """) IS DISTINCT FROM ("""
    + column_list(PLAY_FIELDS, "s")
    + """)
    ),
    written AS (
        INSERT INTO bestplays_months AS b (mode, month, """
    + _PLAYS
    + """)
        SELECT :mode, fresh_month, """
    + _PLAYS
    + """
        FROM moved WHERE fresh_month IS NOT NULL
        """
    + upsert_changed("b", ("mode", "month", "score_id"), PLAY_FIELDS)
    + """
        RETURNING 1
    ),
    removed AS (
        DELETE FROM bestplays_months b USING moved m
        WHERE m.fresh_month IS NULL
          AND b.mode = :mode AND b.month = m.stored_month AND b.score_id = m.stored_score_id
        RETURNING 1
    ),
    listed AS (
        INSERT INTO bestplays_month_lists AS l (mode, month, built_at, row_count, list_size,
                                                last_pp, last_score_time, last_score_id,
                                                sketch_pp)
        SELECT :mode, month, :now, row_count, :size, last_pp, last_score_time, last_score_id,
               sketch_pp
        FROM summaries
        ON CONFLICT (mode, month) DO UPDATE SET
            built_at = excluded.built_at, row_count = excluded.row_count,
            list_size = excluded.list_size, last_pp = excluded.last_pp,
            last_score_time = excluded.last_score_time,
            last_score_id = excluded.last_score_id, sketch_pp = excluded.sketch_pp
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM summaries), (SELECT count(*) FROM written),
           (SELECT count(*) FROM removed), (SELECT count(*) FROM listed)
    """
)
_REBUILD_MONTHS = text(_REBUILD_MONTHS_SQL)


@dataclass(frozen=True)
class MonthListsRebuild:
    """What one rebuild of the month lists did: months rebuilt, list rows written (plays
    that entered a list or changed) and removed (plays that left one)."""

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
    enter, leave or move within is not ranked again. Writes are the plays that entered,
    changed in or left a list, not the plays below them. A play that left hiscores (a deleted
    user) or changed pp leaves or moves in its month's list at the next run. Readers see
    the old or the new lists (one statement, MVCC) and wait for no lock; until the next
    run a list is the month as of the previous one.
    """
    counts = session.execute(
        _REBUILD_MONTHS,
        {
            "mode": mode,
            "size": list_size,
            "now": now,
            "max_new": max_new_months,
            "sketch": list(SKETCH_POSITIONS),
        },
    ).one()
    return MonthListsRebuild(months=int(counts[0]), written=int(counts[1]), removed=int(counts[2]))
