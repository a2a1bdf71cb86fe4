"""The fixture players reproduce the recorded responses at step 0."""

from __future__ import annotations

import pytest
from falcon.testing import TestClient
from sim_helpers import v1_best, v1_user
from support.recorded import needs_recordings, recorded

pytestmark = needs_recordings


def _recorded(name: str) -> list[dict[str, str]]:
    result: list[dict[str, str]] = recorded(name)
    return result


@pytest.mark.parametrize(
    ("user", "recording"),
    [
        ("peppy", "v1_get_user_peppy_osu_2026-07_aiosu.json"),
        ("Nice Aesthetics", "v1_get_user_niceaesth_osu_2022-12_aiosu.json"),
    ],
)
def test_v1_user_matches_recording(client: TestClient, user: str, recording: str) -> None:
    assert v1_user(client, user, 0, type="string") == _recorded(recording)


def test_peppy_best_matches_recording(client: TestClient) -> None:
    recorded = _recorded("v1_get_user_best_peppy_osu_limit10_2026-07_aiosu.json")
    assert v1_best(client, 2, limit=10) == recorded


def test_peppy_v2_statistics_match_recording(client: TestClient, auth: dict[str, str]) -> None:
    expected = recorded("v2_user_peppy_default-mode_2026-07_aiosu.json")["statistics"]
    stats = client.simulate_get("/api/v2/users/2", headers=auth).json["statistics"]
    for key in (
        "count_100", "count_300", "count_50", "count_miss", "level", "global_rank", "pp",
        "ranked_score", "hit_accuracy", "accuracy", "play_count", "play_time", "total_score",
        "total_hits", "maximum_combo", "replays_watched_by_others", "is_ranked",
        "grade_counts", "country_rank",
    ):  # fmt: skip
        assert stats[key] == expected[key], key


def test_nice_aesthetics_top_play_ids(client: TestClient, auth: dict[str, str]) -> None:
    best = client.simulate_get("/api/v2/users/7782553/scores/best", headers=auth).json
    assert [s["id"] for s in best] == [3209790740, 5044287356, 5044250514, 5044261837, 4853910741]
    assert best[4]["mods"] == ["NC"]
