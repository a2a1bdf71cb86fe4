"""Read path: covering indexes for /bestplays windows and the bestplays refresh.

A /bestplays window is ranked either by walking `hiscores` by pp with the window as a
filter, or by reading the window's plays by time and keeping the top `limit`; Postgres
picks by how much of the mode the window holds. Both indexes now carry every column the
answer prints, so either plan reads index entries only and never visits the table (at 20 M
hiscores, visiting the table for 10,000 winners cost about as much as finding them):

- `hiscores_mode_pp` (mode, pp DESC, score_time, score_id) becomes `hiscores_mode_pp_cover`
  with the other answer columns INCLUDEd (it also serves beat's bestplays refresh);
- `hiscores_mode_time` (mode, score_time) becomes `hiscores_mode_time_cover`, the same
  columns INCLUDEd.

Built CONCURRENTLY (outside the migration's transaction) so a deployment with a large
`hiscores` table keeps accepting updates while they are built.

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
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS hiscores_mode_pp_cover"
            " ON hiscores (mode, pp DESC, score_time, score_id)"
            " INCLUDE (user_id, beatmap_id, score, mods, rank, update_time)"
        )
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS hiscores_mode_time_cover"
            " ON hiscores (mode, score_time)"
            " INCLUDE (pp, score_id, user_id, beatmap_id, score, mods, rank, update_time)"
        )
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS hiscores_mode_pp")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS hiscores_mode_time")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS hiscores_mode_pp"
            " ON hiscores (mode, pp DESC, score_time, score_id)"
        )
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS hiscores_mode_time"
            " ON hiscores (mode, score_time)"
        )
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS hiscores_mode_pp_cover")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS hiscores_mode_time_cover")
