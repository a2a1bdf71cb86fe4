"""Incremental peaks recompute: a captured_at index and the beat jobs' watermarks.

- `stats_snapshots_captured_at` (captured_at) makes "snapshots captured since T" a range
  scan, so beat's peaks recompute finds the user-modes that changed since its last run
  without reading the whole table.
- `job_watermarks` (job, watermark): the database time at which an incremental job's last
  successful run started, written in that run's own transaction.

The index is built CONCURRENTLY (outside the migration's transaction) so a deployment with
a large `stats_snapshots` table keeps accepting updates while it is built.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The autocommit block below commits this table before the index is built. If the build
    # then fails, the version stays at 0003 with the table in place: IF NOT EXISTS lets the
    # rerun go through.
    op.execute(
        "CREATE TABLE IF NOT EXISTS job_watermarks ("
        " job varchar(64) NOT NULL,"
        " watermark timestamptz NOT NULL,"
        " CONSTRAINT job_watermarks_pkey PRIMARY KEY (job))"
    )
    with op.get_context().autocommit_block():
        # A failed concurrent build leaves an INVALID index that IF NOT EXISTS would keep
        # (and the planner never uses): drop it so the rerun builds it again.
        op.execute(
            "DO $$ BEGIN"
            " IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = 'stats_snapshots_captured_at' AND NOT i.indisvalid) THEN"
            " DROP INDEX stats_snapshots_captured_at;"
            " END IF; END $$"
        )
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS stats_snapshots_captured_at"
            " ON stats_snapshots (captured_at)"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS stats_snapshots_captured_at")
    op.drop_table("job_watermarks")
