"""Operator commands: `python -m worker.admin COMMAND` (reads DATABASE_URL).

These act on the whole service or on one player's data, so they are never HTTP endpoints:
only someone with a shell next to the database can run them.

    refresh-all          check every tracked user-mode at the next planning round
    recompute            rebuild the peaks, bestplays and month-list tables now
    delete-user USER_ID  delete everything stored about a player (a banned account)
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from osutrack.schema import (
    bestplays,
    bestplays_month_lists,
    bestplays_months,
    finished_updates,
    hiscores,
    peaks,
    refresh_schedule,
    stats_snapshots,
    tracked_users,
)
from osutrack.settings import settings_for
from worker.bestplays import MODES, rebuild_bestplays, rebuild_month_lists
from worker.db import make_engine, session_scope
from worker.peaks import recompute_peaks

# Tables holding a player's data, children first.
USER_TABLES = (
    bestplays,
    hiscores,
    stats_snapshots,
    peaks,
    refresh_schedule,
    finished_updates,
    tracked_users,
)


def refresh_all(session: Session) -> int:
    """Make every tracked user-mode due now; return how many."""
    result = session.execute(update(refresh_schedule).values(next_check_at=func.now()))
    return int(result.rowcount)  # type: ignore[attr-defined]


# More months than any mode's span of score times holds (osu! began in 2007): the
# recompute builds every month in one run, where beat spreads a first build over several.
EVERY_MONTH = 12 * 100


def recompute_tables(session: Session, bestplays_table_size: int) -> dict[str, int]:
    """Rebuild peaks from the snapshots, and every mode's bestplays table and month lists.

    One transaction: readers see the old tables until it commits.
    """
    counts = {"peaks": recompute_peaks(session)}
    now = datetime.now(UTC)
    for mode in MODES:
        counts[f"bestplays mode {mode}"] = rebuild_bestplays(
            session, mode, bestplays_table_size, now
        )
        # Forgetting which months are built makes the rebuild rank every month again.
        session.execute(delete(bestplays_month_lists).where(bestplays_month_lists.c.mode == mode))
        months = rebuild_month_lists(
            session, mode, bestplays_table_size, now, max_new_months=EVERY_MONTH
        )
        counts[f"month lists mode {mode}"] = months.months
    return counts


def delete_user_data(session: Session, user_id: int) -> dict[str, int]:
    """Delete every row about `user_id`; return rows deleted per table.

    Deleting the player's rows from `bestplays` leaves a gap in that mode's positions
    until beat's next rebuild; the order of the rows left is unchanged. The month lists
    holding one of the player's plays are dropped whole instead: a
    reader relies on their positions being complete, and answers a month without a list
    from hiscores until beat builds it again.
    """
    counts: dict[str, int] = {}
    listed = (
        select(bestplays_months.c.mode, bestplays_months.c.month)
        .where(bestplays_months.c.user_id == user_id)
        .distinct()
    )
    counts[bestplays_months.name] = 0
    for mode, month in session.execute(listed).all():
        session.execute(
            delete(bestplays_month_lists).where(
                bestplays_month_lists.c.mode == mode, bestplays_month_lists.c.month == month
            )
        )
        result = session.execute(
            delete(bestplays_months).where(
                bestplays_months.c.mode == mode, bestplays_months.c.month == month
            )
        )
        counts[bestplays_months.name] += int(result.rowcount)  # type: ignore[attr-defined]
    for table in USER_TABLES:
        result = session.execute(delete(table).where(table.c.user_id == user_id))
        counts[table.name] = int(result.rowcount)  # type: ignore[attr-defined]
    return counts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m worker.admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("refresh-all", help="check every tracked user-mode soon")
    commands.add_parser("recompute", help="rebuild the peaks and bestplays tables")
    delete_user = commands.add_parser("delete-user", help="delete a player's data")
    delete_user.add_argument("user_id", type=int)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings_for("admin")
    engine = make_engine(settings.database_url, statement_timeout_ms=0)
    with session_scope(engine) as session:
        if args.command == "refresh-all":
            print(f"{refresh_all(session)} user-modes are due now")
        elif args.command == "recompute":
            for name, count in recompute_tables(session, settings.bestplays_table_size).items():
                print(f"{name}: {count} rows")
        else:
            for name, count in delete_user_data(session, args.user_id).items():
                print(f"{name}: {count} rows deleted")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
