"""v1 and v2 describe the same player identically at the same moment."""

from __future__ import annotations

import math

from falcon.testing import TestClient
from sim_helpers import truth, v1_best, v1_user, v2_best

from simulator.mods import acronyms_to_bits, bits_to_acronyms

USER = 4242


def test_v1_and_v2_user_agree(client: TestClient, auth: dict[str, str]) -> None:
    for mode, name in enumerate(("osu", "taiko", "fruits", "mania")):
        (row,) = v1_user(client, str(USER), mode, type="id")
        stats = client.simulate_get(f"/api/v2/users/{USER}/{name}", headers=auth).json["statistics"]
        assert int(row["count300"]) == stats["count_300"]
        assert int(row["count100"]) == stats["count_100"]
        assert int(row["count50"]) == stats["count_50"]
        assert int(row["playcount"]) == stats["play_count"]
        assert int(row["ranked_score"]) == stats["ranked_score"]
        assert int(row["total_score"]) == stats["total_score"]
        assert int(row["pp_rank"]) == stats["global_rank"]
        assert int(row["pp_country_rank"]) == stats["country_rank"]
        assert float(row["pp_raw"]) == stats["pp"]
        assert round(float(row["accuracy"]), 4) == stats["hit_accuracy"]
        level = float(row["level"])
        assert stats["level"]["current"] == math.floor(level)
        assert stats["level"]["progress"] == math.floor(round((level % 1) * 100, 6))
        assert int(row["total_seconds_played"]) == stats["play_time"]
        grades = stats["grade_counts"]
        assert int(row["count_rank_ss"]) == grades["ss"]
        assert int(row["count_rank_a"]) == grades["a"]
        assert stats["is_ranked"] is True


def test_best_lists_follow_the_truth_in_both_formats(
    client: TestClient, auth: dict[str, str]
) -> None:
    expected = truth(client, USER, 0)["top_plays"]
    new = v2_best(client, auth, USER, "osu", new=True)
    legacy = v2_best(client, auth, USER, "osu", new=False)
    assert len(new) == len(legacy) == len(expected) == 100
    pps = [s["pp"] for s in new]
    assert pps == sorted(pps, reverse=True)
    for want, n, old in zip(expected, new, legacy, strict=True):
        assert n["id"] == want["solo_id"]
        assert n["pp"] == old["pp"] == want["pp"]
        assert n["beatmap"]["id"] == old["beatmap"]["id"] == want["beatmap_id"]
        acronyms = [m["acronym"] for m in n["mods"]]
        if want["is_lazer"]:
            assert not n["legacy_score_id"]
            assert n["legacy_total_score"] == 0
            assert "CL" not in acronyms
            assert old["id"] == want["solo_id"]
            assert old["score"] == 0
            assert want["score"] == n["total_score"]
        else:
            assert n["legacy_score_id"] == old["id"] == want["score_id"]
            assert n["legacy_total_score"] == old["score"] == want["score"]
            assert acronyms[-1] == "CL"
        assert acronyms_to_bits([a for a in acronyms if a != "CL"]) == want["enabled_mods"]
        assert old["mods"] == bits_to_acronyms(want["enabled_mods"])
        assert all(v for v in n["statistics"].values()), "zero counts are omitted"


def test_roughly_ten_percent_of_plays_are_lazer(client: TestClient) -> None:
    plays = [p for u in range(100, 110) for p in truth(client, u, 0)["top_plays"]]
    share = sum(p["is_lazer"] for p in plays) / len(plays)
    assert 0.04 < share < 0.2


def test_v1_best_lists_only_stable_plays_with_the_v2_legacy_ids(
    client: TestClient, auth: dict[str, str]
) -> None:
    rows = v1_best(client, USER)
    new = v2_best(client, auth, USER, "osu", new=True)
    stable = [s for s in new if s["legacy_score_id"]]
    assert [int(r["score_id"]) for r in rows[: len(stable)]] == [
        s["legacy_score_id"] for s in stable
    ]
    for row, score in zip(rows, stable, strict=False):
        assert float(row["pp"]) == score["pp"]
        assert int(row["score"]) == score["legacy_total_score"]
        assert row["date"].replace(" ", "T") + "Z" == score["ended_at"]
        assert len(row) == 17
        assert all(isinstance(v, str) for v in row.values())
    assert len(v1_best(client, USER, limit=1000)) == 100
    query = {"k": "0123456789abcdef0123456789abcdef01234567", "u": str(USER)}
    assert len(client.simulate_get("/api/get_user_best", params=query).json) == 10


def test_v2_best_paging(client: TestClient, auth: dict[str, str]) -> None:
    default = client.simulate_get(f"/api/v2/users/{USER}/scores/best", headers=auth).json
    assert len(default) == 5
    first = v2_best(client, auth, USER, "osu", new=True, limit=100, offset=0)
    second = v2_best(client, auth, USER, "osu", new=True, limit=100, offset=100)
    ids = [s["id"] for s in first + second]
    assert len(ids) == len(set(ids))
    assert v2_best(client, auth, USER, "osu", new=True, offset=200) == []
    assert len(v2_best(client, auth, USER, "osu", new=True, limit=500)) == 100


def test_lookup_by_name_and_unknown_users(client: TestClient, auth: dict[str, str]) -> None:
    (row,) = v1_user(client, f"Player{USER}")
    assert row["user_id"] == str(USER)
    by_name = client.simulate_get(f"/api/v2/users/@Player{USER}/osu", headers=auth)
    assert by_name.json["id"] == USER
    for missing in ("100000000", "0", "@nobody"):
        result = client.simulate_get(f"/api/v2/users/{missing}", headers=auth)
        assert result.status_code == 404
        assert result.json == {"error": None}
    assert client.simulate_get(f"/api/v2/users/{USER}/ctb", headers=auth).status_code == 404
    assert v1_user(client, "100000000", type="id") == []
    best = client.simulate_get("/api/v2/users/100000001/scores/best", headers=auth)
    assert best.status_code == 404


def test_unranked_quirk_in_fruits(client: TestClient, auth: dict[str, str]) -> None:
    user = 1239
    (row,) = v1_user(client, str(user), 2, type="id")
    stats = client.simulate_get(f"/api/v2/users/{user}/fruits", headers=auth).json["statistics"]
    assert row["pp_raw"] == "0"
    assert int(row["pp_rank"]) > 0
    assert stats["global_rank"] is None
    assert stats["pp"] == 0
    assert stats["is_ranked"] is False
    fact = truth(client, user, 2)
    assert fact["ranked"] is False
    (osu_row,) = v1_user(client, str(user), 0, type="id")
    assert float(osu_row["pp_raw"]) > 0


def test_batch_users(client: TestClient, auth: dict[str, str]) -> None:
    result = client.simulate_get(
        "/api/v2/users", params={"ids[]": ["5", "100000000", "6"]}, headers=auth
    )
    users = result.json["users"]
    assert [u["id"] for u in users] == [5, 6]
    single = client.simulate_get("/api/v2/users/5/taiko", headers=auth).json["statistics"]
    assert users[0]["statistics_rulesets"]["taiko"] == single
    assert set(users[0]["statistics_rulesets"]) == {"osu", "taiko", "fruits", "mania"}
    too_many = client.simulate_get(
        "/api/v2/users", params={"ids[]": [str(i) for i in range(1, 52)]}, headers=auth
    )
    assert too_many.status_code == 422
    assert "error" in too_many.json
