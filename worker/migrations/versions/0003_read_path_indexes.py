"""Read path: a covering (mode, score_time) index for /bestplays windows.

`hiscores_mode_time` becomes `hiscores_mode_time_cover`, which also carries `pp` and
`score_id`: a window that holds a small part of a mode is then ranked from index entries
alone, and only the `limit` winners are read from the table (`api_shim/queries.py`).
Built CONCURRENTLY (outside the migration's transaction) so a deployment with a large
`hiscores` table keeps accepting updates while the index is built.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS hiscores_mode_time_cover"
            " ON hiscores (mode, score_time) INCLUDE (pp, score_id)"
        )
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS hiscores_mode_time")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS hiscores_mode_time"
            " ON hiscores (mode, score_time)"
        )
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS hiscores_mode_time_cover")
