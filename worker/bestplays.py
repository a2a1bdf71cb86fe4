"""The precomputed /bestplays table: the top plays by pp of each mode."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from osutrack.schema import bestplays, bestplays_refreshes, hiscores

MODES = (0, 1, 2, 3)


def refresh_bestplays(session: Session, mode: int, table_size: int, now: datetime) -> int:
    """Rebuild one mode's bestplays table in the caller's transaction; return its row count.

    Order: pp descending, ties by score time then score id (stable across refreshes). The
    delete and insert commit together, so readers see either the old or the new table.
    """
    ranked = (
        select(
            func.row_number()
            .over(
                order_by=(
                    hiscores.c.pp.desc(),
                    hiscores.c.score_time.asc(),
                    hiscores.c.score_id.asc(),
                )
            )
            .label("position"),
            hiscores.c.mode,
            hiscores.c.score_id,
            hiscores.c.user_id,
            hiscores.c.beatmap_id,
            hiscores.c.score,
            hiscores.c.pp,
            hiscores.c.mods,
            hiscores.c.rank,
            hiscores.c.score_time,
            hiscores.c.update_time,
        )
        .where(hiscores.c.mode == mode)
        .order_by(hiscores.c.pp.desc(), hiscores.c.score_time.asc(), hiscores.c.score_id.asc())
        .limit(table_size)
    )
    session.execute(delete(bestplays).where(bestplays.c.mode == mode))
    columns = [
        "position",
        "mode",
        "score_id",
        "user_id",
        "beatmap_id",
        "score",
        "pp",
        "mods",
        "rank",
        "score_time",
        "update_time",
    ]
    result = session.execute(insert(bestplays).from_select(columns, ranked))
    row_count = int(result.rowcount)  # type: ignore[attr-defined]
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
