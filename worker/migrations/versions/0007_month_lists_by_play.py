"""Month lists keyed by play, not by position: a refresh writes only the plays that moved.

With rows keyed by (mode, month, position), a play entering a month's list at position p
rewrote every position below it (up to 10,000 rows per month), so 50 new players with top
plays over ten years cost 16-33 s. Rows are now keyed by play (`score_id`) and read in
/bestplays order from an index on the sort key (pp DESC, score_time, score_id); a rank is
never stored. What the readers took from positions is kept per list in
`bestplays_month_lists`: the last play's sort key (`last_pp`, `last_score_time`,
`last_score_id`) and `sketch_pp`, the pp at each sketch position (1, 2, 3, 5, ... 10,000:
`osutrack.month_lists.SKETCH_POSITIONS`, frozen here), NULL past the list's end.

Existing lists are converted in place: their sketches and last plays are read from their
positions before the column goes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE bestplays_month_lists ADD COLUMN last_pp double precision,"
        " ADD COLUMN last_score_time timestamptz, ADD COLUMN last_score_id bigint,"
        " ADD COLUMN sketch_pp double precision[] NOT NULL DEFAULT '{}'"
    )
    # The sketch positions, frozen: osutrack.month_lists.SKETCH_POSITIONS as of 0007.
    op.execute(
        """
        UPDATE bestplays_month_lists l SET
            last_pp = last.pp, last_score_time = last.score_time,
            last_score_id = last.score_id,
            sketch_pp = ARRAY(
                SELECT b.pp
                FROM unnest(ARRAY[1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300,
                                  500, 700, 1000, 1500, 2000, 3000, 5000, 7000, 10000])
                     WITH ORDINALITY AS s(position, ord)
                JOIN bestplays_months b
                  ON b.mode = l.mode AND b.month = l.month AND b.position = s.position
                ORDER BY s.ord)
        FROM (SELECT l2.mode, l2.month, b.pp, b.score_time, b.score_id
              FROM bestplays_month_lists l2
              LEFT JOIN bestplays_months b
                ON b.mode = l2.mode AND b.month = l2.month AND b.position = l2.row_count) AS last
        WHERE last.mode = l.mode AND last.month = l.month
        """
    )
    op.execute("ALTER TABLE bestplays_month_lists ALTER COLUMN sketch_pp DROP DEFAULT")
    op.execute("ALTER TABLE bestplays_months DROP CONSTRAINT bestplays_months_pkey")
    op.execute("ALTER TABLE bestplays_months DROP COLUMN position")
    op.execute(
        "ALTER TABLE bestplays_months ADD CONSTRAINT bestplays_months_pkey"
        " PRIMARY KEY (mode, month, score_id)"
    )
    op.execute(
        "CREATE INDEX bestplays_months_ranked ON bestplays_months"
        " (mode, month, pp DESC, score_time, score_id)"
    )


def downgrade() -> None:
    # Positions are not kept: the lists are emptied, and beat builds them again.
    op.execute("DELETE FROM bestplays_months")
    op.execute("DELETE FROM bestplays_month_lists")
    op.execute("DROP INDEX bestplays_months_ranked")
    op.execute("ALTER TABLE bestplays_months DROP CONSTRAINT bestplays_months_pkey")
    op.execute("ALTER TABLE bestplays_months ADD COLUMN position integer NOT NULL")
    op.execute(
        "ALTER TABLE bestplays_months ADD CONSTRAINT bestplays_months_pkey"
        " PRIMARY KEY (mode, month, position)"
    )
    op.execute(
        "ALTER TABLE bestplays_month_lists DROP COLUMN last_pp, DROP COLUMN last_score_time,"
        " DROP COLUMN last_score_id, DROP COLUMN sketch_pp"
    )
