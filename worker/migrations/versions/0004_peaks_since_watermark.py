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

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_watermarks",
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job", name="job_watermarks_pkey"),
    )
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS stats_snapshots_captured_at"
            " ON stats_snapshots (captured_at)"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS stats_snapshots_captured_at")
    op.drop_table("job_watermarks")
