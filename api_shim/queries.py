"""The SQL of the read endpoints: constant text, bound parameters only.

Timestamps are printed by Postgres as the original API printed them (`iso_z`: UTC, whole
seconds truncated, `.000Z`), and BIGINT scores that the original sent as strings are cast
to text there too, so a row needs no per-value conversion in Python. An open end of a
date window is bound as `-infinity` / `infinity`, so one statement serves every window.
"""

from __future__ import annotations

from datetime import datetime

from api_shim.params import Window
from api_shim.reader import Prepared


def window_bounds(window: Window) -> tuple[datetime | str, datetime | str]:
    """The inclusive bounds to bind for `window`, open ends as (-)infinity."""
    start: datetime | str = "-infinity" if window.start is None else window.start
    end: datetime | str = "infinity" if window.end is None else window.end
    return start, end


SNAPSHOT_KEYS = (
    "count300",
    "count100",
    "count50",
    "playcount",
    "ranked_score",
    "total_score",
    "pp_rank",
    "level",
    "pp_raw",
    "accuracy",
    "count_rank_ss",
    "count_rank_s",
    "count_rank_a",
    "timestamp",
)

# (user_id, mode, captured_at) is unique, so captured_at alone orders without ties and
# the unique index delivers the rows already sorted.
STATS_HISTORY = Prepared(
    "osutrack_stats_history",
    "SELECT count300, count100, count50, playcount, ranked_score::text, total_score::text,"
    " pp_rank, level, pp_raw, accuracy, count_rank_ss, count_rank_s, count_rank_a, "
    "to_char(captured_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    " FROM stats_snapshots"
    " WHERE user_id = $1 AND mode = $2 AND captured_at >= $3 AND captured_at <= $4"
    " ORDER BY captured_at",
)

HISCORE_KEYS = ("beatmap_id", "score", "pp", "mods", "rank", "score_time", "update_time")

USER_HISCORES = Prepared(
    "osutrack_user_hiscores",
    "SELECT beatmap_id, score, pp, mods, rank, "
    "to_char(score_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    ", "
    "to_char(update_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    " FROM hiscores"
    " WHERE user_id = $1 AND mode = $2 AND score_time >= $3 AND score_time <= $4"
    " ORDER BY score_time, score_id",
)

USER_ID_BY_NAME = Prepared(
    "osutrack_user_id_by_name",
    "SELECT user_id FROM tracked_users WHERE lower(username) = lower($1::text)"
    " ORDER BY last_updated_at DESC LIMIT 1",
)

PEAK_KEYS = ("best_global_rank", "best_rank_timestamp", "best_accuracy", "best_acc_timestamp")

PEAK = Prepared(
    "osutrack_peak",
    "SELECT best_global_rank, "
    "to_char(best_rank_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    ", best_accuracy, "
    "to_char(best_acc_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    " FROM peaks WHERE user_id = $1 AND mode = $2",
)

BEST_PLAY_KEYS = (
    "user",
    "beatmap_id",
    "score",
    "pp",
    "mods",
    "rank",
    "score_time",
    "update_time",
)

BESTPLAYS_STAMP = Prepared(
    "osutrack_bestplays_stamp",
    "SELECT refreshed_at FROM bestplays_refreshes WHERE mode = $1",
)

# The refresh row and the table in one statement, so both come from the same rebuild.
# Columns: refreshed_at, row_count, table_size, score_time (raw, for windows), then the
# BEST_PLAY_KEYS values; a mode whose table is empty gives one row of NULL plays.
BESTPLAYS_TABLE = Prepared(
    "osutrack_bestplays_table",
    "SELECT r.refreshed_at, r.row_count, r.table_size, b.score_time,"
    " b.user_id, b.beatmap_id, b.score, b.pp, b.mods, b.rank, "
    "to_char(b.score_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    ", "
    "to_char(b.update_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    " FROM bestplays_refreshes r LEFT JOIN bestplays b ON b.mode = r.mode"
    " WHERE r.mode = $1 ORDER BY b.position",
)

# The top `limit` hiscores of a mode inside a window, for windows the precomputed table
# does not cover. Both candidate indexes cover every column here (migration 0003), so the
# plan reads index entries only: hiscores_mode_pp_cover walked by pp with the window as a
# filter (a window holding much of the mode), or hiscores_mode_time_cover over the window
# then a top-N sort (a narrow one). Planned per call (plain text, not PREPAREd), since the
# better plan depends on the window. Parameters: mode, start, end, limit.
BEST_PLAYS_LIVE = (
    "SELECT user_id, beatmap_id, score, pp, mods, rank, "
    "to_char(score_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"'), "
    "to_char(update_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\".000Z\"')"
    " FROM hiscores WHERE mode = %s AND score_time >= %s AND score_time <= %s"
    " ORDER BY pp DESC, score_time, score_id LIMIT %s"
)
