"""Which top plays are new, and where they rank."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from worker.hiscores import new_hiscores, newhs_item
from worker.upstream.models import TopPlay

PLAY = TopPlay(
    score_id=1,
    beatmap_id=100,
    score=1_000_000,
    maxcombo=500,
    count50=0,
    count100=5,
    count300=400,
    countmiss=0,
    countkatu=2,
    countgeki=40,
    perfect=True,
    enabled_mods=72,
    user_id=42,
    score_time=datetime(2024, 3, 14, 1, 6, 2, tzinfo=UTC),
    rank="SH",
    pp=300.0,
    replay_available=False,
)


def _plays(*pps: float) -> list[TopPlay]:
    return [
        replace(PLAY, score_id=index + 1, beatmap_id=index + 100, pp=pp)
        for index, pp in enumerate(pps)
    ]


def test_first_update_reports_every_play_with_its_position() -> None:
    plays = _plays(300.0, 250.0, 200.0)
    assert [(ranking, play.score_id) for ranking, play in new_hiscores([], plays)] == [
        (0, 1),
        (1, 2),
        (2, 3),
    ]


def test_known_plays_are_skipped_but_keep_counting_positions() -> None:
    plays = _plays(300.0, 250.0, 200.0)
    assert [(ranking, play.score_id) for ranking, play in new_hiscores({1, 3}, plays)] == [(1, 2)]


def test_ranking_follows_pp_not_the_order_received() -> None:
    plays = list(reversed(_plays(300.0, 250.0, 200.0)))
    assert [ranking for ranking, _ in new_hiscores({1, 2}, plays)] == [2]


def test_pp_rework_does_not_make_old_plays_new() -> None:
    plays = _plays(300.0, 250.0)
    reworked = [replace(play, pp=play.pp * 1.1) for play in plays]
    assert new_hiscores({1, 2}, reworked) == []


def test_beatmap_zero_is_never_new() -> None:
    plays = [replace(PLAY, beatmap_id=0)]
    assert new_hiscores([], plays) == []


def test_newhs_item_is_all_strings_but_ranking() -> None:
    item = newhs_item(replace(PLAY, pp=200.0), 3)
    assert item["ranking"] == 3
    assert item["pp"] == "200"
    assert item["date"] == "2024-03-14 01:06:02"
    assert item["perfect"] == "1"
    assert all(isinstance(value, str) for key, value in item.items() if key != "ranking")
