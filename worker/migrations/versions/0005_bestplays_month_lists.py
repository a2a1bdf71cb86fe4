"""Per-month top lists for /bestplays windows, and the log of months whose hiscores changed.

A window of about a month was the worst case for any plan on one index (README, bench):
the time range reads every play of the month and sorts, the pp walk skips most of the
mode. These tables hold, per mode and calendar month (UTC, by score_time), the month's top
plays in /bestplays order, so a window is answered by merging the lists of the months it
covers, with exact queries only for what the lists cannot answer.

- `bestplays_months`: the lists (position 1 = the month's best play).
- `bestplays_month_lists`: one row per built list: when, how many rows, at most how many.
  A month without a row has not been built yet (its window parts are answered from
  hiscores).
- `bestplays_month_changes`: months whose hiscores changed since beat last rebuilt them,
  appended by statement-level triggers on `hiscores` (insert, update, delete), one row per
  month and writing transaction. The transaction id in the key means two writers never
  contend on one row (no lock waits on the update path), and the refresh consumes exactly
  the rows its snapshot sees, whose changes that same snapshot sees too.

The lists start empty; beat's bestplays refresh builds the missing months (newest first,
a bounded number per run) and then keeps the changed ones current.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE bestplays_months (
            mode smallint NOT NULL,
            month timestamptz NOT NULL,
            position integer NOT NULL,
            score_id bigint NOT NULL,
            user_id bigint NOT NULL,
            beatmap_id bigint NOT NULL,
            score bigint NOT NULL,
            pp double precision NOT NULL,
            mods bigint NOT NULL,
            rank varchar(4) NOT NULL,
            score_time timestamptz NOT NULL,
            update_time timestamptz NOT NULL,
            CONSTRAINT bestplays_months_pkey PRIMARY KEY (mode, month, position)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE bestplays_month_lists (
            mode smallint NOT NULL,
            month timestamptz NOT NULL,
            built_at timestamptz NOT NULL,
            row_count integer NOT NULL,
            list_size integer NOT NULL,
            CONSTRAINT bestplays_month_lists_pkey PRIMARY KEY (mode, month)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE bestplays_month_changes (
            mode smallint NOT NULL,
            month timestamptz NOT NULL,
            txid bigint NOT NULL,
            CONSTRAINT bestplays_month_changes_pkey PRIMARY KEY (mode, month, txid)
        )
        """
    )
    # One function for the three triggers: each names its transition table `changed_rows`.
    op.execute(
        """
        CREATE FUNCTION bestplays_note_changed_months() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO bestplays_month_changes (mode, month, txid)
            SELECT DISTINCT mode, date_trunc('month', score_time, 'UTC'), txid_current()
            FROM changed_rows
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END
        $$
        """
    )
    for event, table in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
        op.execute(
            f"CREATE TRIGGER hiscores_{event.lower()}_months AFTER {event} ON hiscores"
            f" REFERENCING {table} TABLE AS changed_rows FOR EACH STATEMENT"
            " EXECUTE FUNCTION bestplays_note_changed_months()"
        )


def downgrade() -> None:
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS hiscores_{event}_months ON hiscores")
    op.execute("DROP FUNCTION IF EXISTS bestplays_note_changed_months()")
    op.execute("DROP TABLE IF EXISTS bestplays_month_changes")
    op.execute("DROP TABLE IF EXISTS bestplays_month_lists")
    op.execute("DROP TABLE IF EXISTS bestplays_months")
