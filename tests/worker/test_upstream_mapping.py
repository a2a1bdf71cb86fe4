"""The v1 and v2 mappings to osu!track's fields, checked against recorded responses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support.recorded import needs_recordings, recorded

from worker.hiscores import newhs_item
from worker.upstream.mods import mods_bitmask
from worker.upstream.parsing import MalformedUpstream
from worker.upstream.v1 import play_from_v1, stats_from_v1
from worker.upstream.v2 import play_from_v2, stats_from_v2

pytestmark = needs_recordings


def test_v1_and_v2_recordings_of_the_same_day_map_to_the_same_counts() -> None:
    v1 = stats_from_v1(recorded("v1_get_user_peppy_osu_2026-07_aiosu.json")[0])
    v2 = stats_from_v2(recorded("v2_user_peppy_default-mode_2026-07_aiosu.json")["statistics"])
    for name in (
        "count300",
        "count100",
        "count50",
        "playcount",
        "ranked_score",
        "total_score",
        "pp_rank",
        "count_rank_ss",
        "count_rank_s",
        "count_rank_a",
    ):
        assert getattr(v1, name) == getattr(v2, name), name
    assert v1.pp_raw == v2.pp_raw == 1188.36
    # v2 rounds level progress to whole percent and accuracy to 4 decimals.
    assert v1.level == 67.5349
    assert v2.level == pytest.approx(67.53)
    assert v1.accuracy == 96.79685974121094
    assert v2.accuracy == pytest.approx(v1.accuracy, abs=1e-4)


def test_v1_silver_grades_are_counted_with_their_grade() -> None:
    raw = recorded("v1_get_user_niceaesth_osu_2022-12_aiosu.json")[0]
    stats = stats_from_v1(raw)
    assert stats.count_rank_ss == int(raw["count_rank_ss"]) + int(raw["count_rank_ssh"])
    assert stats.count_rank_s == int(raw["count_rank_s"]) + int(raw["count_rank_sh"])
    assert stats.is_ranked


@pytest.mark.parametrize(
    "name",
    [
        "v1_get_user_peppy_osu_2023-08_inactive-pp0_aiosu.json",
        "v1_get_user_niceaesth_taiko_2022-12_aiosu.json",
        "v1_get_user_never-played_all-null_transcribed_khazhyk-osuapi-issue31.json",
    ],
)
def test_v1_inactive_or_never_played_is_unranked(name: str) -> None:
    raw = recorded(name)[0]
    # The recorded inactive players keep a stale non-zero pp_rank next to pp_raw "0".
    assert raw["pp_rank"] is None or raw["pp_raw"] == "0"
    assert not stats_from_v1(raw).is_ranked


def test_v2_unranked_mode_has_no_rank() -> None:
    body = recorded("v2_user_niceaesth_fruits_unranked_2022-09_aiosu.json")
    assert body["statistics"]["global_rank"] is None
    assert stats_from_v2(body["statistics"]).pp_rank == 0


def test_v2_ranked_user_maps_rank_and_level() -> None:
    statistics = recorded("v2_user_niceaesth_osu_2022-09_aiosu.json")["statistics"]
    stats = stats_from_v2(statistics)
    assert stats.pp_rank == statistics["global_rank"]
    expected_level = statistics["level"]["current"] + statistics["level"]["progress"] / 100
    assert stats.level == expected_level
    grades = statistics["grade_counts"]
    assert stats.count_rank_ss == grades["ss"] + grades["ssh"]


def test_v2_new_format_score_uses_the_legacy_id_and_total() -> None:
    score = recorded("v2_score_4220635589_new-format-x-api-version-20220705_2026-07_aiosu.json")
    play = play_from_v2(score)
    assert play.score_id == 4220635589  # legacy_score_id, not the solo id 1581778626
    assert play.score == score["legacy_total_score"]
    assert play.enabled_mods == 8  # HD; CL (classic) has no legacy bit
    assert play.count300 == score["statistics"]["great"]
    assert play.count100 == score["statistics"]["ok"]
    assert play.count50 == 0  # lazer omits zero counts
    assert play.score_time == datetime(2022, 7, 17, 13, 20, 7, tzinfo=UTC)
    assert play.pp == score["pp"]
    assert play.rank == "SH"


def test_v2_lazer_score_falls_back_to_its_own_id_and_total() -> None:
    score = dict(
        recorded("v2_score_4220635589_new-format-x-api-version-20220705_2026-07_aiosu.json")
    )
    score["legacy_score_id"] = None
    score["legacy_total_score"] = 0
    play = play_from_v2(score)
    assert play.score_id == score["id"]
    assert play.score == score["total_score"]


@pytest.mark.parametrize(
    "name",
    [
        "v1_get_user_best_peppy_osu_limit10_2026-07_aiosu.json",
        "v1_get_user_best_user28694940_osu_limit10_2022_aiosu.json",
        "v1_get_user_best_user9527894_taiko_limit10_2022_aiosu.json",
        "v1_get_user_best_user3656717_fruits_limit10_2022_aiosu.json",
        "v1_get_user_best_user2288363_mania_limit10_2022_aiosu.json",
    ],
)
def test_v1_best_rows_come_back_unchanged_as_newhs_items(name: str) -> None:
    for ranking, row in enumerate(recorded(name)):
        item = newhs_item(play_from_v1(row), ranking)
        assert item.pop("ranking") == ranking
        assert item == row


def test_mods_bitmask_adds_implied_mods() -> None:
    assert mods_bitmask(["NC"]) == 576
    assert mods_bitmask(["PF"]) == 16416
    assert mods_bitmask(["HD", "DT"]) == 72
    assert mods_bitmask(["CL", "HD"]) == 8


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("count300", "-5"),
        ("count300", "1e40"),
        ("count300", 10**30),
        ("pp_raw", "NaN"),
        ("pp_raw", "inf"),
        ("accuracy", "250"),
        ("playcount", True),
        ("count_rank_a", [1]),
    ],
)
def test_hostile_v1_user_values_are_refused(key: str, value: object) -> None:
    raw = dict(recorded("v1_get_user_peppy_osu_2026-07_aiosu.json")[0])
    raw[key] = value
    with pytest.raises(MalformedUpstream):
        stats_from_v1(raw)


def test_v2_score_missing_a_field_is_refused() -> None:
    score = dict(
        recorded("v2_score_4220635589_new-format-x-api-version-20220705_2026-07_aiosu.json")
    )
    del score["ended_at"]
    with pytest.raises(MalformedUpstream):
        play_from_v2(score)
