"""Initial schema: tracked users, snapshots, hiscores, peaks, bestplays, finished jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bestplays",
        sa.Column("mode", sa.SmallInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("score_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("beatmap_id", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.BigInteger(), nullable=False),
        sa.Column("pp", sa.Double(), nullable=False),
        sa.Column("mods", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.String(length=4), nullable=False),
        sa.Column("score_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mode", "position", name="bestplays_pkey"),
    )
    op.create_index("bestplays_mode_time", "bestplays", ["mode", "score_time"], unique=False)
    op.create_table(
        "bestplays_refreshes",
        sa.Column("mode", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("table_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("mode"),
    )
    op.create_table(
        "finished_updates",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.SmallInteger(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index(
        "finished_updates_finished_at", "finished_updates", ["finished_at"], unique=False
    )
    op.create_table(
        "hiscores",
        sa.Column("mode", sa.SmallInteger(), nullable=False),
        sa.Column("score_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("beatmap_id", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.BigInteger(), nullable=False),
        sa.Column("pp", sa.Double(), nullable=False),
        sa.Column("mods", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.String(length=4), nullable=False),
        sa.Column("score_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mode", "score_id", name="hiscores_pkey"),
    )
    op.create_index(
        "hiscores_mode_pp",
        "hiscores",
        ["mode", sa.literal_column("pp DESC"), "score_time", "score_id"],
        unique=False,
    )
    op.create_index("hiscores_mode_time", "hiscores", ["mode", "score_time"], unique=False)
    op.create_index(
        "hiscores_user_mode_time", "hiscores", ["user_id", "mode", "score_time"], unique=False
    )
    op.create_table(
        "peaks",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.SmallInteger(), nullable=False),
        sa.Column("best_global_rank", sa.BigInteger(), nullable=True),
        sa.Column("best_rank_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("best_accuracy", sa.Double(), nullable=True),
        sa.Column("best_acc_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("user_id", "mode", name="peaks_pkey"),
    )
    op.create_table(
        "stats_snapshots",
        sa.Column("snapshot_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.SmallInteger(), nullable=False),
        sa.Column("count300", sa.BigInteger(), nullable=False),
        sa.Column("count100", sa.BigInteger(), nullable=False),
        sa.Column("count50", sa.BigInteger(), nullable=False),
        sa.Column("playcount", sa.BigInteger(), nullable=False),
        sa.Column("ranked_score", sa.BigInteger(), nullable=False),
        sa.Column("total_score", sa.BigInteger(), nullable=False),
        sa.Column("pp_rank", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.Double(), nullable=False),
        sa.Column("pp_raw", sa.Double(), nullable=False),
        sa.Column("accuracy", sa.Double(), nullable=False),
        sa.Column("count_rank_ss", sa.BigInteger(), nullable=False),
        sa.Column("count_rank_s", sa.BigInteger(), nullable=False),
        sa.Column("count_rank_a", sa.BigInteger(), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id"),
        sa.UniqueConstraint(
            "user_id", "mode", "captured_at", name="stats_snapshots_user_mode_time"
        ),
    )
    op.create_table(
        "tracked_users",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_index(
        "tracked_users_username_lower",
        "tracked_users",
        [sa.literal_column("lower(username)")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("tracked_users_username_lower", table_name="tracked_users")
    op.drop_table("tracked_users")
    op.drop_table("stats_snapshots")
    op.drop_table("peaks")
    op.drop_index("hiscores_user_mode_time", table_name="hiscores")
    op.drop_index("hiscores_mode_time", table_name="hiscores")
    op.drop_index("hiscores_mode_pp", table_name="hiscores")
    op.drop_table("hiscores")
    op.drop_index("finished_updates_finished_at", table_name="finished_updates")
    op.drop_table("finished_updates")
    op.drop_table("bestplays_refreshes")
    op.drop_index("bestplays_mode_time", table_name="bestplays")
    op.drop_table("bestplays")
