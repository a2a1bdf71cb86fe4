"""Database tables, as SQLAlchemy Core metadata: what the worker writes and the shim reads.

The tables are created and changed only by the alembic migrations in `worker/migrations`;
this module describes them for queries. Timestamps are `timestamptz` and always written in
UTC. Every table that a job writes has a natural key, so a redelivered job writes nothing
twice (`ON CONFLICT`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from osutrack.fields import PLAY_COLUMNS, STATS

metadata = MetaData()


def _play_columns() -> list[Column[Any]]:
    """The declared columns of a stored play (`osutrack.fields.PLAY_COLUMNS`)."""
    types: dict[type, Any] = {
        int: BigInteger,
        float: Double,
        str: String(4),
        datetime: DateTime(timezone=True),
    }
    return [Column(column.name, types[column.kind], nullable=False) for column in PLAY_COLUMNS]


# Players that were ever updated; `username` is the name seen at the latest update, looked
# up case-insensitively by /hiscores?userMode=username.
tracked_users = Table(
    "tracked_users",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("username", Text, nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_updated_at", DateTime(timezone=True), nullable=False),
    Index("tracked_users_username_lower", text("lower(username)")),
)

# One row per stored stats snapshot. An unchanged stretch is kept as two rows (first seen,
# last seen): the newer one has its `captured_at` moved forward instead of a third row.
stats_snapshots = Table(
    "stats_snapshots",
    metadata,
    Column("snapshot_id", BigInteger, Identity(), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("mode", SmallInteger, nullable=False),
    *(
        Column(stat.name, BigInteger if stat.kind is int else Double, nullable=False)
        for stat in STATS
    ),
    Column("captured_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_id", "mode", "captured_at", name="stats_snapshots_user_mode_time"),
    # "Snapshots captured since T" as a range scan: beat's peaks recompute redoes only the
    # user-modes found there (migration 0004).
    Index("stats_snapshots_captured_at", "captured_at"),
)

# Every top play ever seen for a user and mode, keyed by its osu! score id (v1 `score_id`;
# v2 `legacy_score_id` when above 0, else `id`). `update_time` is when it was first recorded.
hiscores = Table(
    "hiscores",
    metadata,
    Column("mode", SmallInteger, nullable=False),
    *_play_columns(),
    PrimaryKeyConstraint("mode", "score_id", name="hiscores_pkey"),
    Index("hiscores_user_mode_time", "user_id", "mode", "score_time"),
    # Both covering every column a /bestplays answer prints, so a window is answered from
    # index entries alone whichever one the planner walks (migration 0003).
    Index(
        "hiscores_mode_pp_cover",
        "mode",
        text("pp DESC"),
        "score_time",
        "score_id",
        postgresql_include=["user_id", "beatmap_id", "score", "mods", "rank", "update_time"],
    ),
    Index(
        "hiscores_mode_time_cover",
        "mode",
        "score_time",
        postgresql_include=[
            "pp",
            "score_id",
            "user_id",
            "beatmap_id",
            "score",
            "mods",
            "rank",
            "update_time",
        ],
    ),
)

# Best rank and accuracy per user and mode, kept current by each update in its own
# transaction and recomputed from `stats_snapshots` by a beat task.
peaks = Table(
    "peaks",
    metadata,
    Column("user_id", BigInteger, nullable=False),
    Column("mode", SmallInteger, nullable=False),
    Column("best_global_rank", BigInteger),
    Column("best_rank_at", DateTime(timezone=True)),
    Column("best_accuracy", Double),
    Column("best_acc_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("user_id", "mode", name="peaks_pkey"),
)

# Per player, mode and source table (`stats_snapshots`, `hiscores`, `peaks`), a number
# from one sequence that triggers move on whenever the player's rows there change, in the
# writing transaction (migration 0006); no row means version 0. The read endpoints' ETags
# derive from it.
read_versions = Table(
    "read_versions",
    metadata,
    Column("user_id", BigInteger, nullable=False),
    Column("mode", SmallInteger, nullable=False),
    Column("source", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    PrimaryKeyConstraint("user_id", "mode", "source", name="read_versions_pkey"),
)

# The top plays by pp per mode (BESTPLAYS_TABLE_SIZE rows each), rebuilt by beat.
bestplays = Table(
    "bestplays",
    metadata,
    Column("mode", SmallInteger, nullable=False),
    Column("position", Integer, nullable=False),
    *_play_columns(),
    PrimaryKeyConstraint("mode", "position", name="bestplays_pkey"),
    Index("bestplays_mode_time", "mode", "score_time"),
)

# When each mode's bestplays table was last rebuilt and how many rows it got. A table with
# fewer rows than BESTPLAYS_TABLE_SIZE holds every hiscore of its mode, so any date window
# can be served from it; a full one serves a window only when it has `limit` rows inside it.
bestplays_refreshes = Table(
    "bestplays_refreshes",
    metadata,
    Column("mode", SmallInteger, primary_key=True, autoincrement=False),
    Column("refreshed_at", DateTime(timezone=True), nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("table_size", Integer, nullable=False),
)

# Where each incremental beat job got to: the database time at which its last successful
# run started, written in that run's transaction. The next run redoes what changed since
# then (minus a safety margin); a job with no row starts with a full pass.
job_watermarks = Table(
    "job_watermarks",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("watermark", DateTime(timezone=True), nullable=False),
)

# Per mode and calendar month (UTC, by score_time): the month's top plays, keyed by play
# and read in /bestplays order from `bestplays_months_ranked` (no stored rank, so a play
# entering a list writes itself only), rebuilt by beat for the months whose hiscores
# changed (migrations 0005, 0007). A window is answered by merging the lists of the
# months it covers.
bestplays_months = Table(
    "bestplays_months",
    metadata,
    Column("mode", SmallInteger, nullable=False),
    Column("month", DateTime(timezone=True), nullable=False),
    *_play_columns(),
    PrimaryKeyConstraint("mode", "month", "score_id", name="bestplays_months_pkey"),
    Index(
        "bestplays_months_ranked",
        "mode",
        "month",
        text("pp DESC"),
        "score_time",
        "score_id",
    ),
)

# One row per built month list; a list with fewer rows than `list_size` holds every play
# of its month. A month without a row is not built yet. `last_*`: the sort key of the
# list's last play (NULL for an empty list); `sketch_pp`: the pp at each of
# `osutrack.month_lists.SKETCH_POSITIONS`, NULL past the list's end.
bestplays_month_lists = Table(
    "bestplays_month_lists",
    metadata,
    Column("mode", SmallInteger, nullable=False),
    Column("month", DateTime(timezone=True), nullable=False),
    Column("built_at", DateTime(timezone=True), nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("list_size", Integer, nullable=False),
    Column("last_pp", Double),
    Column("last_score_time", DateTime(timezone=True)),
    Column("last_score_id", BigInteger),
    Column("sketch_pp", ARRAY(Double), nullable=False),
    PrimaryKeyConstraint("mode", "month", name="bestplays_month_lists_pkey"),
)

# Months whose hiscores changed since their list was built: appended by statement-level
# triggers on `hiscores` (one row per month and writing transaction), consumed by beat.
# `max_pp`: the highest pp among the changed rows (both images of an update), so beat can
# skip a full list whose last play outranks every one of them.
bestplays_month_changes = Table(
    "bestplays_month_changes",
    metadata,
    Column("mode", SmallInteger, nullable=False),
    Column("month", DateTime(timezone=True), nullable=False),
    Column("txid", BigInteger, nullable=False),
    Column("max_pp", Double, nullable=False),
    PrimaryKeyConstraint("mode", "month", "txid", name="bestplays_month_changes_pkey"),
)

# Jobs whose writes are committed, with the diff body they returned. The row is written in
# the same transaction as the update's data, so a redelivered job finds it and only
# republishes the stored result: the job id is the update's idempotency key.
finished_updates = Table(
    "finished_updates",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("mode", SmallInteger, nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("result", JSONB, nullable=False),
    Index("finished_updates_finished_at", "finished_at"),
)

# When each tracked user-mode was last checked, when its stats last changed, and when the
# scheduled refresh should check it next (sooner for players who played recently).
refresh_schedule = Table(
    "refresh_schedule",
    metadata,
    Column("user_id", BigInteger, nullable=False),
    Column("mode", SmallInteger, nullable=False),
    Column("last_checked_at", DateTime(timezone=True), nullable=False),
    Column("last_changed_at", DateTime(timezone=True), nullable=False),
    Column("next_check_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("user_id", "mode", name="refresh_schedule_pkey"),
    Index("refresh_schedule_next_check", "next_check_at"),
)

__all__ = [
    "bestplays",
    "bestplays_month_changes",
    "bestplays_month_lists",
    "bestplays_months",
    "bestplays_refreshes",
    "finished_updates",
    "hiscores",
    "job_watermarks",
    "metadata",
    "peaks",
    "read_versions",
    "refresh_schedule",
    "stats_snapshots",
    "tracked_users",
]
