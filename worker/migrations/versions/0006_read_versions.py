"""Per player, mode and table, a number that changes whenever the player's rows there change.

The read endpoints derive their `ETag` from it, so answering `If-None-Match` with 304
costs one primary-key lookup and no body. Statement-level triggers on `stats_snapshots`,
`hiscores` and `peaks` write it in the writing transaction, so every writer bumps it
(updates, the peaks recompute, admin deletes, bulk loads) without knowing about it. A row
is only bumped when one of the player's rows really changed (an upsert that rewrote
nothing, or an update to identical values, leaves it). Numbers come from one sequence, so
a number is never reused, even after a player's rows are deleted and written again.

One row per table (not one per player and mode with a column per table): the peaks
recompute locks peaks rows, then their version rows, and an update locks its snapshot's
version row before its peaks row; one shared row would let the two wait for each other.

A player and mode without a row has version 0: never written since this migration.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("stats_snapshots", "hiscores", "peaks")
# Each table's four statement-level triggers (table names are the constants above).
CREATE_TRIGGERS = ";".join(
    f"CREATE TRIGGER {table}_insert_versions AFTER INSERT ON {table}"
    " REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION read_versions_note_rows();"
    f"CREATE TRIGGER {table}_update_versions AFTER UPDATE ON {table}"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION read_versions_note_updated();"
    f"CREATE TRIGGER {table}_delete_versions AFTER DELETE ON {table}"
    " REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION read_versions_note_rows();"
    f"CREATE TRIGGER {table}_truncate_versions AFTER TRUNCATE ON {table}"
    " FOR EACH STATEMENT EXECUTE FUNCTION read_versions_note_truncated()"
    for table in TABLES
)
DROP_TRIGGERS = ";".join(
    f"DROP TRIGGER IF EXISTS {table}_{event}_versions ON {table}"
    for table in TABLES
    for event in ("insert", "update", "delete", "truncate")
)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE read_version_numbers")
    op.execute(
        """
        CREATE TABLE read_versions (
            user_id bigint NOT NULL,
            mode smallint NOT NULL,
            source text NOT NULL,
            version bigint NOT NULL,
            CONSTRAINT read_versions_pkey PRIMARY KEY (user_id, mode, source)
        )
        """
    )
    # Inserted and deleted rows (one transition table, `changed_rows`).
    op.execute(
        """
        CREATE FUNCTION read_versions_note_rows() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO read_versions (user_id, mode, source, version)
            SELECT user_id, mode, TG_TABLE_NAME, nextval('read_version_numbers')
            FROM (SELECT DISTINCT user_id, mode FROM changed_rows) AS changed
            ON CONFLICT (user_id, mode, source) DO UPDATE SET version = excluded.version;
            RETURN NULL;
        END
        $$
        """
    )
    # Updated rows: only those whose values differ between the two images.
    op.execute(
        """
        CREATE FUNCTION read_versions_note_updated() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO read_versions (user_id, mode, source, version)
            SELECT user_id, mode, TG_TABLE_NAME, nextval('read_version_numbers')
            FROM (
                SELECT user_id, mode FROM (
                    SELECT * FROM new_rows EXCEPT ALL SELECT * FROM old_rows) AS added
                UNION
                SELECT user_id, mode FROM (
                    SELECT * FROM old_rows EXCEPT ALL SELECT * FROM new_rows) AS removed
            ) AS changed
            ON CONFLICT (user_id, mode, source) DO UPDATE SET version = excluded.version;
            RETURN NULL;
        END
        $$
        """
    )
    # TRUNCATE has no transition table: every player's number for the table moves on.
    op.execute(
        """
        CREATE FUNCTION read_versions_note_truncated() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE read_versions SET version = nextval('read_version_numbers')
            WHERE source = TG_TABLE_NAME;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(CREATE_TRIGGERS)


def downgrade() -> None:
    op.execute(DROP_TRIGGERS)
    op.execute("DROP FUNCTION IF EXISTS read_versions_note_truncated()")
    op.execute("DROP FUNCTION IF EXISTS read_versions_note_updated()")
    op.execute("DROP FUNCTION IF EXISTS read_versions_note_rows()")
    op.execute("DROP TABLE IF EXISTS read_versions")
    op.execute("DROP SEQUENCE IF EXISTS read_version_numbers")
