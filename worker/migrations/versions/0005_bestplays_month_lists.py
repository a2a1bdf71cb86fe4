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
  the rows its snapshot sees, whose changes that same snapshot sees too. Each row keeps
  the highest pp among the changed rows (inserted, deleted, both images of updated ones),
  so the refresh can skip a full list that no such row can enter, leave or move within.

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
            max_pp double precision NOT NULL,
            CONSTRAINT bestplays_month_changes_pkey PRIMARY KEY (mode, month, txid)
        )
        """
    )
    # Insert and delete triggers name their one transition table `changed_rows`; the update
    # trigger needs both images (a row whose pp fell below a list's cut-off was in the list,
    # and a row moved to another month changes both months), so it has its own function.
    # The three triggers of one transaction share a key: keep the highest pp logged.
    op.execute(
        """
        CREATE FUNCTION bestplays_note_changed_months() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO bestplays_month_changes AS c (mode, month, txid, max_pp)
            SELECT mode, date_trunc('month', score_time, 'UTC'), txid_current(), max(pp)
            FROM changed_rows
            GROUP BY 1, 2
            ON CONFLICT (mode, month, txid)
            DO UPDATE SET max_pp = greatest(c.max_pp, excluded.max_pp);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION bestplays_note_updated_months() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO bestplays_month_changes AS c (mode, month, txid, max_pp)
            SELECT mode, date_trunc('month', score_time, 'UTC'), txid_current(), max(pp)
            FROM (SELECT mode, score_time, pp FROM old_rows
                  UNION ALL SELECT mode, score_time, pp FROM new_rows) AS changed
            GROUP BY 1, 2
            ON CONFLICT (mode, month, txid)
            DO UPDATE SET max_pp = greatest(c.max_pp, excluded.max_pp);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER hiscores_insert_months AFTER INSERT ON hiscores"
        " REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT"
        " EXECUTE FUNCTION bestplays_note_changed_months()"
    )
    op.execute(
        "CREATE TRIGGER hiscores_update_months AFTER UPDATE ON hiscores"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"
        " EXECUTE FUNCTION bestplays_note_updated_months()"
    )
    op.execute(
        "CREATE TRIGGER hiscores_delete_months AFTER DELETE ON hiscores"
        " REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT"
        " EXECUTE FUNCTION bestplays_note_changed_months()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS hiscores_insert_months ON hiscores")
    op.execute("DROP TRIGGER IF EXISTS hiscores_update_months ON hiscores")
    op.execute("DROP TRIGGER IF EXISTS hiscores_delete_months ON hiscores")
    op.execute("DROP FUNCTION IF EXISTS bestplays_note_updated_months()")
    op.execute("DROP FUNCTION IF EXISTS bestplays_note_changed_months()")
    op.execute("DROP TABLE IF EXISTS bestplays_month_changes")
    op.execute("DROP TABLE IF EXISTS bestplays_month_lists")
    op.execute("DROP TABLE IF EXISTS bestplays_months")
