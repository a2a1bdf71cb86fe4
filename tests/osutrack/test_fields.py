"""The one declaration of the stat and play fields, and what derives from it."""

from __future__ import annotations

import pytest

from osutrack.fields import (
    BEST_PLAY_FIELDS,
    DIFF_FIELD_ORDER,
    HISCORE_FIELDS,
    PLAY_FIELDS,
    STAT_FIELDS,
    UNRANKED,
    column_list,
    upsert_changed,
)
from osutrack.schema import bestplays, bestplays_months, hiscores, stats_snapshots


def test_the_diff_order_is_osutracks_documented_one() -> None:
    assert DIFF_FIELD_ORDER == (
        "playcount",
        "pp_rank",
        "pp_raw",
        "accuracy",
        "total_score",
        "ranked_score",
        "count300",
        "count50",
        "count100",
        "level",
        "count_rank_a",
        "count_rank_s",
        "count_rank_ss",
    )
    assert sorted(DIFF_FIELD_ORDER) == sorted(STAT_FIELDS)


def test_tables_hold_the_declared_columns_in_order() -> None:
    stat_columns = [column.name for column in stats_snapshots.columns]
    assert stat_columns == ["snapshot_id", "user_id", "mode", *STAT_FIELDS, "captured_at"]
    assert [column.name for column in hiscores.columns] == ["mode", *PLAY_FIELDS]
    assert [column.name for column in bestplays.columns] == ["mode", "position", *PLAY_FIELDS]
    month_columns = [column.name for column in bestplays_months.columns]
    assert month_columns == ["mode", "month", *PLAY_FIELDS]


def test_response_fields_of_a_play() -> None:
    assert HISCORE_FIELDS == ("beatmap_id", "score", "pp", "mods", "rank", "score_time",
                              "update_time")  # fmt: skip
    assert BEST_PLAY_FIELDS[0] == "user"
    assert BEST_PLAY_FIELDS[1:] == HISCORE_FIELDS


def test_unranked_is_all_zeros() -> None:
    assert not UNRANKED.is_ranked
    assert all(getattr(UNRANKED, name) == 0 for name in STAT_FIELDS)


def test_upsert_changed_writes_only_rows_that_differ() -> None:
    assert upsert_changed("b", ("mode", "position"), ("pp", "rank")) == (
        "ON CONFLICT (mode, position) DO UPDATE SET pp = excluded.pp, rank = excluded.rank"
        " WHERE (b.pp, b.rank) IS DISTINCT FROM (excluded.pp, excluded.rank)"
    )
    assert column_list(("a", "b"), "t") == "t.a, t.b"


@pytest.mark.parametrize("bad", ["pp; DROP TABLE hiscores", "pp)", "Pp", "", "b.pp"])
def test_upsert_changed_takes_identifiers_only(bad: str) -> None:
    with pytest.raises(ValueError, match="not a column name"):
        upsert_changed("b", ("mode",), (bad,))
    with pytest.raises(ValueError, match="not a column name"):
        upsert_changed(bad, ("mode",), ("pp",))
