"""Refresh schedule: when each tracked user-mode is checked next by the scheduled refresh.

Existing tracked user-modes are scheduled at once, with their last snapshot as the last
change, so an upgraded deployment starts refreshing everybody it already tracks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refresh_schedule",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.SmallInteger(), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "mode", name="refresh_schedule_pkey"),
    )
    op.create_index("refresh_schedule_next_check", "refresh_schedule", ["next_check_at"])
    op.execute(
        """
        INSERT INTO refresh_schedule (user_id, mode, last_checked_at, last_changed_at,
                                      next_check_at)
        SELECT user_id, mode, max(captured_at), max(captured_at), now()
        FROM stats_snapshots GROUP BY user_id, mode
        """
    )


def downgrade() -> None:
    op.drop_index("refresh_schedule_next_check", table_name="refresh_schedule")
    op.drop_table("refresh_schedule")
