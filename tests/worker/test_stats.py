"""The /update diff: new minus old, `first`, `levelup`."""

from __future__ import annotations

from dataclasses import replace

from osutrack.fields import DIFF_FIELD_ORDER, PlayerStats
from worker.stats import leveled_up, stats_diff

BEFORE = PlayerStats(
    count300=1000,
    count100=100,
    count50=10,
    playcount=50,
    ranked_score=5_000_000_000,
    total_score=20_000_000_000,
    pp_rank=8000,
    level=99.75,
    pp_raw=4000.5,
    accuracy=98.5,
    count_rank_ss=3,
    count_rank_s=40,
    count_rank_a=60,
)


def test_diff_is_new_minus_old_in_response_order() -> None:
    after = replace(BEFORE, playcount=53, pp_rank=7990, pp_raw=4012.5, count300=1300)
    diff = stats_diff(BEFORE, after)
    assert tuple(diff) == DIFF_FIELD_ORDER
    assert diff["playcount"] == 3
    assert diff["pp_raw"] == 12.0
    assert diff["count300"] == 300
    # A better rank is a smaller number, so the diff is negative when the rank improved.
    assert diff["pp_rank"] == -10
    assert diff["ranked_score"] == 0


def test_rank_getting_worse_is_positive() -> None:
    assert stats_diff(BEFORE, replace(BEFORE, pp_rank=8100))["pp_rank"] == 100


def test_first_update_diff_is_the_full_values() -> None:
    diff = stats_diff(None, BEFORE)
    assert diff["ranked_score"] == 5_000_000_000
    assert diff["pp_rank"] == 8000
    assert diff["accuracy"] == 98.5


def test_levelup_only_when_the_integer_part_changes() -> None:
    assert leveled_up(BEFORE, replace(BEFORE, level=100.01))
    assert not leveled_up(BEFORE, replace(BEFORE, level=99.99))
    assert not leveled_up(None, BEFORE)
