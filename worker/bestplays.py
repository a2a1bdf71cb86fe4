"""The precomputed /bestplays table: the top plays by pp of each mode."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from osutrack.schema import bestplays_refreshes

MODES = (0, 1, 2, 3)


# One statement: rank the mode's top `size` hiscores (one walk of `hiscores_mode_pp_cover`, so
# the cost does not grow with the number of hiscores), upsert each position but write it
# only when its play differs from the stored one, and drop positions past the new end.
# The upsert touches positions 1..n and the delete positions > n, so they never meet.
_REFRESH = text(
    """
    WITH fresh AS (
        SELECT row_number() OVER (ORDER BY pp DESC, score_time, score_id)::int AS position,
               score_id, user_id, beatmap_id, score, pp, mods, rank, score_time, update_time
        FROM (SELECT score_id, user_id, beatmap_id, score, pp, mods, rank, score_time,
                     update_time
              FROM hiscores WHERE mode = :mode
              ORDER BY pp DESC, score_time, score_id LIMIT :size) AS top
    ),
    written AS (
        INSERT INTO bestplays AS b (mode, position, score_id, user_id, beatmap_id, score, pp,
                                    mods, rank, score_time, update_time)
        SELECT :mode, position, score_id, user_id, beatmap_id, score, pp, mods, rank,
               score_time, update_time
        FROM fresh
        ON CONFLICT (mode, position) DO UPDATE SET
            score_id = excluded.score_id, user_id = excluded.user_id,
            beatmap_id = excluded.beatmap_id, score = excluded.score, pp = excluded.pp,
            mods = excluded.mods, rank = excluded.rank, score_time = excluded.score_time,
            update_time = excluded.update_time
        WHERE (b.score_id, b.user_id, b.beatmap_id, b.score, b.pp, b.mods, b.rank,
               b.score_time, b.update_time)
              IS DISTINCT FROM
              (excluded.score_id, excluded.user_id, excluded.beatmap_id, excluded.score,
               excluded.pp, excluded.mods, excluded.rank, excluded.score_time,
               excluded.update_time)
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


def refresh_bestplays(session: Session, mode: int, table_size: int, now: datetime) -> int:
    """Bring one mode's bestplays table up to date in the caller's transaction; return its
    row count.

    Order: pp descending, ties by score time then score id (stable across refreshes). Only
    positions whose play changed are written (`_REFRESH`): a refresh after a few new plays
    rewrites the positions at and below where they entered, one with nothing new writes
    no row of the table. It commits with the caller's transaction, so readers see either
    the old or the new table, and it takes no lock a reader waits for.
    """
    counts = session.execute(_REFRESH, {"mode": mode, "size": table_size}).one()
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
